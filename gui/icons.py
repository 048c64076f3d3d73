"""Icons drawn with QPainter: one glyph per palette group, crisp at any size and pixel ratio.

Every glyph is drawn in a 24 × 24 design box and scaled to the requested size, so the same code
serves a 16 px tree icon on a standard screen and a 64 px drag pixmap on a 3× display. Nothing is
loaded from disk; icons are cached per group.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QBrush, QColor, QIcon, QIconEngine, QPainter, QPainterPath, QPen, QPixmap, QPolygonF,
)

from engine.layers import CATALOGUE

from .theme import group_color

_BOX = 24.0  # glyphs are drawn in a 24 × 24 design box
_UNKNOWN = "#95a5a6"

Glyph = Callable[[QPainter, QColor], None]


def _pen(color: QColor, width: float = 1.7) -> QPen:
    pen = QPen(color, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _arrow_head(p: QPainter, tip: QPointF, angle: float, size: float = 3.6) -> None:
    """A filled arrow head pointing along ``angle`` (radians) with its tip at ``tip``."""
    back = angle + math.pi
    left = QPointF(tip.x() + size * math.cos(back - 0.5), tip.y() + size * math.sin(back - 0.5))
    right = QPointF(tip.x() + size * math.cos(back + 0.5), tip.y() + size * math.sin(back + 0.5))
    p.drawPolygon(QPolygonF([tip, left, right]))


# --- the glyphs, one per group ------------------------------------------------------------

def _input(p: QPainter, c: QColor) -> None:
    """An arrow entering a tensor (a stack of two slabs)."""
    p.setPen(_pen(c))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(QRectF(12.5, 5, 7, 14), 1.5, 1.5)
    p.drawLine(QPointF(4, 12), QPointF(10, 12))
    p.setBrush(c)
    _arrow_head(p, QPointF(11.2, 12), 0.0)


def _convolution(p: QPainter, c: QColor) -> None:
    """A 3 × 3 grid with the kernel window (top-left 2 × 2) filled."""
    p.setPen(Qt.PenStyle.NoPen)
    faded = QColor(c)
    faded.setAlphaF(0.35)
    cell, gap, x0 = 5.0, 1.5, 4.25
    for row in range(3):
        for col in range(3):
            p.setBrush(c if row < 2 and col < 2 else faded)
            p.drawRoundedRect(QRectF(x0 + col * (cell + gap), x0 + row * (cell + gap), cell, cell), 1, 1)


def _pooling(p: QPainter, c: QColor) -> None:
    """A funnel: many values in, one out."""
    p.setPen(_pen(c))
    p.setBrush(Qt.BrushStyle.NoBrush)
    path = QPainterPath(QPointF(4, 5))
    path.lineTo(20, 5)
    path.lineTo(14, 12.5)
    path.lineTo(14, 18.5)
    path.lineTo(10, 20.5)
    path.lineTo(10, 12.5)
    path.closeSubpath()
    p.drawPath(path)


def _reshaping(p: QPainter, c: QColor) -> None:
    """Two diagonal arrows pulling a box into a new shape."""
    p.setPen(_pen(c))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawLine(QPointF(6.5, 17.5), QPointF(17.5, 6.5))
    p.setBrush(c)
    _arrow_head(p, QPointF(19, 5), -math.pi / 4, 4.2)
    _arrow_head(p, QPointF(5, 19), 3 * math.pi / 4, 4.2)
    dashed = _pen(c, 1.3)
    dashed.setStyle(Qt.PenStyle.DotLine)
    p.setPen(dashed)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRect(QRectF(4, 4, 16, 16))


def _core(p: QPainter, c: QColor) -> None:
    """Three inputs fully connected to one unit."""
    p.setPen(_pen(c, 1.3))
    unit = QPointF(18, 12)
    inputs = [QPointF(6, 5.5), QPointF(6, 12), QPointF(6, 18.5)]
    for q in inputs:
        p.drawLine(q, unit)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(c)
    for q in inputs:
        p.drawEllipse(q, 2.4, 2.4)
    p.drawEllipse(unit, 3.4, 3.4)


def _normalization(p: QPainter, c: QColor) -> None:
    """A bell curve over a base line."""
    p.setPen(_pen(c, 1.3))
    p.drawLine(QPointF(3, 19.5), QPointF(21, 19.5))
    p.setPen(_pen(c))
    path = QPainterPath()
    for i in range(41):
        x = 3 + 18 * i / 40
        y = 19.5 - 14 * math.exp(-((x - 12) ** 2) / (2 * 3.1 ** 2))
        if i == 0:
            path.moveTo(x, y)
        else:
            path.lineTo(x, y)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawPath(path)


def _regularization(p: QPainter, c: QColor) -> None:
    """A grid of units with some dropped (hollow)."""
    dropped = {(0, 1), (1, 2), (2, 0), (2, 2)}
    for row in range(3):
        for col in range(3):
            centre = QPointF(6 + col * 6, 6 + row * 6)
            if (row, col) in dropped:
                p.setPen(_pen(c, 1.2))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawEllipse(centre, 1.9, 1.9)
            else:
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(c)
                p.drawEllipse(centre, 2.5, 2.5)


def _activation(p: QPainter, c: QColor) -> None:
    """A sigmoid-like curve on faint axes."""
    faint = QColor(c)
    faint.setAlphaF(0.45)
    p.setPen(_pen(faint, 1.1))
    p.drawLine(QPointF(3, 12), QPointF(21, 12))
    p.drawLine(QPointF(12, 3.5), QPointF(12, 20.5))
    p.setPen(_pen(c))
    p.setBrush(Qt.BrushStyle.NoBrush)
    path = QPainterPath()
    for i in range(41):
        x = 3 + 18 * i / 40
        y = 12 - 7.5 * math.tanh((x - 12) / 3.2)
        if i == 0:
            path.moveTo(x, y)
        else:
            path.lineTo(x, y)
    p.drawPath(path)


def _preprocessing(p: QPainter, c: QColor) -> None:
    """A picture: frame, sun and mountains."""
    p.setPen(_pen(c))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(QRectF(3.5, 5, 17, 14), 2, 2)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(c)
    p.drawEllipse(QPointF(8.5, 9.5), 1.9, 1.9)
    p.drawPolygon(QPolygonF([QPointF(5, 17.5), QPointF(10.5, 11.5), QPointF(13.5, 14.5),
                             QPointF(15.5, 12.5), QPointF(19, 17.5)]))


def _merge(p: QPainter, c: QColor) -> None:
    """Two paths joining into one."""
    p.setPen(_pen(c))
    p.setBrush(Qt.BrushStyle.NoBrush)
    path = QPainterPath(QPointF(4, 5))
    path.cubicTo(QPointF(10, 5), QPointF(9, 12), QPointF(14, 12))
    path.moveTo(4, 19)
    path.cubicTo(QPointF(10, 19), QPointF(9, 12), QPointF(14, 12))
    path.moveTo(14, 12)
    path.lineTo(18, 12)
    p.drawPath(path)
    p.setBrush(c)
    _arrow_head(p, QPointF(21, 12), 0.0)


def _unknown(p: QPainter, c: QColor) -> None:
    """A question mark for kinds Convas does not know."""
    p.setPen(_pen(c, 2.0))
    p.setBrush(Qt.BrushStyle.NoBrush)
    path = QPainterPath(QPointF(8.5, 9))
    path.cubicTo(QPointF(8.5, 4.5), QPointF(15.5, 4.5), QPointF(15.5, 9))
    path.cubicTo(QPointF(15.5, 12), QPointF(12, 12), QPointF(12, 15))
    p.drawPath(path)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(c)
    p.drawEllipse(QPointF(12, 19), 1.4, 1.4)


def _search(p: QPainter, c: QColor) -> None:
    """A magnifying glass (for filter boxes)."""
    p.setPen(_pen(c, 2.0))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawEllipse(QPointF(10.5, 10.5), 5.5, 5.5)
    p.drawLine(QPointF(14.5, 14.5), QPointF(19.5, 19.5))


def _link(p: QPainter, c: QColor) -> None:
    """Two chain links: axes locked together."""
    p.setPen(_pen(c, 2.0))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(QRectF(3, 8.5, 10, 7), 3.5, 3.5)
    p.drawRoundedRect(QRectF(11, 8.5, 10, 7), 3.5, 3.5)


def _unlink(p: QPainter, c: QColor) -> None:
    """Two separate chain links: each axis set on its own."""
    p.setPen(_pen(c, 2.0))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(QRectF(1.5, 8.5, 9, 7), 3.5, 3.5)
    p.drawRoundedRect(QRectF(13.5, 8.5, 9, 7), 3.5, 3.5)


_GLYPHS: dict[str, Glyph] = {
    "Input": _input,
    "Convolution": _convolution,
    "Pooling": _pooling,
    "Reshaping": _reshaping,
    "Core": _core,
    "Normalization": _normalization,
    "Regularization": _regularization,
    "Activation": _activation,
    "Preprocessing & Augmentation": _preprocessing,
    "Merge": _merge,
}


class GlyphIconEngine(QIconEngine):
    """Paints one glyph at whatever size and device pixel ratio Qt asks for.

    ``badge`` draws a soft tinted rounded square behind the glyph (palette and card style).
    """

    def __init__(self, glyph: Glyph, color: QColor, badge: bool = True) -> None:
        super().__init__()
        self._glyph = glyph
        self._color = QColor(color)
        self._badge = badge

    def clone(self) -> QIconEngine:
        return GlyphIconEngine(self._glyph, self._color, self._badge)

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        color = QColor(self._color)
        if mode == QIcon.Mode.Disabled:
            grey = color.lightness()
            color = QColor(grey, grey, grey, 150)
        elif mode == QIcon.Mode.Selected and self._badge:
            color = QColor("white")  # on the selection highlight
        side = min(rect.width(), rect.height())
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.translate(rect.x() + (rect.width() - side) / 2, rect.y() + (rect.height() - side) / 2)
        painter.scale(side / _BOX, side / _BOX)
        if self._badge:
            tint = QColor(color)
            tint.setAlphaF(0.16)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QBrush(tint))
            painter.drawRoundedRect(QRectF(0.5, 0.5, _BOX - 1, _BOX - 1), 5.5, 5.5)
            # The glyph sits inside the badge with a margin.
            painter.translate(_BOX / 2, _BOX / 2)
            painter.scale(0.8, 0.8)
            painter.translate(-_BOX / 2, -_BOX / 2)
        self._glyph(painter, color)
        painter.restore()

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return self.scaledPixmap(size, mode, state, 1.0)

    def scaledPixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float) -> QPixmap:
        pixmap = QPixmap(max(1, round(size.width() * scale)), max(1, round(size.height() * scale)))
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        self.paint(painter, QRect(0, 0, pixmap.width(), pixmap.height()), mode, state)
        painter.end()
        pixmap.setDevicePixelRatio(scale)
        return pixmap

    def actualSize(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QSize:
        return size

    def isNull(self) -> bool:
        return False


@cache
def group_icon(group: str) -> QIcon:
    """The icon of a palette group, in the group's colour."""
    glyph = _GLYPHS.get(group, _unknown)
    color = group_color(group) if group in _GLYPHS else QColor(_UNKNOWN)
    return QIcon(GlyphIconEngine(glyph, color))


@cache
def layer_icon(kind: str) -> QIcon:
    """The icon of a layer kind: its group's glyph, or a grey question mark for unknown kinds."""
    spec = CATALOGUE.get(kind)
    return group_icon(spec.group) if spec is not None else group_icon("")


@cache
def search_icon(color: str = "#8a8f98") -> QIcon:
    """A plain magnifying glass for filter boxes."""
    return QIcon(GlyphIconEngine(_search, QColor(color), badge=False))


@cache
def link_icon(linked: bool, color: str = "#8a8f98") -> QIcon:
    """Chain links, joined (``linked``) or apart: the "same value for every axis" toggle."""
    return QIcon(GlyphIconEngine(_link if linked else _unlink, QColor(color), badge=False))
