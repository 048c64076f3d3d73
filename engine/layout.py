"""Automatic layout of a design: layered, top to bottom, like a hand-drawn network.

Layers are ranked by longest path from an input (Kahn's algorithm, iterative), then ordered
within each rank by the mean position of their parents so that edges cross little. A connection
that skips ranks reserves a lane in each rank it passes, so it never runs behind a card. Pure
arithmetic: used by the canvas's auto-layout command and by file import.

:func:`design_layout` does the same for a design with groups (a compound layout): every group is
laid out on its own, and is then one unit of the group (or top level) holding it, card-sized when
collapsed and as large as its frame when expanded. A container whose single column would be too
tall for a screen is cut into columns at narrow ranks, so that a 1,000-layer network fills a
landscape window instead of one 60,000-pixel column; :func:`route` takes the connections from the
bottom of one column to the top of the next along the gap between them. Routing looks only at the
cards near a connection (a :class:`CardIndex` built once for all of them), so that routing every
connection of a 1,000-layer design takes a fraction of a second.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from .design import Design

# The geometry the canvas draws, in scene pixels (the GUI imports these). A card's position, as
# ``Node.position`` and ``Group.position`` give it, is its centre.
CARD_WIDTH = 190.0
CARD_HEIGHT = 96.0       # with one line of output shape; the row gap absorbs a second and a third
FRAME_PADDING = 16.0     # between an expanded group's frame and the cards inside it
HEADER_HEIGHT = 28.0     # the band along the top of an expanded group's frame: name and chevron
# A collapsed group's card: a header and four lines (114 px), and two cards stacked behind it.
GROUP_CARD_HEIGHT = 122.0
X_SPACING = 230.0        # between the centres of two neighbouring cards in a rank
Y_SPACING = 140.0        # between the centres of two cards in consecutive ranks
X_GAP = X_SPACING - CARD_WIDTH
Y_GAP = Y_SPACING - CARD_HEIGHT
LANE_WIDTH = 40.0        # the room a connection passing a rank reserves in it
COLUMN_GAP = 120.0       # between two columns of a wrapped layout: the channel connections use
WRAP_HEIGHT = 16 * Y_SPACING  # a group taller than this as one column is cut into columns
# The whole design wraps sooner: a column of 15 block cards fits a window only at a zoom where
# cards show just their names, while three columns of five show every card in full.
TOP_WRAP_HEIGHT = 8 * Y_SPACING
SCREEN_ASPECT = 16 / 10  # the width : height a wrapped container aims at (a landscape window)


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


def apply_design_layout(design: Design) -> None:
    """Set every layer's and every group's position to :func:`design_layout` (for a design just
    read or built, before anyone edits it: not an undo step)."""
    nodes, groups = design_layout(design)
    for name, pos in nodes.items():
        design.nodes[name].position = pos
    for name, pos in groups.items():
        design.groups[name] = replace(design.groups[name], position=pos)


# --- routing a connection around cards ---------------------------------------------------------

Point = tuple[float, float]
Rect = tuple[float, float, float, float]  # left, top, right, bottom
CLEARANCE = 14.0  # how far a routed connection keeps from the cards it passes
INDEX_CELL = 256.0  # the side of a cell of a CardIndex, in scene pixels (about a card and its gaps)
_SLACK = 1.0  # a box searched in a CardIndex is grown by this, so that rounding never hides a card


class CardIndex:
    """The rectangles of the cards a connection must avoid, bucketed in a grid of square cells,
    so that routing looks only at the cards near a connection: finding those overlapping a box
    costs the cells it spans and the cards in them, not every card of a 1,000-layer design.

    ``cards`` are rectangles, or a mapping from any key (the canvas uses the card items) to a
    rectangle; :func:`route` can then be told which keys to ignore (the connection's own ends).
    Build it once for a layout of cards and route every connection through it."""

    def __init__(self, cards: Iterable[Rect] | Mapping[Any, Rect], cell: float = INDEX_CELL) -> None:
        items: Iterable[tuple[Hashable, Rect]] = cards.items() if isinstance(cards, Mapping) else enumerate(cards)
        self.cell = cell
        self.keys: list[Hashable] = []
        self.rects: list[Rect] = []
        self.position: dict[Hashable, int] = {}   # a key's index in keys and rects
        self._cells: dict[tuple[int, int], list[int]] = {}
        self._grown: dict[float, list[Rect]] = {}
        for key, rect in items:
            i = len(self.rects)
            self.position[key] = i
            self.keys.append(key)
            self.rects.append(rect)
            for cx in range(math.floor(rect[0] / cell), math.floor(rect[2] / cell) + 1):
                for cy in range(math.floor(rect[1] / cell), math.floor(rect[3] / cell) + 1):
                    self._cells.setdefault((cx, cy), []).append(i)

    def __len__(self) -> int:
        return len(self.rects)

    def grown(self, by: float) -> list[Rect]:
        """Every rectangle grown by ``by`` on each side (remembered: routing asks for the same
        clearance again and again)."""
        found = self._grown.get(by)
        if found is None:
            found = self._grown[by] = _grow(self.rects, by)
        return found

    def near(self, left: float, top: float, right: float, bottom: float) -> list[int]:
        """The indices (in the order the cards were given) of the rectangles that overlap the
        box, or touch it: every one that does, and possibly a few more near it."""
        cell = self.cell
        x0, x1 = math.floor((left - _SLACK) / cell), math.floor((right + _SLACK) / cell)
        y0, y1 = math.floor((top - _SLACK) / cell), math.floor((bottom + _SLACK) / cell)
        cells = self._cells
        if (x1 - x0 + 1) * (y1 - y0 + 1) > len(cells):  # a box over most of the grid
            keys: Iterable[tuple[int, int]] = [k for k in cells if x0 <= k[0] <= x1 and y0 <= k[1] <= y1]
        else:
            keys = ((cx, cy) for cx in range(x0, x1 + 1) for cy in range(y0, y1 + 1))
        found: set[int] = set()
        for key in keys:
            bucket = cells.get(key)
            if bucket is not None:
                found.update(bucket)
        return sorted(found)


class _Obstacles:
    """The cards one connection must keep off: those of a :class:`CardIndex` but the skipped
    ones (and, given ``rows``, but those outside them), as they are and grown by the clearance,
    looked up by the box a test covers."""

    def __init__(self, index: CardIndex, skip: Collection[Hashable], clearance: float,
                 rows: tuple[float, float] | None) -> None:
        self.index = index
        self.clearance = clearance
        self.skipped = {index.position[key] for key in skip if key in index.position}
        self.rows = rows
        self._grown = index.grown(clearance)

    def _ids(self, left: float, top: float, right: float, bottom: float) -> list[int]:
        ids = self.index.near(left, top, right, bottom)
        if self.skipped:
            ids = [i for i in ids if i not in self.skipped]
        if self.rows is not None:
            low, high, rects = self.rows[0], self.rows[1], self.index.rects
            ids = [i for i in ids if rects[i][3] > low and rects[i][1] <= high]
        return ids

    def cards(self, left: float, top: float, right: float, bottom: float) -> list[Rect]:
        """The cards that may overlap the box (a superset: callers test each exactly)."""
        rects = self.index.rects
        return [rects[i] for i in self._ids(left, top, right, bottom)]

    def grown(self, left: float, top: float, right: float, bottom: float) -> list[Rect]:
        """The cards grown by the clearance that may overlap the box (a superset)."""
        c, grown = self.clearance, self._grown
        return [grown[i] for i in self._ids(left - c, top - c, right + c, bottom + c)]


def route(start: Point, end: Point, cards: Iterable[Rect] | CardIndex, clearance: float = CLEARANCE,
          skip: Collection[Hashable] = (), rows: tuple[float, float] | None = None) -> list[Point]:
    """Corners of a path from an output port ``start`` to an input port ``end`` whose straight
    pieces pass no card.

    Going down, it is ``[start, end]`` when the straight line already passes no card, else
    ``[start, (x, top), (x, bottom), end]``: down into the gap below the source, along a vertical
    lane at ``x`` clear of every card between, and into the gap above the target. When that lane
    cannot be reached without crossing a card, and always when the target is above the source
    (the next column of a wrapped layout), it is the orthogonal detour
    ``[start, (sx, y1), (x, y1), (x, y2), (ex, y2), end]``: down below the source, sideways to a
    free vertical channel (the gap between columns), along it, and sideways above the target.

    ``cards`` may be a :class:`CardIndex` (built once for many connections), whose cards keyed
    by one of ``skip`` are not avoided; with ``rows`` = ``(top, bottom)``, only the cards that
    reach below ``top`` and start no lower than ``bottom`` are (the canvas passes the rows
    between the connection's ends). Only the cards near the path are ever looked at."""
    (sx, sy), (ex, ey) = start, end
    index = cards if isinstance(cards, CardIndex) else CardIndex(list(cards))
    obstacles = _Obstacles(index, skip, clearance, rows)
    if ey - sy <= 4 * clearance:
        if ey >= sy:  # the next rank: the connection stays in the gap between the two
            return [start, end]
        return _detour(start, end, obstacles)
    band = [r for r in obstacles.grown(min(sx, ex), sy, max(sx, ex), ey) if r[3] > sy and r[1] < ey]
    if not any(segment_crosses(start, end, r) for r in band):
        return [start, end]
    gap = min(clearance * 1.5, (ey - sy) / 4)
    top, bottom = sy + gap, ey - gap
    right = _free_x(max(sx, ex), top, bottom, obstacles, +1)
    left = _free_x(min(sx, ex), top, bottom, obstacles, -1)
    x = right if abs(sx - right) + abs(ex - right) <= abs(sx - left) + abs(ex - left) else left
    path = [start, (x, top), (x, bottom), end]
    if _clear(path, obstacles):
        return path
    return _detour(start, end, obstacles)


def _grow(rects: Iterable[Rect], by: float) -> list[Rect]:
    return [(r[0] - by, r[1] - by, r[2] + by, r[3] + by) for r in rects]


def _clear(path: list[Point], obstacles: _Obstacles) -> bool:
    """Whether no straight piece of ``path`` passes through any of the cards."""
    for a, b in itertools.pairwise(path):
        near = obstacles.cards(min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))
        if any(segment_crosses(a, b, r) for r in near):
            return False
    return True


def _detour(start: Point, end: Point, obstacles: _Obstacles) -> list[Point]:
    """The orthogonal detour of :func:`route`: the shortest of the candidates whose pieces pass
    no card (the shortest candidate when none does, so that a connection is always drawn)."""
    (sx, sy), (ex, ey) = start, end
    gap = obstacles.clearance * 1.5
    best: list[Point] | None = None
    best_cost = math.inf
    for side_of, direction in ((sx, +1), (sx, -1), (ex, +1), (ex, -1)):
        y1, y2, x = sy + gap, ey - gap, side_of
        for _ in range(4):  # the channel and the two crossings depend on each other; settle them
            x = _free_x(side_of, min(y1, y2), max(y1, y2), obstacles, direction)
            new_y1 = _free_y(y1, sx, x, obstacles, +1)
            new_y2 = _free_y(y2, x, ex, obstacles, -1)
            if (new_y1, new_y2) == (y1, y2):
                break
            y1, y2 = new_y1, new_y2
        path = [start, (sx, y1), (x, y1), (x, y2), (ex, y2), end]
        cost = abs(y1 - sy) + abs(x - sx) + abs(y2 - y1) + abs(ex - x) + abs(ey - y2)
        if not _clear(path, obstacles):
            cost += 1e9
        if cost < best_cost:
            best, best_cost = path, cost
    assert best is not None
    return best


def _free_x(x: float, low: float, high: float, obstacles: _Obstacles, direction: int) -> float:
    """The first x from ``x`` on, going right (+1) or left (−1), that no grown card reaching
    into the rows from ``low`` to ``high`` covers (the least such x: every jump is across a
    card covering all it skips)."""
    while True:
        covering = [r for r in obstacles.grown(x, low, x, high) if r[3] > low and r[1] < high and r[0] < x < r[2]]
        if not covering:
            return x
        x = max(r[2] for r in covering) if direction > 0 else min(r[0] for r in covering)


def _free_y(y: float, x0: float, x1: float, obstacles: _Obstacles, direction: int) -> float:
    """The first y from ``y`` on, going down (+1) or up (−1), at which a horizontal line from
    ``x0`` to ``x1`` passes no grown card."""
    low, high = min(x0, x1), max(x0, x1)
    while True:
        covering = [r for r in obstacles.grown(low, y, high, y) if r[0] <= high and r[2] >= low and r[1] < y < r[3]]
        if not covering:
            return y
        y = max(r[3] for r in covering) if direction > 0 else min(r[1] for r in covering)


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

def card_rect(centre: Point) -> Rect:
    """The rectangle of a layer's card centred at ``centre``."""
    x, y = centre
    return (x - CARD_WIDTH / 2, y - CARD_HEIGHT / 2, x + CARD_WIDTH / 2, y + CARD_HEIGHT / 2)


def group_card_rect(centre: Point) -> Rect:
    """The room of a collapsed group's card centred at ``centre`` (cards stacked behind it
    included); its top-left corner is where the group's frame starts when it is expanded."""
    x, y = centre
    return (x - CARD_WIDTH / 2, y - GROUP_CARD_HEIGHT / 2, x + CARD_WIDTH / 2, y + GROUP_CARD_HEIGHT / 2)


class _Tree:
    """The groups of a design as a tree, read once: each group's parent (a missing parent or a
    loop puts a group at the top level, as :meth:`Design.group_chain` stops there), each layer's
    container, and the groups that hold any layer at all (an empty group is not drawn)."""

    def __init__(self, design: Design) -> None:
        groups = design.groups
        parent = {g: (v.parent if v.parent in groups and v.parent != g else None) for g, v in groups.items()}
        children: dict[str | None, list[str]] = {}
        for g, p in parent.items():
            children.setdefault(p, []).append(g)
        reached: list[str] = []
        frontier = list(children.get(None, []))
        while frontier:
            g = frontier.pop()
            reached.append(g)
            frontier.extend(children.get(g, []))
        for g in set(groups) - set(reached):  # on a loop: shown at the top level
            parent[g] = None
        self.parent = parent
        self.container = {n.name: (n.group if n.group in groups else None) for n in design.nodes.values()}
        depth: dict[str, int] = {}
        for g in groups:
            chain = []
            h: str | None = g
            while h is not None and h not in depth:
                chain.append(h)
                h = parent[h]
            d = depth[h] if h is not None else -1
            for h2 in reversed(chain):
                d += 1
                depth[h2] = d
        self.depth = depth
        holding: set[str] = set()
        for inner in self.container.values():
            while inner is not None and inner not in holding:
                holding.add(inner)
                inner = parent[inner]
        self.nonempty = holding

    def path(self, group: str | None) -> list[str]:
        """The groups from the top level down to ``group``."""
        chain = []
        while group is not None:
            chain.append(group)
            group = self.parent[group]
        return chain[::-1]


def design_layout(design: Design) -> tuple[dict[str, Point], dict[str, Point]]:
    """Positions (centres) of every layer and of every group's card, for the design as it is
    shown: a collapsed group (the outermost one) is one card; an expanded group is a frame (its
    layers and sub-groups laid out the same way, within :data:`FRAME_PADDING` and under a
    :data:`HEADER_HEIGHT` band) that is one unit of the layout around it. Connections count
    between the units they join in each container.

    Layers and sub-groups hidden in a collapsed group get the places they will have when it is
    expanded, relative to its card: the card's top-left corner is where the frame's will be, so
    expanding grows the group right and down from where its card was. An expanded group's card
    position follows the same rule. A group holding no layer gets no position."""
    tree = _Tree(design)
    names = list(design.nodes)
    index = {n: i for i, n in enumerate(names)}
    live = [g for g in design.groups if g in tree.nonempty]
    gid = {g: len(names) + j for j, g in enumerate(live)}
    unit_name = names + live

    # Every layer's chain of units from the top level: its groups, outermost first, then itself.
    paths: dict[str | None, list[int]] = {None: []}
    for g in live:
        paths[g] = [gid[h] for h in tree.path(g)]
    chains = [paths[tree.container[n]] + [i] for i, n in enumerate(names)]

    units: dict[str | None, list[int]] = {None: []}
    first: dict[int, int] = {}  # a unit's first layer in design order: units keep that order
    for g in live:
        units.setdefault(g, [])
        units.setdefault(tree.parent[g], []).append(gid[g])
    for i, n in enumerate(names):
        units[tree.container[n]].append(i)
        for u in chains[i]:
            first.setdefault(u, i)
    edges: dict[str | None, list[tuple[int, int]]] = {c: [] for c in units}
    for t, node in enumerate(design.nodes.values()):
        ct = chains[t]
        for refs in node.inbound:
            for ref in refs:
                s = index.get(ref.node)
                if s is None or s == t:
                    continue
                cs = chains[s]
                k = 0
                while cs[k] == ct[k]:  # never runs off: a layer's chain ends with itself
                    k += 1
                where = None if k == 0 else unit_name[cs[k - 1]]
                edges[where].append((cs[k], ct[k]))

    # Inside out: each container's units placed (top-left corners), then its size known.
    size: dict[int, tuple[float, float]] = {i: (CARD_WIDTH, CARD_HEIGHT) for i in range(len(names))}
    placed: dict[str | None, dict[int, Point]] = {}
    for g in sorted(live, key=lambda g: -tree.depth[g]):
        corners, width, height = _place_container(units[g], edges[g], size, first, WRAP_HEIGHT)
        placed[g] = corners
        frame = (width + 2 * FRAME_PADDING, height + HEADER_HEIGHT + 2 * FRAME_PADDING)
        size[gid[g]] = (CARD_WIDTH, GROUP_CARD_HEIGHT) if design.groups[g].collapsed else frame
    placed[None] = _place_container(units[None], edges[None], size, first, TOP_WRAP_HEIGHT)[0]

    nodes: dict[str, Point] = {}
    groups: dict[str, Point] = {}
    stack: list[tuple[str | None, float, float]] = [(None, -CARD_WIDTH / 2, -CARD_HEIGHT / 2)]
    while stack:
        container, ox, oy = stack.pop()
        for u, (left, top) in placed[container].items():
            x, y = ox + left, oy + top
            if u < len(names):
                nodes[names[u]] = (x + CARD_WIDTH / 2, y + CARD_HEIGHT / 2)
            else:
                groups[unit_name[u]] = (x + CARD_WIDTH / 2, y + GROUP_CARD_HEIGHT / 2)
                stack.append((unit_name[u], x + FRAME_PADDING, y + HEADER_HEIGHT + FRAME_PADDING))
    return {n: nodes[n] for n in names}, {g: groups[g] for g in live}


def _place_container(units: list[int], edges: list[tuple[int, int]], size: Mapping[int, tuple[float, float]],
                     first: Mapping[int, int], wrap: float) -> tuple[dict[int, Point], float, float]:
    """Top-left corners of ``units`` (of the sizes given) laid out in ranks, in columns when
    taller than ``wrap``, with the size of their bounding box, which starts at (0, 0)."""
    order = sorted(units, key=first.__getitem__)
    local = {u: i for i, u in enumerate(order)}
    corners, width, height = _layered(
        [size[u] for u in order], [(local[s], local[t]) for s, t in edges], wrap)
    return {order[i]: c for i, c in enumerate(corners)}, width, height


def _layered(sizes: list[tuple[float, float]], edges: list[tuple[int, int]],
             wrap: float = WRAP_HEIGHT) -> tuple[list[Point], float, float]:
    """The layered layout of boxes of ``sizes`` joined by ``edges`` (as in
    :func:`layered_positions`, with sizes): their top-left corners, cut into columns when one
    column would be taller than ``wrap``, and the size of their bounding box."""
    m = len(sizes)
    if m == 0:
        return [], 0.0, 0.0
    parents: list[list[int]] = [[] for _ in range(m)]
    children: list[list[int]] = [[] for _ in range(m)]
    for s, t in dict.fromkeys(edges):
        if s != t:
            parents[t].append(s)
            children[s].append(t)
    indegree = [len(p) for p in parents]
    rank = [0] * m
    done = [False] * m
    queue = deque(i for i in range(m) if indegree[i] == 0)
    while queue:
        n = queue.popleft()
        done[n] = True
        for c in children[n]:
            if rank[c] <= rank[n]:
                rank[c] = rank[n] + 1
            indegree[c] -= 1
            if indegree[c] == 0:
                queue.append(c)
    if not all(done):  # units on a cycle: below everything else
        bottom = max(rank) + 1
        for n in range(m):
            if not done[n]:
                rank[n] = bottom
    ranks = max(rank) + 1
    rows: list[list[int]] = [[] for _ in range(ranks)]
    for n in range(m):
        rows[rank[n]].append(n)

    # Lanes (dummy units) for connections that skip ranks, as in layered_positions.
    widths = [w for w, _ in sizes]
    slot_parents: list[list[int]] = [[] for _ in range(m)]
    crossing = [0] * (ranks + 2)  # how many tensors pass from rank r - 1 to rank r
    for t in range(m):
        for s in parents[t]:
            if done[t] and done[s] and rank[t] - rank[s] > 1:
                above = s
                for r in range(rank[s] + 1, rank[t]):
                    lane = len(widths)
                    widths.append(LANE_WIDTH)
                    slot_parents.append([above])
                    rows[r].append(lane)
                    above = lane
                slot_parents[t].append(above)
            else:
                slot_parents[t].append(s)
    # A tensor read several ranks down crosses every rank boundary until its last reader.
    for s in range(m):
        last = rank[s]
        for t in children[s]:
            if rank[t] > last:
                last = rank[t]
        if last > rank[s]:
            crossing[rank[s] + 1] += 1
            crossing[last + 1] -= 1
    running = 0
    for r in range(ranks + 2):
        running += crossing[r]
        crossing[r] = running

    centre = [0.0] * len(widths)
    known = [False] * len(widths)
    wish = [math.inf] * len(widths)  # where the unit's parents would have it: their mean x
    pull = [math.inf] * len(widths)  # the same, counting only the parents that are units
    row_width = [0.0] * ranks
    row_height = [0.0] * ranks
    row_left = [0.0] * ranks
    for r, row in enumerate(rows):
        for n in row:
            xs = [centre[p] for p in slot_parents[n] if known[p]]
            if xs:
                wish[n] = sum(xs) / len(xs)
                units = [centre[p] for p in slot_parents[n] if known[p] and p < m]
                pull[n] = sum(units) / len(units) if units else wish[n]
        if len(row) > 1:
            row.sort(key=wish.__getitem__)
        total = X_GAP * (len(row) - 1)
        tallest = 0.0
        for n in row:
            total += widths[n]
            if n < m and sizes[n][1] > tallest:
                tallest = sizes[n][1]
        x = -total / 2
        for n in row:
            centre[n] = x + widths[n] / 2
            x += widths[n] + X_GAP
        # Slide a rank holding lanes so that its cards sit, on average, under their parents: a
        # chain beside a lane stays straight instead of zig-zagging around the middle. Lanes do
        # not pull, and the slide is at most half the lanes' room, so that ranks never drift
        # further and further aside (a rank without lanes stays centred).
        room = sum(LANE_WIDTH + X_GAP for n in row if n >= m) / 2
        pulls = [pull[n] - centre[n] for n in row if n < m and pull[n] != math.inf]
        shift = max(-room, min(room, sum(pulls) / len(pulls))) if pulls and room else 0.0
        for n in row:
            centre[n] += shift
            known[n] = True
        row_width[r] = total
        row_height[r] = tallest
        row_left[r] = shift - total / 2

    cuts = _column_cuts(row_width, row_height, crossing, wrap)
    corners: list[Point] = [(0.0, 0.0)] * m
    left = 0.0
    for a, b in itertools.pairwise(cuts):
        column_left = min(row_left[a:b])
        column_right = max(row_left[r] + row_width[r] for r in range(a, b))
        top = 0.0
        for r in range(a, b):
            for n in rows[r]:
                if n < m:
                    corners[n] = (left - column_left + centre[n] - sizes[n][0] / 2, top)
            top += row_height[r] + Y_GAP
        left += column_right - column_left + COLUMN_GAP
    # Lanes may stick out of the cards' bounding box: the box is what the units cover.
    x0 = min(c[0] for c in corners)
    y0 = min(c[1] for c in corners)
    corners = [(x - x0, y - y0) for x, y in corners]
    width = max(c[0] + s[0] for c, s in zip(corners, sizes, strict=True))
    height = max(c[1] + s[1] for c, s in zip(corners, sizes, strict=True))
    return corners, width, height


def _column_cuts(row_width: list[float], row_height: list[float], crossing: list[int],
                 wrap: float = WRAP_HEIGHT) -> list[int]:
    """Where to cut the ranks into columns: ``[0, c1, …, ranks]``, each column the ranks from
    one cut to the next. One column while it is no taller than ``wrap``; else as many
    as bring the whole closest to :data:`SCREEN_ASPECT`, each cut at the rank boundary near its
    share of the height that the fewest tensors cross (a "waist" of the network), so that few
    connections run from one column to the next."""
    ranks = len(row_height)
    tops = [0.0] * (ranks + 1)
    for r in range(ranks):
        tops[r + 1] = tops[r] + row_height[r] + Y_GAP
    total = tops[ranks] - Y_GAP
    if total <= wrap or ranks < 2:
        return [0, ranks]
    # The width of k columns is the sum of their widest ranks: try k = 1, 2, … until the whole
    # is wider than the screen's shape (each try cuts at equal heights, O(ranks)).
    def shape(k: int) -> tuple[float, float]:
        bounds = [0, *(bisect.bisect_left(tops, j * total / k) for j in range(1, k)), ranks]
        spans = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
        width = sum(max(row_width[a:b]) for a, b in spans) + (len(spans) - 1) * COLUMN_GAP
        return width, max(tops[b] - tops[a] - Y_GAP for a, b in spans)

    best, best_score = 1, math.inf
    for k in range(1, ranks + 1):
        width, height = shape(k)
        aspect = width / max(height, 1.0)
        score = abs(math.log(aspect / SCREEN_ASPECT))
        if score < best_score:
            best, best_score = k, score
        elif aspect > SCREEN_ASPECT:
            break
    # Ranks of large frames come in few sizes: fewer columns may be as short (twelve blocks in
    # six columns of two rather than ten of one or two). Take the fewest that are.
    height = shape(best)[1]
    while best > 2 and shape(best - 1)[1] <= height:
        best -= 1
    cuts = [0]
    share = total / best
    window = share / 5
    for j in range(1, best):
        target = j * share
        low = max(cuts[-1] + 1, bisect.bisect_left(tops, target - window))
        candidates = range(low, min(ranks, bisect.bisect_right(tops, target + window)))
        if not candidates:
            candidates = range(max(cuts[-1] + 1, bisect.bisect_left(tops, target)), ranks)[:1]
        if not candidates:
            break
        cuts.append(min(candidates, key=lambda b: (crossing[b] + abs(tops[b] - target) / window, b)))
    cuts.append(ranks)
    return cuts


def group_frames(design: Design, positions: Mapping[str, Point],
                 group_positions: Mapping[str, Point] | None = None) -> dict[str, Rect]:
    """The frame of every group holding a layer, from the cards as placed: the bounding box of
    what it shows inside (its layers' cards, its collapsed sub-groups' cards, its expanded
    sub-groups' frames), grown by :data:`FRAME_PADDING` and, at the top, :data:`HEADER_HEIGHT`.
    A collapsed group gets the frame it will have when expanded. A collapsed sub-group's card is
    at ``group_positions`` when given, else where :func:`design_layout` puts it: its top-left
    corner at the top-left corner of its frame."""
    tree = _Tree(design)
    content: dict[str, list[float]] = {}

    def add(group: str | None, rect: Rect) -> None:
        if group is None:
            return
        box = content.get(group)
        if box is None:
            content[group] = list(rect)
        else:
            box[0], box[1] = min(box[0], rect[0]), min(box[1], rect[1])
            box[2], box[3] = max(box[2], rect[2]), max(box[3], rect[3])

    for name, group in tree.container.items():
        if name in positions:
            add(group, card_rect(positions[name]))
    frames: dict[str, Rect] = {}
    for g in sorted(content.keys() | tree.nonempty, key=lambda g: -tree.depth[g]):
        box = content.get(g)
        if box is None:
            continue
        frame = (box[0] - FRAME_PADDING, box[1] - HEADER_HEIGHT - FRAME_PADDING,
                 box[2] + FRAME_PADDING, box[3] + FRAME_PADDING)
        frames[g] = frame
        if design.groups[g].collapsed:
            at = (group_positions or {}).get(g)
            shown = group_card_rect(at if at is not None else (
                frame[0] + CARD_WIDTH / 2, frame[1] + GROUP_CARD_HEIGHT / 2))
        else:
            shown = frame
        add(tree.parent[g], shown)
    return frames


def group_frame(design: Design, group: str, positions: Mapping[str, Point],
                group_positions: Mapping[str, Point] | None = None) -> Rect:
    """The frame of ``group`` (see :func:`group_frames`, which gives every group's at once)."""
    frames = group_frames(design, positions, group_positions)
    if group not in frames:
        raise KeyError(f"the group {group!r} holds no placed layer")
    return frames[group]
