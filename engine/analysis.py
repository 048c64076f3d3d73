"""Analysis of a design: every shape, parameter count, cost and problem, as Keras would see it.

The analysis is a single topological pass (Kahn's algorithm, no recursion) over the *calls* of
the design's layers, so a layer applied twice in a row, or a 10,000-layer chain, is fine. It
imports nothing heavy: it is pure arithmetic over the layer catalogue.

After an edit it need not start over: given the previous analysis and the layers the edit
touched, it analyses again only the calls downstream of them whose inputs (shape or receptive
field) actually changed, in topological order, and keeps every other report as the very same
object (:attr:`Analysis.changes` lists the new ones, so views redraw only those). The result
equals a full analysis exactly; tests/test_incremental_analysis.py checks it on random designs
and edits.

A layer Convas does not know (an imported custom class: ``config["unsupported"]``, see
:mod:`engine.keras_import`) is an error naming the import's reason; when the file recorded its
output shapes, the layers after it are analysed from them. Its own parameters and costs are
unknown, and left out of the totals (:attr:`Analysis.unsupported` says which layers).

Memory accounting (float32, 4 bytes a value):

* ``activation_bytes`` of a node: the values of its outputs (all its calls) for one sample.
* ``activation_bytes`` of the design: ``batch_size × Σ node activation bytes``: what training keeps
  for back-propagation, since the gradient of each layer needs the tensors of the forward pass
  (inputs included).
* ``peak_inference_bytes``: ``batch_size ×`` the largest set of tensors alive at once during an
  inference pass in topological order, a tensor being freed after its last consumer ran.
* ``weight_bytes``: ``4 × total parameters``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from typing import Any

from .design import Design, Node, TensorRef, call_order, name_problem, safe_name, valid_name
from .layers import CATALOGUE, Field, Fix, LayerError
from .layers.base import LayerSpec
from .pixel_range import PixelRange, range_problems
from .shapes import MAX_COUNT, Shape, elements, fmt_shape
from .text import power_of_ten

BYTES_PER_VALUE = 4


class Severity(StrEnum):
    """How bad a :class:`Problem` is (a ``str`` too, so it prints and compares as its text)."""

    ERROR = "error"      # Keras would refuse the design: nothing downstream can be analysed
    WARNING = "warning"  # Keras accepts it, but it is probably not what was meant


@dataclass(frozen=True)
class Problem:
    """Something wrong (an error) or suspicious (a warning) about a node or the whole design."""

    node: str | None
    message: str
    severity: Severity = Severity.ERROR
    fixes: tuple[Fix, ...] = ()
    arg: str | None = None

    def __str__(self) -> str:
        return f"{self.node}: {self.message}" if self.node else self.message


@dataclass
class NodeReport:
    """What the analysis knows about one node. Shapes include the batch axis."""

    name: str
    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    input_shapes: list[list[Shape]] = field(default_factory=list)
    output_shapes: list[Shape | None] = field(default_factory=list)
    trainable_params: int = 0
    non_trainable_params: int = 0
    macs: int = 0
    activation_bytes: int = 0
    rf: Field | None = None  # receptive field and effective stride of call 0
    problems: list[Problem] = field(default_factory=list)
    blocked: bool = False  # an upstream node is invalid, so nothing can be said here

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def output_shape(self) -> Shape | None:
        return self.output_shapes[0] if self.output_shapes else None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == Severity.ERROR]

    @property
    def valid(self) -> bool:
        return not self.errors and not self.blocked

    def receptive_field(self) -> list[int | float] | None:
        return None if self.rf is None else self.rf.rounded()[0]

    def effective_stride(self) -> list[int | float] | None:
        return None if self.rf is None else self.rf.rounded()[1]


_NORMALISED: dict[Any, tuple[dict[str, Any], dict[str, str]]] = {}
_NORMALISED_LIMIT = 4096


def _normalised(spec: Any, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``spec.normalise(args)``, remembered: designs repeat the same arguments and each edit
    re-analyses every node, so most lookups hit. Unhashable values are simply not cached."""
    try:
        key = (spec.kind, tuple(sorted(args.items())))
        hit = _NORMALISED.get(key)
    except TypeError:
        return spec.normalise(args)
    if hit is None:
        if len(_NORMALISED) >= _NORMALISED_LIMIT:
            _NORMALISED.clear()
        hit = _NORMALISED[key] = spec.normalise(args)
    return dict(hit[0]), hit[1]


_SERIALS = itertools.count(1)


@dataclass(frozen=True)
class _Totals:
    trainable_params: int = 0
    non_trainable_params: int = 0
    macs: int = 0
    activation_bytes: int = 0

    @staticmethod
    def of(reports: Iterable[NodeReport]) -> _Totals:
        t = n = m = a = 0
        for r in reports:
            t += r.trainable_params
            n += r.non_trainable_params
            m += r.macs
            a += r.activation_bytes
        return _Totals(t, n, m, a)

    def __add__(self, other: _Totals) -> _Totals:
        return _Totals(self.trainable_params + other.trainable_params,
                       self.non_trainable_params + other.non_trainable_params,
                       self.macs + other.macs, self.activation_bytes + other.activation_bytes)

    def __sub__(self, other: _Totals) -> _Totals:
        return _Totals(self.trainable_params - other.trainable_params,
                       self.non_trainable_params - other.non_trainable_params,
                       self.macs - other.macs, self.activation_bytes - other.activation_bytes)


