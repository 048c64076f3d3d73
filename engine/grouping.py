"""Plans that group layers, ungroup them, collapse and expand groups, and what a group adds up to.

A :class:`~engine.design.Group` only changes how a design is shown. Each plan here returns the
engine ops (:mod:`engine.editing`) that the designer pushes as one undo step; collapsing or
expanding a group also lays the design out again (:func:`engine.layout.design_layout`), in the
same step, so that the cards make room for what is now shown.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from .analysis import Analysis
from .design import Design, DesignError, Group, GroupKind, TensorRef, name_problem
from .editing import Arrange, Op, SetGroup, SetNodeGroup
from .freezing import FreezeSummary
from .layout import design_layout
from .shapes import Shape


def arrange(design: Design) -> Arrange:
    """The op that lays ``design`` out as it is shown (for a design whose groups just changed,
    apply the group ops to a copy first: see :func:`_with_layout`)."""
    nodes, groups = design_layout(design)
    return Arrange(tuple(nodes.items()), tuple((g, p) for g, p in groups.items() if g in design.groups))


def _with_layout(design: Design, ops: list[Op]) -> list[Op]:
    """``ops`` followed by the layout of the design they make."""
    from .editing import apply_all

    trial = _trial_copy(design) if all(isinstance(op, (SetGroup, SetNodeGroup)) for op in ops) else design.copy()
    apply_all(trial, ops)
    return [*ops, arrange(trial)]


def _trial_copy(design: Design) -> Design:
    """A copy of ``design`` that group ops may change without touching it: those only rebind a
    layer's ``group`` and the entries of ``groups`` (a :class:`Group` is frozen), so the layers
    are copied shallowly and their arguments, connections and configs are shared. Far cheaper
    than a deep copy of a 1,000-layer design."""
    trial = copy.copy(design)
    trial.nodes = {name: copy.copy(node) for name, node in design.nodes.items()}
    trial.groups = dict(design.groups)
    trial.outputs = list(design.outputs)
    trial.inputs_order = list(design.inputs_order)
    trial._name_counters = dict(design._name_counters)
    return trial


def group_problem(design: Design, name: str) -> str | None:
    """Why ``name`` cannot name a new group, or None."""
    if not name.strip():
        return "a group needs a name"
    if name in design.groups:
        return f"a group named {name!r} already exists; choose another name"
    return name_problem(name)


def common_group(design: Design, names: Iterable[str]) -> str | None:
    """The innermost group holding every layer of ``names`` (None: the top level)."""
    chains = [design.groups_of(n) for n in names]
    if not chains:
        return None
    shared = set(chains[0]).intersection(*map(set, chains[1:]))
    return next((g for g in chains[0] if g in shared), None)


def plan_group(design: Design, names: Sequence[str], group: str, *, collapsed: bool = False,
               kind: GroupKind = GroupKind.USER) -> list[Op]:
    """Put the layers ``names`` into a new group ``group`` inside their innermost common group.
    Layers in a sub-group of that common group take the whole sub-group with them."""
    why = group_problem(design, group)
    if why:
        raise DesignError(why)
    if not names:
        raise DesignError("select the layers to group first")
    parent = common_group(design, names)
    ops: list[Op] = [SetGroup(group, Group(group, kind, parent, collapsed))]
    moved_groups: list[str] = []
    for name in dict.fromkeys(names):
        chain = design.groups_of(name)
        # The group directly below ``parent`` on this layer's chain moves as a whole.
        below = chain[: chain.index(parent)] if parent in chain else chain
        if below:
            if below[-1] not in moved_groups:
                moved_groups.append(below[-1])
        else:
            ops.append(SetNodeGroup(name, group))
    for sub in moved_groups:
        ops.append(SetGroup(sub, replace(design.groups[sub], parent=group)))
    return _with_layout(design, ops) if collapsed else ops


def plan_ungroup(design: Design, group: str) -> list[Op]:
    """Dissolve ``group``: its layers and sub-groups move to the group that held it."""
    if group not in design.groups:
        raise DesignError(f"there is no group named {group!r}")
    parent = design.groups[group].parent
    ops: list[Op] = [SetNodeGroup(n, parent) for n in design.group_members(group, nested=False)]
    ops += [SetGroup(sub, replace(design.groups[sub], parent=parent)) for sub in design.child_groups(group)]
    ops.append(SetGroup(group, None))
    return _with_layout(design, ops) if design.groups[group].collapsed else ops


def plan_collapse(design: Design, groups: Iterable[str], collapsed: bool) -> list[Op]:
    """Collapse (or expand) ``groups`` and lay the design out again, as one step; [] when
    nothing changes."""
    ops: list[Op] = []
    for name in dict.fromkeys(groups):
        if name not in design.groups:
            raise DesignError(f"there is no group named {name!r}")
        group = design.groups[name]
        if group.collapsed != collapsed:
            ops.append(SetGroup(name, replace(group, collapsed=collapsed)))
    return _with_layout(design, ops) if ops else []


def plan_reveal(design: Design, layer: str) -> list[Op]:
    """Expand every collapsed group around ``layer`` so that its own card shows ([] if it does)."""
    hidden = [g for g in design.groups_of(layer) if design.groups[g].collapsed]
    return plan_collapse(design, hidden, False)


@dataclass(frozen=True)
class GroupSummary(FreezeSummary):
    """What a group adds up to, for its collapsed card: its layers, parameters, MACs and frozen
    layers (:class:`engine.freezing.FreezeSummary`), the shapes entering and leaving it (one per
    distinct tensor), and how many problems its layers have."""

    inputs: tuple[Shape | None, ...] = ()
    outputs: tuple[Shape | None, ...] = ()
    errors: int = 0


def group_summary(design: Design, analysis: Analysis, group: str) -> GroupSummary:
    """Sum up ``group`` (its sub-groups included) from ``analysis``."""
    return group_summaries(design, analysis, [group])[group]


def group_summaries(design: Design, analysis: Analysis, groups: Iterable[str]) -> dict[str, GroupSummary]:
    """:func:`group_summary` of each of ``groups`` (those of the design), reading the design
    once for all of them: refreshing the cards of 60 groups of a 1,000-layer design walks its
    connections once, not 60 times."""
    wanted = [g for g in dict.fromkeys(groups) if g in design.groups]
    if not wanted:
        return {}
    targets = set(wanted)
    # The wanted groups each layer is in (its chain of groups, innermost first).
    chains: dict[str | None, tuple[str, ...]] = {None: ()}
    within: dict[str, tuple[str, ...]] = {}
    for node in design.nodes.values():
        chain = chains.get(node.group)
        if chain is None:
            chain = chains[node.group] = tuple(g for g in design.group_chain(node.group) if g in targets)
        within[node.name] = chain
    members: dict[str, list[str]] = {g: [] for g in wanted}
    for name, chain in within.items():
        for g in chain:
            members[g].append(name)
    entering: dict[str, dict[TensorRef, None]] = {g: {} for g in wanted}
    leaving: dict[str, dict[TensorRef, None]] = {g: {} for g in wanted}
    # A connection enters every group its target is in and its source is not, and leaves every
    # group its source is in and its target is not; both in the order the old walk met them:
    # entries in the group's layer order, exits in the consumers' order.
    exits: list[tuple[str, TensorRef, tuple[str, ...]]] = []
    for node in design.nodes.values():
        inner = within[node.name]
        for refs in node.inbound:
            for ref in refs:
                outer = within.get(ref.node, ())
                if inner:
                    for g in inner:
                        if g not in outer:
                            entering[g][ref] = None
                if outer:
                    exits.append((node.name, ref, tuple(g for g in outer if g not in inner)))
    for _target, ref, left in exits:
        for g in left:
            leaving[g][ref] = None
    for ref in design.output_refs():
        for g in within.get(ref.node, ()):
            leaving[g][ref] = None
    inputs = design.input_names()

    def shape(ref: TensorRef) -> Shape | None:
        report = analysis.nodes.get(ref.node)
        if report is None or ref.call >= len(report.output_shapes):
            return None
        return report.output_shapes[ref.call]

    found: dict[str, GroupSummary] = {}
    for g in wanted:
        inside = members[g]
        entries = entering[g]
        if not entries:  # a group holding the model's inputs: they are what enters it
            held = set(inside)
            entries = {TensorRef(name): None for name in inputs if name in held}
        reports = [analysis.nodes[n] for n in inside if n in analysis.nodes]
        found[g] = GroupSummary(
            layers=len(inside),
            inputs=tuple(shape(r) for r in entries),
            outputs=tuple(shape(r) for r in leaving[g]),
            trainable_params=sum(r.trainable_params for r in reports),
            non_trainable_params=sum(r.non_trainable_params for r in reports),
            macs=sum(r.macs for r in reports),
            errors=sum(len(r.errors) for r in reports),
            frozen=sum(1 for n in inside if not design.nodes[n].trainable),
        )
    return found
