"""The training settings form: one editor per :class:`engine.training.TrainingConfig` field.

The form shows a config (:meth:`SettingsForm.set_config`, which never emits) and announces each
value the user settles on with ``sigChanged``; :meth:`SettingsForm.config` reads the values back.
Fields the form does not show (the metrics) are kept from the config it was given.

The task combo offers "Automatic (<the task the panel inferred>)" and the five tasks; the loss
combo offers the losses of the task in effect (:func:`engine.tasks.spec`), and the noise field
shows only for reconstruction. The collapsible fine-tuning section sets the two-phase schedule;
names of layers to unfreeze are checked against the design the panel gives
(:meth:`SettingsForm.set_design`) and explained inline.
"""

from __future__ import annotations

import dataclasses
import math

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
    QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget,
)

from engine.errors import ConvasError
from engine.search_range import SearchRange
from engine.tasks import Task, spec
from engine.training import SEARCHABLE_SETTINGS, RunOn, TrainingConfig

from ..search_field import RangeEditor, SearchRow, SearchToggle
from ..theme import ERROR_COLOR
from ..widgets import NoWheelMixin, NumberSpinBox, mute
from .run_on import RunOnBox

OPTIMIZER_CHOICES = (("Adam", "adam"), ("AdamW", "adamw"), ("SGD (momentum)", "sgd"), ("RMSprop", "rmsprop"))
AUTOMATIC_LOSS = "Automatic"
AUTOMATIC_TASK = "Automatic"
FINE_TUNING_TITLE = "Fine-tuning (two phases)"
LR_MIN, LR_MAX = 1e-8, 1e6
_MANTISSAS = (1.0, 2.0, 5.0)  # the learning rate steps 1e-3, 2e-3, 5e-3, 1e-2, …