@dataclass(frozen=True)
class Changes:
    """How an incremental analysis differs from the one it was made from (number ``since``):
    the layers whose report is a new object (``nodes``, removed ones included). Every other
    layer's report is the very object of that analysis, so a view showing it need not look."""

    since: int
    nodes: frozenset[str]


@dataclass
class Analysis:
    """The analysis of a whole design: per-node reports in execution order, problems and totals.

    ``serial`` numbers analyses as they are made; ``changes`` says what differs from an earlier
    one (None: a full analysis, treat everything as new). Neither takes part in equality: an
    incremental analysis equals the full one of the same design."""

    nodes: dict[str, NodeReport]
    order: list[str]
    problems: list[Problem]
    outputs: list[TensorRef]
    batch_size: int = 1
    peak_inference_bytes: int = 0
    serial: int = field(default_factory=lambda: next(_SERIALS), compare=False, repr=False)
    changes: Changes | None = field(default=None, compare=False, repr=False)
    _memo: _Memo | None = field(default=None, compare=False, repr=False)

    def changed_since(self, shown: Analysis | None) -> frozenset[str] | None:
        """The layers whose reports may differ from those of ``shown`` (the analysis a view last
        showed): none when it is this one, :attr:`changes` when this one was made from it, None
        (anything may differ) otherwise."""
        if shown is self:
            return frozenset()
        if shown is not None and self.changes is not None and self.changes.since == shown.serial:
            return self.changes.nodes
        return None

    @property
    def unsupported(self) -> list[str]:
        """The layers of a type Convas does not know (imported ones, say): their parameters and
        costs are unknown, so the totals leave them out."""
        return [name for name, rep in self.nodes.items() if rep.kind not in CATALOGUE]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == Severity.WARNING]

    @property
    def design_problems(self) -> list[Problem]:
        """Problems of the design as a whole (no InputLayer, a cycle): they name no layer."""
        return [p for p in self.problems if p.node is None]

    @property
    def valid(self) -> bool:
        return not self.errors

    def _sums(self) -> _Totals:
        """The per-layer figures summed (kept by the analysis that made them: the status bar
        and the summary ask for them after every edit)."""
        if self._memo is not None:
            return self._memo.totals
        return _Totals.of(self.nodes.values())

    @property
    def trainable_params(self) -> int:
        return self._sums().trainable_params

    @property
    def non_trainable_params(self) -> int:
        return self._sums().non_trainable_params

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def weight_bytes(self) -> int:
        return BYTES_PER_VALUE * self.total_params

    @property
    def macs(self) -> int:
        return self._sums().macs

    @property
    def activation_bytes_per_sample(self) -> int:
        return self._sums().activation_bytes

    @property
    def activation_bytes(self) -> int:
        return self.batch_size * self.activation_bytes_per_sample


def analyse(design: Design, batch_size: int = 1, input_range: PixelRange | None = None, *,
            previous: Analysis | None = None, touched: Iterable[str] | None = None) -> Analysis:
    """Analyse ``design``: never raises for a bad design, reports problems instead.
    ``input_range``, the pixel range the training data delivers, when known, adds a warning with
    fixes wherever the design expects the other range (see :mod:`engine.pixel_range`).

    Incremental: given ``previous``, the analysis of this design before an edit, and ``touched``,
    the names of every layer the edit added, removed, renamed, re-argued or reconnected (see
    ``Document.apply``), only the layers downstream of ``touched`` whose inputs actually changed
    are analysed again; every other report is ``previous``'s own object, and
    :attr:`Analysis.changes` names the new ones. The result equals a full analysis exactly (proved
    on random designs and edits by tests/test_incremental_analysis.py), so a 1,000-layer design is
    re-analysed in about a millisecond after an edit that changes a few shapes."""
    if previous is None or touched is None or previous._memo is None:
        return _Pass(design, True, input_range, None, set()).run(batch_size)
    return _Pass(design, True, input_range, previous, set(touched)).run(batch_size)


def _analyse(design: Design, batch_size: int, branch_fixes: bool) -> Analysis:
    """A full analysis; ``branch_fixes`` looks up the branches of a failing merge for a layer
    whose padding, set to 'same', would make it fit (found by trying: see :func:`_padding_fixes`)."""
    return _Pass(design, branch_fixes, None, None, set()).run(batch_size)


_MISSING: Any = object()
_PARAM_NAMES: dict[str, frozenset[str]] = {}
_MAX_RECORDED_RANK = 32  # a recorded shape of an unsupported layer longer than this is garbage


def _param_names(spec: LayerSpec) -> frozenset[str]:
    names = _PARAM_NAMES.get(spec.kind)
    if names is None:
        names = _PARAM_NAMES[spec.kind] = frozenset(p.name for p in spec.params)
    return names


def unsupported_marker(node: Node) -> dict[str, Any]:
    """What the import recorded of a layer Convas does not know (``config["unsupported"]``:
    module, class_name, reason, output_shapes; see :mod:`engine.keras_import`), {} for none."""
    info = node.config.get("unsupported")
    return info if isinstance(info, dict) else {}


