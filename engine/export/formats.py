"""The export formats: how each is written from a ``keras.Model`` and reloaded the way its users
load it, to prove the file works before Convas says "done".

Every writer and reloader imports TensorFlow, Keras, LiteRT or onnxruntime inside itself: this
module costs nothing to import. A reloader returns a function from the probe inputs (one array
per model input) to the outputs (one array per model output), so :mod:`.run` can compare them
with the model in memory.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..embedded_design import METADATA_ENTRY

Predict = Callable[[list[np.ndarray]], list[np.ndarray]]
ONNX_OPSET = 17                    # onnxruntime ≥ 1.12, TensorRT, OpenVINO and ONNX.js read it
QUANTIZATIONS = ("dynamic", "float16")


@dataclass(frozen=True)
class ExportFormat:
    """One way out: ``key`` on the command line, ``suffix`` of the file (or folder)."""

    key: str
    label: str
    suffix: str
    directory: bool
    reloaded_with: str
    write: Callable[[Any, Path, WriteOptions], None]
    reload: Callable[[Path, Any], Predict] | None


@dataclass(frozen=True)
class WriteOptions:
    quantize: str | None = None          # TFLite only: "dynamic" or "float16"
    opset: int = ONNX_OPSET              # ONNX only
    metadata: dict[str, Any] | None = None  # .keras only: written as convas.json
    input_names: tuple[str, ...] = ()    # the design's inputs, in the model's order
    output_names: tuple[str, ...] = ()   # the design's outputs, in the model's order


def as_list(values: Any) -> list[np.ndarray]:
    """Model outputs (a tensor, a list or a dict of them) as a list of numpy arrays."""
    if isinstance(values, dict):
        values = [values[k] for k in sorted(values)]
    if not isinstance(values, (list, tuple)):
        values = [values]
    return [np.asarray(v) for v in values]


def model_call(inputs: list[np.ndarray]) -> Any:
    """How a Keras model takes ``inputs``: one tensor, or a list."""
    return inputs[0] if len(inputs) == 1 else list(inputs)


# --- Keras ----------------------------------------------------------------------------------

def _write_keras(model: Any, path: Path, options: WriteOptions) -> None:
    model.save(path)
    if options.metadata is not None:
        with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA_ENTRY, json.dumps(options.metadata, indent=1, sort_keys=True))


def _reload_keras(path: Path, model: Any) -> Predict:
    import keras

    # safe_mode stays on: a file we (or anyone) wrote is loaded as users load it.
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    return lambda xs: as_list(loaded(model_call(xs), training=False))


# --- SavedModel -----------------------------------------------------------------------------

def _write_savedmodel(model: Any, path: Path, options: WriteOptions) -> None:
    model.export(str(path), format="tf_saved_model", verbose=False)


def _reload_savedmodel(path: Path, model: Any) -> Predict:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return lambda xs: as_list(loaded.serve(model_call(xs)))


# --- TFLite ---------------------------------------------------------------------------------

def _write_tflite(model: Any, path: Path, options: WriteOptions) -> None:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if options.quantize in QUANTIZATIONS:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]   # dynamic range: int8 weights
        if options.quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the endpoints it saved
        flatbuffer = converter.convert()
    path.write_bytes(flatbuffer)


def tflite_interpreter(path: Path) -> Any:
    """LiteRT's interpreter (the maintained one); tf.lite's where LiteRT has no wheels."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # Windows, Intel macs
        import tensorflow as tf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated"
            return tf.lite.Interpreter(model_path=str(path))
    return Interpreter(model_path=str(path))


def _reload_tflite(path: Path, model: Any) -> Predict:
    interpreter = tflite_interpreter(path)
    runner = interpreter.get_signature_runner("serving_default")
    inputs = list(runner.get_input_details())
    names = [getattr(t, "name", "").split(":")[0] for t in model.inputs]

    def predict(xs: list[np.ndarray]) -> list[np.ndarray]:
        by_name = {n: x for n, x in zip(names, xs)}
        feed = {key: by_name[key] if key in by_name else xs[i] for i, key in enumerate(inputs)}
        out = runner(**feed)
        return [np.asarray(out[k]) for k in sorted(out, key=_natural)]
    return predict


def _natural(key: str) -> tuple[int, str]:
    match = re.search(r"(\d+)$", key)
    return (int(match.group(1)) if match else -1, key)


# --- ONNX -----------------------------------------------------------------------------------

_TF_NAME = re.compile(r"[^A-Za-z0-9_.\-]")


