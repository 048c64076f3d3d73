"""Help → About Convas: who this is (icon, name, version), what it runs on (the versions a bug
report needs), and where it keeps things (settings, autosave, log): with a button that copies
it all as text for a bug report."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib import metadata

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.app_identity import APP_NAME, APP_SUMMARY, APP_VERSION

ICON_PX = 96
# TensorFlow is published under several names (the CPU-only and the Apple builds).
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel")


def distribution_version(*names: str) -> str:
    """The installed version of the first of ``names`` that is installed, read from its
    metadata (never by importing it: importing TensorFlow takes seconds)."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def versions() -> list[tuple[str, str]]:
    return [("Python", platform.python_version()),
            ("Qt", qVersion()),
            ("PySide6", PySide6.__version__),
            ("Keras", distribution_version("keras")),
            ("TensorFlow", distribution_version(*TENSORFLOW_DISTRIBUTIONS)),
            ("System", f"{platform.system()} {platform.release()} ({platform.machine()})")]


class AboutDialog(QDialog):
    """The About box. ``locations`` are (what, path) pairs: where settings, autosave and the
    log live on this system, which the README can only describe in general."""

    def __init__(self, locations: Sequence[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        self.versions = versions()
        self.locations = list(locations)

        icon = QLabel()
        icon.setObjectName("aboutIcon")
        pixmap = QApplication.windowIcon().pixmap(ICON_PX, ICON_PX)
        icon.setPixmap(pixmap)
        icon.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        icon.setVisible(not pixmap.isNull())  # no icon file: no empty square

        self.title = QLabel(f"<span style='font-size: 18pt; font-weight: 600'>{APP_NAME}</span>"
                            f"&nbsp;&nbsp;<span style='font-size: 12pt'>{APP_VERSION}</span>")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        summary = QLabel(APP_SUMMARY + ".")  # one line: wrapped, it would make the dialog needlessly tall

        header = QVBoxLayout()
        header.addWidget(self.title)
        header.addWidget(summary)
        header.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(icon)
        top.addSpacing(12)
        top.addLayout(header, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self._group("Versions", self.versions))
        layout.addWidget(self._group("Where Convas keeps things", self.locations))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy Details")
        self.copy_button.setToolTip("Copy the versions and places above, for a bug report")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_details)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)

    def _group(self, title: str, rows: Sequence[tuple[str, str]]) -> QGroupBox:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        for name, value in rows:
            field = QLabel(value)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            field.setWordWrap(True)  # a long path wraps at its separators rather than widen the box
            form.addRow(f"{name}:", field)
        return box

    def details(self) -> str:
        """Everything the dialog shows, as plain text."""
        lines = [f"{APP_NAME} {APP_VERSION}"]
        lines += [f"{name}: {value}" for name, value in self.versions]
        lines += [f"{name}: {value}" for name, value in self.locations]
        return "\n".join(lines)

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.details())
        self.copy_button.setText("Copied")
