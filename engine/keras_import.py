"""Read a Keras model's architecture into a :class:`Design`, without TensorFlow or Keras.

A ``.keras`` file is a zip archive whose ``config.json`` is the model config; ``model.to_json()``
writes the same config as text. Both are read with :mod:`zipfile` and :mod:`json` only: nothing in
the file is ever evaluated, unpickled or imported, so a Lambda layer's code or a custom class
stays inert text.

Understood: Keras 3 ``Sequential`` and ``Functional`` configs (``inbound_nodes`` as
``{"args": [...], "kwargs": {...}}`` with ``keras_history``), shared layers (one call per inbound
node), several inputs and outputs, and the Keras 2 / tf.keras layout
(``inbound_nodes: [[["name", 0, 0, {}]]]``, ``batch_input_shape``). Besides ``keras.layers``:

- **Operations stored as layers** (``module`` ``keras.src.ops.numpy``: ``x + 3.0``,
  ``keras.ops.multiply(a, b)``): add, subtract, multiply, divide, maximum and minimum of two
  tensors or of a tensor and a number (either side) become the ``Ops…`` kinds of
  :mod:`engine.layers.ops`; the number and its side are read from the inbound node as data.
- **Keras's helper layers** of ``keras.applications`` (LayerScale, StochasticDepth,
  CustomScaleLayer), recognised by module and class (:func:`engine.layers.kind_of_keras_class`).
- **Nested models** (a Sequential or Functional inside a model, at any depth) are flattened: their
  layers join the design, each inner first layer reading the outer tensor that feeds the nested
  model and each consumer of the nested model reading the inner output; the nested model's
  InputLayers are dropped. Each nested model becomes a :class:`~engine.design.Group` of kind
  ``MODEL`` named after it (made unique among groups; collapsed or not is the caller's choice),
  whose ``origin`` is ``{"module", "class_name", "config"}`` of the nested model's entry,
  ``config`` without its ``layers``. An inner layer whose name is taken (by a layer of the outer
  model or of an earlier nested model) is renamed ``<nested model>_<name>`` (then ``_1``,
  ``_2``, … until free); :attr:`KerasImport.paths` maps every layer of a nested model to its
  Keras path (outer model names, then its own name), which
  :func:`engine.weights.transfer_weights` follows to find its weights. A nested model applied
  several times gives its layers one call per application, in application order; one that
  would flatten to more than :data:`MAX_FLAT_CALLS` calls is refused. Export rebuilds the
  model flat (the groups only change how the design is shown).

**Layers Convas does not know still open** (:func:`import_keras_config`): each one (a custom
class, a Lambda or TFOpLambda, an unknown ``keras.ops`` operation or layer, a built-in layer with
a custom activation or tensors passed as keywords) becomes a node that keeps its wiring and is
marked in its ``config``. The contract, for the analysis and the canvas:

- ``node.kind`` is the Keras class name; when that name is also a catalogue kind (a user class
  called ``Dense``, a Dense with a custom activation) it is ``"<module>.<class>"`` instead, so an
  unsupported node's kind is never in the catalogue.
- ``node.args`` is empty; ``node.inbound`` lists every tensor each call received (keyword ones
  too).
- ``node.config == {"unsupported": {"module": str | None, "class_name": str, "reason": str,
  "output_shapes": [shape | None, ...]}, **the layer's config without "name"}``, where
  ``reason`` says what is wrong and how to fix it, and ``output_shapes`` has one entry per call:
  the output shape with the batch axis first as a list of ints and nulls (Keras 3 records the
  shape of every tensor a layer receives, so a consumer's record tells it, also across a nested
  model's boundary; in a Sequential model, the next layer's ``build_config``), or None where
  the file does not say (the model's own outputs, Keras 2 files).

:func:`import_keras_config` and :func:`import_keras_file` return the design and the list of
:class:`UnsupportedLayer`; :func:`design_from_keras_config` and :func:`load_keras_design` are the
strict forms, raising :class:`UnsupportedLayerError` (which carries both) when the list is not
empty. Like the project reader, import runs in two steps: the config is checked into plain
:class:`_LayerRecord` values (structure errors are :class:`FileFormatError`), then the design is
built and laid out with :mod:`engine.layout`.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from .blocks import add_block_groups, collapse_for_size
from .design import Design, DesignError, Group, GroupKind, Node, TensorRef
from .errors import FileFormatError, UnsupportedLayerError
from .layers import (
    ACTIVATIONS, CATALOGUE, KERAS_CLASSES, OPERATIONS, ParamKind, canonical_kind, kind_of_keras_class, snake_name)
from .layers.ops import OPS_FUNCTIONS
from .layout import apply_design_layout
from .project_file import (
    FORMAT as CONVAS_FORMAT, check_argument_nesting, lists_to_tuples, open_regular, parse_json, read_capped,
    read_text)

MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
KERAS_PACKAGES = frozenset({"keras", "tf_keras", "tensorflow"})
OP_LAMBDAS = frozenset({"TFOpLambda", "SlicingOpLambda"})
# Arguments Keras 2 spelled differently: (layer kind, old name) → catalogue name.
LEGACY_ARGS: dict[tuple[str, str], str] = {("LeakyReLU", "alpha"): "negative_slope"}
BATCH_SHAPE_KEYS = ("batch_shape", "batch_input_shape")
MAX_CONFIG_BYTES = 64 * 1024 * 1024  # config.json, inflated: far above any real architecture
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# Layer calls a flattened model may have. Each application of a nested model repeats all its
# layers' calls, so a small file nesting models applied many times could ask for billions.
MAX_FLAT_CALLS = 1_000_000
# The operations Convas reads, as people call them (for messages).
READ_OPERATIONS = ", ".join(f"keras.ops.{fn}" for fn in OPS_FUNCTIONS.values())


class UnsupportedLayer(NamedTuple):
    """A layer of an imported model that Convas shows as an unsupported card: ``name`` is its
    node's name in the design, ``module``/``class_name`` its Keras class, ``reason`` what is wrong
    and how to fix it."""

    name: str
    class_name: str
    module: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.class_name}): {self.reason}"


class KerasImport(NamedTuple):
    """What import read: the ``design`` (unsupported layers as marked nodes), the
    ``unsupported`` layers in design order, and ``paths``: for each layer that was inside a
    nested model, its Keras path (the nested models' names from the outside in, then the layer's
    own name in its model), which differs from its design name when it was renamed."""

    design: Design
    unsupported: list[UnsupportedLayer]
    paths: dict[str, tuple[str, ...]]


# --- reading the config ------------------------------------------------------------------------

def load_keras_design(path: str | os.PathLike[str]) -> Design:
    """The design of a ``.keras`` file or of a ``model.to_json()`` file, when Convas knows every
    layer of it.

    Raises :class:`FileFormatError` (naming the file) when the file cannot be read as a Keras
    model, and :class:`UnsupportedLayerError` listing every layer Convas cannot represent (it
    carries the design read with those layers as unsupported cards: :func:`import_keras_file`).
    """
    return require_supported(import_keras_file(path), Path(path).name)


def import_keras_file(path: str | os.PathLike[str]) -> KerasImport:
    """The design of a ``.keras`` or ``model.to_json()`` file with every layer Convas does not
    know as an unsupported node, and the list of those. :class:`FileFormatError` (naming the
    file) when it cannot be read as a Keras model; :class:`UnsupportedLayerError` only for a
    subclassed model, whose architecture is Python code with no layers to show."""
    path = Path(path)
    config = read_keras_config(path)
    try:
        return import_keras_config(config, source=path.name)
    except FileFormatError as exc:
        raise FileFormatError(f"{path.name}: {exc}") from None
def read_keras_config(path: Path) -> dict[str, Any]:
    """The model config of a ``.keras`` archive or a Keras JSON file, as parsed JSON."""
    try:
        with open_regular(path) as fh:
            head = fh.read(8)
    except OSError as exc:
        raise FileFormatError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if head.startswith(HDF5_MAGIC):
        raise FileFormatError(f"{path.name} is a legacy HDF5 (.h5) model, which Convas does not read; "
                              "in Keras, load it and save it again with model.save('model.keras')")
    if head.startswith(b"PK"):
        text = _config_from_archive(path)
    elif path.suffix.lower() == ".keras":
        raise FileFormatError(f"{path.name} is not a .keras file: a .keras file is a zip archive, "
                              "and this is not one (is it truncated or misnamed?)")
    else:
        text = read_text(path)
    doc = parse_json(text, path.name)
    if not isinstance(doc, dict):
        raise FileFormatError(f"{path.name} does not hold a Keras model config (expected a JSON object)")
    if doc.get("format") == CONVAS_FORMAT:
        raise FileFormatError(f"{path.name} is a Convas project, not a Keras model; open it as a project")
    return doc


class ArchiveMemberTooLarge(FileFormatError):
    """A member of a zip archive inflates past the most Convas reads of it (a zip bomb)."""


STREAMED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})


def read_archive_member(path: Path, member: str, cap: int) -> bytes | None:
    """The bytes of ``member`` in the zip archive ``path``; None when it has no such member.

    What the archive says of its sizes is never trusted: the member is inflated chunk by chunk
    and refused (:class:`ArchiveMemberTooLarge`) as soon as it passes ``cap`` bytes, so a zip
    bomb costs at most ``cap`` bytes of memory. Only stored and deflated members are read (Keras
    stores them): zipfile inflates bzip2 and LZMA data in steps that one small block can make
    gigabytes long, before any check could run. Every problem is a :class:`FileFormatError`
    naming the archive and the member."""
    with open_regular(path) as fh:
        try:
            with zipfile.ZipFile(fh) as archive:
                try:
                    info = archive.getinfo(member)
                except KeyError:
                    return None
                if info.compress_type not in STREAMED_METHODS:
                    method = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA"}.get(
                        info.compress_type, f"method {info.compress_type}")
                    raise FileFormatError(f"{path.name}: {member} is compressed with {method}, which "
                                          "Convas does not inflate (Keras stores .keras members "
                                          "uncompressed); save the model again with model.save()")
                data = None
                if info.file_size <= cap:  # a larger claim is refused unread; a smaller one, checked
                    try:
                        with archive.open(info) as stream:
                            data = read_capped(stream, cap)
                    except zipfile.BadZipFile as exc:
                        raise FileFormatError(f"{path.name}: {member} is damaged: what it holds is not "
                                              f"what the archive's directory says ({exc})") from None
        except FileFormatError:
            raise
        except Exception as exc:  # noqa: BLE001 (zipfile reports damage through many exception types)
            raise FileFormatError(f"{path.name} is not a readable .keras archive ({member}: {exc})") from None
    if data is None:
        raise ArchiveMemberTooLarge(f"{path.name}: {member} inflates to more than {cap // 2**20} MB, "
                                    f"the most Convas reads of it; a real model's {member} is far "
                                    "smaller (the file is damaged, or a zip bomb)")
    return data


def _config_from_archive(path: Path) -> str:
    data = read_archive_member(path, "config.json", MAX_CONFIG_BYTES)
    if data is None:
        raise FileFormatError(f"{path.name} is a zip archive without config.json, so it is not "
                              "a Keras model saved with model.save()")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileFormatError(f"{path.name}: config.json is not UTF-8 text") from None




# --- step 1: config → checked records -----------------------------------------------------------

class _Tensor(NamedTuple):
    layer: str
    node_index: int
    tensor_index: int


class _Operands(NamedTuple):
    """How an operation was applied: to two tensors (``scalar`` None) or to a tensor and a number,
    the number first when ``scalar_first``."""

    scalar: float | None
    scalar_first: bool


class _LayerRecord(NamedTuple):
    name: str
    class_name: str
    module: str | None
    kind: str | None  # catalogue kind; None when unsupported or a nested model
    problem: str | None  # why it is unsupported
    config: dict[str, Any]
    calls: list[list[_Tensor]]
    sub: _Model | None = None  # the nested model this entry is
    operands: _Operands | None = None  # an operation's number and its side


class _Model(NamedTuple):
    name: str
    records: list[_LayerRecord]
    inputs: list[_Tensor]
    outputs: list[_Tensor]
    # The shape Keras recorded for each tensor some layer of this model receives, by reference.
    shapes: dict[tuple[str, int, int], Any]


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise FileFormatError(f"{where} must be a non-empty name, but is {json.dumps(value)}")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FileFormatError(f"{where} must be an object, but is {json.dumps(value)[:60]}")
    return value


def _history(value: Any, where: str) -> _Tensor:
    """A ``[layer, node_index, tensor_index(, kwargs)]`` reference (both Keras generations)."""
    if (isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str)
            and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value[1:3])):
        return _Tensor(value[0], value[1], value[2])
    raise FileFormatError(f"{where}: {json.dumps(value)[:80]} is not a [layer, node, tensor] reference")


def _is_history(value: Any) -> bool:
    return (isinstance(value, list) and 3 <= len(value) <= 4 and isinstance(value[0], str)
            and all(isinstance(i, int) and not isinstance(i, bool) for i in value[1:3]))


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _keras3_tensors(value: Any, where: str) -> Iterator[tuple[_Tensor, Any]]:
    """Every Keras tensor in a serialised call argument with the shape Keras recorded for it
    (None when it recorded none), depth first, in order (iterative)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if _is_tensor(item):
                cfg = _object(item.get("config"), f"{where}: a tensor's config")
                yield _history(cfg.get("keras_history"), where), cfg.get("shape")
            else:
                stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


