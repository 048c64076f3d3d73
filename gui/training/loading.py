"""Loading a dataset off the GUI thread, with its preview thumbnails: no widgets.

:class:`DatasetLoader` runs :func:`engine.data_source.load_dataset` on a thread pool (a folder can
take seconds; even the built-in digits import scikit-learn the first time) and makes the preview
thumbnails there too, as QImages (QPixmaps are made on the GUI thread by the box that shows them).
Answers carry a token, so a load that a newer request replaced is never answered.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage

from engine.errors import ConvasError, first_line

THUMB = 48                 # thumbnail size in pixels
SAMPLES_PER_CLASS = 3
MAX_PREVIEW_CLASSES = 24   # more classes are counted but not all drawn


@dataclass
class LoadedData:
    """A dataset ready for the panel, with its preview made off the GUI thread."""

    dataset: Any                           # engine.datasets.Dataset
    thumbnails: list[list[QImage]]         # per class (at most MAX_PREVIEW_CLASSES)
    validation_counts: list[int]           # per class


def _image_from_array(array: Any) -> QImage:
    """A QImage of one float [0, 1] image shaped (H, W, C) with C 1 or 3."""
    import numpy as np

    pixels = np.ascontiguousarray((np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
    height, width, channels = pixels.shape
    if channels == 1:
        image = QImage(pixels.tobytes(), width, height, width, QImage.Format.Format_Grayscale8)
    else:
        image = QImage(pixels.tobytes(), width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()  # own the pixels: the bytes object goes away


def _thumbnail(image: QImage) -> QImage:
    if image.isNull():
        return image
    upscale = image.width() <= THUMB and image.height() <= THUMB
    mode = Qt.TransformationMode.FastTransformation if upscale else Qt.TransformationMode.SmoothTransformation
    return image.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, mode)


def make_preview(dataset: Any, per_class: int = SAMPLES_PER_CLASS) -> LoadedData:
    """Thumbnails of the first ``per_class`` training images of each class (decoded from their
    files for a lazy image folder) and the validation count of each class."""
    import numpy as np

    classes = len(dataset.class_names)
    train = dataset.train
    scale = dataset.pixel_range.scale  # the thumbnails show [0, 1], whatever the model is fed
    thumbs: list[list[QImage]] = []
    for index in range(min(classes, MAX_PREVIEW_CLASSES)):
        picks = np.flatnonzero(train.y == index)[:per_class]
        if train.x is not None:
            images = [_image_from_array(train.x[i] / scale) for i in picks]
        else:
            images = [QImage(train.paths[i]) for i in picks]
        thumbs.append([_thumbnail(im) for im in images if not im.isNull()])
    validation = dataset.validation
    if validation is not None and len(validation):
        val_counts = np.bincount(validation.y, minlength=classes)[:classes].tolist()
    else:
        val_counts = [0] * classes
    return LoadedData(dataset, thumbs, [int(v) for v in val_counts])


class _Relay(QObject):
    sigLoaded = Signal(int, object)   # token, LoadedData
    sigFailed = Signal(int, str)      # token, message


class _LoadJob(QRunnable):
    def __init__(self, relay: _Relay, token: int, source: str, input_shape: tuple[int, ...],
                 validation_split: float, seed: int, pixel_range: Any) -> None:
        super().__init__()
        self.relay, self.token = relay, token
        self.args = (source, input_shape, validation_split, seed, pixel_range)

    def run(self) -> None:
        try:
            from engine.data_source import load_dataset

            loaded = make_preview(load_dataset(*self.args))
        except ConvasError as exc:
            self._emit(self.relay.sigFailed, self.token, str(exc))
        except Exception as exc:  # noqa: BLE001 - an unreadable file is a message, not a crash
            first = first_line(exc)
            self._emit(self.relay.sigFailed, self.token, f"cannot load {self.args[0]}: {first}")
        else:
            self._emit(self.relay.sigLoaded, self.token, loaded)

    @staticmethod
    def _emit(signal: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the panel was closed while this load ran
            signal.emit(*args)


class DatasetLoader(QObject):
    """Loads one dataset at a time off the GUI thread; only the newest request is answered."""

    sigLoaded = Signal(object)   # LoadedData
    sigFailed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._relay = _Relay(self)
        self._relay.sigLoaded.connect(self._on_loaded)
        self._relay.sigFailed.connect(self._on_failed)
        self._token = 0

    @property
    def busy(self) -> bool:
        return self._pool.activeThreadCount() > 0

    def load(self, source: str, input_shape: tuple[int, ...], validation_split: float, seed: int,
             pixel_range: Any = None) -> None:
        """Load ``source`` sized to ``input_shape``, its pixels in ``pixel_range`` (an
        :class:`engine.pixel_range.PixelRange`; None: [0, 1])."""
        from engine.pixel_range import PixelRange

        self._token += 1
        self._pool.clear()  # queued requests are out of date now
        self._pool.start(_LoadJob(self._relay, self._token, source, tuple(input_shape),
                                  validation_split, seed, pixel_range or PixelRange.UNIT))

    def cancel(self) -> None:
        """Forget the pending request (its answer will be ignored)."""
        self._token += 1
        self._pool.clear()

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def _on_loaded(self, token: int, loaded: LoadedData) -> None:
        if token == self._token:
            self.sigLoaded.emit(loaded)

    def _on_failed(self, token: int, message: str) -> None:
        if token == self._token:
            self.sigFailed.emit(message)
