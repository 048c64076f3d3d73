"""File → Export…: the dialog exports on a worker thread and shows the verification."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QFileDialog

from engine.examples import seed_design
from gui.export_dialog import ExportDialog
from gui.theme import ERROR_COLOR, OK_COLOR

pytestmark = pytest.mark.slow
EXPORT_TIMEOUT_MS = 240_000


def _drive(qtbot, window, steps) -> None:
    """Run ``steps(dialog)`` once File → Export… has opened its (modal) dialog."""
    seen = []

    def find() -> None:
        dialog = next((w for w in QApplication.topLevelWidgets()
                       if isinstance(w, ExportDialog) and w.isVisible()), None)
        if dialog is None:
            QTimer.singleShot(50, find)
            return
        seen.append(dialog)
        steps(dialog)

    QTimer.singleShot(0, find)
    window.act_export.trigger()
    assert seen, "File → Export… showed no dialog"


def _export_to(qtbot, dialog: ExportDialog, out: Path, report: dict) -> None:
    """Type ``out``, click Export, wait for the worker, keep the status line, close."""
    dialog.path_edit.setText(str(out))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    report["busy"] = dialog.is_busy() and not dialog.export_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=EXPORT_TIMEOUT_MS)
    report["status"] = dialog.status.text()
    report["style"] = dialog.status.styleSheet()
    dialog.reject()


def test_export_onnx_from_the_menu_shows_the_verification(qtbot, window, tmp_path: Path) -> None:
    out = tmp_path / "seed.onnx"
    report = {}

    def steps(dialog: ExportDialog) -> None:
        assert "untrained" in dialog.weights_label.text().lower()
        dialog.format_box.setCurrentIndex(dialog.format_box.findData("onnx"))
        assert not dialog.quantize_box.isEnabled()
        _export_to(qtbot, dialog, out, report)

    _drive(qtbot, window, steps)
    assert report["busy"], "the dialog did not show the export running"
    assert report["status"].startswith(f"Verified {out}:") and "onnxruntime" in report["status"]
    assert OK_COLOR in report["style"]
    assert out.exists()


def test_export_to_a_missing_folder_says_so(qtbot, window, tmp_path: Path) -> None:
    report = {}

    def steps(dialog: ExportDialog) -> None:
        dialog.format_box.setCurrentIndex(dialog.format_box.findData("tflite"))
        assert dialog.quantize_box.isEnabled()
        _export_to(qtbot, dialog, tmp_path / "missing" / "m.tflite", report)

    _drive(qtbot, window, steps)
    assert "does not exist" in report["status"] and ERROR_COLOR in report["style"]
    assert not (tmp_path / "missing").exists()


def test_an_imported_model_exports_with_its_weights(qtbot, window, tmp_path: Path) -> None:
    import keras
    import numpy as np

    from pretrained import save_pretrained

    source = tmp_path / "trained.keras"
    saved_bias = save_pretrained(source)
    assert window.open_path(source, ask=False)
    out = tmp_path / "again.keras"
    report = {}

    def steps(dialog: ExportDialog) -> None:
        report["weights"] = dialog.weights_label.text()
        _export_to(qtbot, dialog, out, report)

    _drive(qtbot, window, steps)
    assert report["weights"].startswith("Imported weights") and "trained.keras" in report["weights"]
    assert report["status"].startswith("Verified "), report["status"]
    exported = keras.saving.load_model(out, compile=False)
    assert np.allclose(exported.get_layer("dense").get_weights()[1], saved_bias)


def _slow_keras_writer(monkeypatch) -> threading.Event:
    """Make the Keras writer wait until the returned event is set, so that a test can act while
    the export is certainly running (its status line says "Writing …")."""
    from engine.export.formats import FORMATS

    release = threading.Event()
    real = FORMATS["keras"].write

    def write(model, path, options):
        release.wait(timeout=EXPORT_TIMEOUT_MS / 1000)
        real(model, path, options)

    monkeypatch.setitem(FORMATS, "keras", dataclasses.replace(FORMATS["keras"], write=write))
    return release


def _start_slow_export(qtbot, dialog: ExportDialog, out: Path) -> None:
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("keras"))
    dialog.path_edit.setText(str(out))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Writing"), timeout=EXPORT_TIMEOUT_MS)


def test_cancel_stops_a_running_export_and_writes_nothing(qtbot, window, tmp_path: Path,
                                                          monkeypatch) -> None:
    release = _slow_keras_writer(monkeypatch)
    out = tmp_path / "seed.keras"
    report = {}

    def steps(dialog: ExportDialog) -> None:
        close = dialog.buttons.button(QDialogButtonBox.StandardButton.Close)
        assert not dialog.cancel_button.isVisible() and close.isVisible()
        _start_slow_export(qtbot, dialog, out)
        report["running"] = (dialog.cancel_button.isVisible(), dialog.cancel_button.isEnabled(),
                             close.isVisible(), dialog.export_button.isEnabled())
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        report["cancelling"] = dialog.status.text()
        report["busy after click"] = dialog.is_busy()
        release.set()
        qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=EXPORT_TIMEOUT_MS)
        report["status"] = dialog.status.text()
        report["idle"] = (dialog.cancel_button.isVisible(), close.isVisible(), close.isEnabled(),
                          dialog.export_button.isEnabled(), dialog.format_box.isEnabled(),
                          dialog.path_edit.isEnabled(), dialog.browse_button.isEnabled())
        report["visible"] = dialog.isVisible()
        dialog.reject()

    try:
        _drive(qtbot, window, steps)
    finally:
        release.set()
    assert report["running"] == (True, True, False, False), "Cancel did not replace Close during the run"
    assert report["cancelling"] == "Cancelling… (finishing the current step)"
    assert report["busy after click"], "the export was not still running when Cancel was clicked"
    assert report["status"] == "Export cancelled — nothing was written"
    assert report["idle"] == (False, True, True, True, True, True, True)
    assert report["visible"], "Cancel closed the dialog; it should stay to say what happened"
    assert list(tmp_path.glob("*seed*")) == []  # neither the file nor its temporary twin


def test_closing_during_an_export_cancels_it_and_closes_when_it_ends(qtbot, window, tmp_path: Path,
                                                                     monkeypatch) -> None:
    release = _slow_keras_writer(monkeypatch)
    out = tmp_path / "seed.keras"
    report = {}

    def steps(dialog: ExportDialog) -> None:
        report["dialog"] = dialog
        _start_slow_export(qtbot, dialog, out)
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
        dialog.close()  # the window's close button, too, only asks
        report["after esc"] = (dialog.isVisible(), dialog.is_busy(), dialog.status.text())
        release.set()
        qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=EXPORT_TIMEOUT_MS)

    try:
        _drive(qtbot, window, steps)
    finally:
        release.set()
    assert report["after esc"] == (True, True, "Cancelling… (finishing the current step)")
    dialog = report["dialog"]
    assert not dialog.is_busy() and dialog.worker is None
    assert dialog.result is None
    assert list(tmp_path.glob("*seed*")) == []


def test_savedmodel_browse_names_a_new_folder(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    chosen = tmp_path / "exports" / "my_savedmodel"
    calls = []

    def save_name(parent, caption="", directory="", filter="", *args, **kwargs):
        calls.append((caption, directory, filter))
        return str(chosen), filter

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save_name))
    report = {}

    def steps(dialog: ExportDialog) -> None:
        report["file label"] = dialog.path_label.text()
        dialog.format_box.setCurrentIndex(dialog.format_box.findData("savedmodel"))
        report["default"] = dialog.path_edit.text()
        report["label"] = dialog.path_label.text()
        report["placeholder"] = dialog.path_edit.placeholderText()
        qtbot.mouseClick(dialog.browse_button, Qt.MouseButton.LeftButton)
        report["path"] = dialog.path_edit.text()
        dialog.format_box.setCurrentIndex(dialog.format_box.findData("onnx"))
        qtbot.mouseClick(dialog.browse_button, Qt.MouseButton.LeftButton)
        dialog.reject()

    _drive(qtbot, window, steps)
    assert report["file label"] == "Save to" and report["label"] == "Save as folder"
    assert "folder" in report["placeholder"]
    assert Path(report["default"]).suffix == ""
    (caption, directory, folder_filter), (_, _, onnx_filter) = calls
    assert "SavedModel folder" in caption and directory == report["default"]
    assert folder_filter == "SavedModel folder (*)"
    assert report["path"] == str(chosen)
    assert onnx_filter == "*.onnx"


def test_choosing_tflite_warns_about_layers_it_cannot_convert(qtbot, tmp_path):
    """The warning appears when TFLite is picked (before any conversion) and goes with it."""
    from engine.design import Design

    design = Design(name="volume")
    design.add("InputLayer", "scan", {"shape": (8, 8, 8, 1)})
    design.add("MaxPooling3D", "pool", {"pool_size": 2}, inputs=["scan"])
    dialog = ExportDialog(design, folder=str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.format_warning.isHidden()
    combo = dialog.format_box
    combo.setFocus()
    while combo.currentData() != "tflite":
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert dialog.format_warning.isVisible()
    text = dialog.format_warning.text()
    assert text.startswith("TensorFlow Lite will refuse this design:")
    assert "Layer 'pool' (MaxPooling3D)" in text and "ONNX or SavedModel" in text
    qtbot.keyClick(combo, Qt.Key.Key_Down)  # ONNX
    assert combo.currentData() == "onnx" and dialog.format_warning.isHidden()


def test_a_design_tflite_converts_shows_no_warning(qtbot, tmp_path):
    dialog = ExportDialog(seed_design(), folder=str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("tflite"))
    assert dialog.format_warning.isHidden()


def test_switching_format_keeps_the_typed_name(qtbot, tmp_path):
    """The user's file name survives a change of format; only the suffix follows the format
    (a SavedModel is a folder: no suffix)."""
    dialog = ExportDialog(seed_design(), folder=str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.show()
    combo = dialog.format_box
    assert combo.currentData() == "keras"
    dialog.path_edit.clear()
    qtbot.keyClicks(dialog.path_edit, str(tmp_path / "phone_model.keras"))
    combo.setFocus()
    names = {}
    for _ in range(combo.count() - 1):
        qtbot.keyClick(combo, Qt.Key.Key_Down)
        names[combo.currentData()] = dialog.path_edit.text()
    assert names == {"savedmodel": str(tmp_path / "phone_model"),
                     "tflite": str(tmp_path / "phone_model.tflite"),
                     "onnx": str(tmp_path / "phone_model.onnx"),
                     "python": str(tmp_path / "phone_model.py")}
    # A name typed without a suffix gets one; a dotted name keeps its dots.
    dialog.path_edit.setText(str(tmp_path / "v1.2_final"))
    qtbot.keyClick(combo, Qt.Key.Key_Up)
    assert combo.currentData() == "onnx" and dialog.path_edit.text() == str(tmp_path / "v1.2_final.onnx")
    dialog.path_edit.clear()
    qtbot.keyClick(combo, Qt.Key.Key_Up)  # an empty destination gets the design's name
    assert dialog.path_edit.text() == str(tmp_path / "seed_cnn.tflite")