class _Call(NamedTuple):
    """One inbound node: tensors passed positionally, tensors passed as keywords, and the shape
    recorded for each tensor."""

    tensors: list[_Tensor]
    keyword: list[_Tensor]
    shapes: list[tuple[_Tensor, Any]]


def _call(node: Any, where: str) -> _Call:
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        positional = list(_keras3_tensors(node.get("args", []), where))
        keyword = list(_keras3_tensors(node.get("kwargs", {}), where))
        return _Call([t for t, _ in positional], [t for t, _ in keyword], positional + keyword)
    if isinstance(node, list):  # Keras 2: [["name", node_index, tensor_index, kwargs], ...]
        if _is_history(node):  # a lone reference instead of a list of them
            node = [node]
        return _Call([_history(ref, where) for ref in node], [], [])
    raise FileFormatError(f"{where} is neither a Keras 3 nor a Keras 2 inbound node: {json.dumps(node)[:80]}")


MAX_RANK = 32  # dimensions in a recorded shape; a real tensor has at most a handful


def _shape(value: Any) -> list[int | None] | None:
    """A shape Keras recorded (batch axis first, ints and nulls) as a plain list; None when the
    value is not one (a hand-edited file, a structure of several shapes)."""
    if (isinstance(value, list) and len(value) <= MAX_RANK
            and all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0) for d in value)):
        return list(value)
    return None


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and abs(value) != float("inf") and value == value)


