"""Read a Keras model's architecture into a :class:`Design`, without TensorFlow or Keras.

A ``.keras`` file is a zip archive whose ``config.json`` is the model config; ``model.to_json()``
writes the same config as text. Both are read with :mod:`zipfile` and :mod:`json` only: nothing in
the file is ever evaluated, unpickled or imported, so a Lambda layer's code or a custom class
stays inert text and is reported as unsupported.

Understood: Keras 3 ``Sequential`` and ``Functional`` configs (``inbound_nodes`` as
``{"args": [...], "kwargs": {...}}`` with ``keras_history``), shared layers (one call per inbound
node), several inputs and outputs, and the Keras 2 / tf.keras layout
(``inbound_nodes: [[["name", 0, 0, {}]]]``, ``batch_input_shape``).

Like the project reader, import runs in two steps: the config is checked into plain
:class:`_LayerRecord` values (structure errors are :class:`FileFormatError`, unsupported layers
are collected and reported together as one :class:`UnsupportedLayerError`), then the design is
built and laid out with :mod:`engine.layout`.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from .design import Design, DesignError, Node, TensorRef
from .errors import FileFormatError, UnsupportedLayerError
from .layers import ACTIVATIONS, CATALOGUE, ParamKind, canonical_kind
from .layout import apply_layout
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


# --- reading the config ------------------------------------------------------------------------

def load_keras_design(path: str | os.PathLike[str]) -> Design:
    """The design of a ``.keras`` file or of a ``model.to_json()`` file.

    Raises :class:`FileFormatError` (naming the file) when the file cannot be read as a Keras
    model, and :class:`UnsupportedLayerError` listing every layer Convas cannot represent.
    """
    path = Path(path)
    config = read_keras_config(path)
    try:
        return design_from_keras_config(config, source=path.name)
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


class _LayerRecord(NamedTuple):
    name: str
    class_name: str
    kind: str | None  # catalogue kind; None when unsupported
    config: dict[str, Any]
    calls: list[list[_Tensor]]


class _Unsupported(NamedTuple):
    name: str
    class_name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.class_name}): {self.reason}"


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


def _keras3_tensors(value: Any, where: str) -> Iterator[_Tensor]:
    """Every Keras tensor in a serialised call argument, depth first, in order (iterative)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class_name") == "__keras_tensor__":
                cfg = _object(item.get("config"), f"{where}: a tensor's config")
                yield _history(cfg.get("keras_history"), where)
            else:
                stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _call(node: Any, where: str) -> tuple[list[_Tensor], bool]:
    """The input tensors of one inbound node, and whether tensors were passed as keywords."""
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        tensors = list(_keras3_tensors(node.get("args", []), where))
        keyword = any(True for _ in _keras3_tensors(node.get("kwargs", {}), where))
        return tensors, keyword
    if isinstance(node, list):  # Keras 2: [["name", node_index, tensor_index, kwargs], ...]
        if _is_history(node):  # a lone reference instead of a list of them
            node = [node]
        return [_history(ref, where) for ref in node], False
    raise FileFormatError(f"{where} is neither a Keras 3 nor a Keras 2 inbound node: {json.dumps(node)[:80]}")


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


def _class_problem(entry: dict[str, Any], class_name: str, config: dict[str, Any]) -> str | None:
    """Why a layer entry cannot become a design node, or None when it can."""
    if class_name in MODEL_CLASSES or "layers" in config:
        return ("a nested model; Convas edits one flat graph, so rebuild its layers in the "
                "outer model")
    if class_name == "Lambda":
        return ("Lambda layers hold Python code, which Convas never runs; rebuild what it does with "
                "catalogue layers")
    if class_name in OP_LAMBDAS:
        return ("a TensorFlow operation applied directly to a tensor, which is Python code "
                "Convas never runs; use the matching Keras layer instead")
    module = entry.get("module", "keras.layers")  # Keras 2 configs name no module: all built-in
    registered = entry.get("registered_name")
    if not isinstance(module, str) or module.split(".")[0] not in KERAS_PACKAGES or (
            isinstance(registered, str) and ">" in registered):
        where = f"from {module}" if isinstance(module, str) else "defined in Python code"
        return (f"a custom layer class ({where}); Convas only knows built-in Keras layers and "
                "never runs code from a file")
    if "ops" in module.split("."):
        return ("a keras.ops operation applied directly to a tensor; Convas only represents "
                "layers, so use the matching layer (such as Add or Concatenate) instead")
    if canonical_kind(class_name) is None:
        return f"Convas does not know the {class_name} layer yet"
    return None