def _log_steps(value: float, steps: int) -> float:
    """``value`` moved ``steps`` places along the 1-2-5 sequence (a value off the sequence first
    snaps to the neighbour in the direction of the step)."""
    exponent = math.floor(math.log10(value))
    grid = [m * 10.0 ** e for e in range(exponent - 1, exponent + 2) for m in _MANTISSAS]
    if steps > 0:
        index = max(i for i, g in enumerate(grid) if g <= value * (1 + 1e-9))
    else:
        index = min(i for i, g in enumerate(grid) if g >= value * (1 - 1e-9))
    index += steps
    exponent += (index // 3) - 1
    return _MANTISSAS[index % 3] * 10.0 ** exponent


class LearningRateSpin(NumberSpinBox):
    """A positive number typed as written (0.001, 3e-4) that steps along 1, 2, 5, 10, …"""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(LR_MIN, LR_MAX, digits=6, parent=parent)

    def stepBy(self, steps: int) -> None:
        self.setValue(min(LR_MAX, max(LR_MIN, _log_steps(self.value(), steps))))


class _Spin(NoWheelMixin, QSpinBox):
    def __init__(self, lo: int, hi: int, parent: QWidget | None = None, off: bool = False,
                 suffix: str = "") -> None:
        super().__init__(parent)
        self.setRange(lo - 1 if off else lo, hi)
        if off:
            self.setSpecialValueText("Off")  # shown at the minimum, one below the real range
        self.setSuffix(suffix)
        self.setKeyboardTracking(False)
        self.setAccelerated(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)


class _Combo(NoWheelMixin, QComboBox):
    pass


class SettingsForm(QWidget):
    """Editors for the task, loss, optimizer, learning rate, batch size, epochs, validation split,
    early stopping, learning-rate reduction, seed, noise and best weights in two columns, then the
    collapsible fine-tuning section."""

    sigChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._config = TrainingConfig()
        self._showing = False
        self._inferred = Task.CLASSIFICATION   # what "Automatic" means now (the panel says)
        self._design: Any = None               # for checking the names to unfreeze
        self._analysis: Any = None

        self.task_combo = _Combo(self)
        self.task_combo.addItem(self._automatic_task_text(), None)
        for task in Task:
            self.task_combo.addItem(spec(task).label, task.value)
            self.task_combo.setItemData(self.task_combo.count() - 1, spec(task).description,
                                        Qt.ItemDataRole.ToolTipRole)
        self.task_combo.setAccessibleName("Task")
        self.optimizer_combo = _Combo(self)
        for text, key in OPTIMIZER_CHOICES:
            self.optimizer_combo.addItem(text, key)
        self.lr_spin = LearningRateSpin(self)
        self.momentum_spin = _NoWheelDoubleSpin(self)
        self.momentum_spin.setRange(0.0, 0.99)
        self.momentum_spin.setDecimals(2)
        self.momentum_spin.setSingleStep(0.05)
        self.batch_spin = _Spin(1, 65536, self)
        self.epochs_spin = _Spin(1, 100000, self)
        self.split_spin = _Spin(0, 90, self, suffix=" %")
        self.loss_combo = _Combo(self)
        self.loss_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.loss_combo.setMinimumContentsLength(10)
        self.loss_combo.setAccessibleName("Loss")
        self.early_spin = _Spin(0, 10000, self, off=True, suffix=" epochs")
        self.plateau_spin = _Spin(0, 10000, self, off=True, suffix=" epochs")
        self.best_check = QCheckBox("Keep the best weights", self)
        self.seed_spin = _Spin(0, 2 ** 31 - 1, self)
        self.noise_spin = _NoWheelDoubleSpin(self)
        self.noise_spin.setRange(0.0, 1.0)
        self.noise_spin.setDecimals(2)
        self.noise_spin.setSingleStep(0.05)
        self.noise_spin.setSpecialValueText("None")
        self.noise_spin.setAccessibleName("Noise")

        tips = {
            self.task_combo: "What the network learns; Automatic reads it from the design's output "
                             "and the data",
            self.optimizer_combo: "How the weights move after each batch",
            self.lr_spin: "Step size of the optimizer; the arrows step 1, 2, 5, 10, … "
                          "(type e.g. 3e-4)",
            self.momentum_spin: "Momentum of SGD (the other optimizers ignore it)",
            self.batch_spin: "Images per training step",
            self.epochs_spin: "Passes over the training images (both phases when fine-tuning)",
            self.split_spin: "Share of the images held out to validate after each epoch",
            self.loss_combo: "Automatic picks the loss that suits the task and the output",
            self.early_spin: "Stop when the validation loss has not improved for this many epochs",
            self.plateau_spin: "Halve the learning rate when the validation loss has not improved "
                               "for this many epochs",
            self.best_check: "At the end, put back the weights of the epoch with the best "
                             "validation loss",
            self.seed_spin: "Fixes the shuffling, the validation split and the initial weights",
            self.noise_spin: "Denoising: the standard deviation of Gaussian noise added to each "
                             "input image (pixels 0–1); the target stays the clean image",
        }
        wide: tuple[tuple[str, QWidget], ...] = (("Task", self.task_combo), ("Loss", self.loss_combo))
        rows: tuple[tuple[tuple[str, QWidget], tuple[str, QWidget]], ...] = (
            (("Optimizer", self.optimizer_combo), ("Learning rate", self.lr_spin)),
            (("Batch size", self.batch_spin), ("Epochs", self.epochs_spin)),
            (("Validation", self.split_spin), ("Momentum", self.momentum_spin)),
            (("Early stopping", self.early_spin), ("Reduce LR after", self.plateau_spin)),
            (("Seed", self.seed_spin), ("Noise", self.noise_spin)),
        )
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        self._labels: dict[QWidget, QLabel] = {}
        # The settings a sweep may search: a "…" toggle beside each, their ranges under the grid.
        self._search: dict[str, SearchRange] = {}
        searchable = {self.lr_spin: "learning_rate", self.batch_spin: "batch_size",
                      self.optimizer_combo: "optimizer", self.momentum_spin: "momentum"}
        assert set(searchable.values()) == set(SEARCHABLE_SETTINGS)
        self._search_rows: dict[str, SearchRow] = {}
        self._search_labels: dict[str, str] = {}

        def place(text: str, editor: QWidget, r: int, c: int, span: int = 1) -> None:
            label = QLabel(text, self)
            label.setBuddy(editor)
            label.setToolTip(tips[editor])
            editor.setToolTip(tips[editor])
            editor.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            editor.setMinimumWidth(90)
            grid.addWidget(label, r, 2 * c, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
            key = searchable.get(editor)
            if key is None:
                grid.addWidget(editor, r, 2 * c + 1, 1, span)
            else:
                cell = QWidget(self)
                line = QHBoxLayout(cell)
                line.setContentsMargins(0, 0, 0, 0)
                line.setSpacing(2)
                line.addWidget(editor, 1)
                row = self._search_row(key)
                row.toggle.setParent(cell)
                line.addWidget(row.toggle)
                grid.addWidget(cell, r, 2 * c + 1, 1, span)
                self._search_labels[key] = text
            self._labels[editor] = label

        for r, (text, editor) in enumerate(wide):
            place(text, editor, r, 0, span=3)
        for r, pairs in enumerate(rows, start=len(wide)):
            for c, (text, editor) in enumerate(pairs):
                place(text, editor, r, c)
        grid.addWidget(self.best_check, len(wide) + len(rows), 0, 1, 4)
        self.best_check.setToolTip(tips[self.best_check])
        # Where the run trains; the cluster's details open below the grid.
        self.run_on_box = RunOnBox(self)
        run_on_label = QLabel("Run on", self)
        run_on_label.setBuddy(self.run_on_box.combo)
        run_on_label.setToolTip(self.run_on_box.combo.toolTip())
        self.run_on_box.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        grid.addWidget(run_on_label, len(wide) + len(rows) + 1, 0,
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
        grid.addWidget(self.run_on_box.combo, len(wide) + len(rows) + 1, 1, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        grid.setColumnMinimumWidth(2, 0)

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(6)
        column.addLayout(grid)
        column.addWidget(self.run_on_box)
        column.addWidget(self._build_search_box())
        column.addWidget(self._build_fine_tuning())

        self.task_combo.currentIndexChanged.connect(self._on_task_edit)
        for combo in (self.optimizer_combo, self.loss_combo):
            combo.currentIndexChanged.connect(self._on_edit)
        for spin in (self.lr_spin, self.momentum_spin, self.batch_spin, self.epochs_spin,
                     self.split_spin, self.early_spin, self.plateau_spin, self.seed_spin,
                     self.noise_spin, self.head_spin, self.top_spin):
            spin.valueChanged.connect(self._on_edit)
        self.best_check.toggled.connect(self._on_edit)
        self.run_on_box.sigChanged.connect(self._on_edit)
        self.fine_check.toggled.connect(self._on_edit)
        for line in (self.unfreeze_edit, self.fine_lr_edit):
            line.editingFinished.connect(self._on_line_edit)
        self.set_config(self._config)

    def _search_row(self, key: str) -> SearchRow:
        """The toggle and range editor of training setting ``key``."""
        if key == "optimizer":
            row = SearchRow(SEARCHABLE_SETTINGS[key], self, choices=tuple(k for _t, k in OPTIMIZER_CHOICES))
        elif key == "momentum":
            row = SearchRow(SEARCHABLE_SETTINGS[key], self, minimum=0.0, maximum=0.99)
        elif key == "batch_size":
            row = SearchRow(SEARCHABLE_SETTINGS[key], self, minimum=1, maximum=65536)
        else:
            row = SearchRow(SEARCHABLE_SETTINGS[key], self, minimum=LR_MIN, maximum=LR_MAX)
        row.toggle.clicked.connect(lambda on, key=key: self._toggle_search(key, on))
        row.on_edit = lambda edited, key=key: self._range_edited(key, edited)
        self._search_rows[key] = row
        return row

    def _build_search_box(self) -> QWidget:
        """Under the grid: the range of each setting whose toggle is on, titled by the setting."""
        self.search_box = QWidget(self)
        grid = QGridLayout(self.search_box)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(2)
        grid.setColumnStretch(1, 1)
        self._search_titles: dict[str, QLabel] = {}
        for r, (key, row) in enumerate(self._search_rows.items()):
            title = QLabel(f"{self._search_labels.get(key, key)} in a sweep", self.search_box)
            mute(title)
            row.box.setParent(self.search_box)
            grid.addWidget(title, 2 * r, 0, 1, 2)
            grid.addWidget(row.box, 2 * r + 1, 0, 1, 2)
            self._search_titles[key] = title
        self._show_search_box()
        return self.search_box

    def _show_search_box(self) -> None:
        for key, row in self._search_rows.items():
            self._search_titles[key].setVisible(row.toggle.isChecked())
        self.search_box.setVisible(any(row.toggle.isChecked() for row in self._search_rows.values()))

    def _current_value(self, key: str) -> Any:
        return {"learning_rate": self.lr_spin.value(), "batch_size": self.batch_spin.value(),
                "optimizer": self.optimizer_combo.currentData(), "momentum": self.momentum_spin.value()}[key]

    def _toggle_search(self, key: str, on: bool) -> None:
        """A setting's "…" was clicked: start a range around its value, or drop the range."""
        row = self._search_rows[key]
        if not on:
            row.pending = False
            row.show(None)
            self._show_search_box()
            if self._search.pop(key, None) is not None:
                self.sigChanged.emit()
            return
        rng = row.start(self._current_value(key), log=True if key == "learning_rate" else None)
        row.ensure_editor().set_range(rng)
        row.box.show()
        self._show_search_box()
        problem = rng.problem()
        if problem is not None:
            row.pending = True
            row.show_problem(problem)
            return
        self._search[key] = rng
        self.sigChanged.emit()

    def _range_edited(self, key: str, edited: SearchRange | str) -> None:
        """A range the user settled on: kept when it can be sampled, otherwise shown with the
        reason (the setting keeps its last good range)."""
        settled = self._search_rows[key].settle(edited)
        if settled is not None and self._search.get(key) != settled:
            self._search[key] = settled
            self.sigChanged.emit()

    def _build_fine_tuning(self) -> QWidget:
        """The collapsible two-phase section: a header button, then its fields (hidden until
        opened; opened by itself when a config has a schedule)."""
        box = QWidget(self)
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 4, 0, 0)
        column.setSpacing(4)
        self.fine_toggle = QToolButton(box)
        self.fine_toggle.setText(FINE_TUNING_TITLE)
        self.fine_toggle.setCheckable(True)
        self.fine_toggle.setAutoRaise(True)
        self.fine_toggle.setStyleSheet("QToolButton { border: none; padding: 2px 0px; }")  # a heading, not a button
        self.fine_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.fine_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.fine_toggle.setToolTip("Train the head with the frozen layers kept frozen, then unfreeze "
                                    "some of them and go on at a lower learning rate")
        self.fine_toggle.toggled.connect(self._show_fine_tuning)
        column.addWidget(self.fine_toggle)

        self.fine_body = QFrame(box)
        body = QGridLayout(self.fine_body)
        body.setContentsMargins(14, 0, 0, 0)
        body.setHorizontalSpacing(8)
        body.setVerticalSpacing(6)
        self.fine_check = QCheckBox("Train the head first, then fine-tune", self.fine_body)
        self.fine_check.setToolTip("Phase one trains with the frozen layers frozen; phase two "
                                   "unfreezes the layers chosen below")
        self.head_spin = _Spin(1, 100000, self.fine_body, suffix=" epochs")
        self.head_spin.setToolTip("Epochs of phase one (the head); the rest of Epochs fine-tune")
        self.head_spin.setAccessibleName("Head epochs")
        self.top_spin = _Spin(0, 100000, self.fine_body, suffix=" layers")
        self.top_spin.setSpecialValueText("None")
        self.top_spin.setToolTip("Unfreeze the top K frozen layers with weights (nearest the "
                                 "output); BatchNormalization stays frozen")
        self.top_spin.setAccessibleName("Unfreeze top layers")
        self.unfreeze_edit = QLineEdit(self.fine_body)
        self.unfreeze_edit.setPlaceholderText("layer or group names, or backbone")
        self.unfreeze_edit.setToolTip("Layers or groups to unfreeze in phase two, separated by "
                                      "commas (with the top K above); both empty: every frozen layer")
        self.unfreeze_edit.setAccessibleName("Unfreeze names")
        self.unfreeze_edit.setClearButtonEnabled(True)
        self.fine_lr_edit = QLineEdit(self.fine_body)
        self.fine_lr_edit.setToolTip("The learning rate of phase two; empty: a tenth of the "
                                     "learning rate")
        self.fine_lr_edit.setAccessibleName("Fine-tune learning rate")
        self.fine_message = QLabel(self.fine_body)
        self.fine_message.setWordWrap(True)
        self.fine_message.setTextFormat(Qt.TextFormat.PlainText)
        self.fine_message.setStyleSheet(f"color: {ERROR_COLOR};")
        self.fine_message.hide()
        self.frozen_label = QLabel(self.fine_body)
        self.frozen_label.setWordWrap(True)
        mute(self.frozen_label)
        rows: tuple[tuple[str, QWidget], ...] = (
            ("Head epochs", self.head_spin), ("Unfreeze top", self.top_spin),
            ("and layers", self.unfreeze_edit), ("Fine-tune LR", self.fine_lr_edit))
        body.addWidget(self.fine_check, 0, 0, 1, 2)
        for r, (text, editor) in enumerate(rows, start=1):
            label = QLabel(text, self.fine_body)
            label.setBuddy(editor)
            label.setToolTip(editor.toolTip())
            editor.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            body.addWidget(label, r, 0)
            body.addWidget(editor, r, 1)
        body.addWidget(self.fine_message, len(rows) + 1, 0, 1, 2)
        body.addWidget(self.frozen_label, len(rows) + 2, 0, 1, 2)
        body.setColumnStretch(1, 1)
        self.fine_body.hide()
        column.addWidget(self.fine_body)
        return box

    # --- public -------------------------------------------------------------------------------

    def set_config(self, config: TrainingConfig) -> None:
        """Show ``config`` (no ``sigChanged``)."""
        self._config = dataclasses.replace(config)
        self._showing = True
        try:
            self.task_combo.setCurrentIndex(max(0, self.task_combo.findData(
                None if config.task is None else Task(config.task).value)))
            self._fill_losses(config.loss)
            index = self.optimizer_combo.findData(config.optimizer)
            self.optimizer_combo.setCurrentIndex(max(0, index))
            self.lr_spin.setValue(min(LR_MAX, max(LR_MIN, config.learning_rate)))
            self.momentum_spin.setValue(config.momentum)
            self.batch_spin.setValue(config.batch_size)
            self.epochs_spin.setValue(config.epochs)
            self.split_spin.setValue(round(config.validation_split * 100))
            self.early_spin.setValue(self._spin_value(self.early_spin, config.early_stopping_patience))
            self.plateau_spin.setValue(self._spin_value(self.plateau_spin, config.reduce_lr_patience))
            self.best_check.setChecked(config.keep_best_weights)
            self.seed_spin.setValue(config.seed)
            self.noise_spin.setValue(min(1.0, max(0.0, config.noise_stddev)))
            self.fine_check.setChecked(config.head_epochs is not None)
            self.head_spin.setValue(config.head_epochs if config.head_epochs is not None
                                    else max(1, min(config.epochs - 1, 2)))
            self.top_spin.setValue(config.unfreeze_top)
            self.unfreeze_edit.setText(", ".join(config.unfreeze))
            self.fine_lr_edit.setText("" if config.fine_tune_learning_rate is None
                                      else f"{config.fine_tune_learning_rate:g}")
            if config.head_epochs is not None:
                self.fine_toggle.setChecked(True)
        finally:
            self._showing = False
        self._sync()

    def config(self, fine_tuning: bool = True) -> TrainingConfig:
        """The config the form shows; :class:`ConvasError` saying what to fix when the
        fine-tuning fields are not usable. ``fine_tuning=False``: the config without the
        two-phase schedule (never refused: what the data to load depends on)."""
        fine = fine_tuning and self.fine_check.isChecked()
        problem = self.fine_tuning_problem() if fine else None
        if problem:
            raise ConvasError(problem)
        return TrainingConfig(
            optimizer=self.optimizer_combo.currentData(), learning_rate=float(self.lr_spin.value()),
            momentum=float(self.momentum_spin.value()), batch_size=self.batch_spin.value(),
            epochs=self.epochs_spin.value(), loss=self.loss_combo.currentData(),
            metrics=self._config.metrics,
            early_stopping_patience=self._optional(self.early_spin),
            reduce_lr_patience=self._optional(self.plateau_spin),
            keep_best_weights=self.best_check.isChecked(), seed=self.seed_spin.value(),
            validation_split=self.split_spin.value() / 100.0,
            task=self.chosen_task(), noise_stddev=float(self.noise_spin.value()),
            head_epochs=self.head_spin.value() if fine else None,
            unfreeze=self._unfreeze_names() if fine else (),
            unfreeze_top=self.top_spin.value() if fine else 0,
            fine_tune_learning_rate=self._fine_lr() if fine else None)

    def search_ranges(self) -> dict[str, SearchRange]:
        """The ranges a sweep tries for the settings (only ranges that can be sampled); plain
        training ignores them."""
        return dict(self._search)

    def set_search(self, ranges: dict[str, SearchRange]) -> None:
        """Show the settings' ``ranges`` (no ``sigChanged``)."""
        self._search = {k: r for k, r in ranges.items() if k in self._search_rows}
        for key, row in self._search_rows.items():
            row.pending = False
            row.show(self._search.get(key))
        self._show_search_box()

    def search_toggle(self, key: str) -> SearchToggle:
        """The "…" toggle of training setting ``key`` (learning_rate, batch_size, optimizer, momentum)."""
        return self._search_rows[key].toggle

    def range_editor(self, key: str) -> RangeEditor | None:
        """The range editor of training setting ``key`` (None until first needed)."""
        return self._search_rows[key].editor

    def range_error(self, key: str) -> str:
        """Why the range shown for ``key`` cannot be sampled ('' when it can)."""
        return self._search_rows[key].problem()

    def run_on(self) -> RunOn:
        """Where the form says to train (:class:`engine.training.RunOn`)."""
        return self.run_on_box.run_on()

    def set_run_on(self, run_on: RunOn) -> None:
        """Show ``run_on`` (no ``sigChanged``)."""
        self.run_on_box.set_run_on(run_on)

    def run_on_problem(self) -> str | None:
        """Why a run cannot start where the form says (with the fix), or None."""
        return self.run_on_box.problem()

    def chosen_task(self) -> Task | None:
        """The task the user chose (None: automatic)."""
        value = self.task_combo.currentData()
        return None if value is None else Task(value)

    def task(self) -> Task:
        """The task in effect: the chosen one, else the inferred one."""
        return self.chosen_task() or self._inferred

    def set_inferred_task(self, task: Task) -> None:
        """What "Automatic" stands for now (the panel infers it from the design and the data)."""
        if task == self._inferred:
            return
        self._inferred = task
        self.task_combo.setItemText(0, self._automatic_task_text())
        if self.chosen_task() is None:
            self._showing = True
            try:
                self._fill_losses(self.loss_combo.currentData())
            finally:
                self._showing = False
            self._sync()

    def set_design(self, design: Any, analysis: Any) -> None:
        """The design the names to unfreeze must name, and whose frozen layers and trainable
        parameters the section counts."""
        self._design, self._analysis = design, analysis
        self._sync()

    def fine_tuning_problem(self) -> str | None:
        """What is wrong with the fine-tuning fields (with the fix), or None."""
        if not self.fine_check.isChecked():
            return None
        if self.head_spin.value() >= self.epochs_spin.value():
            return (f"the head trains {self.head_spin.value()} epochs of {self.epochs_spin.value()}, "
                    f"leaving none to fine-tune; raise Epochs above {self.head_spin.value()} or "
                    f"lower Head epochs")
        text = self.fine_lr_edit.text().strip()
        if text:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value <= 0:
                return (f"the fine-tune learning rate must be a positive number such as 1e-5, not "
                        f"{text!r}; leave it empty for a tenth of the learning rate")
        names = self._unfreeze_names()
        if names and self._design is not None:
            from engine.freezing import resolve

            try:
                resolve(self._design, names)
            except ConvasError as exc:
                return f"phase two cannot unfreeze {', '.join(names)}: {exc}"
        return None

    # --- internals ----------------------------------------------------------------------------

    def _automatic_task_text(self) -> str:
        return f"{AUTOMATIC_TASK} ({spec(self._inferred).label})"

    def _fill_losses(self, keep: str | None) -> None:
        """The losses of the task in effect, "Automatic" first; ``keep`` stays chosen (added
        when the task does not offer it: a Keras loss the file names)."""
        combo = self.loss_combo
        blocked = combo.blockSignals(True)
        try:
            combo.clear()
            task = self.task()
            default = spec(task).default_loss
            combo.addItem(f"{AUTOMATIC_LOSS} ({default})", None)
            for name in spec(task).losses:
                combo.addItem(name, name)
            index = combo.findData(keep)
            if index < 0 and keep is not None:
                combo.addItem(keep, keep)
                index = combo.count() - 1
            combo.setCurrentIndex(max(0, index))
        finally:
            combo.blockSignals(blocked)

    def _unfreeze_names(self) -> tuple[str, ...]:
        return tuple(n.strip() for n in self.unfreeze_edit.text().split(",") if n.strip())

    def _fine_lr(self) -> float | None:
        text = self.fine_lr_edit.text().strip()
        return float(text) if text else None

    @staticmethod
    def _spin_value(spin: QSpinBox, value: int | None) -> int:
        return spin.minimum() if value is None else value

    @staticmethod
    def _optional(spin: QSpinBox) -> int | None:
        return None if spin.value() == spin.minimum() else spin.value()

    def _show_fine_tuning(self, shown: bool) -> None:
        self.fine_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.fine_body.setVisible(shown)

    def _sync(self) -> None:
        """Enable, show and explain what depends on other fields."""
        self.momentum_spin.setEnabled(self.optimizer_combo.currentData() == "sgd")
        reconstruction = self.task() is Task.RECONSTRUCTION
        self.noise_spin.setVisible(reconstruction)
        self._labels[self.noise_spin].setVisible(reconstruction)
        fine = self.fine_check.isChecked()
        for editor in (self.head_spin, self.top_spin, self.unfreeze_edit, self.fine_lr_edit):
            editor.setEnabled(fine)
        self.fine_lr_edit.setPlaceholderText(f"a tenth: {self.lr_spin.value() / 10:g}")
        problem = self.fine_tuning_problem()
        self.fine_message.setText(problem[:1].upper() + problem[1:] + ("" if problem[-1] in ".?!" else ".")
                                  if problem else "")
        self.fine_message.setVisible(bool(problem))
        self.frozen_label.setText(self._frozen_text())
        self.frozen_label.setVisible(bool(self.frozen_label.text()))

    def _frozen_text(self) -> str:
        """"3 of 20 layers frozen now · 1,234 trainable, 5,678 non-trainable parameters"."""
        if self._design is None:
            return ""
        from engine.freezing import frozen_nodes

        layers = [n for n in self._design.nodes.values() if n.kind != "InputLayer"]
        frozen = len(frozen_nodes(self._design))
        text = f"{frozen} of {len(layers)} layers frozen now"
        if frozen == 0:
            text += " (freeze the backbone on the canvas first)"
        analysis = self._analysis
        if analysis is not None:
            text += (f" · {analysis.trainable_params:,} trainable, "
                     f"{analysis.non_trainable_params:,} non-trainable parameters")
        return text

    def _on_task_edit(self, *_args: object) -> None:
        if self._showing:
            return
        # The chosen loss stays when the new task offers it; otherwise back to automatic.
        loss = self.loss_combo.currentData()
        self._showing = True
        try:
            self._fill_losses(loss if loss in spec(self.task()).losses else None)
        finally:
            self._showing = False
        self._on_edit()

    def _on_line_edit(self) -> None:
        self._on_edit()

    def _on_edit(self, *_args: object) -> None:
        self._sync()
        if not self._showing:
            self.sigChanged.emit()


class _NoWheelDoubleSpin(NoWheelMixin, QDoubleSpinBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setKeyboardTracking(False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
