"""Export a design as a readable, runnable Keras 3 Python script, and prove the script rebuilds it.

The script defines ``build_model()`` (a ``keras.Sequential`` for a simple chain, the functional
API otherwise), compiles the model with the training settings and shows the ``fit`` call to
adapt. Every value that comes from the user (layer names, the design name, argument values) is
written as the ``repr`` of plain Python data, never spliced into code or comments any other way,
so that a hostile layer name can only ever become a layer name.

Operations are written as the ``keras.ops`` call they are (``keras.ops.add(x, 3.0)``); when a
layer of the design bears a name Keras would also give such an operation (``add``, ``add_1``, …),
which would make the model's names clash, or an operation node is applied more than once, the
operation's class is imported and created under the node's name instead
(``Add(name="add_7")(x, 3.0)``). Keras's helper layers of ``keras.applications`` are imported from
their Keras module (``from keras.src.applications.convnext import LayerScale``).

Keras is imported inside the functions only: importing this module costs nothing.
"""

from __future__ import annotations

import builtins
import json
import keyword
import math
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..design import Design, Node, TensorRef
from ..errors import ConvasError, last_line
from ..keras_build import _INPUT_CONFIG, _keras_value, execution_order, keras_arguments, operands
from ..layers import CATALOGUE, KERAS_CLASSES, OPERATIONS, Param, keras_class_of
from ..layers.base import ArgError, normalise_value
from ..layers.ops import OPS_FUNCTIONS
from ..pixel_range import PixelRange
from ..tasks import DICE, OutputShape, Task, infer_task, one_hot_masks, spec
from ..training import MSE, TrainingConfig, choose_loss

# Names the script itself uses; a tensor variable must never shadow them.
_RESERVED = frozenset({"keras", "layers", "build_model", "model", "inputs", "outputs", "DESIGN_NAME",
                       "INPUT_RANGE"})
_INDENT = "    "
VERIFY_TIMEOUT_S = 300
# The project root, so that the verifying subprocess can import this module's layer_summary.
_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PythonCheck:
    """Whether a generated script rebuilt the same model: ``layers`` compared, ``detail`` says
    what differed (or why the script could not run) in one line."""

    ok: bool
    detail: str
    layers: int


# --------------------------------------------------------------------------------------------
# Plain data as code

def literal(value: Any) -> str:
    """Python source for ``value``, which must be plain data (None, bool, int, float, str and
    tuples, lists and dicts of them); :class:`ConvasError` for anything else.

    Non-finite floats become ``float('nan')``/``float('inf')``, which ``repr`` cannot say.
    """
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "float('nan')"
        if math.isinf(value):
            return "float('inf')" if value > 0 else "-float('inf')"
        return repr(float(value))
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(literal(v) for v in value)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise ConvasError(f"cannot write a value of type {type(value).__name__} into a Python script; "
                      "only numbers, text, true/false, None and lists or mappings of them")


def _comment_text(text: str, limit: int = 60) -> str:
    """User text made safe for a comment or docstring: one line of harmless characters."""
    safe = re.sub(r"[^A-Za-z0-9_ .-]", "_", text)[:limit]
    return safe or "_"


# --------------------------------------------------------------------------------------------
# Names

