"""A connection on the canvas: a smooth curve from a layer's output port to an input port.

An edge is named by what it mirrors, ``(source TensorRef, target, call, slot)``; its ends are
recomputed from the two cards whenever either moves, and it is routed around the other cards
(:func:`engine.layout.route`) rather than drawn behind them. Zoomed out, one :class:`EdgeLayer`
draws all the connections of a scene as one path.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPainterPathStroker, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsSceneHoverEvent, QStyleOptionGraphicsItem, QWidget

from engine.design import TensorRef
from engine.layout import CardIndex, Rect, route

from .node_item import LOD_FULL, LOD_NAME, PORT_RADIUS, BatchLayer, CardStyle

ARROW_LENGTH = 8.0
ARROW_HALF_WIDTH = 4.5
CORNER_RADIUS = 14.0   # the bends of a connection routed around columns of cards
SHAPE_WIDTH = 12.0     # the band around a connection that a click or a hover hits


def curve(start: QPointF, end: QPointF, lane: tuple[float, float, float] | None = None) -> QPainterPath:
    """A vertical S-curve from ``start`` down to ``end`` (a loop when ``end`` is above).

    With ``lane`` = ``(x, top, bottom)`` (from :func:`engine.layout.route`) it bends into the
    vertical line at ``x`` just below ``start``, runs down it and bends into ``end``: around the
    cards a straight curve would run behind."""
    path = QPainterPath(start)
    if lane is not None:
        # Each bend stays inside the gap it is routed through (between the rows of cards).
        x, top, bottom = lane
        upper, lower = (start.y() + top) / 2, (bottom + end.y()) / 2
        path.cubicTo(QPointF(start.x(), upper), QPointF(x, upper), QPointF(x, top))
        path.lineTo(QPointF(x, bottom))
        path.cubicTo(QPointF(x, lower), QPointF(end.x(), lower), end)
        return path
    dy = end.y() - start.y()
    bend = max(24.0, abs(dy) * 0.5, abs(end.x() - start.x()) * 0.25)
    if dy < 0:  # going back up: swing wide so the curve does not run through the cards
        bend = max(bend, 80.0)
    path.cubicTo(QPointF(start.x(), start.y() + bend), QPointF(end.x(), end.y() - bend), end)
    return path


def polyline(points: list[QPointF], radius: float = CORNER_RADIUS) -> QPainterPath:
    """Straight pieces through ``points`` with their corners rounded off (at most ``radius``)."""
    path = QPainterPath(points[0])
    for before, corner, after in zip(points, points[1:], points[2:]):
        into, out = corner - before, after - corner
        into_length = max(1e-6, (into.x() ** 2 + into.y() ** 2) ** 0.5)
        out_length = max(1e-6, (out.x() ** 2 + out.y() ** 2) ** 0.5)
        r = min(radius, into_length / 2, out_length / 2)
        path.lineTo(corner - into * (r / into_length))
        path.quadTo(corner, corner + out * (r / out_length))
    path.lineTo(points[-1])
    return path


class EdgeItem(QGraphicsItem):
    """One connection ``source → target`` (input ``slot`` of call ``call``). Selectable, so the
    window can delete it; hovering shows the tensor's shape."""

    def __init__(self, source: TensorRef, target: str, call: int, slot: int, style: CardStyle) -> None:
        super().__init__()
        self.source = source
        self.target = target
        self.call = call
        self.slot = slot
        self.style = style
        self.hovered = False
        self.highlighted = False       # a layer is being dragged over it
        self._path = QPainterPath()
        self._arrow = QPolygonF()
        self._shape: QPainterPath | None = QPainterPath()
        self._bounds = QRectF()
        self.layer: EdgeLayer | None = None   # draws this edge when zoomed out
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self.setZValue(0.0)

    @property
    def key(self) -> tuple[TensorRef, str, int]:
        """What :func:`engine.editing.plan_delete` takes to remove this connection."""
        return (self.source, self.target, self.call)

    def set_ends(self, start: QPointF, port: QPointF, cards: Iterable[Rect] | CardIndex = (),
                 skip: Collection[Hashable] = (), rows: tuple[float, float] | None = None) -> None:
        """Run from ``start`` (an output port) to the input port centred at ``port``, around
        ``cards`` (scene rectangles of the other cards, or an index of all the cards less those
        keyed by ``skip`` and those outside ``rows``: see :func:`engine.layout.route`) when a
        straight curve would cross one."""
        self.prepareGeometryChange()
        tip = QPointF(port.x(), port.y() - PORT_RADIUS - 1.0)
        base = QPointF(tip.x(), tip.y() - ARROW_LENGTH)
        corners = route((start.x(), start.y()), (base.x(), base.y()), cards, skip=skip, rows=rows)
        if len(corners) > 4:  # an orthogonal detour (to the next column of a wrapped layout)
            self._path = polyline([QPointF(x, y) for x, y in corners])
        else:
            lane = (corners[1][0], corners[1][1], corners[2][1]) if len(corners) == 4 else None
            self._path = curve(start, base, lane)
        self._arrow = QPolygonF([tip, QPointF(base.x() - ARROW_HALF_WIDTH, base.y()),
                                 QPointF(base.x() + ARROW_HALF_WIDTH, base.y())])
        # The shape to hit (a 12-pixel band) is stroked when first asked for: opening a design
        # routes a thousand edges, and few of them are ever hovered. The bounds hold that band.
        self._shape = None
        # (Its square caps reach half the width times √2 past an end: 8.5 pixels; 10 with room.)
        grow = SHAPE_WIDTH / 2 + 4.0
        self._bounds = self._path.boundingRect().united(self._arrow.boundingRect()).adjusted(-grow, -grow, grow, grow)
        if self.layer is not None:
            self.layer.edges_changed()

    def path(self) -> QPainterPath:
        """The curve as drawn, in scene coordinates (without the arrow head)."""
        return self._path

    def is_strong(self) -> bool:
        """Drawn in the selection colour: selected, hovered or a drop's target."""
        return self.isSelected() or self.hovered or self.highlighted

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(SHAPE_WIDTH)
            self._shape = stroker.createStroke(self._path)
            self._shape.addPolygon(self._arrow)
        return self._shape

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        c = self.style.colors
        strong = self.isSelected() or self.hovered or self.highlighted
        colour = c["selection"] if strong else c["edge"]
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if lod < LOD_FULL:
            # Zoomed out: a thin line one or two pixels wide at any zoom, and no arrow head.
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, lod >= LOD_NAME)
            pen = QPen(colour, 2.0 if strong else 1.0)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(self._path)
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pen = QPen(colour, 2.6 if strong else 1.6)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        if self.highlighted and not self.isSelected():
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self._path)
        painter.setPen(QPen(colour, 1.0))
        painter.setBrush(colour)
        painter.drawPolygon(self._arrow)

    def repaint_edge(self) -> None:
        """Paint again (its own item, or the layer drawing it when zoomed out)."""
        self.update()
        if self.layer is not None and self.layer.batched:
            self.layer.update()

    def hoverEnterEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        self.hovered = True   # the scene's helpEvent shows the tensor's shape
        self.repaint_edge()
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        self.hovered = False
        self.repaint_edge()
        super().hoverLeaveEvent(event)


