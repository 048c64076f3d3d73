"""The design Convas embeds in the ``.keras`` files it exports (``convas.json`` in the archive),
read back so that importing such a file restores the design exactly: names, layout, call order
and the arguments as the user set them. The exporter (:mod:`engine.export.formats`) writes the
entry; reading it belongs here, beside the other readers, which never import the exporters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .design import Design
from .errors import FileFormatError

METADATA_ENTRY = "convas.json"     # our entry inside a .keras archive (Keras ignores it)
MAX_METADATA_BYTES = 64 * 1024 * 1024  # convas.json, inflated: as large as config.json may be


def read_metadata(path: str | Path) -> dict[str, Any] | None:
    """Convas's metadata in a ``.keras`` file, or None when it has none (or it is unreadable).
    An entry that inflates past :data:`MAX_METADATA_BYTES` (a zip bomb) is not ignored but
    refused: :class:`~engine.keras_import.ArchiveMemberTooLarge`."""
    from .keras_import import ArchiveMemberTooLarge, read_archive_member
    from .project_file import parse_json

    path = Path(path)
    try:
        raw = read_archive_member(path, METADATA_ENTRY, MAX_METADATA_BYTES)
        if raw is None:
            return None
        data = parse_json(raw.decode("utf-8"), f"{path.name}: {METADATA_ENTRY}")
    except ArchiveMemberTooLarge:
        raise
    except (FileFormatError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def restore_design(path: str | Path, imported: Design) -> Design:
    """The design a ``.keras`` file was exported from, when its Convas metadata still describes
    the same network as the file's Keras config; otherwise ``imported`` (the design read from
    that config) unchanged."""
    from .layers import CATALOGUE
    from .project_file import design_from_dict

    meta = read_metadata(path)
    if not meta or not isinstance(meta.get("project"), dict):
        return imported
    try:
        embedded = design_from_dict(meta["project"]["design"])
    except Exception:  # noqa: BLE001 - a damaged or foreign entry: the Keras config is the truth
        return imported

    def structure(design: Design) -> dict[str, Any]:
        out = {}
        for node in design:
            spec = CATALOGUE.get(node.kind)
            args = spec.normalise(node.args)[0] if spec is not None else node.args
            out[node.name] = (node.kind, node.inbound, repr(sorted(args.items())))
        return out

    return embedded if structure(embedded) == structure(imported) else imported