class _Names:
    """Unique Python identifiers derived from layer names (never one of ``taken``)."""

    def __init__(self, taken: frozenset[str] = frozenset()) -> None:
        self.used: set[str] = set(_RESERVED) | set(taken)

    def new(self, stem: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", stem) or "t"
        if base[0].isdigit():
            base = f"t_{base}"
        if keyword.iskeyword(base) or keyword.issoftkeyword(base) or hasattr(builtins, base) \
                or base.startswith("__"):
            base = f"{base.strip('_') or 't'}_"
        name, i = base, 1
        while name in self.used:
            name = f"{base}_{i}"
            i += 1
        self.used.add(name)
        return name


# --------------------------------------------------------------------------------------------
# Arguments

def _default_value(param: Param) -> tuple[bool, Any]:
    """(known, value): the catalogue default of ``param`` in the form :func:`keras_arguments`
    gives, so that an argument equal to it can be left out of the script."""
    if param.required:
        return False, None
    try:
        return True, _keras_value(param, normalise_value(param, param.default))
    except ArgError:
        return False, None


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types (so that ``1 == True`` or ``(1,) == [1]`` do not count)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def layer_kwargs(node: Node) -> dict[str, Any]:
    """The constructor arguments of ``node`` worth writing: those not equal to the catalogue's
    default (config entries, which have no known default, are always kept)."""
    kwargs = keras_arguments(node)
    for param in CATALOGUE[node.kind].params:
        known, default = _default_value(param)
        if known and param.name not in node.config and _same(kwargs.get(param.name), default):
            kwargs.pop(param.name, None)
    return kwargs


def _call_args(items: list[tuple[str, str]]) -> str:
    """``k=v, ...`` from (keyword, code) pairs; keywords are checked to be identifiers."""
    for key, _ in items:
        if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
            raise ConvasError(f"cannot write an argument named {key!r} into a Python script")
    return ", ".join(f"{k}={v}" for k, v in items)


def _layer_call(node: Node) -> str:
    """``layers.Kind(arg=..., name=...)`` for a non-input node (``Class(...)`` for a class the
    script imports from its Keras module, :func:`_imports`)."""
    if not node.kind.isidentifier():
        raise ConvasError(f"{node.name!r}: {node.kind!r} is not a Keras layer class")
    items = [(k, literal(v)) for k, v in layer_kwargs(node).items()]
    if not node.trainable:  # frozen: Keras keeps its weights as they are in training
        items.append(("trainable", "False"))
    items.append(("name", literal(node.name)))
    module, cls = keras_class_of(node.kind)
    return f"{'layers.' if module == 'keras.layers' else ''}{cls}({_call_args(items)})"


# Names Keras gives operations it names itself: "add", "add_1", … (one counter per class).
_AUTO_OPERATION_NAME = re.compile(rf"(?:{'|'.join(OPS_FUNCTIONS.values())})(?:_\d+)?")


def _operations_by_class(design: Design) -> bool:
    """Whether the script creates operations from their classes, under their names, rather than
    as ``keras.ops`` calls: when one is applied several times, or another layer's name is one
    Keras could give an operation (the model would then hold two operations of one name)."""
    return any(node.kind in OPERATIONS and node.calls > 1 for node in design) or any(
        node.kind not in OPERATIONS and _AUTO_OPERATION_NAME.fullmatch(node.name) for node in design)


def _imports(design: Design) -> dict[str, list[str]]:
    """Keras module → the classes the script imports from it (kinds outside ``keras.layers``)."""
    by_class = _operations_by_class(design)
    wanted: dict[str, list[str]] = {}
    for kind in dict.fromkeys(node.kind for node in design):
        if kind in KERAS_CLASSES and (kind not in OPERATIONS or by_class):
            module, cls = KERAS_CLASSES[kind]
            wanted.setdefault(module, []).append(cls)
    return {module: sorted(classes) for module, classes in sorted(wanted.items())}


def _input_call(node: Node) -> str:
    """``keras.Input(shape=..., name=...)`` for an InputLayer node."""
    args, problems = CATALOGUE["InputLayer"].normalise(node.args)
    if problems:
        raise ConvasError(f"{node.name}: {'; '.join(problems.values())}")
    items = [("shape", literal(tuple(args["shape"])))]
    if args.get("batch_size") is not None:
        items.append(("batch_size", literal(args["batch_size"])))
    items += [(k, literal(node.config[k])) for k in _INPUT_CONFIG if k in node.config]
    items.append(("name", literal(node.name)))
    return f"keras.Input({_call_args(items)})"


# --------------------------------------------------------------------------------------------
# The model

def chain_order(design: Design) -> list[Node] | None:
    """The nodes of ``design`` from input to output when it is a simple chain (one InputLayer,
    every other layer applied once to the previous one, one output); None otherwise."""
    inputs = design.input_names()
    if len(inputs) != 1 or len(design.output_refs()) != 1:
        return None
    nodes = [design.nodes[inputs[0]]]
    remaining = len(design) - 1
    while remaining:
        consumers = design.consumers(nodes[-1].name)
        if len(consumers) != 1:
            return None
        node = design.nodes[consumers[0][0]]
        spec = CATALOGUE.get(node.kind)
        if node.calls != 1 or len(node.inputs) != 1 or spec is None or spec.max_inputs != 1 \
                or node.inputs[0] != TensorRef(nodes[-1].name, 0):
            return None
        nodes.append(node)
        remaining -= 1
    if design.consumers(nodes[-1].name) or design.output_refs() != [TensorRef(nodes[-1].name, 0)]:
        return None
    return nodes


def _sequential_body(design: Design, nodes: list[Node]) -> list[str]:
    lines = [f"{_INDENT}model = keras.Sequential(["]
    lines.append(f"{_INDENT * 2}{_input_call(nodes[0])},")
    lines += [f"{_INDENT * 2}{_layer_call(node)}," for node in nodes[1:]]
    lines.append(f"{_INDENT}], name=DESIGN_NAME)")
    return lines


def _functional_body(design: Design) -> list[str]:
    names = _Names(frozenset(cls for classes in _imports(design).values() for cls in classes))
    by_class = _operations_by_class(design)
    tensors: dict[TensorRef, str] = {}
    layer_vars: dict[str, str] = {}
    lines: list[str] = []
    for ref in execution_order(design):
        node = design.nodes[ref.node]
        var = names.new(node.name if ref.call == 0 else f"{node.name}_call{ref.call}")
        tensors[ref] = var
        if node.kind == "InputLayer":
            lines.append(f"{_INDENT}{var} = {_input_call(node)}")
            continue
        spec = CATALOGUE.get(node.kind)
        if spec is None:
            keras_arguments(node)  # raises the engine's message for an unknown kind
        assert spec is not None
        inbound = node.inbound[ref.call]
        if node.kind in OPERATIONS:
            given = operands(node, [tensors[r] for r in inbound])
            argument = ", ".join(x if isinstance(x, str) else literal(x) for x in given)
            if not by_class:
                lines.append(f"{_INDENT}{var} = keras.ops.{OPS_FUNCTIONS[node.kind]}({argument})")
                continue
            operation = f"{keras_class_of(node.kind)[1]}(name={literal(node.name)})"
            if node.calls == 1:
                lines.append(f"{_INDENT}{var} = {operation}({argument})")
                continue
            if node.name not in layer_vars:
                layer_vars[node.name] = names.new(f"{node.name}_op")
                lines.append(f"{_INDENT}{layer_vars[node.name]} = {operation}")
            lines.append(f"{_INDENT}{var} = {layer_vars[node.name]}({argument})")
            continue
        if spec.max_inputs == 1:
            if len(inbound) != 1:
                raise ConvasError(f"{node.name}: takes 1 input but has {len(inbound)}")
            argument = tensors[inbound[0]]
        else:
            argument = f"[{', '.join(tensors[r] for r in inbound)}]"
        if node.calls == 1:
            lines.append(f"{_INDENT}{var} = {_layer_call(node)}({argument})")
            continue
        if node.name not in layer_vars:  # a shared layer: one object, called once per use
            layer_vars[node.name] = names.new(f"{node.name}_layer")
            lines.append(f"{_INDENT}{layer_vars[node.name]} = {_layer_call(node)}")
        lines.append(f"{_INDENT}{var} = {layer_vars[node.name]}({argument})")
    ins = [tensors[TensorRef(n, 0)] for n in design.input_names()]
    outs = [tensors[r] for r in design.output_refs()]
    if not ins:
        raise ConvasError("the design has no InputLayer; add one to say what a sample looks like")
    if not outs:
        raise ConvasError("the design has no output")
    inputs = ins[0] if len(ins) == 1 else f"[{', '.join(ins)}]"
    outputs = outs[0] if len(outs) == 1 else f"[{', '.join(outs)}]"
    lines.append(f"{_INDENT}model = keras.Model(inputs={inputs}, outputs={outputs}, name=DESIGN_NAME)")
    return lines


# --------------------------------------------------------------------------------------------
# Training settings

def script_task(design: Design, training: TrainingConfig) -> Task:
    """The task the script compiles for: the configured one, else the one the design's single
    output suggests (engine.tasks.infer_task, with no data to go by)."""
    if training.task is not None:
        return training.task
    from ..analysis import analyse
    from ..data_source import model_io

    try:
        io = model_io(design, analyse(design))
    except ConvasError:
        return Task.CLASSIFICATION
    return infer_task(OutputShape(io.input_shape, io.output_shape, io.output_activation))


# How the script names the metrics a task logs (engine.tasks.keras_metrics builds the same).
_METRIC_SOURCE = {
    (Task.MULTILABEL, "accuracy"): 'keras.metrics.BinaryAccuracy(name="accuracy")',
    (None, "precision"): 'keras.metrics.Precision(name="precision")',
    (None, "recall"): 'keras.metrics.Recall(name="recall")',
    (None, "mae"): 'keras.metrics.MeanAbsoluteError(name="mae")',
    (None, "r2"): 'keras.metrics.R2Score(name="r2")',
}


def script_metrics(design: Design, training: TrainingConfig) -> str:
    """The source of the ``metrics=`` list: the task's own metrics, then the configured extras."""
    task = script_task(design, training)
    names = list(spec(task).metrics) + [m for m in training.metrics if m not in spec(task).metrics]
    parts = []
    for name in names:
        code = _METRIC_SOURCE.get((task, name)) or _METRIC_SOURCE.get((None, name))
        if name == "mean_iou":
            classes = _units(design, design.output_refs()[0].node) if design.output_refs() else None
            sparse = "False" if one_hot_masks(task, training.loss) else "True"
            code = (f'keras.metrics.MeanIoU(num_classes={int(classes or 2)}, sparse_y_pred=False, '
                    f'sparse_y_true={sparse}, name="mean_iou")')
        parts.append(code if code is not None else literal(name))
    return f"[{', '.join(parts)}]"


def script_loss_source(design: Design, training: TrainingConfig) -> str:
    """The source of the ``loss=`` argument (Keras's Dice loss is an object)."""
    loss = script_loss(design, training)
    return 'keras.losses.Dice(name="dice")' if loss == DICE else literal(loss)


def script_loss(design: Design, training: TrainingConfig) -> str:
    """The loss the script compiles with: the configured one, else the task's default (for
    classification the engine's automatic choice for the design's single output assuming
    integer class labels, float ones for one linear unit), else mean squared error."""
    if training.loss is not None:
        return training.loss
    task = script_task(design, training)
    if task is not Task.CLASSIFICATION:
        return spec(task).default_loss
    outputs = design.output_refs()
    if len(outputs) == 1:
        node = design.nodes[outputs[0].node]
        if node.kind == "Softmax":
            activation, units = "softmax", _units(design, node.name)
        else:
            args, _ = CATALOGUE[node.kind].normalise(node.args) if node.kind in CATALOGUE else ({}, {})
            activation = args.get("activation", "linear")
            units = args.get("units") if isinstance(args.get("units"), int) else _units(design, node.name)
        for kind in ("integer", "float"):
            try:
                return choose_loss(activation, units, kind)
            except ConvasError:
                pass
    return MSE


def _units(design: Design, name: str) -> int | None:
    """The last dimension of ``name``'s output as the analysis infers it (None if unknown)."""
    from ..analysis import analyse

    report = analyse(design).nodes.get(name)
    shape = report.output_shape if report is not None else None
    return shape[-1] if shape else None


def _optimizer_call(training: TrainingConfig) -> str:
    classes = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}
    items = [("learning_rate", literal(float(training.learning_rate)))]
    if training.optimizer == "sgd":
        items.append(("momentum", literal(float(training.momentum))))
    return f"keras.optimizers.{classes[training.optimizer]}({_call_args(items)})"


