"""The ``.convas`` project file: a design, its training settings and its weights, versioned.

A file looks like::

    {"format": "convas", "version": 2, "app_version": "0.1.0",
     "design": {"name": "seed_cnn", "inputs": ["input_layer"], "outputs": [["dense", 0]],
                "nodes": [{"name": "conv2d", "kind": "Conv2D", "args": {"filters": 32, ...},
                           "inbound": [[["input_layer", 0]]], "position": [0, 120],
                           "config": {...}}, ...]},
     "training": {...},
     "weights": {"file": "seed_cnn.weights.keras", "sha256": "…", "bytes": 123456,
                 "origin": "trained on Digits for 5 epochs"}}

``inbound`` holds one list of ``[node, call]`` references per call of the layer; ``outputs`` uses
the same references (empty: every unconsumed tensor is an output). ``weights`` (optional, version 2)
names a Keras ``.keras`` model saved beside the project, whose layers' weights the design's
same-named layers take: JSON is no place for megabytes of floats, and a ``.keras`` file is one
every Keras user can open. Its hash tells a project whose weights file was swapped or damaged.
``origin`` is the weights' description for people (:class:`engine.weights.WeightsSource`); it is
never parsed: weights read from a project are of kind SAVED, whatever the words say. Argument
tuples are written as JSON lists and read back as tuples, so a design survives a save and a load
unchanged.

Reading has two steps, as in orange-canvas-core: the JSON is parsed and checked into plain
records (every mistake becomes a :class:`FileFormatError` that says where and what), and only then
is a :class:`Design` built. Older files are upgraded one version at a time through
:data:`MIGRATIONS` before they are checked. Before either step, a hostile file is refused with
a message that says where: only regular files are opened (a named pipe never makes a reader
wait), at most :data:`MAX_TEXT_BYTES` are read, and nothing nested deeper than
:data:`MAX_NESTING` levels (a layer argument: :data:`MAX_ARGUMENT_NESTING`) reaches code that
walks it. A weights file is hashed only when someone asks whether it changed
(:attr:`Project.warnings`), never to read the design.

Groups (version 3): ``design.groups`` lists ``{"name", "kind", "parent", "collapsed", "position",
"origin"}`` objects, outer groups before the groups inside them, and a node names its innermost
group as ``"group"``. A design without groups writes neither.

Frozen layers (version 4): a node whose weights training leaves alone (Keras's
``layer.trainable = False``) writes ``"trainable": false``; a trainable node writes nothing.

Search ranges (version 5): a node's ``"search"`` maps an argument to the values a sweep may try
(:class:`~engine.search_range.SearchRange` objects such as ``{"kind": "int", "low": 16, "high": 64,
"step": 16}``), a group's ``"repeats"`` is the range of how many times a sweep may repeat it,
``training.search`` holds ranges of training settings, and the top-level ``"sweep"`` holds the
sweep's own settings (:class:`engine.sweep_settings.SweepSettings`). Each is written only when
there is one, so a project without a search space reads as before.

Versions: 1, the design and training settings; 2 adds ``weights``; 3 adds ``groups``; 4 adds
``trainable``; 5 adds search ranges and ``sweep``.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple

from . import __version__
from .atomic import replace_atomically, write_bytes_atomically
from .design import Design, DesignError, Group, GroupKind, Node, TensorRef
from .errors import ConvasError, FileFormatError
from .search_range import SearchRange
from .weights import WeightsSource, file_sha256

FORMAT = "convas"
VERSION = 5
SUFFIX = ".convas"
WEIGHTS_SUFFIX = ".weights.keras"
MAX_TEXT_BYTES = 64 * 1024 * 1024  # a design file's text; far above any real architecture
MAX_NESTING = 64           # JSON levels in a whole file; real projects and Keras configs use ~12
MAX_ARGUMENT_NESTING = 16  # levels in one layer argument or setting; Keras's use at most ~5


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 2 only adds the optional ``weights`` entry: a version-1 project has none."""
    doc.pop("weights", None)
    return doc