def onnx_name(name: str) -> str:
    """A design name as an ONNX/TensorFlow tensor name (letters, digits, ``_.-``)."""
    cleaned = _TF_NAME.sub("_", name)
    return cleaned if cleaned and cleaned[0].isalnum() else f"x{cleaned}"


def _write_onnx(model: Any, path: Path, options: WriteOptions) -> None:
    import tensorflow as tf

    specs = [tf.TensorSpec(tuple(t.shape), tf.float32, name=onnx_name(name))
             for t, name in zip(model.inputs, options.input_names or [t.name for t in model.inputs])]
    _embed_constant_tensors(model)
    with warnings.catch_warnings(), _convolutions_traced_without_xla():
        warnings.simplefilter("ignore", FutureWarning)  # numpy, inside Keras's tf2onnx patch
        model.export(str(path), format="onnx", opset_version=options.opset, verbose=False,
                     input_signature=specs if len(specs) == 1 else [specs])
    _finish_onnx(path, [onnx_name(n) for n in options.output_names])


@contextlib.contextmanager
def _convolutions_traced_without_xla() -> Iterator[None]:
    """While tracing for ONNX, let Keras's TensorFlow convolution emit a plain ``Conv2D``/``Conv3D``.

    TensorFlow's CPU kernels cannot run a grouped convolution (``groups`` > 1: ConvNeXt's
    depthwise 7×7, ResNeXt) or a channels-first 3-D one, so Keras wraps those in a function
    compiled with XLA. Grappler does not inline such a function and tf2onnx copies its call
    (``StatefulPartitionedCall``) into the file unconverted, which onnxruntime refuses as an
    invalid model. A traced graph is never run by TensorFlow, and tf2onnx converts a grouped
    ``Conv2D`` into an ONNX ``Conv`` with ``group`` set, so the plain operation is what the file
    needs; the verification then runs it in onnxruntime. Keras's own function is put back after.
    """
    from keras.src import backend as keras_backend

    module: Any = getattr(keras_backend, "nn", None)
    convert = getattr(module, "_convert_data_format", None)
    original = getattr(module, "conv", None)
    if keras_backend.backend() != "tensorflow" or convert is None or original is None:
        yield  # another Keras layout: export as it is (verification catches what fails)
        return
    import tensorflow as tf

    def conv(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid",
             data_format: str | None = None, dilation_rate: Any = 1) -> Any:
        data_format = keras_backend.standardize_data_format(data_format)
        return tf.nn.convolution(inputs, kernel, strides, padding.upper(),
                                 data_format=convert(data_format, len(inputs.shape)), dilations=dilation_rate)

    module.conv = conv
    try:
        yield
    finally:
        module.conv = original


def _embed_constant_tensors(model: Any) -> None:
    """Turn layers' constant tensors into numpy arrays, so that tracing embeds them.

    A layer may keep constants as eager tensors (Normalization's mean and variance, computed once
    from its weights or arguments). A traced function captures those as extra inputs, and
    tf2onnx makes each one an input of the ONNX graph that its users would have to feed. As
    numpy arrays they become constants of the graph. The values are the same, so changing the
    model in memory is harmless.
    """
    import tensorflow as tf

    for layer in model._flatten_layers(include_self=False, recursive=True):
        for name, value in list(vars(layer).items()):
            if isinstance(value, tf.Tensor) and not isinstance(value, tf.Variable) and not name.startswith("_"):
                object.__setattr__(layer, name, value.numpy())


def _finish_onnx(path: Path, output_names: list[str]) -> None:
    """Rewrite the operations tf2onnx leaves unconverted (:data:`_UNCONVERTED_OPS`) and name the
    graph's outputs after the design's output layers (``output_names``; none: as tf2onnx named
    them)."""
    import onnx

    proto = onnx.load(str(path))
    changed = _rewrite_unconverted_ops(proto)
    if output_names:
        _rename_onnx_outputs(proto.graph, output_names)
        changed = True
    if changed:
        onnx.save(proto, str(path))


# TensorFlow operations tf2onnx 1.17 has no handler for, each as two standard ONNX operations:
# the first computes ``y`` from the node's input ``x``, the second the node's output from ``y``
# (``1`` is a constant one). tf2onnx does not fail on them: it copies the node unchanged, and
# since ONNX has no such operator, onnxruntime then refuses the whole file as an invalid model.
# Keras's exact GELU (``activation="gelu"``) is ``0.5·x·erfc(-x/√2)``, its CELU uses ``expm1``.
# The rewrites lose precision only where the result is tiny next to 1 (a few float32 ulps of 1,
# absolute), well within the export tolerance's term for the output's scale (run.Tolerance).
_UNCONVERTED_OPS: dict[str, tuple[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]]] = {
    "Erfc": (("Erf", ("x",)), ("Sub", ("1", "y"))),       # erfc(x) = 1 - erf(x); Erf: opset 9
    "Expm1": (("Exp", ("x",)), ("Sub", ("y", "1"))),      # expm1(x) = exp(x) - 1
    "Log1p": (("Add", ("x", "1")), ("Log", ("y",))),      # log1p(x) = log(x + 1)
}


