"""The overview: the whole graph in a small corner of the canvas, with the part the view shows.

The graph is drawn once into a cached pixmap when it changes (the view's debounced
``sigContentChanged``): each layer card as a block in its family's colour, a collapsed group's
card as a grey block, an expanded group's frame as a light outline. Scrolling or zooming the
canvas only repaints the pixmap and the viewport rectangle over it, so the overview costs the
same at 1,000 layers as at ten. A click or a drag in it centres the canvas on that point. While
the canvas shows the whole graph (after Fit, say) the overview stays hidden: it would only cover
part of the graph and show nothing new.

The overview is painted by the view over its items (:meth:`GraphView.drawForeground`), not as a
widget of its own: a widget over the viewport would stop Qt from scrolling the canvas by moving
its pixels (it repaints the whole viewport instead), which doubles the cost of every pan frame
of a large design. The view hands the overview the mouse presses that land on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QPoint, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QPixmap

from ..theme import card_colors
from .node_item import NodeItem

if TYPE_CHECKING:  # pragma: no cover
    from .view import GraphView

MAX_SIZE = QSize(220, 170)   # the overview never covers more of the canvas than this
MIN_SIDE = 56                # nor gets thinner than this (a long chain would be a hairline)
PAD = 6.0                    # between the overview's border and the graph in it
CORNER = 12                  # from the canvas's corner
MIN_BLOCK = 2.0              # a card is at least this many pixels wide and high
MIN_VIEWPORT = 8.0           # the viewport's rectangle too, so that it can be seen zoomed in
TOOLTIP = "Overview: click or drag to move the view"


class Minimap(QObject):
    """The overview of ``view``'s graph, in the bottom-right corner of the view's viewport.
    Its coordinates (:meth:`rect`, :meth:`to_overview`) are viewport pixels."""

    def __init__(self, view: GraphView) -> None:
        super().__init__(view)
        self.view = view
        self.wanted = True                 # the user's choice (View → Show Overview)
        self._pixmap = QPixmap()
        self._content = QRectF()           # the scene rectangle the pixmap shows; empty: hidden
        self._graph = QRectF()             # the graph's own rectangle (the content, unpadded)
        self._scale = 1.0                  # overview pixels per scene unit
        self._size = QSize(0, 0)
        self._dragging = False
        view.sigContentChanged.connect(self.refresh)
        view.sigViewChanged.connect(self.update)
        view.graph_scene.selectionChanged.connect(self.update)

    # --- showing ----------------------------------------------------------------------------

    def is_shown(self) -> bool:
        """True when the overview is on the canvas: wanted, the design is not empty, and the
        canvas does not already show all of it (then a map of it would only hide part of it)."""
        if self._content.isEmpty():
            return False
        view = self.view
        return not view.mapToScene(view.viewport().rect()).boundingRect().contains(self._graph)

    def set_wanted(self, wanted: bool) -> None:
        """Show or hide the overview at the user's request (it stays hidden on an empty canvas)."""
        self.wanted = wanted
        self.refresh()

    def rect(self) -> QRect:
        """Where the overview is, in viewport pixels (an empty rectangle when hidden)."""
        return self._placement() if self.is_shown() else QRect()

    def _placement(self) -> QRect:
        """Where the overview goes when it is shown (empty for an empty design)."""
        if self._content.isEmpty():
            return QRect()
        port = self.view.viewport().rect()
        return QRect(QPoint(port.right() + 1 - CORNER - self._size.width(),
                            port.bottom() + 1 - CORNER - self._size.height()), self._size)

    def update(self) -> None:
        """Repaint the overview's part of the canvas (the graph's picture is kept); also when
        it has just been hidden because the whole graph came into view."""
        self.view.viewport().update(self._placement())

    def refresh(self) -> None:
        """Redraw the cached picture of the graph (the graph changed, or the theme did)."""
        old = self._placement()
        content = self._graph = self.view.content_rect()
        if not self.wanted or content.isEmpty():
            self._content = QRectF()
            self._pixmap = QPixmap()
        else:
            content = content.adjusted(-20, -20, 20, 20)
            inner_w, inner_h = MAX_SIZE.width() - 2 * PAD, MAX_SIZE.height() - 2 * PAD
            scale = min(inner_w / content.width(), inner_h / content.height())
            self._size = QSize(max(MIN_SIDE, round(content.width() * scale + 2 * PAD)),
                               max(MIN_SIDE, round(content.height() * scale + 2 * PAD)))
            self._content, self._scale = content, scale
            self._pixmap = self._draw_graph(self._size)
        self.view.viewport().update(old.united(self._placement()))

    def _draw_graph(self, size: QSize) -> QPixmap:
        ratio = self.view.devicePixelRatioF()
        pixmap = QPixmap(round(size.width() * ratio), round(size.height() * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        colors = card_colors()
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        box = QRectF(0.5, 0.5, size.width() - 1, size.height() - 1)
        painter.setPen(QPen(colors["border"], 1.0))
        painter.setBrush(_background(colors))
        painter.drawRoundedRect(box, 6, 6)
        # Scene coordinates from here on; rectangles of one colour go to Qt in one call, so that
        # 1,000 cards cost a few milliseconds.
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.translate(self._offset(QPointF(0, 0)))
        painter.scale(self._scale, self._scale)
        painter.translate(-self._content.topLeft())
        scene = self.view.graph_scene
        frame_fill = QColor(colors["muted"])
        frame_fill.setAlpha(40)
        painter.setPen(_cosmetic(colors["muted"], 1.0))
        painter.setBrush(frame_fill)
        painter.drawRects([frame.sceneBoundingRect() for frame in scene.group_frames()])
        # A layer in its family's colour, a collapsed group's card in the muted text colour.
        by_colour: dict[int, tuple[QColor, list[QRectF]]] = {}
        for card in scene.card_items():
            colour = card.group_color if isinstance(card, NodeItem) else colors["muted"]
            by_colour.setdefault(colour.rgba(), (colour, []))[1].append(card.sceneBoundingRect())
        for colour, rects in by_colour.values():
            painter.setPen(_cosmetic(colour, MIN_BLOCK))  # the pen keeps a tiny card visible
            painter.setBrush(colour)
            painter.drawRects(rects)
        painter.end()
        return pixmap

    # --- coordinates --------------------------------------------------------------------------

    def to_overview(self, scene_point: QPointF) -> QPointF:
        """Where scene point ``scene_point`` is drawn in the overview (viewport pixels)."""
        offset = self._offset(QPointF(self.rect().topLeft()))
        return QPointF(offset.x() + (scene_point.x() - self._content.left()) * self._scale,
                       offset.y() + (scene_point.y() - self._content.top()) * self._scale)

    def to_scene(self, point: QPointF) -> QPointF:
        """The scene point drawn at viewport pixel ``point`` of the overview."""
        offset = self._offset(QPointF(self.rect().topLeft()))
        return QPointF(self._content.left() + (point.x() - offset.x()) / self._scale,
                       self._content.top() + (point.y() - offset.y()) / self._scale)

    def _offset(self, corner: QPointF) -> QPointF:
        # The graph is centred in the overview (it may be wider or taller than the graph needs).
        return QPointF(corner.x() + (self._size.width() - self._content.width() * self._scale) / 2,
                       corner.y() + (self._size.height() - self._content.height() * self._scale) / 2)

    def viewport_rect(self) -> QRectF:
        """The part of the scene the canvas shows, in viewport pixels of the overview."""
        view = self.view
        shown = view.mapToScene(view.viewport().rect()).boundingRect()
        return QRectF(self.to_overview(shown.topLeft()), self.to_overview(shown.bottomRight()))

    def _block(self, scene_rect: QRectF) -> QRectF:
        """``scene_rect`` in the overview, at least MIN_BLOCK on each side."""
        return _at_least(QRectF(self.to_overview(scene_rect.topLeft()), self.to_overview(scene_rect.bottomRight())),
                         MIN_BLOCK)

    # --- painting and mouse ----------------------------------------------------------------------

    def paint(self, painter: QPainter) -> None:
        """Draw the overview with ``painter`` (in viewport pixels, as the view's foreground)."""
        if not self.is_shown():
            return
        box = self.rect()
        painter.save()
        painter.drawPixmap(box.topLeft(), self._pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setClipRect(QRectF(box).adjusted(1, 1, -1, -1), Qt.ClipOperation.IntersectClip)
        colors = card_colors()
        selected = [i for i in self.view.graph_scene.selectedItems() if isinstance(i, NodeItem)]
        if selected:
            painter.setPen(QPen(colors["selection"], 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            for item in selected:
                painter.drawRect(self._block(item.sceneBoundingRect()).adjusted(-1.5, -1.5, 1.5, 1.5))
        # The part of the graph the canvas shows: the rest dimmed, and a frame with a halo in
        # the text colour, so that it stands out on coloured blocks in either theme.
        shown = _at_least(self.viewport_rect(), MIN_VIEWPORT)
        outside = QPainterPath()
        outside.addRect(QRectF(box))
        inside = QPainterPath()
        inside.addRect(shown)
        dim = QColor(colors["canvas"])
        dim.setAlpha(110)
        painter.fillPath(outside.subtracted(inside), dim)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(colors["text"], 3.0))
        painter.drawRect(shown)
        painter.setPen(QPen(colors["selection"], 1.5))
        painter.drawRect(shown)
        painter.restore()

    def contains(self, point: QPoint) -> bool:
        """Whether viewport pixel ``point`` is on the overview."""
        return self.rect().contains(point)

    def press(self, point: QPoint) -> bool:
        """A left press at viewport pixel ``point``: centre the canvas there if it is on the
        overview and follow the drag (True), else leave it to the canvas (False)."""
        if not self.contains(point):
            return False
        self._dragging = True
        self.view.centerOn(self.to_scene(QPointF(point)))
        return True

    def drag(self, point: QPoint) -> bool:
        """The mouse moved to ``point``; True when it is dragging the overview's view."""
        if self._dragging:
            self.view.centerOn(self.to_scene(QPointF(point)))
        return self._dragging

    def release(self) -> bool:
        """The left button was released; True when it ended a drag of the overview."""
        dragging, self._dragging = self._dragging, False
        return dragging


def _background(colors: dict[str, QColor]) -> QColor:
    """The overview's fill: the canvas colour, a step towards the text colour so that it stands
    out from the canvas behind it (opaque: cards under it would show through)."""
    base = QColor(colors["canvas"])
    return base.darker(106) if base.lightness() >= 128 else base.lighter(135)


def _cosmetic(colour: QColor, width: float) -> QPen:
    """A pen ``width`` device pixels wide whatever the painter's scale."""
    pen = QPen(colour, width)
    pen.setCosmetic(True)
    pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
    return pen


def _at_least(rect: QRectF, side: float) -> QRectF:
    """``rect`` grown about its centre to at least ``side`` pixels each way."""
    grown = QRectF(rect)
    grown.setWidth(max(side, rect.width()))
    grown.setHeight(max(side, rect.height()))
    grown.moveCenter(rect.center())
    return grown
