"""Which data to train on: the choice (digits, shapes, a file or a folder), a one-line summary
and a preview grid of samples and counts per class. The data loads off the GUI thread
(:mod:`.loading`), for the training session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFrame, QGridLayout, QLabel, QScrollArea, QSizePolicy,
    QVBoxLayout, QWidget,
)

from engine.pixel_range import PixelRange

from ..theme import ERROR_COLOR
from ..widgets import NoWheelMixin, mute
from .loading import MAX_PREVIEW_CLASSES, SAMPLES_PER_CLASS, THUMB, LoadedData

_SPACING = 4
DATA_FILTER = "Datasets (*.npz *.csv);;NumPy archives (*.npz);;CSV tables (*.csv);;All files (*)"
BUILTIN_TITLES = (("Digits", "digits"), ("Shapes", "shapes"))
RANGE_TIP = ("The values the model is fed for each pixel: [0, 1], or raw 0–255 as Keras's "
             "image_dataset_from_directory gives them (a design for raw pixels starts with "
             "Rescaling(1/255)). The analysis checks the design's Rescaling and augmentation "
             "layers against it.")
_OPEN_FILE, _OPEN_FOLDER = "\x00file", "\x00folder"


# --- widgets -------------------------------------------------------------------------------------

class _Combo(NoWheelMixin, QComboBox):
    pass


def source_title(source: str) -> str:
    for title, key in BUILTIN_TITLES:
        if source.strip().lower() == key:
            return title
    return Path(source).name or source


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


class DatasetBox(QWidget):
    """The dataset choice and a one-line summary of what was loaded.

    ``sigSourceChanged`` announces a source the user chose (``digits``, ``shapes`` or a path);
    :meth:`set_source` shows one without emitting. The pixel range the data is delivered in
    ([0, 1] or raw 0–255, see :mod:`engine.pixel_range`) is chosen beside it:
    ``sigPixelRangeChanged`` and :meth:`set_pixel_range` likewise.
    """

    sigSourceChanged = Signal(str)
    sigPixelRangeChanged = Signal(object)  # a PixelRange

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.source = "digits"
        self.combo = _Combo(self)
        self.combo.setToolTip("The images to train on: a built-in set, a .npz or .csv file, or a "
                              "folder with one sub-folder of images per class")
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.activated.connect(self._on_activated)
        self.path_label = QLabel(self)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mute(self.path_label)
        self.path_label.hide()
        self.summary_label = QLabel(self)
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.pixel_range = PixelRange.UNIT
        self.range_combo = _Combo(self)
        for pixel_range in PixelRange:
            self.range_combo.addItem(f"Pixels {pixel_range.label}", pixel_range.value)
        self.range_combo.setToolTip(RANGE_TIP)
        self.range_combo.setAccessibleName("Pixel range")
        self.range_combo.activated.connect(self._on_range_activated)

        self.combo.setAccessibleName("Data")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.combo)
        layout.addWidget(self.range_combo)
        layout.addWidget(self.path_label)
        layout.addWidget(self.summary_label)
        self._rebuild_combo()

    # --- public -------------------------------------------------------------------------------

    def set_source(self, source: str) -> None:
        self.source = source.strip() or "digits"
        self._rebuild_combo()

    def set_pixel_range(self, pixel_range: PixelRange) -> None:
        self.pixel_range = pixel_range
        self.range_combo.setCurrentIndex(self.range_combo.findData(pixel_range.value))

    def show_loading(self) -> None:
        self.summary_label.setText(f"Loading {source_title(self.source)}…")

    def show_dataset(self, dataset: Any) -> None:
        n_val = len(dataset.validation) if dataset.validation is not None else 0
        parts = [f"<b>{len(dataset.train):,}</b> training", f"<b>{n_val:,}</b> validation"]
        if dataset.test is not None:
            parts.append(f"<b>{len(dataset.test):,}</b> test")
        classes = len(dataset.class_names)
        parts.append(f"<b>{classes}</b> class{'es' if classes != 1 else ''}")
        parts.append(_fmt_shape(dataset.sample_shape()))
        parts.append(f"pixels {dataset.pixel_range.label}")
        self.summary_label.setText(" · ".join(parts))
        tip = [f"{dataset.name}: images {_fmt_shape(dataset.sample_shape())}, "
               f"values {dataset.pixel_range.label}"]
        tip += dataset.warnings
        self.summary_label.setToolTip("\n".join(tip))

    def show_error(self, message: str) -> None:
        self.summary_label.setText(f"<span style='color:{ERROR_COLOR}'>Not loaded</span>")
        self.summary_label.setToolTip(message)

    # --- internals ----------------------------------------------------------------------------

    def _rebuild_combo(self) -> None:
        combo = self.combo
        combo.blockSignals(True)
        combo.clear()
        for title, key in BUILTIN_TITLES:
            combo.addItem(title, key)
        builtin = self.source.lower() in {key for _t, key in BUILTIN_TITLES}
        if not builtin:
            combo.addItem(source_title(self.source), self.source)
            combo.setItemData(combo.count() - 1, self.source, Qt.ItemDataRole.ToolTipRole)
        combo.insertSeparator(combo.count())
        combo.addItem("Open a file (.npz, .csv)…", _OPEN_FILE)
        combo.addItem("Open an image folder…", _OPEN_FOLDER)
        combo.setCurrentIndex(combo.findData(self.source.lower() if builtin else self.source))
        combo.blockSignals(False)
        self.path_label.setVisible(not builtin)
        if not builtin:
            self.path_label.setText(self._elided_path())
            self.path_label.setToolTip(self.source)

    def _elided_path(self) -> str:
        metrics = self.path_label.fontMetrics()
        return metrics.elidedText(self.source, Qt.TextElideMode.ElideMiddle, max(200, self.width() - 8))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.path_label.isVisible():
            self.path_label.setText(self._elided_path())

    def _last_dir(self) -> str:
        if self.settings is not None:
            return str(self.settings.value("train/last_data_dir", str(Path.home())))
        return str(Path.home())

    def _on_range_activated(self, index: int) -> None:
        chosen = PixelRange(self.range_combo.itemData(index))
        if chosen is not self.pixel_range:
            self.pixel_range = chosen
            self.sigPixelRangeChanged.emit(chosen)

    def _on_activated(self, index: int) -> None:
        data = self.combo.itemData(index)
        if data in (_OPEN_FILE, _OPEN_FOLDER):
            if data == _OPEN_FILE:
                path, _ = QFileDialog.getOpenFileName(self, "Open a dataset", self._last_dir(), DATA_FILTER)
            else:
                path = QFileDialog.getExistingDirectory(self, "Open an image folder (one sub-folder per class)",
                                                        self._last_dir())
            if not path:
                self._rebuild_combo()  # back to what was chosen before
                return
            if self.settings is not None:
                self.settings.setValue("train/last_data_dir", str(Path(path).parent))
            data = path
        if data == self.source:
            return
        self.set_source(str(data))
        self.sigSourceChanged.emit(self.source)


class _Bar(QWidget):
    """A thin horizontal bar: the share of the largest class this class has."""

    def __init__(self, fraction: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fraction = max(0.0, min(1.0, fraction))
        self.setFixedHeight(4)

    def paintEvent(self, _event: Any) -> None:
        painter = QPainter(self)
        painter.setPen(Qt.PenStyle.NoPen)
        base = self.palette().color(self.backgroundRole()).darker(115)
        painter.fillRect(self.rect(), base)
        fill = self.rect()
        fill.setWidth(round(self.width() * self.fraction))
        painter.fillRect(fill, self.palette().highlight())


class SamplePreview(QScrollArea):
    """A few training images of each class: one column per class with its name, its count of
    training images (and a bar comparing it with the largest class) and its first images. Rows
    of images that do not fit the height are left out rather than cut."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.count_labels: list[QLabel] = []
        self.class_labels: list[QLabel] = []
        self._thumb_rows: list[list[QLabel]] = []
        self._placeholder("Choose a dataset to see its images.")

    def _placeholder(self, text: str) -> None:
        label = QLabel(text)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        mute(label)
        self.count_labels, self.class_labels, self._thumb_rows = [], [], []
        self.setWidget(label)

    def show_message(self, text: str) -> None:
        self._placeholder(text)

    def show_data(self, loaded: LoadedData) -> None:
        dataset = loaded.dataset
        counts = list(dataset.class_counts().values())
        biggest = max(counts, default=1) or 1
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(10, 6, 10, 6)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(_SPACING)
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for row, text in ((0, "Class"), (1, "Training images"), (3, "Samples")):
            align = right if row != 3 else Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop
            grid.addWidget(mute(QLabel(text, page)), row, 0, align)
        self.count_labels, self.class_labels = [], []
        self._thumb_rows = [[] for _ in range(SAMPLES_PER_CLASS)]
        lazy = dataset.train.is_lazy
        centre = Qt.AlignmentFlag.AlignHCenter
        for index, name in enumerate(dataset.class_names[:MAX_PREVIEW_CLASSES]):
            column = index + 1
            title = QLabel(page)
            title.setAlignment(centre)
            title.setToolTip(name)
            title.setText(title.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight, THUMB + 8))
            grid.addWidget(title, 0, column, centre)
            n_val = loaded.validation_counts[index] if index < len(loaded.validation_counts) else 0
            tip = (f"{name}: {counts[index]:,} training images, {n_val:,} validation"
                   + (" (read from disk when training)" if lazy else ""))
            count = QLabel(f"{counts[index]:,}", page)
            count.setAlignment(centre)
            count.setToolTip(tip)
            grid.addWidget(count, 1, column, centre)
            bar = _Bar(counts[index] / biggest, page)
            bar.setFixedWidth(THUMB)
            bar.setToolTip(tip)
            grid.addWidget(bar, 2, column, centre)
            thumbs = loaded.thumbnails[index] if index < len(loaded.thumbnails) else []
            for row in range(SAMPLES_PER_CLASS):
                cell = QLabel(page)
                cell.setFixedSize(QSize(THUMB + 2, THUMB + 2))
                cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
                cell.setStyleSheet("QLabel { border: 1px solid palette(mid); background: black; }")
                if row < len(thumbs):
                    cell.setPixmap(QPixmap.fromImage(thumbs[row]))
                grid.addWidget(cell, 3 + row, column, centre)
                self._thumb_rows[row].append(cell)
            self.class_labels.append(title)
            self.count_labels.append(count)
        extra = len(dataset.class_names) - MAX_PREVIEW_CLASSES
        if extra > 0:
            grid.addWidget(mute(QLabel(f"+ {extra} more classes", page)), 0, MAX_PREVIEW_CLASSES + 1)
        grid.setColumnStretch(grid.columnCount(), 1)
        grid.setRowStretch(3 + SAMPLES_PER_CLASS, 1)
        self.setWidget(page)
        self._fit_rows()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit_rows()

    def _fit_rows(self) -> None:
        if not self._thumb_rows:
            return
        line = self.fontMetrics().height()
        header = 12 + 2 * line + 4 + 3 * _SPACING
        room = self.viewport().height() - header
        rows = max(1, min(SAMPLES_PER_CLASS, room // (THUMB + 2 + _SPACING)))
        for index, cells in enumerate(self._thumb_rows):
            for cell in cells:
                cell.setVisible(index < rows)
