"""Search ranges in forms: the "…" toggle beside a field and the range editor it opens.

A field a sweep may vary (a layer argument, a group's repeat count, a training setting) gets a
:class:`SearchToggle`. Checking it opens a :class:`RangeEditor` under the field, started around
the field's current value (:func:`default_range`); the editor announces every range the user
settles on (``edited``), checked or not: its owner shows :meth:`SearchRange.problem` under the
field and applies only a range without one. Nothing here edits a design; the owner turns an edit
into one undo step (:func:`push_search`, :func:`push_repeats`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, cast

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QMouseEvent
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QMenu, QPushButton, QSizePolicy, QSpinBox,
    QToolButton, QVBoxLayout, QWidget,
)

from engine.editing import SetGroup, SetSearch
from engine.errors import ConvasError
from engine.search_range import RangeKind, SearchRange

from .theme import ERROR_COLOR, is_dark
from .widgets import NoWheelMixin, NumberSpinBox, SteppingMixin, sentence

TOGGLE_TIP = "Search a range of values in a sweep"
TOGGLE_TEXT = "…"  # U+2026: the midline ⋯ is missing from default Windows fonts
SEARCH_COLOR_LIGHT = "#6d4aff"   # ranges on cards and in forms: a violet no layer family uses
SEARCH_COLOR_DARK = "#a18bff"
INT_LIMIT = 2 ** 31 - 1
FLOAT_LIMIT = 1e12
RANGE_MODE, LIST_MODE = "range", "list"
MAX_CHECKBOXES = 6               # more choices than this are ticked in a drop-down


def search_color() -> QColor:
    """The accent of searched values: readable on the card fill of the appearance in use."""
    return QColor(SEARCH_COLOR_DARK if is_dark() else SEARCH_COLOR_LIGHT)


# --- the range a field starts with --------------------------------------------------------------

def _clamp(value: float, minimum: float | None, maximum: float | None) -> float:
    if minimum is not None:
        value = max(value, minimum)
    if maximum is not None:
        value = min(value, maximum)
    return value


def _first(value: Any) -> Any:
    """A kernel size (3, 3) ranges as the 3 of every axis."""
    if isinstance(value, (tuple, list)) and value:
        return value[0]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def default_range(kinds: Sequence[RangeKind], value: Any, *, minimum: float | None = None,
                  maximum: float | None = None, choices: Sequence[Any] = (),
                  log: bool | None = None) -> SearchRange:
    """The range a field's toggle starts with, around its current ``value``: 32 filters →
    16–64 step 16, a kernel of 3 → 1–5, a rate of 0.25 → 0–0.5, a learning rate (``log``, or
    any tiny positive number) → ×0.1–×10 on a log scale; a choice → its choices (the current one
    first); true/false → both. It may be invalid (text with one value): the field says why."""
    value = _first(value)
    if RangeKind.INT in kinds:
        return _int_range(value, minimum, maximum)
    if RangeKind.FLOAT in kinds:
        return _float_range(value, minimum, maximum, log)
    options = list(choices)
    if (options and all(isinstance(c, bool) for c in options)) or isinstance(value, bool):
        return SearchRange(RangeKind.CHOICE, choices=(False, True))
    if options:
        if value in options:
            options.remove(value)
            options.insert(0, value)
        picked = options if len(options) <= 4 else options[:2]
        return SearchRange(RangeKind.CHOICE, choices=tuple(picked))
    return SearchRange(RangeKind.CHOICE, choices=(value,) if value not in (None, "") else ())


def _num(value: float) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    return f"{value:g}"


def _int_range(value: Any, minimum: float | None, maximum: float | None) -> SearchRange:
    v = int(value) if _is_number(value) else int(minimum if minimum is not None and minimum > 1 else 1)
    if v >= 8:
        low, high, step = v // 2, v * 2, v // 2
    else:
        low, high, step = v - 2, v + 2, 1
    low = int(_clamp(low, minimum, maximum))
    high = int(_clamp(high, minimum, maximum))
    if high <= low:
        high = low + 1
    if step > high - low or (high - low) % step:
        step = 1
    return SearchRange(RangeKind.INT, low, high, step)


def _float_range(value: Any, minimum: float | None, maximum: float | None, log: bool | None) -> SearchRange:
    v = float(value) if _is_number(value) else 0.0
    if log or (log is None and 0 < v < 0.01):
        base = v if v > 0 else 1e-3
        low, high = base / 10, base * 10
        if maximum is not None:
            high = min(high, maximum)
        if minimum is not None:
            low = max(low, minimum)
        return SearchRange(RangeKind.FLOAT, low, high, log=low > 0)
    if v > 0:
        low, high = 0.0, 2 * v
    elif v < 0:
        low, high = 2 * v, 0.0
    else:
        low, high = 0.0, 0.5
    low, high = _clamp(low, minimum, maximum), _clamp(high, minimum, maximum)
    if maximum is not None and high >= maximum and v < maximum and maximum - v < 1:
        high = round(v + (maximum - v) / 2, 6)
    return SearchRange(RangeKind.FLOAT, float(low), float(high))


def _choice_text(choice: Any) -> str:
    if isinstance(choice, bool):
        return "true" if choice else "false"
    return "none" if choice is None else str(choice)


class _StayOpenMenu(QMenu):
    """A menu of checkable choices that stays open while they are ticked."""

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        action = self.activeAction()
        if action is not None and action.isCheckable() and action.isEnabled():
            action.trigger()
            return
        super().mouseReleaseEvent(event)


def list_text(values: Sequence[Any]) -> str:
    """The values of a list as typed: ``16, 32, 64``."""
    return ", ".join(_num(v) if _is_number(v) else ("none" if v is None else str(v)) for v in values)


def parse_list(text: str, integer: bool | None) -> tuple[Any, ...]:
    """The values of a typed list (``integer``: whole numbers; False: numbers; None: text);
    :class:`ConvasError` naming the entry that is not one."""
    items = [part.strip() for part in text.split(",") if part.strip()]
    if integer is None:
        return tuple(items)
    values: list[Any] = []
    for item in items:
        try:
            number = float(item)
        except ValueError:
            raise ConvasError(f"{item!r} is not a number; separate the values with commas") from None
        if integer:
            if not number.is_integer():
                raise ConvasError(f"{item} is not a whole number")
            values.append(int(number))
        else:
            if not math.isfinite(number):
                raise ConvasError(f"{item} is not a finite number")
            values.append(number)
    return tuple(values)


# --- the widgets ------------------------------------------------------------------------------

class SearchToggle(QToolButton):
    """The "…" beside a field: checked while the field holds a search range."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setText(TOGGLE_TEXT)
        self.setCheckable(True)
        self.setAutoRaise(True)
        self.setToolTip(TOGGLE_TIP)
        self.setAccessibleName("Search range")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self._restyle()
        self.toggled.connect(lambda _on: self._restyle())

    def _restyle(self) -> None:
        accent = search_color().name()
        if self.isChecked():
            self.setStyleSheet(f"QToolButton {{ color: white; background: {accent}; border: none; "
                               f"border-radius: 4px; padding: 0px 4px; font-weight: bold; }}")
        else:
            self.setStyleSheet("QToolButton { padding: 0px 4px; font-weight: bold; }")


