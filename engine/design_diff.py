"""What differs between two designs, and the edit that turns one into the other.

A sweep's trial is a design of its own (:func:`engine.sweep.trial_design`); the Sweep panel
shows what differs from the current design (:func:`differences`, :func:`training_differences`)
and its **Apply** makes the current design equal to the trial's in one undo step
(:func:`plan_become`). The plan is made of the ordinary ops of :mod:`engine.editing`, so undo is
exact by construction, and it is small: where only arguments differ, it is only ``SetArg`` ops,
so the canvas redraws only those cards.

"Equal" means equal in everything :func:`engine.project_file.design_to_dict` writes: layers and
their order, kinds, arguments, configuration, connections, positions, groups (and their order),
trainable flags, search ranges, declared outputs and input order. The design's *name* is left
alone: no op changes it (a trial's design carries the project's name anyway).
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import math
from collections.abc import Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Any

from .design import Design, Group, Node, TensorRef
from .editing import (
    AddNode, Arrange, Connect, Disconnect, Op, RemoveNode, RestoreNode, SetArg, SetGroup,
    SetNodeGroup, SetOutputs, SetSearch, SetTrainable, apply_op,
)
from .errors import ConvasError
from .training import TrainingSettings

MAX_LINES = 30  # lines of differences shown before "… and N more"


# --- equality as the file sees it ---------------------------------------------------------------

def same(a: Any, b: Any) -> bool:
    """Whether two argument values are written the same by the project file: equal, of the same
    type (``1``, ``1.0`` and ``True`` differ), a tuple the same as the list it is written as."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _same_group(a: Group, b: Group) -> bool:
    return a == b and same(a.origin, b.origin)  # origin takes no part in Group equality


def _longest_increasing(keys: Sequence[int]) -> set[int]:
    """Indices into ``keys`` of one longest strictly increasing subsequence (patience sort)."""
    tails: list[int] = []  # index into keys of the smallest tail of each length
    back: list[int | None] = [None] * len(keys)
    tail_keys: list[int] = []
    for i, k in enumerate(keys):
        j = bisect.bisect_left(tail_keys, k)
        back[i] = tails[j - 1] if j > 0 else None
        if j == len(tails):
            tails.append(i)
            tail_keys.append(k)
        else:
            tails[j] = i
            tail_keys[j] = k
    chosen: set[int] = set()
    at = tails[-1] if tails else None
    while at is not None:
        chosen.add(at)
        at = back[at]
    return chosen


# --- the plan -----------------------------------------------------------------------------------

