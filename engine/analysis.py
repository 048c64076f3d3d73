"""Analysis of a design: every shape, parameter count, cost and problem, as Keras would see it.

The analysis is a single topological pass (Kahn's algorithm, no recursion) over the *calls* of
the design's layers, so a layer applied twice in a row, or a 10,000-layer chain, is fine. It
imports nothing heavy: it is pure arithmetic over the layer catalogue.

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

from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

from .design import Design, TensorRef, call_order, name_problem, safe_name, valid_name
from .layers import CATALOGUE, Field, Fix, LayerError
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


@dataclass
class Analysis:
    """The analysis of a whole design: per-node reports in execution order, problems and totals."""

    nodes: dict[str, NodeReport]
    order: list[str]
    problems: list[Problem]
    outputs: list[TensorRef]
    batch_size: int = 1
    peak_inference_bytes: int = 0

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

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable_params for r in self.nodes.values())

    @property
    def non_trainable_params(self) -> int:
        return sum(r.non_trainable_params for r in self.nodes.values())

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def weight_bytes(self) -> int:
        return BYTES_PER_VALUE * self.total_params

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.nodes.values())

    @property
    def activation_bytes_per_sample(self) -> int:
        return sum(r.activation_bytes for r in self.nodes.values())

    @property
    def activation_bytes(self) -> int:
        return self.batch_size * self.activation_bytes_per_sample


def analyse(design: Design, batch_size: int = 1, input_range: PixelRange | None = None) -> Analysis:
    """Analyse ``design``: never raises for a bad design, reports problems instead.
    ``input_range``, the pixel range the training data delivers, when known, adds a warning with
    fixes wherever the design expects the other range (see :mod:`engine.pixel_range`)."""
    analysis = _analyse(design, batch_size, branch_fixes=True)
    if input_range is not None:
        _add_range_warnings(design, analysis, input_range)
    return analysis


def _add_range_warnings(design: Design, analysis: Analysis, input_range: PixelRange) -> None:
    valid = {name: rep.args for name, rep in analysis.nodes.items() if rep.valid}
    for found in range_problems(design, valid, analysis.order, input_range):
        problem = Problem(found.node, found.message, Severity.WARNING, found.fixes)
        analysis.problems.append(problem)
        analysis.nodes[found.node].problems.append(problem)


def _analyse(design: Design, batch_size: int, branch_fixes: bool) -> Analysis:
    """The analysis; ``branch_fixes`` looks up the branches of a failing merge for a layer whose
    padding, set to 'same', would make it fit (found by trying: see :func:`_padding_fixes`)."""
    reports: dict[str, NodeReport] = {}
    problems: list[Problem] = []

    def report(node: str | None, message: str, severity: Severity = Severity.ERROR,
               fixes: tuple[Fix, ...] = (), arg: str | None = None) -> None:
        problem = Problem(node, message, severity, tuple(fixes), arg)
        problems.append(problem)
        if node is not None and node in reports:
            reports[node].problems.append(problem)

    # 1. Each node on its own: known kind, valid arguments.
    specs = {}
    for node in design.nodes.values():
        rep = reports[node.name] = NodeReport(node.name, node.kind)
        rep.input_shapes = [[] for _ in node.inbound]
        rep.output_shapes = [None] * len(node.inbound)
        spec = CATALOGUE.get(node.kind)
        if spec is None:
            report(node.name, f"{node.kind} is not a layer type Convas supports; replace it with a "
                   "catalogue layer or remove it")
            continue
        specs[node.name] = spec
        rep.args, bad_args = _normalised(spec, node.args)
        for arg, why in bad_args.items():
            report(node.name, why, arg=arg)
        unknown = set(node.args) - {p.name for p in spec.params}
        for arg in sorted(unknown):
            report(node.name, f"{node.kind} has no argument {arg!r}", arg=arg)

    # 2. Order the calls topologically; references must exist.
    ordering = call_order(design)
    for name, ref in ordering.dangling:
        report(name, f"its input {ref} does not exist; reconnect it")
    order_calls = ordering.order
    if ordering.stuck:
        _report_cycles(design, ordering.stuck, reports, report)

    # 3. Shapes, weights and costs, in order.
    shapes: dict[TensorRef, Shape | None] = {}
    fields: dict[TensorRef, Field | None] = {}
    weights_of: dict[str, tuple[int, int]] = {}
    built_with: dict[str, list[Shape]] = {}  # the input shapes of the call that built each layer
    failed_merges: list[str] = []
    for ref in order_calls:
        node = design.nodes[ref.node]
        rep = reports[node.name]
        spec = specs.get(node.name)
        in_refs = node.inbound[ref.call]
        in_shapes = [shapes.get(r) for r in in_refs]
        rep.input_shapes[ref.call] = [s for s in in_shapes if s is not None]
        out: Shape | None = None
        if spec is None or rep.errors:
            shapes[ref] = None
            continue
        if any(s is None for s in in_shapes):
            rep.blocked = True
        elif len(in_refs) < spec.min_inputs:
            need = "an input" if spec.min_inputs == 1 else f"{spec.min_inputs} inputs"
            report(node.name, f"has no input; connect {need} to it" if not in_refs else
                   f"needs {need} but has {len(in_refs)}; connect another")
        elif spec.max_inputs is not None and len(in_refs) > spec.max_inputs:
            report(node.name, f"takes {spec.max_inputs} input{'s' if spec.max_inputs != 1 else ''} "
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
                if node.name in built_with:
                    _check_shared_call(spec.group, weights, weights_of[node.name], built_with[node.name], shapes_in)
                else:
                    weights_of[node.name] = weights
                    built_with[node.name] = shapes_in
                    rep.trainable_params, rep.non_trainable_params = weights
                macs = spec.macs(rep.args, shapes_in, out)
                _check_count(macs, "multiply-accumulates per sample",
                             "make its input smaller or use fewer units or filters")
                rep.macs += macs
                rep.activation_bytes += BYTES_PER_VALUE * elements(out)
                field_out = _bounded_field(spec.field(rep.args, [fields.get(r) for r in in_refs],
                                                      shapes_in, out))
                fields[ref] = field_out
                if ref.call == 0:
                    rep.rf = field_out
                if spec.lint is not None and ref.call == 0:
                    for message, fixes in spec.lint(rep.args, shapes_in, out):
                        report(node.name, message, Severity.WARNING, fixes)
            except LayerError as exc:
                out = None
                report(node.name, exc.message, fixes=exc.fixes)
                if spec.group == "Merge" and ref.call == 0:
                    failed_merges.append(node.name)
        shapes[ref] = out
        rep.output_shapes[ref.call] = out

    if branch_fixes:
        for name in failed_merges:
            extra = _padding_fixes(design, reports, name)
            if extra:
                old = reports[name].errors[-1]
                new = Problem(old.node, old.message, old.severity, extra + old.fixes, old.arg)
                problems[problems.index(old)] = new
                reports[name].problems[reports[name].problems.index(old)] = new

    # 4. Whole-design checks.
    if not any(n.kind == "InputLayer" for n in design.nodes.values()):
        report(None, "the design has no InputLayer; add one to say what a sample looks like")
    consumed = {r.node for n in design.nodes.values() for refs in n.inbound for r in refs}
    for name in design.input_names():
        if name not in consumed and len(design.nodes) > 1:
            report(name, "is not connected to any layer; connect it or delete it", Severity.WARNING)
    _report_names(design, report)

    ordered = dict.fromkeys(r.node for r in order_calls)
    node_order = list(ordered) + [n for n in design.nodes if n not in ordered]
    outputs = design.output_refs()
    peak = _peak_live_bytes(design, order_calls, shapes, outputs)
    return Analysis({n: reports[n] for n in node_order}, node_order, problems, outputs,
                    batch_size, batch_size * peak)


_BRANCH_FIX_STEPS = 64      # how far up each branch of a failing merge a padding fix is looked for
_BRANCH_FIX_TRIALS = 8      # how many candidate layers are tried (each trial is one analysis)


def _padding_fixes(design: Design, reports: dict[str, NodeReport], merge: str) -> tuple[Fix, ...]:
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
            rep = reports[name]
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
        if v > MAX_COUNT or Fraction(v).denominator > MAX_COUNT:  # both are positive
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


def _report_cycles(design: Design, stuck_calls: list[TensorRef], reports: dict[str, NodeReport],
                   report: Any) -> None:
    """Report each cycle once, as a problem of the design naming it (shortened when long); its
    layers get a short error of their own (so the canvas marks them), the layers behind a cycle
    are blocked. Linear: each stuck layer is walked once."""
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
        report(None, f"the design has a cycle: {text}; a network must flow one way: remove one of "
               "these connections")
        mine = f"is part of a cycle ({text}); remove one of its connections"  # one text for all
        for name in loop:
            reports[name].problems.append(Problem(name, mine))
        on_loop.update(loop)
    for name in stuck - on_loop:
        reports[name].blocked = True


def _peak_live_bytes(design: Design, order: list[TensorRef], shapes: dict[TensorRef, Shape | None],
                     outputs: list[TensorRef]) -> int:
    """Largest per-sample total of tensors alive at once while running ``order``."""
    last_use: dict[TensorRef, int] = {}
    for i, ref in enumerate(order):
        for src in design.nodes[ref.node].inbound[ref.call]:
            last_use[src] = i
    keep = set(outputs)
    live = peak = 0
    frees: dict[int, list[TensorRef]] = {}
    for ref, i in last_use.items():
        if ref not in keep:
            frees.setdefault(i, []).append(ref)
    for i, ref in enumerate(order):
        shape = shapes.get(ref)
        live += BYTES_PER_VALUE * elements(shape) if shape is not None else 0
        peak = max(peak, live)
        for gone in frees.get(i, ()):
            s = shapes.get(gone)
            live -= BYTES_PER_VALUE * elements(s) if s is not None else 0
    return peak