class _IntBox(SteppingMixin, NoWheelMixin, QSpinBox):
    """A whole number of a range; knows when it is being stepped (quick steps merge)."""

    def __init__(self, lo: int, hi: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRange(lo, hi)
        self.setKeyboardTracking(False)
        self.setAccelerated(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(48)


class _FloatBox(SteppingMixin, NumberSpinBox):
    """A number of a range, typed as written (0.001, 1e-05)."""

    def __init__(self, lo: float, hi: float, parent: QWidget | None = None) -> None:
        super().__init__(lo, hi, digits=6, parent=parent)
        self.setStepType(NumberSpinBox.StepType.AdaptiveDecimalStepType)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(56)


class RangeEditor(QWidget):
    """Edits one search range: low, high (and step, for whole numbers) and a log scale, or a
    typed list of values, for a number; checkable choices for a choice; a typed list for text.

    ``edited`` carries what the user settled on: a :class:`SearchRange` (not yet checked) or,
    for a list that does not parse, the sentence saying why (a ``str``). :meth:`set_range`
    shows a range without emitting."""

    edited = Signal(object)

    def __init__(self, kinds: Sequence[RangeKind], *, minimum: float | None = None,
                 maximum: float | None = None, choices: Sequence[Any] = (), log: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.allow_log = log  # False: no log scale offered (a repeat count)
        self.kinds = tuple(kinds)
        self.numeric: RangeKind | None = next((k for k in self.kinds if k is not RangeKind.CHOICE), None)
        self.choices = tuple(choices)
        self._list_shown = ""
        self.setObjectName("rangeEditor")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # draws its accent edge
        accent = search_color().name()
        self.setStyleSheet(f"QWidget#rangeEditor {{ border-left: 2px solid {accent}; }}")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 2, 0, 2)
        outer.setSpacing(4)
        self.low: QSpinBox | NumberSpinBox | None = None
        self.high: QSpinBox | NumberSpinBox | None = None
        self.step: _IntBox | None = None
        self.log_check: QCheckBox | None = None
        self.mode_combo: QComboBox | None = None
        self.checks: list[QCheckBox | QAction] = []   # one per choice, checked when it is tried
        self.choice_button: QPushButton | None = None  # many choices: a drop-down of them
        self.list_edit: QLineEdit | None = None

        if self.numeric is not None:
            self._build_numeric(outer, minimum, maximum)
        elif len(self.choices) > MAX_CHECKBOXES:
            self._build_choice_menu(outer)
        elif self.choices:
            grid = QGridLayout()
            grid.setContentsMargins(0, 0, 0, 0)
            grid.setHorizontalSpacing(10)
            grid.setVerticalSpacing(2)
            for i, choice in enumerate(self.choices):
                box = QCheckBox(_choice_text(choice), self)
                box.toggled.connect(lambda _on: self._emit())
                grid.addWidget(box, i // 3, i % 3)
                self.checks.append(box)
            grid.setColumnStretch(3, 1)
            outer.addLayout(grid)
        else:
            self.list_edit = self._make_list_edit("values, separated by commas")
            outer.addWidget(self.list_edit)

    # --- building ---------------------------------------------------------------------------

    def _build_numeric(self, outer: QVBoxLayout, minimum: float | None, maximum: float | None) -> None:
        integer = self.numeric is RangeKind.INT
        if integer:
            lo = -INT_LIMIT if minimum is None else math.ceil(minimum)
            hi = INT_LIMIT if maximum is None else int(maximum)
            self.low, self.high = _IntBox(lo, hi, self), _IntBox(lo, hi, self)
        else:
            lo_f = -FLOAT_LIMIT if minimum is None else float(minimum)
            hi_f = FLOAT_LIMIT if maximum is None else float(maximum)
            self.low, self.high = _FloatBox(lo_f, hi_f, self), _FloatBox(lo_f, hi_f, self)
        self.low.setAccessibleName("Low")
        self.low.setToolTip("The smallest value a sweep tries")
        self.high.setAccessibleName("High")
        self.high.setToolTip("The largest value a sweep tries")
        self.range_row = QWidget(self)
        row = QHBoxLayout(self.range_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        row.addWidget(self.low, 1)
        row.addWidget(QLabel("–", self.range_row))
        row.addWidget(self.high, 1)
        outer.addWidget(self.range_row)

        self.list_edit = self._make_list_edit("e.g. 16, 32, 64" if integer else "e.g. 0.1, 0.25, 0.5")
        outer.addWidget(self.list_edit)

        options = QHBoxLayout()
        options.setContentsMargins(0, 0, 0, 0)
        options.setSpacing(6)
        if integer:
            self.step_label = QLabel("step", self)
            self.step = _IntBox(1, INT_LIMIT, self)
            self.step.setAccessibleName("Step")
            self.step.setToolTip("Try every step-th value from low to high")
            self.step.setMaximumWidth(90)
            options.addWidget(self.step_label)
            options.addWidget(self.step, 1)
        self.log_check = QCheckBox("log", self)
        self.log_check.setToolTip("Sample on a log scale (learning rates, sizes that double)")
        options.addWidget(self.log_check)
        options.addStretch(1)
        self.mode_combo = QComboBox(self)
        self.mode_combo.addItem("Range", RANGE_MODE)
        self.mode_combo.addItem("List", LIST_MODE)
        self.mode_combo.setToolTip("A range from low to high, or a list of values to try")
        self.mode_combo.setAccessibleName("Range or list")
        self.mode_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        options.addWidget(self.mode_combo)
        outer.addLayout(options)

        for spin in (self.low, self.high, self.step):
            if spin is not None:
                spin.valueChanged.connect(lambda _v: self._emit())
        self.log_check.toggled.connect(self._on_log)
        self.mode_combo.currentIndexChanged.connect(self._on_mode)
        self._show_mode(RANGE_MODE)

    def _build_choice_menu(self, outer: QVBoxLayout) -> None:
        """Many choices (activations): a drop-down button listing them, each checkable, that
        says which are tried."""
        button = self.choice_button = QPushButton(self)
        button.setStyleSheet("QPushButton { text-align: left; padding: 3px 8px; }")
        button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        button.setToolTip("The choices a sweep tries (tick two or more)")
        button.setAccessibleName("Choices")
        menu = _StayOpenMenu(button)
        for choice in self.choices:
            action = menu.addAction(_choice_text(choice))
            action.setCheckable(True)
            action.toggled.connect(lambda _on: self._choices_toggled())
            self.checks.append(action)
        button.setMenu(menu)
        outer.addWidget(button)

    def _choices_toggled(self) -> None:
        self._show_choice_text()
        self._emit()

    def _show_choice_text(self) -> None:
        if self.choice_button is None:
            return
        picked = [a.text() for a in self.checks if a.isChecked()]
        text = " | ".join(picked) if picked else "none chosen"
        metrics = self.choice_button.fontMetrics()
        self.choice_button.setText(metrics.elidedText(text, Qt.TextElideMode.ElideRight, 220))
        self.choice_button.setToolTip("The choices a sweep tries (tick two or more): " + text)

    def _make_list_edit(self, placeholder: str) -> QLineEdit:
        edit = QLineEdit(self)
        edit.setPlaceholderText(placeholder)
        edit.setAccessibleName("Values")
        edit.setToolTip("The values a sweep tries, separated by commas (Enter to apply)")
        edit.editingFinished.connect(self._on_list_finished)
        return edit

    # --- reading and showing -----------------------------------------------------------------

    @property
    def mode(self) -> str:
        """"range" or "list" for a number (a choice: "list")."""
        if self.mode_combo is None:
            return LIST_MODE
        return str(self.mode_combo.currentData())

    def is_stepping(self) -> bool:
        """True while a spin box steps (arrows, wheel): quick steps join one undo step."""
        return any(getattr(s, "stepping", False) for s in (self.low, self.high, self.step))

    def set_range(self, rng: SearchRange) -> None:
        """Show ``rng`` (no ``edited``); a list the user is typing is left alone."""
        widgets = [w for w in (self.low, self.high, self.step, self.log_check, self.mode_combo,
                               self.list_edit, *self.checks) if w is not None]
        blocked = [w.blockSignals(True) for w in widgets]
        try:
            if rng.kind is RangeKind.CHOICE:
                if self.checks:
                    for box, choice in zip(self.checks, self.choices):
                        box.setChecked(any(type(choice) is type(c) and choice == c for c in rng.choices))
                else:
                    self._set_list(rng.choices)
                    self._show_mode(LIST_MODE)
            else:
                assert self.low is not None and self.high is not None and self.log_check is not None
                self.low.setValue(rng.low)  # type: ignore[arg-type]
                self.high.setValue(rng.high)  # type: ignore[arg-type]
                if self.step is not None:
                    self.step.setValue(int(rng.step or 1))
                self.log_check.setChecked(rng.log)
                self._show_mode(RANGE_MODE)
        finally:
            for w, b in zip(widgets, blocked):
                w.blockSignals(b)
        self._sync_log()
        self._show_choice_text()

    def _set_list(self, values: Sequence[Any]) -> None:
        assert self.list_edit is not None
        if self.list_edit.hasFocus() and self.list_edit.isModified():
            return
        self._list_shown = list_text(values)
        self.list_edit.setText(self._list_shown)
        self.list_edit.setCursorPosition(0)

    def _show_mode(self, mode: str) -> None:
        if self.mode_combo is None:
            return
        index = self.mode_combo.findData(mode)
        if self.mode_combo.currentIndex() != index:
            blocked = self.mode_combo.blockSignals(True)
            self.mode_combo.setCurrentIndex(index)
            self.mode_combo.blockSignals(blocked)
        ranged = mode == RANGE_MODE
        self.range_row.setVisible(ranged)
        assert self.list_edit is not None and self.log_check is not None
        self.list_edit.setVisible(not ranged)
        self.log_check.setVisible(ranged and self.allow_log)
        if self.step is not None:
            self.step.setVisible(ranged)
            self.step_label.setVisible(ranged)

    def _sync_log(self) -> None:
        # Optuna samples a log scale without a step: the step field says so by graying out.
        if self.step is not None and self.log_check is not None:
            self.step.setEnabled(not self.log_check.isChecked())
            self.step_label.setEnabled(not self.log_check.isChecked())

    def current(self) -> SearchRange | str:
        """The range the editor shows (not checked), or why its list does not parse."""
        if self.checks:
            return SearchRange(RangeKind.CHOICE, choices=tuple(
                c for c, box in zip(self.choices, self.checks) if box.isChecked()))
        if self.mode == LIST_MODE:
            assert self.list_edit is not None
            integer = None if self.numeric is None else self.numeric is RangeKind.INT
            try:
                return SearchRange(RangeKind.CHOICE, choices=parse_list(self.list_edit.text(), integer))
            except ConvasError as exc:
                return str(exc)
        assert self.low is not None and self.high is not None and self.log_check is not None
        log = self.log_check.isChecked()
        if self.numeric is RangeKind.INT:
            step = 1 if log or self.step is None else self.step.value()
            return SearchRange(RangeKind.INT, int(self.low.value()), int(self.high.value()), step, log)
        return SearchRange(RangeKind.FLOAT, float(self.low.value()), float(self.high.value()), None, log)

    # --- edits -------------------------------------------------------------------------------

    def _emit(self) -> None:
        self.edited.emit(self.current())

    def _on_log(self, _on: bool) -> None:
        self._sync_log()
        self._emit()

    def _on_mode(self, _index: int) -> None:
        """Switching between a range and a list keeps the values: a range's values become the
        list (or its ends, when there are many), a list's smallest and largest the range."""
        mode = self.mode
        assert self.low is not None and self.high is not None
        if mode == LIST_MODE:
            values: list[Any] | None = None
            if self.numeric is RangeKind.INT and not (self.log_check and self.log_check.isChecked()):
                step = self.step.value() if self.step is not None else 1
                low, high = int(self.low.value()), int(self.high.value())
                count = (high - low) // max(1, step) + 1
                if 0 < count <= 12:
                    values = [low + i * step for i in range(count)]
            if values is None:
                values = [self.low.value(), self.high.value()]
            if self.numeric is RangeKind.INT:
                values = [int(v) for v in values]
            assert self.list_edit is not None
            self.list_edit.setText(list_text(values))
            self._list_shown = self.list_edit.text()
        else:
            assert self.list_edit is not None
            integer = self.numeric is RangeKind.INT
            try:
                numbers = [v for v in parse_list(self.list_edit.text(), integer) if _is_number(v)]
            except ConvasError:
                numbers = []
            if len(numbers) >= 2:
                for box, v in ((self.low, min(numbers)), (self.high, max(numbers))):
                    blocked = box.blockSignals(True)
                    box.setValue(v)
                    box.blockSignals(blocked)
                if self.step is not None:
                    blocked = self.step.blockSignals(True)
                    self.step.setValue(1)
                    self.step.blockSignals(blocked)
        self._show_mode(mode)
        self._emit()

    def _on_list_finished(self) -> None:
        assert self.list_edit is not None
        if self.list_edit.text().strip() == self._list_shown.strip():
            self.list_edit.setModified(False)  # nothing typed: Ctrl+Z goes to the design
            return
        self._list_shown = self.list_edit.text()
        self._emit()

    def focus_widget(self) -> QWidget:
        """The first field (for tests and tab order)."""
        if self.choice_button is not None:
            return self.choice_button
        if self.checks:
            return cast(QCheckBox, self.checks[0])
        if self.mode == RANGE_MODE and self.low is not None:
            return self.low
        assert self.list_edit is not None
        return self.list_edit


def search_step_text(name: str, arg: str, rng: SearchRange | None) -> str:
    """The History entry of a range edit: "Search conv2d.filters 16–64 step 16"."""
    if rng is None:
        return f"Stop searching {name}.{arg}"
    return f"Search {name}.{arg} {rng.describe()}"


def push_search(document: Any, name: str, arg: str, rng: SearchRange | None, *, merge: bool = False) -> None:
    """Give argument ``arg`` of layer ``name`` the range ``rng`` (None: none) as one undo step
    of ``document`` (quick spin steps, ``merge``, join the step before)."""
    node = document.design.nodes.get(name)
    if node is None or node.search.get(arg) == rng:
        return
    document.edit(search_step_text(name, arg, rng), [SetSearch(name, arg, rng)], merge=merge)


def push_repeats(document: Any, group: str, rng: SearchRange | None, *, merge: bool = False) -> None:
    """Let group ``group`` repeat as many times as ``rng`` says (None: once, as drawn) in a
    sweep, as one undo step of ``document``."""
    current = document.design.groups.get(group)
    if current is None or current.repeats == rng:
        return
    text = f"Stop repeating {group}" if rng is None else f"Repeat {group} × {rng.describe()}"
    document.edit(text, [SetGroup(group, replace(current, repeats=rng))], merge=merge)


def error_label(parent: QWidget) -> QLabel:
    """The red sentence under a range that cannot be sampled."""
    label = QLabel(parent)
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {ERROR_COLOR};")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


class SearchRow:
    """The search range of one field: its "…" toggle, and under the field the range editor
    with the reason a range cannot be sampled. The editor is made when first needed; a range
    the user is still shaping (``pending``, one that cannot be sampled yet) is shown but never
    reaches the design."""

    def __init__(self, kinds: tuple[RangeKind, ...], parent: QWidget, *, minimum: float | None = None,
                 maximum: float | None = None, choices: tuple[Any, ...] = (), log: bool = True) -> None:
        self.kinds = kinds
        self._log = log
        self._parent = parent
        self._bounds = (minimum, maximum)
        self.choices = choices
        self.toggle = SearchToggle(parent)
        self.box = QWidget(parent)
        self.box.setObjectName("searchBox")
        column = QVBoxLayout(self.box)
        column.setContentsMargins(12, 0, 0, 4)
        column.setSpacing(2)
        self._column = column
        self.editor: RangeEditor | None = None
        self.on_edit: Callable[[SearchRange | str], None] | None = None  # what an edit of the range does
        self.error = error_label(self.box)
        column.addWidget(self.error)
        self.box.hide()
        self.pending = False

    def ensure_editor(self) -> RangeEditor:
        if self.editor is None:
            minimum, maximum = self._bounds
            self.editor = RangeEditor(self.kinds, minimum=minimum, maximum=maximum, choices=self.choices,
                                      log=self._log, parent=self.box)
            self._column.insertWidget(0, self.editor)
            self.editor.edited.connect(self._edited)
        return self.editor

    def _edited(self, edited: SearchRange | str) -> None:
        if self.on_edit is not None:
            self.on_edit(edited)

    def start(self, value: Any, log: bool | None = None) -> SearchRange:
        """The range a check of the toggle starts with, around ``value``."""
        minimum, maximum = self._bounds
        return default_range(self.kinds, value, minimum=minimum, maximum=maximum, choices=self.choices,
                             log=log)

    def show(self, rng: SearchRange | None) -> None:
        """Show the design's range (None: none, unless one is being shaped)."""
        if rng is None and self.pending:
            return
        self.toggle.blockSignals(True)
        self.toggle.setChecked(rng is not None)
        self.toggle.blockSignals(False)
        if rng is None:
            self.box.hide()
            self.show_problem("")
            return
        self.pending = False
        editor = self.ensure_editor()
        if editor.current() != rng:  # a field being typed in keeps its text when nothing changed
            editor.set_range(rng)
        self.show_problem("")
        self.box.show()

    def show_problem(self, message: str) -> None:
        self.error.setText(sentence(message) if message else "")
        self.error.setVisible(bool(message))

    def settle(self, edited: SearchRange | str, problem: str | None = None) -> SearchRange | None:
        """The range the user settled on (``edited``: a range, or why the typed text is none),
        when it can be sampled; otherwise None, with the reason (``edited``'s, the range's own, or
        ``problem``, the owner's) shown under the field while the design keeps its last good range."""
        if isinstance(edited, str):
            problem = edited
        else:
            problem = edited.problem() or problem
        if problem:
            self.pending = True
            self.show_problem(problem)
            return None
        self.pending = False
        self.show_problem("")
        return edited if isinstance(edited, SearchRange) else None

    def stepping(self) -> bool:
        """Whether the edit came from a spin box's steps (quick steps merge into one undo step)."""
        return self.editor is not None and self.editor.is_stepping()

    def problem(self) -> str:
        return "" if self.error.isHidden() else self.error.text()