def _rewrite_unconverted_ops(proto: Any) -> bool:
    """Replace every node of :data:`_UNCONVERTED_OPS` by its two ONNX nodes; True when there was one."""
    import onnx
    from onnx import helper, numpy_helper

    graphs, pending = [], [proto.graph]
    while pending:  # the main graph and the bodies of its control flow, if any
        graph = pending.pop()
        graphs.append(graph)
        pending += [a.g for node in graph.node for a in node.attribute if a.type == onnx.AttributeProto.GRAPH]
        pending += [g for node in graph.node for a in node.attribute for g in a.graphs]
    found = [(graph, i) for graph in graphs for i, node in enumerate(graph.node)
             if node.op_type in _UNCONVERTED_OPS and node.domain in ("", "ai.onnx")]
    if not found:
        return False
    types = _element_types(proto)
    taken = {name for graph in graphs for node in graph.node for name in (*node.input, *node.output, node.name)}
    taken |= {t.name for graph in graphs for t in (*graph.input, *graph.initializer)}
    for graph, index in sorted(found, key=lambda f: -f[1]):  # from the end: indices stay valid
        node = graph.node[index]
        base = node.name or node.output[0]
        y, one = fresh_name(f"{base}/y", taken), fresh_name(f"{base}/one", taken)
        dtype = helper.tensor_dtype_to_np_dtype(types.get(node.input[0], onnx.TensorProto.FLOAT))
        graph.initializer.append(numpy_helper.from_array(np.ones((), dtype), one))
        names = {"x": node.input[0], "y": y, "1": one}
        (first, first_in), (second, second_in) = _UNCONVERTED_OPS[node.op_type]
        replacement = [helper.make_node(first, [names[n] for n in first_in], [y], name=y),
                       helper.make_node(second, [names[n] for n in second_in], list(node.output),
                                        name=fresh_name(f"{base}/{second.lower()}", taken))]
        del graph.node[index]
        for offset, new in enumerate(replacement):
            graph.node.insert(index + offset, new)
    return True


def _element_types(proto: Any) -> dict[str, int]:
    """Every typed tensor of the model's main graph: name → ONNX element type."""
    import onnx

    try:
        graph = onnx.shape_inference.infer_shapes(proto).graph
    except Exception:  # noqa: BLE001 - no types known: the caller assumes float32
        graph = proto.graph
    typed = [*graph.input, *graph.value_info, *graph.output]
    types = {v.name: v.type.tensor_type.elem_type for v in typed if v.type.HasField("tensor_type")}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def fresh_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``, … whichever is not in ``taken`` yet (then taken)."""
    new, i = name, 1
    while new in taken:
        i += 1
        new = f"{name}_{i}"
    taken.add(new)
    return new


def _rename_onnx_outputs(graph: Any, names: list[str]) -> None:
    """Name the graph's outputs after the design's output layers (tf2onnx says ``Identity:0``)."""
    taken = {i.name for i in graph.input}
    renames: dict[str, str] = {}
    for output, name in zip(graph.output, names):
        if name in taken or name in renames.values():
            continue
        renames[output.name] = name
    for node in graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
        node.input[:] = [renames.get(i, i) for i in node.input]
    for output in graph.output:
        output.name = renames.get(output.name, output.name)


def _reload_onnx(path: Path, model: Any) -> Predict:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return lambda xs: [np.asarray(v) for v in session.run(None, dict(zip(names, xs)))]


FORMATS: dict[str, ExportFormat] = {f.key: f for f in (
    ExportFormat("keras", "Keras model", ".keras", False, "keras.saving.load_model (safe mode)",
                 _write_keras, _reload_keras),
    ExportFormat("savedmodel", "TensorFlow SavedModel", "", True, "tf.saved_model.load",
                 _write_savedmodel, _reload_savedmodel),
    ExportFormat("tflite", "TensorFlow Lite", ".tflite", False, "the LiteRT interpreter",
                 _write_tflite, _reload_tflite),
    ExportFormat("onnx", "ONNX", ".onnx", False, "onnxruntime", _write_onnx, _reload_onnx),
)}