def _operands(node: Any, kind: str) -> _Operands | str:
    """What an operation was applied to, read from its inbound node as data; or why Convas
    cannot represent it."""
    function = f"keras.ops.{OPS_FUNCTIONS[kind]}"
    cannot = (f"applies {function} to operands Convas cannot represent; Convas reads it applied to "
              "two tensors or to a tensor and a number, so rebuild it with layers")
    if not isinstance(node, dict):
        return cannot
    args, kwargs = node.get("args"), node.get("kwargs") or {}
    if not isinstance(args, list) or len(args) != 2 or kwargs:
        return cannot
    first, second = (_is_tensor(a) for a in args)
    if first and second:
        return _Operands(None, False)
    if first and _is_number(args[1]):
        return _Operands(args[1], False)
    if second and _is_number(args[0]):
        return _Operands(args[0], True)
    return cannot


def _activation_problem(value: Any) -> tuple[str | None, str | None]:
    """(simple activation name, None) or (None, reason it is unsupported)."""
    if value is None:
        return "linear", None
    if isinstance(value, str):
        if value in ACTIVATIONS:
            return value, None
        return None, (f"uses the activation {value!r}, which is not one of Keras's built-in "
                      "activations Convas knows")
    if isinstance(value, dict):
        module = value.get("module")
        name = value.get("config")
        builtin = (isinstance(module, str) and module.split(".")[0] in KERAS_PACKAGES
                   and isinstance(name, str) and name in ACTIVATIONS)
        if builtin:
            return name, None
        shown = name if isinstance(name, str) else value.get("class_name", "?")
        return None, (f"uses a custom activation function {shown!r}, which is Python code Convas "
                      "never runs; use a built-in activation")
    return None, f"has an activation Convas cannot read: {json.dumps(value)[:60]}"