class EdgeLayer(BatchLayer):
    """Zoomed out, every connection of a scene drawn by this one item, as one path.

    The counterpart of :class:`~gui.canvas.node_item.CardLayer`: while the scene has the edges
    hand their painting over (``batched``), this layer strokes all their curves at once with
    the thin zoomed-out pen, then the selected, hovered or targeted ones in the selection
    colour; painted at full detail while still batched, it paints each edge in full itself."""

    def __init__(self, style: CardStyle, edges: Callable[[], Iterable[EdgeItem]]) -> None:
        super().__init__(style, -1.0)  # above the groups' frames, below the connections drawn on their own
        self._edges = edges
        self._path: QPainterPath | None = None
        self._shown: list[EdgeItem] = []

    def edges_changed(self) -> None:
        """An edge came, went, moved or was hidden: gather the path again before the next paint."""
        if self._path is not None:
            self.prepareGeometryChange()
            self._path = None

    def _forget(self) -> None:
        self._path = None

    def _gather(self) -> QPainterPath:
        if self._path is not None:
            return self._path
        path = QPainterPath()
        shown = []
        bounds = QRectF()
        for edge in self._edges():
            if edge.isVisible():
                shown.append(edge)
                path.addPath(edge.path())
                bounds = bounds.united(edge.boundingRect())
        self._path, self._shown, self._bounds = path, shown, bounds
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not self.batched:
            return
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        path = self._gather()
        if lod >= LOD_FULL:
            exposed = option.exposedRect
            for edge in self._shown:
                if edge.boundingRect().intersects(exposed):
                    edge.paint(painter, option, widget)
            return
        c = self.style.colors
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, lod >= LOD_NAME)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        pen = QPen(c["edge"], 1.0)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.drawPath(path)
        strong = [e for e in self._shown if e.is_strong()] if self._any_strong() else []
        if strong:
            pen = QPen(c["selection"], 2.0)
            pen.setCosmetic(True)
            painter.setPen(pen)
            for edge in strong:
                painter.drawPath(edge.path())

    def _any_strong(self) -> bool:
        scene = self.scene()
        if scene is not None and scene.selectedItems():
            return True
        return any(e.hovered or e.highlighted for e in self._shown)
