"""The activation maps of one layer for one sample, as a grid of small greyscale tiles.

Each channel is stretched to its own range, so weak but structured channels stay visible; a
channel that is constant for this sample (often a dead ReLU) shows as flat black.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView, QFrame, QHBoxLayout, QLabel, QListView, QListWidget, QListWidgetItem, QVBoxLayout,
    QWidget,
)

from engine.evaluation import feature_maps

from .images import scaled, to_qimage
from .inspector_base import InspectorView
from .results import Results, TaskResults

MAX_CHANNELS = 64
TILE = 64


def stretch(channel: np.ndarray) -> np.ndarray:
    """One channel scaled to [0, 1] by its own minimum and maximum (flat: all zero)."""
    low, high = float(channel.min()), float(channel.max())
    return (channel - low) / (high - low) if high > low else np.zeros_like(channel)


class FeatureMapsView(InspectorView):
    """Sample and layer at the top, the first :data:`MAX_CHANNELS` channels below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiles = QListWidget(self)
        self.tiles.setViewMode(QListView.ViewMode.IconMode)
        self.tiles.setMovement(QListView.Movement.Static)
        self.tiles.setResizeMode(QListView.ResizeMode.Adjust)
        self.tiles.setUniformItemSizes(True)
        self.tiles.setIconSize(QSize(TILE, TILE))
        self.tiles.setGridSize(QSize(TILE + 6, TILE + 6))
        self.tiles.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.tiles.setFrameShape(QFrame.Shape.NoFrame)
        self.tiles.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)

        layer_label = QLabel("Layer", self)
        layer_label.setBuddy(self.layer_combo)
        top = QHBoxLayout()
        top.setSpacing(8)
        top.addWidget(self.chooser, 1)
        top.addWidget(layer_label)
        top.addWidget(self.layer_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 6)
        layout.setSpacing(6)
        layout.addLayout(top)
        layout.addWidget(self.status_row)
        layout.addWidget(self.tiles, 1)

    def tile_count(self) -> int:
        return self.tiles.count()

    def compute(self, results: Results | TaskResults, index: int, layer_name: str
                ) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        model, image = results.model, results.image(index)
        return (lambda: feature_maps(model, layer_name, image)), (lambda maps: self.show_maps(layer_name, maps))

    def show_maps(self, layer_name: str, maps: np.ndarray) -> None:
        """Tiles for the first channels of ``maps`` (H, W, C), the activations of ``layer_name``."""
        height, width, channels = maps.shape
        shown = min(channels, MAX_CHANNELS)
        self.tiles.clear()
        for channel in range(shown):
            values = maps[..., channel]
            item = QListWidgetItem()
            item.setIcon(QIcon(scaled(to_qimage(stretch(values)), TILE)))
            low, high = float(values.min()), float(values.max())
            item.setToolTip(f"Channel {channel}: constant {low:.3g}" if high <= low else
                            f"Channel {channel}: from {low:.3g} to {high:.3g}, mean {float(values.mean()):.3g}")
            item.setSizeHint(QSize(TILE + 6, TILE + 6))
            self.tiles.addItem(item)
        count = (f"all {channels} channels" if shown == channels
                 else f"the first {shown} of {channels} channels")
        self.note.setText(f"<b>{layer_name}</b> outputs {height}×{width} maps; showing {count}, each "
                          "scaled to its own range (black: low, white: high).")

    def show_nothing(self) -> None:
        self.tiles.clear()
        self.note.clear()
