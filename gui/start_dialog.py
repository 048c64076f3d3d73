"""File → New: choose what a new design starts from — nothing, a pretrained network, a shipped
example or a template."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget,
)

from engine.design import Design
from engine.examples import (
    TEMPLATES, empty_design, example_names, example_title, load_example, load_template,
)

from .widgets import mute

EMPTY = ("empty", "")
PRETRAINED = ("pretrained", "")  # opens File → New from Pretrained… instead of making a design here
CHOICE_ROLE = Qt.ItemDataRole.UserRole


class StartDialog(QDialog):
    """A list of starting points; :meth:`design` builds the chosen one after ``exec()`` accepts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New design")
        self.list = QListWidget(self)
        self.list.setMinimumSize(360, 320)
        self._add_choice("Empty design", EMPTY, "Start from an empty canvas, named Untitled.")
        self._add_choice("Pretrained network…", PRETRAINED,
                         "Start from a keras.applications network (MobileNet, ResNet, EfficientNet, …) with "
                         "ImageNet weights, then fit its head to your data and fine-tune it.")
        self._add_header("Examples")
        for name in example_names():
            self._add_choice(example_title(name), ("example", name), f"A copy of the {example_title(name)} example.")
        self._add_header("Templates")
        for name, (title, doc, _build) in TEMPLATES.items():
            self._add_choice(title, ("template", name), doc)
        self.description = mute(QLabel(self))
        self.description.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemActivated.connect(lambda _item: self.accept())
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Start from:", self))
        layout.addWidget(self.list, 1)
        layout.addWidget(self.description)
        layout.addWidget(buttons)
        self.list.setCurrentRow(0)
        self.list.setFocus()

    def _add_header(self, title: str) -> None:
        item = QListWidgetItem(title, self.list)
        font = QFont(self.list.font())
        font.setBold(True)
        item.setFont(font)
        item.setFlags(Qt.ItemFlag.NoItemFlags)

    def _add_choice(self, title: str, choice: tuple[str, str], doc: str) -> None:
        item = QListWidgetItem(title, self.list)
        item.setData(CHOICE_ROLE, choice)
        item.setToolTip(doc)

    def _on_current(self, item: QListWidgetItem | None, _previous: object = None) -> None:
        self.description.setText(item.toolTip() if item is not None else "")

    def item_titled(self, title: str) -> QListWidgetItem:
        """The list entry shown as ``title`` (for tests)."""
        found = self.list.findItems(title, Qt.MatchFlag.MatchExactly)
        if not found:
            raise KeyError(title)
        return found[0]

    def choice(self) -> tuple[str, str]:
        """("empty", ""), ("pretrained", ""), ("example", name) or ("template", name)."""
        item = self.list.currentItem()
        data = item.data(CHOICE_ROLE) if item is not None else None
        return (str(data[0]), str(data[1])) if data else EMPTY

    def wants_pretrained(self) -> bool:
        """The choice is a pretrained network, which File → New from Pretrained… makes."""
        return self.choice() == PRETRAINED

    def design(self) -> Design:
        """A fresh design of the chosen kind (an empty one for :data:`PRETRAINED`)."""
        kind, name = self.choice()
        if kind == "example":
            return load_example(name)
        if kind == "template":
            return load_template(name)
        return empty_design()
