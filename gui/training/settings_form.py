"""The training settings form: one editor per :class:`engine.training.TrainingConfig` field.

The form shows a config (:meth:`SettingsForm.set_config`, which never emits) and announces each
value the user settles on with ``sigChanged``; :meth:`SettingsForm.config` reads the values back.
Fields the form does not show (the metrics) are kept from the config it was given.
"""

from __future__ import annotations

import dataclasses
import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QLabel, QSizePolicy, QSpinBox, QWidget,
)

from engine.training import TrainingConfig

from ..widgets import NoWheelMixin, NumberSpinBox

OPTIMIZER_CHOICES = (("Adam", "adam"), ("AdamW", "adamw"), ("SGD (momentum)", "sgd"), ("RMSprop", "rmsprop"))
AUTOMATIC_LOSS = "Automatic"
# Keras loss names offered besides the automatic choice (any other saved name is shown as well).
LOSS_NAMES = (
    "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
    "categorical_focal_crossentropy", "binary_focal_crossentropy", "kl_divergence", "poisson",
    "categorical_hinge", "hinge", "squared_hinge", "mean_squared_error", "mean_absolute_error", "huber",
)
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
    """Editors for optimizer, learning rate, batch size, epochs, validation split, loss, early
    stopping, learning-rate reduction, best weights and seed, in two columns."""

    sigChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._config = TrainingConfig()
        self._showing = False

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
        self.loss_combo.addItem(AUTOMATIC_LOSS, None)
        for name in LOSS_NAMES:
            self.loss_combo.addItem(name, name)
        self.loss_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.loss_combo.setMinimumContentsLength(10)
        self.early_spin = _Spin(0, 10000, self, off=True, suffix=" epochs")
        self.plateau_spin = _Spin(0, 10000, self, off=True, suffix=" epochs")
        self.best_check = QCheckBox("Keep the best weights", self)
        self.seed_spin = _Spin(0, 2 ** 31 - 1, self)

        tips = {
            self.optimizer_combo: "How the weights move after each batch",
            self.lr_spin: "Step size of the optimizer; the arrows step 1, 2, 5, 10, … "
                          "(type e.g. 3e-4)",
            self.momentum_spin: "Momentum of SGD (the other optimizers ignore it)",
            self.batch_spin: "Images per training step",
            self.epochs_spin: "Passes over the training images",
            self.split_spin: "Share of the images held out to validate after each epoch",
            self.loss_combo: "Automatic picks the loss that suits the output and the labels",
            self.early_spin: "Stop when the validation loss has not improved for this many epochs",
            self.plateau_spin: "Halve the learning rate when the validation loss has not improved "
                               "for this many epochs",
            self.best_check: "At the end, put back the weights of the epoch with the best "
                             "validation loss",
            self.seed_spin: "Fixes the shuffling, the validation split and the initial weights",
        }
        rows = (
            (("Optimizer", self.optimizer_combo), ("Learning rate", self.lr_spin)),
            (("Batch size", self.batch_spin), ("Epochs", self.epochs_spin)),
            (("Validation", self.split_spin), ("Loss", self.loss_combo)),
            (("Early stopping", self.early_spin), ("Reduce LR after", self.plateau_spin)),
            (("Momentum", self.momentum_spin), ("Seed", self.seed_spin)),
        )
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        for r, pairs in enumerate(rows):
            for c, (text, editor) in enumerate(pairs):
                label = QLabel(text, self)
                label.setBuddy(editor)
                label.setToolTip(tips[editor])
                editor.setToolTip(tips[editor])
                editor.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
                editor.setMinimumWidth(90)
                grid.addWidget(label, r, 2 * c, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
                grid.addWidget(editor, r, 2 * c + 1)
        grid.addWidget(self.best_check, len(rows), 0, 1, 4)
        self.best_check.setToolTip(tips[self.best_check])
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        grid.setColumnMinimumWidth(2, 0)

        for combo in (self.optimizer_combo, self.loss_combo):
            combo.currentIndexChanged.connect(self._on_edit)
        for spin in (self.lr_spin, self.momentum_spin, self.batch_spin, self.epochs_spin,
                     self.split_spin, self.early_spin, self.plateau_spin, self.seed_spin):
            spin.valueChanged.connect(self._on_edit)
        self.best_check.toggled.connect(self._on_edit)
        self.set_config(self._config)

    # --- public -------------------------------------------------------------------------------

    def set_config(self, config: TrainingConfig) -> None:
        """Show ``config`` (no ``sigChanged``)."""
        self._config = dataclasses.replace(config)
        self._showing = True
        try:
            index = self.optimizer_combo.findData(config.optimizer)
            self.optimizer_combo.setCurrentIndex(max(0, index))
            self.lr_spin.setValue(min(LR_MAX, max(LR_MIN, config.learning_rate)))
            self.momentum_spin.setValue(config.momentum)
            self.batch_spin.setValue(config.batch_size)
            self.epochs_spin.setValue(config.epochs)
            self.split_spin.setValue(round(config.validation_split * 100))
            index = self.loss_combo.findData(config.loss)
            if index < 0 and config.loss is not None:  # a Keras loss this list does not offer, kept as the file says
                self.loss_combo.addItem(config.loss, config.loss)
                index = self.loss_combo.count() - 1
            self.loss_combo.setCurrentIndex(index)
            self.early_spin.setValue(self._spin_value(self.early_spin, config.early_stopping_patience))
            self.plateau_spin.setValue(self._spin_value(self.plateau_spin, config.reduce_lr_patience))
            self.best_check.setChecked(config.keep_best_weights)
            self.seed_spin.setValue(config.seed)
        finally:
            self._showing = False
        self._sync_enabled()

    def config(self) -> TrainingConfig:
        """The config the form shows."""
        return TrainingConfig(
            optimizer=self.optimizer_combo.currentData(), learning_rate=float(self.lr_spin.value()),
            momentum=float(self.momentum_spin.value()), batch_size=self.batch_spin.value(),
            epochs=self.epochs_spin.value(), loss=self.loss_combo.currentData(),
            metrics=self._config.metrics,
            early_stopping_patience=self._optional(self.early_spin),
            reduce_lr_patience=self._optional(self.plateau_spin),
            keep_best_weights=self.best_check.isChecked(), seed=self.seed_spin.value(),
            validation_split=self.split_spin.value() / 100.0)

    # --- internals ----------------------------------------------------------------------------

    @staticmethod
    def _spin_value(spin: QSpinBox, value: int | None) -> int:
        return spin.minimum() if value is None else value

    @staticmethod
    def _optional(spin: QSpinBox) -> int | None:
        return None if spin.value() == spin.minimum() else spin.value()

    def _sync_enabled(self) -> None:
        self.momentum_spin.setEnabled(self.optimizer_combo.currentData() == "sgd")

    def _on_edit(self, *_args: object) -> None:
        self._sync_enabled()
        if not self._showing:
            self.sigChanged.emit()


class _NoWheelDoubleSpin(NoWheelMixin, QDoubleSpinBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setKeyboardTracking(False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
