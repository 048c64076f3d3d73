"""Automatic layout of a design: layered, top to bottom, like a hand-drawn network.

Layers are ranked by longest path from an input (Kahn's algorithm, iterative), then ordered
within each rank by the mean position of their parents so that edges cross little. A connection
that skips ranks reserves a lane in each rank it passes, so it never runs behind a card. Pure
arithmetic: used by the canvas's auto-layout command and by file import.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from .design import Design

X_SPACING = 230.0
Y_SPACING = 140.0


def layered_positions(design: Design) -> dict[str, tuple[float, float]]:
    """A position for every node: rank → y, order within the rank → x (centred on x = 0)."""
    parents: dict[str, list[str]] = {n: [] for n in design.nodes}
    children: dict[str, list[str]] = {n: [] for n in design.nodes}
    for node in design.nodes.values():
        for refs in node.inbound:
            for ref in refs:
                if ref.node in design.nodes and ref.node != node.name:
                    parents[node.name].append(ref.node)
                    children[ref.node].append(node.name)
    indegree = {n: len(set(p)) for n, p in parents.items()}
    rank = {n: 0 for n in design.nodes}
    queue = deque(n for n, d in indegree.items() if d == 0)
    done: set[str] = set()
    while queue:
        n = queue.popleft()
        done.add(n)
        for c in dict.fromkeys(children[n]):
            rank[c] = max(rank[c], rank[n] + 1)
            indegree[c] -= 1
            if indegree[c] == 0:
                queue.append(c)
    # Nodes on a cycle never reach indegree 0: put them below everything else.
    bottom = max(rank.values(), default=0) + 1
    for n in design.nodes:
        if n not in done:
            rank[n] = bottom

    # A connection spanning several ranks gets a lane: a slot in every rank it passes (the dummy
    # nodes of a Sugiyama layout), so that the ordering below moves the cards of those ranks aside
    # and the connection runs beside them, not behind them.
    by_rank: dict[int, list[str]] = {}
    for n in design.nodes:
        by_rank.setdefault(rank[n], []).append(n)
    slot_parents: dict[str, list[str]] = {n: [] for n in design.nodes}
    lanes = 0
    for n in design.nodes:
        for p in dict.fromkeys(parents[n]):
            if n not in done or p not in done or rank[n] - rank[p] <= 1:
                slot_parents[n].append(p)
                continue
            above = p
            for r in range(rank[p] + 1, rank[n]):
                lane = f"\0lane{lanes}"  # no layer name starts with NUL
                lanes += 1
                slot_parents[lane] = [above]
                by_rank.setdefault(r, []).append(lane)
                above = lane
            slot_parents[n].append(above)
    x_of: dict[str, float] = {}
    for r in sorted(by_rank):
        row = by_rank[r]
        def key(n: str) -> float:
            xs = [x_of[p] for p in slot_parents[n] if p in x_of]
            return sum(xs) / len(xs) if xs else float("inf")
        row.sort(key=key)
        width = (len(row) - 1) * X_SPACING
        for i, n in enumerate(row):
            x_of[n] = i * X_SPACING - width / 2
    return {n: (x_of[n], rank[n] * Y_SPACING) for n in design.nodes}


def apply_layout(design: Design) -> None:
    """Set every node's position to the layered layout."""
    for name, pos in layered_positions(design).items():
        design.nodes[name].position = pos


# --- routing a connection around cards ---------------------------------------------------------

Point = tuple[float, float]
Rect = tuple[float, float, float, float]  # left, top, right, bottom
CLEARANCE = 14.0  # how far a routed connection keeps from the cards it passes


def route(start: Point, end: Point, cards: Iterable[Rect], clearance: float = CLEARANCE) -> list[Point]:
    """Corners of a path from an output port ``start`` down to an input port ``end`` whose
    straight pieces pass no card: ``[start, end]`` when the straight line already does, else
    ``[start, (x, top), (x, bottom), end]``: down into the gap below the source, along a vertical
    lane at ``x`` clear of every card between, and into the gap above the target. A connection
    going up (a loop being drawn) is not routed."""
    (sx, sy), (ex, ey) = start, end
    if ey - sy <= 4 * clearance:
        return [start, end]
    grown = [(r[0] - clearance, r[1] - clearance, r[2] + clearance, r[3] + clearance) for r in cards]
    band = [r for r in grown if r[3] > sy and r[1] < ey]
    if not any(segment_crosses(start, end, r) for r in band):
        return [start, end]
    gap = min(clearance * 1.5, (ey - sy) / 4)
    top, bottom = sy + gap, ey - gap
    lane = [r for r in band if r[3] > top and r[1] < bottom]
    right = _free_x(max(sx, ex), lane, +1)
    left = _free_x(min(sx, ex), lane, -1)
    x = right if abs(sx - right) + abs(ex - right) <= abs(sx - left) + abs(ex - left) else left
    return [start, (x, top), (x, bottom), end]


def _free_x(x: float, rects: list[Rect], direction: int) -> float:
    """The first x from ``x`` on, going right (+1) or left (−1), that no rectangle covers."""
    moved = True
    while moved:
        moved = False
        for left, _top, right, _bottom in rects:
            if left < x < right:
                x = right if direction > 0 else left
                moved = True
    return x


def segment_crosses(a: Point, b: Point, rect: Rect) -> bool:
    """Whether the segment ``a``–``b`` passes through ``rect`` (Liang–Barsky clipping)."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x0 - rect[0]), (dx, rect[2] - x0), (-dy, y0 - rect[1]), (dy, rect[3] - y0)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


# --- the layout of a design with groups -------------------------------------------------------

def design_layout(design: Design) -> tuple[dict[str, Point], dict[str, Point]]:
    """Positions of every layer and of every group's collapsed card, for the design as it is
    shown (collapsed groups drawn as one card)."""
    positions = layered_positions(design)
    groups: dict[str, Point] = {}
    for name in design.groups:
        members = [positions[n] for n in design.group_members(name)]
        if members:
            groups[name] = (min(p[0] for p in members), min(p[1] for p in members))
    return positions, groups
