"""The layer palette: every catalogue layer, grouped and filterable, to drag onto the canvas.

Dragging a layer carries its Keras class name under :data:`LAYER_MIME`; double-clicking it or
pressing Enter emits :attr:`PaletteWidget.sigActivated`, which the main window turns into
"append after the selected layer".
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QMimeData, QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QDrag, QFont, QKeyEvent, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView, QFrame, QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget,
)

from engine.layers import CATALOGUE, GROUPS

from .canvas import LAYER_MIME
from .icons import group_icon, layer_icon, search_icon

KIND_ROLE = Qt.ItemDataRole.UserRole


def match_rank(kind: str, summary: str, text: str) -> int | None:
    """How well layer ``kind`` matches the filter ``text``: 0 exact name, 1 name prefix, 2 name
    contains every word, 3 only the description does; None when it does not match at all."""
    words = text.lower().split()
    name = kind.lower()
    query = "".join(words)
    if not words:
        return 3
    if name == query:
        return 0
    if name.startswith(query):
        return 1
    if all(w in name for w in words):
        return 2
    if all(w in f"{name} {summary.lower()}" for w in words):
        return 3
    return None


class _LayerTree(QTreeWidget):
    """The grouped list of layers; drags layers out and activates them on Enter."""

    sigActivated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setColumnCount(1)
        self.setRootIsDecorated(True)
        self.setIndentation(14)
        self.setUniformRowHeights(True)
        self.setIconSize(QSize(20, 20))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setAnimated(True)
        self.itemDoubleClicked.connect(self._on_double_clicked)

    # --- drag -----------------------------------------------------------------------------

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME, "text/plain"]

    # Qt takes a null QMimeData as "no drag"; the stub says mimeData never returns one.
    def mimeData(self, items: Sequence[QTreeWidgetItem]) -> QMimeData | None:  # type: ignore[override]
        """The layer kind of the first layer item, as UTF-8 under LAYER_MIME and as text."""
        kinds = [item.data(0, KIND_ROLE) for item in items if item.data(0, KIND_ROLE)]
        if not kinds:
            return None
        mime = QMimeData()
        mime.setData(LAYER_MIME, kinds[0].encode("utf-8"))
        mime.setText(kinds[0])
        return mime

    def startDrag(self, supportedActions: Qt.DropAction) -> None:
        item = self.currentItem()
        if item is None:
            return
        mime = self.mimeData([item])
        if mime is None:
            return
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.setPixmap(self._drag_pixmap(item))
        drag.setHotSpot(QPoint(12, 12))
        drag.exec(Qt.DropAction.CopyAction)

    def _drag_pixmap(self, item: QTreeWidgetItem) -> QPixmap:
        """A chip with the layer's icon and name, drawn at the screen's pixel ratio."""
        ratio = self.devicePixelRatioF()
        font = QFont(self.font())
        font.setBold(True)
        text = item.text(0)
        width = self.fontMetrics().horizontalAdvance(text) + 48
        pixmap = QPixmap(round(width * ratio), round(28 * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        p = QPainter(pixmap)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.setPen(pal.mid().color())
        p.setBrush(pal.base())
        p.drawRoundedRect(QRectF(0.5, 0.5, width - 1, 27), 6, 6)
        item.icon(0).paint(p, 4, 4, 20, 20)
        p.setFont(font)
        p.setPen(pal.text().color())
        p.drawText(30, 0, width - 34, 28, Qt.AlignmentFlag.AlignVCenter, text)
        p.end()
        return pixmap

    # --- activation -----------------------------------------------------------------------

    def _on_double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        kind = item.data(0, KIND_ROLE)
        if kind:
            self.sigActivated.emit(kind)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            item = self.currentItem()
            if item is not None and item.data(0, KIND_ROLE):
                self.sigActivated.emit(item.data(0, KIND_ROLE))
                return
            if item is not None:
                item.setExpanded(not item.isExpanded())
                return
        super().keyPressEvent(event)


class _FilterEdit(QLineEdit):
    """The filter box: Escape clears it, Down moves into the list, Enter activates."""

    sigDown = Signal()
    sigEnter = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Escape and self.text():
            self.clear()
            return
        if key == Qt.Key.Key_Down:
            self.sigDown.emit()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.sigEnter.emit()
            return
        super().keyPressEvent(event)


class PaletteWidget(QWidget):
    """Every catalogue layer in palette groups, with a filter box and a short description."""

    sigActivated = Signal(str)  # a layer kind the user wants added (double-click / Enter)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter_edit = _FilterEdit(self)
        self.filter_edit.setPlaceholderText("Filter layers…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.addAction(search_icon(), QLineEdit.ActionPosition.LeadingPosition)
        self.filter_edit.textChanged.connect(self.set_filter)
        self.filter_edit.sigDown.connect(self._focus_list)
        self.filter_edit.sigEnter.connect(self._activate_from_filter)

        self.tree = _LayerTree(self)
        self.tree.sigActivated.connect(self.sigActivated)
        self.tree.currentItemChanged.connect(self._show_description)

        self.empty_label = QLabel("No layer matches this filter.", self)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setStyleSheet("color: palette(placeholder-text);")
        self.empty_label.hide()

        self.description = QLabel(self)
        self.description.setWordWrap(True)
        self.description.setTextFormat(Qt.TextFormat.RichText)
        self.description.setContentsMargins(8, 6, 8, 8)
        self.description.setMinimumHeight(self.fontMetrics().lineSpacing() * 3 + 14)
        self.description.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        top = QVBoxLayout()
        top.setContentsMargins(6, 6, 6, 6)
        top.addWidget(self.filter_edit)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty_label, 1)
        layout.addWidget(line)
        layout.addWidget(self.description)

        self._groups: dict[str, QTreeWidgetItem] = {}
        self._kinds: dict[str, list[str]] = {}  # each group's layers in catalogue order
        self._order: dict[str, list[str]] = {}  # each group's layers as the tree shows them
        self._group_order: list[str] = []       # the groups as the tree shows them
        self._items: dict[str, QTreeWidgetItem] = {}
        self._expanded_before_filter: dict[str, bool] | None = None
        self._populate()
        self._show_description(None)

    # --- public ---------------------------------------------------------------------------

    def item_for(self, kind: str) -> QTreeWidgetItem | None:
        """The tree item of a layer kind (for tests and for selecting programmatically)."""
        return self._items.get(kind)

    def visible_kinds(self) -> list[str]:
        """Layer kinds currently shown (not hidden by the filter), in tree order: while
        filtering, the best matches first (see :func:`match_rank`)."""
        return [kind for group in self._group_order if not self._groups[group].isHidden()
                for kind in self._order[group] if not self._items[kind].isHidden()]

    def set_filter(self, text: str) -> None:
        """Show only layers whose name or summary contains every word of ``text``."""
        if self.filter_edit.text() != text:
            self.filter_edit.setText(text)  # re-enters through textChanged
            return
        words = text.lower().split()
        if words and self._expanded_before_filter is None:
            self._expanded_before_filter = {g: item.isExpanded() for g, item in self._groups.items()}
        # Best matches first ("add": Add above ZeroPadding2D, the Merge group above Reshaping).
        # Reorder before hiding: a tree item taken out and put back forgets it was hidden.
        ranks = {kind: match_rank(kind, CATALOGUE[kind].summary, text) for kind in self._items}
        def order(kind: str) -> int:
            rank = ranks[kind]
            return 4 if rank is None else rank
        group_rank = {g: min(order(k) for k in kinds) for g, kinds in self._kinds.items()}
        self._order_groups(sorted(self._groups, key=lambda g: group_rank[g]))
        any_shown = False
        for group, group_item in self._groups.items():
            self._order_children(group, sorted(self._kinds[group], key=order))
            shown = 0
            for kind in self._kinds[group]:
                self._items[kind].setHidden(ranks[kind] is None)
                shown += ranks[kind] is not None
            group_item.setHidden(shown == 0)
            any_shown |= shown > 0
            if words:
                group_item.setExpanded(True)
        if not words and self._expanded_before_filter is not None:
            for group, expanded in self._expanded_before_filter.items():
                self._groups[group].setExpanded(expanded)
            self._expanded_before_filter = None
        self.tree.setVisible(any_shown)
        self.empty_label.setVisible(not any_shown)
        if words:  # Enter in the filter adds the best match
            first = self._first_visible()
            if first is not None:
                self.tree.setCurrentItem(first)

    # --- internals ------------------------------------------------------------------------

    def _populate(self) -> None:
        bold = QFont(self.tree.font())
        bold.setBold(True)
        by_group: dict[str, list[str]] = {g: [] for g in GROUPS}
        for kind, spec in CATALOGUE.items():
            by_group.setdefault(spec.group, []).append(kind)
        for group, kinds in by_group.items():
            if not kinds:
                continue
            group_item = QTreeWidgetItem([group])
            group_item.setIcon(0, group_icon(group))
            group_item.setFont(0, bold)
            group_item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            group_item.setToolTip(0, f"{group}: {len(kinds)} layer{'s' if len(kinds) != 1 else ''}")
            self.tree.addTopLevelItem(group_item)
            self._groups[group] = group_item
            self._kinds[group] = list(kinds)
            self._order[group] = list(kinds)
            self._group_order.append(group)
            for kind in kinds:
                item = QTreeWidgetItem([kind])
                item.setIcon(0, layer_icon(kind))
                item.setToolTip(0, CATALOGUE[kind].summary)
                item.setData(0, KIND_ROLE, kind)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)
                group_item.addChild(item)
                self._items[kind] = item
            group_item.setExpanded(True)

    def _order_children(self, group: str, kinds: list[str]) -> None:
        if self._order[group] == kinds:
            return
        self._order[group] = kinds
        group_item = self._groups[group]
        group_item.takeChildren()
        group_item.addChildren([self._items[k] for k in kinds])

    def _order_groups(self, groups: list[str]) -> None:
        tree = self.tree
        if self._group_order == groups:
            return
        self._group_order = groups
        was_current = tree.currentItem()
        expanded = {g: item.isExpanded() for g, item in self._groups.items()}
        while tree.topLevelItemCount():
            tree.takeTopLevelItem(0)
        tree.addTopLevelItems([self._groups[g] for g in groups])
        for g, item in self._groups.items():
            item.setExpanded(expanded[g])
        if was_current is not None:
            tree.setCurrentItem(was_current)

    def _first_visible(self) -> QTreeWidgetItem | None:
        for kind in self.visible_kinds():
            return self._items[kind]
        return None

    def _focus_list(self) -> None:
        current = self.tree.currentItem()
        if current is None or current.isHidden() or not current.data(0, KIND_ROLE):
            current = self._first_visible()
        if current is not None:
            self.tree.setCurrentItem(current)
        self.tree.setFocus(Qt.FocusReason.TabFocusReason)

    def _activate_from_filter(self) -> None:
        current = self.tree.currentItem()
        if current is None or current.isHidden() or not current.data(0, KIND_ROLE):
            current = self._first_visible()
        if current is not None and self.filter_edit.text().strip():
            self.sigActivated.emit(current.data(0, KIND_ROLE))

    def _show_description(self, item: QTreeWidgetItem | None, _previous: object = None) -> None:
        kind = item.data(0, KIND_ROLE) if item is not None else None
        if not kind:
            self.description.setText("Drag a layer onto the canvas, or double-click it to add it "
                                     "after the selected layer.")
            return
        spec = CATALOGUE[kind]
        self.description.setText(f"<b>{kind}</b> · {spec.group}<br>{spec.summary}")
