"""A connection on the canvas: a smooth curve from a layer's output port to an input port.

An edge is named by what it mirrors, ``(source TensorRef, target, call, slot)``; its ends are
recomputed from the two cards whenever either moves.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPainterPathStroker, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsSceneHoverEvent, QStyleOptionGraphicsItem, QWidget

from engine.design import TensorRef

from .node_item import PORT_RADIUS, CardStyle

ARROW_LENGTH = 8.0
ARROW_HALF_WIDTH = 4.5
SKIP_MIN_DY = 200.0   # an edge longer than this passes other ranks of the layout…
SKIP_SIDE = 125.0     # …and detours this far beside them when it would cross their cards


def curve(start: QPointF, end: QPointF) -> QPainterPath:
    """A vertical S-curve from ``start`` down to ``end`` (a loop when ``end`` is above)."""
    dy = end.y() - start.y()
    bend = max(24.0, abs(dy) * 0.5, abs(end.x() - start.x()) * 0.25)
    if dy < 0:  # going back up: swing wide so the curve does not run through the cards
        bend = max(bend, 80.0)
    path = QPainterPath(start)
    if dy > SKIP_MIN_DY and abs(end.x() - start.x()) < SKIP_SIDE:
        # A skip connection over layers stacked in between: swing out to the right of the column
        # instead of running through their cards.
        side = max(start.x(), end.x()) + SKIP_SIDE
        top, bottom = QPointF(side, start.y() + 70.0), QPointF(side, end.y() - 70.0)
        path.cubicTo(QPointF(start.x(), start.y() + 40.0), QPointF(side, start.y() + 30.0), top)
        path.lineTo(bottom)
        path.cubicTo(QPointF(side, end.y() - 30.0), QPointF(end.x(), end.y() - 40.0), end)
        return path
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

    def set_ends(self, start: QPointF, port: QPointF) -> None:
        """Run from ``start`` (an output port) to the input port centred at ``port``."""
        self.prepareGeometryChange()
        tip = QPointF(port.x(), port.y() - PORT_RADIUS - 1.0)
        base = QPointF(tip.x(), tip.y() - ARROW_LENGTH)
        self._path = curve(start, base)
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

    def set_highlighted(self, on: bool) -> None:
        if on != self.highlighted:
            self.highlighted = on
            self.update()

    def hoverEnterEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        self.hovered = True   # the scene's helpEvent shows the tensor's shape
        self.update()
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        self.hovered = False
        self.update()
        super().hoverLeaveEvent(event)
