"""File → Export…: format, options, destination; the export runs on a worker thread and the
dialog shows each step and then the verification (✓ with the difference, or what went wrong).

The weights are the last training run's when it trained the design as it is now; otherwise the
design is exported with fresh weights, and the dialog says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QVBoxLayout,
                               QWidget)

from engine.design import Design
from engine.errors import ConvasError
from engine.export.formats import FORMATS

from .theme import ERROR_COLOR, OK_COLOR
from .training.worker import start_worker

CHOICES = [("keras", "Keras model (.keras)"), ("savedmodel", "TensorFlow SavedModel (folder)"),
           ("tflite", "TensorFlow Lite (.tflite)"), ("onnx", "ONNX (.onnx)"),
           ("python", "Python script (.py, architecture only)")]
SUFFIXES = {**{key: f.suffix for key, f in FORMATS.items()}, "python": ".py"}
QUANTIZE = [(None, "None (float32)"), ("dynamic", "Dynamic range (int8 weights)"), ("float16", "Float16")]


class ExportWorker(QObject):
    """Runs :func:`engine.export.run.export_model` on its thread; ends with one of
    ``sigFinished(result)`` and ``sigFailed(message)``, reporting steps by ``sigStep``."""

    sigStep = Signal(str)
    sigFinished = Signal(object)
    sigFailed = Signal(str)

    def __init__(self, design: Design, out: str, options: Any, model: Any, weights: str | None,
                 project: dict[str, Any] | None, weights_file: Path | None = None,
                 training: Any = None) -> None:
        super().__init__()
        self.args = (design, out, options)
        self.kwargs = dict(model=model, weights=weights, project=project, weights_file=weights_file,
                           training=training)

    @Slot()
    def run(self) -> None:
        from engine.export.run import export_model

        try:
            result = export_model(*self.args, progress=self.sigStep.emit, **self.kwargs)
        except ConvasError as exc:
            self.sigFailed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - whatever TensorFlow raises becomes a message
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            self.sigFailed.emit(f"Export failed: {lines[0] if lines else type(exc).__name__}")
        else:
            self.sigFinished.emit(result)


class ExportDialog(QDialog):
    def __init__(self, design: Design, *, model: Any = None, weights_note: str, folder: str,
                 project: dict[str, Any] | None = None, weights_file: Path | None = None,
                 training: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setMinimumWidth(560)
        self.design, self.model, self.project = design.copy(), model, project
        self.weights_note, self.weights_file, self.training = weights_note, weights_file, training
        self.thread: QThread | None = None
        self.worker: ExportWorker | None = None
        self.result: Any = None

        self.format_box = QComboBox()
        for key, label in CHOICES:
            self.format_box.addItem(label, key)
        self.quantize_box = QComboBox()
        for key, label in QUANTIZE:
            self.quantize_box.addItem(label, key)
        self.path_edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        self.weights_label = QLabel(weights_note)
        self.weights_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Format", self.format_box)
        form.addRow("Quantization", self.quantize_box)
        form.addRow("Save to", path_row)
        form.addRow("Weights", self.weights_label)

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
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        self._folder = Path(folder)
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self._format_changed()

    def fmt(self) -> str:
        return self.format_box.currentData()

    def _default_path(self) -> Path:
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.design.name) or "model"
        return self._folder / f"{stem}{SUFFIXES[self.fmt()]}"

    def _format_changed(self) -> None:
        self.weights_label.setText("None — a script rebuilds the architecture, not its weights"
                                   if self.fmt() == "python" else self.weights_note)
        self.quantize_box.setEnabled(self.fmt() == "tflite")
        if self.fmt() != "tflite":
            self.quantize_box.setCurrentIndex(0)
        current = Path(self.path_edit.text()) if self.path_edit.text() else None
        if current is None or current.suffix in set(SUFFIXES.values()):
            folder = current.parent if current is not None else self._folder
            self._folder = folder
            self.path_edit.setText(str(self._default_path()))

    def browse(self) -> None:
        if self.fmt() == "savedmodel":
            path, _ = QFileDialog.getSaveFileName(self, "Export SavedModel folder", self.path_edit.text())
        else:
            suffix = SUFFIXES[self.fmt()]
            path, _ = QFileDialog.getSaveFileName(self, "Export", self.path_edit.text(), f"*{suffix}")
        if path:
            self.path_edit.setText(path)

    def start(self) -> None:
        from engine.export.run import ExportOptions

        if self.thread is not None:
            return
        out = self.path_edit.text().strip()
        if not out:
            self._show_error("Choose where to save the export.")
            return
        options = ExportOptions(self.fmt(), self.quantize_box.currentData())
        self.result = None
        self._set_busy(True)
        self.status.setStyleSheet("")
        self.status.setText("Starting (TensorFlow loads the first time; this takes a few seconds)…")
        worker = ExportWorker(self.design, out, options, self.model,
                              self.weights_note.split(" — ")[0].lower(), self.project, self.weights_file,
                              self.training)
        worker.sigStep.connect(self._on_step)
        worker.sigFinished.connect(self._on_finished)
        worker.sigFailed.connect(self._on_failed)
        self.worker = worker
        self.thread = start_worker(worker, self, "convas-export", self._on_thread_finished)

    def _set_busy(self, busy: bool) -> None:
        self.progress.setRange(0, 0 if busy else 1)
        for widget in (self.export_button, self.format_box, self.path_edit):
            widget.setEnabled(not busy)
        self.quantize_box.setEnabled(not busy and self.fmt() == "tflite")
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setEnabled(not busy)

    def _on_step(self, text: str) -> None:
        self.status.setText(f"{text}…")

    def _on_finished(self, result: Any) -> None:
        self.result = result
        self.status.setStyleSheet(f"color: {OK_COLOR};")
        self.status.setText(result.summary())

    def _on_failed(self, message: str) -> None:
        self._show_error(message)

    def _show_error(self, message: str) -> None:
        self.status.setStyleSheet(f"color: {ERROR_COLOR};")
        self.status.setText(f"✗ {message}")

    def _on_thread_finished(self) -> None:
        if self.thread is not None:
            self.thread.deleteLater()
        self.thread, self.worker = None, None
        self._set_busy(False)

    def is_busy(self) -> bool:
        return self.thread is not None

    def reject(self) -> None:
        if not self.is_busy():  # an export is not abandoned half-way (it takes seconds)
            super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.is_busy():
            event.ignore()
        else:
            super().closeEvent(event)
