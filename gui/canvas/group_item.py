"""Groups on the canvas: a collapsed group drawn as one card, an expanded one as a frame behind
its layers.

Both mirror the document. A card shows what :func:`engine.grouping.group_summaries` says of its
group (:func:`group_text`); a frame's rectangle is computed from the cards it surrounds
(:func:`frame_rects`). Gestures on them (the chevron, a double-click, a drag) are handed to the
:class:`~gui.canvas.scene.GraphScene`, which turns each into one edit.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, NamedTuple

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import (
    QGraphicsItem, QGraphicsSceneMouseEvent, QStyleOptionGraphicsItem, QWidget,
)

from engine.design import Group, GroupKind
from engine.grouping import GroupSummary
from engine.layout import FRAME_PADDING, GROUP_CARD_HEIGHT, HEADER_HEIGHT, Rect
from engine.shapes import Shape, fmt_shape
from engine.summary import human_count

from ..search_field import search_color
from ..theme import ERROR_COLOR
from .node_item import (
    HEADER, LINE, LOCK_SIZE, PAD, PORT_RADIUS, RADIUS, WIDTH, CardStyle, Detail, detail_for, header_path,
    lock_box, lod_lines, paint_block_marks, paint_lock, paint_lod_lock, paint_lod_texts,
)

if TYPE_CHECKING:  # pragma: no cover
    from .scene import GraphScene

GROUP_WIDTH = WIDTH
STACK = 4.0            # offset of each of the two cards drawn behind a group's card
GROUP_HEIGHT = GROUP_CARD_HEIGHT - 2 * STACK  # header, then four lines; the layout's room for it
CHEVRON = 18.0         # the chevron's square, at the left of a header
FRAME_PAD = FRAME_PADDING     # room between a frame and the cards in it (as the layout leaves)
FRAME_HEADER = HEADER_HEIGHT  # the band above a frame's cards: chevron, name, summary
FRAME_RADIUS = 10.0
LOD_BAND_PX = 16.0     # a zoomed-out frame's name band, in screen pixels
GROUP_HEADER_LIGHT = "#4b5563"   # kind-neutral: a group holds layers of every kind
GROUP_HEADER_DARK = "#5b6577"


class GroupText(NamedTuple):
    """Everything a group's card or frame shows, as plain values (equal values paint the same)."""

    name: str
    badge: str            # "model", "block" or "" (a group the user made)
    layers: str           # "12 layers"
    inputs: str           # "in (None, 32, 32, 3)"
    outputs: str          # "out (None, 16, 16, 64)"
    params: str           # "1.23 M params"
    macs: str             # "3.40 M MACs"
    errors: int           # problems marked as errors on its layers
    frozen: int = 0       # how many of its layers are frozen …
    layer_count: int = 0  # … of how many
    repeats: str = ""     # "× 1–3": how many times a sweep may repeat it ('' when it does not)

    @property
    def lock(self) -> str:
        """"all" (a closed padlock), "some" (an open one) or "" (none): its layers' freezing."""
        if not self.frozen:
            return ""
        return "all" if self.frozen >= self.layer_count else "some"

    @property
    def frozen_text(self) -> str:
        """``3 of 12 frozen``, ``all frozen`` or ''."""
        if not self.frozen:
            return ""
        return "all frozen" if self.frozen >= self.layer_count else f"{self.frozen} of {self.layer_count} frozen"

    @property
    def summary(self) -> str:
        """One line for a frame's header: ``12 layers · 1.23 M params`` (``model · …`` for a
        nested model)."""
        return " · ".join(part for part in (self.badge, self.repeats, self.layers, self.params, self.frozen_text)
                          if part)


def _plural(n: int, word: str) -> str:
    return f"{human_count(n)} {word}{'' if n == 1 else 's'}"


def _shapes(label: str, shapes: tuple[Shape | None, ...]) -> str:
    if not shapes:
        return f"{label} —"
    more = f"  +{len(shapes) - 1}" if len(shapes) > 1 else ""
    return f"{label} {fmt_shape(shapes[0])}{more}"