def _layer_records(config: dict[str, Any], sequential: bool
                   ) -> tuple[list[_LayerRecord], list[_Unsupported]]:
    layers_raw = config.get("layers")
    if not isinstance(layers_raw, list):
        raise FileFormatError("the model config has no list of layers")
    records: list[_LayerRecord] = []
    unsupported: list[_Unsupported] = []
    seen: set[str] = set()
    for i, entry in enumerate(layers_raw):
        entry = _object(entry, f"layer {i}")
        class_name = _text(entry.get("class_name"), f"layer {i}: class_name")
        layer_config = _object(entry.get("config", {}), f"layer {i} ({class_name}): config")
        name = _text(entry.get("name", layer_config.get("name")), f"layer {i} ({class_name}): name")
        if name in seen:
            raise FileFormatError(f"two layers are named {name!r}; Keras layer names are unique")
        seen.add(name)
        for key, value in layer_config.items():
            check_argument_nesting(value, f"layer {name!r}, argument {key!r}")
        calls: list[list[_Tensor]] = []
        problem = _class_problem(entry, class_name, layer_config)
        if not sequential:
            nodes = entry.get("inbound_nodes", [])
            if not isinstance(nodes, list):
                raise FileFormatError(f"layer {name!r}: inbound_nodes must be a list")
            for n, node in enumerate(nodes):
                tensors, keyword = _call(node, f"layer {name!r}, inbound node {n}")
                if keyword and problem is None:
                    problem = ("takes tensors as keyword arguments, which a Convas design cannot "
                               "represent")
                calls.append(tensors)
        kind = None if problem else canonical_kind(class_name)
        if problem is None and kind is not None:
            spec_params = {p.name for p in CATALOGUE[kind].params}
            if "activation" in spec_params:
                _, why = _activation_problem(layer_config.get("activation"))
                problem = why
        if problem:
            unsupported.append(_Unsupported(name, class_name, problem))
            kind = None
        records.append(_LayerRecord(name, class_name, kind, layer_config, calls))
    return records, unsupported


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


# --- step 2: records → design ------------------------------------------------------------------

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
    for key, value in config.items():
        arg = LEGACY_ARGS.get((record.kind, key), key)
        param = params.get(arg)
        if param is None:
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


def _add(design: Design, record: _LayerRecord, inbound: list[list[TensorRef]]) -> None:
    args, rest = _node_args(record)
    try:
        design.insert_node(Node(record.name, record.kind or record.class_name, args,
                                inbound or [[]], None, rest))
    except DesignError as exc:
        raise FileFormatError(str(exc)) from None


def _sequential_design(name: str, config: dict[str, Any], top: dict[str, Any],
                       records: list[_LayerRecord]) -> Design:
    design = Design(name=name)
    previous: str | None = None
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
        if batch_shape is not None:
            input_name = "input_layer"
            while any(r.name == input_name for r in records):
                input_name += "_"
            synthetic = _LayerRecord(input_name, "InputLayer", "InputLayer",
                                     {"batch_shape": batch_shape}, [])
            _add(design, synthetic, [])
            previous = input_name
    for record in records:
        inbound = [[TensorRef(previous)]] if previous and record.kind != "InputLayer" else [[]]
        _add(design, record, inbound)
        previous = record.name
    design.inputs_order = design.input_names()
    return design


def _functional_design(name: str, config: dict[str, Any], records: list[_LayerRecord]) -> Design:
    calls = {r.name: (max(len(r.calls), 1) if r.kind != "InputLayer" else 1) for r in records}

    def ref(tensor: _Tensor, whose: str) -> TensorRef:
        if tensor.layer not in calls:
            raise FileFormatError(f"{whose} refers to a layer {tensor.layer!r} that is not in the model")
        if tensor.node_index >= calls[tensor.layer]:
            raise FileFormatError(f"{whose} refers to application {tensor.node_index} of {tensor.layer!r}, "
                        f"which is applied only {calls[tensor.layer]} time(s)")
        if tensor.tensor_index != 0:
            raise FileFormatError(f"{whose} uses output {tensor.tensor_index} of {tensor.layer!r}, but the "
                        "layers Convas knows have one output")
        return TensorRef(tensor.layer, tensor.node_index)

    design = Design(name=name)
    for record in records:
        inbound = [] if record.kind == "InputLayer" else [
            [ref(t, f"layer {record.name!r}") for t in call] for call in record.calls]
        _add(design, record, inbound)
    design.inputs_order = [ref(t, "the model's inputs").node
                           for t in _structure_refs(config.get("input_layers"), "input_layers")]
    design.outputs = [ref(t, "the model's outputs")
                      for t in _structure_refs(config.get("output_layers"), "output_layers")]
    return design


def design_from_keras_config(doc: dict[str, Any], source: str = "the model") -> Design:
    """Build a design from a parsed Keras model config (``model.to_json()`` or ``config.json``).

    ``source`` names the model in the :class:`UnsupportedLayerError` message.
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
    sequential = class_name == "Sequential"
    raw_name = config.get("name")
    name = raw_name if isinstance(raw_name, str) else "model"
    records, unsupported = _layer_records(config, sequential)
    if unsupported:
        lines = "\n".join(f"  • {u}" for u in unsupported)
        count = "1 layer" if len(unsupported) == 1 else f"{len(unsupported)} layers"
        raise UnsupportedLayerError(
            f"{source} uses {count} Convas cannot represent:\n{lines}",
            [u.name for u in unsupported])
    try:
        design = (_sequential_design(name, config, doc, records) if sequential
                  else _functional_design(name, config, records))
    except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
        # The checks above cover every structure Keras writes; a hand-edited file can still
        # surprise them, and the person should see a file error, not a traceback.
        raise FileFormatError(f"unexpected model structure ({type(exc).__name__}: {exc})") from None
    apply_layout(design)
    return design
