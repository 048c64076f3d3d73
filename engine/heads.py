"""Fit a network's head to the data: the one-click "replace the head for this dataset".

A network imported from Keras (or drawn for other data) ends in a classifier for someone else's
classes: MobileNetV2's ``predictions`` gives 1000 ImageNet scores, and a backbone read without its
classifier ends in a feature map. :func:`plan_fit_head` returns the ops (one undo step) that make
the output fit a task and the number of classes, labels or targets the data has:

- classification: the last Dense gives K units through a softmax (K = 2 too: two softmax units,
  which sparse categorical cross-entropy trains on class indices);
- multi-label: L units through a sigmoid; regression: T units, linear;
- segmentation: the final convolution gives C channels through a softmax;
- a design that ends in a feature map or a pooled vector with no classifier gains one, below its
  output: GlobalAveragePooling2D (only for a feature map) → Dropout(0.2) → Dense(K, activation)
  (a 1×1 Conv2D for segmentation).

The layer whose units change is unfrozen: its weights are new. When nothing needs to change, or
the design cannot be fitted, :class:`HeadRefused` says why, with a :class:`HeadRefusal` reason
for code to act on. Pure: it reads a design and its analysis, and returns ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .analysis import Analysis
from .design import Design, TensorRef
from .editing import ROW, AddNode, Connect, EditRefused, Op, SetArg, SetOutputs, plan_delete, plan_set_trainable
from .tasks import Task

# Layers between a classifier and the output that keep its meaning: they are walked through to
# find the layer whose units count the classes.
PASS_THROUGH_KINDS = frozenset({"Activation", "Softmax", "Dropout", "Flatten", "Reshape"})
# Activations a classifier's last layer may have; any other (relu, …) marks a hidden layer.
OUTPUT_ACTIVATIONS = frozenset({"softmax", "sigmoid", "linear"})
HEAD_DROPOUT = 0.2


class HeadRefusal(StrEnum):
    """Why :func:`plan_fit_head` changed nothing."""

    ALREADY_FITS = "already_fits"      # the output already gives what the data needs
    INVALID = "invalid"                # the design has problems to fix first
    OUTPUTS = "outputs"                # not exactly one output
    RECONSTRUCTION = "reconstruction"  # the output is the image itself: nothing to fit
    NOT_A_MAP = "not_a_map"            # segmentation, but the output is not an image-shaped map
    NO_COUNT = "no_count"              # the data gave no number of classes or targets


class HeadRefused(EditRefused):
    """Fitting the head changed nothing; ``reason`` says why for code, the message for people."""

    def __init__(self, reason: HeadRefusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def head_activation(task: Task) -> str:
    """The output activation ``task`` trains with."""
    return {Task.CLASSIFICATION: "softmax", Task.MULTILABEL: "sigmoid", Task.REGRESSION: "linear",
            Task.SEGMENTATION: "softmax"}.get(task, "linear")


def _noun(task: Task, count: int) -> str:
    """"class"/"classes", "label"/"labels", … : what one output value of ``task`` stands for."""
    one = {Task.CLASSIFICATION: "class", Task.MULTILABEL: "label", Task.REGRESSION: "target",
           Task.SEGMENTATION: "mask class"}.get(task, "value")
    if count == 1:
        return one
    return one + ("es" if one.endswith("s") else "s")


def _what(task: Task, count: int, names: Sequence[str] | None = None) -> str:
    """``10 classes (cat, dog, …)``."""
    text = f"{count} {_noun(task, count)}"
    if names:
        shown = ", ".join(str(n) for n in list(names)[:4]) + (", …" if len(names) > 4 else "")
        text += f" ({shown})"
    return text


@dataclass(frozen=True)
class _Head:
    """What the output of a design is made of, walking back from it."""

    output: str                  # the output layer
    trailing: list[str]          # pass-through layers from the output back (output first)
    last: str                    # the first layer before them that is not a pass-through


def _walk(design: Design, output: str) -> _Head:
    trailing: list[str] = []
    name = output
    while design.nodes[name].kind in PASS_THROUGH_KINDS and len(design.nodes[name].inputs) == 1 \
            and design.nodes[name].calls == 1:
        trailing.append(name)
        name = design.nodes[name].inputs[0].node
    return _Head(output, trailing, name)


def _act(args: dict[str, Any]) -> str:
    value = args.get("activation")
    return str(value).lower() if isinstance(value, str) else "linear"


def _kernel_is_one(args: dict[str, Any]) -> bool:
    kernel = args.get("kernel_size")
    sizes = kernel if isinstance(kernel, (list, tuple)) else (kernel,)
    return all(k == 1 for k in sizes)


def _the_output(design: Design, analysis: Analysis) -> tuple[str, tuple[int | None, ...]]:
    outputs = design.output_refs()
    if len(outputs) != 1:
        raise HeadRefused(HeadRefusal.OUTPUTS,
                          f"the design has {len(outputs)} outputs; fitting the head needs exactly one "
                          "(delete the others, or fit each by hand)")
    name = outputs[0].node
    report = analysis.nodes.get(name)
    shape = report.output_shapes[outputs[0].call] if report is not None and report.output_shapes else None
    if shape is None or not analysis.valid:
        raise HeadRefused(HeadRefusal.INVALID,
                          "the design has problems; fix them (see the Problems panel) before fitting "
                          "the head to the data")
    return name, tuple(shape)


def plan_fit_head(design: Design, analysis: Analysis, task: Task, outputs: int,
                  names: Sequence[str] | None = None) -> list[Op]:
    """The ops that make the design's output fit ``task`` with ``outputs`` classes (labels,
    targets, mask classes); ``names`` of those, when known, only make messages clearer.
    :class:`HeadRefused` when nothing needs to change or the design cannot be fitted."""
    task = Task(task)
    if task is Task.RECONSTRUCTION:
        raise HeadRefused(HeadRefusal.RECONSTRUCTION,
                          "a reconstruction network's output is the image itself: there is no head "
                          "to fit to the data")
    if not isinstance(outputs, int) or isinstance(outputs, bool) or outputs < 1:
        raise HeadRefused(HeadRefusal.NO_COUNT,
                          f"the data gives no number of classes or targets ({outputs!r}); load a "
                          "dataset with labels or targets first")
    output, shape = _the_output(design, analysis)
    if task is Task.SEGMENTATION:
        return _fit_segmentation(design, analysis, output, shape, outputs, names)
    return _fit_vector(design, analysis, task, output, shape, outputs, names)


def _final_activation(design: Design, analysis: Analysis, head: _Head) -> str:
    """The activation the output ends with: the outermost Activation or Softmax layer's, else
    the last weighted layer's own."""
    for name in head.trailing:
        kind = design.nodes[name].kind
        if kind == "Softmax":
            return "softmax"
        if kind == "Activation":
            return _act(analysis.nodes[name].args)
    return _act(analysis.nodes[head.last].args)


