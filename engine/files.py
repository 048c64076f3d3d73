"""Open any design file Convas reads, choosing the reader by content and name."""

from __future__ import annotations

import json
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
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    if path.is_dir():
        raise FileFormatError(f"{path} is a folder; give a {SUPPORTED} file")
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

    try:
        with zipfile.ZipFile(path) as archive:
            return "model.weights.h5" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _is_convas_json(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    if '"format"' not in head:
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == "convas"
    except (ValueError, OSError, AttributeError):
        return False
