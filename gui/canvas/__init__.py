"""The graph canvas: a QGraphicsScene that mirrors the open document, and the view around it.

The scene owns no truth. It builds one :class:`NodeItem` per layer and one :class:`EdgeItem` per
connection from the document, a :class:`GroupCardItem` per collapsed group and a
:class:`GroupFrameItem` per expanded one, updates them only when the document announces a change,
and turns every gesture (move, connect, drop a layer, collapse a group) into one
``document.edit(...)`` of engine ops.
"""

# Defined before the submodules are imported: the view reads it, and so does the palette.
LAYER_MIME = "application/x-convas-layer"  # payload: the Keras class name, UTF-8

from .edge_item import EdgeItem  # noqa: E402
from .group_item import GroupCardItem, GroupFrameItem  # noqa: E402
from .node_item import NodeItem  # noqa: E402
from .scene import GraphScene  # noqa: E402
from .view import GraphView  # noqa: E402

__all__ = ["LAYER_MIME", "EdgeItem", "GraphScene", "GraphView", "GroupCardItem", "GroupFrameItem", "NodeItem"]
