"""File → Export…: format, options, destination; the export runs on a worker thread and the
dialog shows each step and then the verification ("Verified" with the difference, or what went wrong).

The weights are given as a :class:`~engine.weights.WeightsSource` (the window asks
:func:`engine.weights.resolve_weights`): the last training run's when it trained the design as
it is now, else those imported or saved with the design, else fresh ones; the dialog's Weights
line is that source's label.

Switching the format changes only the destination's suffix (a SavedModel folder has none): a
name the user typed is kept.

While an export runs (on a :mod:`gui.workers` worker), Cancel (and Esc, or closing the window)
asks it to stop at the next step boundary; a step itself cannot be interrupted, so the dialog
stays until the worker ends and then says that nothing was written (and closes, when closing was
asked for).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QVBoxLayout,
                               QWidget)

from engine.design import Design
from engine.export.formats import FORMATS
from engine.weights import WeightsSource

from .theme import ERROR_COLOR, OK_COLOR, warning_text_color
from .workers import Cancelled, TaskState, Worker, create_worker

CHOICES = [("keras", "Keras model (.keras)"), ("savedmodel", "TensorFlow SavedModel (folder)"),
           ("tflite", "TensorFlow Lite (.tflite)"), ("onnx", "ONNX (.onnx)"),
           ("python", "Python script (.py, architecture only)")]
SUFFIXES = {**{key: f.suffix for key, f in FORMATS.items()}, "python": ".py"}
SAVEDMODEL_FILTER = "SavedModel folder (*)"
QUANTIZE = [(None, "None (float32)"), ("dynamic", "Dynamic range (int8 weights)"), ("float16", "Float16")]


def export_task(state: TaskState, design: Design, out: str, options: Any, weights: WeightsSource,
                project: dict[str, Any] | None, training: Any = None) -> Any:
    """Run :func:`engine.export.run.export_model` as a worker task: each step is progress, a
    cancel stops it at the next step boundary (the worker then ends with ``sigCancelled``)."""
    from engine.export.run import ExportCancelled, export_model

    try:
        return export_model(design, out, options, weights=weights, project=project, training=training,
                            progress=state.progress, cancelled=state.is_cancelled)
    except ExportCancelled:
        raise Cancelled from None


class ExportDialog(QDialog):
    def __init__(self, design: Design, *, folder: str, weights: WeightsSource | None = None,
                 project: dict[str, Any] | None = None, training: Any = None,
                 parent: QWidget | None = None) -> None:
        """``weights``: what the export takes (None: fresh ones)."""
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setMinimumWidth(560)
        self.design, self.project, self.training = design.copy(), project, training
        self.weights = weights if weights is not None else WeightsSource.fresh()
        self.worker: Worker | None = None
        self.result: Any = None
        self._cancelling = False         # Cancel was asked for during the running export
        self._close_when_done = False    # ... by closing the dialog, which closes when it ends

        self.format_box = QComboBox()
        for key, label in CHOICES:
            self.format_box.addItem(label, key)
        self.quantize_box = QComboBox()
        for quantization, label in QUANTIZE:
            self.quantize_box.addItem(label, quantization)
        self.path_edit = QLineEdit()
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self.browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        self.path_label = QLabel("Save to")
        self.weights_label = QLabel(self.weights.label())
        self.weights_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Format", self.format_box)
        form.addRow("Quantization", self.quantize_box)
        form.addRow(self.path_label, path_row)
        form.addRow("Weights", self.weights_label)

        # Layers the TFLite converter is known to refuse (engine/export/tflite_support.py),
        # said when TFLite is chosen rather than after a long conversion.
        from engine.export.tflite_support import tflite_problems

        self.tflite_problems = tflite_problems(self.design)
        self.format_warning = QLabel()
        self.format_warning.setWordWrap(True)
        self.format_warning.setStyleSheet(f"color: {warning_text_color()};")
        self.format_warning.hide()

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.status = QLabel("Convas reloads the exported file and compares its predictions with "
                             "the model before saying it is done.")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start)
        # ActionRole, not RejectRole: cancelling the export keeps the dialog open to say so.
        self.cancel_button = self.buttons.addButton("Cancel", QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button.setToolTip("Stop the export after its current step; nothing is written")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.format_warning)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        self._folder = Path(folder)
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self._format_changed()

    def fmt(self) -> str:
        return self.format_box.currentData()

    def _default_stem(self) -> str:
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in self.design.name) or "model"

    def _default_path(self) -> Path:
        return self._folder / f"{self._default_stem()}{SUFFIXES[self.fmt()]}"

    def _path_for_format(self, text: str) -> Path:
        """``text`` (the destination as typed) with the chosen format's suffix instead of another
        format's; the folder and the name stay (an empty name becomes the design's)."""
        if not text.strip():
            return self._default_path()
        current = Path(text.strip())
        name = current.name
        for suffix in sorted({s for s in SUFFIXES.values() if s}, key=len, reverse=True):
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name = name[:-len(suffix)]
                break
        return current.parent / f"{name or self._default_stem()}{SUFFIXES[self.fmt()]}"

    def _format_changed(self) -> None:
        self.weights_label.setText("None — a script rebuilds the architecture, not its weights"
                                   if self.fmt() == "python" else self.weights.label())
        folder = self._exports_a_folder()
        self.path_label.setText("Save as folder" if folder else "Save to")
        self.path_edit.setPlaceholderText(
            "A new folder, e.g. …/my_model (a SavedModel is a folder)" if folder
            else f"A file ending in {SUFFIXES[self.fmt()]}")
        self.quantize_box.setEnabled(self.fmt() == "tflite")
        problems = self.tflite_problems if self.fmt() == "tflite" else []
        shown = problems[:3] + ([f"… and {len(problems) - 3} more"] if len(problems) > 3 else [])
        self.format_warning.setText("TensorFlow Lite will refuse this design:\n"
                                    + "\n".join(f"• {p}" for p in shown))
        self.format_warning.setVisible(bool(problems))
        if self.fmt() != "tflite":
            self.quantize_box.setCurrentIndex(0)
        path = self._path_for_format(self.path_edit.text())
        self._folder = path.parent
        self.path_edit.setText(str(path))

    def _exports_a_folder(self) -> bool:
        fmt = FORMATS.get(self.fmt())
        return fmt is not None and fmt.directory

    def browse(self) -> None:
        if self._exports_a_folder():
            # A save dialog, not a directory picker: a SavedModel is a folder the export creates,
            # so the user picks where it goes and types its new name; no suffix is added.
            path, _ = QFileDialog.getSaveFileName(self, "Name the SavedModel folder", self.path_edit.text(),
                                                  SAVEDMODEL_FILTER)
        else:
            suffix = SUFFIXES[self.fmt()]
            path, _ = QFileDialog.getSaveFileName(self, "Export", self.path_edit.text(), f"*{suffix}")
        if path:
            self.path_edit.setText(path)

    def start(self) -> None:
        from engine.export.run import ExportOptions

        if self.worker is not None:
            return
        out = self.path_edit.text().strip()
        if not out:
            self._show_error("Choose where to save the export.")
            return
        options = ExportOptions(self.fmt(), self.quantize_box.currentData())
        self.result = None
        self._cancelling = self._close_when_done = False
        self._set_busy(True)
        self.status.setStyleSheet("")
        self.status.setText("Starting (TensorFlow loads the first time; this takes a few seconds)…")
        worker = create_worker(export_task, self.design, out, options, self.weights, self.project,
                               self.training, name="convas-export", failure="Export failed", start=False)
        worker.sigProgress.connect(self._on_step)
        worker.sigFinished.connect(self._on_finished)
        worker.sigCancelled.connect(self._on_cancelled)
        worker.sigFailed.connect(self._on_failed)
        worker.sigEnded.connect(self._on_ended)
        self.worker = worker.start()

    def _set_busy(self, busy: bool) -> None:
        """While an export runs, Cancel stands where Close was and the settings are locked."""
        self.progress.setRange(0, 0 if busy else 1)
        for widget in (self.export_button, self.format_box, self.path_edit, self.browse_button):
            widget.setEnabled(not busy)
        self.quantize_box.setEnabled(not busy and self.fmt() == "tflite")
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setVisible(not busy)
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(busy)

    def cancel(self) -> None:
        """Ask the running export to stop; it does so after its current step."""
        if self.worker is None or self._cancelling:
            return
        self._cancelling = True
        self.worker.cancel()
        self.cancel_button.setEnabled(False)
        self.status.setStyleSheet("")
        self.status.setText("Cancelling… (finishing the current step)")

    def _on_step(self, text: str) -> None:
        if not self._cancelling:  # a step queued before Cancel must not hide that it was asked
            self.status.setText(f"{text}…")

    def _on_finished(self, result: Any) -> None:
        self.result = result
        self.status.setStyleSheet(f"color: {OK_COLOR};")
        self.status.setText(result.summary())

    def _on_cancelled(self) -> None:
        self.result = None
        self.status.setStyleSheet("")
        self.status.setText("Export cancelled — nothing was written")

    def _on_failed(self, message: str) -> None:
        self._show_error(message)

    def _show_error(self, message: str) -> None:
        self.status.setStyleSheet(f"color: {ERROR_COLOR};")
        self.status.setText(message)

    def _on_ended(self) -> None:
        self.worker = None
        self._set_busy(False)
        if self._close_when_done:
            self._close_when_done = False
            super().reject()

    def is_busy(self) -> bool:
        return self.worker is not None

    def reject(self) -> None:
        """Esc or Close. During an export: cancel it, and close once it has ended, so that the
        dialog can say what became of the export."""
        if self.is_busy():
            self._close_when_done = True
            self.cancel()
        else:
            super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.is_busy():
            event.ignore()
            self.reject()
        else:
            super().closeEvent(event)
