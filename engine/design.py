"""The design: a directed acyclic graph of Keras layers, as plain data.

A :class:`Node` is one Keras layer. Most layers are applied once; a shared layer (as in a siamese
network) is applied several times, so each node holds one list of inbound tensors per
application ("call"), exactly like the ``inbound_nodes`` of a Keras model config. A
:class:`TensorRef` names the output of one call of one node.

The design knows nothing of shapes: :mod:`engine.analysis` derives everything from it. Every edit
the designer makes is one of the small methods here, so that each undo command calls exactly one.
"""

from __future__ import annotations

import copy
import keyword
import re
import unicodedata
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from .errors import ConvasError
from .layers import canonical_kind, snake_name
from .search_range import SearchRange


class DesignError(ConvasError):
    """An edit that would make the design inconsistent (unknown node, duplicate name, ...)."""


# The one rule for layer names. TensorFlow names every operation after its layer and accepts
# ``[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*``; Keras 3 forbids "/", ONNX export fails on "\\" and a
# ".keras" file on NUL. What is left, and what every Keras default name already is: a letter or
# digit, then letters, digits, "_", "." and "-". (A Python keyword such as ``in`` is a valid name:
# the exports rename it where a traced function would take it as a parameter name.)
_LAYER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def name_problem(name: str, instead: str | None = None) -> str | None:
    """Why ``name`` cannot name a layer that Keras trains and every export format writes, with
    the name to use instead (``instead``, by default :func:`safe_name`); None when it can.
    Shared by the analysis (a problem of imported layers), renaming in the designer (refused)
    and export (the traceable names)."""
    if valid_name(name):
        return None
    shown = repr(name if len(name) <= 60 else name[:57] + "…")  # repr escapes what cannot print
    if not name:
        why = "is empty"
    elif _LAYER_NAME.fullmatch("a" + name):
        why = "must start with a letter or a digit"
    else:
        bad = next(c for c in name if not _LAYER_NAME.fullmatch("a" + c))
        why = (f"holds {bad!r}, but Keras layer names may only hold letters, digits, "
               "'_', '.' and '-'")
    return f"the name {shown} {why}; rename it to {instead or safe_name(name)}"


def safe_name(name: str) -> str:
    """``name`` made valid by :func:`name_problem`'s rule: accents dropped (``é`` → ``e``), every
    other character outside it an ``_``, an ``x`` in front of a name that starts otherwise than
    with a letter or digit (``sp ace`` → ``sp_ace``); never a Python keyword, so that the new name
    is traceable as it is."""
    if valid_name(name):
        return name
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", plain)
    if not cleaned[:1].isascii() or not cleaned[:1].isalnum():
        cleaned = "x" + cleaned
    return cleaned + "_" if keyword.iskeyword(cleaned) else cleaned


def valid_name(name: str) -> bool:
    """Whether ``name`` follows the layer-name rule (quicker than ``name_problem(name) is None``)."""
    return bool(_LAYER_NAME.fullmatch(name))


class TensorRef(NamedTuple):
    """The output of call ``call`` of node ``node`` (a tuple: cheap to hash on the hot path)."""

    node: str
    call: int = 0

    def __str__(self) -> str:
        return self.node if self.call == 0 else f"{self.node}[{self.call}]"


@dataclass
class Node:
    """One Keras layer: its class, its arguments as the user gave them, and what feeds it.

    ``args`` holds only values the user (or the imported file) set; the catalogue supplies
    defaults. ``config`` keeps any other Keras configuration (initialisers, regularisers, dtype)
    verbatim so that nothing is lost on a round trip. ``position`` is where the canvas draws it.
    ``group`` names the innermost :class:`Group` the layer belongs to (None: the top level);
    groups change only how the design is shown, never what it computes. ``trainable`` False
    freezes the layer as Keras's ``layer.trainable = False`` does: its weights do not change in
    training and count as non-trainable (a frozen BatchNormalization runs in inference mode).
    ``search`` holds, per argument, the values a sweep may try (:mod:`engine.search_range`);
    everything else ignores it and uses ``args``.
    """

    name: str
    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    inbound: list[list[TensorRef]] = field(default_factory=lambda: [[]])
    position: tuple[float, float] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    trainable: bool = True
    search: dict[str, SearchRange] = field(default_factory=dict)

    @property
    def inputs(self) -> list[TensorRef]:
        """Inbound tensors of the first (usually only) call."""
        return self.inbound[0] if self.inbound else []

    @property
    def calls(self) -> int:
        return len(self.inbound)


