"""Automatic layout of a design: layered, top to bottom, like a hand-drawn network.

Layers are ranked by longest path from an input (Kahn's algorithm, iterative), then ordered
within each rank by the mean position of their parents so that edges cross little. Pure
arithmetic: used by the canvas's auto-layout command and by file import.
"""

from __future__ import annotations

from collections import deque

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

    by_rank: dict[int, list[str]] = {}
    for n in design.nodes:
        by_rank.setdefault(rank[n], []).append(n)
    x_of: dict[str, float] = {}
    for r in sorted(by_rank):
        row = by_rank[r]
        def key(n: str) -> float:
            xs = [x_of[p] for p in parents[n] if p in x_of]
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
