"""Float images as Qt pictures: thumbnails, feature-map tiles and heat-map overlays.

Images arrive as the model sees them, float ``(H, W, C)`` arrays in [0, 1]. Small inputs (8x8,
28x28) are scaled up without smoothing, so the pixels the model saw stay visible as pixels.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


def _jet_table() -> np.ndarray:
    """A 256-entry jet-like colour table (blue, cyan, yellow, red), uint8 RGB."""
    t = np.linspace(0.0, 1.0, 256)
    r = np.clip(1.5 - np.abs(4 * t - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * t - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * t - 1), 0, 1)
    return (np.stack([r, g, b], axis=1) * 255).astype(np.uint8)


JET = _jet_table()


def to_uint8(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats as bytes (values outside are clipped)."""
    return (np.clip(np.nan_to_num(values), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def _display_range(image: np.ndarray) -> np.ndarray:
    """Images that are not in [0, 1] (a model fed raw 0..255 pixels) are stretched to fit."""
    low, high = float(np.min(image)), float(np.max(image))
    if low >= 0.0 and high <= 1.0:
        return image
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def to_qimage(image: np.ndarray) -> QImage:
    """A grey (1 channel) or RGB (3 channels) QImage of a float ``(H, W[, C])`` image. Other
    channel counts show their first channel in grey."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., None]
    image = _display_range(image)
    height, width, channels = image.shape
    if channels == 3:
        data = np.ascontiguousarray(to_uint8(image))
        return QImage(data.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    data = np.ascontiguousarray(to_uint8(image[..., 0]))
    return QImage(data.data, width, height, width, QImage.Format.Format_Grayscale8).copy()


def heat_overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> QImage:
    """``image`` in grey with the [0, 1] ``heatmap`` blended over it in jet colours; weak evidence
    stays more transparent so the picture shows through."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image[..., 0] if image.shape[-1] != 3 else image.mean(axis=-1)
    grey = _display_range(image)
    base = np.repeat(grey[..., None], 3, axis=2)
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0)
    colours = JET[to_uint8(heat)].astype(np.float32) / 255.0
    weight = (alpha * (0.35 + 0.65 * heat))[..., None]
    blended = base * (1 - weight) + colours * weight
    height, width = heat.shape
    data = np.ascontiguousarray(to_uint8(blended))
    return QImage(data.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def colour_bar(width: int, height: int) -> QPixmap:
    """The jet colour scale, low on the left, for a legend."""
    row = JET[np.linspace(0, 255, max(width, 1)).astype(np.intp)]
    data = np.ascontiguousarray(np.repeat(row[None], max(height, 1), axis=0))
    return QPixmap.fromImage(QImage(data.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy())


def scaled(image: QImage, size: int, smooth: bool = False) -> QPixmap:
    """``image`` scaled to fit a ``size`` square, keeping its aspect ratio."""
    mode = Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation
    return QPixmap.fromImage(image.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio, mode))


def framed(pixmap: QPixmap, color: str, width: int = 3) -> QPixmap:
    """``pixmap`` with a coloured frame drawn inside its edge (marks a wrong prediction)."""
    result = QPixmap(pixmap)
    painter = QPainter(result)
    pen = QPen(QColor(color), width)
    pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
    painter.setPen(pen)
    half = width / 2
    painter.drawRect(result.rect().toRectF().adjusted(half, half, -half, -half))
    painter.end()
    return result


class ImageLabel(QLabel):
    """Shows one QImage as large as its space allows, aspect kept, pixels kept sharp."""

    def __init__(self, minimum: int = 96, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self.setMinimumSize(minimum, minimum)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self._rescale()

    def image(self) -> QImage | None:
        return self._image

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._image is None or self._image.isNull():
            self.clear()
            return
        side = max(16, min(self.width(), self.height()) - 4)
        self.setPixmap(scaled(self._image, side))