def _unsupported_message(node: Node) -> str:
    info = unsupported_marker(node)
    reason = info.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        return (f"{node.kind} is not a layer type Convas supports; replace it with a catalogue layer "
                "or remove it")
    name = info.get("class_name") if isinstance(info.get("class_name"), str) else node.kind
    module = info.get("module")
    where = f" ({module})" if isinstance(module, str) and module else ""
    return (f"{name}{where} is not a layer Convas can analyse: {reason.strip().rstrip('.;')}; "
            "replace this card with catalogue layers or delete it")


def recorded_shape(node: Node, call: int) -> Shape | None:
    """The output shape the import recorded for call ``call`` of an unsupported layer, batch axis
    first; None when the file said nothing usable (anything but a list of positive ints and
    nulls, or a tensor too large to be real: the file is untrusted)."""
    shapes = unsupported_marker(node).get("output_shapes")
    if not isinstance(shapes, list) or not 0 <= call < len(shapes):
        return None
    shape = shapes[call]
    if not isinstance(shape, (list, tuple)) or not 1 <= len(shape) <= _MAX_RECORDED_RANK:
        return None
    if not all(d is None or (type(d) is int and d > 0) for d in shape):
        return None
    out: Shape = tuple(shape)
    try:
        _check_output_size(out)
    except LayerError:
        return None
    return out


def _wiring(node: Node) -> tuple[tuple[TensorRef, ...], ...]:
    """A node's connections as a value (tuples: the garbage collector stops tracking them)."""
    return tuple(map(tuple, node.inbound))


def _bytes(shape: Shape | None) -> int:
    return BYTES_PER_VALUE * elements(shape) if shape is not None else 0


@dataclass
class _Memo:
    """What an analysis keeps so that the next one, after an edit, redoes only what changed.
    Never changed once its analysis is made: the next pass copies what it updates."""

    names: list[str]                                   # the design's layers, in order
    index: dict[str, int]                              # … and where each one is in it
    inbound: dict[str, tuple[tuple[TensorRef, ...], ...]]  # each layer's connections, as analysed
    declared_outputs: list[TensorRef]
    inputs_order: list[str]
    order: list[TensorRef]                             # the calls in execution order
    position: dict[TensorRef, int]                     # … and where each one is in it
    readers: dict[TensorRef, list[TensorRef]]          # the calls reading each tensor
    node_order: list[str]
    outputs: list[TensorRef]
    structure_problems: list[Problem]                  # dangling inputs and cycles, in order
    pre: dict[str, list[Problem]]                      # … of each layer
    cycle_blocked: frozenset[str]                      # behind a cycle
    has_stuck: bool
    dangling_nodes: frozenset[str]
    own: dict[str, list[Problem]]                      # step 1, per layer (only those with some)
    call_problems: dict[TensorRef, list[Problem]]      # step 3, per call (only those with some)
    design_checks: list[Problem]                       # step 4, in order
    checks_of: dict[str, list[Problem]]                # … per layer
    extras: dict[str, list[Problem]]                   # step 4 and range warnings per layer
    valid_args: dict[str, dict[str, Any]]              # the arguments of each valid layer
    shapes: dict[TensorRef, Shape | None]
    fields: dict[TensorRef, Field | None]
    sizes: dict[TensorRef, int]
    ends: dict[TensorRef, int]                         # the last position a tensor is alive at
    live: list[int]                                    # bytes alive (one sample) at each position
    failed_merges: frozenset[str]
    totals: _Totals


