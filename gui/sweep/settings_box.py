"""The sweep's settings: objectives, trials, epochs, sampler, pruner, budget, storage and study.

The box shows a :class:`~engine.sweep_settings.SweepSettings` (:meth:`SweepSettingsBox.set_settings`,
which never emits) and announces each value the user settles on with ``sigChanged``;
:meth:`SweepSettingsBox.settings` reads them back. Where the study lives is said under the
fields: the default SQLite file beside the project, or "Save the project first" with a Save
button when the project has no file yet.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSizePolicy,
    QSpinBox, QVBoxLayout, QWidget,
)

from engine.errors import ConvasError
from engine.sweep_settings import (
    SWEEP_DB_SUFFIX, Budget, CostKind, Objectives, PrunerKind, SamplerKind, SweepSettings, default_storage,
)
from engine.tasks import SPECS

from ..widgets import NoWheelMixin, mute

MB = 1024 ** 2  # activation memory is shown as Keras writes it (powers of 1024)
NO_LIMIT = "No limit"
TASK_METRIC = None  # the metric combo's "task's own" entry

SAMPLER_TEXT = {SamplerKind.TPE: "TPE", SamplerKind.NSGA2: "NSGA-II", SamplerKind.RANDOM: "Random"}
PRUNER_TEXT = {PrunerKind.NONE: "None", PrunerKind.MEDIAN: "Median", PrunerKind.HYPERBAND: "Hyperband"}
COST_TEXT = {None: "None (metric only)", CostKind.PARAMS: "Parameters", CostKind.MACS: "MACs",
             CostKind.LATENCY: "Latency (ms)"}


def validation_metrics() -> list[str]:
    """Every validation metric some task logs, the loss last."""
    names: list[str] = []
    for task_spec in SPECS.values():
        for name in (*task_spec.metrics, task_spec.quality):
            if name != "loss" and f"val_{name}" not in names:
                names.append(f"val_{name}")
    return [*names, "val_loss"]


class _Combo(NoWheelMixin, QComboBox):
    pass


class _Spin(NoWheelMixin, QSpinBox):
    pass


class _Limit(NoWheelMixin, QDoubleSpinBox):
    """A budget limit: a whole number (or MB) with thousands separators, "No limit" at 0."""

    def __init__(self, maximum: float, decimals: int = 0, suffix: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(decimals)
        self.setRange(0, maximum)
        self.setSpecialValueText(NO_LIMIT)
        self.setGroupSeparatorShown(True)
        self.setSuffix(suffix)
        self.setKeyboardTracking(False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSingleStep(10 ** max(0, 6 - decimals) if not decimals else 1.0)


class SweepSettingsBox(QWidget):
    """Editors for a sweep's settings, in two columns; the storage line under them."""

    sigChanged = Signal()
    sigSaveRequested = Signal()  # "Save the project first": the window saves it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = SweepSettings()
        self._showing = False
        self._path: Path | None = None
        self._design_name = "design"
        self._task_metric = "val_accuracy"

        self.metric_combo = _Combo(self)
        self.metric_combo.setAccessibleName("Metric")
        self.cost_combo = _Combo(self)
        self.cost_combo.setAccessibleName("Cost")
        for cost, text in COST_TEXT.items():
            self.cost_combo.addItem(text, cost.value if cost else None)
        self.trials_spin = _Spin(self)
        self.trials_spin.setRange(1, 100_000)
        self.epochs_spin = _Spin(self)
        self.epochs_spin.setRange(0, 100_000)
        self.epochs_spin.setSpecialValueText("As training")
        self.sampler_combo = _Combo(self)
        for sampler, text in SAMPLER_TEXT.items():
            self.sampler_combo.addItem(text, sampler.value)
        self.pruner_combo = _Combo(self)
        for pruner, text in PRUNER_TEXT.items():
            self.pruner_combo.addItem(text, pruner.value)
        self.params_limit = _Limit(1e15, parent=self)
        self.macs_limit = _Limit(1e18, parent=self)
        self.memory_limit = _Limit(1e7, decimals=1, suffix=" MB", parent=self)
        self.study_edit = QLineEdit(self)
        self.storage_edit = QLineEdit(self)
        self.storage_edit.setClearButtonEnabled(True)
        for counter in (self.trials_spin, self.epochs_spin):
            counter.setKeyboardTracking(False)
            counter.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        tips = {
            self.metric_combo: "The validation metric the sweep maximises (a loss or error: minimises)",
            self.cost_combo: "A cost to minimise at the same time: the answer is then a Pareto front",
            self.trials_spin: "Trained trials the study holds when the sweep stops (designs rejected "
                              "before training do not count)",
            self.epochs_spin: "Epochs each trial trains (As training: the Train panel's epochs)",
            self.sampler_combo: "How Optuna picks the next values: TPE (the default), the NSGA-II genetic "
                                "algorithm, or uniform random draws",
            self.pruner_combo: "Stop a trial early when its per-epoch validation metric falls behind",
            self.params_limit: "Designs with more parameters are rejected before training",
            self.macs_limit: "Designs with more multiply-accumulates per image are rejected before training",
            self.memory_limit: "Designs needing more activation memory (MB) at the training batch size are "
                               "rejected before training",
            self.study_edit: "The study's name in the storage; sweeps with the same name share its trials",
            self.storage_edit: "An Optuna storage URL (sqlite:///…, postgresql://…, mysql://…); empty: "
                               f"a {SWEEP_DB_SUFFIX} file beside the project",
        }
        rows: tuple[tuple[tuple[str, QWidget], ...], ...] = (
            (("Metric", self.metric_combo),),
            (("Cost", self.cost_combo), ("Trials", self.trials_spin)),
            (("Sampler", self.sampler_combo), ("Pruner", self.pruner_combo)),
            (("Epochs", self.epochs_spin), ("Max params", self.params_limit)),
            (("Max MACs", self.macs_limit), ("Max memory", self.memory_limit)),
            (("Study", self.study_edit),),
            (("Storage", self.storage_edit),),
        )
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        self.labels: dict[QWidget, QLabel] = {}

        def place(text: str, editor: QWidget, r: int, c: int, span: int = 1) -> None:
            label = QLabel(text, self)
            label.setBuddy(editor)
            label.setToolTip(tips[editor])
            editor.setToolTip(tips[editor])
            editor.setAccessibleName(text)
            editor.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            editor.setMinimumWidth(90)
            grid.addWidget(label, r, 2 * c, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
            grid.addWidget(editor, r, 2 * c + 1, 1, span)
            self.labels[editor] = label

        for r, pairs in enumerate(rows):
            for c, (text, editor) in enumerate(pairs):
                place(text, editor, r, c, span=3 if len(pairs) == 1 else 1)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        self.storage_label = QLabel(self)
        self.storage_label.setWordWrap(True)
        self.storage_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mute(self.storage_label)
        self.save_button = QPushButton("Save Project…", self)
        self.save_button.setToolTip("Save the project, so that its sweep has a file beside it")
        self.save_button.clicked.connect(self.sigSaveRequested)
        self.save_button.hide()
        storage_row = QHBoxLayout()
        storage_row.setContentsMargins(0, 0, 0, 0)
        storage_row.addWidget(self.storage_label, 1)
        storage_row.addWidget(self.save_button, 0, Qt.AlignmentFlag.AlignTop)

        self.error_label = QLabel(self)
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #e5484d;")
        self.error_label.hide()

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(6)
        column.addLayout(grid)
        column.addLayout(storage_row)
        column.addWidget(self.error_label)

        for combo in (self.metric_combo, self.cost_combo, self.sampler_combo, self.pruner_combo):
            combo.currentIndexChanged.connect(self._on_edit)
        spins: tuple[QSpinBox | QDoubleSpinBox, ...] = (self.trials_spin, self.epochs_spin, self.params_limit,
                                                        self.macs_limit, self.memory_limit)
        for spin in spins:
            spin.valueChanged.connect(self._on_edit)
        for line in (self.study_edit, self.storage_edit):
            line.editingFinished.connect(self._on_edit)
        self._fill_metrics()
        self.set_settings(self._settings)

    # --- what the project says -------------------------------------------------------------------

    def set_project(self, path: Path | None, design_name: str, task_metric: str) -> None:
        """The project's file (None: unsaved), the design's name (the default study) and the
        task's own validation metric (what "Task's" means in the metric combo)."""
        self._path, self._design_name = path, design_name or "design"
        if task_metric != self._task_metric:
            self._task_metric = task_metric
            self._fill_metrics()
        self.study_edit.setPlaceholderText(self._design_name)
        self._show_storage()

    def storage(self) -> str | None:
        """The storage URL a sweep of these settings uses; None when the project has no file and
        no URL was given."""
        if self._settings.storage:
            return self._settings.storage
        return default_storage(self._path) if self._path is not None else None

    def study(self) -> str:
        return self._settings.study or self._design_name

    def _show_storage(self) -> None:
        if self._path is not None:
            default = self._path.with_name(self._path.stem + SWEEP_DB_SUFFIX).name
            self.storage_edit.setPlaceholderText(f"{default} beside the project")
        else:
            self.storage_edit.setPlaceholderText(f"name{SWEEP_DB_SUFFIX} beside the project, once saved")
        url = self.storage()
        needs_save = url is None
        if needs_save:
            text = ("Save the project first: its sweep is kept in a file beside it "
                    "(or give a storage URL above).")
        else:
            text = f"Study “{self.study()}” in {_short_url(url or '')}"
        self.storage_label.setText(text)
        self.storage_label.setToolTip(url or "")
        self.save_button.setVisible(needs_save)

    def _fill_metrics(self) -> None:
        showing, self._showing = self._showing, True
        try:
            self.metric_combo.clear()
            self.metric_combo.addItem(f"{self._task_metric.replace('_', ' ')} (the task's own)", TASK_METRIC)
            for name in validation_metrics():
                self.metric_combo.addItem(name.replace("_", " "), name)
            self._select(self.metric_combo, self._settings.objectives.metric)
        finally:
            self._showing = showing

    # --- settings ------------------------------------------------------------------------------

    def set_settings(self, settings: SweepSettings) -> None:
        """Show ``settings`` (no ``sigChanged``)."""
        self._settings = settings
        self._showing = True
        try:
            self._select(self.metric_combo, settings.objectives.metric)
            cost = settings.objectives.cost
            self._select(self.cost_combo, cost.value if cost else None)
            self.trials_spin.setValue(settings.trials)
            self.epochs_spin.setValue(settings.epochs or 0)
            self._select(self.sampler_combo, settings.sampler.value)
            self._select(self.pruner_combo, settings.pruner.value)
            budget = settings.budget
            self.params_limit.setValue(float(budget.max_params or 0))
            self.macs_limit.setValue(float(budget.max_macs or 0))
            self.memory_limit.setValue((budget.max_activation_bytes or 0) / MB)
            self.study_edit.setText(settings.study or "")
            self.storage_edit.setText(settings.storage or "")
            self.error_label.hide()
        finally:
            self._showing = False
        self._show_storage()

    def settings(self) -> SweepSettings:
        """The settings the fields say; :class:`ConvasError` naming a bad one (a storage that is
        not a URL)."""
        cost_value = self.cost_combo.currentData()
        memory = self.memory_limit.value()
        budget = Budget(max_params=int(self.params_limit.value()) or None,
                        max_macs=int(self.macs_limit.value()) or None,
                        max_activation_bytes=round(memory * MB) or None)
        return self._settings.with_changes(
            objectives=Objectives(self.metric_combo.currentData(), CostKind(cost_value) if cost_value else None),
            trials=self.trials_spin.value(), epochs=self.epochs_spin.value() or None,
            sampler=SamplerKind(self.sampler_combo.currentData()),
            pruner=PrunerKind(self.pruner_combo.currentData()), budget=budget,
            study=self.study_edit.text().strip() or None, storage=self.storage_edit.text().strip() or None)

    def _on_edit(self, *_args: object) -> None:
        if self._showing:
            return
        try:
            settings = self.settings()
        except ConvasError as exc:
            self.error_label.setText(str(exc)[:1].upper() + str(exc)[1:])
            self.error_label.show()
            return
        self.error_label.hide()
        if settings != self._settings:
            self._settings = settings
            self._show_storage()
            self.sigChanged.emit()

    @staticmethod
    def _select(combo: QComboBox, data: object) -> None:
        for index in range(combo.count()):  # findData cannot find None
            if combo.itemData(index) == data:
                combo.setCurrentIndex(index)
                return


def _short_url(url: str) -> str:
    """A SQLite URL as its file's name; other URLs without their password."""
    from engine.sweep_storage import sqlite_path

    if url.startswith("sqlite:///"):
        return Path(sqlite_path(url) or url.removeprefix("sqlite:///")).name
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        rest = f"{user}@{host}"
    return f"{scheme}{sep}{rest}"
