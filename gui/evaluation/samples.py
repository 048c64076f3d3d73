"""Sample thumbnails with their predictions: a grid, the best/worst browser and a sample chooser.

Each thumbnail carries its caption ("pred 7 (0.83)" over "true 1"); wrong predictions get a red
frame and red text. Choosing a thumbnail announces its sample index with ``sigSampleChosen``;
double-clicking asks to inspect it (``sigInspect``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractButton, QAbstractItemView, QButtonGroup, QFrame, QHBoxLayout, QLabel, QListView, QListWidget,
    QListWidgetItem, QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget,
)

from ..theme import ERROR_COLOR
from .images import framed, scaled, to_qimage
from .results import Results, TaskResults

THUMBNAIL = 72
SAMPLE_LIMIT = 96   # thumbnails per grid; more would only cost decoding time
INDEX_ROLE = Qt.ItemDataRole.UserRole


class SampleGrid(QListWidget):
    """Thumbnails of chosen samples, in the given order, wrapping to the available width."""

    sigSampleChosen = Signal(int)
    sigInspect = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption_width = 2 * THUMBNAIL  # the widest a caption line may be before it is cut
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self.setSpacing(2)
        self.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.currentItemChanged.connect(self._on_current)
        self.itemDoubleClicked.connect(lambda item: self.sigInspect.emit(int(item.data(INDEX_ROLE))))

    def show_samples(self, results: Results | TaskResults, indices: Sequence[int] | np.ndarray) -> None:
        """Show ``indices`` (at most :data:`SAMPLE_LIMIT` of them) of ``results``' split."""
        self.clear()
        indices = [int(i) for i in list(indices)[:SAMPLE_LIMIT]]
        if not indices:
            return
        captions = [results.caption(i) for i in indices]
        fm = self.fontMetrics()
        widest = max(fm.horizontalAdvance(line) for c in captions for line in c.split("\n"))
        self.setGridSize(QSize(max(THUMBNAIL + 12, min(widest + 12, self.caption_width)),
                               THUMBNAIL + 2 * fm.lineSpacing() + 14))
        images = results.split.images(indices)
        wrong = QBrush(QColor(ERROR_COLOR))
        for index, caption, image in zip(indices, captions, images):
            pixmap = scaled(to_qimage(image), THUMBNAIL)
            item = QListWidgetItem(caption)
            if results.is_wrong(index):
                pixmap = framed(pixmap, ERROR_COLOR)
                item.setForeground(wrong)
            item.setIcon(QIcon(pixmap))
            item.setData(INDEX_ROLE, index)
            item.setToolTip(results.tooltip(index) + "\nDouble-click to see its feature maps and Grad-CAM")
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.addItem(item)

    def captions(self) -> list[str]:
        return [self.item(row).text() for row in range(self.count())]

    def indices(self) -> list[int]:
        return [int(self.item(row).data(INDEX_ROLE)) for row in range(self.count())]

    def _on_current(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is not None:
            self.sigSampleChosen.emit(int(item.data(INDEX_ROLE)))


def shown_note(shown: int, total: int, order: str) -> str:
    if total == 0:
        return "No samples."
    if shown < total:
        return f"Showing {shown} of {total} samples, {order}."
    return f"{total} sample{'s' if total != 1 else ''}, {order}."


class SamplesView(QWidget):
    """Every sample ranked by the probability given to its true class, best or worst first."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results: Results | None = None
        self.worst_button = QToolButton(self)
        self.worst_button.setText("Worst first")
        self.worst_button.setToolTip("Samples whose true class got the lowest probability: the "
                                     "model's most confident mistakes")
        self.best_button = QToolButton(self)
        self.best_button.setText("Best first")
        self.best_button.setToolTip("Samples whose true class got the highest probability")
        group = QButtonGroup(self)
        for button in (self.worst_button, self.best_button):
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            group.addButton(button)
        self.worst_button.setChecked(True)
        group.buttonToggled.connect(self._on_order_toggled)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.grid = SampleGrid(self)

        bar = QHBoxLayout()
        bar.setContentsMargins(10, 8, 10, 4)
        bar.setSpacing(0)
        bar.addWidget(self.worst_button)
        bar.addWidget(self.best_button)
        bar.addSpacing(12)
        bar.addWidget(self.note, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(bar)
        layout.addWidget(self.grid, 1)

    def set_results(self, results: Results | None) -> None:
        self.results = results
        self.refresh()

    @property
    def best_first(self) -> bool:
        return self.best_button.isChecked()

    def _on_order_toggled(self, _button: QAbstractButton, checked: bool) -> None:
        if checked:  # the other button's unchecking also toggles
            self.refresh()

    def refresh(self) -> None:
        if self.results is None:
            self.grid.clear()
            self.note.clear()
            return
        order = self.results.evaluation.ranked(best_first=self.best_first)
        self.grid.show_samples(self.results, order)
        what = "most confidently right first" if self.best_first else "most confidently wrong first"
        self.note.setText(shown_note(self.grid.count(), len(order), what))


class SampleChooser(QWidget):
    """Picks one sample by its index in the split and shows it with its prediction."""

    sigChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results: Results | TaskResults | None = None
        self.spin = QSpinBox(self)
        self.spin.setPrefix("Sample ")
        self.spin.setKeyboardTracking(False)
        self.spin.setToolTip("The sample of the evaluated split to look at (or pick a thumbnail "
                             "in the Confusion or Samples tab)")
        self.thumbnail = QLabel(self)
        self.thumbnail.setFixedSize(40, 40)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption = QLabel(self)
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.caption.setMinimumWidth(self.fontMetrics().horizontalAdvance("pred 0 (0.00) · true 0"))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(self.spin)
        layout.addWidget(self.thumbnail)
        layout.addWidget(self.caption, 1)
        self.spin.valueChanged.connect(self._on_value)

    def set_results(self, results: Results | TaskResults | None) -> None:
        self.results = results
        self.spin.blockSignals(True)
        self.spin.setRange(0, max(len(results) - 1, 0) if results else 0)
        self.spin.setValue(0)
        self.spin.blockSignals(False)
        self._show(0)

    def index(self) -> int:
        return self.spin.value()

    def set_index(self, index: int) -> None:
        """Choose ``index`` without announcing it."""
        self.spin.blockSignals(True)
        self.spin.setValue(int(index))
        self.spin.blockSignals(False)
        self._show(self.spin.value())

    def _on_value(self, index: int) -> None:
        self._show(index)
        self.sigChanged.emit(index)

    def _show(self, index: int) -> None:
        if self.results is None or not len(self.results):
            self.thumbnail.setPixmap(QPixmap())
            self.caption.clear()
            return
        self.thumbnail.setPixmap(scaled(to_qimage(self.results.image(index)), 40))
        text = html.escape(self.results.caption(index).replace("\n", " · "))
        color = f" style='color:{ERROR_COLOR}'" if self.results.is_wrong(index) else ""
        self.caption.setText(f"<span{color}>{text}</span>")
        self.caption.setToolTip(self.results.tooltip(index))