class _Pass:
    """One analysis: of every layer (no ``previous``), or of what an edit changed.

    Steps: (1) each layer on its own: known kind, valid arguments; (2) the calls in topological
    order, references checked, cycles found; (3) shapes, weights and costs call by call; (4)
    whole-design checks (an InputLayer, unconnected inputs, names) and the pixel range. Steps 1
    and 3 are the per-layer work an incremental pass limits to the layers it redoes; 2 and 4
    depend on the wiring only, and are reused when the wiring did not change."""

    def __init__(self, design: Design, branch_fixes: bool, input_range: PixelRange | None,
                 previous: Analysis | None, touched: set[str]) -> None:
        self.design = design
        self.branch_fixes = branch_fixes
        self.input_range = input_range
        self.previous = previous
        self.old: _Memo | None = previous._memo if previous is not None else None
        self.touched = touched
        self.reports: dict[str, NodeReport] = {}       # the layers this pass (re)analyses
        self.specs: dict[str, LayerSpec | None] = {}
        self.weights_of: dict[str, tuple[int, int]] = {}
        self.built_with: dict[str, list[Shape]] = {}   # the input shapes of the call that built a layer
        self.failed: set[str] = set()
        self.heap: list[int] = []                     # positions of the calls to run (incremental)
        self.queued: set[TensorRef] = set()
        self.own: dict[str, list[Problem]] = {}
        self.call_problems: dict[TensorRef, list[Problem]] = {}
        self.shapes: dict[TensorRef, Shape | None] = {}
        self.fields: dict[TensorRef, Field | None] = {}
        self.sizes: dict[TensorRef, int] = {}         # bytes of each tensor, one sample
        self.design_checks: list[Problem] = []
        self.checks_of: dict[str, list[Problem]] = {}
        # The wiring (step 2), set by _wire or _reuse_wiring.
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.inbound: dict[str, tuple[tuple[TensorRef, ...], ...]] = {}
        self.order: list[TensorRef] = []
        self.position: dict[TensorRef, int] = {}
        self.readers: dict[TensorRef, list[TensorRef]] = {}
        self.node_order: list[str] = []
        self.outputs: list[TensorRef] = []
        self.structure_problems: list[Problem] = []
        self.pre: dict[str, list[Problem]] = {}
        self.cycle_blocked: frozenset[str] = frozenset()
        self.has_stuck = False
        self.dangling_nodes: frozenset[str] = frozenset()

    # --- the pass -----------------------------------------------------------------------------

    def run(self, batch_size: int) -> Analysis:
        design, old = self.design, self.old
        same = old is not None and self._same_wiring(old)
        seeds: set[str] = set()
        if old is not None and same:
            self._reuse_wiring(old)
            seeds = {t for t in self.touched if t in design.nodes}
            if seeds:
                seeds |= old.failed_merges  # a failed merge's fixes look up its branches
        else:
            self._wire()
            if old is not None and (self.has_stuck or old.has_stuck):
                old = self.old = None  # cycles come and go rarely: analyse everything again
            if old is not None:
                seeds = self._structural_seeds(old)
        if old is None:
            self._full()
        else:
            self._incremental(old, seeds)
        if self.branch_fixes:
            for name in sorted(self.failed & self.reports.keys(), key=lambda n: self.position[TensorRef(n, 0)]):
                self._add_padding_fixes(name)
        if old is None or not same:
            self._design_checks()
        else:
            self.design_checks, self.checks_of = old.design_checks, old.checks_of
        return self._finish(batch_size, same)

    def _full(self) -> None:
        for node in self.design.nodes.values():
            self._begin(node.name)
        for ref in self.order:
            self._call(ref)

    def _incremental(self, old: _Memo, seeds: set[str]) -> None:
        live = self.position
        self.own = {n: p for n, p in old.own.items() if n in self.design.nodes}
        self.call_problems = {r: p for r, p in old.call_problems.items() if r in live}
        if self.order is old.order:
            self.shapes, self.fields, self.sizes = dict(old.shapes), dict(old.fields), dict(old.sizes)
        else:
            self.shapes = {r: s for r, s in old.shapes.items() if r in live}
            self.fields = {r: f for r, f in old.fields.items() if r in live}
            self.sizes = {r: b for r, b in old.sizes.items() if r in live}
        for name in seeds:
            self._begin(name)
            for c in range(self.design.nodes[name].calls):
                self._push(TensorRef(name, c))
        while self.heap:
            pos = heapq.heappop(self.heap)
            ref = self.order[pos]
            if ref.node not in self.reports:
                # Reached from upstream: analyse all its calls again, in order (the earlier ones
                # give what they gave before; they are run for the report's totals).
                self._begin(ref.node)
                calls = self.design.nodes[ref.node].calls
                if calls > 1:
                    for p, r in sorted((p, r) for c in range(calls)
                                       if (p := self.position.get(r := TensorRef(ref.node, c))) is not None):
                        if p < pos:
                            self._call(r)
                        elif p > pos:
                            self._push(r)
            self._call(ref)

    def _push(self, ref: TensorRef) -> None:
        pos = self.position.get(ref)
        if pos is not None and ref not in self.queued:
            self.queued.add(ref)
            heapq.heappush(self.heap, pos)

    # --- step 2: the wiring -------------------------------------------------------------------

    def _same_wiring(self, old: _Memo) -> bool:
        """Whether the edit left the layers, their order and their connections as they were
        (``touched`` names every layer whose connections may have changed)."""
        design = self.design
        if list(design.nodes) != old.names or design.outputs != old.declared_outputs \
                or design.inputs_order != old.inputs_order:
            return False
        return all(_wiring(design.nodes[t]) == old.inbound[t] for t in self.touched if t in design.nodes)

    def _reuse_wiring(self, old: _Memo) -> None:
        self.names, self.index, self.inbound = old.names, old.index, old.inbound
        self.order, self.position, self.readers = old.order, old.position, old.readers
        self.node_order, self.outputs = old.node_order, old.outputs
        self.structure_problems, self.pre = old.structure_problems, old.pre
        self.cycle_blocked, self.has_stuck, self.dangling_nodes = old.cycle_blocked, old.has_stuck, old.dangling_nodes

    def _wire(self) -> None:
        design = self.design
        self.names = list(design.nodes)
        self.index = {n: i for i, n in enumerate(self.names)}
        old = self.old
        if old is None:
            self.inbound = {n.name: _wiring(n) for n in design.nodes.values()}
        else:
            self.inbound = {n: old.inbound[n] for n in self.names if n in old.inbound and n not in self.touched}
            for n in self.names:
                if n not in self.inbound:
                    self.inbound[n] = _wiring(design.nodes[n])
            self.inbound = {n: self.inbound[n] for n in self.names}
        ordering = call_order(design)
        self.order = ordering.order
        self.position = {ref: i for i, ref in enumerate(self.order)}
        self.readers = {}
        for ref in self.order:
            for src in design.nodes[ref.node].inbound[ref.call]:
                self.readers.setdefault(src, []).append(ref)
        self.structure_problems, self.pre = [], {}
        for name, ref in ordering.dangling:
            problem = Problem(name, f"its input {ref} does not exist; reconnect it")
            self.structure_problems.append(problem)
            self.pre.setdefault(name, []).append(problem)
        self.dangling_nodes = frozenset(name for name, _ref in ordering.dangling)
        self.has_stuck = bool(ordering.stuck)
        self.cycle_blocked = frozenset()
        if ordering.stuck:
            self.cycle_blocked = _report_cycles(design, ordering.stuck, self.structure_problems, self.pre)
        ordered = dict.fromkeys(r.node for r in self.order)
        self.node_order = list(ordered) + [n for n in design.nodes if n not in ordered]
        self.outputs = design.output_refs()

    def _structural_seeds(self, old: _Memo) -> set[str]:
        """The layers to analyse again after an edit that changed the wiring: those touched, those
        added, the readers of those removed and any layer whose input is (or was) missing."""
        nodes = self.design.nodes
        removed = old.index.keys() - nodes.keys()
        seeds = (self.touched | (nodes.keys() - old.index.keys()) | self.dangling_nodes | old.dangling_nodes
                 | old.failed_merges)
        for name in removed:
            for c in range(len(old.inbound[name])):
                seeds.update(r.node for r in old.readers.get(TensorRef(name, c), ()))
        return {s for s in seeds if s in nodes}

    # --- steps 1 and 3: one layer ------------------------------------------------------------

    def _begin(self, name: str) -> None:
        """A fresh report of layer ``name``, with step 1 done: its calls are run by :meth:`_call`."""
        node = self.design.nodes[name]
        rep = NodeReport(name, node.kind)
        rep.input_shapes = [[] for _ in node.inbound]
        rep.output_shapes = [None] * len(node.inbound)
        spec = CATALOGUE.get(node.kind)
        own: list[Problem] = []
        if spec is None:
            own.append(Problem(name, _unsupported_message(node)))
        else:
            rep.args, bad_args = _normalised(spec, node.args)
            for arg, why in bad_args.items():
                own.append(Problem(name, why, arg=arg))
            names = _param_names(spec)
            if not node.args.keys() <= names:
                for arg in sorted(node.args.keys() - names):
                    own.append(Problem(name, f"{node.kind} has no argument {arg!r}", arg=arg))
        rep.problems = own + self.pre[name] if name in self.pre else own[:]
        rep.blocked = name in self.cycle_blocked
        self.reports[name] = rep
        self.specs[name] = spec
        if own:
            self.own[name] = own
        elif self.old is not None:  # a layer is begun once a pass: only what the last pass kept goes
            self.own.pop(name, None)
        if self.old is not None:
            for c in range(node.calls):
                self.call_problems.pop(TensorRef(name, c), None)

    def _call(self, ref: TensorRef) -> None:
        """Step 3 for one call: its output shape, weights, costs and problems."""
        node = self.design.nodes[ref.node]
        rep = self.reports[node.name]
        spec = self.specs[node.name]
        in_refs = node.inbound[ref.call]
        in_shapes = [self.shapes.get(r) for r in in_refs]
        rep.input_shapes[ref.call] = [s for s in in_shapes if s is not None]
        problems: list[Problem] = []

        def report(message: str, severity: Severity = Severity.ERROR, fixes: tuple[Fix, ...] = ()) -> None:
            problem = Problem(node.name, message, severity, tuple(fixes))
            problems.append(problem)
            rep.problems.append(problem)

        out: Shape | None = None
        field_out: Field | None = None
        size = 0  # bytes of the output, one sample
        if spec is None:
            # Unknown to Convas, but the file may say what it gives: the layers after it are
            # analysed from that, while this one keeps its error (the design cannot be built).
            if not any(s is None for s in in_shapes):
                out = recorded_shape(node, ref.call)
                size = _bytes(out)
                rep.activation_bytes += size
        elif rep.errors:
            pass
        elif any(s is None for s in in_shapes):
            rep.blocked = True
        elif len(in_refs) < spec.min_inputs:
            need = "an input" if spec.min_inputs == 1 else f"{spec.min_inputs} inputs"
            report(f"has no input; connect {need} to it" if not in_refs else
                   f"needs {need} but has {len(in_refs)}; connect another")
        elif spec.max_inputs is not None and len(in_refs) > spec.max_inputs:
            report(f"takes {spec.max_inputs} input{'s' if spec.max_inputs != 1 else ''} "
                   f"but has {len(in_refs)}; remove {len(in_refs) - spec.max_inputs} connection(s) "
                   "or use a merge layer such as Add or Concatenate")
        else:
            shapes_in: list[Shape] = in_shapes  # type: ignore[assignment]
            try:
                out = spec.infer(rep.args, shapes_in)
                bad = [d for d in out[1:] if d is not None and d <= 0]
                if bad:
                    raise LayerError(f"its output {fmt_shape(out)} would have a zero or negative size")
                _check_output_size(out)
                weights = spec.weights(rep.args, shapes_in, out)
                _check_count(sum(weights), "parameters", "use fewer units, filters or a smaller kernel")
                if node.name in self.built_with:
                    _check_shared_call(spec.group, weights, self.weights_of[node.name],
                                       self.built_with[node.name], shapes_in)
                else:
                    self.weights_of[node.name] = weights
                    self.built_with[node.name] = shapes_in
                    # A frozen layer's weights are all non-trainable, as Keras counts them.
                    rep.trainable_params, rep.non_trainable_params = (
                        weights if node.trainable else (0, weights[0] + weights[1]))
                macs = spec.macs(rep.args, shapes_in, out)
                _check_count(macs, "multiply-accumulates per sample",
                             "make its input smaller or use fewer units or filters")
                rep.macs += macs
                size = BYTES_PER_VALUE * elements(out)
                rep.activation_bytes += size
                field_out = _bounded_field(spec.field(rep.args, [self.fields.get(r) for r in in_refs],
                                                      shapes_in, out))
                if ref.call == 0:
                    rep.rf = field_out
                if spec.lint is not None and ref.call == 0:
                    for message, fixes in spec.lint(rep.args, shapes_in, out):
                        report(message, Severity.WARNING, fixes)
            except LayerError as exc:
                out = field_out = None
                size = 0
                report(exc.message, fixes=exc.fixes)
                if spec.group == "Merge" and ref.call == 0:
                    self.failed.add(node.name)
        if problems:
            self.call_problems[ref] = problems
        rep.output_shapes[ref.call] = out
        old = self.old
        if old is not None and (old.shapes.get(ref, _MISSING) != out or old.fields.get(ref, _MISSING) != field_out):
            for reader in self.readers.get(ref, ()):
                self._push(reader)
        self.shapes[ref] = out
        self.fields[ref] = field_out
        self.sizes[ref] = size

    def _add_padding_fixes(self, name: str) -> None:
        rep = self.reports[name]
        extra = _padding_fixes(self.design, self._report_of, name)
        if not extra:
            return
        old = rep.errors[-1]
        new = Problem(old.node, old.message, old.severity, extra + old.fixes, old.arg)
        rep.problems[rep.problems.index(old)] = new
        mine = self.call_problems[TensorRef(name, 0)]
        mine[mine.index(old)] = new

    def _report_of(self, name: str) -> NodeReport:
        rep = self.reports.get(name)
        if rep is None:
            assert self.previous is not None
            rep = self.previous.nodes[name]
        return rep

    # --- step 4 and the result ----------------------------------------------------------------

    def _design_checks(self) -> None:
        design = self.design
        self.design_checks = []
        self.checks_of = {}

        def report(node: str | None, message: str, severity: Severity = Severity.ERROR,
                   fixes: tuple[Fix, ...] = ()) -> None:
            problem = Problem(node, message, severity, tuple(fixes))
            self.design_checks.append(problem)
            if node is not None:
                self.checks_of.setdefault(node, []).append(problem)

        if not any(n.kind == "InputLayer" for n in design.nodes.values()):
            report(None, "the design has no InputLayer; add one to say what a sample looks like")
        consumed = {r.node for n in design.nodes.values() for refs in n.inbound for r in refs}
        for name in design.input_names():
            if name not in consumed and len(design.nodes) > 1:
                report(name, "is not connected to any layer; connect it or delete it", Severity.WARNING)
        _report_names(design, report)

    def _finish(self, batch_size: int, same: bool) -> Analysis:
        old, previous = self.old, self.previous
        redone = self.reports
        # Which layers are valid (without the range warnings, which are only warnings) and
        # their arguments: what the pixel range is followed through.
        if old is None:
            valid_args = {n: rep.args for n, rep in redone.items() if self._valid(n, rep, redone)}
        else:
            again: Iterable[str] = redone
            if same:
                valid_args = dict(old.valid_args)
            else:  # the step 4 problems of some layers may have changed too
                checked = {n for n in old.checks_of.keys() | self.checks_of.keys()
                           if old.checks_of.get(n) != self.checks_of.get(n) and n in self.design.nodes}
                again = checked | redone.keys()
                valid_args = {n: a for n, a in old.valid_args.items() if n in self.design.nodes and n not in again}
            for name in again:
                rep = self._report_of(name)
                if self._valid(name, rep, redone):
                    valid_args[name] = rep.args
                else:
                    valid_args.pop(name, None)
        range_of: dict[str, list[Problem]] = {}
        range_list: list[Problem] = []
        if self.input_range is not None:
            for found in range_problems(self.design, valid_args, self.node_order, self.input_range):
                problem = Problem(found.node, found.message, Severity.WARNING, found.fixes)
                range_list.append(problem)
                range_of.setdefault(found.node, []).append(problem)
        extras = {n: [*self.checks_of.get(n, ()), *range_of.get(n, ())]
                  for n in self.checks_of.keys() | range_of.keys()}

        # The reports: those redone get their extra problems; any other is the previous one,
        # or a copy with the new extras where those changed.
        changed: set[str] = set(redone)
        if old is None:
            if previous is not None:
                changed |= previous.nodes.keys()
            nodes = {}
            for name in self.node_order:
                rep = redone[name]
                rep.problems.extend(extras.get(name, ()))
                nodes[name] = rep
        else:
            assert previous is not None
            if same:
                nodes = dict(previous.nodes)
            else:
                nodes = {n: redone.get(n) or previous.nodes[n] for n in self.node_order}
                changed |= previous.nodes.keys() - nodes.keys()
            for name, rep in redone.items():
                rep.problems.extend(extras.get(name, ()))
                nodes[name] = rep
            for name in extras.keys() | old.extras.keys():
                if name in redone or name not in nodes:
                    continue
                before, now = old.extras.get(name, []), extras.get(name, [])
                if before != now:
                    rep = nodes[name]
                    core = rep.problems[: len(rep.problems) - len(before)]
                    nodes[name] = replace(rep, problems=core + now)
                    changed.add(name)

        problems = [p for n in sorted(self.own, key=self.index.__getitem__) for p in self.own[n]]
        problems += self.structure_problems
        problems += [p for ref in sorted(self.call_problems, key=self.position.__getitem__)
                     for p in self.call_problems[ref]]
        problems += self.design_checks
        problems += range_list

        ends, live = self._live(same)
        if old is None or previous is None:
            totals = _Totals.of(nodes.values())
        else:
            gone = [previous.nodes[n] for n in changed if n in previous.nodes]
            now = [nodes[n] for n in changed if n in nodes]
            totals = old.totals - _Totals.of(gone) + _Totals.of(now)
        memo = _Memo(self.names, self.index, self.inbound, list(self.design.outputs), list(self.design.inputs_order),
                     self.order, self.position, self.readers, self.node_order, self.outputs,
                     self.structure_problems, self.pre, self.cycle_blocked, self.has_stuck, self.dangling_nodes,
                     self.own, self.call_problems, self.design_checks, self.checks_of, extras, valid_args,
                     self.shapes, self.fields, self.sizes, ends, live,
                     self._failed_merges(), totals)
        changes = None if previous is None else Changes(previous.serial, frozenset(changed))
        return Analysis(nodes, list(self.node_order), problems, list(self.outputs), batch_size,
                        batch_size * max(live, default=0), changes=changes, _memo=memo)

    def _failed_merges(self) -> frozenset[str]:
        kept = self.old.failed_merges - self.reports.keys() if self.old is not None else frozenset()
        return frozenset(self.failed | (kept & self.design.nodes.keys()))

    def _valid(self, name: str, rep: NodeReport, redone: dict[str, NodeReport]) -> bool:
        if rep.blocked or any(p.severity == Severity.ERROR for p in self.checks_of.get(name, ())):
            return False
        if name in redone:
            return not rep.errors
        assert self.old is not None
        before = self.old.extras.get(name, [])
        core = rep.problems[: len(rep.problems) - len(before)]
        return not any(p.severity == Severity.ERROR for p in core)

    def _live(self, same: bool) -> tuple[dict[TensorRef, int], list[int]]:
        """Per position in the call order, the bytes of one sample's tensors alive there (a
        tensor lives from its call to its last reader; outputs and unread ones to the end): the
        peak of inference is their maximum. After an edit that kept the wiring, only the tensors
        whose size changed are added in again."""
        old = self.old
        if old is not None and same:
            live = old.live
            copied = False
            for name in self.reports:
                for c in range(self.design.nodes[name].calls):
                    ref = TensorRef(name, c)
                    if ref not in self.position:
                        continue
                    delta = self.sizes.get(ref, 0) - old.sizes.get(ref, 0)
                    if delta:
                        if not copied:
                            live, copied = list(live), True
                        for i in range(self.position[ref], old.ends[ref] + 1):
                            live[i] += delta
            return old.ends, live
        n = len(self.order)
        last_use: dict[TensorRef, int] = {}
        for i, ref in enumerate(self.order):
            for src in self.design.nodes[ref.node].inbound[ref.call]:
                last_use[src] = i
        keep = set(self.outputs)
        ends = {ref: (last_use[ref] if ref in last_use and ref not in keep else n - 1) for ref in self.order}
        diff = [0] * (n + 1)
        sizes = self.sizes
        for i, ref in enumerate(self.order):
            size = sizes.get(ref, 0)
            if size:
                diff[i] += size
                diff[ends[ref] + 1] -= size
        live, total = [], 0
        for d in diff[:n]:
            total += d
            live.append(total)
        return ends, live


