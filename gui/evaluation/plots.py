"""pyqtgraph plots styled from the application palette, for the task views (imported when a
regression or reconstruction evaluation is first shown: pyqtgraph takes about a second)."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

POINT_COLOR = "#3b82f6"
MARK_COLOR = "#e5484d"
SECOND_MARK_COLOR = "#30a46c"


class PalettePlot(pg.PlotWidget):
    """A plot whose background, axes and title follow the palette (light or dark)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.getPlotItem().hideButtons()
        self.showGrid(x=True, y=True, alpha=0.15)
        self.apply_palette()

    def apply_palette(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        self.setBackground(palette.color(QPalette.ColorRole.Base))
        item = self.getPlotItem()
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(palette.color(QPalette.ColorRole.PlaceholderText)))
            axis.setTextPen(pg.mkPen(text))
        item.titleLabel.setAttr("color", text.name())
        item.titleLabel.setText(item.titleLabel.text)

    def text_color(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.Text)

    def set_labels(self, bottom: str, left: str) -> None:
        color = self.text_color().name()
        self.setLabel("bottom", bottom, color=color)
        self.setLabel("left", left, color=color)

    def title(self) -> str:
        return str(self.getPlotItem().titleLabel.text)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        # pyqtgraph changes the palette while constructing, before the plot item exists.
        if event.type() == QEvent.Type.PaletteChange and self.getPlotItem() is not None:
            self.apply_palette()


def colour(name: str, alpha: int = 255) -> Any:
    c = QColor(name)
    c.setAlpha(alpha)
    return c
