"""A layer card on the canvas: what the analysis says about one node, drawn as a compact card.

The item keeps only what it needs to paint: the node's name and kind, the text last shown and
its input-port layout. Both are recomputed from the document (:func:`card_text`,
:meth:`NodeItem.sync_ports`); nothing here is ever copied back into the design. Zoomed out, one
:class:`CardLayer` draws the blocks of all the cards of a scene.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen,
)
from PySide6.QtWidgets import (
    QGraphicsItem, QGraphicsSceneHoverEvent, QGraphicsSceneMouseEvent, QStyleOptionGraphicsItem, QWidget,
)

from engine.analysis import NodeReport, Severity, unsupported_marker
from engine.design import Node
from engine.layers import CATALOGUE
from engine.shapes import fmt_shape

from ..search_field import search_color
from ..theme import ERROR_COLOR, WARNING_COLOR, card_colors, group_color

if TYPE_CHECKING:  # pragma: no cover
    from .scene import GraphScene

WIDTH = 190.0
HEIGHT = 96.0          # with one line of output shape; each further line adds LINE
HEADER = 26.0
LINE = 18.0
PAD = 10.0
RADIUS = 7.0
PORT_RADIUS = 4.5
PORT_HIT = 9.0         # how close to a port a press must be to start a connection
PORT_MARGIN = 22.0     # input ports keep clear of the rounded corners


class CardText(NamedTuple):
    """Everything a card shows, as plain values: two equal values paint the same card."""

    name: str
    kind: str
    args: str
    shapes: tuple[str, ...]
    params: str
    state: str           # "ok", "warning", "error", "blocked" or "pending" (not analysed yet)
    frozen: bool = False  # the layer's weights do not train (Node.trainable False)
    searched: bool = False  # a sweep varies some arguments: ``args`` shows their ranges


def search_text(node: Node) -> str:
    """The ranges a sweep tries for a layer's arguments, for its card: ``filters 16–64 step 16 ·
    kernel_size 1–5`` ('' when it has none)."""
    return " · ".join(f"{arg} {rng.describe()}" for arg, rng in node.search.items())


def card_text(node: Node, report: NodeReport | None) -> CardText:
    """The card contents of ``node`` given its analysis report (None while not analysed yet)."""
    spec = CATALOGUE.get(node.kind)
    args = ""
    if spec is None:  # an unsupported layer: where its class comes from
        args = str(unsupported_marker(node).get("module") or "")
    else:
        try:
            args = spec.describe(report.args if report is not None else spec.normalise(node.args)[0])
        except Exception:  # noqa: BLE001 - an invalid argument may break a card formatter; the error is reported elsewhere
            args = ""
    frozen = not node.trainable
    searched = bool(node.search)
    if searched:  # the values shown are the ranges a sweep tries, not the current values
        args = search_text(node)
    if report is None:
        return CardText(node.name, node.kind, args, ("…",), "", "pending", frozen, searched)
    errors = report.errors
    warnings = [p for p in report.problems if p.severity == Severity.WARNING]
    if errors:
        state = "error"
        shapes: tuple[str, ...] = (f"Error: {errors[0].message}",)
    elif report.blocked:
        state = "blocked"
        shapes = ("waiting for a valid input",)
    else:
        state = "warning" if warnings else "ok"
        shapes = _shape_lines(report)
    params = f"{report.params:,} param{'s' if report.params != 1 else ''}"
    return CardText(node.name, node.kind, args, shapes, params, state, frozen, searched)


def _shape_lines(report: NodeReport) -> tuple[str, ...]:
    outs = report.output_shapes
    if not outs:
        return ("?",)
    texts = [fmt_shape(s) for s in outs]
    if len(texts) == 1:
        return (texts[0],)
    if len(set(texts)) == 1:
        return (f"{texts[0]}  ×{len(texts)} calls",)
    return tuple(f"[{i}] {t}" for i, t in enumerate(texts))


TOOLTIP_CONFIG_CHARS = 1200  # an unsupported layer's config is cut to this in its tooltip


def unsupported_config_text(node: Node, limit: int = TOOLTIP_CONFIG_CHARS) -> str:
    """The Keras config of an unsupported layer as pretty JSON, cut to ``limit`` characters."""
    config = {**node.args, **{k: v for k, v in node.config.items() if k != "unsupported"}}
    text = json.dumps(config, indent=2, default=repr, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unsupported_lines(node: Node) -> list[str]:
    e = html.escape
    info = unsupported_marker(node)
    lines = [f"<b>{e(node.name)}</b> — {e(str(info.get('class_name') or node.kind))} "
             "<i>(unsupported)</i>",
             f"Class: {e(str(info.get('class_name') or node.kind))}"]
    if info.get("module"):
        lines.append(f"Module: {e(str(info['module']))}")
    if info.get("reason"):
        lines.append(f"Reason: {e(str(info['reason']))}")
    lines.append("Config:<pre>" + e(unsupported_config_text(node)) + "</pre>")
    return lines


def card_tooltip(node: Node, report: NodeReport | None) -> str:
    """The full story of a card (rich text): built only when someone hovers, never on refresh."""
    e = html.escape
    spec = CATALOGUE.get(node.kind)
    if spec is None:
        lines = _unsupported_lines(node)
    else:
        lines = [f"<b>{e(node.name)}</b> — {e(node.kind)}", f"<i>{e(spec.summary)}</i>"]
    if report is None:
        return "<br>".join(lines)
    args = card_text(node, report).args if spec is not None else ""  # its module is said above
    if node.search and spec is not None:
        try:
            args = spec.describe(report.args)
        except Exception:  # noqa: BLE001 - as in card_text
            args = ""
    if args:
        lines.append(e(args))
    if node.search:
        lines.append(f"<span style='color:{search_color().name()}'><b>Searched in a sweep:</b></span> "
                     + e(search_text(node)))
    for i, shape in enumerate(report.output_shapes):
        label = "Output" if len(report.output_shapes) == 1 else f"Output of call {i}"
        lines.append(f"{label}: {e(fmt_shape(shape))}")
    lines.append(f"{report.params:,} parameters")
    if not node.trainable:
        lines.append("<b>Frozen</b>: training leaves its weights as they are (they count as "
                     "non-trainable)")
    if report.blocked and not report.errors:
        lines.append("<i>An upstream layer is invalid, so this layer's shape is unknown.</i>")
    for p in report.problems:
        colour = ERROR_COLOR if p.severity == Severity.ERROR else WARNING_COLOR
        word = "Error" if p.severity == Severity.ERROR else "Warning"
        lines.append(f"<span style='color:{colour}'><b>{word}:</b></span> {e(p.message)}")
        for fix in p.fixes:
            lines.append(f"&nbsp;&nbsp;→ Fix: {e(fix.label)}")
    return "<br>".join(lines)


class CardStyle:
    """Fonts, metrics and colours every card shares. The scene owns one and refreshes it when the
    appearance changes; sizes are in pixels so a card's layout is the same on every platform."""

    def __init__(self, base: QFont) -> None:
        self.refresh(base)

    def refresh(self, base: QFont) -> None:
        self.colors = card_colors()
        self.name_font = QFont(base)
        self.name_font.setPixelSize(13)
        self.name_font.setBold(True)
        self.body_font = QFont(base)
        self.body_font.setPixelSize(12)
        self.shape_font = QFont(base)
        self.shape_font.setPixelSize(12)
        self.shape_font.setWeight(QFont.Weight.DemiBold)
        self.small_font = QFont(base)
        self.small_font.setPixelSize(11)
        self.lod_font = QFont(base)   # names at low zoom, in screen pixels (see NodeItem.paint)
        self.lod_font.setPixelSize(round(LOD_TEXT_PX))
        self.lod_font.setBold(True)
        self._elided: dict[tuple[int, str, float], str] = {}
        self.wrapped_names: dict[tuple[str, float, int], tuple[str, ...]] = {}  # see wrap_name
        self._widths: dict[tuple[int, str, float], float] = {}
        self.name_metrics = QFontMetricsF(self.name_font)
        self.body_metrics = QFontMetricsF(self.body_font)
        self.shape_metrics = QFontMetricsF(self.shape_font)
        self.small_metrics = QFontMetricsF(self.small_font)
        self.lod_metrics = QFontMetricsF(self.lod_font)
        self._metrics = (self.name_metrics, self.body_metrics, self.shape_metrics, self.small_metrics,
                         self.lod_metrics)
        dark = self.colors["fill"].lightness() < 128
        self.shadow = QColor(0, 0, 0, 90 if dark else 28)
        self.unsupported_fill = QColor("#3a3b3f") if dark else QColor("#eceef1")
        self.hatch = QBrush(QColor(255, 255, 255, 28) if dark else QColor(0, 0, 0, 22),
                            Qt.BrushStyle.BDiagPattern)

    NAME, BODY, SHAPE, SMALL, LOD = range(5)

    def elide(self, font: int, text: str, width: float) -> str:
        """``text`` cut to ``width`` with "…" in ``font`` (one of NAME, BODY, SHAPE, SMALL).

        Remembered: cards repeat the same texts ("relu", "0 params", a shape down a chain), and
        measuring text is the costliest part of refreshing a large design."""
        key = (font, text, width)
        shown = self._elided.get(key)
        if shown is None:
            if len(self._elided) > 20_000:
                self._elided.clear()
            mode = Qt.TextElideMode.ElideMiddle if font in (self.NAME, self.LOD) else Qt.TextElideMode.ElideRight
            shown = self._elided[key] = self._metrics[font].elidedText(text, mode, width)
        return shown


    def wrap(self, font: int, text: str, width: float, max_lines: int) -> tuple[str, ...]:
        """``text`` broken at spaces into at most ``max_lines`` lines of ``width``, the last one
        elided with "…" when the text does not fit."""
        words = text.split()
        lines: list[str] = []
        while words and len(lines) < max_lines - 1:
            line = words.pop(0)
            while words and self.width(font, f"{line} {words[0]}") <= width:
                line = f"{line} {words.pop(0)}"
            if self.width(font, line) > width:  # one word longer than a line: cut it
                words.insert(0, line)
                break
            lines.append(line)
        if words:
            lines.append(self.elide(font, " ".join(words), width))
        return tuple(lines) or ("",)

    def width(self, font: int, text: str) -> float:
        """Advance of ``text`` in ``font``, remembered like :meth:`elide`."""
        key = (font, text, -1.0)
        found = self._widths.get(key)
        if found is None:
            if len(self._widths) > 20_000:
                self._widths.clear()
            found = self._widths[key] = self._metrics[font].horizontalAdvance(text)
        return found


class Detail(Enum):
    """How much of a card is painted at a zoom (see :func:`detail_for`)."""

    FULL = "full"     # the whole card: texts, ports, shadow
    NAME = "name"     # a block in the card's colour with its name, readable on screen
    BLOCK = "block"   # only the coloured block


LOD_FULL = 0.5     # at or above this scale cards are drawn in full
LOD_NAME = 0.12    # … above this, as a named block; below it, as a plain block
LOD_TEXT_PX = 11.0  # on-screen pixel size of a name drawn at low zoom


def detail_for(lod: float) -> Detail:
    """What a card shows at scale ``lod`` (``levelOfDetailFromTransform``): slivers of 8-pixel
    text help nobody, a readable name on a coloured block does."""
    if lod >= LOD_FULL:
        return Detail.FULL
    return Detail.NAME if lod >= LOD_NAME else Detail.BLOCK


_NAME_BREAK = re.compile(r"(?<=[_.\-])")  # a long name wraps after these


def wrap_name(style: CardStyle, name: str, width: float, max_lines: int) -> tuple[str, ...]:
    """``name`` over at most ``max_lines`` lines of ``width`` screen pixels in the low-zoom font,
    broken after "_", "." or "-" (``conv3_`` / ``block2``), the last line elided."""
    key = (name, width, max_lines)
    found = style.wrapped_names.get(key)
    if found is not None:
        return found
    parts = [p for p in _NAME_BREAK.split(name) if p]
    lines: list[str] = []
    while parts and len(lines) < max_lines - 1:
        line = parts.pop(0)
        while parts and style.width(style.LOD, line + parts[0]) <= width:
            line += parts.pop(0)
        if style.width(style.LOD, line) > width:  # one piece longer than a line
            parts.insert(0, line)
            break
        lines.append(line)
    if parts:
        lines.append(style.elide(style.LOD, "".join(parts), width))
    if len(style.wrapped_names) > 20_000:
        style.wrapped_names.clear()
    found = style.wrapped_names[key] = tuple(lines)
    return found


def lod_lines(style: CardStyle, name: str, extra: tuple[str, ...], width: float, height: float,
              lod: float) -> tuple[str, ...]:
    """The texts a card ``width`` × ``height`` (scene units) shows at scale ``lod``: ``name``
    (wrapped when there is room) then the ``extra`` lines, as many as fit on screen at
    :data:`LOD_TEXT_PX`, each within the card's screen width. Empty below :data:`LOD_NAME` or in
    full detail (the card paints its own texts then)."""
    if detail_for(lod) is not Detail.NAME:
        return ()
    # A hair added, so that the same zoom reached by other arithmetic (0.29999…) writes the same.
    room = int((height * lod + 1e-6) // (LOD_TEXT_PX + 2))
    screen_width = float(int(width * lod - 6 + 1e-6))
    if room < 1 or screen_width < 12:
        return ()
    lines = wrap_name(style, name, screen_width, max(1, room - len(extra)))
    # An extra line that does not fit keeps its first word ("168 layers" → "168"), not "168…ers".
    extras = tuple(e if style.width(style.LOD, e) <= screen_width else
                   style.elide(style.LOD, e.split(" ", 1)[0], screen_width)
                   for e in extra[: room - len(lines)])
    # A name cut down to "…" or "c…" tells nothing: the plain block says as much, more quietly.
    return tuple(line for line in lines + extras if len(line.replace("…", "")) >= 2)


def paint_block_marks(painter: QPainter, rect: QRectF, selected: bool, selection: QColor,
                      lines: tuple[str, ...], lod: float, colour: QColor, font: QFont) -> None:
    """What a zoomed-out block (a layer's or a group's) draws over its fill: a selection outline
    of constant screen width, then its name ``lines`` (:func:`paint_lod_texts`)."""
    if selected:
        pen = QPen(selection, 3.0)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect)
    if lines:
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        paint_lod_texts(painter, lines, rect, lod, colour, font)


def paint_lod_texts(painter: QPainter, lines: tuple[str, ...], rect: QRectF, lod: float,
                    colour: QColor, font: QFont) -> None:
    """Draw ``lines`` (from :func:`lod_lines`) centred in ``rect`` at screen size: the painter
    is scaled back by ``lod`` so that the text is :data:`LOD_TEXT_PX` pixels on screen."""
    if not lines:
        return
    painter.save()
    painter.scale(1 / lod, 1 / lod)
    screen = QRectF(rect.left() * lod, rect.top() * lod, rect.width() * lod, rect.height() * lod)
    line = LOD_TEXT_PX + 2
    top = screen.center().y() - line * len(lines) / 2
    painter.setFont(font)
    painter.setPen(colour)
    for i, text in enumerate(lines):
        painter.drawText(QRectF(screen.left(), top + i * line, screen.width(), line),
                         Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()


_HEADER_PATHS: dict[tuple[float, float, float, float], QPainterPath] = {}


def header_path(card: QRectF) -> QPainterPath:
    """The coloured band along the top of a card ``card`` (its rounded top corners), made once
    per card size: intersecting two paths at every paint of every card costs more than drawing."""
    key = (card.left(), card.top(), card.width(), card.height())
    path = _HEADER_PATHS.get(key)
    if path is None:
        outline = QPainterPath()
        outline.addRoundedRect(card, RADIUS, RADIUS)
        band = QPainterPath()
        band.addRect(QRectF(card.left(), card.top(), card.width(), HEADER))
        path = _HEADER_PATHS[key] = outline.intersected(band)
    return path


LOCK_SIZE = 12.0    # the padlock a frozen card (or a frozen group) shows in its header
FROZEN_OPACITY = 0.55


def lock_box(header: QRectF) -> QRectF:
    """Where the padlock goes in a header band: at its right end, vertically centred."""
    return QRectF(header.right() - PAD - LOCK_SIZE + 2, header.center().y() - LOCK_SIZE / 2,
                  LOCK_SIZE - 2, LOCK_SIZE)


def paint_lock(painter: QPainter, box: QRectF, colour: QColor, closed: bool = True) -> None:
    """A padlock in ``box``, drawn with paths so that no font needs to hold a lock glyph: closed
    (every layer frozen), or with its shackle open (some of a group's layers frozen)."""
    w, h = box.width(), box.height()
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    pen = QPen(colour, max(1.4, w * 0.16))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    body_top = box.top() + h * 0.45
    arch = QRectF(box.left() + w * 0.22, box.top() + pen.widthF() / 2, w * 0.56, w * 0.56)
    lift = 0.0 if closed else h * 0.18
    shackle = QPainterPath()
    shackle.moveTo(arch.right(), body_top - lift if not closed else body_top)
    shackle.lineTo(arch.right(), arch.center().y() - lift)
    shackle.arcTo(arch.translated(0, -lift), 0, 180)
    if closed:
        shackle.lineTo(arch.left(), body_top)
    else:
        shackle.lineTo(arch.left(), arch.center().y() - lift + h * 0.08)
    painter.drawPath(shackle)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawRoundedRect(QRectF(box.left(), body_top, w, box.bottom() - body_top), w * 0.14, w * 0.14)
    painter.restore()


LOD_LOCK_PX = 10.0  # the padlock of a zoomed-out block, in screen pixels


def paint_lod_lock(painter: QPainter, rect: QRectF, lod: float, colour: QColor, closed: bool = True) -> None:
    """The padlock of a frozen layer or group drawn zoomed out, at a size the eye can read, in
    the block's top-right corner; left out when the block is too small on screen to hold it."""
    if rect.width() * lod < 5 * LOD_LOCK_PX or rect.height() * lod < 2.5 * LOD_LOCK_PX:
        return
    size, margin = LOD_LOCK_PX / lod, 3.0 / lod
    paint_lock(painter, QRectF(rect.right() - margin - size * 0.85, rect.top() + margin, size * 0.85, size),
               colour, closed)


def _header_text_color(fill: QColor) -> QColor:
    luma = 0.299 * fill.red() + 0.587 * fill.green() + 0.114 * fill.blue()
    return QColor("#1f2328") if luma > 160 else QColor("#ffffff")


MARK_WIDTH, MARK_HEIGHT = 18.0, 12.0  # the mark of a searched card, in its header


def paint_search_mark(painter: QPainter, box: QRectF) -> None:
    """The mark of a layer (or group) a sweep varies: a pill in the accent colour with three
    dots, like the "…" of the Inspector's toggle, drawn with shapes so that it is crisp at any scale."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setPen(QPen(QColor(255, 255, 255, 200), 1.0))
    painter.setBrush(search_color())
    painter.drawRoundedRect(box, box.height() / 2, box.height() / 2)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("#ffffff"))
    radius = box.height() * 0.11
    for i in (-1, 0, 1):
        painter.drawEllipse(QPointF(box.center().x() + i * box.width() * 0.24, box.center().y()), radius, radius)
    painter.restore()


ERROR_LINES = 2  # an error message on a card wraps to this many lines
_ERROR_FILL = QColor(ERROR_COLOR)
UNSUPPORTED_COLOR = "#6e7781"  # the header of a layer Convas does not know
UNSUPPORTED_BADGE = "unsupported"


class NodeItem(QGraphicsItem):
    """One layer card. Its position is the centre of the card, as ``Node.position`` is."""

    def __init__(self, name: str, kind: str, style: CardStyle) -> None:
        super().__init__()
        self.name = name
        self.short_name = name   # zoomed out, inside a frame: without its group's prefix
        self.kind = kind
        self.style = style
        spec = CATALOGUE.get(kind)
        self.unsupported = spec is None      # drawn hatched, titled by its Keras class
        self.group_color = QColor(UNSUPPORTED_COLOR) if spec is None else group_color(spec.group)
        self.header_text_color = _header_text_color(self.group_color)
        self.max_inputs: int | None = spec.max_inputs if spec else None
        self.text: CardText | None = None
        self.height = HEIGHT
        self.ports: list[tuple[int, int] | None] = []   # input slots: (call, slot), None = free
        self.port_hovered = False
        self.highlighted = False                        # drop or connection target
        self._shown: dict[str, str] = {}                # elided texts, as painted
        self._shape_count = 0                           # lines of shapes (or error) painted
        self._connecting = False                        # the press began on the output port
        self.layer: CardLayer | None = None             # draws this card when zoomed out
        self._rect = QRectF()
        self._bounds = QRectF()
        self._set_geometry()
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsMovable)
        self.setAcceptHoverEvents(True)
        # No pixmap cache: a cached card is painted again at every zoom step, and at the zooms
        # where many cards show the CardLayer draws them all at once.
        self.setZValue(1.0)

    # --- contents ---------------------------------------------------------------------------

    def refresh(self, text: CardText) -> bool:
        """Show ``text``; returns False (and repaints nothing) when it is what is shown already."""
        if text == self.text:
            return False
        self.text = text
        self._elide()
        self.setOpacity(0.5 if text.state == "blocked" else FROZEN_OPACITY if text.frozen else 1.0)
        self._repaint(looks=True)
        return True

    def _repaint(self, looks: bool = False) -> None:
        """Paint again; ``looks``: what the zoomed-out block shows (colour, place, size) changed."""
        self.update()
        if self.layer is not None:
            self.layer.card_changed(looks)

    def rename(self, name: str) -> None:
        self.name = self.short_name = name

    def set_group_prefix(self, group: str | None) -> None:
        """The card sits in ``group``'s frame: zoomed out, ``conv3_block2_1_conv`` is written
        ``1_conv`` under the frame's ``conv3_block2`` (the full name shows when zoomed in)."""
        short = self.name
        if group and len(self.name) > len(group) + 1 and self.name.startswith(group) \
                and self.name[len(group)] in "_.-":
            short = self.name[len(group) + 1:]
        if short != self.short_name:
            self.short_name = short
            self._repaint()

    def restyle(self) -> None:
        """Fonts or colours changed: elide again and repaint."""
        if self.text is not None:
            self._elide()
        self._repaint(looks=True)

    def shape_lines(self) -> list[str]:
        """The lines under the arguments as painted: shapes, or the error wrapped to two lines."""
        return [self._shown[f"shape{i}"] for i in range(self._shape_count)]

    def _elide(self) -> None:
        assert self.text is not None
        st, t = self.style, self.text
        inner = WIDTH - 2 * PAD
        # The kind gives way to the parameter count on their shared line.
        if self.unsupported:  # titled by its class; the badge takes the parameters' place
            kind_width = inner - 8 - st.width(st.SMALL, UNSUPPORTED_BADGE) - 8
            title, subtitle, right = t.kind, t.name, UNSUPPORTED_BADGE
        else:
            kind_width = inner - 8 - st.width(st.SMALL, t.params)
            title, subtitle, right = t.name, t.kind, t.params
        lock = (LOCK_SIZE + 4 if t.frozen else 0.0) + (MARK_WIDTH + 4 if t.searched else 0.0)
        self._shown = {
            "name": st.elide(st.NAME, title, inner - lock),
            "params": right,
            "kind": st.elide(st.SMALL, subtitle, max(0.0, kind_width)),
            "args": st.elide(st.BODY, t.args or "—", inner),
        }
        if t.state == "error":  # the full message is in the card's tooltip
            lines = st.wrap(st.SHAPE, t.shapes[0], inner, ERROR_LINES)
        else:
            lines = tuple(st.elide(st.SHAPE, line, inner) for line in t.shapes)
        for i, line in enumerate(lines):
            self._shown[f"shape{i}"] = line
        self._shape_count = len(lines)
        height = HEIGHT + LINE * (len(lines) - 1)
        if height != self.height:
            self.prepareGeometryChange()
            self.height = height
            self._set_geometry()

    def _set_geometry(self) -> None:
        # Kept, not made at every call: Qt asks for the bounding rectangle of every card at
        # every frame.
        self._rect = QRectF(-WIDTH / 2, -self.height / 2, WIDTH, self.height)
        self._bounds = self._rect.adjusted(-6, -8, 6, 10)

    def sync_ports(self, node: Node) -> None:
        """Lay out input ports from the node's connections: one per input, plus a free one
        while the layer accepts another (none for an InputLayer)."""
        ports: list[tuple[int, int] | None] = []
        if self.max_inputs != 0:
            first = node.inbound[0] if node.inbound else []
            ports += [(0, s) for s in range(len(first))]
            if self.max_inputs is None or len(first) < self.max_inputs:
                ports.append(None)
            for call in range(1, len(node.inbound)):
                ports += [(call, s) for s in range(len(node.inbound[call]))]
        if ports != self.ports:
            self.ports = ports
            self.update()

    # --- geometry ---------------------------------------------------------------------------

    def card_rect(self) -> QRectF:
        return QRectF(self._rect)

    @property
    def frozen(self) -> bool:
        """The card shows a frozen layer: dimmed, with a padlock in its header."""
        return self.text is not None and self.text.frozen

    def lock_rect(self) -> QRectF:
        """Where the padlock of a frozen card is drawn (item coordinates)."""
        r = self._rect
        return lock_box(QRectF(r.left(), r.top(), r.width(), HEADER))

    @property
    def searched(self) -> bool:
        """The card shows a layer a sweep varies: its ranges in the accent colour, a mark in
        its header."""
        return self.text is not None and self.text.searched

    def mark_rect(self) -> QRectF:
        """Where the searched mark is drawn (item coordinates): at the header's right end, left
        of the padlock of a frozen card."""
        r = self._rect
        right = r.right() - PAD - (LOCK_SIZE + 4 if self.frozen else 0.0)
        return QRectF(right - MARK_WIDTH + 2, r.top() + (HEADER - MARK_HEIGHT) / 2, MARK_WIDTH, MARK_HEIGHT)

    def _port_x(self, index: int) -> float:
        n = len(self.ports)
        if n <= 1:
            return 0.0
        span = WIDTH - 2 * PORT_MARGIN
        return -span / 2 + span * index / (n - 1)

    def input_port_pos(self, call: int, slot: int) -> QPointF:
        """Scene position of the input port of ``slot`` of ``call``."""
        try:
            index = self.ports.index((call, slot))
        except ValueError:
            index = 0
        return self.mapToScene(QPointF(self._port_x(index), -self.height / 2))

    def next_input_pos(self) -> QPointF:
        """Scene position where a new connection would land: the free port, else the first."""
        index = self.ports.index(None) if None in self.ports else 0
        return self.mapToScene(QPointF(self._port_x(index), -self.height / 2))

    def output_port_local(self) -> QPointF:
        return QPointF(0.0, self.height / 2)

    def output_port_pos(self) -> QPointF:
        return self.mapToScene(self.output_port_local())

    def is_on_output_port(self, local: QPointF) -> bool:
        d = local - self.output_port_local()
        return d.x() * d.x() + d.y() * d.y() <= PORT_HIT * PORT_HIT

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self.card_rect(), RADIUS, RADIUS)
        path.addEllipse(self.output_port_local(), PORT_HIT, PORT_HIT)
        return path

    # --- painting ---------------------------------------------------------------------------

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        detail = detail_for(lod)
        if detail is not Detail.FULL:
            self._paint_block(painter, lod, detail)
            return
        st, c = self.style, self.style.colors
        r = self._rect
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        state = self.text.state if self.text else "pending"

        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(st.shadow)
        painter.drawRoundedRect(r.translated(0, 2), RADIUS, RADIUS)
        painter.setBrush(st.unsupported_fill if self.unsupported else c["fill"])
        painter.drawRoundedRect(r, RADIUS, RADIUS)
        if self.unsupported:
            painter.setBrush(st.hatch)
            painter.drawRoundedRect(r, RADIUS, RADIUS)

        painter.fillPath(header_path(r), self.group_color)

        if state == "error":
            border = QPen(QColor(ERROR_COLOR), 2.0)
        elif state == "warning":
            border = QPen(QColor(WARNING_COLOR), 2.0)
        else:
            border = QPen(c["border"], 1.0)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(border)
        painter.drawRoundedRect(r, RADIUS, RADIUS)
        if self.isSelected() or self.highlighted:
            halo = QPen(c["selection"], 2.0)
            if self.highlighted and not self.isSelected():
                halo.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(halo)
            painter.drawRoundedRect(r.adjusted(-3.5, -3.5, 3.5, 3.5), RADIUS + 3, RADIUS + 3)

        if self._shown:
            self._paint_texts(painter, r, state)
        self._paint_ports(painter, r)

    def lod_texts(self, lod: float) -> tuple[str, ...]:
        """What the card writes at scale ``lod`` when zoomed out (see :func:`lod_lines`)."""
        title = self.kind if self.unsupported else self.short_name
        return lod_lines(self.style, title, (), WIDTH, self.height, lod)

    def _paint_block(self, painter: QPainter, lod: float, detail: Detail) -> None:
        """Zoomed out: the card as a block in its colour, named when the name can be read. Cheap:
        a 1,000-layer overview paints every card this way (see :class:`CardLayer`)."""
        r = self._rect
        c = self.style.colors
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.fillRect(r, self.block_fill())
        if self.unsupported:
            painter.fillRect(r, self.style.hatch)
        paint_block_marks(painter, r, self.isSelected() or self.highlighted, c["selection"],
                          self.lod_texts(lod) if detail is Detail.NAME else (), lod,
                          self.header_text_color, self.style.lod_font)

    def block_fill(self) -> QColor:
        """The colour of the card as a block (zoomed out): its family's, red for an error."""
        state = self.text.state if self.text else "pending"
        return _ERROR_FILL if state == "error" and not self.unsupported else self.group_color

    def _paint_texts(self, painter: QPainter, r: QRectF, state: str) -> None:
        st, c, shown = self.style, self.style.colors, self._shown
        left, inner = r.left() + PAD, WIDTH - 2 * PAD
        flags_l = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        flags_r = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter

        painter.setFont(st.name_font)
        painter.setPen(self.header_text_color)
        painter.drawText(QRectF(left, r.top(), inner, HEADER), flags_l, shown["name"])
        if self.frozen:
            paint_lock(painter, self.lock_rect(), self.header_text_color)
        if self.searched:
            paint_search_mark(painter, self.mark_rect())

        top = r.top() + HEADER + 7
        painter.setFont(st.small_font)
        painter.setPen(c["muted"])
        painter.drawText(QRectF(left, top, inner, LINE), flags_l, shown["kind"])
        if self.unsupported:  # a badge, so the card reads as "not a Convas layer" at a glance
            badge_width = st.width(st.SMALL, shown["params"]) + 10
            badge = QRectF(r.right() - PAD - badge_width + 4, top + 1, badge_width, LINE - 2)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(UNSUPPORTED_COLOR))
            painter.drawRoundedRect(badge, 4, 4)
            painter.setPen(QColor("#ffffff"))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, shown["params"])
        else:
            painter.drawText(QRectF(left, top, inner, LINE), flags_r, shown["params"])

        painter.setFont(st.body_font)
        if self.searched:
            painter.setPen(search_color())
        else:
            painter.setPen(c["text"] if self.text and self.text.args else c["muted"])
        painter.drawText(QRectF(left, top + LINE, inner, LINE), flags_l, shown["args"])

        colour = {"error": QColor(ERROR_COLOR), "blocked": c["muted"], "pending": c["muted"]}.get(state, c["text"])
        painter.setFont(st.shape_font)
        painter.setPen(colour)
        for i in range(self._shape_count if self.text else 0):
            painter.drawText(QRectF(left, top + LINE * (2 + i), inner, LINE), flags_l, shown[f"shape{i}"])

    def _paint_ports(self, painter: QPainter, r: QRectF) -> None:
        c = self.style.colors
        for i, port in enumerate(self.ports):
            centre = QPointF(self._port_x(i), r.top())
            if port is None:
                painter.setPen(QPen(c["edge"], 1.2))
                painter.setBrush(c["fill"])
            else:
                painter.setPen(QPen(c["fill"], 1.5))
                painter.setBrush(c["edge"])
            painter.drawEllipse(centre, PORT_RADIUS, PORT_RADIUS)
        radius = PORT_RADIUS + (2.0 if self.port_hovered else 0.0)
        painter.setPen(QPen(c["fill"], 1.5))
        painter.setBrush(QBrush(self.group_color))
        painter.drawEllipse(self.output_port_local(), radius, radius)

    # --- interaction ------------------------------------------------------------------------

    def _graph_scene(self) -> GraphScene | None:
        return self.scene()  # type: ignore[return-value]

    def hoverMoveEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        on_port = self.is_on_output_port(event.pos())
        if on_port != self.port_hovered:
            self.port_hovered = on_port
            if on_port:
                self.setCursor(Qt.CursorShape.CrossCursor)
            else:
                self.unsetCursor()
            self.update()
        super().hoverMoveEvent(event)

    def hoverLeaveEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        if self.port_hovered:
            self.port_hovered = False
            self.unsetCursor()
            self.update()
        super().hoverLeaveEvent(event)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        scene = self._graph_scene()
        if (event.button() == Qt.MouseButton.LeftButton and scene is not None
                and self.is_on_output_port(event.pos())):
            self._connecting = True
            scene.begin_connect(self.name, event.scenePos())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._connecting:  # drawing a connection (or one cancelled with Escape): never a move
            scene = self._graph_scene()
            if scene is not None and scene.connecting_from() == self.name:
                scene.update_connect(event.scenePos())
            return
        super().mouseMoveEvent(event)  # moves every selected card, visually only
        scene = self._graph_scene()
        if scene is not None:
            scene.selection_dragged(self)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._connecting:
            self._connecting = False
            scene = self._graph_scene()
            if scene is not None and scene.connecting_from() == self.name:
                scene.finish_connect(event.scenePos())
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        scene = self._graph_scene()
        if scene is not None:
            scene.sigNodeActivated.emit(self.name)
        super().mouseDoubleClickEvent(event)


class BatchLayer(QGraphicsItem):
    """One item drawing, zoomed out, what many items of a scene would draw one by one (the
    cards: :class:`CardLayer`; the connections: ``EdgeLayer``): drawn only while ``batched``; it
    takes no mouse button and has no shape, so clicks, hovers and rubber bands reach the items
    beneath; it is told the part of it being painted. A subclass gathers what it draws
    (``_gather``, which also sets ``_bounds``) and forgets it when told (``_forget``)."""

    def __init__(self, style: CardStyle, z: float) -> None:
        super().__init__()
        self.style = style
        self.batched = False
        self._bounds = QRectF()
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        # Told the part of it being painted (exposedRect), not its whole bounding rectangle.
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.setZValue(z)

    def _gather(self) -> object:
        raise NotImplementedError

    def _forget(self) -> None:
        raise NotImplementedError

    def set_batched(self, batched: bool) -> None:
        if batched != self.batched:
            self.prepareGeometryChange()
            self.batched = batched
            self._forget()

    def boundingRect(self) -> QRectF:
        if not self.batched:
            return QRectF()
        self._gather()
        return self._bounds

    def shape(self) -> QPainterPath:
        return QPainterPath()


class CardLayer(BatchLayer):
    """Zoomed out, every layer card of a scene drawn by this one item.

    Below :data:`LOD_FULL` a card is a block in its colour (named at :data:`LOD_NAME` and above),
    and a 1,000-layer overview shows them all: one item painting the blocks colour by colour
    costs a fraction of a thousand calls into Python ``paint`` a frame. While the scene has the
    cards hand their painting over (``batched``, see :meth:`GraphScene._set_batched`, the cards
    then have no contents of their own), this layer draws them: blocks, names, the selection.
    Painted at full detail while still batched (the zoom changed without the scene seeing it,
    say a ``QGraphicsScene.render`` of a close-up), it paints each card in full itself, so that
    every frame is right whichever way the scene has it. Not batched, it draws nothing.

    It takes no mouse button and has no shape: clicks, hovers and rubber bands reach the cards."""

    def __init__(self, style: CardStyle, cards: Callable[[], Iterable[NodeItem]]) -> None:
        super().__init__(style, 0.5)  # above the connections (0), below the cards drawn on their own (1)
        self._cards = cards
        self._blocks: list[tuple[QColor, float, list[QRectF]]] | None = None  # fill, opacity, rects
        self._placed: list[tuple[NodeItem, QRectF]] = []   # every shown card and its scene rectangle
        self._hatched: list[QRectF] = []

    def card_changed(self, looks: bool) -> None:
        """A card changed: repaint, and when its block looks different (``looks``) or moved,
        gather the blocks again before the next paint."""
        if looks and self._blocks is not None:
            self.prepareGeometryChange()
            self._blocks = None
        if self.batched:
            self.update()

    def _forget(self) -> None:
        self._blocks = None

    def _gather(self) -> list[tuple[QColor, float, list[QRectF]]]:
        if self._blocks is not None:
            return self._blocks
        by_fill: dict[tuple[int, float], tuple[QColor, float, list[QRectF]]] = {}
        placed: list[tuple[NodeItem, QRectF]] = []
        hatched: list[QRectF] = []
        bounds = QRectF()
        for card in self._cards():
            if not card.isVisible():
                continue
            rect = card._rect.translated(card.pos())
            placed.append((card, rect))
            fill, opacity = card.block_fill(), card.opacity()
            entry = by_fill.get((fill.rgba(), opacity))
            if entry is None:
                entry = by_fill[(fill.rgba(), opacity)] = (fill, opacity, [])
            entry[2].append(rect)
            if card.unsupported:
                hatched.append(rect)
            bounds = bounds.united(card._bounds.translated(card.pos()))
        self._placed, self._hatched, self._bounds = placed, hatched, bounds
        self._blocks = list(by_fill.values())
        return self._blocks

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not self.batched:
            return
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        blocks = self._gather()
        exposed = option.exposedRect
        detail = detail_for(lod)
        if detail is Detail.FULL:
            for card, rect in self._placed:
                if rect.intersects(exposed):
                    painter.save()
                    painter.translate(card.pos())
                    painter.setOpacity(card.opacity())
                    card.paint(painter, option, widget)
                    painter.restore()
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        fill_rect = painter.fillRect   # as a card fills its block (drawRects rounds edges otherwise)
        for fill, opacity, rects in blocks:
            painter.setOpacity(opacity)
            for rect in rects:
                fill_rect(rect, fill)
        painter.setOpacity(1.0)
        hatch = self.style.hatch
        for rect in self._hatched:
            fill_rect(rect, hatch)
        if detail is Detail.NAME:
            painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
            font = self.style.lod_font
            for card, rect in self._placed:
                if rect.intersects(exposed):
                    painter.setOpacity(card.opacity())
                    paint_lod_texts(painter, card.lod_texts(lod), rect, lod, card.header_text_color, font)
                    if card.frozen:
                        paint_lod_lock(painter, rect, lod, card.header_text_color)
            painter.setOpacity(1.0)
        marked = [(card, rect) for card, rect in self._placed if card.highlighted or card.isSelected()] \
            if self._any_marked() else []
        if marked:
            pen = QPen(self.style.colors["selection"], 3.0)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            for card, rect in marked:
                painter.setOpacity(card.opacity())
                painter.drawRect(rect)
            painter.setOpacity(1.0)

    def _any_marked(self) -> bool:
        scene = self.scene()
        if scene is not None and scene.selectedItems():
            return True
        return any(card.highlighted for card, _rect in self._placed)