_BRANCH_FIX_STEPS = 64      # how far up each branch of a failing merge a padding fix is looked for
_BRANCH_FIX_TRIALS = 8      # how many candidate layers are tried (each trial is one analysis)


def _padding_fixes(design: Design, report_of: Callable[[str], NodeReport], merge: str) -> tuple[Fix, ...]:
    """Fixes "set padding='same' on L" for window layers L up the merge's branches that shrank
    their input with padding='valid', each kept only when the merge then fits (tried on a copy)."""
    fixes: list[Fix] = []
    trials = 0
    seen: set[str] = set()
    for ref in design.nodes[merge].inputs:
        name: str | None = ref.node
        for _ in range(_BRANCH_FIX_STEPS):
            if name is None or name in seen or name not in design.nodes:
                break
            seen.add(name)
            rep = report_of(name)
            if rep.args.get("padding") == "valid" and _shrinks(rep) and trials < _BRANCH_FIX_TRIALS:
                trials += 1
                trial = design.copy()
                trial.set_arg(name, "padding", "same")
                if _analyse(trial, 1, branch_fixes=False).nodes[merge].valid:
                    fixes.append(Fix.set_arg("padding", "same", node=name))
                    break
            node = design.nodes[name]
            name = node.inputs[0].node if node.calls == 1 and len(node.inputs) == 1 else None
    return tuple(fixes)


