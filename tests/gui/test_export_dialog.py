"""File → Export…: the dialog exports on a worker thread and shows the verification."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from PySide6.QtCore import QSettings

from engine.examples import seed_design
from gui.document import Document
from gui.export_dialog import ExportDialog
from gui.main_window import MainWindow

pytestmark = pytest.mark.slow
EXPORT_TIMEOUT_MS = 240_000


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(Document(seed_design()), settings=settings, autosave_dir=tmp_path / "recovery")
    qtbot.addWidget(win, before_close_func=lambda w: w.document.mark_saved())
    win.show()
    qtbot.waitExposed(win)
    return win


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
    assert report["status"].startswith("✓") and "onnxruntime" in report["status"]
    assert out.exists()


def test_export_to_a_missing_folder_says_so(qtbot, window, tmp_path: Path) -> None:
    report = {}

    def steps(dialog: ExportDialog) -> None:
        dialog.format_box.setCurrentIndex(dialog.format_box.findData("tflite"))
        assert dialog.quantize_box.isEnabled()
        _export_to(qtbot, dialog, tmp_path / "missing" / "m.tflite", report)

    _drive(qtbot, window, steps)
    assert report["status"].startswith("✗") and "does not exist" in report["status"]
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
    assert report["status"].startswith("✓"), report["status"]
    exported = keras.saving.load_model(out, compile=False)
    assert np.allclose(exported.get_layer("dense").get_weights()[1], saved_bias)