def _activation_ops(design: Design, analysis: Analysis, head: _Head, act: str) -> list[Op]:
    """Make the output end in ``act``: set the outermost Activation layer (the weighted layer
    then gives logits), keep a Softmax layer only for a softmax, else set the weighted layer."""
    ops: list[Op] = []
    last_act = _act(analysis.nodes[head.last].args)
    activations = [n for n in head.trailing if design.nodes[n].kind == "Activation"]
    softmaxes = [n for n in head.trailing if design.nodes[n].kind == "Softmax"]
    if softmaxes and act != "softmax":
        ops += plan_delete(design, softmaxes)  # a Softmax layer cannot give another activation
        softmaxes = []
    if activations or softmaxes:
        if activations and _act(analysis.nodes[activations[0]].args) != act:
            ops.append(SetArg(activations[0], "activation", act))
        if last_act != "linear":
            ops.append(SetArg(head.last, "activation", "linear"))
    elif last_act != act:
        ops.append(SetArg(head.last, "activation", act))
    return ops


def _finish(design: Design, ops: list[Op], last: str, message: str) -> list[Op]:
    """``ops``, with the resized layer unfrozen (its weights are new); :class:`HeadRefused`
    with ``message`` when there are none."""
    if not ops:
        raise HeadRefused(HeadRefusal.ALREADY_FITS, message)
    if any(isinstance(op, SetArg) and op.arg in ("units", "filters") for op in ops):
        ops += plan_set_trainable(design, [last], True)
    return ops


def _fit_vector(design: Design, analysis: Analysis, task: Task, output: str,
                shape: tuple[int | None, ...], count: int, names: Sequence[str] | None) -> list[Op]:
    act = head_activation(task)
    head = _walk(design, output)
    last = design.nodes[head.last]
    args = analysis.nodes[head.last].args
    # A Dense (or a Conv2D flattened after it) ending in an output activation is a classifier; a
    # relu one is a hidden layer whose classifier was removed.
    classifier = (len(shape) == 2 and last.kind in ("Dense", "Conv2D")
                  and _final_activation(design, analysis, head) in OUTPUT_ACTIVATIONS)
    if last.kind == "Conv2D" and not any(design.nodes[n].kind in ("Flatten", "Reshape") for n in head.trailing):
        classifier = False
    if not classifier:
        return _insert_head(design, output, shape, "Dense", {"units": count, "activation": act})
    ops: list[Op] = []
    arg = "units" if last.kind == "Dense" else "filters"
    if args.get(arg) != count:
        ops.append(SetArg(last.name, arg, count))
    for name in head.trailing:  # a Reshape to the old count reshapes to the new one
        if design.nodes[name].kind == "Reshape":
            target = analysis.nodes[name].args.get("target_shape")
            if isinstance(target, (list, tuple)) and len(target) == 1 and target[0] != count:
                ops.append(SetArg(name, "target_shape", (count,)))
    ops += _activation_ops(design, analysis, head, act)
    return _finish(design, ops, last.name, f"{last.name} already gives {_what(task, count, names)} "
                                           f"through a {act}; the head fits the data")


