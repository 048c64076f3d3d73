"""A segmentation model's evaluation: one image at a time (the worst first) with its true and
predicted masks laid over it in class colours, an opacity slider, a legend, and the per-class
IoU table with mean IoU and pixel accuracy. The predicted mask is computed for the image shown,
off the GUI thread, and kept while the results stay."""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import (
    QGridLayout, QHBoxLayout, QLabel, QSlider, QSpinBox, QSplitter, QToolButton, QVBoxLayout, QWidget,
)

from engine.task_evaluation import SegmentationEvaluation, predict_samples
from engine.tasks import Task

from ..theme import ERROR_COLOR
from .background import LatestAnswer
from .images import ImageLabel, to_uint8
from .results import TaskResults
from .tables import ScoreTable

# Distinct colours for mask classes (Tableau 10); more classes reuse them.
CLASS_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                "#9c755f", "#bab0ac")
HEADERS = ("Class", "IoU", "True pixels")
TIPS = ("", "Intersection over union of the true and predicted pixels of this class (— when the class "
        "is neither true nor predicted anywhere)", "Share of the split's pixels that truly are this class")


def class_color(index: int, name: str) -> QColor | None:
    """The overlay colour of a class; None for a class named background (left uncoloured)."""
    if name.strip().lower() in ("background", "bg"):
        return None
    return QColor(CLASS_COLORS[index % len(CLASS_COLORS)])