def group_text(group: Group, summary: GroupSummary | None) -> GroupText:
    """The card contents of ``group`` given its summary (None while not analysed)."""
    badge = {GroupKind.MODEL: "model", GroupKind.BLOCK: "block"}.get(group.kind, "")
    repeats = repeats_text(group)
    if summary is None:
        return GroupText(group.name, badge, "…", "in …", "out …", "", "", 0, repeats=repeats)
    return GroupText(group.name, badge, _plural(summary.layers, "layer"),
                     _shapes("in ", summary.inputs), _shapes("out", summary.outputs),
                     _plural(summary.params, "param"), f"{human_count(summary.macs)} MACs",
                     summary.errors, summary.frozen, summary.layers, repeats)


def repeats_text(group: Group) -> str:
    """``× 1–3``: how many times a sweep may repeat ``group`` ('' when it does not)."""
    return f"× {group.repeats.describe()}" if group.repeats is not None else ""


def group_tooltip(group: Group, summary: GroupSummary) -> str:
    """The full story of a group's card or frame (rich text), built when someone hovers."""
    e = html.escape
    kind = {GroupKind.MODEL: "nested model", GroupKind.BLOCK: "block"}.get(group.kind, "group")
    lines = [f"<b>{e(group.name)}</b> — {e(kind)} of {_plural(summary.layers, 'layer')}"]
    for label, shapes in (("Input", summary.inputs), ("Output", summary.outputs)):
        if len(shapes) == 1:
            lines.append(f"{label}: {e(fmt_shape(shapes[0]))}")
        else:
            for i, shape in enumerate(shapes):
                lines.append(f"{label} {i + 1}: {e(fmt_shape(shape))}")
    lines.append(f"{summary.params:,} parameters ({summary.trainable_params:,} trainable, "
                 f"{summary.non_trainable_params:,} non-trainable)")
    lines.append(f"{human_count(summary.macs)} multiply-accumulates")
    if summary.frozen:
        which = "all its layers are" if summary.all_frozen else \
            f"{summary.frozen} of its {summary.layers} layers are"
        lines.append(f"<b>Frozen</b>: {which} frozen (their weights do not train)")
    if group.repeats is not None:
        lines.append(f"<span style='color:{search_color().name()}'><b>Repeated in a sweep:</b></span> "
                     f"{e(repeats_text(group))} (its layers chained one after the other)")
    if summary.errors:
        lines.append(f"<span style='color:{ERROR_COLOR}'><b>{summary.errors} "
                     f"error{'s' if summary.errors != 1 else ''}</b></span> in its layers")
    action = "expand" if group.collapsed else "collapse"
    lines.append(f"<i>Double-click{' the header' if not group.collapsed else ''} or click the chevron "
                 f"to {action}</i>")
    return "<br>".join(lines)


def frame_rects(order: list[str], cards: dict[str, list[Rect]],
                children: dict[str, list[str]]) -> dict[str, Rect]:
    """The frame of every expanded group in ``order`` (innermost groups first): it encloses the
    rectangles of the cards directly in it (``cards``) and the frames of its expanded
    sub-groups (``children``), with :data:`FRAME_PAD` around and :data:`FRAME_HEADER` above.
    A group with nothing shown in it has no frame."""
    frames: dict[str, Rect] = {}
    for group in order:
        boxes = [*cards.get(group, ()), *(frames[c] for c in children.get(group, ()) if c in frames)]
        if not boxes:
            continue
        frames[group] = (min(b[0] for b in boxes) - FRAME_PAD,
                         min(b[1] for b in boxes) - FRAME_PAD - FRAME_HEADER,
                         max(b[2] for b in boxes) + FRAME_PAD,
                         max(b[3] for b in boxes) + FRAME_PAD)
    return frames


def group_header_color(style: CardStyle) -> QColor:
    return QColor(GROUP_HEADER_DARK if style.colors["fill"].lightness() < 128 else GROUP_HEADER_LIGHT)


