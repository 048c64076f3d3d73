"""Block groups read from layer names: the stages and blocks Keras writes into the names it gives.

``keras.applications`` names the layers of one block with one prefix (``conv2_block1_1_conv``,
``block_3_expand``, ``block2a_se_squeeze``, ``block35_1_mixed``, ``stage_0_block_1_…``), and a
NASNet cell with one suffix (``separable_conv_1_normal_left1_5``). :func:`add_block_groups` turns
those into :class:`~engine.design.Group` s of kind ``BLOCK`` so that a 400-layer network can be
shown as a few dozen cards. The rules know no model by name:

- A *prefix* is a name cut after a ``_``-separated token holding a digit (``conv2``,
  ``conv2_block1``); a token ending in a letter after its digits also gives the prefix without
  the letter (``block2a`` → ``block2`` ⊃ ``block2a``). The layers sharing a prefix are a
  candidate block; a candidate that is no block is split by the next prefix.
- A layer with Keras's default name (``conv2d_54``, ``activation``, ``add_3``) carries no block
  in its name. It joins a block when its only consumer is in it (the branches of an Inception
  module, which only its last layer names), when all its consumers are (a branch forking inside
  the module) unless that takes in the stem up to a model input, or when it lies on a path
  between two of the block's layers (the ``add`` between two ConvNeXt blocks).
- A block is convex: no path leaves it and comes back. A candidate whose paths back run through
  a named or already grouped layer, or through another group, is not a block.
- A block has two named layers, or one and enough layers it takes in to be a module (an Inception
  module's branches; not a ``Flatten`` before ``fc1``: :data:`SINGLE_NAMED_SIZE`); a stage (a valid
  candidate of at least :data:`STAGE_SIZE` layers whose named layers all carry a further prefix)
  holds the blocks of that further prefix, when at least two of them are blocks and they are not
  tiny (:data:`NESTED_BLOCK_SIZE`).
- A default-named layer merging a block's output with something else (the ``add`` after an
  Xception block, with its default-named shortcut) ends the block it reads last.
- Layers not in any prefix block whose names end in a number (``_5``) or a word and a number
  shared by several names (``_stem_1``) are grouped by that suffix: NASNet's cells, named after
  their last layer (``normal_concat_5``).

Grouping only changes what the canvas shows; it never changes what the design computes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace

from .design import Design, Group, GroupKind
from .layers import CATALOGUE, snake_name

STAGE_SIZE = 8     # a smaller group is not split into blocks
NESTED_BLOCK_SIZE = 5  # the blocks a stage is split into must hold this many layers on average
SINGLE_NAMED_SIZE = 4  # a block only one of whose layers is named must take in this many in all
LARGE_DESIGN = 150  # a design with more layers opens with its blocks collapsed

_DIGIT = re.compile(r"\d")
_LETTERED = re.compile(r"(.*\d)([A-Za-z])")
_NUMBERED = re.compile(r"(.*)_(\d+)")
_WORD_NUMBERED = re.compile(r".*_([A-Za-z]+_\d+)")


def name_prefixes(name: str) -> list[str]:
    """The block prefixes of a layer name, outermost first: ``conv2_block1_1_conv`` →
    ``[conv2, conv2_block1, conv2_block1_1]``; ``block2a_bn`` → ``[block2, block2a]``; a name
    ending in a token with a digit is its own last prefix (``block35_1``, ``mixed5``)."""
    tokens = name.split("_")
    found: list[str] = []
    for i, token in enumerate(tokens):
        if not _DIGIT.search(token):
            continue
        head = "_".join(tokens[:i])
        lettered = _LETTERED.fullmatch(token)
        if lettered:
            found.append(f"{head}_{lettered.group(1)}" if head else lettered.group(1))
        found.append("_".join(tokens[: i + 1]))
    return found


def default_stems() -> set[str]:
    """The default name stems Keras gives layers of the kinds Convas knows (``conv2d``,
    ``batch_normalization``, ``re_lu``, ``input_layer``, …)."""
    return {snake_name(kind) for kind in CATALOGUE} | {"input_layer"}


def is_default_name(name: str, kind: str, stems: set[str]) -> bool:
    """Whether ``name`` is Keras's default name for a layer (``stem`` or ``stem_N``) and so says
    nothing about which block the layer is in."""
    numbered = _NUMBERED.fullmatch(name)
    stem = numbered.group(1) if numbered else name
    return stem in stems or stem == snake_name(kind)


@dataclass
class _Plan:
    key: str                      # the group's name, before it is made unique
    parent: int | None            # index of the planned stage it sits in (None: the container)
    members: set[str] = field(default_factory=set)


class _Planner:
    """Finds the blocks among the layers of one container (the top level or a nested model)."""

    def __init__(self, design: Design, order: list[str]) -> None:
        stems = default_stems()
        self.topo = {n: i for i, n in enumerate(order)}
        self.producers: dict[str, list[str]] = {n: [] for n in design.nodes}
        self.consumers: dict[str, list[str]] = {n: [] for n in design.nodes}
        for node in design.nodes.values():
            for refs in node.inbound:
                for ref in refs:
                    if ref.node in design.nodes and ref.node != node.name:
                        if ref.node not in self.producers[node.name]:
                            self.producers[node.name].append(ref.node)
                        if node.name not in self.consumers[ref.node]:
                            self.consumers[ref.node].append(node.name)
        self.default = {n.name: is_default_name(n.name, n.kind, stems) for n in design.nodes.values()}
        # A model's inputs stand on their own: no block takes them in.
        self.inputs = {n.name for n in design.nodes.values() if n.kind == "InputLayer"}
        self.outputs = {r.node for r in design.output_refs()}
        self.prefixes = {n: name_prefixes(n) for n in design.nodes if not self.default[n]}
        self.plans: list[_Plan] = []

    def plan(self, pool: list[str], whole: bool) -> list[_Plan]:
        """Plans for the layers ``pool`` of one container (``whole``: the container is a group,
        so a block holding all of it would only repeat it)."""
        self.plans = []
        scope = set(pool)
        self.whole = set(pool) if whole else None
        named = [n for n in pool if n in self.prefixes]
        self._level(named, 0, None, scope, nest=True)
        self._suffix_blocks([n for n in named if n in scope], scope)
        self._attach_merges(scope)
        return self.plans

    def _level(self, layers: list[str], k: int, parent: int | None, scope: set[str], nest: bool) -> None:
        """Make blocks of ``layers`` by their ``k``-th prefix; split the ones that are no block by
        the next prefix."""
        by_key: dict[str, list[str]] = {}
        for name in layers:
            prefixes = self.prefixes[name]
            if len(prefixes) > k:
                by_key.setdefault(prefixes[k], []).append(name)
        for named in by_key.values():
            members = self._block(named, scope)
            if members is None or members == self.whole:
                deeper = [n for n in named if len(self.prefixes[n]) > k + 1]
                if deeper:
                    self._level(deeper, k + 1, parent, scope, nest)
                continue
            index = len(self.plans)
            self.plans.append(_Plan(self._common_prefix(named, k), parent, members))
            scope -= members
            direct = any(len(self.prefixes[n]) <= k + 1 for n in named)
            children = {self.prefixes[n][k + 1] for n in named if len(self.prefixes[n]) > k + 1}
            if nest and not direct and len(children) >= 2 and len(members) >= STAGE_SIZE:
                before = len(self.plans)
                self._level(named, k + 1, index, set(members), nest=False)
                blocks = self.plans[before:]
                # One block in a stage says nothing the stage does not; blocks of two or three
                # layers (Xception's conv, norm, activation) are finer than a reader needs.
                if len(blocks) < 2 or sum(len(b.members) for b in blocks) < NESTED_BLOCK_SIZE * len(blocks):
                    del self.plans[before:]

    def _common_prefix(self, named: list[str], k: int) -> str:
        """The longest prefix all of ``named`` share from the ``k``-th on: the block's name
        (``mixed_5b`` rather than ``mixed_5`` when that is its only module)."""
        while all(len(self.prefixes[n]) > k + 1 for n in named) and \
                len({self.prefixes[n][k + 1] for n in named}) == 1:
            k += 1
        return self.prefixes[named[0]][k]

    def _suffix_blocks(self, rest: list[str], scope: set[str]) -> None:
        """NASNet-style cells: the named layers left, grouped by the number ending their names
        (with the word before it when several names share both, as ``stem_1`` does)."""
        keys: dict[str, str] = {}
        for name in rest:
            worded = _WORD_NUMBERED.fullmatch(name)
            numbered = _NUMBERED.fullmatch(name)
            if worded:
                keys[name] = worded.group(1)
            elif numbered:
                keys[name] = numbered.group(2)
        shared = Counter(keys.values())
        by_key: dict[str, list[str]] = {}
        for name, key in keys.items():
            if shared[key] < 2 and _WORD_NUMBERED.fullmatch(name):
                key = key.rsplit("_", 1)[1]  # a word and number only this name has: the number
            by_key.setdefault(key, []).append(name)
        for named in by_key.values():
            members = self._block(named, scope)
            if members is not None and members != self.whole:
                last = max(named, key=self.topo.__getitem__)
                self.plans.append(_Plan(last, None, members))
                scope -= members

    def _block(self, named: list[str], scope: set[str]) -> set[str] | None:
        """The layers of the block ``named`` stands for, or None when it is no block."""
        if any(n not in scope for n in named):
            return None
        members = set(named)
        self._take_branches(members, list(named), scope)
        self._take_fans(members, scope)
        between = self._between(members)
        if any(n not in scope or not self.default[n] for n in between):
            return None
        members |= between
        if len(members) < 2 or (len(named) < 2 and len(members) < SINGLE_NAMED_SIZE):
            return None
        return members

    def _take_branches(self, members: set[str], start: list[str], scope: set[str]) -> None:
        """Add to ``members`` the free default-named layers whose only consumer is in it (an
        Inception branch, a shortcut convolution), from the layers ``start`` up."""
        stack = list(start)
        while stack:
            name = stack.pop()
            for p in self.producers[name]:
                if (p not in members and p in scope and self.default[p] and p not in self.outputs
                        and p not in self.inputs and self.consumers[p] == [name]):
                    members.add(p)
                    stack.append(p)

    def _take_fans(self, members: set[str], scope: set[str]) -> None:
        """Add to ``members`` the free default-named layers all of whose consumers are in it (a
        branch that forks inside an Inception module), with what only they read; unless that
        reaches a model input: then it is the stem before the first block, which stays out."""
        taken: set[str] = set()
        grown = members | taken
        changed = True
        while changed:
            changed = False
            for name in list(grown):
                for p in self.producers[name]:
                    if (p not in grown and p in scope and self.default[p] and p not in self.outputs
                            and p not in self.inputs and self.consumers[p]
                            and all(c in grown for c in self.consumers[p])):
                        taken.add(p)
                        grown.add(p)
                        changed = True
        if any(p in self.inputs for t in taken for p in self.producers[t]):
            return
        members |= taken

    def _between(self, members: set[str]) -> set[str]:
        """The layers outside ``members`` on a path from it back into it (none: it is convex).
        Such a path only visits layers reached going down from ``members`` no further than its
        last layer, so the way back up is searched among those alone."""
        topo, consumers, producers = self.topo, self.consumers, self.producers
        high = max(topo[m] for m in members)
        after: set[str] = set()
        stack = list(members)
        while stack:
            for n in consumers[stack.pop()]:
                if n not in members and n not in after and topo[n] <= high:
                    after.add(n)
                    stack.append(n)
        between: set[str] = set()
        stack = list(members)
        while stack:
            for n in producers[stack.pop()]:
                if n in after and n not in between:
                    between.add(n)
                    stack.append(n)
        return between

    def _attach_merges(self, scope: set[str]) -> None:
        """A free default-named layer that merges a block's output with something else (the
        ``add`` after an Xception block and its shortcut convolution, the last ``add`` of a
        ConvNeXt stage) ends the block it reads last, with the default-named branches only it
        reads, when the block stays convex."""
        owner = {m: i for i, plan in enumerate(self.plans) if plan.parent is None for m in plan.members}
        for name in sorted(scope, key=self.topo.__getitem__):
            if name not in scope or not self.default[name] or len(self.producers[name]) < 2:
                continue
            fed_by = [p for p in self.producers[name] if p in owner]
            if not fed_by:
                continue
            plan = self.plans[owner[max(fed_by, key=self.topo.__getitem__)]]
            extra = {name}
            self._take_branches(extra, [name], scope)
            grown = plan.members | extra
            if self._between(grown):
                continue
            plan.members = grown
            scope -= extra
            for m in extra:
                owner[m] = self.plans.index(plan)


def _topological(design: Design) -> list[str]:
    """Layer names with every layer after its inputs (a cycle's layers at the end)."""
    indegree = {n: 0 for n in design.nodes}
    consumers: dict[str, list[str]] = {n: [] for n in design.nodes}
    for node in design.nodes.values():
        for p in {r.node for refs in node.inbound for r in refs if r.node in design.nodes and r.node != node.name}:
            indegree[node.name] += 1
            consumers[p].append(node.name)
    ready = [n for n, d in indegree.items() if d == 0]
    ready.reverse()
    order: list[str] = []
    while ready:
        n = ready.pop()
        order.append(n)
        for c in reversed(consumers[n]):
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    placed = set(order)
    return order + [n for n in design.nodes if n not in placed]


def add_block_groups(design: Design) -> int:
    """Group the layers of ``design`` into the blocks their names give (see the module's rules),
    in place, not as an undo step: for a design just read. Layers are grouped only with layers
    of the same group (a nested model's layers among themselves), blocks of blocks already made
    are left alone, and a layer is in one block at most. Returns how many groups it made."""
    order = _topological(design)
    planner = _Planner(design, order)
    containers: list[str | None] = [None]
    containers += [g for g, v in design.groups.items() if v.kind != GroupKind.BLOCK]
    made = 0
    for container in containers:
        pool = [n for n in order if design.nodes[n].group == container]
        if container is None:
            pool = [n for n in order if design.nodes[n].group is None or design.nodes[n].group not in design.groups]
        if len(pool) < 2:
            continue
        plans = planner.plan(pool, whole=container is not None)
        names: list[str] = []
        for plan in plans:
            parent = container if plan.parent is None else names[plan.parent]
            name = design.unique_group_name(plan.key)
            design.set_group(name, Group(name, GroupKind.BLOCK, parent))
            names.append(name)
            for member in sorted(plan.members, key=planner.topo.__getitem__):
                design.set_node_group(member, name)
        made += len(plans)
    return made


def collapse_for_size(design: Design, threshold: int = LARGE_DESIGN) -> int:
    """Collapse every block group of a design with more than ``threshold`` layers, as a large
    imported network opens (in place, not an undo step). Returns how many it collapsed."""
    if len(design.nodes) <= threshold:
        return 0
    collapsed = 0
    for name, group in list(design.groups.items()):
        if group.kind == GroupKind.BLOCK and not group.collapsed:
            design.groups[name] = replace(group, collapsed=True)
            collapsed += 1
    return collapsed