def mask_overlay(image: np.ndarray, mask: np.ndarray, names: list[str], opacity: float) -> QImage:
    """``image`` in grey with each pixel's class colour blended over it at ``opacity``."""
    image = np.asarray(image, dtype=np.float32)
    grey = image[..., 0] if image.ndim == 3 and image.shape[-1] != 3 else (
        image.mean(axis=-1) if image.ndim == 3 else image)
    low, high = float(grey.min()), float(grey.max())
    if low < 0 or high > 1:
        grey = (grey - low) / (high - low) if high > low else np.zeros_like(grey)
    base = np.repeat(grey[..., None], 3, axis=2) if image.ndim == 2 or image.shape[-1] != 3 else image.copy()
    table = np.zeros((len(names), 3), np.float32)
    painted = np.zeros(len(names), bool)
    for k, name in enumerate(names):
        color = class_color(k, name)
        if color is not None:
            table[k] = (color.redF(), color.greenF(), color.blueF())
            painted[k] = True
    mask = np.clip(np.asarray(mask, dtype=np.int64), 0, len(names) - 1)
    weight = (painted[mask] * float(opacity))[..., None]
    blended = base * (1 - weight) + table[mask] * weight
    height, width = mask.shape
    data = np.ascontiguousarray(to_uint8(blended))
    return QImage(data.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class SegmentationView(QWidget):
    """Browse images worst first: image, true mask, predicted mask; the IoU table beside."""

    sigImageShown = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results: TaskResults | None = None
        self.masks: dict[int, np.ndarray] = {}   # predicted masks computed so far, by sample index
        self._shown: tuple[int, np.ndarray, np.ndarray] | None = None  # (index, image, true mask) drawn
        self.current: int | None = None          # the sample index shown
        self._answer = LatestAnswer(self)
        self.previous_button = QToolButton(self)
        self.previous_button.setText("◄")
        self.previous_button.setToolTip("The next worse image")
        self.next_button = QToolButton(self)
        self.next_button.setText("►")
        self.next_button.setToolTip("The next better image")
        self.position = QSpinBox(self)
        self.position.setPrefix("Worst #")
        self.position.setKeyboardTracking(False)
        self.position.setToolTip("Images ordered by their own mean IoU, the worst first")
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setFixedWidth(140)
        self.opacity.setToolTip("How strongly the masks' colours cover the image")
        self.image_note = QLabel(self)
        self.image_note.setWordWrap(True)
        bar = QHBoxLayout()
        bar.setContentsMargins(10, 8, 10, 4)
        bar.setSpacing(6)
        bar.addWidget(self.previous_button)
        bar.addWidget(self.position)
        bar.addWidget(self.next_button)
        bar.addSpacing(10)
        bar.addWidget(self.image_note, 1)
        bar.addWidget(QLabel("Opacity", self))
        bar.addWidget(self.opacity)

        self.image_view = ImageLabel(parent=self)
        self.true_view = ImageLabel(parent=self)
        self.predicted_view = ImageLabel(parent=self)
        pictures = QGridLayout()
        pictures.setHorizontalSpacing(10)
        pictures.setVerticalSpacing(2)
        for column, (title, view) in enumerate((("Image", self.image_view), ("True mask", self.true_view),
                                                ("Predicted mask", self.predicted_view))):
            caption = QLabel(title, self)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            pictures.addWidget(caption, 0, column)
            view.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            pictures.addWidget(view, 1, column)
            pictures.setColumnStretch(column, 1)
        pictures.setRowStretch(1, 1)
        self.legend = QLabel(self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.legend.setWordWrap(True)

        self.table = ScoreTable(HEADERS, TIPS, self)
        self.scores = QLabel(self)
        self.scores.setWordWrap(True)
        self.scores.setContentsMargins(10, 6, 10, 8)
        self.scores.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 4)
        left_layout.setSpacing(4)
        left_layout.addLayout(bar)
        left_layout.addLayout(pictures, 1)
        left_layout.addWidget(self.legend)
        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(0)
        right_layout.addWidget(self.scores)
        right_layout.addWidget(self.table, 1)
        right_layout.addStretch(0)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        self.previous_button.clicked.connect(lambda: self.position.setValue(self.position.value() - 1))
        self.next_button.clicked.connect(lambda: self.position.setValue(self.position.value() + 1))
        self.position.valueChanged.connect(lambda _v: self.show_current())
        self.opacity.valueChanged.connect(lambda _v: self._draw())

    @property
    def evaluation(self) -> SegmentationEvaluation | None:
        ev = self.results.evaluation if self.results else None
        return ev if isinstance(ev, SegmentationEvaluation) else None

    def set_results(self, results: TaskResults | None) -> None:
        self.results = results
        self.masks = {}
        self._shown = None
        self.current = None
        self._answer.forget()
        ev = self.evaluation
        names = ev.class_names if ev else []
        pixels = ev.class_pixels() if ev else np.zeros(0)
        total = max(int(pixels.sum()), 1)
        self.table.set_rows([(name, [(float(ev.per_class_iou[k]) if ev else 0.0,
                                      "—" if ev is None or np.isnan(ev.per_class_iou[k])
                                      else f"{ev.per_class_iou[k]:.3f}"),
                                     (float(pixels[k]) / total, f"{float(pixels[k]) / total:.1%}")])
                             for k, name in enumerate(names)])
        self.table.setMinimumWidth(self.table.natural_width())
        self.table.fit_height()
        if ev is None:
            self.scores.clear()
            self.legend.clear()
        else:
            self.scores.setText(f"Mean IoU&nbsp;<b>{ev.mean_iou:.3f}</b> (over the classes present) · pixel "
                                f"accuracy&nbsp;<b>{ev.pixel_accuracy:.1%}</b>")
            swatches = []
            for k, name in enumerate(names):
                color = class_color(k, name)
                swatch = (f"<span style='background:{color.name()}'>&nbsp;&nbsp;&nbsp;&nbsp;</span>"
                          if color is not None else "<span>(uncoloured)</span>")
                swatches.append(f"{swatch}&nbsp;{html.escape(name)}")
            self.legend.setText("&nbsp;&nbsp;&nbsp;".join(swatches))
        self.position.blockSignals(True)
        self.position.setRange(1, max(len(ev), 1) if ev else 1)
        self.position.setValue(1)
        self.position.blockSignals(False)
        self.show_current()

    def show_position(self, position: int) -> None:
        """Show the ``position``-th worst image (1 = the worst)."""
        self.position.setValue(position)

    def show_current(self) -> None:
        ev, results = self.evaluation, self.results
        if ev is None or results is None:
            self.current = None
            for view in (self.image_view, self.true_view, self.predicted_view):
                view.set_image(None)
            self.image_note.clear()
            return
        index = int(ev.worst[self.position.value() - 1])
        self.current = index
        self.previous_button.setEnabled(self.position.value() > 1)
        self.next_button.setEnabled(self.position.value() < len(ev))
        self.image_note.setText(f"Sample {index}: image IoU <b>{ev.per_image_iou[index]:.3f}</b>")
        self._draw()
        if index not in self.masks:
            model, split = results.model, results.split
            self._answer.request(lambda: predict_samples(model, split, [index], Task.SEGMENTATION)[1][0],
                                 lambda mask: self._got_mask(index, mask), self._failed)
        else:
            self.sigImageShown.emit(index)

    def _got_mask(self, index: int, mask: np.ndarray) -> None:
        self.masks[index] = np.asarray(mask)
        if index == self.current:
            self._draw()
            self.sigImageShown.emit(index)

    def _failed(self, message: str) -> None:
        self.image_note.setText(f"<span style='color:{ERROR_COLOR}'>{html.escape(message)}</span>")

    def _draw(self) -> None:
        ev, results, index = self.evaluation, self.results, self.current
        if ev is None or results is None or index is None:
            return
        if self._shown is None or self._shown[0] != index:  # a file-backed split decodes once per image
            self._shown = (index, results.image(index), results.mask(index))
        _index, image, truth = self._shown
        names = ev.class_names
        alpha = self.opacity.value() / 100.0
        self.image_view.set_image(mask_overlay(image, np.zeros(truth.shape, np.int64), names, 0.0))
        self.true_view.set_image(mask_overlay(image, truth, names, alpha))
        predicted = self.masks.get(index)
        self.predicted_view.set_image(mask_overlay(image, predicted, names, alpha) if predicted is not None else None)
