"""Loading a dataset off the GUI thread, with its preview thumbnails: no widgets.

:class:`DatasetLoader` runs :func:`engine.data_source.load_dataset` on a thread pool (a folder can
take seconds; even the built-in digits import scikit-learn the first time) and makes the preview
thumbnails there too, as QImages (QPixmaps are made on the GUI thread by the box that shows them).
Answers carry a token, so a load that a newer request replaced is never answered.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QImage

from engine.errors import ConvasError, first_line

THUMB = 48                 # thumbnail size in pixels
SAMPLES_PER_CLASS = 3
MAX_PREVIEW_CLASSES = 24   # more classes are counted but not all drawn


# Mask class colours (class 0, the background, is left uncovered): distinct on dark and light.
MASK_COLORS = ((0, 0, 0), (239, 68, 68), (59, 130, 246), (34, 197, 94), (234, 179, 8),
               (168, 85, 247), (236, 72, 153), (20, 184, 166), (249, 115, 22), (132, 204, 22))
MASK_ALPHA = 0.5
SAMPLES_SHOWN = 12          # thumbnails of data that has no classes to group them by


@dataclass
class LoadedData:
    """A dataset ready for the panel, with its preview made off the GUI thread.

    What the preview holds follows ``dataset.target`` (:class:`engine.tasks.TargetKind`): per
    class (classes) or per label (multi-label) ``thumbnails``, ``counts`` of training samples and
    ``validation_counts``; for numeric targets ``stats`` (min, mean, max per target); for masks
    ``counts`` are the share of training pixels per class (in ‰) and the one row of thumbnails has
    the mask overlaid in :func:`mask_color`; images only: one row of thumbnails.
    """

    dataset: Any                           # engine.datasets.Dataset
    thumbnails: list[list[QImage]]         # per class or label; one row for the other targets
    validation_counts: list[int]           # per class or label
    counts: list[int] = field(default_factory=list)   # per class or label (training)
    stats: list[tuple[float, float, float]] = field(default_factory=list)  # per numeric target


def mask_color(index: int) -> tuple[int, int, int]:
    """The colour of mask class ``index`` (class 0, the background, is black: not overlaid)."""
    if index < len(MASK_COLORS):
        return MASK_COLORS[index]
    hue = (index * 0.618034) % 1.0  # golden-ratio hues beyond the table
    color = QColor.fromHsvF(hue, 0.75, 0.95)
    return color.red(), color.green(), color.blue()


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


def overlay_mask(image: Any, mask: Any) -> QImage:
    """A QImage of float [0, 1] ``image`` (H, W, C) with the class-index ``mask`` (H, W) laid over
    it in the class colours (the background class 0 left as it is)."""
    import numpy as np

    rgb = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if rgb.shape[-1] == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    mask = np.asarray(mask).reshape(rgb.shape[:2]).astype(np.int64)
    top = int(mask.max(initial=0))
    colors = np.array([mask_color(i) for i in range(top + 1)], dtype=np.float32) / 255.0
    covered = (mask > 0)[..., None]
    blended = np.where(covered, (1 - MASK_ALPHA) * rgb + MASK_ALPHA * colors[mask], rgb)
    return _image_from_array(blended)


def _thumbnail(image: QImage) -> QImage:
    if image.isNull():
        return image
    upscale = image.width() <= THUMB and image.height() <= THUMB
    mode = Qt.TransformationMode.FastTransformation if upscale else Qt.TransformationMode.SmoothTransformation
    return image.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, mode)


def _images(split: Any, picks: Any, scale: float) -> list[QImage]:
    """Thumbnails of the images at ``picks`` in [0, 1] (decoded from their files when lazy)."""
    if split.x is not None:  # just these rows, converted as the model sees them (a file's array stays as stored)
        images = [_image_from_array(image / scale) for image in split.images(picks)] if len(picks) else []
    else:
        images = [QImage(split.paths[i]) for i in picks]
    return [_thumbnail(im) for im in images if not im.isNull()]


def make_preview(dataset: Any, per_class: int = SAMPLES_PER_CLASS) -> LoadedData:
    """The preview of ``dataset`` for what it holds (see :class:`LoadedData`): thumbnails of its
    first training images (per class or label: the first ``per_class`` of each) and counts."""
    import numpy as np

    from engine.tasks import TargetKind

    train, validation = dataset.train, dataset.validation
    scale = dataset.pixel_range.scale  # the thumbnails show [0, 1], whatever the model is fed
    target = getattr(dataset, "target", TargetKind.CLASS)
    names = dataset.class_names
    y = np.asarray(train.y)
    first = np.arange(min(len(train), SAMPLES_SHOWN))
    if target is TargetKind.CLASS:
        thumbs = [_images(train, np.flatnonzero(y == index)[:per_class], scale)
                  for index in range(min(len(names), MAX_PREVIEW_CLASSES))]
        counts = np.bincount(y, minlength=len(names))[:len(names)].tolist() if len(y) else [0] * len(names)
        val = (np.bincount(validation.y, minlength=len(names))[:len(names)].tolist()
               if validation is not None and len(validation) else [0] * len(names))
        return LoadedData(dataset, thumbs, [int(v) for v in val], [int(c) for c in counts])
    if target is TargetKind.MULTI_HOT:
        thumbs = [_images(train, np.flatnonzero(y[:, index] > 0.5)[:per_class], scale)
                  for index in range(min(len(names), MAX_PREVIEW_CLASSES))]
        counts = (y > 0.5).sum(axis=0).tolist() if len(y) else [0] * len(names)
        val = ((np.asarray(validation.y) > 0.5).sum(axis=0).tolist()
               if validation is not None and len(validation) else [0] * len(names))
        return LoadedData(dataset, thumbs, [int(v) for v in val], [int(c) for c in counts])
    if target is TargetKind.VALUES:
        values = y.reshape(len(y), -1) if len(y) else np.zeros((0, len(names)))
        stats = [(float(values[:, t].min()), float(values[:, t].mean()), float(values[:, t].max()))
                 for t in range(values.shape[1])] if len(values) else []
        return LoadedData(dataset, [_images(train, first, scale)], [], [], stats)
    if target is TargetKind.MASK:
        images = train.images(first) / scale if len(first) else []
        masked = [_thumbnail(overlay_mask(image, y[i])) for i, image in enumerate(images)]
        classes = max(len(names), int(y.max(initial=0)) + 1 if len(y) else 0)
        pixels = np.bincount(y.reshape(-1), minlength=classes) if y.size else np.zeros(classes)
        share = (pixels / max(1, pixels.sum()) * 1000).round().astype(int).tolist()
        return LoadedData(dataset, [masked], [], share)
    return LoadedData(dataset, [_images(train, first, scale)], [])


class _Relay(QObject):
    sigLoaded = Signal(int, object)   # token, LoadedData
    sigFailed = Signal(int, str)      # token, message


class _LoadJob(QRunnable):
    def __init__(self, relay: _Relay, token: int, source: str, input_shape: tuple[int, ...],
                 validation_split: float, seed: int, pixel_range: Any) -> None:
        super().__init__()
        self.relay, self.token = relay, token
        self.args = (source, input_shape, validation_split, seed, pixel_range)
        self.options: dict[str, Any] = {}   # load_dataset's keywords (task, target columns, output)

    def run(self) -> None:
        try:
            from engine.data_source import load_dataset

            loaded = make_preview(load_dataset(*self.args, **self.options))
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
             pixel_range: Any = None, task: Any = None, target_columns: tuple[str, ...] = (),
             output_units: int | None = None, output_shape: tuple[int | None, ...] | None = None) -> None:
        """Load ``source`` sized to ``input_shape``, its pixels in ``pixel_range`` (an
        :class:`engine.pixel_range.PixelRange`; None: [0, 1]), its targets read for ``task``
        (None: what the data and the design's output suggest), a CSV's targets from
        ``target_columns``, checked against the design's ``output_units`` and ``output_shape``."""
        from engine.pixel_range import PixelRange

        self._token += 1
        self._pool.clear()  # queued requests are out of date now
        job = _LoadJob(self._relay, self._token, source, tuple(input_shape), validation_split, seed,
                       pixel_range or PixelRange.UNIT)
        job.options = {"task": task, "target_columns": tuple(target_columns), "output_units": output_units,
                       "output_shape": None if output_shape is None else tuple(output_shape)}
        self._pool.start(job)

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