def _shrinks(rep: NodeReport) -> bool:
    """The layer's (first) output is smaller than its input on some axis besides batch and channels."""
    if not rep.input_shapes or not rep.input_shapes[0] or rep.output_shape is None:
        return False
    before, after = rep.input_shapes[0][0], rep.output_shape
    return len(before) == len(after) and any(
        a is not None and b is not None and a < b for b, a in zip(before[1:-1], after[1:-1]))


# Keras pins the input rank of these layers when they are built, so a shared one cannot later
# take a tensor of another rank even where its weights would fit.
_RANK_PINNED_GROUPS = {"Convolution", "Pooling", "Normalization"}


def _check_shared_call(group: str, weights: tuple[int, int], built_weights: tuple[int, int],
                       built_inputs: list[Shape], inputs: list[Shape]) -> None:
    """A later call of a shared layer must fit the weights (and rank) its first call built."""
    first = ", ".join(fmt_shape(s) for s in built_inputs)
    now = ", ".join(fmt_shape(s) for s in inputs)
    if weights != built_weights:
        raise LayerError(f"is applied to inputs of different shapes ({first} and {now}), but a shared "
                         "layer has one set of weights; feed it tensors of the same shape")
    if group in _RANK_PINNED_GROUPS and [len(s) for s in inputs] != [len(s) for s in built_inputs]:
        raise LayerError(f"was built for {first} and cannot also take {now}: Keras fixes its input rank "
                         "when it is built; feed it tensors of the same rank")