def _is_keras_module(module: Any) -> bool:
    return isinstance(module, str) and module.split(".")[0] in KERAS_PACKAGES


def _is_nested_model(entry: dict[str, Any], class_name: str, config: dict[str, Any]) -> bool:
    """A Keras Sequential or Functional model inside this one (Keras 2 entries name no module)."""
    return (class_name in MODEL_CLASSES and isinstance(config.get("layers"), list)
            and _is_keras_module(entry.get("module", "keras")))


def _recognise(entry: dict[str, Any], class_name: str) -> tuple[str | None, str | None]:
    """(catalogue kind, None) for a layer entry Convas represents, else (None, why not)."""
    if class_name == "Lambda":
        return None, ("Lambda layers hold Python code, which Convas never runs; rebuild what it does "
                      "with catalogue layers")
    if class_name in OP_LAMBDAS:
        return None, ("a TensorFlow operation applied directly to a tensor, which is Python code "
                      "Convas never runs; use the matching Keras layer instead")
    if class_name in MODEL_CLASSES:
        return None, ("a model whose architecture is Python code (a subclassed Model), which Convas "
                      "never runs; rebuild its layers in the outer model")
    module = entry.get("module", "keras.layers")  # Keras 2 configs name no module: all built-in
    registered = entry.get("registered_name")
    if not _is_keras_module(module) or (isinstance(registered, str) and ">" in registered):
        where = f"from {module}" if isinstance(module, str) else "defined in Python code"
        return None, (f"a custom layer class ({where}); Convas only knows built-in Keras layers and "
                      "never runs code from a file")
    kind = kind_of_keras_class(module, class_name)
    if kind is not None:
        return kind, None
    if "ops" in module.split("."):
        return None, (f"keras.ops.{snake_name(class_name)} is not one of the operations Convas reads "
                      f"({READ_OPERATIONS}); rebuild what it does with layers")
    kind = canonical_kind(class_name)
    if kind is None or kind in KERAS_CLASSES:  # those are known only from their own module
        known_module = module in ("keras", "keras.layers") or module.startswith("keras.src.layers")
        return None, f"Convas does not know the {class_name} layer{'' if known_module else f' of {module}'} yet"
    return kind, None


