"""Edits of a design as small, invertible operations, and the plans behind compound edits.

Every change the designer makes is a list of :data:`Op` values. :func:`apply_op` performs one on
a design and returns the op that undoes it, so undo is exact by construction and testable
without Qt. Compound edits ("insert a layer on this edge", "delete and reconnect", "apply this
fix") are *plans*: functions that look at the design and return the ops to run in order, which
the GUI pushes as one undo macro.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Union

from .design import Design, Node, TensorRef
from .layers import CATALOGUE, Fix


@dataclass(frozen=True)
class AddNode:
    kind: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    position: tuple[float, float] | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"Add {self.name}"


@dataclass(frozen=True)
class RemoveNode:
    name: str

    def describe(self) -> str:
        return f"Remove {self.name}"


@dataclass(frozen=True)
class RestoreNode:
    """Undo of :class:`RemoveNode`: the node object, its place in order and who read from it."""

    node: Node
    index: int
    consumers: tuple[tuple[str, int, int, TensorRef], ...]
    was_output: tuple[tuple[int, TensorRef], ...] = ()
    input_order: int | None = None

    def describe(self) -> str:
        return f"Restore {self.node.name}"


@dataclass(frozen=True)
class Connect:
    source: TensorRef
    target: str
    call: int = 0
    slot: int | None = None

    def describe(self) -> str:
        return f"Connect {self.source} → {self.target}"


@dataclass(frozen=True)
class Disconnect:
    source: TensorRef
    target: str
    call: int = 0

    def describe(self) -> str:
        return f"Disconnect {self.source} → {self.target}"


_UNSET = object()


@dataclass(frozen=True)
class SetArg:
    """Set an argument; ``value=None`` with ``unset=True`` removes it (back to the default)."""

    name: str
    arg: str
    value: Any
    unset: bool = False

    def describe(self) -> str:
        return f"Set {self.name}.{self.arg}"


@dataclass(frozen=True)
class Rename:
    old: str
    new: str

    def describe(self) -> str:
        return f"Rename {self.old} → {self.new}"


@dataclass(frozen=True)
class Move:
    name: str
    position: tuple[float, float] | None

    def describe(self) -> str:
        return f"Move {self.name}"


Op = Union[AddNode, RemoveNode, RestoreNode, Connect, Disconnect, SetArg, Rename, Move]


def apply_op(design: Design, op: Op) -> Op:
    """Perform ``op`` on ``design`` and return the op that reverses it exactly."""
    if isinstance(op, AddNode):
        design.add(op.kind, op.name, copy.deepcopy(op.args), position=op.position,
                   config=copy.deepcopy(op.config))
        return RemoveNode(op.name)
    if isinstance(op, RemoveNode):
        index = list(design.nodes).index(op.name)
        consumers = tuple((n, c, s, design.nodes[n].inbound[c][s]) for n, c, s in design.consumers(op.name))
        outputs = tuple((i, r) for i, r in enumerate(design.outputs) if r.node == op.name)
        order = design.inputs_order.index(op.name) if op.name in design.inputs_order else None
        node = design.remove(op.name)
        return RestoreNode(node, index, consumers, outputs, order)
    if isinstance(op, RestoreNode):
        design.insert_node(op.node, op.index)
        for target, call, slot, ref in sorted(op.consumers, key=lambda c: (c[0], c[1], c[2])):
            design.nodes[target].inbound[call].insert(slot, ref)
        for i, ref in op.was_output:
            design.outputs.insert(i, ref)
        if op.input_order is not None:
            design.inputs_order.insert(op.input_order, op.node.name)
        return RemoveNode(op.node.name)
    if isinstance(op, Connect):
        design.connect(op.source, op.target, op.call, op.slot)
        return Disconnect(op.source, op.target, op.call)
    if isinstance(op, Disconnect):
        slot = design.disconnect(op.source, op.target, op.call)
        return Connect(op.source, op.target, op.call, slot)
    if isinstance(op, SetArg):
        node = design.node(op.name)
        had = op.arg in node.args
        old = node.args.get(op.arg)
        if op.unset:
            design.unset_arg(op.name, op.arg)
        else:
            design.set_arg(op.name, op.arg, copy.deepcopy(op.value))
        return SetArg(op.name, op.arg, old, unset=not had)
    if isinstance(op, Rename):
        design.rename(op.old, op.new)
        return Rename(op.new, op.old)
    if isinstance(op, Move):
        node = design.node(op.name)
        old = node.position
        node.position = op.position
        return Move(op.name, old)
    raise TypeError(f"not an edit: {op!r}")


def apply_all(design: Design, ops: list[Op]) -> list[Op]:
    """Apply ops in order; returns the inverses in the order that undoes them."""
    return [apply_op(design, op) for op in ops][::-1]


# --- plans -------------------------------------------------------------------------------------

def _new_name(design: Design, kind: str, taken: set[str]) -> str:
    name = design.unique_name(kind)
    i = 1
    while name in taken:
        name = f"{design.unique_name(kind)}_{i}"
        i += 1
    return name


def default_args(kind: str) -> dict[str, Any]:
    """Arguments a freshly dropped layer starts with: its required ones, set to sensible values."""
    spec = CATALOGUE[kind]
    starters = {"filters": 32, "kernel_size": 3, "units": 64, "rate": 0.5, "target_shape": (-1,),
                "dims": (2, 1), "factor": 0.1, "height_factor": 0.1, "width_factor": 0.1,
                "stddev": 0.1, "scale": 1 / 255, "height": 32, "width": 32, "activation": "relu"}
    args: dict[str, Any] = {}
    for p in spec.params:
        if p.required:
            args[p.name] = starters.get(p.name, p.default)
    if kind in ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D", "Dense"):
        args["activation"] = "relu"
    if kind == "InputLayer":
        args["shape"] = (28, 28, 1)
    return args


def plan_add(design: Design, kind: str, position: tuple[float, float] | None = None,
             args: dict[str, Any] | None = None) -> list[Op]:
    """A new, unconnected layer."""
    return [AddNode(kind, _new_name(design, kind, set()), args if args is not None else default_args(kind),
                    position)]


def plan_insert_on_edge(design: Design, kind: str, source: TensorRef, target: str, call: int = 0,
                        position: tuple[float, float] | None = None,
                        args: dict[str, Any] | None = None) -> list[Op]:
    """Put a new layer on the edge ``source → target``, keeping the target's input order."""
    slot = design.node(target).inbound[call].index(source)
    name = _new_name(design, kind, set())
    return [AddNode(kind, name, args if args is not None else default_args(kind), position),
            Disconnect(source, target, call),
            Connect(source, name),
            Connect(TensorRef(name), target, call, slot)]


