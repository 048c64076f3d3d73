"""Which data to train on: the choice (digits, shapes, a file or a folder), a CSV's target
columns, a one-line summary and a preview of what the data holds: samples and counts per class or
label, per-target ranges of numeric targets, masks over their images, or just images. The data
loads off the GUI thread (:mod:`.loading`), for the training session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFrame, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QScrollArea,
    QSizePolicy, QVBoxLayout, QWidget,
)

from engine.pixel_range import PixelRange
from engine.tasks import TargetKind

from ..theme import ERROR_COLOR
from ..widgets import NoWheelMixin, mute
from .loading import MAX_PREVIEW_CLASSES, SAMPLES_PER_CLASS, THUMB, LoadedData, mask_color

_SPACING = 4
DATA_FILTER = ("Datasets (*.npz *.npy *.csv);;NumPy archives (*.npz);;NumPy arrays, x_train.npy and the "
               "others beside it (*.npy);;CSV tables (*.csv);;All files (*)")
BUILTIN_TITLES = (("Digits", "digits"), ("Shapes", "shapes"))
RANGE_TIP = ("The values the model is fed for each pixel: [0, 1], or raw 0–255 as Keras's "
             "image_dataset_from_directory gives them (a design for raw pixels starts with "
             "Rescaling(1/255)). The analysis checks the design's Rescaling and augmentation "
             "layers against it.")
_OPEN_FILE, _OPEN_FOLDER = "\x00file", "\x00folder"
# What the summary calls the things ``class_names`` names, per target kind (singular, plural).
_NAMED = {TargetKind.CLASS: ("class", "classes"), TargetKind.MULTI_HOT: ("label", "labels"),
          TargetKind.VALUES: ("target", "targets"), TargetKind.MASK: ("mask class", "mask classes")}


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
    sigTargetColumnsChanged = Signal(object)  # tuple of column names

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
        self.target_columns: tuple[str, ...] = ()
        self.columns_edit = QLineEdit(self)
        self.columns_edit.setPlaceholderText("e.g. area, width (empty: the file's convention)")
        self.columns_edit.setToolTip("The CSV columns that hold the targets, separated by commas: "
                                     "the numbers to predict, or one 0/1 column per label")
        self.columns_edit.setAccessibleName("Target columns")
        self.columns_edit.setClearButtonEnabled(True)
        self.columns_edit.editingFinished.connect(self._on_columns_edited)
        self.columns_row = QWidget(self)
        row = QHBoxLayout(self.columns_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        columns_label = QLabel("Target columns", self.columns_row)
        columns_label.setBuddy(self.columns_edit)
        row.addWidget(columns_label)
        row.addWidget(self.columns_edit, 1)
        self.columns_row.hide()

        self.combo.setAccessibleName("Data")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.combo)
        layout.addWidget(self.range_combo)
        layout.addWidget(self.columns_row)
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

    def set_target_columns(self, columns: tuple[str, ...]) -> None:
        self.target_columns = tuple(columns)
        self.columns_edit.setText(", ".join(columns))

    def is_csv(self) -> bool:
        return Path(self.source).suffix.lower() == ".csv"

    def want_target_columns(self, wanted: bool) -> None:
        """Show the target columns field (for a CSV whose task reads numbers or labels)."""
        self.columns_row.setVisible(wanted)

    def show_loading(self) -> None:
        self.summary_label.setText(f"Loading {source_title(self.source)}…")

    def show_dataset(self, dataset: Any) -> None:
        n_val = len(dataset.validation) if dataset.validation is not None else 0
        parts = [f"<b>{len(dataset.train):,}</b> training", f"<b>{n_val:,}</b> validation"]
        if dataset.test is not None:
            parts.append(f"<b>{len(dataset.test):,}</b> test")
        classes = len(dataset.class_names)
        target = getattr(dataset, "target", TargetKind.CLASS)
        if target in _NAMED:
            one, many = _NAMED[target]
            parts.append(f"<b>{classes}</b> {one if classes == 1 else many}")
        else:
            parts.append("images only")
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

    def _on_columns_edited(self) -> None:
        columns = tuple(c.strip() for c in self.columns_edit.text().split(",") if c.strip())
        if columns != self.target_columns:
            self.target_columns = columns
            self.sigTargetColumnsChanged.emit(columns)

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
        """What ``loaded`` holds: per class or label, its count and first images; numeric
        targets' ranges; images with their masks; or images alone."""
        target = getattr(loaded.dataset, "target", TargetKind.CLASS)
        if target is TargetKind.VALUES:
            self._show_values(loaded)
        elif target is TargetKind.MASK:
            self._show_masks(loaded)
        elif target is TargetKind.NONE:
            self._show_images(loaded, "Images (the target is the image itself)")
        else:
            self._show_classes(loaded, target)

    def _show_classes(self, loaded: LoadedData, target: TargetKind) -> None:
        dataset = loaded.dataset
        counts = loaded.counts or list(dataset.class_counts().values())
        biggest = max(counts, default=1) or 1
        multilabel = target is TargetKind.MULTI_HOT
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(10, 6, 10, 6)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(_SPACING)
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for row, text in ((0, "Label" if multilabel else "Class"),
                          (1, "Images with it" if multilabel else "Training images"), (3, "Samples")):
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
                   + (" have this label" if multilabel else "")
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
            more = "labels" if multilabel else "classes"
            grid.addWidget(mute(QLabel(f"+ {extra} more {more}", page)), 0, MAX_PREVIEW_CLASSES + 1)
        grid.setColumnStretch(grid.columnCount(), 1)
        grid.setRowStretch(3 + SAMPLES_PER_CLASS, 1)
        self.setWidget(page)
        self._fit_rows()

    def _page(self) -> tuple[QWidget, QGridLayout]:
        self.count_labels, self.class_labels, self._thumb_rows = [], [], []
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(10, 6, 10, 6)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(_SPACING)
        return page, grid

    def _thumb_strip(self, page: QWidget, images: list[Any]) -> QWidget:
        """One row of thumbnails."""
        strip = QWidget(page)
        row = QHBoxLayout(strip)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(_SPACING)
        for image in images:
            cell = QLabel(strip)
            cell.setFixedSize(QSize(THUMB + 2, THUMB + 2))
            cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
            cell.setStyleSheet("QLabel { border: 1px solid palette(mid); background: black; }")
            cell.setPixmap(QPixmap.fromImage(image))
            row.addWidget(cell)
        row.addStretch(1)
        return strip

    def _show_images(self, loaded: LoadedData, title: str) -> None:
        page, grid = self._page()
        grid.addWidget(mute(QLabel(title, page)), 0, 0)
        grid.addWidget(self._thumb_strip(page, loaded.thumbnails[0] if loaded.thumbnails else []), 1, 0)
        grid.setRowStretch(2, 1)
        self.setWidget(page)

    def _show_values(self, loaded: LoadedData) -> None:
        """Per numeric target: its name, minimum, mean and maximum; then the first images."""
        page, grid = self._page()
        grid.setHorizontalSpacing(18)
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for column, text in enumerate(("Target", "Minimum", "Mean", "Maximum")):
            grid.addWidget(mute(QLabel(text, page)), 0, column, right if column else Qt.AlignmentFlag.AlignLeft)
        names = loaded.dataset.class_names
        for row, (low, mean, high) in enumerate(loaded.stats[:MAX_PREVIEW_CLASSES], start=1):
            name = names[row - 1] if row - 1 < len(names) else f"target {row}"
            title = QLabel(name, page)
            grid.addWidget(title, row, 0)
            self.class_labels.append(title)
            for column, value in enumerate((low, mean, high), start=1):
                grid.addWidget(QLabel(f"{value:.4g}", page), row, column, right)
        rows = len(loaded.stats[:MAX_PREVIEW_CLASSES]) + 1
        grid.addWidget(mute(QLabel("Samples", page)), rows, 0)
        grid.addWidget(self._thumb_strip(page, loaded.thumbnails[0] if loaded.thumbnails else []),
                       rows + 1, 0, 1, 5)
        grid.setColumnStretch(4, 1)
        grid.setRowStretch(rows + 2, 1)
        self.setWidget(page)

    def _show_masks(self, loaded: LoadedData) -> None:
        """The mask classes with their colours and share of the pixels; then images with their
        masks overlaid."""
        page, grid = self._page()
        legend = QWidget(page)
        row = QHBoxLayout(legend)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(12)
        names = loaded.dataset.class_names
        for index, share in enumerate(loaded.counts[:MAX_PREVIEW_CLASSES]):
            name = names[index] if index < len(names) else f"class {index}"
            red, green, blue = mask_color(index)
            swatch = QLabel(legend)
            swatch.setFixedSize(12, 12)
            swatch.setStyleSheet(f"background: rgb({red},{green},{blue}); border: 1px solid palette(mid);")
            label = QLabel(f"{name} {share / 10:.1f} %", legend)
            label.setToolTip(f"{name}: {share / 10:.1f} % of the training pixels")
            row.addWidget(swatch)
            row.addWidget(label)
            self.class_labels.append(label)
        row.addStretch(1)
        grid.addWidget(mute(QLabel("Mask classes (share of pixels)", page)), 0, 0)
        grid.addWidget(legend, 1, 0)
        grid.addWidget(mute(QLabel("Samples with their masks", page)), 2, 0)
        grid.addWidget(self._thumb_strip(page, loaded.thumbnails[0] if loaded.thumbnails else []), 3, 0)
        grid.setRowStretch(4, 1)
        self.setWidget(page)

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
