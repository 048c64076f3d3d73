"""Repeating a group of layers in a chain: what a sweep's ``group:<name>:repeats`` value means.

A group that reads one tensor from outside (its *entry*) and gives one tensor to the rest of the
design (its *exit*) can be stacked: copy 2 reads copy 1's exit where the original read the entry,
copy 3 reads copy 2's, and whatever read the group's exit reads the last copy's. That is how a
"conv block" or a residual block is deepened. :func:`repeat_problem` says why a group cannot be
stacked (in words, with the fix); :func:`repeat_group` builds the stacked design.

Only the structure is checked here: whether the copies' shapes fit (a block that halves the
image cannot repeat forever) is the analysis' job, which reports it like any other problem.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from .design import Design, Group, Node, TensorRef
from .errors import ConvasError
from .layout import apply_design_layout


def _members(design: Design, group: str) -> list[str]:
    return design.group_members(group, nested=True)


def _entry_and_exit(design: Design, members: list[str]) -> tuple[list[TensorRef], list[TensorRef]]:
    """The distinct tensors the layers ``members`` read from outside, and the distinct tensors
    of theirs that layers outside (or the design's outputs) read, each in design order."""
    inside = set(members)
    entries: dict[TensorRef, None] = {}
    for name in members:
        for refs in design.nodes[name].inbound:
            for ref in refs:
                if ref.node not in inside:
                    entries[ref] = None
    exits: dict[TensorRef, None] = {}
    for node in design.nodes.values():
        if node.name in inside:
            continue
        for refs in node.inbound:
            for ref in refs:
                if ref.node in inside:
                    exits[ref] = None
    for ref in design.output_refs():
        if ref.node in inside:
            exits[ref] = None
    return list(entries), list(exits)


def _listed(refs: list[TensorRef]) -> str:
    shown = [str(r) for r in refs[:4]]
    more = f" and {len(refs) - 4} more" if len(refs) > 4 else ""
    return ", ".join(shown) + more


def repeat_problem(design: Design, group: str) -> str | None:
    """Why the layers of ``group`` cannot be repeated in a chain, as a sentence with the fix;
    None when they can. The group must read exactly one tensor from outside (several of its
    layers may read it, as a residual block does), give exactly one tensor to the layers outside
    it or the design's outputs, and hold no input layer and no shared (multi-call) layer."""
    if group not in design.groups:
        return f"there is no group named {group!r} to repeat"
    members = _members(design, group)
    if not members:
        return f"the group {group!r} holds no layers, so there is nothing to repeat; put layers in it"
    for name in members:
        node = design.nodes[name]
        if node.kind == "InputLayer":
            return (f"the group {group!r} holds the input layer {name!r}; a repeated group must take "
                    f"its input from a layer outside it, so move {name!r} out of the group")
        if node.calls > 1:
            return (f"the group {group!r} holds {name!r}, a shared layer applied {node.calls} times; "
                    "a repeated group cannot hold a shared layer, so move it out or unshare it")
    entries, exits = _entry_and_exit(design, members)
    if not entries:
        return (f"the group {group!r} reads nothing from outside it; a repeated group must read "
                "exactly one tensor from a layer outside it, so connect one to it")
    if len(entries) > 1:
        return (f"the group {group!r} reads {len(entries)} tensors from outside it ({_listed(entries)}); "
                "a repeated group must read exactly one, so group those layers too or leave "
                "the group unrepeated")
    if not exits:
        return (f"nothing outside the group {group!r} reads its layers; a repeated group must give "
                "exactly one tensor to the rest of the design, so connect its last layer onwards")
    if len(exits) > 1:
        return (f"the group {group!r} gives {len(exits)} tensors to the rest of the design "
                f"({_listed(exits)}); a repeated group must give exactly one, so group the layers "
                "that read them too or leave the group unrepeated")
    return None


def repeat_group(design: Design, group: str, times: int) -> Design:
    """A new design in which the layers of ``group`` appear ``times`` times in a chain (the
    input is not changed). Copy k (2 … times) reads copy k-1's exit tensor where the original
    read the entry tensor; whatever read the group's exit (and a declared output naming it) reads
    the last copy's. Copies keep their layer's arguments, configuration and trainable flag, take
    new names (``conv2d_r2``, made unique) and no search ranges, and sit in new groups
    (``<group>_2``, …; sub-groups copied likewise) beside the original. The original group's
    ``repeats`` range is dropped, and the result is laid out afresh. ``times == 1``: an unchanged
    copy. A group that cannot repeat (:func:`repeat_problem`) or ``times < 1``:
    :class:`ConvasError`."""
    if isinstance(times, bool) or not isinstance(times, int):
        raise ConvasError(f"a group repeats a whole number of times, not {times!r}")
    if times < 1:
        raise ConvasError(f"a group repeats at least once, not {times} times")
    if times == 1:
        return design.copy()
    problem = repeat_problem(design, group)
    if problem is not None:
        raise ConvasError(problem)
    result = design.copy()
    members = _members(result, group)
    inside = set(members)
    entries, exits = _entry_and_exit(result, members)
    entry, exit_ = entries[0], exits[0]

    # The groups of each copy: the repeated group and the groups inside it, outer first.
    inner = [g for g in result.groups if group in result.group_chain(g)]
    inner.sort(key=lambda g: len(result.group_chain(g)))
    taken = set(result.nodes)
    copies: list[list[Node]] = []
    previous_exit = exit_
    for k in range(2, times + 1):
        group_names: dict[str, str] = {}
        for g in inner:
            old = result.groups[g]
            new_name = result.unique_group_name(f"{g}_{k}")
            parent = old.parent if g == group else group_names[old.parent or ""]
            result.groups[new_name] = Group(new_name, old.kind, parent, old.collapsed, None,
                                            copy.deepcopy(old.origin), None)
            group_names[g] = new_name
        names: dict[str, str] = {}
        for name in members:
            new = f"{name}_r{k}"
            i = 1
            while new in taken:
                new, i = f"{name}_r{k}_{i}", i + 1
            taken.add(new)
            names[name] = new
        made: list[Node] = []
        for name in members:
            node = result.nodes[name]
            inbound = [[previous_exit if ref == entry
                        else TensorRef(names[ref.node], ref.call) if ref.node in inside else ref
                        for ref in refs] for refs in node.inbound]
            made.append(Node(names[name], node.kind, copy.deepcopy(node.args), inbound, None,
                             copy.deepcopy(node.config), group_names.get(node.group or ""),
                             node.trainable, {}))
        copies.append(made)
        previous_exit = TensorRef(names[exit_.node], exit_.call)

    # What read the group's exit reads the last copy's (the copies themselves read their own).
    for node in result.nodes.values():
        if node.name in inside:
            continue
        for refs in node.inbound:
            refs[:] = [previous_exit if ref == exit_ else ref for ref in refs]
    result.outputs = [previous_exit if ref == exit_ else ref for ref in result.outputs]

    # The copies follow the original's last layer in design order, one copy after another.
    last = members[-1]
    ordered: dict[str, Node] = {}
    for name, node in result.nodes.items():
        ordered[name] = node
        if name == last:
            for made in copies:
                for new_node in made:
                    ordered[new_node.name] = new_node
    result.nodes = ordered
    result.groups[group] = replace(result.groups[group], repeats=None)
    apply_design_layout(result)
    return result