def _chevron(painter: QPainter, box: QRectF, expanded: bool, colour: QColor) -> None:
    """A chevron in ``box``: ▾ for an expanded group, ▸ for a collapsed one."""
    c, s = box.center(), box.width() * 0.2
    if expanded:
        points = [QPointF(c.x() - s, c.y() - s / 2), QPointF(c.x() + s, c.y() - s / 2), QPointF(c.x(), c.y() + s)]
    else:
        points = [QPointF(c.x() - s / 2, c.y() - s), QPointF(c.x() - s / 2, c.y() + s), QPointF(c.x() + s, c.y())]
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawPolygon(QPolygonF(points))


def _toggle_later(scene: GraphScene | None, name: str) -> None:
    # Collapsing replaces the item being clicked: do it once its event handler has returned.
    if scene is not None:
        QTimer.singleShot(0, scene, lambda: scene.toggle_group(name))


class _GroupItem(QGraphicsItem):
    """What a group's card and its frame share: a name, the texts shown (:class:`GroupText`,
    elided to fit by the subclass's ``_elide``) and how they are refreshed."""

    def __init__(self, name: str, style: CardStyle) -> None:
        super().__init__()
        self.name = name
        self.style = style
        self.text: GroupText | None = None
        self._shown: dict[str, str] = {}

    def _elide(self) -> None:
        raise NotImplementedError

    def refresh(self, text: GroupText) -> bool:
        """Show ``text``; False (nothing repainted) when it is shown already."""
        if text == self.text:
            return False
        self.text = text
        self._elide()
        self.update()
        return True

    def restyle(self) -> None:
        if self.text is not None:
            self._elide()
        self.update()

    def shown_texts(self) -> dict[str, str]:
        """The texts as painted (elided), by slot (the card: name, badge, layers, params, inputs,
        outputs, macs; the frame: name and summary)."""
        return dict(self._shown)

    def _graph_scene(self) -> GraphScene | None:
        return self.scene()  # type: ignore[return-value]

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        """A double-click collapses or expands the group (one undo step)."""
        if event.button() == Qt.MouseButton.LeftButton:
            _toggle_later(self._graph_scene(), self.name)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)