def _check_output_size(out: Shape) -> None:
    """Refuse an output past :data:`MAX_COUNT` values (checked as it grows: never a huge product)."""
    count = 1
    for d in out[1:]:
        if d is not None:
            count *= d
            if count > MAX_COUNT:
                break
    if count > MAX_COUNT:
        total = elements(out) or count
        raise LayerError(f"its output {fmt_shape(out)} would have {power_of_ten(total)} values for one "
                         f"sample, more than any computer holds (Convas stops at {power_of_ten(MAX_COUNT)}); "
                         "make it smaller: a smaller input, fewer or smaller up-sampling or padding steps, "
                         "or larger strides upstream")


def _check_count(count: int, what: str, advice: str) -> None:
    if count > MAX_COUNT:
        raise LayerError(f"it would have {power_of_ten(count)} {what}, more than any computer handles "
                         f"(Convas stops at {power_of_ten(MAX_COUNT)}); {advice}")


def _bounded_field(rf: Field | None) -> Field | None:
    """The receptive field, or None (unknown, as past a Flatten) once it exceeds :data:`MAX_COUNT`
    pixels or needs a finer fraction than 1/MAX_COUNT: such numbers describe nothing real, and a
    chain of strides would otherwise grow them without bound."""
    if rf is None:
        return None
    for v in rf.size + rf.jump:
        if v > MAX_COUNT or (type(v) is not int and Fraction(v).denominator > MAX_COUNT):  # both are positive
            return None
    return rf


