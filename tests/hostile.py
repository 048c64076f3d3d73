"""Hostile designs built programmatically: the shapes of graph that once made the analysis or the
text summary quadratic (issue 13). Shared by tests/test_hostile_designs.py and
benchmarks/bench_hostile.py."""

from __future__ import annotations

from collections.abc import Callable

from engine.design import Design, Node, TensorRef


def wide_add(n: int) -> Design:
    """An Add reading ``n`` ReLU branches of one input: its "Connected to" cell names ``n`` layers."""
    design = Design(name=f"wide_{n}")
    design.add("InputLayer", "image", {"shape": (8,)})
    branches = [design.add("ReLU", f"relu_{i}", inputs=["image"]).name for i in range(n)]
    design.add("Add", "add", inputs=branches)
    return design


def long_cycle(n: int) -> Design:
    """An input and a ring of ``n`` Dense layers, each reading the one before, the first the last."""
    design = Design(name=f"cycle_{n}")
    design.add("InputLayer", "image", {"shape": (8,)})
    for i in range(n):
        design.add("Dense", f"dense_{i}", {"units": 8}, inputs=[f"dense_{i - 1}"] if i else [])
    design.connect("dense_0" if n == 1 else f"dense_{n - 1}", "dense_0")
    return design


def shared_chain(n: int) -> Design:
    """One Dense layer applied ``n`` times in a row, each call reading the call before."""
    design = Design(name=f"shared_{n}")
    design.add("InputLayer", "image", {"shape": (8,)})
    inbound = [[TensorRef("image")]] + [[TensorRef("dense", c)] for c in range(n - 1)]
    design.insert_node(Node("dense", "Dense", {"units": 8}, inbound))
    return design


HOSTILE: dict[str, Callable[[int], Design]] = {
    "wide": wide_add, "cycle": long_cycle, "shared": shared_chain,
}
