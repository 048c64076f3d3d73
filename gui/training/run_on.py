"""The Train panel's "Run on" setting: this computer, all local GPUs, or a cluster of workers.

:class:`RunOnBox` edits an :class:`engine.training.RunOn` (kept by the project with the other
training settings): a combo box the settings form places in its grid, and below it the cluster's
details — N worker processes on this computer, or these machines (this computer is worker 0) with
the exact ``convas train`` command to run on each of the others and a button that copies it.

Whether there are GPUs is TensorFlow's answer, and importing TensorFlow takes seconds, so nobody
asks until the list is opened (or a saved choice of GPUs needs checking): :class:`GpuProbe` asks
on a worker thread, in a short child process unless TensorFlow is loaded already (after a run),
so the window never waits and never loads TensorFlow for it. The answer is kept for the session.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication, QResizeEvent, QStandardItemModel
from PySide6.QtWidgets import (
    QButtonGroup, QComboBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
    QPushButton, QRadioButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget,
)

from engine.distribute import Strategy
from engine.errors import ConvasError, first_line
from engine.training import LOCAL_WORKERS_MAX, ClusterKind, RunOn

from ..theme import ERROR_COLOR, WARNING_COLOR
from ..widgets import NoWheelMixin, mute
from ..workers import TaskState, Worker, create_worker
from .cluster_run import DEFAULT_PORT, cluster_problem, remote_commands

THIS_COMPUTER = "This computer"
LOCAL_GPUS = "All local GPUs"
CLUSTER = "Cluster…"
PROBE_TIMEOUT_S = 120.0
COMMAND_LINES_SHOWN = 12
_ITEMS = ((THIS_COMPUTER, Strategy.NONE, "Train in this window on the default device (a GPU if there is "
                                         "one, else the CPU)"),
          (LOCAL_GPUS, Strategy.MIRRORED, "Mirrored training over every GPU of this computer: each "
                                          "batch is split between them"),
          (CLUSTER, Strategy.MULTIWORKER, "Multi-worker training: several processes (on this computer "
                                          "or on other machines) train one model together"))
NO_GPU = ("No GPU was found on this computer (TensorFlow sees none); train on This computer, or on "
          "a cluster")


# --- finding GPUs -------------------------------------------------------------------------------

def count_gpus() -> int:
    """How many GPUs TensorFlow sees on this computer: asked in this process when TensorFlow is
    loaded already, else in a short child process (the window does not load TensorFlow for it).
    :class:`ConvasError` when TensorFlow cannot say."""
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
               PYTHONIOENCODING="utf-8")  # a Windows code page cannot decode every byte TensorFlow logs
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8",
                              errors="replace", env=env,
                              timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConvasError(f"could not look for GPUs: {first_line(exc)}") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].isdigit():
        said = [line for line in done.stderr.splitlines() if line.strip()]
        raise ConvasError("could not look for GPUs: " + (said[-1] if said else f"status {done.returncode}"))
    return int(lines[-1])


class GpuProbe(QObject):
    """Asks :func:`count_gpus` once per session on a worker thread; ``sigFound(count)``, or
    ``sigFound(0)`` with :attr:`error` set when it could not tell."""

    sigFound = Signal(int)

    found: int | None = None          # the session's answer (class-wide: GPUs do not come and go)
    error: str | None = None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.task: Worker | None = None

    def looking(self) -> bool:
        return self.task is not None

    def start(self) -> None:
        """Look, unless the answer is known or being found."""
        if GpuProbe.found is not None or self.task is not None:
            return
        self.task = create_worker(_probe, name="convas-gpu-probe", failure="Could not look for GPUs", start=False)
        self.task.sigFinished.connect(self._on_found)
        self.task.sigFailed.connect(self._on_failed)
        self.task.start()

    def _on_found(self, count: int) -> None:
        self.task = None
        GpuProbe.found, GpuProbe.error = count, None
        self.sigFound.emit(count)

    def _on_failed(self, message: str) -> None:
        self.task = None
        GpuProbe.found, GpuProbe.error = 0, message
        self.sigFound.emit(0)


def _probe(state: TaskState) -> int:
    return count_gpus()


# --- the widgets --------------------------------------------------------------------------------

class RunOnCombo(NoWheelMixin, QComboBox):
    """The "Run on" choice; ``sigOpening`` just before its list shows (to look for GPUs then)."""

    sigOpening = Signal()

    def showPopup(self) -> None:
        self.sigOpening.emit()
        super().showPopup()


class RunOnBox(QWidget):
    """The cluster details under the "Run on" combo (:attr:`combo`, which the settings form
    places in its grid); ``sigChanged`` when the user settles on a value."""

    sigChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._showing = False
        self._project = Path("design.convas")
        self._modified = False
        self._dataset_is_path = False
        self._kept = RunOn()                 # fields the box does not show are kept from here
        self.probe = GpuProbe(self)
        self.probe.sigFound.connect(self._on_gpus_found)

        self.combo = RunOnCombo(parent)
        self.combo.setAccessibleName("Run on")
        for text, strategy, tip in _ITEMS:
            self.combo.addItem(text, strategy.value)
            self.combo.setItemData(self.combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.combo.setToolTip("Where training runs: this computer, all of its GPUs, or a cluster of workers")
        self.combo.sigOpening.connect(self.look_for_gpus)

        self.local_radio = QRadioButton("Workers on this computer", self)
        self.local_radio.setToolTip("Try a cluster run here: separate worker processes on this computer "
                                    "train together (on one machine this is slower, not faster)")
        self.workers_spin = _Spin(self)
        self.workers_spin.setRange(2, LOCAL_WORKERS_MAX)
        self.workers_spin.setSuffix(" workers")
        self.workers_spin.setAccessibleName("Local workers")
        self.workers_spin.setToolTip(self.local_radio.toolTip())
        self.machines_radio = QRadioButton("These machines", self)
        self.machines_radio.setToolTip("One worker on each machine; this computer is worker 0, the "
                                       "chief, which shows the progress and saves the model")
        self.mode_group = QButtonGroup(self)
        self.mode_group.addButton(self.local_radio)
        self.mode_group.addButton(self.machines_radio)
        self.this_edit = QLineEdit(self)
        self.this_edit.setPlaceholderText(f"this-computer:{DEFAULT_PORT}")
        self.this_edit.setAccessibleName("This computer's address")
        self.this_edit.setToolTip("The address the other machines reach this computer at (host:port; "
                                  "the port must be free)")
        self.others_edit = QLineEdit(self)
        self.others_edit.setPlaceholderText(f"10.0.0.2:{DEFAULT_PORT}, 10.0.0.3:{DEFAULT_PORT}")
        self.others_edit.setAccessibleName("Other machines")
        self.others_edit.setToolTip("The other workers' addresses (host:port), separated by commas; "
                                    "worker 1, 2, … in this order")
        self.this_label = QLabel("This computer", self)
        self.this_label.setBuddy(self.this_edit)
        self.others_label = QLabel("Other machines", self)
        self.others_label.setBuddy(self.others_edit)
        self.message = QLabel(self)  # why the choice cannot train (with the fix)
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setStyleSheet(f"color: {ERROR_COLOR};")
        self.message.hide()

        self.command_box = QFrame(self)
        commands = QVBoxLayout(self.command_box)
        commands.setContentsMargins(0, 2, 0, 0)
        commands.setSpacing(4)
        self.command_intro = QLabel(self.command_box)
        self.command_intro.setWordWrap(True)
        mute(self.command_intro)
        self.command_text = _CommandText(self.command_box)
        self.command_text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.command_text.setAccessibleName("Commands for the other machines")
        self.command_text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.copy_button = QPushButton("Copy Commands", self.command_box)
        self.copy_button.setToolTip("Copy the commands to the clipboard")
        self.copy_button.clicked.connect(self.copy_commands)
        self.command_warning = QLabel(self.command_box)
        self.command_warning.setWordWrap(True)
        self.command_warning.setStyleSheet(f"color: {WARNING_COLOR};")
        self.command_warning.hide()
        commands.addWidget(self.command_intro)
        commands.addWidget(self.command_text)
        commands.addWidget(self.command_warning)
        commands.addWidget(self.copy_button, 0, Qt.AlignmentFlag.AlignLeft)

        self.details = QWidget(self)  # the cluster's: shown when Cluster… is chosen
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 4)
        outer.setSpacing(4)
        outer.addWidget(self.message)
        outer.addWidget(self.details)
        grid = QGridLayout(self.details)
        grid.setContentsMargins(14, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        local_row = QHBoxLayout()
        local_row.setSpacing(8)
        local_row.addWidget(self.local_radio)
        local_row.addWidget(self.workers_spin, 1)
        grid.addLayout(local_row, 0, 0, 1, 2)
        grid.addWidget(self.machines_radio, 1, 0, 1, 2)
        grid.addWidget(self.this_label, 2, 0)
        grid.addWidget(self.this_edit, 2, 1)
        grid.addWidget(self.others_label, 3, 0)
        grid.addWidget(self.others_edit, 3, 1)
        grid.addWidget(self.command_box, 4, 0, 1, 2)
        grid.setColumnStretch(1, 1)
        for label in (self.this_label, self.others_label):
            label.setContentsMargins(20, 0, 0, 0)  # under their radio button's text

        self.combo.currentIndexChanged.connect(self._on_edit)
        self.workers_spin.valueChanged.connect(self._on_edit)
        self.mode_group.buttonToggled.connect(self._on_mode)
        for line in (self.this_edit, self.others_edit):
            line.editingFinished.connect(self._on_edit)
            line.textEdited.connect(self._sync)
        self.set_run_on(RunOn())

    # --- public -------------------------------------------------------------------------------

    def set_run_on(self, run_on: RunOn) -> None:
        """Show ``run_on`` (no ``sigChanged``)."""
        self._kept = run_on
        self._showing = True
        try:
            self.combo.setCurrentIndex(max(0, self.combo.findData(run_on.strategy.value)))
            self.workers_spin.setValue(run_on.local_workers)
            (self.machines_radio if run_on.cluster is ClusterKind.MACHINES else self.local_radio).setChecked(True)
            self.this_edit.setText(run_on.workers[0] if run_on.workers else "")
            self.others_edit.setText(", ".join(run_on.workers[1:]))
        finally:
            self._showing = False
        if run_on.strategy is Strategy.MIRRORED:
            self.look_for_gpus()  # a saved choice of GPUs: are there any here?
        self._sync()

    def run_on(self) -> RunOn:
        """The value shown (addresses as typed: :meth:`problem` says what is wrong with them)."""
        strategy = Strategy(self.combo.currentData())
        cluster = ClusterKind.MACHINES if self.machines_radio.isChecked() else ClusterKind.LOCAL
        this = self.this_edit.text().strip()
        others = [p for p in self.others_edit.text().replace(",", " ").split() if p]
        workers = tuple(([this] if this else []) + others)
        return RunOn(strategy, cluster, self.workers_spin.value(), workers)

    def problem(self) -> str | None:
        """Why a run cannot start on the chosen place (with the fix), or None."""
        run_on = self.run_on()
        if run_on.strategy is Strategy.MIRRORED and GpuProbe.found == 0:
            return GpuProbe.error or NO_GPU
        return cluster_problem(run_on)

    def set_project(self, path: Path | None, name: str, modified: bool, dataset_is_path: bool) -> None:
        """The project the other machines' commands name (its file, else ``name``.convas), whether
        it has unsaved changes, and whether its data is a path the other machines need too."""
        self._project = path if path is not None else Path(f"{name or 'design'}.convas")
        self._modified, self._dataset_is_path = modified, dataset_is_path
        self._show_commands()

    def commands(self) -> str:
        """What Copy Commands copies: a comment naming each machine, then its command."""
        run_on = self.run_on()
        if run_on.strategy is not Strategy.MULTIWORKER or run_on.cluster is not ClusterKind.MACHINES \
                or cluster_problem(run_on):
            return ""
        project = self._project.name
        out = Path(project).stem + ".keras"
        lines = []
        for index, command in enumerate(remote_commands(run_on, project, out), start=1):
            host = run_on.workers[index].rpartition(":")[0]
            lines += [f"# on {host} (worker {index})", folded(command)]
        return "\n".join(lines)

    def copy_commands(self) -> None:
        text = self.commands()
        if text:
            QGuiApplication.clipboard().setText(text + "\n")

    def look_for_gpus(self) -> None:
        """Start finding the GPUs unless known (the GPU item says so meanwhile)."""
        self.probe.start()
        self._show_gpus()

    # --- internals ----------------------------------------------------------------------------

    def _on_gpus_found(self, _count: int) -> None:
        self._show_gpus()
        self._sync()
        if not self._showing and self.combo.currentData() == Strategy.MIRRORED.value:
            self.sigChanged.emit()  # the problem changed: the panel checks again

    def _show_gpus(self) -> None:
        index = self.combo.findData(Strategy.MIRRORED.value)
        found = GpuProbe.found
        model = self.combo.model()
        item = model.item(index) if isinstance(model, QStandardItemModel) else None
        if found is None and self.probe.looking():
            text, tip, enabled = f"{LOCAL_GPUS} (looking for GPUs…)", "Looking for GPUs…", False
        elif found is None:
            text, tip, enabled = LOCAL_GPUS, _ITEMS[1][2], True
        elif found == 0:
            text, tip, enabled = f"{LOCAL_GPUS} (none found)", GpuProbe.error or NO_GPU, False
        else:
            text = f"{LOCAL_GPUS} ({found} GPU{'s' if found != 1 else ''})"
            tip, enabled = _ITEMS[1][2], True
        self.combo.setItemText(index, text)
        self.combo.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
        if item is not None:
            # The current choice stays selectable, so that a saved choice still reads as itself.
            item.setEnabled(enabled or self.combo.currentIndex() == index)

    def _on_mode(self, _button: object, checked: bool) -> None:
        if not checked:
            return
        if self.machines_radio.isChecked() and not self.this_edit.text().strip() and not self._showing:
            self.this_edit.setText(f"{socket.gethostname()}:{DEFAULT_PORT}")
        self._on_edit()

    def _on_edit(self, *_args: object) -> None:
        self._sync()
        if not self._showing:
            self.sigChanged.emit()

    def _sync(self, *_args: object) -> None:
        """Show, enable and explain what depends on the choice."""
        run_on = self.run_on()
        self._show_gpus()
        cluster = run_on.strategy is Strategy.MULTIWORKER
        machines = run_on.cluster is ClusterKind.MACHINES
        self.workers_spin.setEnabled(not machines)
        for widget in (self.this_label, self.this_edit, self.others_label, self.others_edit):
            widget.setEnabled(machines)
        problem = self.problem()
        self.message.setText(problem[:1].upper() + problem[1:] + ("" if problem.endswith(".") else ".")
                             if problem else "")
        self.message.setVisible(bool(problem))
        self.details.setVisible(cluster)
        self.setVisible(cluster or bool(problem))
        self._show_commands()

    def _show_commands(self) -> None:
        text = self.commands()
        self.command_box.setVisible(bool(text))
        if not text:
            return
        if self.command_text.toPlainText() != text:
            self.command_text.setPlainText(text)
        data = " and the data at the same path" if self._dataset_is_path else ""
        self.command_intro.setText(f"Train starts worker 0 here. Then, with {self._project.name}{data} "
                                   f"copied to each other machine, run there:")
        self.command_warning.setText("The design has unsaved changes: save it before copying, so that "
                                     "every worker trains the same design.")
        self.command_warning.setVisible(self._modified)


def folded(command: str) -> str:
    """``command`` with each ``--option value`` on a line of its own (shell line continuations),
    so that it reads, and copies, whole in a narrow panel."""
    words = shlex.split(command)
    groups: list[list[str]] = [[]]
    for word in words:
        if word.startswith("--"):
            groups.append([])
        groups[-1].append(word)
    return " \\\n    ".join(shlex.join(group) for group in groups if group)


class _Spin(NoWheelMixin, QSpinBox):
    pass


class _CommandText(QPlainTextEdit):
    """Read-only commands in a fixed-width font, unwrapped (a command must copy as it reads), as
    tall as their lines (up to :data:`COMMAND_LINES_SHOWN`), scrolling sideways only when a line
    is wider than the panel."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._pending = False

    def setPlainText(self, text: str) -> None:
        super().setPlainText(text)
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if not self._pending:  # not while the layout is being set: on the next turn
            self._pending = True
            QTimer.singleShot(0, self._fit)

    def _fit(self) -> None:
        self._pending = False
        lines = self.toPlainText().split("\n")
        metrics = self.fontMetrics()
        wide = max(metrics.horizontalAdvance(line) for line in lines) + 2 * self.document().documentMargin()
        scroll = self.horizontalScrollBar().sizeHint().height() if wide > self.viewport().width() else 0
        height = (min(len(lines), COMMAND_LINES_SHOWN) * metrics.lineSpacing()
                  + int(2 * self.document().documentMargin()) + 2 * self.frameWidth() + scroll + 2)
        if height != self.height():
            self.setFixedHeight(height)
