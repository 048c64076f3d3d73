"""A connection on the canvas: a smooth curve from a layer's output port to an input port.

An edge is named by what it mirrors, ``(source TensorRef, target, call, slot)``; its ends are
recomputed from the two cards whenever either moves, and it is routed around the other cards
(:func:`engine.layout.route`) rather than drawn behind them.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPainterPathStroker, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsSceneHoverEvent, QStyleOptionGraphicsItem, QWidget

from engine.design import TensorRef
from engine.layout import Rect, route

from .node_item import PORT_RADIUS, CardStyle

ARROW_LENGTH = 8.0
ARROW_HALF_WIDTH = 4.5


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
        self._shape = QPainterPath()
        self._bounds = QRectF()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self.setZValue(0.0)

    @property
    def key(self) -> tuple[TensorRef, str, int]:
        """What :func:`engine.editing.plan_delete` takes to remove this connection."""
        return (self.source, self.target, self.call)

    def set_ends(self, start: QPointF, port: QPointF, cards: Iterable[Rect] = ()) -> None:
        """Run from ``start`` (an output port) to the input port centred at ``port``, around
        ``cards`` (scene rectangles of the other cards) when a straight curve would cross one."""
        self.prepareGeometryChange()
        tip = QPointF(port.x(), port.y() - PORT_RADIUS - 1.0)
        base = QPointF(tip.x(), tip.y() - ARROW_LENGTH)
        corners = route((start.x(), start.y()), (base.x(), base.y()), cards)
        lane = (corners[1][0], corners[1][1], corners[2][1]) if len(corners) == 4 else None
        self._path = curve(start, base, lane)
        self._arrow = QPolygonF([tip, QPointF(base.x() - ARROW_HALF_WIDTH, base.y()),
                                 QPointF(base.x() + ARROW_HALF_WIDTH, base.y())])
        stroker = QPainterPathStroker()
        stroker.setWidth(12.0)
        self._shape = stroker.createStroke(self._path)
        self._shape.addPolygon(self._arrow)
        self._bounds = self._shape.boundingRect().adjusted(-2, -2, 2, 2)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        return self._shape

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        c = self.style.colors
        strong = self.isSelected() or self.hovered or self.highlighted
        colour = c["selection"] if strong else c["edge"]
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

    def hoverEnterEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        self.hovered = True   # the scene's helpEvent shows the tensor's shape
        self.update()
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        self.hovered = False
        self.update()
        super().hoverLeaveEvent(event)
