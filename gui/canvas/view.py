"""The canvas view: grid background, zoom and pan, rubber-band selection, layer drops, and the
navigation overlays (overview minimap, find bar) that keep a 1,000-layer design usable.

Every way the window points at a layer (Find, a Summary row, a problem) goes through
:meth:`GraphView.show_layer`: reveal it (expanding collapsed groups), select it, and centre it at
a readable zoom (:meth:`GraphView.focus_on`)."""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QFocusEvent,
    QFont,
    QHelpEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPolygonF,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView, QToolTip, QWidget

from . import LAYER_MIME
from .find_bar import FindBar
from .minimap import TOOLTIP as MINIMAP_TOOLTIP, Minimap
from .node_item import NodeItem
from .scene import GraphScene

# Zooming out stops at MIN_ZOOM, or a notch beyond the zoom at which the whole graph fits when
# that is further out (a 1,000-layer chain in one column is 140,000 scene pixels tall, 0.004):
# no floor ever hides part of the graph, and a small design does not shrink to a dot.
MIN_ZOOM = 0.1
FLOOR_ZOOM = 1e-4      # … but never beyond this (a graph millions of pixels long)
MAX_ZOOM = 4.0
FIT_MAX_ZOOM = 1.5
FIT_MARGIN = 40.0
READABLE_ZOOM = 1.0    # focusing on a layer zooms to this when the view is below …
READABLE_BELOW = 0.7   # … this zoom (a card's text is unreadable further out)
FOCUS_MARGIN = 60.0    # viewport pixels kept around a focused item that is larger than the view
GRID = 20.0            # minor grid step, scene units; every fifth line is a major one
EMPTY_HINT = "Add an InputLayer: drag it from Layers or double-click it"
# The scene is unbounded for the user: panning may go anywhere around the graph (the scrollable
# rectangle grows with the graph, see GraphView.content_rect).
WORLD = QRectF(-50_000, -50_000, 100_000, 100_000)
WORLD_MARGIN = 50_000.0
CONTENT_DEBOUNCE_MS = 120  # the overview re-draws this long after the last change of the graph


