"""The canvas view: grid background, zoom and pan, rubber-band selection, and layer drops."""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import (
    QColor, QDragEnterEvent, QDragLeaveEvent, QDragMoveEvent, QDropEvent, QFocusEvent, QFont, QKeyEvent, QMouseEvent,
    QPainter, QPen, QTransform, QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsView, QWidget

from . import LAYER_MIME
from .scene import GraphScene

MIN_ZOOM = 0.1
MAX_ZOOM = 4.0
FIT_MAX_ZOOM = 1.5
FIT_MARGIN = 40.0
GRID = 20.0            # minor grid step, scene units; every fifth line is a major one
EMPTY_HINT = "Add an InputLayer: drag it from Layers or double-click it"
# The scene is unbounded for the user: panning may go anywhere.
WORLD = QRectF(-50_000, -50_000, 100_000, 100_000)


class GraphView(QGraphicsView):
    """Shows a :class:`GraphScene`. Wheel zooms around the cursor; the middle button, or Space
    held with the left button, pans; dragging on empty canvas selects with a rubber band."""

    def __init__(self, scene: GraphScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.graph_scene = scene
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing
                            | QPainter.RenderHint.SmoothPixmapTransform)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setSceneRect(WORLD)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._pan_from: QPoint | None = None
        self._space_held = False
        document = scene.document
        for signal in (document.nodeAdded, document.nodeRemoved, document.designReset):
            signal.connect(self._on_design_changed)

    # --- zoom -------------------------------------------------------------------------------

    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``zoom`` (clamped to 0.1–4×), keeping scene point ``anchor`` under the same
        viewport pixel (the centre when not given)."""
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        if anchor is None:
            anchor = self.mapToScene(self.viewport().rect().center())
        before = self.mapFromScene(anchor)
        self.setTransform(QTransform.fromScale(zoom, zoom))
        after = self.mapFromScene(anchor)
        delta = after - before
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + delta.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + delta.y())

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * 1.25)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / 1.25)

    def reset_zoom(self) -> None:
        self.set_zoom(1.0)

    def fit_to_view(self) -> None:
        """Show every card with a margin, never magnified beyond 1.5×."""
        items = self.graph_scene.node_items()
        if not items:
            self.resetTransform()
            self.centerOn(0, 0)
            return
        rect = QRectF()
        for item in items:
            rect = rect.united(item.sceneBoundingRect())
        rect = rect.adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN)
        port = self.viewport().rect()
        zoom = min(port.width() / rect.width(), port.height() / rect.height())
        self.setTransform(QTransform.fromScale(*(2 * [min(FIT_MAX_ZOOM, max(MIN_ZOOM, zoom))])))
        self.centerOn(rect.center())

    def wheelEvent(self, event: QWheelEvent) -> None:
        pixels = event.pixelDelta()
        if not pixels.isNull() and not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            # A touchpad scrolls the canvas; a wheel (or Ctrl + touchpad) zooms.
            self._scroll_by(-pixels.x(), -pixels.y())
            event.accept()
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            anchor = self.mapToScene(event.position().toPoint())
            self.set_zoom(self.zoom() * math.pow(1.2, steps), anchor)
        event.accept()

    # --- pan ----------------------------------------------------------------------------------

    def _scroll_by(self, dx: float, dy: float) -> None:
        self.horizontalScrollBar().setValue(round(self.horizontalScrollBar().value() + dx))
        self.verticalScrollBar().setValue(round(self.verticalScrollBar().value() + dy))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and self._space_held):
            self._pan_from = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            now = event.position().toPoint()
            delta = now - self._pan_from
            self._pan_from = now
            self._scroll_by(-delta.x(), -delta.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            if self._space_held:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if event.key() == Qt.Key.Key_Escape and self.graph_scene.connecting_from() is not None:
            self.graph_scene.cancel_connect()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            if self._pan_from is None:
                self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self._space_held = False
        super().focusOutEvent(event)

    # --- background -------------------------------------------------------------------------

    def drawBackground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        rect = QRectF(rect)  # Qt passes a QRectF; the signature also admits a QRect
        colors = self.graph_scene.card_style.colors
        painter.fillRect(rect, colors["canvas"])
        zoom = self.zoom()
        step = GRID
        while step * zoom < 12:  # keep the grid from turning into noise when zoomed out
            step *= 5
        major = step * 5
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        left = math.floor(rect.left() / major) * major
        top = math.floor(rect.top() / major) * major
        painter.setPen(QPen(colors["grid"], 0))  # cosmetic: one pixel at any zoom
        x = left
        while x < rect.right():
            painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
            x += major
        y = top
        while y < rect.bottom():
            painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
            y += major
        dot = QColor(colors["grid"])
        dot = dot.darker(118) if colors["canvas"].lightness() >= 128 else dot.lighter(140)
        pen = QPen(dot, 1.5 if zoom >= 0.75 else 1.0)
        pen.setCosmetic(True)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        first_x = math.floor(rect.left() / step) * step
        first_y = math.floor(rect.top() / step) * step
        points = []
        y = first_y
        while y < rect.bottom():
            x = first_x
            while x < rect.right():
                points.append(QPointF(x, y))
                x += step
            y += step
        painter.drawPoints(points)

    # --- empty design -------------------------------------------------------------------------

    def hint_text(self) -> str:
        """What the canvas says on top of an empty design ('' once it has a layer)."""
        return "" if self.graph_scene.document.design.nodes else EMPTY_HINT

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        super().drawForeground(painter, rect)
        hint = self.hint_text()
        if not hint:
            return
        painter.save()
        painter.resetTransform()  # viewport pixels: the hint keeps its size at any zoom
        area = QRectF(self.viewport().rect()).adjusted(40, 40, -40, -40)
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        painter.setFont(font)
        painter.setPen(self.graph_scene.card_style.colors["muted"])
        painter.drawText(area, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), hint)
        painter.restore()

    def _on_design_changed(self, *_args: object) -> None:
        # The hint follows the document; repaint when a design may have become (un)empty.
        if len(self.graph_scene.document.design.nodes) <= 1:
            self.viewport().update()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.graph_scene.apply_theme()
            self.resetCachedContent()
        super().changeEvent(event)

    # --- dropping layers ------------------------------------------------------------------------

    def _dropped_kind(self, event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> str | None:
        mime = event.mimeData()
        if mime is None or not mime.hasFormat(LAYER_MIME):
            return None
        return bytes(mime.data(LAYER_MIME).data()).decode("utf-8").strip() or None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_kind(event) is None:
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        kind = self._dropped_kind(event)
        if kind is None:
            event.ignore()
            return
        self.graph_scene.show_drop_hint(kind, self.mapToScene(event.position().toPoint()))
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self.graph_scene.clear_drop_hint()
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        kind = self._dropped_kind(event)
        if kind is None:
            event.ignore()
            return
        self.graph_scene.drop_layer(kind, self.mapToScene(event.position().toPoint()))
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        self.setFocus()
