"""Help → About Convas: the name, the version, the versions underneath and where things are kept."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QLabel, QPushButton

from engine.app_identity import APP_VERSION
from gui.about_dialog import AboutDialog

from driving import menu_action


def test_help_about_shows_name_version_and_where_things_are(window, qtbot, tmp_path: Path) -> None:
    window.menuBar().setNativeMenuBar(False)
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "Help")
    qtbot.mouseClick(window.menuBar(), Qt.MouseButton.LeftButton,
                     pos=window.menuBar().actionGeometry(help_menu.menuAction()).center())
    qtbot.waitUntil(help_menu.isVisible)
    about = menu_action(window, "Help", "About Convas")
    qtbot.mouseClick(help_menu, Qt.MouseButton.LeftButton, pos=help_menu.actionGeometry(about).center())

    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), AboutDialog))
    dialog = QApplication.activeModalWidget()
    assert dialog.windowTitle() == "About Convas"
    texts = [label.text() for label in dialog.findChildren(QLabel)]
    assert any("Convas" in t and APP_VERSION in t for t in texts)
    shown = "\n".join(texts)
    for name in ("Python:", "Qt:", "PySide6:", "Keras:", "TensorFlow:"):
        assert name in shown
    assert str(tmp_path / "settings.ini") in shown  # this window's settings file
    assert str(tmp_path / "recovery") in shown      # and its autosave folder
    assert "not installed" not in dialog.details().split("Keras:")[1].splitlines()[0]
    assert dialog.width() >= 560

    copy = next(b for b in dialog.findChildren(QPushButton) if b.text() == "Copy Details")
    qtbot.mouseClick(copy, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text().startswith(f"Convas {APP_VERSION}\nPython: ")

    close = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Close)
    qtbot.mouseClick(close, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None)


def test_the_application_icon_has_each_drawn_size(qapp) -> None:
    from gui.app import app_icon

    icon = app_icon()
    sizes = {size.width() for size in icon.availableSizes()}
    assert sizes == {16, 24, 32, 48, 64, 128, 256, 512}
    assert not icon.pixmap(48, 48).isNull()
