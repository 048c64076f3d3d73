"""Open any design file Convas reads, choosing the reader by content and name."""

from __future__ import annotations

import stat
from pathlib import Path

from .design import Design
from .errors import FileFormatError

SUPPORTED = ".convas (Convas project), .keras (Keras 3 model) or .json (Keras model.to_json())"


def load_design(path: str | Path) -> Design:
    """Read a ``.convas`` project, a ``.keras`` model or a Keras JSON architecture.

    Raises :class:`~engine.errors.FileFormatError` (or ``UnsupportedLayerError``) with a message
    for the user; never runs code from the file.
    """
    from .keras_import import load_keras_design
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
        return load_project(path).design
    if suffix in (".keras", ".zip"):
        from .embedded_design import restore_design
        return restore_design(path, load_keras_design(path))
    if suffix == ".json":
        if _is_convas_json(path):
            return load_project(path).design
        return load_keras_design(path)
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