def _read_model(class_name: str, config: dict[str, Any], top: dict[str, Any], nested: bool,
                where: str = "") -> _Model:
    """The checked records of a Sequential or Functional model config (nested models read as
    records holding their own :class:`_Model`). ``where`` prefixes messages about a nested model."""
    layers_raw = config.get("layers")
    if not isinstance(layers_raw, list):
        raise FileFormatError(f"{where}the model config has no list of layers")
    sequential = class_name == "Sequential"
    records: list[_LayerRecord] = []
    shapes: dict[tuple[str, int, int], Any] = {}
    built_inputs: list[Any] = []  # each entry's build_config input shape (Sequential models)
    seen: set[str] = set()
    for i, entry in enumerate(layers_raw):
        entry = _object(entry, f"{where}layer {i}")
        cls = _text(entry.get("class_name"), f"{where}layer {i}: class_name")
        layer_config = _object(entry.get("config", {}), f"{where}layer {i} ({cls}): config")
        name = _text(entry.get("name", layer_config.get("name")), f"{where}layer {i} ({cls}): name")
        if name in seen:
            raise FileFormatError(f"{where}two layers are named {name!r}; Keras layer names are unique")
        seen.add(name)
        module = entry.get("module") if isinstance(entry.get("module"), str) else None
        nested_model = _is_nested_model(entry, cls, layer_config)
        for key, value in layer_config.items():
            if not (nested_model and key == "layers"):  # a nested model's layers are read one by one
                check_argument_nesting(value, f"{where}layer {name!r}, argument {key!r}")
        build = entry.get("build_config")
        built_inputs.append(_shape(build.get("input_shape")) if isinstance(build, dict) else None)
        calls: list[list[_Tensor]] = []
        keyword: list[list[_Tensor]] = []
        raw_nodes: list[Any] = []
        if not sequential:
            raw_nodes = entry.get("inbound_nodes", [])
            if not isinstance(raw_nodes, list):
                raise FileFormatError(f"{where}layer {name!r}: inbound_nodes must be a list")
            for n, node in enumerate(raw_nodes):
                call = _call(node, f"{where}layer {name!r}, inbound node {n}")
                calls.append(call.tensors)
                keyword.append(call.keyword)
                for tensor, shape in call.shapes:
                    shapes.setdefault(tensor, _shape(shape))
        if nested_model:
            if any(keyword):
                raise FileFormatError(f"{where}the nested model {name!r} is given tensors as keyword "
                                      "arguments, which Convas cannot represent")
            sub = _read_model(cls, layer_config, entry, True, f"{where}nested model {name!r}: ")
            records.append(_LayerRecord(name, cls, module, None, None, layer_config, calls, sub))
            continue
        kind, problem = _recognise(entry, cls)
        operands: _Operands | None = None
        if kind in OPERATIONS:
            read = {_operands(node, kind) for node in raw_nodes} or {_Operands(None, False)}
            found = read.pop() if len(read) == 1 else (
                f"applies keras.ops.{OPS_FUNCTIONS[kind]} with other operands in each call, which one "
                "Convas node cannot represent; rebuild it with one operation per call")
            if isinstance(found, str):
                problem = found
            else:
                operands = found
        if problem is None and any(keyword):
            problem = "takes tensors as keyword arguments, which a Convas design cannot represent"
        if problem is None and kind is not None and "activation" in {p.name for p in CATALOGUE[kind].params}:
            _, problem = _activation_problem(layer_config.get("activation"))
        if problem is not None:
            kind, calls = None, [c + k for c, k in zip(calls, keyword)]
        records.append(_LayerRecord(name, cls, module, kind, problem, layer_config, calls, None, operands))
    if sequential:
        return _sequential_model(config, top, nested, records, built_inputs, where)
    return _Model(str(config.get("name", class_name)), records,
                  _structure_refs(config.get("input_layers"), f"{where}input_layers"),
                  _structure_refs(config.get("output_layers"), f"{where}output_layers"), shapes)


def _sequential_model(config: dict[str, Any], top: dict[str, Any], nested: bool, records: list[_LayerRecord],
                      built_inputs: list[Any], where: str) -> _Model:
    """A Sequential model's records, each reading the one before it (as Keras applies them)."""
    if records and records[0].kind != "InputLayer":
        first = records[0]
        batch_shape = next((first.config[k] for k in BATCH_SHAPE_KEYS if k in first.config), None)
        if batch_shape is not None:
            # Keras 2 put the input shape on the first layer; it belongs to an InputLayer here.
            records[0] = first._replace(config={k: v for k, v in first.config.items()
                                                if k not in BATCH_SHAPE_KEYS})
        else:
            build = top.get("build_config")
            batch_shape = config.get("build_input_shape",
                                     build.get("input_shape") if isinstance(build, dict) else None)
        if batch_shape is not None or nested:  # a nested model's input is the tensor it is called on
            input_name = "input_layer"
            while any(r.name == input_name for r in records):
                input_name += "_"
            records.insert(0, _LayerRecord(input_name, "InputLayer", "keras.layers", "InputLayer", None,
                                           {"batch_shape": batch_shape}, []))
            built_inputs.insert(0, None)
    shapes: dict[tuple[str, int, int], Any] = {}
    previous: str | None = None
    for i, record in enumerate(records):
        if record.kind != "InputLayer":
            records[i] = record._replace(calls=[[_Tensor(previous, 0, 0)]] if previous else [])
            if previous is not None and built_inputs[i] is not None:
                shapes[(previous, 0, 0)] = built_inputs[i]
        previous = record.name
    inputs = [_Tensor(records[0].name, 0, 0)] if records and records[0].kind == "InputLayer" else []
    outputs = [_Tensor(records[-1].name, 0, 0)] if records else []
    return _Model(str(config.get("name", "sequential")), records, inputs, outputs, shapes)


def _structure_refs(value: Any, where: str) -> list[_Tensor]:
    """``input_layers``/``output_layers``: one reference, a list of them, or a dict of them."""
    if value is None:
        return []
    if _is_history(value):
        return [_history(value, where)]
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        raise FileFormatError(f"{where} must list [layer, node, tensor] references")
    out: list[_Tensor] = []
    for item in value:
        out.extend(_structure_refs(item, where))
    return out


# --- step 2: records → one flat graph ------------------------------------------------------------

# A tensor of the flat graph: a call of a layer, or (an int) input number k of the nested model
# being flattened, which becomes the tensor that model is called on.
_Ref = TensorRef | int


class _FlatLayer(NamedTuple):
    name: str  # its name in the design
    record: _LayerRecord
    calls: list[list[_Ref]]
    group: tuple[str, ...]  # the nested models it is in, outermost first (empty: the top level)
    path: tuple[str, ...]  # group + its name in its own model: where Keras keeps it
    shapes: list[Any]  # per call, the output shape the file records (unsupported layers only)


class _Scope(NamedTuple):
    """A model flattened: its layers (nested models' layers in their place), its outputs and
    its nested models (outermost first, as (path, record))."""

    layers: list[_FlatLayer]
    outputs: list[_Ref]
    groups: list[tuple[tuple[str, ...], _LayerRecord]]


def _flatten(model: _Model, path: tuple[str, ...]) -> _Scope:
    """``model`` (at ``path``; the top level at ``()``) as one flat graph. In a nested model
    (``path`` not empty) the InputLayers are dropped and references to them become input
    numbers. Inner layers whose names are taken here are renamed (see the module docstring)."""
    nested = bool(path)
    by_name = {r.name: r for r in model.records}
    input_number = {t.layer: k for k, t in enumerate(model.inputs)} if nested else {}
    dropped = {r.name for r in model.records if nested and r.kind == "InputLayer"}
    taken = {r.name for r in model.records if r.sub is None and r.name not in dropped}
    subs: dict[str, tuple[_Scope, dict[str, str], dict[str, int]]] = {}
    for record in model.records:
        if record.sub is None:
            continue
        scope = _flatten(record.sub, path + (record.name,))
        renamed: dict[str, str] = {}
        for layer in scope.layers:
            new = layer.name
            if new in taken:
                new = stem = f"{record.name}_{layer.name}"
                i = 0
                while new in taken:
                    i += 1
                    new = f"{stem}_{i}"
            taken.add(new)
            renamed[layer.name] = new
        subs[record.name] = (scope, renamed, {layer.name: len(layer.calls) for layer in scope.layers})

    def applications(name: str) -> int:
        record = by_name[name]
        return 1 if record.kind == "InputLayer" else max(len(record.calls), 1)

    outputs_of: dict[tuple[str, int], list[_Ref]] = {}
    inputs_of: dict[tuple[str, int], list[_Ref]] = {}
    busy: set[tuple[str, int]] = set()

    def app_inputs(name: str, a: int) -> list[_Ref]:
        if (name, a) not in inputs_of:
            calls = by_name[name].calls
            inputs_of[(name, a)] = [resolve(t, f"the nested model {name!r}") for t in calls[a]] if calls else []
        return inputs_of[(name, a)]

    def substitute(ref: _Ref, name: str, a: int) -> _Ref:
        """A reference inside nested model ``name`` as seen from here, in application ``a``."""
        _, renamed, per_app = subs[name]
        if isinstance(ref, int):
            given = app_inputs(name, a)
            if ref >= len(given):
                raise FileFormatError(f"the nested model {name!r} reads input {ref + 1}, but is called "
                                      f"on {len(given)} tensor(s)")
            return given[ref]
        return TensorRef(renamed[ref.node], a * per_app[ref.node] + ref.call)

    def app_outputs(name: str, a: int) -> list[_Ref]:
        key = (name, a)
        if key not in outputs_of:
            if key in busy:
                raise FileFormatError(f"the nested model {name!r} is fed by its own output")
            busy.add(key)
            outputs_of[key] = [substitute(o, name, a) for o in subs[name][0].outputs]
            busy.discard(key)
        return outputs_of[key]

    def resolve(tensor: _Tensor, whose: str) -> _Ref:
        layer = tensor.layer
        if layer not in by_name:
            raise FileFormatError(f"{whose} refers to a layer {layer!r} that is not in the model")
        if tensor.node_index >= applications(layer):
            raise FileFormatError(f"{whose} refers to application {tensor.node_index} of {layer!r}, "
                                  f"which is applied only {applications(layer)} time(s)")
        if layer in subs:
            outs = app_outputs(layer, tensor.node_index)
            if tensor.tensor_index >= len(outs):
                raise FileFormatError(f"{whose} uses output {tensor.tensor_index} of the nested model "
                                      f"{layer!r}, which has {len(outs)} output(s)")
            return outs[tensor.tensor_index]
        if tensor.tensor_index != 0:
            raise FileFormatError(f"{whose} uses output {tensor.tensor_index} of {layer!r}, but the "
                                  "layers Convas knows have one output")
        if layer in dropped:
            if layer not in input_number:
                raise FileFormatError(f"{whose} reads {layer!r}, an InputLayer that is not an input "
                                      "of its nested model")
            return input_number[layer]
        return TensorRef(layer, tensor.node_index)

    layers: list[_FlatLayer] = []
    groups: list[tuple[tuple[str, ...], _LayerRecord]] = []
    for record in model.records:
        if record.name in dropped:
            continue
        if record.sub is None:
            calls = [] if record.kind == "InputLayer" else [
                [resolve(t, f"{_where(path)}layer {record.name!r}") for t in call] for call in record.calls]
            shapes = [model.shapes.get((record.name, c, 0)) for c in range(max(len(calls), 1))]
            layers.append(_FlatLayer(record.name, record, calls or [[]], path, path + (record.name,), shapes))
            continue
        scope, renamed, _ = subs[record.name]
        apps = applications(record.name)
        total = apps * sum(len(layer.calls) for layer in scope.layers)
        if total > MAX_FLAT_CALLS:
            raise FileFormatError(f"the nested model {record.name!r} is applied {apps:,} times, which would "
                                  f"give its layers {total:,} calls; Convas reads at most {MAX_FLAT_CALLS:,}, "
                                  "far more than a real model has")
        groups.append((path + (record.name,), record))
        groups.extend(scope.groups)
        first = len(layers)
        for layer in scope.layers:
            calls = [[substitute(ref, record.name, a) for ref in call] for a in range(apps) for call in layer.calls]
            layers.append(layer._replace(name=renamed[layer.name], calls=calls, shapes=layer.shapes * apps))
        # A consumer out here recorded the shape of each output of the nested model.
        position = {layer.name: n for n, layer in enumerate(layers[first:], first)}
        for a in range(apps):
            for t, out in enumerate(app_outputs(record.name, a)):
                shape = model.shapes.get((record.name, a, t))
                if isinstance(out, TensorRef) and out.node in position and shape is not None:
                    inner = layers[position[out.node]]
                    if out.call < len(inner.shapes) and inner.shapes[out.call] is None:
                        inner.shapes[out.call] = shape
    if not nested:
        for given in model.inputs:
            resolve(given, "the model's inputs")
    outputs = [resolve(t, f"{_where(path)}the model's outputs") for t in model.outputs]
    return _Scope(layers, outputs, groups)


