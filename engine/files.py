"""Open any design file Convas reads, choosing the reader by content and name.

Two ways in: :func:`load_design_report` returns the design with every layer Convas does not know
shown as an unsupported node (see :mod:`engine.keras_import`) and the list of those layers, for
callers that show a partial model (the window: "3 layers are shown as unsupported cards", the CLI's
summary); :func:`load_design` is strict, for callers that need a design they can build (train,
export): such a file raises :class:`~engine.errors.UnsupportedLayerError`, which names every such
layer and carries what was read.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING

from .design import Design
from .errors import FileFormatError

if TYPE_CHECKING:
    from .keras_import import KerasImport, UnsupportedLayer

SUPPORTED = ".convas (Convas project), .keras (Keras 3 model) or .json (Keras model.to_json())"


def load_design(path: str | Path) -> Design:
    """Read a ``.convas`` project, a ``.keras`` model or a Keras JSON architecture.

    Raises :class:`~engine.errors.FileFormatError` (or ``UnsupportedLayerError`` for a model with
    layers Convas does not know) with a message for the user; never runs code from the file.
    """
    from .keras_import import require_supported

    return require_supported(_read(path), Path(path).name)


def load_design_report(path: str | Path) -> tuple[Design, list[UnsupportedLayer]]:
    """Like :func:`load_design`, but a Keras model with layers Convas does not know still opens:
    the design holds each as an unsupported node, and the list says which (empty for a project
    or a fully supported model). ``UnsupportedLayerError`` only for a subclassed model, which has
    no layers to show."""
    result = _read(path)
    return result.design, list(result.unsupported)


def _read(path: str | Path) -> KerasImport:
    from .keras_import import KerasImport, import_keras_file
    from .project_file import load_project

    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file") from None
    except OSError as exc:
        raise FileFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise FileFormatError(f"{path} is a folder; give a {SUPPORTED} file")
    if not stat.S_ISREG(mode):  # a named pipe or a device could keep a reader waiting forever
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "not a regular file"
        raise FileFormatError(f"{path} is {kind}, not a design file; give a {SUPPORTED} file")
    suffix = path.suffix.lower()
    if suffix == ".convas":
        return KerasImport(load_project(path).design, [], {})
    if suffix in (".keras", ".zip"):
        from .embedded_design import restore_design
        result = import_keras_file(path)
        if result.unsupported:  # Convas never exports such a model: no design of its own inside
            return result
        return result._replace(design=restore_design(path, result.design))
    if suffix == ".json":
        if _is_convas_json(path):
            return KerasImport(load_project(path).design, [], {})
        return import_keras_file(path)
    raise FileFormatError(f"{path.name}: unknown file type {suffix or '(none)'}; Convas reads {SUPPORTED}")


def has_weights(path: str | Path) -> bool:
    """Whether ``path`` is a ``.keras`` archive that carries weights (``model.weights.h5``)."""
    import zipfile

    from .project_file import open_regular

    try:
        with open_regular(Path(path)) as fh, zipfile.ZipFile(fh) as archive:
            return "model.weights.h5" in archive.namelist()
    except (FileFormatError, OSError, zipfile.BadZipFile):
        return False


def _is_convas_json(path: Path) -> bool:
    """Whether a ``.json`` file is a Convas project; unreadable ones are left to the Keras reader,
    whose errors say why."""
    from .project_file import FORMAT, open_regular, parse_json, read_text

    try:
        with open_regular(path) as fh:
            head = fh.read(4096).decode("utf-8", "replace")
        if '"format"' not in head:
            return False
        doc = parse_json(read_text(path), path.name)
    except (FileFormatError, OSError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT
