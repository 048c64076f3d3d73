"""A layer card on the canvas: what the analysis says about one node, drawn as a compact card.

The item keeps only what it needs to paint: the node's name and kind, the text last shown and
its input-port layout. Both are recomputed from the document (:func:`card_text`,
:meth:`NodeItem.sync_ports`); nothing here is ever copied back into the design.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, NamedTuple

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen,
)
from PySide6.QtWidgets import (
    QGraphicsItem, QGraphicsSceneHoverEvent, QGraphicsSceneMouseEvent, QStyleOptionGraphicsItem, QWidget,
)

from engine.analysis import NodeReport, Severity
from engine.design import Node
from engine.layers import CATALOGUE
from engine.shapes import fmt_shape

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


def card_text(node: Node, report: NodeReport | None) -> CardText:
    """The card contents of ``node`` given its analysis report (None while not analysed yet)."""
    spec = CATALOGUE.get(node.kind)
    args = ""
    if spec is not None:
        try:
            args = spec.describe(report.args if report is not None else spec.normalise(node.args)[0])
        except Exception:  # noqa: BLE001 - an invalid argument may break a card formatter; the error is reported elsewhere
            args = ""
    if report is None:
        return CardText(node.name, node.kind, args, ("…",), "", "pending")
    errors = report.errors
    warnings = [p for p in report.problems if p.severity == Severity.WARNING]
    if errors:
        state = "error"
        shapes: tuple[str, ...] = (f"⚠ {errors[0].message}",)
    elif report.blocked:
        state = "blocked"
        shapes = ("waiting for a valid input",)
    else:
        state = "warning" if warnings else "ok"
        shapes = _shape_lines(report)
    params = f"{report.params:,} param{'s' if report.params != 1 else ''}"
    return CardText(node.name, node.kind, args, shapes, params, state)


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


def card_tooltip(node: Node, report: NodeReport | None) -> str:
    """The full story of a card (rich text): built only when someone hovers, never on refresh."""
    e = html.escape
    spec = CATALOGUE.get(node.kind)
    lines = [f"<b>{e(node.name)}</b> — {e(node.kind)}"]
    if spec is not None:
        lines.append(f"<i>{e(spec.summary)}</i>")
    if report is None:
        return "<br>".join(lines)
    args = card_text(node, report).args
    if args:
        lines.append(e(args))
    for i, shape in enumerate(report.output_shapes):
        label = "Output" if len(report.output_shapes) == 1 else f"Output of call {i}"
        lines.append(f"{label}: {e(fmt_shape(shape))}")
    lines.append(f"{report.params:,} parameters")
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
        self._elided: dict[tuple[int, str, float], str] = {}
        self._widths: dict[tuple[int, str, float], float] = {}
        self.name_metrics = QFontMetricsF(self.name_font)
        self.body_metrics = QFontMetricsF(self.body_font)
        self.shape_metrics = QFontMetricsF(self.shape_font)
        self.small_metrics = QFontMetricsF(self.small_font)
        self._metrics = (self.name_metrics, self.body_metrics, self.shape_metrics, self.small_metrics)
        dark = self.colors["fill"].lightness() < 128
        self.shadow = QColor(0, 0, 0, 90 if dark else 28)


    NAME, BODY, SHAPE, SMALL = range(4)

    def elide(self, font: int, text: str, width: float) -> str:
        """``text`` cut to ``width`` with "…" in ``font`` (one of NAME, BODY, SHAPE, SMALL).

        Remembered: cards repeat the same texts ("relu", "0 params", a shape down a chain), and
        measuring text is the costliest part of refreshing a large design."""
        key = (font, text, width)
        shown = self._elided.get(key)
        if shown is None:
            if len(self._elided) > 20_000:
                self._elided.clear()
            mode = Qt.TextElideMode.ElideMiddle if font == self.NAME else Qt.TextElideMode.ElideRight
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


def _header_text_color(fill: QColor) -> QColor:
    luma = 0.299 * fill.red() + 0.587 * fill.green() + 0.114 * fill.blue()
    return QColor("#1f2328") if luma > 160 else QColor("#ffffff")


ERROR_LINES = 2  # an error message on a card wraps to this many lines
LOD_TEXT = 0.3  # below this scale card texts are not drawn


class NodeItem(QGraphicsItem):
    """One layer card. Its position is the centre of the card, as ``Node.position`` is."""

    def __init__(self, name: str, kind: str, style: CardStyle) -> None:
        super().__init__()
        self.name = name
        self.kind = kind
        self.style = style
        spec = CATALOGUE.get(kind)
        self.group_color = group_color(spec.group if spec else "")
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
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsMovable)
        self.setAcceptHoverEvents(True)
        # Repaints of unchanged cards (panning, an edit elsewhere) reuse a cached pixmap.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setZValue(1.0)

    # --- contents ---------------------------------------------------------------------------

    def refresh(self, text: CardText) -> bool:
        """Show ``text``; returns False (and repaints nothing) when it is what is shown already."""
        if text == self.text:
            return False
        self.text = text
        self._elide()
        self.setOpacity(0.5 if text.state == "blocked" else 1.0)
        self.update()
        return True

    def rename(self, name: str) -> None:
        self.name = name

    def restyle(self) -> None:
        """Fonts or colours changed: elide again and repaint."""
        if self.text is not None:
            self._elide()
        self.update()

    def shape_lines(self) -> list[str]:
        """The lines under the arguments as painted: shapes, or the error wrapped to two lines."""
        return [self._shown[f"shape{i}"] for i in range(self._shape_count)]

    def _elide(self) -> None:
        assert self.text is not None
        st, t = self.style, self.text
        inner = WIDTH - 2 * PAD
        # The kind gives way to the parameter count on their shared line.
        kind_width = inner - 8 - st.width(st.SMALL, t.params)
        self._shown = {
            "name": st.elide(st.NAME, t.name, inner),
            "params": t.params,
            "kind": st.elide(st.SMALL, t.kind, max(0.0, kind_width)),
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
        return QRectF(-WIDTH / 2, -self.height / 2, WIDTH, self.height)

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
        return self.card_rect().adjusted(-6, -8, 6, 10)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self.card_rect(), RADIUS, RADIUS)
        path.addEllipse(self.output_port_local(), PORT_HIT, PORT_HIT)
        return path

    # --- painting ---------------------------------------------------------------------------

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        st, c = self.style, self.style.colors
        r = self.card_rect()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        state = self.text.state if self.text else "pending"

        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(st.shadow)
        painter.drawRoundedRect(r.translated(0, 2), RADIUS, RADIUS)
        painter.setBrush(c["fill"])
        painter.drawRoundedRect(r, RADIUS, RADIUS)

        header = QPainterPath()
        header.addRoundedRect(r, RADIUS, RADIUS)
        band = QPainterPath()
        band.addRect(QRectF(r.left(), r.top(), r.width(), HEADER))
        painter.fillPath(header.intersected(band), self.group_color)

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

        # Zoomed far out the text is unreadable anyway: skip it (a 300-layer overview stays fluid).
        if self._shown and option.levelOfDetailFromTransform(painter.worldTransform()) >= LOD_TEXT:
            self._paint_texts(painter, r, state)
        self._paint_ports(painter, r)

    def _paint_texts(self, painter: QPainter, r: QRectF, state: str) -> None:
        st, c, shown = self.style, self.style.colors, self._shown
        left, inner = r.left() + PAD, WIDTH - 2 * PAD
        flags_l = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        flags_r = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter

        painter.setFont(st.name_font)
        painter.setPen(self.header_text_color)
        painter.drawText(QRectF(left, r.top(), inner, HEADER), flags_l, shown["name"])

        top = r.top() + HEADER + 7
        painter.setFont(st.small_font)
        painter.setPen(c["muted"])
        painter.drawText(QRectF(left, top, inner, LINE), flags_l, shown["kind"])
        painter.drawText(QRectF(left, top, inner, LINE), flags_r, shown["params"])

        painter.setFont(st.body_font)
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