class GroupKind(StrEnum):
    """Where a :class:`Group` came from (a ``str`` too, as files store it)."""

    MODEL = "model"  # a Sequential or Functional model nested in an imported one
    BLOCK = "block"  # layers an imported model names with one prefix (``conv2_block1_…``)
    USER = "user"    # layers the user grouped and named


@dataclass(frozen=True)
class Group:
    """A named set of layers drawn as one card when ``collapsed``, or as a frame around its
    layers when expanded. Layers say which group they are in (:attr:`Node.group`); a group may
    sit inside another (``parent``). ``position`` is where its collapsed card is drawn (None:
    where its layers are). ``origin`` keeps what the group was read from (a nested model's
    class and config besides its layers), so that nothing of a file is lost. ``repeats`` is how
    many times a sweep may repeat the group's layers in a chain (:mod:`engine.group_repeat`);
    the design itself always holds them once.

    Frozen: an edit replaces the whole value (:class:`engine.editing.SetGroup`), which makes
    undo exact."""

    name: str
    kind: GroupKind = GroupKind.USER
    parent: str | None = None
    collapsed: bool = False
    position: tuple[float, float] | None = None
    origin: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    repeats: SearchRange | None = None


@dataclass
class Design:
    """A whole model: named nodes in insertion order and, optionally, its declared outputs.

    When ``outputs`` is empty, every tensor nothing else consumes is an output (what a person
    drawing a graph means). ``groups`` are named sets of layers, for showing a large design
    (see :class:`Group`); an empty group (no layers in it or in its sub-groups) is kept until
    removed, so that undoing a deletion puts a layer back into its group.
    """

    name: str = "model"
    nodes: dict[str, Node] = field(default_factory=dict)
    outputs: list[TensorRef] = field(default_factory=list)
    inputs_order: list[str] = field(default_factory=list)
    groups: dict[str, Group] = field(default_factory=dict)
    _name_counters: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    # --- queries -------------------------------------------------------------------------

    def __contains__(self, name: str) -> bool:
        return name in self.nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise DesignError(f"there is no layer named {name!r}") from None

    def consumers(self, name: str) -> list[tuple[str, int, int]]:
        """Every (node, call, slot) that reads an output of ``name``."""
        found = []
        for node in self.nodes.values():
            for c, refs in enumerate(node.inbound):
                for s, ref in enumerate(refs):
                    if ref.node == name:
                        found.append((node.name, c, s))
        return found

    def input_names(self) -> list[str]:
        """Input layers, in the declared order first, then in insertion order."""
        names = [n for n in self.inputs_order if n in self.nodes and self.nodes[n].kind == "InputLayer"]
        names += [n.name for n in self.nodes.values() if n.kind == "InputLayer" and n.name not in names]
        return names

    def output_refs(self) -> list[TensorRef]:
        """Declared outputs, or every tensor no node consumes."""
        if self.outputs:
            return [r for r in self.outputs if r.node in self.nodes]
        used = {ref for node in self.nodes.values() for refs in node.inbound for ref in refs}
        return [TensorRef(n.name, c) for n in self.nodes.values() for c in range(n.calls)
                if TensorRef(n.name, c) not in used]

    def unique_name(self, kind: str) -> str:
        """Keras-style default name: ``conv2d``, then ``conv2d_1``, ``conv2d_2``, …"""
        stem = snake_name(kind)
        if stem not in self.nodes:
            return stem
        # Remember where the search ended so that building a long chain stays linear.
        i = self._name_counters.get(stem, 1)
        while f"{stem}_{i}" in self.nodes:
            i += 1
        self._name_counters[stem] = i
        return f"{stem}_{i}"

    def copy(self) -> Design:
        return copy.deepcopy(self)

    # --- groups --------------------------------------------------------------------------

    def group_chain(self, group: str | None) -> list[str]:
        """``group`` and its ancestors, innermost first (stops at a missing group or a loop)."""
        chain: list[str] = []
        while group is not None and group in self.groups and group not in chain:
            chain.append(group)
            group = self.groups[group].parent
        return chain

    def groups_of(self, name: str) -> list[str]:
        """The groups layer ``name`` is in, innermost first."""
        return self.group_chain(self.node(name).group)

    def group_members(self, group: str, nested: bool = True) -> list[str]:
        """The layers of ``group`` in design order; with ``nested``, those of its sub-groups too."""
        if nested:
            return [n.name for n in self.nodes.values() if group in self.group_chain(n.group)]
        return [n.name for n in self.nodes.values() if n.group == group]

    def child_groups(self, group: str | None) -> list[str]:
        """The groups directly inside ``group`` (None: the top-level groups), in order."""
        return [g.name for g in self.groups.values() if g.parent == group]

    def collapsed_group(self, name: str) -> str | None:
        """The outermost collapsed group of layer ``name``, whose card stands for it on the
        canvas; None when the layer is shown itself. (Groups and layers have separate names: a
        block group may share its name with the layer that ends it.)"""
        shown = None
        for group in self.groups_of(name):
            if self.groups[group].collapsed:
                shown = group
        return shown

    def unique_group_name(self, stem: str) -> str:
        """``stem``, or ``stem_1``, ``stem_2``, … : a name no group has."""
        name, i = stem, 0
        while name in self.groups:
            i += 1
            name = f"{stem}_{i}"
        return name

    # --- edits ---------------------------------------------------------------------------

    def add(self, kind: str, name: str | None = None, args: dict[str, Any] | None = None,
            inputs: list[TensorRef | str] | tuple = (), position: tuple[float, float] | None = None,
            config: dict[str, Any] | None = None) -> Node:
        """Add a layer (unknown kinds are kept and reported by the analysis, never refused here)."""
        kind = canonical_kind(kind) or kind
        name = name if name is not None else self.unique_name(kind)
        self.check_new_name(name)
        refs = [self._ref(r) for r in inputs]
        node = Node(name, kind, dict(args or {}), [refs], position, dict(config or {}))
        self.nodes[name] = node
        return node

    def insert_node(self, node: Node, index: int | None = None) -> None:
        """Put back a node object (used by undo), optionally at its former position in order."""
        self.check_new_name(node.name)
        if index is None or index >= len(self.nodes):
            self.nodes[node.name] = node
            return
        items = list(self.nodes.items())
        items.insert(index, (node.name, node))
        self.nodes = dict(items)

    def remove(self, name: str) -> Node:
        """Remove a node and every connection to it; returns the removed node."""
        node = self.node(name)
        del self.nodes[name]
        for other in self.nodes.values():
            for refs in other.inbound:
                refs[:] = [r for r in refs if r.node != name]
        self.outputs = [r for r in self.outputs if r.node != name]
        self.inputs_order = [n for n in self.inputs_order if n != name]
        return node

    def connect(self, source: TensorRef | str, target: str, call: int = 0, slot: int | None = None) -> None:
        """Feed ``source`` into call ``call`` of ``target`` (appended, or at ``slot``)."""
        ref = self._ref(source)
        self.node(ref.node)
        node = self.node(target)
        while len(node.inbound) <= call:
            node.inbound.append([])
        refs = node.inbound[call]
        refs.insert(len(refs) if slot is None else slot, ref)

    def disconnect(self, source: TensorRef | str, target: str, call: int = 0) -> int:
        """Remove the connection; returns the slot it occupied (for undo)."""
        ref = self._ref(source)
        refs = self.node(target).inbound[call]
        try:
            slot = refs.index(ref)
        except ValueError:
            raise DesignError(f"{ref} is not connected to {target}") from None
        del refs[slot]
        return slot

    def rename(self, old: str, new: str) -> None:
        """Rename a node, updating every reference to it; order is kept."""
        if old == new:
            return
        node = self.node(old)
        self.check_new_name(new)
        node.name = new
        self.nodes = {(new if k == old else k): v for k, v in self.nodes.items()}
        for other in self.nodes.values():
            for refs in other.inbound:
                refs[:] = [TensorRef(new, r.call) if r.node == old else r for r in refs]
        self.outputs = [TensorRef(new, r.call) if r.node == old else r for r in self.outputs]
        self.inputs_order = [new if n == old else n for n in self.inputs_order]

    def set_group(self, name: str, group: Group | None) -> Group | None:
        """Add, replace (``group``) or remove (None) the group ``name``; returns the old value.
        A group's parent must exist and not lie inside it; a removed group's layers and
        sub-groups must have been moved out first (:class:`DesignError` otherwise)."""
        old = self.groups.get(name)
        if group is None:
            if old is None:
                raise DesignError(f"there is no group named {name!r}")
            if any(n.group == name for n in self.nodes.values()) or self.child_groups(name):
                raise DesignError(f"the group {name!r} still holds layers; move them out first")
            del self.groups[name]
            return old
        if group.name != name:
            raise DesignError(f"a group named {group.name!r} cannot be stored as {name!r}")
        if group.parent is not None:
            if group.parent not in self.groups:
                raise DesignError(f"there is no group named {group.parent!r} to hold {name!r}")
            if name in self.group_chain(group.parent):
                raise DesignError(f"the group {name!r} cannot sit inside itself")
        self.groups[name] = group
        return old

    def set_node_group(self, name: str, group: str | None) -> str | None:
        """Put layer ``name`` in ``group`` (None: the top level); returns its old group."""
        node = self.node(name)
        if group is not None and group not in self.groups:
            raise DesignError(f"there is no group named {group!r}")
        old, node.group = node.group, group
        return old

    def set_arg(self, name: str, arg: str, value: Any) -> None:
        """Set one argument as given (validation is the analysis' job, so nothing is lost)."""
        self.node(name).args[arg] = value

    def unset_arg(self, name: str, arg: str) -> None:
        self.node(name).args.pop(arg, None)

    def set_search(self, name: str, arg: str, search: SearchRange | None) -> SearchRange | None:
        """Give argument ``arg`` of layer ``name`` a search range (None: none); returns the old one."""
        node = self.node(name)
        old = node.search.get(arg)
        if search is None:
            node.search.pop(arg, None)
        else:
            node.search[arg] = search
        return old

    def set_trainable(self, name: str, trainable: bool) -> bool:
        """Freeze (False) or unfreeze (True) layer ``name``; returns its old flag."""
        node = self.node(name)
        old, node.trainable = node.trainable, bool(trainable)
        return old

    # --- helpers -------------------------------------------------------------------------

    def check_new_name(self, name: str) -> None:
        """Raise :class:`DesignError` when ``name`` cannot name a new layer here: not text, empty,
        or taken. Any other text is kept (a file may hold names Keras refuses): the analysis
        reports those with a rename fix (:func:`name_problem`), and the designer refuses them
        when a person types one (:func:`engine.editing.plan_rename`)."""
        if not isinstance(name, str) or not name:
            raise DesignError(f"{name!r} is not a valid layer name: a layer needs a name")
        if name in self.nodes:
            raise DesignError(f"a layer named {name!r} already exists; choose another name")

    @staticmethod
    def _ref(value: TensorRef | str) -> TensorRef:
        return value if isinstance(value, TensorRef) else TensorRef(value, 0)