def _fit_segmentation(design: Design, analysis: Analysis, output: str, shape: tuple[int | None, ...],
                      count: int, names: Sequence[str] | None) -> list[Op]:
    if len(shape) != 4:
        raise HeadRefused(HeadRefusal.NOT_A_MAP,
                          f"a segmentation network outputs an image-shaped map (height, width, "
                          f"classes), but this one's output is {shape[1:]}; end it in a Conv2D with "
                          f"one filter per mask class")
    head = _walk(design, output)
    if any(design.nodes[n].kind not in ("Activation", "Softmax") for n in head.trailing):
        head = _Head(output, [], output)  # a Dropout or a Reshape at the end: not a classifier's
    last = design.nodes[head.last]
    args = analysis.nodes[head.last].args
    if last.kind not in ("Conv2D", "Conv2DTranspose") or not (
            _kernel_is_one(args) or _final_activation(design, analysis, head) in OUTPUT_ACTIVATIONS):
        return _insert_head(design, output, shape, "Conv2D",
                            {"filters": count, "kernel_size": 1, "activation": "softmax"})
    ops: list[Op] = []
    if args.get("filters") != count:
        ops.append(SetArg(last.name, "filters", count))
    ops += _activation_ops(design, analysis, head, "softmax")
    return _finish(design, ops, last.name, f"{last.name} already gives "
                                           f"{_what(Task.SEGMENTATION, count, names)} per pixel through "
                                           "a softmax; the head fits the data")


def _below(design: Design, output: str) -> tuple[float, float] | None:
    """Where the card of ``output`` is drawn: its collapsed group's card when it is hidden."""
    group = design.collapsed_group(output)
    if group is not None and design.groups[group].position is not None:
        return design.groups[group].position
    return design.nodes[output].position


def _insert_head(design: Design, output: str, shape: tuple[int | None, ...], kind: str,
                 args: dict[str, Any]) -> list[Op]:
    """A new head after ``output``: pooling (for a feature map, unless segmenting), dropout and
    ``kind``; the last becomes the output, laid out in a column below the old output."""
    layers: list[tuple[str, str, dict[str, Any]]] = []
    if kind == "Dense" and len(shape) == 4:
        layers.append(("GlobalAveragePooling2D", "head_pooling", {}))
    elif kind == "Dense" and len(shape) != 2:
        layers.append(("Flatten", "head_flatten", {}))
    if kind == "Dense":
        layers.append(("Dropout", "head_dropout", {"rate": HEAD_DROPOUT}))
    layers.append((kind, "predictions" if kind == "Dense" else "segmentation", args))
    taken = set(design.nodes)
    ops: list[Op] = []
    where = _below(design, output)
    previous = TensorRef(output, 0)
    for i, (layer_kind, stem, layer_args) in enumerate(layers, 1):
        name, n = stem, 0
        while name in taken:
            n += 1
            name = f"{stem}_{n}"
        taken.add(name)
        position = None if where is None else (where[0], where[1] + i * ROW)
        ops += [AddNode(layer_kind, name, dict(layer_args), position), Connect(previous, name)]
        previous = TensorRef(name, 0)
    if design.outputs:  # declared outputs (an imported model): the new head replaces the old one
        ops.append(SetOutputs(tuple(previous if r.node == output else r for r in design.outputs)))
    return ops


def head_problem(design: Design, analysis: Analysis, task: Task, outputs: int,
                 names: Sequence[str] | None = None) -> str | None:
    """What in the design's output does not fit ``outputs`` classes (labels, targets) of ``task``,
    for a button that offers to fit it; None when it fits, or fitting cannot help (reconstruction,
    a design with problems, several outputs: those are said elsewhere)."""
    try:
        ops = plan_fit_head(design, analysis, task, outputs, names)
    except HeadRefused as refused:
        return None if refused.reason in (HeadRefusal.ALREADY_FITS, HeadRefusal.RECONSTRUCTION,
                                          HeadRefusal.INVALID, HeadRefusal.OUTPUTS,
                                          HeadRefusal.NO_COUNT) else str(refused)
    want = _what(task, outputs, names)
    if any(isinstance(op, AddNode) for op in ops):
        output = design.output_refs()[0].node
        return (f"the design ends at {output}, with no layer giving one value per {_noun(task, 1)}; the "
                f"data has {want}: Fit Head to Data adds a head")
    sized = [op for op in ops if isinstance(op, SetArg) and op.arg in ("units", "filters")]
    if sized:
        op = sized[0]
        current = analysis.nodes[op.name].args.get(op.arg)
        return (f"{op.name} gives {current} {op.arg}, but the data has {want}; Fit Head to Data sets "
                f"{op.arg}={outputs}")
    return (f"the output's activation does not suit {task.value}; Fit Head to Data sets it to "
            f"{head_activation(task)}")