class _Planner:
    """Builds the ops on a scratch copy of the design, so that every index and slot an op holds
    is the one it will meet when the ops run in order."""

    def __init__(self, current: Design, target: Design) -> None:
        self.work = current.copy()
        self.target = target
        self.ops: list[Op] = []

    def emit(self, op: Op) -> None:
        # A RestoreNode puts its very layer object in the design: the scratch copy gets its own.
        apply_op(self.work, copy.deepcopy(op) if isinstance(op, RestoreNode) else op)
        self.ops.append(op)

    # Which layers stay (are edited in place) and which are removed and added again.
    def stable_nodes(self, keep: bool) -> list[str]:
        if not keep:
            return []
        work, target = self.work, self.target
        candidates = []
        for name, node in work.nodes.items():
            other = target.nodes.get(name)
            if (other is None or other.kind != node.kind or not same(node.config, other.config)
                    or other.calls != node.calls
                    or (name in work.inputs_order) != (name in target.inputs_order)):
                continue
            candidates.append(name)
        order = {name: i for i, name in enumerate(target.nodes)}
        chosen = _longest_increasing([order[n] for n in candidates])
        stable = [n for i, n in enumerate(candidates) if i in chosen]
        # Stable input layers must already stand in the target's input order.
        inputs = [n for n in work.inputs_order if n in set(stable)]
        where = {n: i for i, n in enumerate(target.inputs_order)}
        keep_inputs = _longest_increasing([where[n] for n in inputs])
        dropped = {n for i, n in enumerate(inputs) if i not in keep_inputs}
        if len(set(work.inputs_order)) != len(work.inputs_order):
            dropped |= set(work.inputs_order)  # a repeated entry: rebuild those layers
        return [n for n in stable if n not in dropped]

    def stable_groups(self, keep: bool) -> list[str]:
        """Groups kept in place: those at the start of both designs' group order. A group added
        goes after all others, and one removed comes back after all others on undo, so the
        groups after the first that differs are removed and added again: that keeps both the
        plan and its undo exact."""
        if not keep:
            return []
        stable: list[str] = []
        for mine, wanted in zip(self.work.groups, self.target.groups):
            if mine != wanted:
                break
            stable.append(mine)
        return stable

    def plan(self, keep: bool) -> list[Op]:
        work, target = self.work, self.target
        stable = self.stable_nodes(keep)
        stable_set = set(stable)
        kept_groups = set(self.stable_groups(keep))

        # 1. Layers that do not stay go (their connections and outputs with them).
        for name in [n for n in work.nodes if n not in stable_set]:
            self.emit(RemoveNode(name))
        # 2. Layers leave the groups that go; those groups' sub-groups that stay leave them too.
        for name in stable:
            holder = work.nodes[name].group
            if holder is not None and holder not in kept_groups:
                self.emit(SetNodeGroup(name, None))
        for name in list(work.groups):
            group: Group = work.groups[name]
            if name in kept_groups and group.parent is not None and (
                    group.parent not in kept_groups or group.parent != target.groups[name].parent):
                self.emit(SetGroup(name, replace(group, parent=None)))
        # 3. Groups that go: first out of their parents, then last first (so that undo puts
        #    them back in their order).
        doomed = [g for g in work.groups if g not in kept_groups]
        for name in doomed:
            if work.groups[name].parent is not None:
                self.emit(SetGroup(name, replace(work.groups[name], parent=None)))
        for name in reversed(doomed):
            self.emit(SetGroup(name, None))
        # 4. New groups, in the target's order, at the top level for now; then every group's
        #    final value, outer groups first so that a parent is always final before its children.
        for name, wanted in target.groups.items():
            if name not in work.groups:
                self.emit(SetGroup(name, replace(copy.deepcopy(wanted), parent=None)))
        depth = {g: len(target.group_chain(g)) for g in target.groups}
        for name in sorted(target.groups, key=lambda g: depth[g]):
            if not _same_group(work.groups[name], target.groups[name]):
                self.emit(SetGroup(name, copy.deepcopy(target.groups[name])))
        # 5. New layers, each at its place in the target's order (and in its input order).
        node: Node
        for index, (name, node) in enumerate(target.nodes.items()):
            if name in stable_set:
                continue
            inbound: list[list[TensorRef]] = [[] for _ in node.inbound]
            in_inputs = name in target.inputs_order
            if index >= len(work.nodes) and len(inbound) == 1 and not in_inputs:
                self.emit(AddNode(node.kind, name, copy.deepcopy(node.args), node.position,
                                  copy.deepcopy(node.config)))
                continue
            input_order = None
            if in_inputs:
                where = {n: i for i, n in enumerate(target.inputs_order)}
                place = where[name]
                input_order = sum(1 for n in work.inputs_order if where.get(n, -1) < place)
            fresh = Node(name, node.kind, copy.deepcopy(node.args), inbound, node.position,
                         copy.deepcopy(node.config))
            self.emit(RestoreNode(fresh, index, (), (), input_order))
        # 6. Each layer's arguments, groups, ranges and connections.
        for name, node in target.nodes.items():
            mine = work.nodes[name]
            for arg in list(mine.args):
                if arg not in node.args:
                    self.emit(SetArg(name, arg, None, unset=True))
            for arg, value in node.args.items():
                if arg not in mine.args or not same(mine.args[arg], value):
                    self.emit(SetArg(name, arg, copy.deepcopy(value)))
        for name, node in target.nodes.items():
            if work.nodes[name].group != node.group:
                self.emit(SetNodeGroup(name, node.group))
        for name, node in target.nodes.items():
            mine = work.nodes[name]
            for arg in [*mine.search, *(a for a in node.search if a not in mine.search)]:
                if mine.search.get(arg) != node.search.get(arg):
                    self.emit(SetSearch(name, arg, node.search.get(arg)))
        for name, node in target.nodes.items():
            for call, refs in enumerate(node.inbound):
                self.rewire(name, call, refs)
        # 7. Flags, places, outputs.
        for flag in (False, True):
            names = tuple(n for n, node in target.nodes.items()
                          if node.trainable is flag and work.nodes[n].trainable is not flag)
            if names:
                self.emit(SetTrainable(names, flag))
        moves = tuple((n, node.position) for n, node in target.nodes.items()
                      if not same(work.nodes[n].position, node.position))
        if moves:
            self.emit(Arrange(moves))
        if work.outputs != target.outputs:
            self.emit(SetOutputs(tuple(target.outputs)))
        return self.ops

    def rewire(self, name: str, call: int, wanted: list[TensorRef]) -> None:
        """Make call ``call`` of ``name`` read ``wanted``: keep the readings both share at the
        front, disconnect the rest and connect the new ones after them. A disconnect removes the
        first matching reading (and so does the undo of a connect), so each new reading is put
        in front of the others it may repeat, and the front is kept only when neither the old
        nor the new rest repeats a reading of it: then undo is exact even for ``Add(x, x)``."""
        refs = self.work.nodes[name].inbound[call]
        if refs == wanted:
            return
        keep = 0
        while keep < min(len(refs), len(wanted)) and refs[keep] == wanted[keep]:
            keep += 1
        if (set(refs[keep:]) | set(wanted[keep:])) & set(refs[:keep]):
            keep = 0
        for ref in list(refs[keep:]):
            self.emit(Disconnect(ref, name, call))
        for ref in reversed(wanted[keep:]):
            self.emit(Connect(ref, name, call, keep))