def _where(path: tuple[str, ...]) -> str:
    return f"nested model {path[-1]!r}: " if path else ""


# --- step 3: the flat graph → design ------------------------------------------------------------

def _node_args(record: _LayerRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a layer config into catalogue arguments and the verbatim rest (``name`` dropped)."""
    assert record.kind is not None
    params = {p.name: p for p in CATALOGUE[record.kind].params}
    args: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    config = dict(record.config)
    config.pop("name", None)
    if record.kind == "InputLayer":
        args.update(_input_args(record.name, config))
    if record.operands is not None:
        if record.operands.scalar is not None:
            args["scalar"] = record.operands.scalar
        if record.operands.scalar_first:
            args["scalar_first"] = True
    for key, value in config.items():
        arg = LEGACY_ARGS.get((record.kind, key), key)
        param = params.get(arg)
        if param is None or record.kind in OPERATIONS:  # an operation's operands are not its config
            rest[key] = value
            continue
        if arg == "activation":
            value, _ = _activation_problem(value)
        elif (param.kind in (ParamKind.INT, ParamKind.OPTIONAL_INT) and isinstance(value, list) and len(value) == 1):
            value = value[0]  # tf.keras wrote some single axes as one-element lists
        args[arg] = lists_to_tuples(value)
    return args, rest


def _input_args(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """``shape``/``batch_size`` of an InputLayer from any spelling; consumes those keys."""
    batch_shape = None
    for key in BATCH_SHAPE_KEYS:
        if key in config:
            batch_shape = config.pop(key)
            break
    if batch_shape is not None:
        if not isinstance(batch_shape, list) or not batch_shape:
            raise FileFormatError(f"input {name!r}: its batch shape {json.dumps(batch_shape)} is not a list")
        args: dict[str, Any] = {"shape": lists_to_tuples(batch_shape[1:])}
        if batch_shape[0] is not None:
            args["batch_size"] = batch_shape[0]
        config.pop("shape", None)
        config.pop("batch_size", None)
        return args
    shape = config.pop("shape", None)
    if not isinstance(shape, list):
        raise FileFormatError(f"input {name!r} does not say what shape its data has")
    args = {"shape": lists_to_tuples(shape)}
    batch_size = config.pop("batch_size", None)
    if batch_size is not None:
        args["batch_size"] = batch_size
    return args


def unsupported_kind(module: str | None, class_name: str) -> str:
    """The kind of an unsupported node: its class name, or ``module.class`` when the bare name is
    a catalogue kind (so that it is never taken for the catalogue layer)."""
    if canonical_kind(class_name) is None:
        return class_name
    return f"{module or 'keras.layers'}.{class_name}"


def _node(layer: _FlatLayer) -> tuple[Node, UnsupportedLayer | None]:
    record = layer.record
    inbound: list[list[TensorRef]] = [[r for r in call if isinstance(r, TensorRef)] for call in layer.calls]
    # ``trainable`` is the node's flag, not a setting kept verbatim: only ``false`` freezes.
    trainable = record.config.get("trainable") is not False
    if record.kind is not None:
        args, rest = _node_args(record)
        rest.pop("trainable", None)
        return Node(layer.name, record.kind, args, inbound, None, rest, trainable=trainable), None
    assert record.problem is not None
    marker = {"module": record.module, "class_name": record.class_name, "reason": record.problem,
              "output_shapes": list(layer.shapes)}
    config = {"unsupported": marker,
              **{k: v for k, v in record.config.items() if k not in ("name", "unsupported", "trainable")}}
    node = Node(layer.name, unsupported_kind(record.module, record.class_name), {}, inbound, None, config,
                trainable=trainable)
    return node, UnsupportedLayer(layer.name, record.class_name, record.module, record.problem)


def _origin(record: _LayerRecord) -> dict[str, Any]:
    """What a nested model's group keeps of its entry: everything but its layers and wiring."""
    return {"module": record.module, "class_name": record.class_name,
            "config": {k: v for k, v in record.config.items() if k != "layers"}}


def _design(name: str, scope: _Scope, top: _Model, sequential: bool) -> KerasImport:
    design = Design(name=name)
    group_names: dict[tuple[str, ...], str] = {}
    for key, record in scope.groups:  # outer groups first, so every parent exists
        group = design.unique_group_name(record.name)
        group_names[key] = group
        design.set_group(group, Group(group, GroupKind.MODEL, group_names.get(key[:-1]), origin=_origin(record)))
    # A nested model saved with ``trainable: false`` freezes every layer in it, as in Keras.
    frozen_models = [key for key, record in scope.groups if record.config.get("trainable") is False]
    unsupported: list[UnsupportedLayer] = []
    paths: dict[str, tuple[str, ...]] = {}
    for layer in scope.layers:
        node, problem = _node(layer)
        node.group = group_names.get(layer.group)
        if any(layer.group[:len(key)] == key for key in frozen_models):
            node.trainable = False
        try:
            design.insert_node(node)
        except DesignError as exc:
            raise FileFormatError(str(exc)) from None
        if problem is not None:
            unsupported.append(problem)
        if layer.group:
            paths[layer.name] = layer.path
    if sequential:
        design.inputs_order = design.input_names()
    else:
        design.inputs_order = [t.layer for t in top.inputs]
        design.outputs = [r for r in scope.outputs if isinstance(r, TensorRef)]
    return KerasImport(design, unsupported, paths)


def import_keras_config(doc: dict[str, Any], source: str = "the model") -> KerasImport:
    """Read a parsed Keras model config (``model.to_json()`` or ``config.json``): the design,
    with each layer Convas does not know as an unsupported node (see the module docstring), the
    list of those layers, and the Keras paths of layers that were in nested models.

    Raises :class:`FileFormatError` for a config that is not a readable model, and
    :class:`UnsupportedLayerError` for a subclassed model (no layers to show); ``source`` names
    the model in that message.
    """
    doc = _object(doc, "the model config")
    class_name = doc.get("class_name")
    config = doc.get("config")
    if class_name == "Sequential" and isinstance(config, list):  # Keras ≤ 2.2: a bare layer list
        config = {"layers": config}
    if not isinstance(class_name, str) or not isinstance(config, dict):
        raise FileFormatError("this is not a Keras model config (no class_name and config)")
    if "layers" not in config:
        raise UnsupportedLayerError(
            f"{source} holds a {class_name} model that is not Sequential or Functional: its "
            "architecture is Python code (a subclassed Model), which Convas never runs",
            [str(config.get("name", class_name))])
    raw_name = config.get("name")
    name = raw_name if isinstance(raw_name, str) else "model"
    try:
        model = _read_model(class_name, config, doc, False)
        result = _design(name, _flatten(model, ()), model, class_name == "Sequential")
    except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
        # The checks above cover every structure Keras writes; a hand-edited file can still
        # surprise them, and the person should see a file error, not a traceback.
        raise FileFormatError(f"unexpected model structure ({type(exc).__name__}: {exc})") from None
    # A large network opens as its blocks (conv2_block1, block_3, …), collapsed, laid out to fit
    # a screen; a small one opens with its blocks framed, every layer shown.
    add_block_groups(result.design)
    collapse_for_size(result.design)
    apply_design_layout(result.design)
    return result


def design_from_keras_config(doc: dict[str, Any], source: str = "the model") -> Design:
    """The design of a parsed Keras model config when Convas knows every layer of it;
    :class:`UnsupportedLayerError` (naming ``source`` and every such layer, and carrying what
    :func:`import_keras_config` read) otherwise."""
    return require_supported(import_keras_config(doc, source), source)


def require_supported(result: KerasImport, source: str) -> Design:
    """``result``'s design when it has no unsupported layer; otherwise :class:`UnsupportedLayerError`
    naming ``source`` and listing each (with the design and the list attached)."""
    if not result.unsupported:
        return result.design
    raise UnsupportedLayerError(unsupported_message(source, result.unsupported),
                                [u.name for u in result.unsupported], design=result.design,
                                unsupported=list(result.unsupported))


def unsupported_message(source: str, unsupported: list[UnsupportedLayer]) -> str:
    """"``source`` uses 2 layers Convas cannot represent:" and one "  • name (Class): reason" line
    per layer."""
    lines = "\n".join(f"  • {u}" for u in unsupported)
    count = "1 layer" if len(unsupported) == 1 else f"{len(unsupported)} layers"
    return f"{source} uses {count} Convas cannot represent:\n{lines}"


def keras_layer_paths(doc: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """For each layer of a parsed Keras config that sits in a nested model, its design name →
    its Keras path (:attr:`KerasImport.paths`); the rule import names them by."""
    return import_keras_config(doc).paths
