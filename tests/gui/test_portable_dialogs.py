"""Dialogs with paths that have spaces, non-ASCII letters and URL characters (issue 18,
"Portable behaviour"): the real menu actions and pickers, with QFileDialog's static getters
answering such names as a person choosing them would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog
from test_train_panel_tasks import pick_from_popup, show_panel

from engine.examples import seed_design
from engine.project_file import load_project
from engine.tasks import TargetKind

from driving import menu_action

WEIRD = "My Designs – ü 日本 ⅓ 100% #1"
NAME = "R&D Netz ⅓ – 日本 ü.convas"  # "&" would be read as a menu mnemonic
PROJECT = "Convas projects (*.convas)"


@pytest.fixture
def weird(tmp_path: Path) -> Path:
    folder = tmp_path / WEIRD
    folder.mkdir()
    return folder


def test_save_as_open_and_recent_with_a_weird_name(window, new_window, weird: Path, monkeypatch) -> None:
    window.scene.select_nodes(["conv2d"])
    window.palette_widget.sigActivated.emit("BatchNormalization")
    target = weird / NAME
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), PROJECT))
    menu_action(window, "File", "Save As").trigger()
    assert target.is_file() and not window.isWindowModified()
    assert window.windowTitle() == f"Convas — {NAME}[*]"
    saved = window.document.design.copy()
    assert load_project(target).design.nodes == saved.nodes
    first = window.recent_menu.actions()[0]
    assert first.text().replace("&&", "&") == NAME and first.toolTip() == str(target)

    window.document.reset(seed_design())
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), PROJECT))
    menu_action(window, "File", "Open").trigger()
    assert window.document.design.nodes == saved.nodes
    assert window.windowTitle() == f"Convas — {NAME}[*]"

    # The recent list survives a restart: QSettings writes the name and reads it back as it was.
    window.settings.sync()
    again = new_window()  # the same settings file
    assert [a.text().replace("&&", "&") for a in again.recent_menu.actions()][:1] == [NAME]
    assert QSettings(window.settings.fileName(), QSettings.Format.IniFormat).value("last_dir") == str(weird)
    again.document.reset(seed_design())
    again.recent_menu.actions()[0].trigger()
    assert again.document.design.nodes == saved.nodes


def test_a_dataset_file_in_a_weird_folder_loads_from_the_picker(window, qtbot, weird: Path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    data = weird / "Daten – 日本 ü.npz"
    np.savez(data, x=rng.random((40, 28, 28, 1), dtype=np.float32), y=rng.integers(0, 10, 40))
    panel = show_panel(window, qtbot)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(data), "NumPy (*.npz)"))
    pick_from_popup(qtbot, panel.dataset_box.combo, "Open a file (.npz, .csv)…")
    qtbot.waitUntil(lambda: panel.dataset is not None and not panel.session.is_loading()
                    and panel.document.training.dataset == str(data), timeout=60_000)
    assert panel.dataset.target is TargetKind.CLASS and panel.problem_label.text() == ""
    assert panel.dataset_box.combo.currentData() == str(data)
    assert panel.dataset_box.path_label.toolTip() == str(data)


@pytest.mark.slow  # checking that the images decode imports TensorFlow
def test_an_image_folder_in_a_weird_folder_loads_from_the_picker(window, qtbot, weird: Path, monkeypatch) -> None:
    from test_datasets import write_png

    root = weird / "Bilder – 日本"
    for label, value in (("Katze ü", 30), ("犬 ⅓", 220)):
        (root / label).mkdir(parents=True)
        for i in range(6):
            write_png(root / label / f"Bild {i} – ü.png", np.full((28, 28), value + i, dtype=np.uint8))
    panel = show_panel(window, qtbot)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(root))
    pick_from_popup(qtbot, panel.dataset_box.combo, "Open an image folder…")
    qtbot.waitUntil(lambda: panel.dataset is not None and not panel.session.is_loading()
                    and panel.document.training.dataset == str(root), timeout=120_000)
    assert sorted(panel.dataset.class_names) == sorted(["Katze ü", "犬 ⅓"])


@pytest.mark.slow  # builds, writes and reloads a Keras model
def test_export_through_browse_to_a_weird_name(qtbot, window, weird: Path, monkeypatch) -> None:
    from PySide6.QtCore import Qt
    from test_export_dialog import EXPORT_TIMEOUT_MS, _drive

    out = weird / "Modell ⅓ – 日本.keras"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "*.keras")))
    report: dict[str, object] = {}

    def steps(dialog) -> None:
        dialog.format_box.setCurrentIndex(dialog.format_box.findData("keras"))
        qtbot.mouseClick(dialog.browse_button, Qt.MouseButton.LeftButton)
        report["path"] = dialog.path_edit.text()
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=EXPORT_TIMEOUT_MS)
        report["status"] = dialog.status.text()
        dialog.reject()

    _drive(qtbot, window, steps)
    assert report["path"] == str(out)
    assert str(report["status"]).startswith(f"Verified {out}:"), report["status"]
    assert out.is_file() and [p.name for p in weird.iterdir()] == [out.name]
