"""Copy and paste of layers through the system clipboard, as Convas JSON."""

from __future__ import annotations

import copy
import json

from PySide6.QtCore import QMimeData

from engine.design import Design, Node
from engine.errors import ConvasError
from engine.project_file import design_from_dict, design_to_dict

NODES_MIME = "application/x-convas-nodes"


def nodes_to_mime(design: Design, names: list[str]) -> QMimeData:
    """The selected nodes (with the connections among them) as clipboard data."""
    part = Design(name="clipboard")
    chosen = set(names)
    for name in names:
        node = copy.deepcopy(design.nodes[name])
        node.inbound = [[r for r in refs if r.node in chosen] for refs in node.inbound]
        part.nodes[node.name] = node
    text = json.dumps(design_to_dict(part))
    mime = QMimeData()
    mime.setData(NODES_MIME, text.encode("utf-8"))
    mime.setText(text)
    return mime


def nodes_from_mime(mime: QMimeData | None) -> list[Node]:
    """Nodes on the clipboard, or [] when it holds no Convas layers."""
    if mime is None or not mime.hasFormat(NODES_MIME):
        return []
    try:
        # QByteArray has the buffer protocol; PySide6's stub does not say so.
        text = bytes(mime.data(NODES_MIME)).decode("utf-8")  # type: ignore[call-overload]
        part = design_from_dict(json.loads(text))
    except (ValueError, ConvasError):
        return []
    return list(part.nodes.values())