class GroupCardItem(_GroupItem):
    """A collapsed group: one card standing for all its layers. Its position is the card's
    centre, as :attr:`engine.design.Group.position` is."""

    def __init__(self, name: str, kind: GroupKind, style: CardStyle) -> None:
        super().__init__(name, style)
        self.kind = kind
        self.height = GROUP_HEIGHT
        self._bounds: QRectF | None = None
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsMovable)
        # No pixmap cache (as a layer's card): a cached card is painted again at every zoom step.
        self.setZValue(1.0)

    # --- contents ---------------------------------------------------------------------------

    def _elide(self) -> None:
        assert self.text is not None
        st, t = self.style, self.text
        inner = GROUP_WIDTH - 2 * PAD - (LOCK_SIZE + 4 if t.lock else 0.0)
        if t.repeats:  # the repeats pill is never cut: a sweep's range is what the card is about
            inner -= st.width(st.SMALL, t.repeats) + 10 + 4
        badge = st.width(st.SMALL, t.badge) + 10 if t.badge else 0.0
        # The name matters more than the badge: a name that would be cut short drops the badge
        # (the tooltip still says what kind of group it is).
        shown_badge = t.badge if st.width(st.NAME, t.name) <= inner - CHEVRON - badge else ""
        if not shown_badge:
            badge = 0.0
        macs = f"{t.errors} error{'s' if t.errors != 1 else ''}" if t.errors else t.macs
        self._shown = {
            "name": st.elide(st.NAME, t.name, inner - CHEVRON - badge),
            "badge": shown_badge,
            "layers": t.layers,
            "params": st.elide(st.SMALL, t.params, GROUP_WIDTH - 2 * PAD - st.width(st.SMALL, t.layers) - 8),
            "inputs": st.elide(st.SHAPE, t.inputs, GROUP_WIDTH - 2 * PAD),
            "outputs": st.elide(st.SHAPE, t.outputs, GROUP_WIDTH - 2 * PAD),
            "macs": st.elide(st.SMALL, macs, GROUP_WIDTH - 2 * PAD),
            "repeats": t.repeats,
        }

    def lock_rect(self) -> QRectF:
        """Where the padlock is drawn when some or all of the group's layers are frozen."""
        r = self.card_rect()
        return lock_box(QRectF(r.left(), r.top(), r.width(), HEADER))

    def repeats_rect(self) -> QRectF:
        """Where the ``× 1–3`` pill of a group a sweep repeats is drawn (empty when it is not)."""
        text = self._shown.get("repeats", "")
        if not text:
            return QRectF()
        r = self.card_rect()
        right = r.right() - (LOCK_SIZE + 4 if self.text is not None and self.text.lock else 0.0)
        width = self.style.width(self.style.SMALL, text) + 10
        return QRectF(right - PAD - width + 4, r.top() + 5, width, HEADER - 10)

    # --- geometry ---------------------------------------------------------------------------

    def card_rect(self) -> QRectF:
        return QRectF(-GROUP_WIDTH / 2, -self.height / 2, GROUP_WIDTH, self.height)

    def input_port_pos(self, call: int = 0, slot: int = 0) -> QPointF:
        """Where every connection into the group lands: the middle of its top edge."""
        return self.mapToScene(QPointF(0.0, -self.height / 2))

    def output_port_pos(self) -> QPointF:
        return self.mapToScene(QPointF(0.0, self.height / 2))

    def chevron_rect(self) -> QRectF:
        r = self.card_rect()
        return QRectF(r.left() + 4, r.top() + (HEADER - CHEVRON) / 2, CHEVRON, CHEVRON)

    def boundingRect(self) -> QRectF:
        if self._bounds is None:   # kept: Qt asks at every frame
            self._bounds = self.card_rect().adjusted(-6, -8 - 2 * STACK, 6 + 2 * STACK, 10)
        return self._bounds

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self.card_rect(), RADIUS, RADIUS)
        return path

    # --- painting ---------------------------------------------------------------------------

    def pen_colour(self) -> QColor:
        """The colour of the card's border: red when a layer in the group has an error."""
        return QColor(ERROR_COLOR) if self.text and self.text.errors else self.style.colors["border"]

    def lod_texts(self, lod: float) -> tuple[str, ...]:
        """What the card writes at scale ``lod`` when zoomed out: its name, then its layer count
        when there is room for both."""
        layers = (self.text.layers,) if self.text and self.text.layers != "…" else ()
        return lod_lines(self.style, self.name, layers, GROUP_WIDTH, self.height, lod)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        st, c = self.style, self.style.colors
        r = self.card_rect()
        header_colour = group_header_color(st)
        errors = bool(self.text and self.text.errors)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        detail = detail_for(lod)
        if detail is not Detail.FULL:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            painter.fillRect(r.translated(2 * STACK, -2 * STACK), header_colour.lighter(160))
            painter.fillRect(r.translated(STACK, -STACK), header_colour.lighter(130))
            painter.fillRect(r, QColor(ERROR_COLOR) if errors else header_colour)
            paint_block_marks(painter, r, self.isSelected(), c["selection"],
                              self.lod_texts(lod) if detail is Detail.NAME else (), lod,
                              QColor("#ffffff"), st.lod_font)
            if detail is Detail.NAME and self.text is not None and self.text.lock:
                paint_lod_lock(painter, r, lod, QColor("#ffffff"), closed=self.text.lock == "all")
            return

        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        # The stack: two cards peeking out behind, so a group never passes for one layer.
        for offset in (2 * STACK, STACK):
            painter.setPen(QPen(c["border"], 1.0))
            painter.setBrush(c["fill"])
            painter.drawRoundedRect(r.translated(offset, -offset), RADIUS, RADIUS)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(st.shadow)
        painter.drawRoundedRect(r.translated(0, 2), RADIUS, RADIUS)
        painter.setBrush(c["fill"])
        painter.drawRoundedRect(r, RADIUS, RADIUS)
        painter.fillPath(header_path(r), header_colour)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(self.pen_colour(), 2.0 if errors else 1.0))
        painter.drawRoundedRect(r, RADIUS, RADIUS)
        if self.isSelected():
            painter.setPen(QPen(c["selection"], 2.0))
            painter.drawRoundedRect(r.adjusted(-3.5, -3.5, 3.5, 3.5), RADIUS + 3, RADIUS + 3)
        _chevron(painter, self.chevron_rect(), False, QColor("#ffffff"))
        if self._shown:
            self._paint_texts(painter, r, errors)
        for y in (r.top(), r.bottom()):  # where connections enter and leave
            painter.setPen(QPen(c["fill"], 1.5))
            painter.setBrush(c["edge"])
            painter.drawEllipse(QPointF(0.0, y), PORT_RADIUS, PORT_RADIUS)

    def _paint_texts(self, painter: QPainter, r: QRectF, errors: bool) -> None:
        st, c, shown = self.style, self.style.colors, self._shown
        left, inner = r.left() + PAD, GROUP_WIDTH - 2 * PAD
        flags_l = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        flags_r = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        painter.setFont(st.name_font)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(QRectF(left + CHEVRON - 4, r.top(), inner - CHEVRON, HEADER), flags_l, shown["name"])
        lock = self.text.lock if self.text else ""
        if lock:
            paint_lock(painter, self.lock_rect(), QColor("#ffffff"), closed=lock == "all")
        right = r.right() - (LOCK_SIZE + 4 if lock else 0.0)
        if shown.get("repeats"):
            painter.setFont(st.small_font)
            width = st.width(st.SMALL, shown["repeats"]) + 10
            pill = self.repeats_rect()
            painter.setPen(QPen(QColor(255, 255, 255, 200), 1.0))
            painter.setBrush(search_color())
            painter.drawRoundedRect(pill, 4, 4)
            painter.setPen(QColor("#ffffff"))
            painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, shown["repeats"])
            right -= width + 4
        if shown["badge"]:
            painter.setFont(st.small_font)
            width = st.width(st.SMALL, shown["badge"]) + 10
            badge = QRectF(right - PAD - width + 4, r.top() + 5, width, HEADER - 10)
            painter.setPen(QPen(QColor(255, 255, 255, 170), 1.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(badge, 4, 4)
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, shown["badge"])
        top = r.top() + HEADER + 7
        painter.setFont(st.small_font)
        painter.setPen(c["muted"])
        painter.drawText(QRectF(left, top, inner, LINE), flags_l, shown["layers"])
        painter.drawText(QRectF(left, top, inner, LINE), flags_r, shown["params"])
        painter.setFont(st.shape_font)
        painter.setPen(c["text"])
        painter.drawText(QRectF(left, top + LINE, inner, LINE), flags_l, shown["inputs"])
        painter.drawText(QRectF(left, top + 2 * LINE, inner, LINE), flags_l, shown["outputs"])
        painter.setFont(st.small_font)
        painter.setPen(QColor(ERROR_COLOR) if errors else c["muted"])
        painter.drawText(QRectF(left, top + 3 * LINE, inner, LINE), flags_l, shown["macs"])

    # --- interaction ------------------------------------------------------------------------

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.chevron_rect().contains(event.pos()):
            _toggle_later(self._graph_scene(), self.name)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseMoveEvent(event)  # moves every selected card, visually only
        scene = self._graph_scene()
        if scene is not None:
            scene.selection_dragged(self)



class GroupFrameItem(_GroupItem):
    """An expanded group: a rounded frame behind its layers, with a header (chevron, name,
    summary). Only the header takes the mouse: a click selects the group, a drag moves all its
    layers, a double-click or the chevron collapses it; the rest of the frame lets clicks
    through to the canvas (a rubber band may start inside a frame)."""

    def __init__(self, name: str, depth: int, style: CardStyle) -> None:
        super().__init__(name, style)
        self.rect = QRectF()
        self._clicked = False
        self._drag_from: QPointF | None = None
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(-5.0 + 0.1 * depth)  # behind edges and cards, inner frames above outer ones

    def set_rect(self, rect: Rect) -> None:
        new = QRectF(rect[0], rect[1], rect[2] - rect[0], rect[3] - rect[1])
        if new != self.rect:
            self.prepareGeometryChange()
            widths_differ = new.width() != self.rect.width()
            self.rect = new
            if widths_differ and self.text is not None:
                self._elide()

    def _elide(self) -> None:
        assert self.text is not None
        st = self.style
        inner = max(0.0, self.rect.width() - 2 * PAD - CHEVRON - (LOCK_SIZE + 4 if self.text.lock else 0.0))
        name = st.elide(st.NAME, self.text.name, inner * 0.6)
        rest = inner - st.width(st.NAME, name) - 12
        self._shown = {"name": name, "summary": st.elide(st.SMALL, self.text.summary, max(0.0, rest))}

    def header_rect(self) -> QRectF:
        return QRectF(self.rect.left(), self.rect.top(), self.rect.width(), FRAME_HEADER)

    def lock_rect(self) -> QRectF:
        """Where the padlock is drawn when some or all of the group's layers are frozen."""
        return lock_box(self.header_rect())

    def chevron_rect(self) -> QRectF:
        return QRectF(self.rect.left() + 5, self.rect.top() + (FRAME_HEADER - CHEVRON) / 2, CHEVRON, CHEVRON)

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-4, -4, 4, 4)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.header_rect())
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        st, c = self.style, self.style.colors
        r = self.rect
        header_colour = group_header_color(st)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        detail = detail_for(lod)
        tint = QColor(header_colour)
        tint.setAlpha(22)
        border = QPen(c["selection"] if self.isSelected() else header_colour, 2.0 if self.isSelected() else 1.2)
        if detail is not Detail.FULL:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            border.setCosmetic(True)
            painter.setPen(border)
            painter.setBrush(tint)
            painter.drawRect(r)
            if detail is Detail.NAME:
                band = QRectF(r.left(), r.top(), r.width(), LOD_BAND_PX / lod)
                lines = lod_lines(st, self.name, (), r.width(), band.height(), lod)
                painter.fillRect(band, header_colour)
                paint_lod_texts(painter, lines, band, lod, QColor("#ffffff"), st.lod_font)
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        painter.setPen(border)
        painter.setBrush(tint)
        painter.drawRoundedRect(r, FRAME_RADIUS, FRAME_RADIUS)
        outline = QPainterPath()
        outline.addRoundedRect(r, FRAME_RADIUS, FRAME_RADIUS)
        header_band = QPainterPath()
        header_band.addRect(self.header_rect())
        painter.fillPath(outline.intersected(header_band), QBrush(header_colour))
        _chevron(painter, self.chevron_rect(), True, QColor("#ffffff"))
        if self._shown:
            left = self.chevron_rect().right() + 4
            flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
            painter.setFont(st.name_font)
            painter.setPen(QColor("#ffffff"))
            painter.drawText(QRectF(left, r.top(), r.width(), FRAME_HEADER), flags, self._shown["name"])
            painter.setFont(st.small_font)
            painter.setPen(QColor(255, 255, 255, 200))
            left += st.width(st.NAME, self._shown["name"]) + 12
            colour = QColor(ERROR_COLOR).lighter(130) if self.text and self.text.errors else QColor(255, 255, 255, 200)
            painter.setPen(colour)
            painter.drawText(QRectF(left, r.top(), r.right() - left - PAD, FRAME_HEADER), flags,
                             self._shown["summary"])
        if self.text is not None and self.text.lock:
            paint_lock(painter, self.lock_rect(), QColor("#ffffff"), closed=self.text.lock == "all")

    # --- interaction ------------------------------------------------------------------------

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        # Selected by a click on its header only: a rubber band over a few cards must not pick
        # up (and a Delete then remove) the whole group whose header it grazed.
        if change == QGraphicsItem.GraphicsItemChange.ItemSelectedChange and value and not self._clicked:
            return False
        return super().itemChange(change, value)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        if self.chevron_rect().contains(event.pos()):
            _toggle_later(self._graph_scene(), self.name)
            event.accept()
            return
        self._clicked = True
        try:
            super().mousePressEvent(event)  # selects the group (Ctrl adds it to the selection)
        finally:
            self._clicked = False
        self._drag_from = event.scenePos()
        event.accept()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        scene = self._graph_scene()
        if self._drag_from is None or scene is None:
            return
        delta = event.scenePos() - self._drag_from
        self._drag_from = event.scenePos()
        scene.drag_frame(self.name, delta)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self._drag_from = None
        self._clicked = True
        try:
            super().mouseReleaseEvent(event)  # a click without a drag selects only this group
        finally:
            self._clicked = False


