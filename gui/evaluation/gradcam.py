"""Grad-CAM: the sample beside the same sample with its heat map of evidence for a class."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.evaluation import GradCam, default_grad_cam_layer, grad_cam

from .images import ImageLabel, colour_bar, heat_overlay, to_qimage
from .inspector_base import InspectorView
from .results import Results, TaskResults

ALPHA = 0.55


class GradCamView(InspectorView):
    """Sample, class (the predicted one unless chosen) and layer; the image and its overlay."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.last: GradCam | None = None
        self.class_combo = QComboBox(self)
        self.class_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.class_combo.setToolTip("The class whose evidence to show")
        self.class_combo.currentIndexChanged.connect(lambda _i: self.request_refresh())
        self.image_view = ImageLabel(parent=self)
        self.overlay_view = ImageLabel(parent=self)
        self.overlay_view.setToolTip("Red: regions that raise the class's score most; blue: little or none")

        class_label = QLabel("Class", self)
        class_label.setBuddy(self.class_combo)
        layer_label = QLabel("Layer", self)
        layer_label.setBuddy(self.layer_combo)
        controls = QHBoxLayout()
        controls.setSpacing(8)
        controls.addWidget(class_label)
        controls.addWidget(self.class_combo)
        controls.addSpacing(8)
        controls.addWidget(layer_label)
        controls.addWidget(self.layer_combo)
        controls.addStretch(1)

        legend = QHBoxLayout()  # the overlay's title and colour scale
        legend.setSpacing(4)
        legend.addStretch(1)
        legend.addWidget(QLabel("Grad-CAM", self))
        legend.addSpacing(10)
        legend.addWidget(QLabel("low", self))
        bar = QLabel(self)
        bar.setPixmap(colour_bar(64, 10))
        bar.setToolTip("The heat map's colours, from no evidence (blue) to the strongest (red)")
        legend.addWidget(bar)
        legend.addWidget(QLabel("high", self))
        legend.addStretch(1)
        caption = QLabel("Sample", self)
        caption.setAlignment(Qt.AlignmentFlag.AlignCenter)

        pictures = QGridLayout()
        pictures.setHorizontalSpacing(12)
        pictures.setVerticalSpacing(2)
        pictures.addWidget(caption, 0, 0)
        pictures.addLayout(legend, 0, 1)
        for column, view in enumerate((self.image_view, self.overlay_view)):
            view.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            pictures.addWidget(view, 1, column)
            pictures.setColumnStretch(column, 1)
        pictures.setRowStretch(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 6)
        layout.setSpacing(6)
        layout.addWidget(self.chooser)
        layout.addLayout(controls)
        layout.addWidget(self.status_row)
        layout.addLayout(pictures, 1)

    def default_layer_row(self) -> int:
        """grad_cam's own default: the last convolution (or what follows it at its size)."""
        name = default_grad_cam_layer(self.results.model) if self.results is not None else None
        row = self.layer_combo.findData(name) if name is not None else -1
        return row if row >= 0 else self.layer_combo.count() - 1

    def results_changed(self) -> None:
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem("Highest-scoring label" if self.per_label() else "Predicted class", None)
        for index, name in enumerate(_names(self.results)):
            self.class_combo.addItem(name, index)
        self.class_combo.blockSignals(False)

    def per_label(self) -> bool:
        """The results are a multi-label model's: each output unit is a label's own score."""
        return isinstance(self.results, TaskResults)

    def class_index(self) -> int | None:
        return self.class_combo.currentData()

    def overlay_image(self):
        return self.overlay_view.image()

    def compute(self, results: Results | TaskResults, index: int, layer_name: str
                ) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        model, image, class_index, independent = results.model, results.image(index), self.class_index(), \
            self.per_label()
        return ((lambda: grad_cam(model, image, class_index, layer_name, independent)),
                (lambda cam: self.show_cam(results, image, class_index, cam)))

    def show_cam(self, results: Results | TaskResults, image: Any, class_index: int | None, cam: GradCam) -> None:
        """The sample and its overlay for ``cam``, asked for ``class_index`` (None: predicted)."""
        self.last = cam
        self.image_view.set_image(to_qimage(image))
        self.overlay_view.set_image(heat_overlay(image, cam.heatmap, ALPHA))
        name = html.escape(_names(results)[cam.class_index])
        if self.per_label():
            chosen, what = ("highest-scoring label" if class_index is None else "label"), "score"
        else:
            chosen, what = ("predicted class" if class_index is None else "class"), "probability"
        text = (f"Evidence for the {chosen} <b>{name}</b> ({what} <b>{cam.probability:.2f}</b>) "
                f"at layer <b>{html.escape(cam.layer_name)}</b>.")
        if float(cam.heatmap.max()) <= 0.0:
            text += (" <i>The map is empty: on average over its positions, no channel of this layer "
                     "raises the class's probability. Try another layer.</i>")
        self.note.setText(text)

    def show_nothing(self) -> None:
        self.last = None
        self.image_view.set_image(None)
        self.overlay_view.set_image(None)
        self.note.clear()


def _names(results: Results | TaskResults | None) -> list[str]:
    """The classes (or a multi-label model's labels) Grad-CAM can look for."""
    if results is None:
        return []
    return results.names() if isinstance(results, TaskResults) else results.evaluation.class_names