class GraphView(QGraphicsView):
    """Shows a :class:`GraphScene`. Wheel zooms around the cursor; the middle button, or Space
    held with the left button, pans; dragging on empty canvas selects with a rubber band.

    Two overlays float over the canvas: :attr:`minimap` (the whole graph and where the view is,
    painted in the foreground; it takes the presses that land on it) and :attr:`find_bar`
    (Ctrl+F, a widget shown only while finding). ``sigViewChanged`` is emitted whenever the visible part of
    the scene moves (scroll, zoom, resize); ``sigContentChanged`` shortly after the graph changed
    (debounced: one signal for a burst of edits)."""

    sigViewChanged = Signal()
    sigContentChanged = Signal()

    def __init__(self, scene: GraphScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.graph_scene = scene
        # Made first: setting up the view below already scrolls it, and scrolling repaints these.
        self.minimap = Minimap(self)
        self.find_bar = FindBar(self)
        self._minimap_cursor = False   # the pointing hand over the overview is ours to unset
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
        self._content = QRectF()         # content_rect() as last measured (see min_zoom)
        document = scene.document
        for signal in (document.nodeAdded, document.nodeRemoved, document.designReset):
            signal.connect(self._on_design_changed)
        # The graph's extent and the overview follow the document (never QGraphicsScene.changed:
        # listening to it makes Qt route every item repaint through that signal).
        self._content_timer = QTimer(self)
        self._content_timer.setSingleShot(True)
        self._content_timer.setInterval(CONTENT_DEBOUNCE_MS)
        self._content_timer.timeout.connect(self._on_content_settled)
        for signal in (document.nodeAdded, document.nodeRemoved, document.nodeMoved, document.arranged,
                       document.groupsChanged, document.designReset):
            signal.connect(self._content_timer.start)
        self.find_bar.place(self.rect())

    # --- what the graph covers --------------------------------------------------------------

    def content_rect(self) -> QRectF:
        """The scene rectangle of everything shown for the design (the cards of layers and of
        collapsed groups, the frames of expanded groups); an empty rectangle for an empty design."""
        scene = self.graph_scene
        rect = QRectF()
        for item in (*scene.card_items(), *scene.group_frames()):
            rect = rect.united(item.sceneBoundingRect())
        return rect

    def _grow_world(self, rect: QRectF) -> None:
        """Make the scrollable area hold ``rect`` with room to pan around it."""
        wanted = WORLD.united(rect.adjusted(-WORLD_MARGIN, -WORLD_MARGIN, WORLD_MARGIN, WORLD_MARGIN))
        if not self.sceneRect().contains(wanted):
            self.setSceneRect(self.sceneRect().united(wanted))

    def _on_content_settled(self) -> None:
        self._content = self.content_rect()
        if not self._content.isEmpty():
            self._grow_world(self._content)
        self.sigContentChanged.emit()

    def min_zoom(self) -> float:
        """How far out the user may zoom: MIN_ZOOM, or a notch beyond the zoom at which the
        whole graph fits the view when that is further out."""
        if self._content.isEmpty():
            return MIN_ZOOM
        fit = self._fitting_zoom(self._content.adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN), 0)
        return max(FLOOR_ZOOM, min(MIN_ZOOM, fit / 1.25))

    # --- zoom -------------------------------------------------------------------------------

    def zoom(self) -> float:
        return self.transform().m11()

    def _scale_to(self, zoom: float) -> None:
        self.setTransform(QTransform.fromScale(zoom, zoom))

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``zoom`` (clamped to :meth:`min_zoom`–MAX_ZOOM), keeping scene point ``anchor``
        under the same viewport pixel (the centre when not given)."""
        zoom = min(MAX_ZOOM, max(self.min_zoom(), zoom))
        if anchor is None:
            anchor = self.mapToScene(self.viewport().rect().center())
        before = self.mapFromScene(anchor)
        self._scale_to(zoom)
        after = self.mapFromScene(anchor)
        delta = after - before
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + delta.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + delta.y())
        self.sigViewChanged.emit()

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * 1.25)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / 1.25)

    def reset_zoom(self) -> None:
        self.set_zoom(1.0)

    def _fitting_zoom(self, rect: QRectF, margin: float) -> float:
        """The zoom at which ``rect`` fills the viewport less ``margin`` viewport pixels a side."""
        port = self.viewport().rect()
        width = max(1.0, port.width() - 2 * margin)
        height = max(1.0, port.height() - 2 * margin)
        return min(width / max(rect.width(), 1.0), height / max(rect.height(), 1.0))

    def fit_to_view(self) -> None:
        """Show the whole graph (every card of a layer or collapsed group, every group's frame)
        with a margin, never magnified beyond 1.5×."""
        rect = self._content = self.content_rect()
        if rect.isEmpty():
            self.resetTransform()
            self.centerOn(0, 0)
            self.sigViewChanged.emit()
            return
        rect = rect.adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN)
        self._grow_world(rect)
        self._scale_to(min(FIT_MAX_ZOOM, max(FLOOR_ZOOM, self._fitting_zoom(rect, 0.0))))
        self.centerOn(rect.center())
        self.sigViewChanged.emit()

    def focus_on(self, target: QGraphicsItem | QRectF) -> None:
        """Centre ``target`` (an item or a scene rectangle) and make it readable: a view zoomed
        out below READABLE_BELOW goes to READABLE_ZOOM (less if the target would not fit);
        a closer view keeps its zoom unless the target does not fit."""
        rect = target.sceneBoundingRect() if isinstance(target, QGraphicsItem) else QRectF(target)
        zoom = self.zoom()
        if zoom < READABLE_BELOW:
            zoom = READABLE_ZOOM
        zoom = min(zoom, self._fitting_zoom(rect, FOCUS_MARGIN))
        self._grow_world(rect)
        self._scale_to(min(MAX_ZOOM, max(self.min_zoom(), zoom)))
        self.centerOn(rect.center())
        self.sigViewChanged.emit()

    def show_layer(self, name: str) -> NodeItem | None:
        """Point the user at layer ``name``: expand the collapsed groups around it (one undo
        step), select it and centre it at a readable zoom. Returns its card (None if the layer
        has none, say it is gone)."""
        reveal = getattr(self.graph_scene, "reveal", None)
        item = reveal(name) if reveal is not None else self.graph_scene.node_item(name)
        if item is None or not item.isVisible():
            return None
        self.graph_scene.select_nodes([name])
        self.focus_on(item)
        return item

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

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)  # moves the viewport's pixels, the overview's too
        if self.minimap.is_shown():
            where = self.minimap.rect()
            self.viewport().update(where)
            self.viewport().update(where.translated(dx, dy))
        self.sigViewChanged.emit()

    # --- overlays -----------------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.find_bar.place(self.rect())
        self.sigViewChanged.emit()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        on_minimap = self.minimap.contains(event.position().toPoint())
        if on_minimap and event.button() == Qt.MouseButton.LeftButton and not self._space_held:
            self.minimap.press(event.position().toPoint())
            event.accept()
            return
        if on_minimap and event.button() == Qt.MouseButton.RightButton:
            event.accept()  # no context menu of a card hidden under the overview
            return
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and self._space_held):
            self._pan_from = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self.minimap.drag(event.position().toPoint()):
            event.accept()
            return
        self._point_at_minimap(self.minimap.contains(event.position().toPoint()) and self._pan_from is None)
        if self._pan_from is not None:
            now = event.position().toPoint()
            delta = now - self._pan_from
            self._pan_from = now
            self._scroll_by(-delta.x(), -delta.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.minimap.release():
            event.accept()
            return
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            if self._space_held:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self.minimap.contains(event.position().toPoint()):
            event.accept()  # a second click on the overview, not a card under it
            return
        super().mouseDoubleClickEvent(event)

    def _point_at_minimap(self, over: bool) -> None:
        """The pointing hand while the mouse is over the overview (not while the canvas pans)."""
        if over and not self._minimap_cursor and not self._space_held:
            self._minimap_cursor = True
            self.viewport().setCursor(Qt.CursorShape.PointingHandCursor)
        elif not over and self._minimap_cursor:
            self._minimap_cursor = False
            self.viewport().unsetCursor()

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent) \
                and self.minimap.contains(event.pos()):
            QToolTip.showText(event.globalPos(), MINIMAP_TOOLTIP, self.viewport(), self.minimap.rect())
            return True
        if event.type() == QEvent.Type.Leave:
            self._point_at_minimap(False)
        return super().viewportEvent(event)

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
        # One row of dots, drawn once per row (a zoom step repaints the whole background: a
        # point object per dot would cost milliseconds).
        row = QPolygonF([QPointF(first_x + i * step, 0.0)
                         for i in range(math.ceil((rect.right() - first_x) / step))])
        y = first_y
        while y < rect.bottom():
            painter.drawPoints(row.translated(0.0, y))
            y += step

    # --- empty design -------------------------------------------------------------------------

    def hint_text(self) -> str:
        """What the canvas says on top of an empty design ('' once it has a layer)."""
        return "" if self.graph_scene.document.design.nodes else EMPTY_HINT

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        super().drawForeground(painter, rect)
        painter.save()
        painter.resetTransform()  # viewport pixels
        self.minimap.paint(painter)
        painter.restore()
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
            self.minimap.refresh()
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