def _report_names(design: Design, report: Any) -> None:
    """A name Keras cannot use (a space, a quote, ``é``, ``/``, NUL, …, usually from an imported
    file) is an error with a one-click rename to the nearest valid name not taken."""
    taken: set[str] | None = None
    for name in design.nodes:
        if valid_name(name):
            continue
        if taken is None:
            taken = set(design.nodes)
        base = new = safe_name(name)
        i = 1
        while new in taken:
            i += 1
            new = f"{base}_{i}"
        taken.add(new)
        report(name, name_problem(name, new) or "", fixes=(Fix.rename(new),))


_CYCLE_SHOWN = 6  # layers a cycle's description names; a longer cycle shows its ends and its length


def _cycle_text(loop: list[str]) -> str:
    """``a → b → c → a``, or ``a → b → c → … → y → z → a (10,000 layers)`` for a long one."""
    if len(loop) <= _CYCLE_SHOWN:
        return " → ".join(loop + [loop[0]])
    head, tail = loop[: _CYCLE_SHOWN // 2], loop[-(_CYCLE_SHOWN // 2):]
    return " → ".join(head + ["…"] + tail + [loop[0]]) + f" ({len(loop):,} layers)"


def _report_cycles(design: Design, stuck_calls: list[TensorRef], problems: list[Problem],
                   pre: dict[str, list[Problem]]) -> frozenset[str]:
    """Report each cycle once, in ``problems``, as a problem of the design naming it (shortened
    when long); its layers get a short error of their own in ``pre`` (so the canvas marks them).
    Returns the layers behind a cycle, which are blocked. Linear: each stuck layer is walked once."""
    stuck = {ref.node for ref in stuck_calls}
    done: set[str] = set()
    loops: list[list[str]] = []
    for start in design.nodes:
        if start not in stuck or start in done:
            continue
        # Walk inputs backwards until a layer repeats (a loop) or an earlier walk is met.
        path: list[str] = []
        index: dict[str, int] = {}
        current: str | None = start
        while current is not None and current not in index and current not in done:
            index[current] = len(path)
            path.append(current)
            current = next((r.node for refs in design.nodes[current].inbound for r in refs
                            if r.node in stuck), None)
        done.update(path)
        if current is not None and current in index:
            loops.append(path[index[current]:][::-1])
    rank = {name: i for i, name in enumerate(design.nodes)} if loops else {}
    on_loop: set[str] = set()
    for loop in loops:
        first = min(range(len(loop)), key=lambda i: rank[loop[i]])
        loop = loop[first:] + loop[:first]  # from the layer that comes first in the design
        text = _cycle_text(loop)
        problems.append(Problem(None, f"the design has a cycle: {text}; a network must flow one way: "
                                "remove one of these connections"))
        mine = f"is part of a cycle ({text}); remove one of its connections"  # one text for all
        for name in loop:
            pre.setdefault(name, []).append(Problem(name, mine))
        on_loop.update(loop)
    return frozenset(stuck - on_loop)