def plan_append_after(design: Design, kind: str, after: str, position: tuple[float, float] | None = None,
                      args: dict[str, Any] | None = None) -> list[Op]:
    """A new layer fed by ``after``; whatever read ``after`` now reads the new layer."""
    name = _new_name(design, kind, set())
    ops: list[Op] = [AddNode(kind, name, args if args is not None else default_args(kind), position)]
    source = TensorRef(after, 0)
    readers = [(n, c, s) for n, c, s in design.consumers(after) if design.nodes[n].inbound[c][s] == source]
    for target, call, slot in readers:
        ops += [Disconnect(source, target, call), Connect(TensorRef(name), target, call, slot)]
    ops.append(Connect(source, name))
    return ops


def plan_delete(design: Design, names: list[str], edges: list[tuple[TensorRef, str, int]] = ()) -> list[Op]:
    """Delete nodes and edges. A deleted node with one input is bridged: its readers are
    reconnected to its input (deleting the middle of a chain keeps the chain)."""
    doomed = set(names)
    ops: list[Op] = []
    for source, target, call in edges:
        if source.node not in doomed and target not in doomed:
            ops.append(Disconnect(source, target, call))
    for name in names:
        node = design.node(name)
        if node.calls == 1 and len(node.inputs) == 1:
            upstream = _resolve(design, node.inputs[0], doomed)
            if upstream is not None:
                for target, call, slot in design.consumers(name):
                    if target in doomed:
                        continue
                    ref = design.nodes[target].inbound[call][slot]
                    ops += [Disconnect(ref, target, call), Connect(upstream, target, call, slot)]
        ops.append(RemoveNode(name))
    return _dedupe_bridges(ops)


def _resolve(design: Design, ref: TensorRef, doomed: set[str]) -> TensorRef | None:
    """Follow single-input doomed nodes upstream to the tensor that survives."""
    seen = set()
    while ref.node in doomed:
        if ref.node in seen:
            return None
        seen.add(ref.node)
        node = design.nodes[ref.node]
        if len(node.inputs) != 1:
            return None
        ref = node.inputs[0]
    return ref


def _dedupe_bridges(ops: list[Op]) -> list[Op]:
    out: list[Op] = []
    for op in ops:
        if op not in out or not isinstance(op, (Connect, Disconnect)):
            out.append(op)
    return out


def plan_fix(design: Design, node: str, fix: Fix) -> list[Op]:
    """The ops of a one-click fix offered by the analysis."""
    if fix.action == "set_arg":
        if fix.value is None:
            return [SetArg(node, fix.arg or "", None, unset=True)]
        return [SetArg(node, fix.arg or "", fix.value)]
    if fix.action == "insert_before":
        target = design.node(node)
        source = target.inputs[fix.input_index]
        pos = _between(design, source.node, node)
        return plan_insert_on_edge(design, fix.layer or "", source, node, 0, pos, dict(fix.layer_args))
    raise ValueError(f"unknown fix action {fix.action!r}")


def _between(design: Design, a: str, b: str) -> tuple[float, float] | None:
    pa, pb = design.nodes[a].position, design.nodes[b].position
    if pa is None or pb is None:
        return None
    return ((pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2)


def plan_paste(design: Design, nodes: list[Node], offset: tuple[float, float] = (40.0, 40.0)) -> tuple[list[Op], list[str]]:
    """Add copies of ``nodes`` (names made unique), keeping connections among them.

    Connections to nodes outside the copied set are dropped. Returns the ops and the new names.
    """
    taken: set[str] = set()
    renames: dict[str, str] = {}
    for node in nodes:
        name = node.name
        if name in design.nodes or name in taken:
            base = name.rstrip("0123456789").rstrip("_") or name
            i = 1
            while f"{base}_{i}" in design.nodes or f"{base}_{i}" in taken:
                i += 1
            name = f"{base}_{i}"
        taken.add(name)
        renames[node.name] = name
    ops: list[Op] = []
    for node in nodes:
        pos = None if node.position is None else (node.position[0] + offset[0], node.position[1] + offset[1])
        ops.append(AddNode(node.kind, renames[node.name], copy.deepcopy(node.args), pos, copy.deepcopy(node.config)))
    for node in nodes:
        for call, refs in enumerate(node.inbound):
            for ref in refs:
                if ref.node in renames:
                    ops.append(Connect(TensorRef(renames[ref.node], ref.call), renames[node.name], call))
    return ops, [renames[n.name] for n in nodes]
