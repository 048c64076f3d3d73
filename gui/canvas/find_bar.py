"""Find on the canvas (Ctrl+F): a field over the canvas that steps through the layers and groups
whose name or layer type contains what was typed.

:func:`find_matches` is the whole rule, without Qt. The bar shows how many match; Enter (or F3)
goes to the next one, Shift+Enter (or Shift+F3) to the previous one, wrapping around. Going to a
layer is :meth:`GraphView.show_layer`: it expands the collapsed groups around it, selects it and
centres it at a readable zoom. Esc closes the bar and gives the keyboard back to the canvas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from PySide6.QtCore import QEvent, QObject, QRect, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QToolButton

from engine.design import Design

from ..widgets import mute

if TYPE_CHECKING:  # pragma: no cover
    from .view import GraphView

WIDTH = 380
CORNER = 12
NO_MATCH = "no match"


class Match(NamedTuple):
    """One thing Find can go to: a layer or a group, by name."""

    what: str    # "layer" or "group"
    name: str


def find_matches(design: Design, query: str) -> list[Match]:
    """The layers whose name or type (Keras class), and the groups whose name, contain
    ``query`` (case-insensitive), in design order: a group comes just before its first layer.
    An empty query matches nothing."""
    needle = query.strip().casefold()
    if not needle:
        return []
    matches: list[Match] = []
    listed: set[str] = set()
    for node in design.nodes.values():
        for group in reversed(design.groups_of(node.name)):   # outermost first
            if group not in listed:
                listed.add(group)
                if needle in group.casefold():
                    matches.append(Match("group", group))
        if needle in node.name.casefold() or needle in node.kind.casefold():
            matches.append(Match("layer", node.name))
    for group in design.groups:  # groups without layers are still named somewhere
        if group not in listed and needle in group.casefold():
            matches.append(Match("group", group))
    return matches


class FindBar(QFrame):
    """The find field, count and arrows, floating in the top-right corner of ``view``."""

    def __init__(self, view: GraphView) -> None:
        super().__init__(view)
        self.view = view
        self.setObjectName("findBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.field = QLineEdit()
        self.field.setPlaceholderText("Find layer, type or group")
        self.field.setClearButtonEnabled(True)
        self.field.installEventFilter(self)
        self.count = QLabel()
        mute(self.count)
        self.previous_button = self._button("▲", "Previous match (Shift+Enter, Shift+F3)", self.find_previous)
        self.next_button = self._button("▼", "Next match (Enter, F3)", self.find_next)
        self.close_button = self._button("×", "Close (Esc)", self.close_bar)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 4, 4, 4)
        row.setSpacing(4)
        row.addWidget(self.field, 1)
        row.addWidget(self.count)
        for button in (self.previous_button, self.next_button, self.close_button):
            row.addWidget(button)
        self._matches: list[Match] = []
        self._current = -1                  # index in _matches of the match shown, -1: none yet
        self._stale = True                  # the design changed since _matches was computed
        self.field.textChanged.connect(self._on_text_changed)
        document = view.graph_scene.document
        for signal in (document.designReset, document.nodeAdded, document.nodeRemoved, document.nodeRenamed,
                       document.groupsChanged):
            signal.connect(self._on_design_changed)
        self.hide()

    def _button(self, text: str, tip: str, slot) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keyboard stays in the field
        button.clicked.connect(slot)
        return button

    def place(self, area: QRect) -> None:
        """Sit in the top-right corner of ``area`` (the view's rectangle)."""
        width = min(WIDTH, max(160, area.width() - 2 * CORNER))
        self.resize(width, self.sizeHint().height())
        self.move(area.right() + 1 - CORNER - width, area.top() + CORNER)

    # --- opening and closing ------------------------------------------------------------------

    def open_bar(self) -> None:
        """Show the bar with the field focused and its text selected (typing replaces it)."""
        self.place(self.view.rect())
        self.show()
        self.raise_()
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()
        self._update_count()

    def close_bar(self) -> None:
        self.hide()
        self.view.setFocus(Qt.FocusReason.OtherFocusReason)

    # --- matches ---------------------------------------------------------------------------------

    def matches(self) -> list[Match]:
        """What the field's text matches in the design as it is now."""
        if self._stale:
            current = self._matches[self._current] if 0 <= self._current < len(self._matches) else None
            self._matches = find_matches(self.view.graph_scene.document.design, self.field.text())
            self._current = self._matches.index(current) if current in self._matches else -1
            self._stale = False
        return self._matches

    def current(self) -> Match | None:
        """The match last gone to (None before Enter, and after the text changed)."""
        matches = self.matches()
        return matches[self._current] if 0 <= self._current < len(matches) else None

    def count_text(self) -> str:
        """What the bar says: '', 'no match', '17 matches' or '3 of 17'."""
        matches = self.matches()
        if not self.field.text().strip():
            return ""
        if not matches:
            return NO_MATCH
        if self._current < 0:
            return f"{len(matches)} match{'es' if len(matches) != 1 else ''}"
        return f"{self._current + 1} of {len(matches)}"

    def _update_count(self) -> None:
        self.count.setText(self.count_text())
        found = bool(self.matches())
        self.previous_button.setEnabled(found)
        self.next_button.setEnabled(found)

    def _on_text_changed(self, _text: str) -> None:
        self._stale = True
        self._current = -1
        self._matches = []
        self._update_count()

    def _on_design_changed(self, *_args: object) -> None:
        self._stale = True
        if self.isVisible():
            self._update_count()

    # --- stepping ------------------------------------------------------------------------------

    def find_next(self) -> None:
        self._step(+1)

    def find_previous(self) -> None:
        self._step(-1)

    def _step(self, direction: int) -> None:
        if not self.isVisible():
            self.open_bar()
        matches = self.matches()
        if not matches:
            self._update_count()
            return
        if self._current < 0:
            self._current = 0 if direction > 0 else len(matches) - 1
        else:
            self._current = (self._current + direction) % len(matches)
        self._go_to(matches[self._current])
        self._update_count()

    def _go_to(self, match: Match) -> None:
        view = self.view
        if match.what == "layer":
            if view.show_layer(match.name) is None:
                view.graph_scene.sigMessage.emit(f"{match.name} is not shown on the canvas")
            return
        scene = view.graph_scene
        design = scene.document.design
        if match.name not in design.groups:
            return
        # A group inside a collapsed group is shown by expanding the groups around it.
        outer = design.group_chain(design.groups[match.name].parent)
        scene.set_groups_collapsed([g for g in outer if design.groups[g].collapsed], False)
        item = scene.group_card(match.name) or scene.group_frame(match.name)
        if item is None:
            scene.sigMessage.emit(f"group {match.name} is not shown on the canvas")
            return
        scene.select_group(match.name)
        view.focus_on(item)

    # --- keys ------------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.field and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key, shift = event.key(), bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._step(-1 if shift else +1)
                return True
            if key == Qt.Key.Key_Escape:
                self.close_bar()
                return True
        return super().eventFilter(watched, event)
