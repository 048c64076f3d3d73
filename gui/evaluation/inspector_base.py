"""What the feature-map and Grad-CAM views share: a sample chooser, a layer combo, a note, and
computing only when shown (one forward pass per change, on the GUI thread: a single image takes
milliseconds, while a worker thread would make every click wait for a round trip)."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QSizePolicy, QWidget

from engine.errors import ConvasError
from engine.evaluation import feature_map_layers

from ..theme import ERROR_COLOR
from .results import Results
from .samples import SampleChooser


def shape_text(shape: Any) -> str:
    return "×".join(str(d) for d in tuple(shape)[1:])


class InspectorView(QWidget):
    """Base of the views that look inside the model for one sample at one layer."""

    sigSampleChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results: Results | None = None
        self._stale = False
        self.chooser = SampleChooser(self)
        self.chooser.sigChanged.connect(self._on_sample)
        self.layer_combo = QComboBox(self)
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_combo.setToolTip("The layer whose output to look at (layers with image-like outputs)")
        self.layer_combo.currentIndexChanged.connect(lambda _i: self.request_refresh())
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.RichText)
        self.note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    # --- public -------------------------------------------------------------------------------

    def set_results(self, results: Results | None) -> None:
        self.results = results
        self.chooser.set_results(results)
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        if results is not None:
            for name in feature_map_layers(results.model):
                shape = results.model.get_layer(name).output.shape
                self.layer_combo.addItem(f"{name}  ({shape_text(shape)})", name)
            self.layer_combo.setCurrentIndex(self.default_layer_row())
        self.layer_combo.blockSignals(False)
        self.results_changed()
        self.request_refresh()

    def set_sample(self, index: int) -> None:
        """Look at sample ``index`` (from a thumbnail elsewhere) without announcing it back."""
        if self.results is None or self.chooser.index() == index:
            return
        self.chooser.set_index(index)
        self.request_refresh()

    def layer_name(self) -> str | None:
        return self.layer_combo.currentData()

    def select_layer(self, name: str) -> None:
        row = self.layer_combo.findData(name)
        if row >= 0:
            self.layer_combo.setCurrentIndex(row)

    def layer_names(self) -> list[str]:
        return [self.layer_combo.itemData(row) for row in range(self.layer_combo.count())]

    def request_refresh(self) -> None:
        """Compute now if shown, else when next shown."""
        self._stale = True
        if self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        self._stale = False
        if self.results is None:
            self.show_nothing()
            return
        if self.layer_name() is None:
            self.show_nothing()
            self.show_error("The model has no layer with an image-like output (convolution, pooling...) "
                            "to look at.")
            return
        try:
            self.compute(self.results, self.chooser.index(), self.layer_name())
        except ConvasError as exc:
            self.show_nothing()
            self.show_error(str(exc))
        except Exception as exc:  # noqa: BLE001 - whatever Keras raises becomes a message, not a crash
            self.show_nothing()
            self.show_error(f"Could not compute this view: {exc}")

    def show_error(self, message: str) -> None:
        self.note.setText(f"<span style='color:{ERROR_COLOR}'>{html.escape(message)}</span>")

    # --- for subclasses -----------------------------------------------------------------------

    def default_layer_row(self) -> int:
        return 0

    def results_changed(self) -> None:
        """New results arrived (before the first refresh)."""

    def compute(self, results: Results, index: int, layer_name: str) -> None:
        raise NotImplementedError

    def show_nothing(self) -> None:
        raise NotImplementedError

    # --- internals ----------------------------------------------------------------------------

    def _on_sample(self, index: int) -> None:
        self.request_refresh()
        self.sigSampleChanged.emit(index)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale:
            self.refresh()