@dataclass
class CallOrder:
    """Calls of a design in execution order (Kahn's algorithm: iterative, no recursion limit).

    ``dangling`` lists (node, reference) pairs whose source node or call does not exist;
    ``stuck`` the calls that never became ready, i.e. those on or behind a cycle.
    """

    order: list[TensorRef]
    dangling: list[tuple[str, TensorRef]]
    stuck: list[TensorRef]


def call_order(design: Design) -> CallOrder:
    """Every call of every node, each after the calls that feed it."""
    indegree: dict[TensorRef, int] = {}
    dependents: dict[TensorRef, list[TensorRef]] = {}
    dangling: list[tuple[str, TensorRef]] = []
    for node in design.nodes.values():
        for c, refs in enumerate(node.inbound):
            me = TensorRef(node.name, c)
            indegree.setdefault(me, 0)
            for ref in refs:
                source = design.nodes.get(ref.node)
                if source is None or ref.call >= source.calls:
                    dangling.append((node.name, ref))
                    continue
                indegree[me] += 1
                dependents.setdefault(ref, []).append(me)
    ready = deque(ref for ref, n in indegree.items() if n == 0)
    order: list[TensorRef] = []
    while ready:
        ref = ready.popleft()
        order.append(ref)
        for dep in dependents.get(ref, ()):
            indegree[dep] -= 1
            if indegree[dep] == 0:
                ready.append(dep)
    stuck = [ref for ref, n in indegree.items() if n > 0]
    return CallOrder(order, dangling, stuck)


def chain(*layers: tuple[str, dict[str, Any]], name: str = "model") -> Design:
    """A design where each layer feeds the next; handy for examples and tests."""
    design = Design(name=name)
    previous: str | None = None
    for kind, args in layers:
        node = design.add(kind, args=args, inputs=[previous] if previous else [])
        previous = node.name
    return design