def _written(design: Design) -> Any:
    from .project_file import design_to_dict

    data = design_to_dict(design)
    data.pop("name", None)
    return data


def plan_become(current: Design, target: Design) -> list[Op]:
    """The ops that turn ``current`` into a design equal to ``target`` in everything the
    project file writes except the design's name (see the module docstring), to push as one
    undo step. Small: layers both hold with the same kind, configuration and number of calls
    stay and are edited in place (``SetArg``, ``Connect``/``Disconnect``, ``SetSearch``,
    ``SetTrainable``, ``SetNodeGroup``, one ``Arrange``); others are removed and added at their
    place in order (``RemoveNode``; ``AddNode`` at the end, ``RestoreNode`` of a fresh layer
    elsewhere); groups are changed with ``SetGroup``; ``SetOutputs`` last.

    A plan is made for one design: run it once (its ``RestoreNode`` ops carry new layer objects
    that become part of that design). Neither design is changed. :class:`ConvasError` when no
    plan can reach ``target`` (a design holding something no op can make)."""
    goal = None
    with contextlib.suppress(ConvasError):  # a value the file cannot write: trust the plan
        goal = _written(target)
    for keep in (True, False):
        planner = _Planner(current, target)
        try:
            ops = planner.plan(keep)
        except (ConvasError, KeyError, IndexError, ValueError):
            continue
        try:
            if goal is None or _written(planner.work) == goal:
                return ops
        except ConvasError:
            return ops
    raise ConvasError("the trial's design cannot be made from the current one by editing it; "
                      "open the trial's design as a new project instead")


# --- differences, in words ----------------------------------------------------------------------

def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple) and value and all(v == value[0] for v in value):
        return _value(value[0]) if len(value) in (2, 3) and isinstance(value[0], int) else str(value)
    if isinstance(value, str):
        return value
    return repr(value)


def _limited(lines: list[str], limit: int) -> list[str]:
    if len(lines) <= limit:
        return lines
    return lines[:limit] + [f"… and {len(lines) - limit} more"]


def _refs(refs: Sequence[TensorRef]) -> str:
    return ", ".join(str(r) for r in refs) if refs else "nothing"


