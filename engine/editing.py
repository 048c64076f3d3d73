"""Edits of a design as small, invertible operations, and the plans behind compound edits.

Every change the designer makes is a list of :data:`Op` values. :func:`apply_op` performs one on
a design and returns the op that undoes it, so undo is exact by construction and testable
without Qt. Compound edits ("insert a layer on this edge", "delete and reconnect", "apply this
fix") are *plans*: functions that look at the design and return the ops to run in order, which
the GUI pushes as one undo macro.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .design import Design, DesignError, Group, Node, TensorRef, name_problem
from .layers import CATALOGUE, Fix, FixAction, canonical_kind
from .layout import Y_SPACING
from .pixel_range import PixelRange, starting_args
from .search_range import SearchRange


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


@dataclass(frozen=True)
class SetGroup:
    """Add, replace or (``group=None``) remove the group ``name``: every change of a group
    (collapse, expand, its card's place, its parent) is one of these."""

    name: str
    group: Group | None

    def describe(self) -> str:
        if self.group is None:
            return f"Remove group {self.name}"
        return f"{'Collapse' if self.group.collapsed else 'Expand'} {self.name}"


@dataclass(frozen=True)
class SetNodeGroup:
    """Move layer ``name`` into ``group`` (None: out of every group)."""

    name: str
    group: str | None

    def describe(self) -> str:
        return f"Move {self.name} to {self.group or 'the top level'}"


@dataclass(frozen=True)
class Arrange:
    """Place many cards at once (a layout): ``positions`` of layers and ``group_positions`` of
    collapsed group cards. One op, so a layout of 1,000 layers is one signal, not 1,000."""

    positions: tuple[tuple[str, tuple[float, float] | None], ...] = ()
    group_positions: tuple[tuple[str, tuple[float, float] | None], ...] = ()

    def describe(self) -> str:
        return "Arrange layers"


@dataclass(frozen=True)
class SetTrainable:
    """Freeze (``trainable`` False) or unfreeze layers ``names``: one op for them all, so that
    freezing a 300-layer backbone is one undo step and one signal. ``previous``, when given,
    holds each layer's own flag to restore instead (the inverse of a change of mixed layers)."""

    names: tuple[str, ...]
    trainable: bool
    previous: tuple[bool, ...] | None = None

    def describe(self) -> str:
        verb = "Unfreeze" if self.trainable else "Freeze"
        if self.previous is not None:
            verb = "Restore trainable flags of"
        what = self.names[0] if len(self.names) == 1 else f"{len(self.names)} layers"
        return f"{verb} {what}"

    def flags(self) -> tuple[bool, ...]:
        """The flag each of ``names`` gets."""
        return self.previous if self.previous is not None else (self.trainable,) * len(self.names)


@dataclass(frozen=True)
class SetSearch:
    """Give argument ``arg`` of layer ``name`` the search range ``search`` (None: remove it).
    A range changes only what a sweep tries, never what the design computes."""

    name: str
    arg: str
    search: SearchRange | None

    def describe(self) -> str:
        return f"{'Search' if self.search is not None else 'Fix'} {self.name}.{self.arg}"


@dataclass(frozen=True)
class SetOutputs:
    """Declare the design's outputs (empty: every tensor nothing reads), as when a new head
    replaces an imported model's declared output."""

    outputs: tuple[TensorRef, ...]

    def describe(self) -> str:
        return "Set outputs"


Op = (AddNode | RemoveNode | RestoreNode | Connect | Disconnect | SetArg | Rename | Move | SetGroup
      | SetNodeGroup | Arrange | SetTrainable | SetOutputs | SetSearch)


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
    if isinstance(op, SetGroup):
        return SetGroup(op.name, design.set_group(op.name, op.group))
    if isinstance(op, SetNodeGroup):
        return SetNodeGroup(op.name, design.set_node_group(op.name, op.group))
    if isinstance(op, Arrange):
        old_nodes = tuple((n, design.node(n).position) for n, _ in op.positions)
        old_groups = []
        for g, _ in op.group_positions:
            if g not in design.groups:
                raise DesignError(f"there is no group named {g!r}")
            old_groups.append((g, design.groups[g].position))
        for n, pos in op.positions:
            design.nodes[n].position = pos
        for g, pos in op.group_positions:
            design.groups[g] = replace(design.groups[g], position=pos)
        return Arrange(old_nodes, tuple(old_groups))
    if isinstance(op, SetTrainable):
        flags = op.flags()
        if len(flags) != len(op.names):
            raise DesignError(f"{len(op.names)} layers but {len(flags)} trainable flags")
        for name in op.names:
            design.node(name)  # every name checked before anything changes
        old = tuple(design.set_trainable(n, f) for n, f in zip(op.names, flags))
        return SetTrainable(op.names, op.trainable, old)
    if isinstance(op, SetSearch):
        return SetSearch(op.name, op.arg, design.set_search(op.name, op.arg, op.search))
    if isinstance(op, SetOutputs):
        for ref in op.outputs:
            if ref.node not in design.nodes or ref.call >= design.nodes[ref.node].calls:
                raise DesignError(f"{ref} is not a tensor of the design; it cannot be an output")
        old_outputs = tuple(design.outputs)
        design.outputs = list(op.outputs)
        return SetOutputs(old_outputs)
    raise TypeError(f"not an edit: {op!r}")


def touched_by(design: Design, op: Op) -> set[str] | None:
    """The layers whose analysis ``op`` may change directly, from ``design`` as it is before the
    op: those it adds, removes, renames, re-argues or reconnects, and the readers of a layer it
    removes or renames. The incremental analysis starts from them (``analyse(previous=,
    touched=)``). None for an op this does not know: analyse everything."""
    if isinstance(op, (AddNode, SetArg)):
        return {op.name}
    if isinstance(op, SetTrainable):
        return set(op.names)  # their weights move between trainable and non-trainable
    if isinstance(op, SetOutputs):
        return {r.node for r in (*design.outputs, *op.outputs)}
    if isinstance(op, RemoveNode):
        return {op.name} | {n for n, _c, _s in design.consumers(op.name)}
    if isinstance(op, RestoreNode):
        return {op.node.name, *(c[0] for c in op.consumers)}
    if isinstance(op, (Connect, Disconnect)):
        return {op.target}
    if isinstance(op, Rename):
        return {op.old, op.new} | {n for n, _c, _s in design.consumers(op.old)}
    if isinstance(op, (Move, Arrange, SetGroup, SetNodeGroup, SetSearch)):
        return set()  # where cards are drawn and how they are grouped: no analysis reads it
    return None


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


def default_args(kind: str, input_range: PixelRange | None = None) -> dict[str, Any]:
    """Arguments a freshly dropped layer starts with: its required ones, set to sensible values;
    with the data's ``input_range``, a Rescaling or augmentation that fits it (see
    :func:`engine.pixel_range.starting_args`)."""
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
    if input_range is not None:
        args.update(starting_args(kind, input_range))
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


def plan_delete(design: Design, names: list[str], edges: Sequence[tuple[TensorRef, str, int]] = ()) -> list[Op]:
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
    """The ops of a one-click fix the analysis offered for a problem of ``node`` (the fix acts
    on ``fix.node`` instead when it names another layer). A SET_PIXEL_RANGE fix edits the data,
    not the design: :class:`ValueError` (whoever holds the training settings applies it)."""
    node = fix.node or node
    if fix.action == FixAction.SET_ARG:
        if fix.value is None:
            return [SetArg(node, fix.arg or "", None, unset=True)]
        return [SetArg(node, fix.arg or "", fix.value)]
    if fix.action == FixAction.INSERT_BEFORE:
        target = design.node(node)
        source = target.inputs[fix.input_index]
        pos = _between(design, source.node, node)
        return plan_insert_on_edge(design, fix.layer or "", source, node, 0, pos, dict(fix.layer_args))
    if fix.action == FixAction.REMOVE_LAYER:
        return plan_delete(design, [node])
    if fix.action == FixAction.RENAME:
        return [Rename(node, str(fix.value))]
    if fix.action == FixAction.SET_PIXEL_RANGE:
        raise ValueError("this fix changes the training data's pixel range, not the design; "
                         "set it in the training settings")
    raise ValueError(f"unknown fix action {fix.action!r}")


def _between(design: Design, a: str, b: str) -> tuple[float, float] | None:
    pa, pb = design.nodes[a].position, design.nodes[b].position
    if pa is None or pb is None:
        return None
    return ((pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2)


def plan_paste(design: Design, nodes: list[Node],
               offset: tuple[float, float] = (40.0, 40.0)) -> tuple[list[Op], list[str]]:
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
    frozen = tuple(renames[n.name] for n in nodes if not n.trainable)
    if frozen:  # a frozen layer pastes frozen
        ops.append(SetTrainable(frozen, False))
    return ops, [renames[n.name] for n in nodes]


def plan_set_trainable(design: Design, names: Sequence[str], trainable: bool) -> list[Op]:
    """Freeze (``trainable`` False) or unfreeze the layers ``names``, in design order: one
    :class:`SetTrainable` for those whose flag changes, none when none does. An unknown name is
    a :class:`DesignError`."""
    for name in names:
        design.node(name)
    wanted = set(names)
    changing = tuple(n for n, node in design.nodes.items() if n in wanted and node.trainable != trainable)
    return [SetTrainable(changing, trainable)] if changing else []


# --- where a new layer goes, and what may connect ------------------------------------------------
#
# The graph rules of the canvas live here, so that a drop from the palette, a double-click in it
# and a drawn connection follow the same rules, testable without Qt: the canvas only says what is
# under the pointer and pushes the plan it gets back.

ROW = Y_SPACING  # how far below the layer it reads a new layer is placed, as the auto-layout does

Point = tuple[float, float]


@dataclass(frozen=True)
class OnEdge:
    """Place on the connection ``source → target`` (call ``call``): the layer is inserted into it."""

    source: TensorRef
    target: str
    call: int = 0


@dataclass(frozen=True)
class OnNode:
    """Place on a layer: the new layer is appended after it (and feeds what it fed)."""

    name: str


PlaceTarget = OnEdge | OnNode | Point


class EditRefused(DesignError):
    """A gesture the graph rules refuse; the message says why, for the status bar."""


@dataclass(frozen=True)
class Plan:
    """A compound edit ready to push as one undo step: its ``text``, its ``ops``, the layer it
    creates (``name``, if any) and a ``note`` worth telling the user (what was replaced)."""

    text: str
    ops: list[Op]
    name: str | None = None
    note: str | None = None


def attaches(kind: str) -> bool:
    """Whether a ``kind`` layer placed on an edge or a layer attaches to it (an input layer,
    which nothing feeds, and an unknown kind do not)."""
    return canonical_kind(kind) not in (None, "InputLayer")


def plan_place(design: Design, kind: str, target: PlaceTarget | None, near: Point | None = None,
               input_range: PixelRange | None = None) -> Plan:
    """Add a ``kind`` layer at ``target``: on an edge it is inserted into it, on a layer it is
    appended after it, at a point it stands alone. An input layer always stands alone (nothing
    feeds it), at ``near`` or beside its target. Layers below the new one move down a row when
    it would cover them. ``near`` is where the pointer is, if anywhere; a position is given only
    when one can be worked out. The layer's arguments fit the data's ``input_range`` when given
    (:func:`default_args`). :class:`EditRefused` for an unknown kind or target."""
    canonical = canonical_kind(kind)
    if canonical is None:
        raise EditRefused(f"Convas does not know the layer type {kind!r}")
    args = default_args(canonical, input_range)
    if not attaches(canonical) and isinstance(target, (OnEdge, OnNode)):
        target = near if near is not None else _beside(design, target)
    if isinstance(target, OnEdge):
        source, reader = design.node(target.source.node), design.node(target.target)
        if target.source not in (reader.inbound[target.call] if target.call < reader.calls else []):
            raise EditRefused(f"{target.source} does not feed {target.target}")
        at = _on_edge_position(source, reader, near)
        ops = plan_insert_on_edge(design, canonical, target.source, target.target, target.call, at, args)
        if at is not None:
            ops += _room_below(design, at[1], [target.target])
        return Plan(f"Insert {canonical}", ops, _added(ops))
    if isinstance(target, OnNode):
        after = design.node(target.name)
        at = (after.position[0], after.position[1] + ROW) if after.position is not None else near
        ops = plan_append_after(design, canonical, target.name, at, args)
        if at is not None:
            ops += _room_below(design, at[1], sorted({n for n, _c, _s in design.consumers(target.name)}))
        return Plan(f"Add {canonical} after {target.name}", ops, _added(ops))
    point = None if target is None else (float(round(target[0])), float(round(target[1])))
    ops = plan_add(design, canonical, point, args)
    return Plan(f"Add {canonical}", ops, _added(ops))


def _added(ops: list[Op]) -> str:
    first = ops[0]
    assert isinstance(first, AddNode)
    return first.name


def _beside(design: Design, target: OnEdge | OnNode) -> Point | None:
    """Where a layer that cannot attach to ``target`` goes without a pointer: to its right."""
    name = target.name if isinstance(target, OnNode) else target.target
    position = design.node(name).position
    return None if position is None else (position[0] + 2 * ROW, position[1])


def _on_edge_position(source: Node, reader: Node, near: Point | None) -> Point | None:
    """Under the source, at least a row down; a straight chain stays straight."""
    if source.position is None or reader.position is None:
        return None if near is None else (float(round(near[0])), float(round(near[1])))
    x, y = near if near is not None else ((source.position[0] + reader.position[0]) / 2, source.position[1])
    if abs(source.position[0] - reader.position[0]) < 1:
        x = source.position[0]
    y = max(y, source.position[1] + ROW)
    return (float(round(x)), float(round(y)))


def _room_below(design: Design, y: float, heads: list[str]) -> list[Op]:
    """The op that pushes ``heads`` and everything they feed down, so they start a row below ``y``
    (keeping the subgraph's shape); nothing when there is room already."""
    ys = [p[1] for h in heads if (p := design.nodes[h].position) is not None]
    if not ys or min(ys) >= y + ROW:
        return []
    shift = y + ROW - min(ys)
    readers: dict[str, set[str]] = {}
    for node in design:
        for refs in node.inbound:
            for r in refs:
                readers.setdefault(r.node, set()).add(node.name)
    moved = set(heads)
    queue = deque(heads)
    while queue:
        for reader in readers.get(queue.popleft(), ()):
            if reader not in moved:
                moved.add(reader)
                queue.append(reader)
    # One op for them all: pushing 500 cards down is one signal to the canvas, not 500.
    shifted = tuple((name, (p[0], p[1] + shift)) for name, node in design.nodes.items()
                    if name in moved and (p := node.position) is not None)
    # A group's card goes down with its layers.
    groups = {g for name in moved for g in design.groups_of(name)}
    cards = tuple((g, (p[0], p[1] + shift)) for g in sorted(groups)
                  if (p := design.groups[g].position) is not None)
    return [Arrange(shifted, cards)] if shifted else []


def connection_refused(design: Design, source: str, target: str) -> str | None:
    """Why ``source`` may not feed ``target``, or None when it may. The rules: no layer feeds
    itself, nothing feeds an input layer, a connection exists once, and the graph has no loops.
    (A layer that takes one input and has it may still be fed: :func:`plan_connect` replaces it.)"""
    node = design.node(target)
    design.node(source)
    spec = CATALOGUE.get(node.kind)
    limit = spec.max_inputs if spec is not None else None
    if source == target:
        return f"{source} cannot feed itself"
    if node.kind == "InputLayer" or limit == 0:
        return f"{target} is an input layer: data enters the model there, so no layer can feed it"
    if TensorRef(source, 0) in node.inputs:
        return f"{source} already feeds {target}"
    if feeds(design, target, source):
        return f"{target} already feeds {source}; connecting {source} → {target} would make a loop"
    if limit is not None and limit > 1 and len(node.inputs) >= limit:
        return f"{target} ({node.kind}) takes {limit} inputs and has them all; remove a connection first"
    return None


def plan_connect(design: Design, source: str, target: str) -> Plan:
    """Feed ``source`` into ``target``; a layer that takes one input has it replaced in the same
    edit (the plan's ``note`` says so). :class:`EditRefused` says why a connection is not allowed."""
    why = connection_refused(design, source, target)
    if why is not None:
        raise EditRefused(why)
    node = design.node(target)
    spec = CATALOGUE.get(node.kind)
    ref = TensorRef(source, 0)
    text = f"Connect {source} → {target}"
    if spec is not None and spec.max_inputs == 1 and node.inputs:
        old = list(node.inputs)
        ops: list[Op] = [Disconnect(r, target) for r in old]
        ops.append(Connect(ref, target, 0, 0))
        return Plan(text, ops, note=f"{target} now reads {source} instead of {', '.join(str(r) for r in old)}")
    return Plan(text, [Connect(ref, target)])


def plan_rename(design: Design, old: str, new: str) -> Plan:
    """Rename ``old`` to ``new`` as a person typed it: :class:`EditRefused` when ``new`` is taken,
    empty, or breaks the layer-name rule (:func:`engine.design.name_problem`, whose message
    suggests the name to use). A file may bring such names; a person does not type new ones."""
    design.node(old)
    try:
        design.check_new_name(new)
    except DesignError as exc:
        raise EditRefused(str(exc)) from None
    why = name_problem(new)
    if why is not None:
        raise EditRefused(why)
    return Plan(f"Rename {old} → {new}", [Rename(old, new)], new)


def feeds(design: Design, upstream: str, downstream: str) -> bool:
    """True when ``upstream``'s output reaches ``downstream`` through the design (iterative)."""
    nodes = design.nodes
    seen = {downstream}
    queue = deque([downstream])
    while queue:
        node = nodes.get(queue.popleft())
        if node is None:
            continue
        for refs in node.inbound:
            for r in refs:
                if r.node == upstream:
                    return True
                if r.node not in seen:
                    seen.add(r.node)
                    queue.append(r.node)
    return False
