"""The inspector: the selected layer's name, arguments, analysis and problems; for a selected
group (or several layers), what they add up to. Both have a Trainable switch.

One editor per catalogue :class:`~engine.layers.base.Param`, chosen by the parameter's kind. An
editor never changes the design itself: it emits the value the user settled on, and the
inspector turns a real change into exactly one ``SetArg`` step on the document's undo stack.
Values are checked with the catalogue's own rules before they are pushed, so a value the user
mistyped is shown in red with the reason and never reaches the design.

The form is built once per selected node; analyses only refresh values that changed, so the
editor being typed in keeps its focus and text.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QLayout, QLineEdit,
    QPushButton, QScrollArea, QSizePolicy, QSpinBox, QStackedLayout, QToolButton, QVBoxLayout,
    QWidget,
)

from engine.analysis import Analysis, NodeReport, Problem, Severity
from engine.design import DesignError
from engine.editing import EditRefused, SetArg, plan_fix, plan_rename, plan_set_trainable
from engine.freezing import freeze_summary
from engine.layers import CATALOGUE, Fix, FixAction
from engine.layers.base import ArgError, Param, ParamKind, normalise_value
from engine.pixel_range import PixelRange
from engine.search_range import RangeKind, SearchRange
from engine.search_space import RANGEABLE
from engine.shapes import fmt_shape
from engine.summary import human_bytes, human_count

from .document import Document
from .icons import layer_icon, link_icon
from .search_field import RangeEditor, SearchRow, SearchToggle, error_label, push_repeats, push_search
from .theme import ERROR_COLOR, WARNING_COLOR
from .widgets import NoWheelMixin, NumberSpinBox, SteppingMixin, mute, section_title, sentence

INT_MIN, INT_MAX = -(2 ** 31), 2 ** 31 - 1
TRAINABLE_TIP = ("Trainable: training changes these weights. Untick to freeze them (Keras's "
                 "layer.trainable = False): they keep their values and count as non-trainable, and a "
                 "frozen BatchNormalization uses its moving statistics.")
FLOAT_LIMIT = 1e12
_MISSING = object()
_AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_LITERAL_KINDS = ("shape", "axes", "factor", "pair", "padding2d", "any")
_MAX_LITERAL = 2000  # longer text is refused before parsing (literal_eval can recurse deeply)


# --- values -----------------------------------------------------------------------------------

def _tupled(value: Any) -> Any:
    """Lists (as Python literals and Keras configs write them) become tuples, recursively."""
    if isinstance(value, (list, tuple)):
        return tuple(_tupled(v) for v in value)
    return value


def parse_literal(text: str) -> Any:
    """A Python literal typed by the user, parsed safely (``ast.literal_eval`` only).

    Empty text means None. Raises ValueError with a readable reason.
    """
    text = text.strip()
    if not text:
        return None
    if len(text) > _MAX_LITERAL:
        raise ValueError("the text is too long")
    try:
        return _tupled(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(f"{text!r} is not a number, tuple or None, e.g. (28, 28, 1)") from None


def literal_text(value: Any) -> str:
    """How a value is written in a literal editor (Python syntax, as in Keras code)."""
    return repr(_tupled(value))


def _same_value(param: Param, a: Any, b: Any) -> bool:
    """True when two argument values mean the same to Keras (3 and (3, 3), 0.1 and 0.1000000001)."""
    try:
        a, b = normalise_value(param, a), normalise_value(param, b)
    except ArgError:
        return type(a) is type(b) and a == b
    return _close(a, b)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) and not float(x).is_integer() else f"{int(x)}"


def param_tooltip(p: Param) -> str:
    """Rich-text tooltip of an argument: its doc, default and allowed range."""
    lines = [f"<b>{p.name}</b>"]
    if p.doc:
        lines.append(p.doc)
    facts = []
    if p.required:
        facts.append("required")
    else:
        facts.append(f"default {literal_text(p.default)}")
    if p.minimum is not None or p.maximum is not None:
        lo = "−∞" if p.minimum is None else _num(p.minimum)
        hi = "∞" if p.maximum is None else _num(p.maximum)
        facts.append(f"range {lo} … {hi}")
    lines.append(f"<span style='color:gray'>{'; '.join(facts)}</span>")
    return "<p style='white-space:pre-wrap'>" + "<br>".join(lines) + "</p>"


# --- input widgets -----------------------------------------------------------------------------

class _IntSpin(SteppingMixin, NoWheelMixin, QSpinBox):
    """A whole-number spin box with the argument's Keras range; optional ones show 'None' below
    the minimum."""

    def __init__(self, p: Param, optional: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lo = INT_MIN + 1 if p.minimum is None else max(INT_MIN + 1, math.ceil(p.minimum))
        if p.min_exclusive and p.minimum is not None and float(p.minimum).is_integer():
            lo += 1
        hi = INT_MAX if p.maximum is None else min(INT_MAX, int(p.maximum))
        self.optional = optional
        if optional:
            lo -= 1
            self.setSpecialValueText("None")
        self.setRange(lo, hi)
        self.setKeyboardTracking(False)
        self.setAccelerated(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(56)

    def python_value(self) -> int | None:
        if self.optional and self.value() == self.minimum():
            return None
        return self.value()

    def set_python_value(self, value: int | None) -> None:
        self.setValue(self.minimum() if value is None else value)


class _FloatSpin(SteppingMixin, NumberSpinBox):
    """A number spin box with the argument's Keras range that steps sensibly for the range;
    optional ones show 'None' one below the minimum."""

    def __init__(self, p: Param, optional: bool, parent: QWidget | None = None) -> None:
        floor = -FLOAT_LIMIT if p.minimum is None else float(p.minimum)
        hi = FLOAT_LIMIT if p.maximum is None else float(p.maximum)
        super().__init__(floor - 1.0 if optional else floor, hi, parent=parent)
        self.floor = floor
        self.optional = optional
        if optional:
            self.setSpecialValueText("None")
        if p.minimum is not None and p.maximum is not None and p.maximum - p.minimum <= 1:
            self.setSingleStep(0.05)
        else:
            self.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(56)

    def stepBy(self, steps: int) -> None:
        self.stepping = True
        try:
            self._step(steps)
        finally:
            self.stepping = False

    def _step(self, steps: int) -> None:
        # 'None' sits one below the real minimum: step straight between them.
        if self.optional and self.python_value() is None:
            if steps > 0:
                self.setValue(self.floor)
            return
        if self.optional and steps < 0 and math.isclose(self.value(), self.floor):
            self.setValue(self.minimum())
            return
        super().stepBy(steps)

    def python_value(self) -> float | None:
        if self.optional and self.value() < self.floor:
            return None
        return self.value()

    def set_python_value(self, value: float | None) -> None:
        self.setValue(self.minimum() if value is None else value)


class _Combo(NoWheelMixin, QComboBox):
    pass


# --- editors: one per parameter kind ----------------------------------------------------------

class Editor(QWidget):
    """The input of one argument. ``set_value`` shows a value without emitting; ``committed``
    carries the value the user settled on (not yet checked)."""

    committed = Signal(object)

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.param = param
        self.setToolTip(param_tooltip(param))

    def set_value(self, value: Any) -> None:  # pragma: no cover - every editor overrides
        raise NotImplementedError

    def value(self) -> Any:  # pragma: no cover - every editor overrides
        """The value the editor shows, as the Python value Keras would be given."""
        raise NotImplementedError

    def focus_widget(self) -> QWidget:
        """The widget that takes keyboard focus (for tests and tab order)."""
        return self

    def is_stepping(self) -> bool:
        """True while the value changes by a step (arrow, wheel) rather than by typing: quick
        steps join one undo step."""
        return False


class _SpinEditor(Editor):
    """A spin box editor; subclasses say which spin box and what to show for a refused value."""

    spin_class: type

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.spin = self.spin_class(param, param.kind.optional, self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.spin)
        self.spin.valueChanged.connect(lambda _v: self.committed.emit(self.value()))

    def value(self) -> Any:
        return self.spin.python_value()

    def is_stepping(self) -> bool:
        return self.spin.stepping

    def fallback(self) -> Any:
        return self.spin.minimum()

    def set_value(self, value: Any) -> None:
        self.spin.blockSignals(True)
        try:
            clean = normalise_value(self.param, value)
        except ArgError:
            clean = None
        if clean is None and not self.spin.optional:
            clean = self.fallback()
        self.spin.set_python_value(clean)
        self.spin.blockSignals(False)

    def focus_widget(self) -> QWidget:
        return self.spin


class IntEditor(_SpinEditor):
    spin_class = _IntSpin


class FloatEditor(_SpinEditor):
    spin_class = _FloatSpin

    def fallback(self) -> Any:
        return self.spin.minimum() if self.param.default is None else float(self.param.default)


class BoolEditor(Editor):
    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.check = QCheckBox(self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.check)
        layout.addStretch(1)
        self.check.toggled.connect(self.committed.emit)

    def value(self) -> bool:
        return self.check.isChecked()

    def set_value(self, value: Any) -> None:
        self.check.blockSignals(True)
        self.check.setChecked(value if isinstance(value, bool) else bool(self.param.default))
        self.check.blockSignals(False)

    def focus_widget(self) -> QWidget:
        return self.check


class ChoiceEditor(Editor):
    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.combo = _Combo(self)
        self.combo.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.combo.setMaxVisibleItems(16)
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.setMinimumContentsLength(6)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        for choice in param.choices:
            self.combo.addItem(str(choice), choice)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        self.combo.currentIndexChanged.connect(self._on_index)

    def value(self) -> Any:
        return self.combo.currentData()

    def _on_index(self, index: int) -> None:
        if index >= 0:
            self.committed.emit(self.combo.itemData(index))

    def set_value(self, value: Any) -> None:
        self.combo.blockSignals(True)
        index = self.combo.findData(value) if value in self.param.choices else -1
        if index < 0 and value is None:
            index = self.combo.findData(self.param.default)
        self.combo.setCurrentIndex(index)  # -1 (blank) for a value Keras would refuse
        self.combo.blockSignals(False)

    def focus_widget(self) -> QWidget:
        return self.combo


class IntsEditor(Editor):
    """One spin box per spatial axis (h × w), with a chain toggle "same value for every axis".

    Locked, the value is a single int (Keras's shorthand); unlocked, a tuple per axis.
    """

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        n = param.length or 1
        optional = param.kind == ParamKind.OPTIONAL_INTS
        names = _AXIS_NAMES.get(n, tuple(f"axis {i + 1}" for i in range(n)))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.spins: list[_IntSpin] = []
        for i in range(n):
            if i:
                times = QLabel("×", self)
                mute(times)
                layout.addWidget(times)
            spin = _IntSpin(param, optional, self)
            spin.setToolTip(f"{param.name}: {names[i]}")
            if n > 1:
                # Side by side, arrow buttons would crowd out the numbers; keys and wheel still step.
                spin.setButtonSymbols(QSpinBox.ButtonSymbols.NoButtons)
                spin.setMinimumWidth(36)
            spin.valueChanged.connect(lambda _v, i=i: self._on_spin(i))
            self.spins.append(spin)
            layout.addWidget(spin, 1)
        self.lock = QToolButton(self)
        self.lock.setCheckable(True)
        self.lock.setChecked(True)
        self.lock.setAutoRaise(True)
        self.lock.setToolTip("Same value for every axis")
        self.lock.setIcon(link_icon(True))
        self.lock.toggled.connect(self._on_lock)
        layout.addWidget(self.lock)
        self.lock.setVisible(n > 1)

    @property
    def locked(self) -> bool:
        return self.lock.isChecked()

    def is_stepping(self) -> bool:
        return any(spin.stepping for spin in self.spins)

    def value(self) -> Any:
        values = [s.python_value() for s in self.spins]
        if any(v is None for v in values):
            return None
        if self.locked or len(values) == 1:
            return values[0]
        return tuple(values)

    def _on_spin(self, index: int) -> None:
        source = self.spins[index]
        if self.locked or source.python_value() is None:
            # Keras takes None for all axes or for none; a locked toggle keeps axes equal.
            for spin in self.spins:
                if spin is not source:
                    spin.blockSignals(True)
                    spin.setValue(source.value())
                    spin.blockSignals(False)
        elif any(s.python_value() is None for s in self.spins):
            for spin in self.spins:
                if spin is not source and spin.python_value() is None:
                    spin.blockSignals(True)
                    spin.setValue(source.value())
                    spin.blockSignals(False)
        self.committed.emit(self.value())

    def _on_lock(self, locked: bool) -> None:
        self.lock.setIcon(link_icon(locked))
        self.lock.setToolTip("Same value for every axis" if locked else "A value per axis")
        if locked and len({s.value() for s in self.spins}) > 1:
            self._on_spin(0)

    def set_value(self, value: Any) -> None:
        try:
            clean = normalise_value(self.param, value)
        except ArgError:
            clean = None
        if clean is None and not self.spins[0].optional:
            try:
                clean = normalise_value(self.param, self.param.default)
            except ArgError:
                clean = None
        values = list(clean) if clean is not None else [None] * len(self.spins)
        for spin, v in zip(self.spins, values):
            spin.blockSignals(True)
            spin.set_python_value(v if v is not None or spin.optional else spin.minimum())
            spin.blockSignals(False)
        self.lock.blockSignals(True)
        self.lock.setChecked(len(set(values)) <= 1)
        self.lock.setIcon(link_icon(self.lock.isChecked()))
        self.lock.blockSignals(False)

    def focus_widget(self) -> QWidget:
        return self.spins[0]


class LiteralEditor(Editor):
    """A Python literal (tuples, numbers, None) in a line edit, committed on Enter or focus-out.

    Text that does not parse raises no error: :attr:`parse_error` says why and the row turns red.
    """

    parseFailed = Signal(str)

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.edit = QLineEdit(self)
        self.edit.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        hints = {ParamKind.SHAPE: "e.g. (28, 28, 1)", ParamKind.AXES: "e.g. (2, 1)",
                 ParamKind.FACTOR: "f or (low, high)", ParamKind.PAIR: "(low, high)",
                 ParamKind.PADDING2D: "n, (h, w) or ((t, b), (l, r))", ParamKind.ANY: "None"}
        self.edit.setPlaceholderText(hints.get(param.kind, ""))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        self._shown = ""
        self.edit.editingFinished.connect(self._on_finished)

    def set_value(self, value: Any) -> None:
        self._shown = literal_text(value) if self.param.kind != ParamKind.STR else str(value or "")
        self.edit.setText(self._shown)
        self.edit.setCursorPosition(0)

    def value(self) -> Any:
        """The parsed text (ValueError when it is not a literal)."""
        return self.edit.text() if self.param.kind == ParamKind.STR else parse_literal(self.edit.text())

    def _on_finished(self) -> None:
        text = self.edit.text()
        if text.strip() == self._shown.strip():
            self.edit.setModified(False)  # nothing to commit: Ctrl+Z goes to the design
            return
        if self.param.kind == ParamKind.STR:
            self.committed.emit(text)
            return
        try:
            value = parse_literal(text)
        except ValueError as exc:
            self.parseFailed.emit(str(exc))
            return
        self.committed.emit(value)

    def focus_widget(self) -> QWidget:
        return self.edit


def make_editor(param: Param, parent: QWidget | None = None) -> Editor:
    """The editor suited to a parameter's kind."""
    kind = param.kind
    if kind in (ParamKind.INT, ParamKind.OPTIONAL_INT):
        return IntEditor(param, parent)
    if kind in (ParamKind.FLOAT, ParamKind.OPTIONAL_FLOAT):
        return FloatEditor(param, parent)
    if kind == ParamKind.BOOL:
        return BoolEditor(param, parent)
    if kind == ParamKind.CHOICE:
        return ChoiceEditor(param, parent)
    if kind in (ParamKind.INTS, ParamKind.OPTIONAL_INTS) and (param.length or 1) <= 3:
        return IntsEditor(param, parent)
    return LiteralEditor(param, parent)


# --- rows and sections ---------------------------------------------------------------------

class _Outline(QFrame):
    """A frame drawn around an editor: invisible normally, red when its value is refused."""

    def __init__(self, child: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("outline")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.addWidget(child)
        self._invalid: bool | None = None
        self.set_invalid(False)

    def set_invalid(self, invalid: bool) -> None:
        if invalid == self._invalid:  # style sheets are costly; this runs after every edit
            return
        self._invalid = invalid
        color = ERROR_COLOR if invalid else "transparent"
        self.setStyleSheet(f"QFrame#outline {{ border: 1px solid {color}; border-radius: 4px; }}")


@dataclass
class _ArgRow:
    param: Param
    label: QLabel
    editor: Editor
    outline: _Outline
    error: QLabel
    synced: Any = _MISSING      # the raw design value the editor last showed
    local_error: str = ""       # a value the user typed that was refused before reaching the design
    search: SearchRow | None = None  # the "…" toggle and range editor, for an argument a sweep can vary

    def show_error(self, message: str) -> None:
        self.outline.set_invalid(bool(message))
        if self.error.text() == message:
            return
        self.error.setText(message)
        self.error.setVisible(bool(message))
        self.label.setStyleSheet(f"color: {ERROR_COLOR};" if message else "")


def arg_search_row(param: Param, parent: QWidget) -> SearchRow | None:
    """The search toggle of an argument a sweep can vary (None for the others)."""
    kinds = RANGEABLE.get(param.kind)
    if not kinds:
        return None
    minimum = param.minimum
    if minimum is not None and param.min_exclusive and RangeKind.INT in kinds and float(minimum).is_integer():
        minimum += 1
    choices: tuple[Any, ...] = (False, True) if param.kind == ParamKind.BOOL else tuple(param.choices)
    return SearchRow(kinds, parent, minimum=minimum, maximum=param.maximum, choices=choices)


class _NameEdit(QLineEdit):
    """The layer name; Escape puts back the current name."""

    sigEscape = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.sigEscape.emit()
            return
        super().keyPressEvent(event)


class _ProblemCard(QFrame):
    """One problem: a coloured bar, the message, and a button per fix."""

    def __init__(self, problem: Problem, on_fix: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        color = ERROR_COLOR if problem.severity == Severity.ERROR else WARNING_COLOR
        self.setObjectName("problem")
        self.setStyleSheet(f"QFrame#problem {{ border-left: 3px solid {color}; "
                           f"background: {_tint(color)}; border-radius: 3px; }}")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 8, 8)
        layout.setSpacing(6)
        title = "Error" if problem.severity == Severity.ERROR else "Warning"
        message = QLabel(f"<b style='color:{color}'>{title}</b> — {_escape(problem.message)}", self)
        message.setWordWrap(True)
        message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(message)
        self.buttons: list[QPushButton] = []
        for fix in problem.fixes:
            button = QPushButton(fix.label, self)
            button.setToolTip(f"Apply this fix as one undoable step: {fix.label}")
            button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
            button.clicked.connect(lambda _=False, fix=fix: on_fix(fix))
            layout.addWidget(button, 0, Qt.AlignmentFlag.AlignLeft)
            self.buttons.append(button)


def _tint(color: str) -> str:
    c = color.lstrip("#")
    r, g, b = int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)
    return f"rgba({r}, {g}, {b}, 28)"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _shapes_text(shapes: list[Any]) -> str:
    return ", ".join(fmt_shape(s) for s in shapes) if shapes else "—"


def _sizes(values: list[int | float] | None) -> str:
    return "—" if values is None else "×".join(f"{v:g}" for v in values)


# --- the inspector ---------------------------------------------------------------------------

class InspectorWidget(QWidget):
    """Edits the arguments of one layer of ``document`` and shows what the analysis says of it."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self._name: str | None = None
        self._kind: str | None = None
        self._shown: tuple[Analysis | None, int] = (None, 0)  # the analysis and batch size shown
        self._rows: dict[str, _ArgRow] = {}
        self._problem_key: tuple = ()
        self._fix_buttons: list[QPushButton] = []
        self._many: list[str] = []       # the layers the group page sums up (see show_layers)
        self._many_title = ""
        self._group: str | None = None   # … when they are a group's: its name

        self._stack = QStackedLayout(self)
        self.empty_label = QLabel("Select a layer to edit its arguments", self)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        mute(self.empty_label)
        self._stack.addWidget(self.empty_label)

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._stack.addWidget(scroll)  # scrolls across too when the dock is narrower than the fields
        page = QWidget()
        scroll.setWidget(page)
        outer = QVBoxLayout(page)
        outer.setContentsMargins(12, 10, 12, 12)
        outer.setSpacing(4)

        # Header: icon, editable name, type and summary.
        header = QHBoxLayout()
        header.setSpacing(8)
        self.icon_label = QLabel(page)
        self.icon_label.setFixedSize(32, 32)
        header.addWidget(self.icon_label, 0, Qt.AlignmentFlag.AlignTop)
        self.name_edit = _NameEdit(page)
        name_font = QFont(self.name_edit.font())
        name_font.setBold(True)
        name_font.setPointSizeF(name_font.pointSizeF() * 1.15)
        self.name_edit.setFont(name_font)
        self.name_edit.setToolTip("The layer's name (Enter to rename, Escape to cancel)")
        self.name_edit.editingFinished.connect(self._on_name_finished)
        self.name_edit.textEdited.connect(lambda _t: self._show_name_error(""))
        self.name_edit.sigEscape.connect(self._revert_name)
        self._name_outline = _Outline(self.name_edit, page)
        header.addWidget(self._name_outline, 1)
        outer.addLayout(header)
        self.name_error = error_label(page)
        outer.addWidget(self.name_error)
        self.kind_label = QLabel(page)
        self.kind_label.setTextFormat(Qt.TextFormat.RichText)
        outer.addWidget(self.kind_label)
        self.summary_label = QLabel(page)
        self.summary_label.setWordWrap(True)
        mute(self.summary_label)
        outer.addWidget(self.summary_label)
        self.trainable_box = QCheckBox("Trainable", page)
        self.trainable_box.setToolTip(TRAINABLE_TIP)
        self.trainable_box.clicked.connect(lambda _checked: self._toggle_trainable(self._shown_layers()))
        outer.addWidget(self.trainable_box)

        # Arguments: one row per parameter, rebuilt when the selected node changes.
        self.args_title = section_title("Arguments", page)
        outer.addWidget(self.args_title)
        self._args_host = QWidget(page)
        self._args_layout = QVBoxLayout(self._args_host)
        self._args_layout.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self._args_host)

        # Analysis of the node.
        outer.addWidget(section_title("Analysis", page))
        grid = self._facts_grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(4)
        grid.setColumnStretch(1, 1)
        self._facts = _fact_rows(grid, page, [
            ("input", "Input shape"), ("output", "Output shape"), ("params", "Parameters"),
            ("macs", "MACs"), ("memory", "Activations"), ("rf", "Receptive field"),
            ("stride", "Effective stride")])
        outer.addLayout(grid)

        # Problems with their fixes.
        self.problems_title = section_title("Problems", page)
        outer.addWidget(self.problems_title)
        self._problems_host = QWidget(page)
        self._problems_layout = QVBoxLayout(self._problems_host)
        self._problems_layout.setContentsMargins(0, 2, 0, 0)
        self._problems_layout.setSpacing(6)
        outer.addWidget(self._problems_host)
        self.fix_error = error_label(page)
        outer.addWidget(self.fix_error)
        outer.addStretch(1)

        self._build_many_page()
        document.analysed.connect(self._on_analysed)
        document.designReset.connect(self._on_reset)
        document.nodeRenamed.connect(self._on_renamed)
        document.nodeRemoved.connect(self._on_removed)
        document.searchChanged.connect(self._on_search_changed)
        document.groupsChanged.connect(self._show_repeats)
        self.show_node(None)

    # --- public ---------------------------------------------------------------------------

    @property
    def node_name(self) -> str | None:
        """The node shown, or None."""
        return self._name

    @property
    def many_layers(self) -> list[str]:
        """The layers the group page sums up ([] when it is not shown)."""
        return list(self._many)

    def show_layers(self, names: list[str], title: str, group: str | None = None) -> None:
        """Sum up several layers (a group's, or a selection) under ``title``, with a Trainable
        switch for them all; an empty list shows the empty state. ``group``: the layers are
        this group's, whose repeat count a sweep may vary (the Repeats row)."""
        design = self.document.design
        names = [n for n in names if n in design.nodes]
        self._name = self._kind = None
        self._clear_form()
        if not names:
            self._many, self._many_title, self._group = [], "", None
            self._stack.setCurrentIndex(0)
            return
        self._many, self._many_title = names, title
        self._group = group if group in design.groups else None
        self._refresh_many()
        self._show_repeats()
        self._stack.setCurrentIndex(2)

    @property
    def group_name(self) -> str | None:
        """The group whose layers the group page sums up (None: a selection, or another page)."""
        return self._group if self._many else None

    def repeats_toggle(self) -> SearchToggle:
        """The "…" toggle of the group page's Repeats row."""
        return self._repeats.toggle

    def repeats_editor(self) -> RangeEditor | None:
        """The range editor of the group's repeats (None until first needed)."""
        return self._repeats.editor

    def repeats_error(self) -> str:
        """Why the repeats shown cannot be searched ('' when they can)."""
        return self._repeats.problem()

    def repeats_note(self) -> str:
        """Why the group cannot repeat ('' when it can, or no group is shown)."""
        return "" if self.repeats_reason.isHidden() else self.repeats_reason.text()

    def _show_repeats(self) -> None:
        """The Repeats row of the group page: shown for a group, its toggle disabled (with the
        reason) when the group cannot be repeated in a chain."""
        group = self.document.design.groups.get(self._group) if self._group and self._many else None
        visible = group is not None
        for widget in (self.repeats_title, self.repeats_label, self._repeats.toggle, self.repeats_hint):
            widget.setVisible(visible)
        if group is None:
            self._repeats.pending = False
            self._repeats.show(None)
            self.repeats_reason.hide()
            return
        problem = _repeat_problem(self.document.design, group.name)
        self.repeats_reason.setText(sentence(problem) if problem else "")
        self.repeats_reason.setVisible(bool(problem))
        self._repeats.toggle.setEnabled(problem is None or group.repeats is not None)
        self.repeats_hint.setText("once, as drawn" if group.repeats is None else "in a sweep:")
        self._repeats.show(group.repeats)

    def _toggle_repeats(self, on: bool) -> None:
        group = self._group
        if group is None or group not in self.document.design.groups:
            return
        search = self._repeats
        if not on:
            search.pending = False
            push_repeats(self.document, group, None)
            search.show(None)
            return
        rng = search.start(1)
        search.ensure_editor().set_range(rng)
        search.box.show()
        push_repeats(self.document, group, rng)

    def _repeats_edited(self, edited: SearchRange | str) -> None:
        group, search = self._group, self._repeats
        if group is None or group not in self.document.design.groups:
            return
        problem = None
        if isinstance(edited, SearchRange):
            values = edited.values()
            if values is not None and any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
                problem = "a group repeats a whole number of times, at least 1"
        settled = search.settle(edited, problem)
        if settled is not None:
            push_repeats(self.document, group, settled, merge=search.stepping())

    def show_node(self, name: str | None) -> None:
        """Show (and edit) node ``name``; None shows the empty state."""
        design = self.document.design
        if name is not None and name not in design.nodes:
            name = None
        kind = design.nodes[name].kind if name is not None else None
        if name == self._name and kind == self._kind and name is not None:
            self._refresh()
            return
        self._name, self._kind = name, kind
        self._many = []
        if name is None:
            self._clear_form()
            self._stack.setCurrentIndex(0)
            return
        self._build_form()
        self._refresh()
        self._stack.setCurrentIndex(1)

    def args(self) -> list[str]:
        """Names of the arguments in the form, in catalogue order."""
        return list(self._rows)

    def editor(self, arg: str) -> Editor:
        """The editor of argument ``arg`` of the node shown (KeyError when there is none)."""
        return self._rows[arg].editor

    def arg_error(self, arg: str) -> str:
        """The reason shown under argument ``arg`` ('' when it is fine)."""
        row = self._rows[arg]
        return "" if row.error.isHidden() else row.error.text()

    def search_toggle(self, arg: str) -> SearchToggle:
        """The "…" toggle of argument ``arg`` (KeyError when a sweep cannot vary it)."""
        search = self._rows[arg].search
        if search is None:
            raise KeyError(arg)
        return search.toggle

    def range_editor(self, arg: str) -> RangeEditor | None:
        """The range editor of argument ``arg`` (None until its toggle was first checked)."""
        search = self._rows[arg].search
        return search.editor if search is not None else None

    def range_error(self, arg: str) -> str:
        """Why the range shown for ``arg`` cannot be sampled ('' when it can, or none is shown)."""
        search = self._rows[arg].search
        return search.problem() if search is not None else ""

    def fix_buttons(self) -> list[QPushButton]:
        """The buttons of every fix offered for the node shown, in order."""
        return list(self._fix_buttons)

    def fact(self, key: str) -> str:
        """Text of one analysis line: input, output, params, macs, memory, rf, stride."""
        return self._facts[key].text()

    # --- building -------------------------------------------------------------------------

    def _clear_form(self) -> None:
        self._rows = {}
        _empty(self._args_layout)
        self._problem_key = ()
        self._set_problems([])
        self._show_name_error("")
        self.fix_error.hide()

    def _build_form(self) -> None:
        self._clear_form()
        assert self._name is not None and self._kind is not None
        spec = CATALOGUE.get(self._kind)
        self.icon_label.setPixmap(layer_icon(self._kind).pixmap(QSize(32, 32), self.devicePixelRatioF()))
        self.name_edit.setText(self._name)
        if spec is None:
            self.kind_label.setText(f"<b>{_escape(self._kind)}</b>")
            self.summary_label.setText("Convas does not know this layer type; its settings are "
                                       "kept exactly as they are.")
        else:
            self.kind_label.setText(f"<b>{self._kind}</b> · {spec.group}")
            self.summary_label.setText(spec.summary)
        params = spec.params if spec is not None else ()
        self.args_title.setVisible(bool(params))
        host = QWidget(self._args_host)
        grid = QGridLayout(host)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(3)
        grid.setColumnStretch(1, 1)
        grid.setColumnMinimumWidth(2, 0)
        for i, p in enumerate(params):
            label = QLabel(p.name + (" *" if p.required else ""), host)
            label.setToolTip(param_tooltip(p))
            editor = make_editor(p, host)
            outline = _Outline(editor, host)
            error = error_label(host)
            label.setBuddy(editor.focus_widget())
            grid.addWidget(label, 3 * i, 0)
            grid.addWidget(outline, 3 * i, 1)
            grid.addWidget(error, 3 * i + 2, 1)
            row = _ArgRow(p, label, editor, outline, error)
            search = row.search = arg_search_row(p, host)
            if search is not None:
                grid.addWidget(search.toggle, 3 * i, 2)
                grid.addWidget(search.box, 3 * i + 1, 0, 1, 3)  # the whole width: room for step and log
                search.toggle.clicked.connect(lambda on, row=row: self._toggle_search(row, on))
                search.on_edit = lambda edited, row=row: self._range_edited(row, edited)
            editor.committed.connect(lambda value, row=row: self._commit(row, value))
            if isinstance(editor, LiteralEditor):
                editor.parseFailed.connect(lambda why, row=row: self._refuse(row, why))
            self._rows[p.name] = row
        # Argument names and analysis titles share one column width, so values line up.
        cells = [self._facts_grid.itemAtPosition(r, 0) for r in range(self._facts_grid.rowCount())]
        titles = [title for cell in cells if cell is not None and (title := cell.widget()) is not None]
        width = max([w.sizeHint().width() for w in titles]
                    + [row.label.sizeHint().width() for row in self._rows.values()])
        grid.setColumnMinimumWidth(0, width)
        self._facts_grid.setColumnMinimumWidth(0, width)
        self._args_layout.addWidget(host)

    # --- refreshing -----------------------------------------------------------------------

    def _refresh(self) -> None:
        """Bring values, errors, facts and problems up to date without rebuilding the form."""
        if self._name is None:
            return
        node = self.document.design.nodes[self._name]
        report = self.document.analysis.nodes.get(self._name)
        problems = report.problems if report is not None else []
        if not self.name_edit.hasFocus() and self.name_error.isHidden():
            self.name_edit.setText(self._name)
        arg_problems: dict[str, str] = {}
        for problem in problems:
            if problem.arg is not None and problem.arg not in arg_problems:
                arg_problems[problem.arg] = problem.message
        for name, row in self._rows.items():
            raw = node.args.get(name, _MISSING)
            if row.synced is _MISSING or not _identical(raw, row.synced):
                row.editor.set_value(row.param.default if raw is _MISSING else raw)
                row.synced = raw
                row.local_error = ""
            row.show_error(row.local_error or arg_problems.get(name, ""))
        self._show_search()
        self._show_facts(report)
        self.trainable_box.setChecked(node.trainable)
        listed = [p for p in problems if p.fixes or p.arg is None or p.arg not in self._rows]
        key = tuple((p.message, p.severity, tuple(f.label for f in p.fixes)) for p in listed)
        if key != self._problem_key:
            self._problem_key = key
            self._set_problems(listed)

    def _show_facts(self, report: NodeReport | None) -> None:
        f = self._facts
        if report is None:
            for label in f.values():
                label.setText("—")
            return
        calls = report.input_shapes
        if len(calls) <= 1:
            f["input"].setText(_shapes_text(calls[0]) if calls else "—")
        else:
            f["input"].setText("\n".join(f"call {i}: {_shapes_text(s)}" for i, s in enumerate(calls)))
        outs = report.output_shapes
        if report.blocked and not any(s is not None for s in outs):
            f["output"].setText("unknown: an upstream layer is invalid")
        elif not outs or all(s is None for s in outs):
            f["output"].setText("invalid" if report.errors else "—")
        elif len(outs) == 1:
            f["output"].setText(fmt_shape(outs[0]))
        else:
            f["output"].setText("\n".join(f"call {i}: {fmt_shape(s)}" for i, s in enumerate(outs)))
        if report.non_trainable_params:
            f["params"].setText(f"{report.params:,} = {report.trainable_params:,} trainable + "
                                f"{report.non_trainable_params:,} non-trainable")
        else:
            f["params"].setText(f"{report.params:,} trainable" if report.params else "0")
        f["macs"].setText(human_count(report.macs) + (f"  ({report.macs:,})" if report.macs >= 10_000 else ""))
        batch = self.document.analysis.batch_size
        memory = f"{human_bytes(report.activation_bytes)} per sample"
        if batch != 1 and report.activation_bytes:
            memory += f", {human_bytes(batch * report.activation_bytes)} at batch {batch}"
        f["memory"].setText(memory)
        rf = report.receptive_field()
        f["rf"].setText("—" if rf is None else f"{_sizes(rf)} input pixels")
        f["stride"].setText(_sizes(report.effective_stride()))

    def _set_problems(self, problems: list[Problem]) -> None:
        _empty(self._problems_layout)
        self._fix_buttons = []
        for problem in problems:
            card = _ProblemCard(problem, self._apply_fix, self._problems_host)
            self._problems_layout.addWidget(card)
            self._fix_buttons += card.buttons
        self.problems_title.setVisible(bool(problems))
        self._problems_host.setVisible(bool(problems))

    # --- edits ----------------------------------------------------------------------------

    def _commit(self, row: _ArgRow, value: Any) -> None:
        """Push one SetArg when ``value`` is acceptable and differs from the design's value."""
        if self._name is None:
            return
        p = row.param
        node = self.document.design.nodes[self._name]
        current = node.args.get(p.name, p.default)
        try:
            normalise_value(p, value)
        except ArgError as exc:
            self._refuse(row, str(exc))
            return
        row.local_error = ""
        if _same_value(p, current, value):
            self._refresh()  # e.g. re-locking equal axes: show the design's value again
            return
        if value is None and p.default is None:
            op = SetArg(self._name, p.name, None, unset=True)
        else:
            op = SetArg(self._name, p.name, value)
        self.document.edit(f"Set {self._name}.{p.name} = {literal_text(value)}", [op],
                           merge=row.editor.is_stepping())

    # --- search ranges --------------------------------------------------------------------

    def _show_search(self) -> None:
        """Show the design's range of every argument that can have one."""
        if self._name is None:
            return
        node = self.document.design.nodes[self._name]
        for name, row in self._rows.items():
            if row.search is not None:
                row.search.show(node.search.get(name))

    def _toggle_search(self, row: _ArgRow, on: bool) -> None:
        """The "…" toggle was clicked: start a range around the current value (one undo step),
        or remove the range (one undo step)."""
        search = row.search
        if self._name is None or search is None:
            return
        node = self.document.design.nodes[self._name]
        if not on:
            search.pending = False
            if row.param.name in node.search:
                push_search(self.document, self._name, row.param.name, None)
            search.show(None)
            return
        value = node.args.get(row.param.name, row.param.default)
        rng = search.start(value)
        search.ensure_editor().set_range(rng)
        search.box.show()
        problem = rng.problem()
        if problem is not None:
            search.pending = True
            search.show_problem(problem)
            return
        push_search(self.document, self._name, row.param.name, rng)

    def _range_edited(self, row: _ArgRow, edited: SearchRange | str) -> None:
        """A range the user settled on: applied as one undo step when it can be sampled,
        otherwise shown with the reason and kept out of the design."""
        search = row.search
        if self._name is None or search is None:
            return
        settled = search.settle(edited)
        if settled is not None:
            push_search(self.document, self._name, row.param.name, settled, merge=search.stepping())

    def _on_search_changed(self, name: str) -> None:
        if name == self._name:
            self._show_search()

    def _refuse(self, row: _ArgRow, reason: str) -> None:
        row.local_error = reason
        row.show_error(reason)

    def _apply_fix(self, fix: Fix) -> None:
        if self._name is None:
            return
        if fix.action == FixAction.SET_PIXEL_RANGE:  # the data changes, not the design
            self.fix_error.hide()
            self.document.set_pixel_range(PixelRange.parse(fix.value))
            return
        try:
            ops = plan_fix(self.document.design, self._name, fix)
        except (ValueError, DesignError, IndexError) as exc:
            self.fix_error.setText(f"This fix cannot be applied here: {exc}")
            self.fix_error.show()
            return
        self.fix_error.hide()
        self.document.edit(fix_step_text(self._name, fix), ops)

    def _on_name_finished(self) -> None:
        if self._name is None:
            return
        new = self.name_edit.text().strip()
        if new == self._name:
            self._show_name_error("")
            self.name_edit.setModified(False)
            return
        try:
            # The design's one rule for names (valid characters, not taken); nothing is changed.
            plan = plan_rename(self.document.design, self._name, new)
        except EditRefused as exc:
            self._show_name_error(sentence(str(exc)))
            return
        self._show_name_error("")
        self.document.edit(plan.text, plan.ops)

    def _revert_name(self) -> None:
        self._show_name_error("")
        if self._name is not None:
            self.name_edit.setText(self._name)

    def _show_name_error(self, message: str) -> None:
        self._name_outline.set_invalid(bool(message))
        self.name_error.setText(message)
        self.name_error.setVisible(bool(message))

    # --- freezing -------------------------------------------------------------------------

    def _build_many_page(self) -> None:
        """The page for a group or several layers: what they add up to and one switch."""
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        page = QWidget()
        scroll.setWidget(page)
        outer = QVBoxLayout(page)
        outer.setContentsMargins(12, 10, 12, 12)
        outer.setSpacing(4)
        self.many_title = QLabel(page)
        self.many_title.setTextFormat(Qt.TextFormat.RichText)
        self.many_title.setWordWrap(True)
        outer.addWidget(self.many_title)
        self.many_trainable_box = QCheckBox("Trainable", page)
        self.many_trainable_box.setToolTip(TRAINABLE_TIP)
        self.many_trainable_box.clicked.connect(lambda _checked: self._toggle_trainable(list(self._many)))
        outer.addWidget(self.many_trainable_box)
        outer.addWidget(section_title("Analysis", page))
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(4)
        grid.setColumnStretch(1, 1)
        self._many_facts = _fact_rows(grid, page, [("layers", "Layers"), ("frozen", "Frozen"),
                                                   ("params", "Parameters"), ("macs", "MACs")])
        outer.addLayout(grid)

        # A group's repeat count, which a sweep may vary (engine.group_repeat).
        self.repeats_title = section_title("Sweep", page)
        outer.addWidget(self.repeats_title)
        repeats = QGridLayout()
        repeats.setHorizontalSpacing(12)
        repeats.setVerticalSpacing(3)
        repeats.setColumnStretch(1, 1)
        self.repeats_label = QLabel("Repeats", page)
        self.repeats_label.setToolTip("How many times a sweep may chain the group's layers one after "
                                      "the other (1: as drawn)")
        self._repeats = SearchRow((RangeKind.INT, RangeKind.CHOICE), page, minimum=1, maximum=64, log=False)
        self._repeats.toggle.setToolTip("Search how many times the group repeats in a sweep")
        self._repeats.toggle.clicked.connect(self._toggle_repeats)
        self._repeats.on_edit = self._repeats_edited
        self.repeats_hint = QLabel("once, as drawn", page)
        mute(self.repeats_hint)
        self.repeats_reason = QLabel(page)
        self.repeats_reason.setWordWrap(True)
        self.repeats_reason.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mute(self.repeats_reason)
        self.repeats_reason.hide()
        repeats.addWidget(self.repeats_label, 0, 0)
        repeats.addWidget(self.repeats_hint, 0, 1)
        repeats.addWidget(self._repeats.toggle, 0, 2)
        repeats.addWidget(self._repeats.box, 1, 0, 1, 3)
        repeats.addWidget(self.repeats_reason, 2, 0, 1, 3)
        # The row lines up with the analysis above it.
        titles = [cell.widget() for r in range(grid.rowCount()) if (cell := grid.itemAtPosition(r, 0)) is not None]
        width = max(w.sizeHint().width() for w in [*titles, self.repeats_label] if w is not None)
        grid.setColumnMinimumWidth(0, width)
        repeats.setColumnMinimumWidth(0, width)
        outer.addLayout(repeats)
        outer.addStretch(1)
        self._stack.addWidget(scroll)

    def many_fact(self, key: str) -> str:
        """Text of one line of the group page: layers, frozen, params, macs."""
        return self._many_facts[key].text()

    def _refresh_many(self) -> None:
        s = freeze_summary(self.document.design, self.document.analysis, self._many)
        self.many_title.setText(f"<b>{_escape(self._many_title)}</b>")
        f = self._many_facts
        f["layers"].setText(f"{s.layers:,}")
        f["frozen"].setText(s.frozen_text())
        f["params"].setText(f"{s.params:,} = {s.trainable_params:,} trainable + "
                            f"{s.non_trainable_params:,} non-trainable")
        f["macs"].setText(human_count(s.macs) + (f"  ({s.macs:,})" if s.macs >= 10_000 else ""))
        box = self.many_trainable_box
        if s.frozen and not s.all_frozen:
            box.setTristate(True)
            box.setCheckState(Qt.CheckState.PartiallyChecked)
            box.setText(f"Trainable ({s.frozen_text()})")
        else:
            box.setTristate(False)
            box.setChecked(not s.frozen)
            box.setText("Trainable")

    def _shown_layers(self) -> list[str]:
        return [self._name] if self._name is not None else []

    def _toggle_trainable(self, names: list[str]) -> None:
        """The Trainable switch was clicked: freeze the layers when all of them train, else
        make them all train; one undo step."""
        design = self.document.design
        names = [n for n in names if n in design.nodes]
        if not names:
            return
        trainable = not all(design.nodes[n].trainable for n in names)
        ops = plan_set_trainable(design, names, trainable)
        what = names[0] if len(names) == 1 else f"{len(names)} layers"
        self.document.edit(f"{'Unfreeze' if trainable else 'Freeze'} {what}", ops)
        if ops:
            return
        if self._name is not None:  # nothing changed: show the design's state again
            self._refresh()
        else:
            self._refresh_many()

    # --- document signals -----------------------------------------------------------------

    def _on_analysed(self) -> None:
        if self._many:
            self._many = [n for n in self._many if n in self.document.design.nodes]
            self.show_layers(self._many, self._many_title, self._group)
            return
        if self._name is not None and self._name not in self.document.design.nodes:
            self.show_node(None)
            return
        analysis = self.document.analysis
        shown, batch = self._shown
        self._shown = (analysis, analysis.batch_size)
        changed = analysis.changed_since(shown)
        if changed is not None and self._name not in changed and batch == analysis.batch_size:
            return  # the layer shown has the very report it had (an edit elsewhere)
        self.show_node(self._name)

    def _on_reset(self) -> None:
        self._name = self._kind = None
        self._many = []
        self._group = None
        self.show_node(None)

    def _on_renamed(self, old: str, new: str) -> None:
        if old == self._name:
            self._name = new
            self._show_name_error("")
            self.name_edit.setText(new)

    def _on_removed(self, name: str) -> None:
        if name == self._name:
            self.show_node(None)


def fix_step_text(node: str, fix: Fix) -> str:
    """The History entry of a one-click fix, naming the layer it changes:
    "Fix conv2d_1: padding='same'", "Fix dense: insert Flatten()"."""
    target = fix.node or node
    if fix.action == FixAction.SET_ARG:
        return f"Fix {target}: {fix.arg}={fix.value!r}"
    return f"Fix {target}: {fix.label[:1].lower()}{fix.label[1:]}"


def _empty(layout: QLayout) -> None:
    """Take every widget of ``layout`` off screen now and delete it when control returns to the
    event loop."""
    while (item := layout.takeAt(0)) is not None:
        widget = item.widget()
        if widget is not None:
            widget.hide()
            widget.setParent(None)
            widget.deleteLater()


def _identical(a: Any, b: Any) -> bool:
    """Same value and same type, recursively (so 1 and True, or 3 and (3, 3), differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    return a == b


def _fact_rows(grid: QGridLayout, page: QWidget, rows: list[tuple[str, str]]) -> dict[str, QLabel]:
    """A muted title and a selectable, wrapping value label per ``(key, title)`` row of ``grid``;
    the value labels by key."""
    values: dict[str, QLabel] = {}
    for row, (key, title) in enumerate(rows):
        name = QLabel(title, page)
        mute(name)
        value = QLabel(page)
        value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        value.setWordWrap(True)
        grid.addWidget(name, row, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(value, row, 1)
        values[key] = value
    return values


def _repeat_problem(design: Any, group: str) -> str | None:
    """Why ``group`` cannot be repeated in a chain (:func:`engine.group_repeat.repeat_problem`),
    or None; None too while that module is not there."""
    try:
        from engine.group_repeat import repeat_problem
    except ImportError:
        return None
    return repeat_problem(design, group)