# --------------------------------------------------------------------------------------------
# The script

def python_source(design: Design, training: TrainingConfig | None = None,
                  input_range: PixelRange = PixelRange.UNIT) -> str:
    """A runnable Keras 3 script that rebuilds ``design`` in ``build_model()`` and compiles it
    with ``training`` (the default settings when None). ``INPUT_RANGE`` in the script, and its
    docstring, say which pixel values the model expects (``input_range``, those it was trained
    on). :class:`ConvasError` for a design that cannot be written (unknown layer, invalid or
    non-plain argument, no input or output)."""
    training = training if training is not None else TrainingConfig()
    low, high = (int(v) for v in input_range.value_range)
    if input_range is PixelRange.RAW:
        feed = "raw 0-255 pixel values (as keras.utils.image_dataset_from_directory gives them)"
    else:
        feed = "pixel values scaled to [0, 1] (divide 8-bit images by 255)"
    nodes = chain_order(design)
    body = _sequential_body(design, nodes) if nodes is not None else _functional_body(design)
    style = "keras.Sequential" if nodes is not None else "the Keras functional API"
    lines = [
        '"""Keras 3 model generated by Convas '
        f"{_comment_text(__version__)} from the design {_comment_text(design.name)}.",
        "",
        f"build_model() rebuilds the architecture with {style}; run this file to compile it.",
        f"Its input expects {feed}: INPUT_RANGE, the range it was trained on.",
        '"""',
        "",
        "import keras",
        "from keras import layers",
        *(f"from {module} import {', '.join(classes)}" for module, classes in _imports(design).items()),
        "",
        f"DESIGN_NAME = {literal(design.name)}",
        f"INPUT_RANGE = ({low}, {high})  # the pixel values the model expects (and was trained on)",
        "",
        "",
        "def build_model():",
        *body,
        f"{_INDENT}return model",
        "",
        "",
        'if __name__ == "__main__":',
        f"{_INDENT}model = build_model()",
        f"{_INDENT}model.compile(",
        f"{_INDENT * 2}optimizer={_optimizer_call(training)},",
        f"{_INDENT * 2}loss={script_loss_source(design, training)},",
        f"{_INDENT * 2}metrics={script_metrics(design, training)},",
        f"{_INDENT})",
        f"{_INDENT}model.summary()",
        f"{_INDENT}# Train on your own arrays (x_train: samples, y_train: labels):",
        f"{_INDENT}# model.fit(x_train, y_train, batch_size={int(training.batch_size)!r}, "
        f"epochs={int(training.epochs)!r}, validation_split={float(training.validation_split)!r})",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Verification

def layer_summary(model: Any) -> list[list[Any]]:
    """[class name, name, output shape(s), parameter count] per layer of ``model``, leaving out
    InputLayers (a Sequential model does not list its input as a layer)."""
    rows = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        shapes = [[d for d in t.shape] for node in layer._inbound_nodes for t in node.output_tensors]
        rows.append([type(layer).__name__, layer.name, shapes[0] if len(shapes) == 1 else shapes,
                     int(layer.count_params())])
    return rows


_PROBE = """
import importlib.util, json, sys
sys.path.insert(0, sys.argv[2])
from engine.export.python_source import layer_summary
spec = importlib.util.spec_from_file_location("convas_generated_model", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(layer_summary(module.build_model())))
"""


def verify_python_source(source: str, model: Any) -> PythonCheck:
    """Run ``source``'s ``build_model()`` in a separate Python process and compare its layers
    (class, name, output shape, parameter count) with those of ``model``."""
    expected = json.loads(json.dumps(layer_summary(model)))
    # UTF-8 both ways: on Windows a pipe's default code page cannot decode every byte a
    # library may print (subprocess would raise UnicodeDecodeError reading its output).
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONIOENCODING": "utf-8"}
    with tempfile.TemporaryDirectory(prefix="convas-python-") as folder:
        path = Path(folder) / "model.py"
        path.write_text(source, encoding="utf-8")
        try:
            done = subprocess.run([sys.executable, "-c", _PROBE, str(path), str(_ROOT)], cwd=folder,
                                  env=env, capture_output=True, encoding="utf-8", errors="replace",
                                  timeout=VERIFY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return PythonCheck(False, f"the script did not finish within {VERIFY_TIMEOUT_S} s", 0)
    stderr = last_line(done.stderr)
    if done.returncode != 0:
        return PythonCheck(False, f"the script failed (exit code {done.returncode}): {stderr}", 0)
    try:
        got = json.loads(last_line(done.stdout, limit=None))
    except ValueError:
        return PythonCheck(False, f"the script printed no layer list: {stderr}", 0)
    if len(got) != len(expected):
        return PythonCheck(False, f"the script built {len(got)} layers, the model has {len(expected)}",
                           len(got))
    for mine, theirs in zip(expected, got):
        if mine != theirs:
            return PythonCheck(False, f"layer {mine[1]!r} differs: expected {mine}, the script built "
                                      f"{theirs}", len(got))
    return PythonCheck(True, f"the script rebuilds all {len(got)} layers", len(got))