def _v2_to_v3(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 3 only adds optional groups: a version-2 design has none (anything by that name
    in an older file meant nothing and is dropped)."""
    design = doc.get("design")
    if isinstance(design, dict):
        design.pop("groups", None)
        for node in design.get("nodes", []) if isinstance(design.get("nodes"), list) else []:
            if isinstance(node, dict):
                node.pop("group", None)
    return doc


def _v3_to_v4(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 4 adds the node flag ``trainable``: a version-3 layer is trainable, unless the Keras
    model it was imported from froze it, which version 3 kept as the setting
    ``config["trainable"]`` (and Keras honoured when building): that setting becomes the flag."""
    design = doc.get("design")
    if isinstance(design, dict):
        for node in design.get("nodes", []) if isinstance(design.get("nodes"), list) else []:
            if isinstance(node, dict):
                node.pop("trainable", None)
                config = node.get("config")
                if isinstance(config, dict) and config.pop("trainable", None) is False:
                    node["trainable"] = False
    return doc


def _v4_to_v5(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 5 adds optional search ranges and sweep settings: a version-4 project has none
    (anything by those names in an older file meant nothing and is dropped)."""
    doc.pop("sweep", None)
    training = doc.get("training")
    if isinstance(training, dict):
        training.pop("search", None)
    design = doc.get("design")
    if isinstance(design, dict):
        for key, items in (("nodes", "search"), ("groups", "repeats")):
            for item in design.get(key, []) if isinstance(design.get(key), list) else []:
                if isinstance(item, dict):
                    item.pop(items, None)
    return doc


# MIGRATIONS[n] turns a version-n document (the whole parsed JSON object) into a version n+1 one.
Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5}


@dataclass
class Project:
    """What a project file holds: the design, the training settings (if any were saved), the
    weights (if any were saved: a SAVED :class:`~engine.weights.WeightsSource`) and the version
    of Convas that wrote it. ``weights_sha256`` and ``weights_bytes`` are what the file recorded
    about its weights file, checked by :attr:`warnings`. ``sweep`` is the sweep's settings as
    saved (read by :meth:`engine.sweep_settings.SweepSettings.from_dict`), None when none were."""

    design: Design
    training: dict[str, Any] | None = None
    app_version: str | None = None
    sweep: dict[str, Any] | None = None
    weights: WeightsSource | None = None
    weights_sha256: str | None = None
    weights_bytes: int | None = None
    _warnings: list[str] = field(default_factory=list, init=False, repr=False)
    _weights_checked: bool = field(default=False, init=False, repr=False)

    @property
    def warnings(self) -> list[str]:
        """Problems that did not stop the project opening (a missing weights file, one changed
        since the save), for the user. Whether the weights file changed is decided here, when
        first asked, not when the file is read: hashing gigabytes of weights is for those who
        use them (training, export, the window), never for a summary of the design."""
        if not self._weights_checked:
            self._weights_checked = True
            if self.weights is not None and self.weights.file is not None and _weights_changed(
                    self.weights.file, self.weights_sha256, self.weights_bytes):
                self._warnings.append(
                    f"The weights file {self.weights.file.name} has changed since the project was "
                    "saved (another program, or a copy from elsewhere); its weights are used as "
                    "they are now.")
        return self._warnings


def weights_path(project_path: str | os.PathLike[str]) -> Path:
    """Where a project's weights are saved: ``name.convas`` → ``name.weights.keras`` beside it."""
    path = Path(project_path)
    return path.with_name(path.name.removesuffix(path.suffix) + WEIGHTS_SUFFIX)


# --- writing -------------------------------------------------------------------------------

def design_to_dict(design: Design) -> dict[str, Any]:
    """The design as JSON-ready data (tuples become lists). Raises :class:`ConvasError` when an
    argument or configuration value cannot be written as JSON, naming the layer and argument."""
    nodes: list[dict[str, Any]] = []
    for node in design.nodes.values():
        where = f"layer {node.name!r}"
        nodes.append({
            "name": node.name,
            "kind": node.kind,
            "args": {str(k): _plain(v, f"{where}, argument {k!r}") for k, v in node.args.items()},
            "inbound": [[[ref.node, ref.call] for ref in refs] for refs in node.inbound],
            "position": None if node.position is None else [_coordinate(c, f"{where}, position")
                                                             for c in node.position],
            "config": {str(k): _plain(v, f"{where}, setting {k!r}") for k, v in node.config.items()},
        })
        if node.group is not None:
            nodes[-1]["group"] = node.group
        if not node.trainable:
            nodes[-1]["trainable"] = False
        if node.search:
            nodes[-1]["search"] = {arg: r.to_dict() for arg, r in node.search.items()}
    data: dict[str, Any] = {
        "name": design.name,
        "inputs": list(design.inputs_order),
        "outputs": [[ref.node, ref.call] for ref in design.outputs],
        "nodes": nodes,
    }
    if design.groups:
        data["groups"] = [_group_dict(g, design) for g in _outer_first(design)]
    return data


def _outer_first(design: Design) -> list[Group]:
    """The design's groups, each after the group holding it (so that reading meets parents first)."""
    depth = {name: len(design.group_chain(name)) for name in design.groups}
    return sorted(design.groups.values(), key=lambda g: depth[g.name])


def _group_dict(group: Group, design: Design) -> dict[str, Any]:
    where = f"group {group.name!r}"
    data = {
        "name": group.name,
        "kind": str(group.kind),
        "parent": group.parent,
        "collapsed": group.collapsed,
        "position": None if group.position is None else [_coordinate(c, f"{where}, position")
                                                          for c in group.position],
        "origin": {str(k): _plain(v, f"{where}, origin {k!r}") for k, v in group.origin.items()},
    }
    if group.repeats is not None:
        data["repeats"] = group.repeats.to_dict()
    return data


def project_to_dict(design: Design, training: dict[str, Any] | None = None,
                    weights: dict[str, Any] | None = None, sweep: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole project document as written by :func:`save_project`; ``weights`` is its
    ``weights`` entry (see :func:`save_project`), ``sweep`` the sweep's settings
    (:meth:`engine.sweep_settings.SweepSettings.to_dict`)."""
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "app_version": __version__,
                           "design": design_to_dict(design)}
    if training is not None:
        if not isinstance(training, dict):
            raise ConvasError(f"training settings must be a dict, got {type(training).__name__}")
        doc["training"] = _plain(training, "training settings")
    if weights is not None:
        doc["weights"] = _plain(weights, "weights")
    if sweep is not None:
        doc["sweep"] = _plain(sweep, "sweep settings")
    return doc


def save_project(path: str | os.PathLike[str], design: Design,
                 training: dict[str, Any] | None = None, weights: WeightsSource | None = None,
                 sweep: dict[str, Any] | None = None) -> Path | None:
    """Write the project to ``path`` atomically, its weights (if any) to :func:`weights_path`.

    The text is built in memory first, written to a temporary file beside the target, flushed to
    disk and then swapped in with :func:`os.replace`: readers see either the old file or the new
    one, never half of one. On any failure the old file is untouched, the temporary file is
    removed and a :class:`ConvasError` says why. The weights file is written the same way, first,
    so that a project never names a weights file that is not there. Returns the weights file.

    ``weights`` (trained, imported or saved; see :func:`engine.weights.resolve_weights`) are
    written beside the project; their description is kept as the entry's ``origin``.
    """
    doc = project_to_dict(design, training, sweep=sweep)  # refuses unsavable values before touching the disk
    saved = None
    if weights is not None:
        saved = _save_weights(weights, weights_path(path))
        doc["weights"] = {"file": saved.name, "sha256": file_sha256(saved), "bytes": saved.stat().st_size,
                          "origin": weights.description}
    write_bytes_atomically(path, to_json_text(doc).encode("utf-8"))
    return saved


def _save_weights(weights: WeightsSource, target: Path) -> Path:
    """Put the weights at ``target`` (already there: nothing to do), atomically."""
    if weights.model is None:  # weights in a file: copied, unless they are there already
        if weights.file is None:
            raise ConvasError("no weights to save: fresh weights are not kept with a project")
        if _same_file(Path(weights.file), target):
            return target
        if not Path(weights.file).is_file():
            raise ConvasError(f"the weights to keep with the project ({weights.description}) were in "
                              f"{weights.file}, which is gone. Put it back, or choose Train → Forget "
                              "Weights to save the project without them")
    return replace_atomically(target, weights.save_to, f"the weights to {target.name}", WEIGHTS_SUFFIX)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def to_json_text(doc: Any, width: int = 96) -> str:
    """JSON indented by two spaces, except that short lists (shapes, references, positions) stay
    on one line, so that a project file reads well and diffs cleanly."""
    def dump(value: Any, depth: int) -> str:
        pad = "  " * (depth + 1)
        if isinstance(value, dict) and value:
            items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {dump(v, depth + 1)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"
        if isinstance(value, list) and value:
            flat = json.dumps(value, ensure_ascii=False)
            if len(flat) + 2 * depth <= width and not any(isinstance(v, dict) and v for v in value):
                return flat
            items = [pad + dump(v, depth + 1) for v in value]
            return "[\n" + ",\n".join(items) + "\n" + "  " * depth + "]"
        return json.dumps(value, ensure_ascii=False)
    # A lone surrogate (a name from a damaged file) cannot be written as UTF-8: keep it as a JSON
    # escape, which reads back as the same string.
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", dump(doc, 0) + "\n")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _coordinate(value: Any, where: str) -> int | float:
    """Canvas coordinates, written without a needless ``.0``."""
    number = _plain(value, where)
    if not isinstance(number, (int, float)) or isinstance(number, bool):
        raise ConvasError(f"cannot save {where}: {value!r} is not a number")
    return int(number) if isinstance(number, float) and number.is_integer() else number


def _plain(value: Any, where: str) -> Any:
    """``value`` as JSON data: tuples become lists; anything JSON cannot hold is refused."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConvasError(f"cannot save {where}: key {k!r} is not text")
            out[k] = _plain(v, where)
        return out
    if isinstance(value, numbers.Integral):  # numpy integers and the like
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise ConvasError(f"cannot save {where}: {value!r} ({type(value).__name__}) is not a number, "
                      "text, list or dict")


# --- reading, step 1: JSON → checked plain records -------------------------------------------

class _NodeRecord(NamedTuple):
    name: str
    kind: str
    args: dict[str, Any]
    inbound: list[list[tuple[str, int]]]
    position: tuple[float, float] | None
    config: dict[str, Any]
    group: str | None = None
    trainable: bool = True
    search: dict[str, SearchRange] = {}  # noqa: RUF012 - a NamedTuple default, never changed


class _DesignRecord(NamedTuple):
    name: str
    nodes: list[_NodeRecord]
    outputs: list[tuple[str, int]]
    inputs: list[str]
    groups: tuple[Group, ...] = ()


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _expect(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if not isinstance(value, kind):
        raise FileFormatError(f"{where} must be {what}, but is {_type_name(value)}")
    return value


def _ref_record(value: Any, where: str) -> tuple[str, int]:
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], str)
            or not isinstance(value[1], int) or isinstance(value[1], bool) or value[1] < 0):
        raise FileFormatError(f"{where} must be a [layer name, call number] pair, but is {json.dumps(value)}")
    return value[0], value[1]


def _children(value: Any) -> Iterator[tuple[Any, Any]] | None:
    """(key, item) pairs of a JSON container (list, tuple or dict); None for anything else."""
    if isinstance(value, dict):
        return iter(value.items())
    if isinstance(value, (list, tuple)):
        return enumerate(value)
    return None


def lists_to_tuples(value: Any) -> Any:
    """JSON lists back to the tuples the catalogue uses, at every depth (dict values included).
    Iterative, so that no nesting can exhaust the interpreter's stack."""
    top = _children(value)
    if top is None:
        return value
    # One frame per open container: (whether it is a dict, its key in its parent, its converted
    # items so far, its remaining items).
    stack: list[tuple[bool, Any, list[tuple[Any, Any]], Iterator[tuple[Any, Any]]]] = [
        (isinstance(value, dict), None, [], top)]
    while True:
        is_dict, key_in_parent, done, items = stack[-1]
        for key, item in items:
            inner = _children(item)
            if inner is not None:
                stack.append((isinstance(item, dict), key, [], inner))
                break
            done.append((key, item))
        else:
            stack.pop()
            converted = dict(done) if is_dict else tuple(v for _, v in done)
            if not stack:
                return converted
            stack[-1][2].append((key_in_parent, converted))


def nesting_depth(value: Any) -> int:
    """How many containers deep ``value`` is: 0 for a number or text, 1 for ``[1, 2]``, 2 for
    ``[[1, 2]]``. Iterative."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        inner = _children(item)
        if inner is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for _, child in inner)
    return deepest


def _too_deep(value: Any, limit: int) -> tuple[list[Any], int] | None:
    """The key path to the first container nested more than ``limit`` levels deep in ``value``
    and the whole depth of ``value`` along it; None when nothing is that deep. Iterative."""
    top = _children(value)
    if top is None:
        return None
    path: list[Any] = []
    stack = [top]
    while stack:
        for key, item in stack[-1]:
            inner = _children(item)
            if inner is not None:
                path.append(key)
                stack.append(inner)
                if len(stack) > limit:
                    return path, len(stack) - 1 + nesting_depth(item)
                break
        else:
            stack.pop()
            if path:
                path.pop()
    return None


def argument_nesting_error(where: str, depth: int) -> FileFormatError:
    """The error for a layer argument (or setting) nested ``depth`` levels deep, at ``where``."""
    return FileFormatError(f"{where}: nested {depth} levels deep; Keras arguments nest at most "
                           f"{MAX_ARGUMENT_NESTING}")


def check_argument_nesting(value: Any, where: str) -> None:
    """Refuse a layer argument nested deeper than any Keras argument is (:data:`MAX_ARGUMENT_NESTING`),
    before anything walks it."""
    if _too_deep(value, MAX_ARGUMENT_NESTING) is not None:
        raise argument_nesting_error(where, nesting_depth(value))


def _place(doc: Any, path: list[Any]) -> tuple[str, int | None]:
    """Words for where ``path`` leads in a parsed design file, and, when that is inside a
    layer's argument (a project's ``args``/``config``, a Keras layer's ``config``), how many
    keys lead to the argument itself."""
    for j in range(len(path) - 3, -1, -1):  # the innermost layer on the path
        if path[j] in ("nodes", "layers") and isinstance(path[j + 1], int):
            entry: Any = doc
            for key in path[:j + 2]:
                entry = entry[key]
            config = entry.get("config") if isinstance(entry, dict) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            if name is None and isinstance(config, dict):
                name = config.get("name")
            layer = f"layer {name!r}" if isinstance(name, str) else f"layer {path[j + 1]}"
            section = path[j + 2]
            if len(path) > j + 3 and section in ("args", "config"):
                what = "setting" if section == "config" and path[j] == "nodes" else "argument"
                return f"{layer}, {what} {path[j + 3]!r}", j + 4
            return f"{layer}, {section}", None
    shown = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path[:12]).lstrip(".")
    return (shown + ("…" if len(path) > 12 else "")) or "the top level", None


def check_nesting(doc: Any, name: str) -> None:
    """Refuse a parsed file nested deeper than :data:`MAX_NESTING` levels, naming the place, so
    that nothing which walks it later can run out of stack."""
    found = _too_deep(doc, MAX_NESTING)
    if found is None:
        return
    path, depth = found
    where, argument_at = _place(doc, path)
    if argument_at is not None:
        raise FileFormatError(f"{name}: {argument_nesting_error(where, depth - argument_at)}")
    raise FileFormatError(f"{name}: {where}: nested {depth} levels deep; Convas reads files nested "
                          f"at most {MAX_NESTING} levels")


def _node_record(raw: Any, where: str) -> _NodeRecord:
    _expect(raw, dict, where, "an object")
    name = _expect(raw.get("name"), str, f"{where}.name", "text")
    where = f"{where} ({name!r})"
    kind = _expect(raw.get("kind"), str, f"{where}.kind", "text (a Keras layer class)")
    args = _expect(raw.get("args", {}), dict, f"{where}.args", "an object")
    config = _expect(raw.get("config", {}), dict, f"{where}.config", "an object")
    inbound_raw = _expect(raw.get("inbound", [[]]), list, f"{where}.inbound", "a list of calls")
    for section, what in ((args, "argument"), (config, "setting")):
        for key, value in section.items():
            check_argument_nesting(value, f"layer {name!r}, {what} {key!r}")
    inbound_raw = inbound_raw or [[]]  # every layer is applied at least once
    inbound = []
    for c, call in enumerate(inbound_raw):
        _expect(call, list, f"{where}.inbound[{c}]", "a list of [layer, call] references")
        inbound.append([_ref_record(r, f"{where}.inbound[{c}][{s}]") for s, r in enumerate(call)])
    position = _position(raw.get("position"), where)
    group = raw.get("group")
    if group is not None:
        _expect(group, str, f"{where}.group", "a group name or null")
    trainable = _expect(raw.get("trainable", True), bool, f"{where}.trainable",
                        "true or false (false: the layer is frozen)")
    search_raw = _expect(raw.get("search", {}), dict, f"{where}.search", "an object of search ranges")
    search = {arg: _search_range(r, f"{where}.search.{arg}") for arg, r in search_raw.items()}
    return _NodeRecord(name, kind, lists_to_tuples(args), inbound, position, config, group, trainable,
                       search)


def _search_range(raw: Any, where: str) -> SearchRange:
    """A search range of the file (:meth:`SearchRange.from_dict`), its problem said with where."""
    try:
        return SearchRange.from_dict(raw)
    except ConvasError as exc:
        raise FileFormatError(f"{where}: {exc}") from None


def _position(raw: Any, where: str) -> tuple[float, float] | None:
    if raw is None:
        return None
    if (not isinstance(raw, list) or len(raw) != 2
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in raw)):
        raise FileFormatError(f"{where}.position must be [x, y] or null, but is {json.dumps(raw)}")
    x, y = float(raw[0]), float(raw[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        raise FileFormatError(f"{where}.position must be finite numbers, but is {json.dumps(raw)}")
    return (x, y)


def _group_records(raw: Any, where: str) -> list[Group]:
    """The groups of a design, checked: unique names, known kinds, parents read before children."""
    _expect(raw, list, where, "a list of groups")
    groups: dict[str, Group] = {}
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        _expect(item, dict, at, "an object")
        name = _expect(item.get("name"), str, f"{at}.name", "text")
        at = f"{at} ({name!r})"
        if not name:
            raise FileFormatError(f"{at}.name must not be empty")
        if name in groups:
            raise FileFormatError(f"{where}: two groups are named {name!r}; group names must be unique")
        kind_raw = item.get("kind", GroupKind.USER.value)
        try:
            kind = GroupKind(kind_raw)
        except ValueError:
            allowed = ", ".join(repr(k.value) for k in GroupKind)
            raise FileFormatError(f"{at}.kind must be one of {allowed}, but is {json.dumps(kind_raw)}") from None
        parent = item.get("parent")
        if parent is not None:
            _expect(parent, str, f"{at}.parent", "a group name or null")
            if parent not in groups:
                raise FileFormatError(f"{at}.parent names {parent!r}, which is not a group listed "
                                      "before it")
        collapsed = _expect(item.get("collapsed", False), bool, f"{at}.collapsed", "true or false")
        origin = _expect(item.get("origin", {}), dict, f"{at}.origin", "an object")
        check_argument_nesting(origin, f"group {name!r}, origin")
        repeats = item.get("repeats")
        if repeats is not None:
            repeats = _search_range(repeats, f"{at}.repeats")
            if repeats.kind.value == "float" or repeats.problem() is not None or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (repeats.values() or [0])):
                raise FileFormatError(f"{at}.repeats must be whole numbers of at least 1, but is "
                                      f"{json.dumps(item.get('repeats'))}")
        groups[name] = Group(name, kind, parent, collapsed, _position(item.get("position"), at), origin,
                             repeats)
    return list(groups.values())


def _design_record(raw: Any, where: str = "design") -> _DesignRecord:
    """Check the structure and the references of a design object; no Design is built yet."""
    _expect(raw, dict, where, "an object")
    name = _expect(raw.get("name", "model"), str, f"{where}.name", "text")
    nodes_raw = _expect(raw.get("nodes"), list, f"{where}.nodes", "a list of layers")
    nodes = [_node_record(n, f"{where}.nodes[{i}]") for i, n in enumerate(nodes_raw)]
    outputs_raw = _expect(raw.get("outputs", []), list, f"{where}.outputs", "a list of [layer, call] pairs")
    outputs = [_ref_record(r, f"{where}.outputs[{i}]") for i, r in enumerate(outputs_raw)]
    inputs_raw = _expect(raw.get("inputs", []), list, f"{where}.inputs", "a list of layer names")
    inputs = [_expect(n, str, f"{where}.inputs[{i}]", "a layer name") for i, n in enumerate(inputs_raw)]

    calls: dict[str, int] = {}
    for node in nodes:
        if node.name in calls:
            raise FileFormatError(f"{where}: two layers are named {node.name!r}; names must be unique")
        calls[node.name] = len(node.inbound)

    def check(ref: tuple[str, int], whose: str) -> None:
        source, call = ref
        if source not in calls:
            raise FileFormatError(f"{whose} refers to a layer {source!r} that is not in the file")
        if call >= calls[source]:
            raise FileFormatError(f"{whose} refers to call {call} of {source!r}, which is applied only "
                                  f"{calls[source]} time(s)")

    for node in nodes:
        for refs in node.inbound:
            for ref in refs:
                check(ref, f"layer {node.name!r}")
    for ref in outputs:
        check(ref, f"{where}.outputs")
    for name_ in inputs:
        if name_ not in calls:
            raise FileFormatError(f"{where}.inputs names a layer {name_!r} that is not in the file")
    groups = _group_records(raw.get("groups", []), f"{where}.groups")
    known = {g.name for g in groups}
    for node in nodes:
        if node.group is not None and node.group not in known:
            raise FileFormatError(f"layer {node.name!r} is in a group {node.group!r} that is not in "
                                  f"{where}.groups")
    return _DesignRecord(name, nodes, outputs, inputs, tuple(groups))


# --- reading, step 2: records → Design ---------------------------------------------------------

def _build_design(record: _DesignRecord) -> Design:
    design = Design(name=record.name)
    for n in record.nodes:
        inbound = [[TensorRef(s, c) for s, c in refs] for refs in n.inbound]
        try:
            design.insert_node(Node(n.name, n.kind, dict(n.args), inbound, n.position, dict(n.config),
                                    n.group, n.trainable, dict(n.search)))
        except DesignError as exc:
            raise FileFormatError(str(exc)) from None
    design.groups = {g.name: g for g in record.groups}
    design.outputs = [TensorRef(s, c) for s, c in record.outputs]
    design.inputs_order = list(record.inputs)
    return design


def design_from_dict(data: Any) -> Design:
    """Build a design from :func:`design_to_dict` data; :class:`FileFormatError` if it is wrong."""
    return _build_design(_design_record(data))


# --- whole documents ---------------------------------------------------------------------------

def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring a parsed document to the current :data:`VERSION`, one migration at a time."""
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise FileFormatError(f"'version' must be a whole number, but is {json.dumps(version)}")
    if version > VERSION:
        raise FileFormatError(f"made by a newer Convas (version {version}); update Convas")
    while version < VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise FileFormatError(f"version {version} is not a Convas file version this Convas can read")
        try:
            doc = step(doc)
        except FileFormatError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise FileFormatError(f"could not upgrade it from version {version}: "
                                  f"{type(exc).__name__}: {exc}") from None
        if not isinstance(doc, dict):
            raise FileFormatError(f"upgrading it from version {version} gave no document")
        version += 1
        doc["version"] = version
    return doc


def project_from_dict(doc: Any, folder: str | os.PathLike[str] | None = None) -> Project:
    """Check a parsed document (format tag, version, design) and build the project. Its weights
    file is looked for in ``folder`` (the project's); without one the project has no weights."""
    _expect(doc, dict, "the file", "a JSON object")
    tag = doc.get("format")
    if tag != FORMAT:
        shown = "missing" if tag is None else json.dumps(tag)
        raise FileFormatError(f"not a Convas project (its 'format' is {shown}, not \"{FORMAT}\")")
    doc = upgrade(doc)
    record = _design_record(doc.get("design"))
    training = doc.get("training")
    if training is not None:
        _expect(training, dict, "training", "an object")
    weights = _weights(doc.get("weights"))
    app_version = doc.get("app_version")
    sweep = doc.get("sweep")
    if sweep is not None:
        _expect(sweep, dict, "sweep", "an object")
    project = Project(_build_design(record), training, app_version if isinstance(app_version, str) else None,
                      sweep=sweep)
    if weights is not None and folder is not None:
        _find_weights(project, weights, Path(folder))
    return project


class _WeightsRecord(NamedTuple):
    file: str
    sha256: str | None
    bytes: int | None
    origin: str


def _weights(raw: Any) -> _WeightsRecord | None:
    """The ``weights`` entry; its file name is relative to the project's folder."""
    if raw is None:
        return None
    _expect(raw, dict, "weights", "an object")
    name = _expect(raw.get("file"), str, "weights.file", "a file name")
    if not name or Path(name).name != name or name in (".", ".."):
        raise FileFormatError(f"weights.file must be a file name beside the project, but is {json.dumps(name)}")
    sha = raw.get("sha256")
    if sha is not None:
        _expect(sha, str, "weights.sha256", "text")
    size = raw.get("bytes")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise FileFormatError(f"weights.bytes must be a file size in bytes, but is {json.dumps(size)}")
    origin = raw.get("origin") or "saved weights"
    _expect(origin, str, "weights.origin", "text")
    return _WeightsRecord(name, sha, size, origin)


def _find_weights(project: Project, record: _WeightsRecord, folder: Path) -> None:
    """Point the project's weights at the file beside it, or say why the design opens without.
    The file is not read here: :attr:`Project.warnings` checks it when someone asks."""
    path = folder / record.file
    if not path.is_file():
        project._warnings.append(f"The weights file {path.name} is not beside the project, so the "
                                 "design opens with fresh, untrained weights. Put the file back "
                                 "next to the project and open it again, or train to get new weights.")
        return
    project.weights = WeightsSource.saved(path, record.origin)
    project.weights_sha256, project.weights_bytes = record.sha256, record.bytes


def _weights_changed(path: Path, sha256: str | None, size: int | None) -> bool:
    """Whether the weights file differs from what the project recorded: its size first (no
    reading), then its hash (:func:`engine.weights.file_sha256`, remembered per file state)."""
    try:
        if size is not None and path.stat().st_size != size:
            return True
        return sha256 is not None and file_sha256(path) != sha256
    except OSError:  # gone or unreadable since: whoever uses the weights will say so
        return False


def parse_json(text: str, name: str) -> Any:
    """``json.loads`` whose every failure is a :class:`FileFormatError` with line and column;
    a document nested deeper than :data:`MAX_NESTING` levels is refused (:func:`check_nesting`)."""
    if not text.strip():
        raise FileFormatError(f"{name} is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip())
        hint = " (the file looks cut short)" if truncated else ""
        msg = exc.msg.removesuffix(" at")  # json says "Invalid control character at"
        raise FileFormatError(f"{name} is not valid JSON: {msg} at line {exc.lineno}, "
                              f"column {exc.colno}{hint}") from None
    except RecursionError:  # the json module recurses once per level: far beyond MAX_NESTING
        raise FileFormatError(f"{name}: nested too deeply to read ({_deep_place(text)}); Convas reads "
                              f"files nested at most {MAX_NESTING} levels") from None
    check_nesting(doc, name)
    return doc


def _deep_place(text: str) -> str:
    """Where the brackets of a JSON text first open more than :data:`MAX_NESTING` deep."""
    import re

    depth = 0
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_NESTING:
                line = text.count("\n", 0, match.start()) + 1
                column = match.start() - text.rfind("\n", 0, match.start())
                return f"more than {MAX_NESTING} levels at line {line}, column {column}"
        elif token in "]}":
            depth -= 1
    return f"more than {MAX_NESTING} levels"


def _not_a_file(mode: int) -> str | None:
    """What a file system entry is when it is not a regular file ("a folder", "a named pipe")."""
    if stat.S_ISREG(mode):
        return None
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return what
    return "not a regular file"


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file. A named pipe, a device or
    a socket is refused at once (:class:`FileFormatError`) instead of being opened, since reading
    one can wait forever or never end; it is looked at before opening and again after (opening
    without waiting), so that one swapped in between is refused too."""
    try:
        kind = _not_a_file(os.stat(path).st_mode)
        if kind is None:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
            kind = _not_a_file(os.fstat(fd).st_mode)
            if kind is not None:
                os.close(fd)
    except OSError as exc:
        raise FileFormatError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if kind is not None:
        raise FileFormatError(f"{path.name} is {kind}, not a file; Convas reads design files only")
    if getattr(os, "O_NONBLOCK", 0):  # opened without waiting; reads may wait as usual
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_capped(stream: IO[bytes], cap: int) -> bytes | None:
    """All of ``stream`` if it holds at most ``cap`` bytes, else None, having read at most one
    chunk more than ``cap``: sizes a file or an archive claims are never trusted."""
    chunks: list[bytes] = []
    total = 0
    while chunk := stream.read(1 << 20):
        total += len(chunk)
        if total > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def read_text(path: Path, cap: int | None = None) -> str:
    """A regular file's text as UTF-8 (:func:`open_regular`), at most ``cap`` bytes of it
    (:data:`MAX_TEXT_BYTES` unless told); unreadable, oversized or undecodable files become
    :class:`FileFormatError`."""
    cap = MAX_TEXT_BYTES if cap is None else cap
    with open_regular(path) as fh:
        try:
            data = read_capped(fh, cap)
        except OSError as exc:
            raise FileFormatError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if data is None:
        raise FileFormatError(f"{path.name} is larger than {cap // 2**20} MB, the most Convas reads "
                              "of a design file; no real design is that large")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{path.name} is not a text (UTF-8) file: undecodable byte at "
                              f"offset {exc.start}") from None


def load_project(path: str | os.PathLike[str]) -> Project:
    """Read a ``.convas`` file. Every problem is a :class:`FileFormatError` naming the file."""
    path = Path(path)
    doc = parse_json(read_text(path), path.name)
    try:
        project = project_from_dict(doc, path.parent)
    except FileFormatError as exc:
        raise FileFormatError(f"{path.name}: {exc}") from None
    return project