def differences(current: Design, target: Design, limit: int = MAX_LINES) -> list[str]:
    """Short lines for people saying what differs from ``current`` to ``target``:
    ``conv2d.filters: 32 → 48``, ``+ conv2d_r2 (Conv2D)``, ``− dropout (Dropout)``,
    ``conv2d_1 reads conv2d_r2``, at most ``limit`` of them and then "… and N more". Layer
    places are not mentioned (they change with every layout); an empty list: nothing differs."""
    lines: list[str] = []
    for name, node in current.nodes.items():
        other = target.nodes.get(name)
        if other is None or other.kind != node.kind:
            lines.append(f"− {name} ({node.kind})")
    for name, node in target.nodes.items():
        other = current.nodes.get(name)
        if other is None or other.kind != node.kind:
            lines.append(f"+ {name} ({node.kind})")
    for name, node in target.nodes.items():
        mine = current.nodes.get(name)
        added = mine is None or mine.kind != node.kind
        if not added:
            assert mine is not None
            for arg in [*mine.args, *(a for a in node.args if a not in mine.args)]:
                if arg not in node.args:
                    lines.append(f"{name}.{arg}: {_value(mine.args[arg])} → default")
                elif arg not in mine.args:
                    lines.append(f"{name}.{arg}: default → {_value(node.args[arg])}")
                elif not same(mine.args[arg], node.args[arg]):
                    lines.append(f"{name}.{arg}: {_value(mine.args[arg])} → {_value(node.args[arg])}")
            if not same(mine.config, node.config):
                lines.append(f"{name}: other Keras settings differ")
            if mine.trainable != node.trainable:
                lines.append(f"{name}: {'trainable' if node.trainable else 'frozen'}")
            if mine.search != node.search:
                lines.append(f"{name}: search ranges differ")
        mine_inbound = [] if added or mine is None else mine.inbound
        if added or mine_inbound != node.inbound:
            for call, refs in enumerate(node.inbound):
                before = mine_inbound[call] if call < len(mine_inbound) else None
                if refs and refs != before:
                    where = f"{name}[{call}]" if node.calls > 1 else name
                    lines.append(f"{where} reads {_refs(refs)}")
    for name in current.groups:
        if name not in target.groups:
            lines.append(f"− group {name}")
    for name, group in target.groups.items():
        old = current.groups.get(name)
        if old is None:
            lines.append(f"+ group {name}")
        elif old.repeats != group.repeats:
            lines.append(f"group {name} repeats: {old.repeats.describe() if old.repeats else 'fixed'} → "
                         f"{group.repeats.describe() if group.repeats else 'fixed'}")
    if current.outputs != target.outputs:
        lines.append(f"outputs: {_refs(current.outputs) if current.outputs else 'every unread tensor'} → "
                     f"{_refs(target.outputs) if target.outputs else 'every unread tensor'}")
    return _limited(lines, limit)


def training_differences(a: TrainingSettings, b: TrainingSettings, limit: int = MAX_LINES) -> list[str]:
    """Lines like ``learning rate: 0.001 → 0.0031``, ``batch size: 32 → 64``, ``optimizer: adam
    → sgd`` for each training setting that differs (search ranges aside)."""
    lines: list[str] = []
    if is_dataclass(a.config) and type(a.config) is type(b.config):
        for f in fields(a.config):
            old, new = getattr(a.config, f.name), getattr(b.config, f.name)
            if not same(old, new):
                lines.append(f"{f.name.replace('_', ' ')}: {_text(old)} → {_text(new)}")
    for f in fields(a):
        if f.name in ("config", "search"):
            continue
        old, new = getattr(a, f.name), getattr(b, f.name)
        if not same(old, new):
            lines.append(f"{f.name.replace('_', ' ')}: {_text(old)} → {_text(new)}")
    return _limited(lines, limit)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(getattr(value, "value", None), str):
        return str(value.value)  # an enum
    if isinstance(value, str):
        return value
    return repr(value) if not hasattr(value, "__dataclass_fields__") else type(value).__name__
