"""Datasets to train a design on: built-in, generated, and loaded from .npz, .npy, .csv or image folders.

Pure numpy/stdlib (plus scikit-learn for the built-in digits). TensorFlow is imported only inside
functions: to feed and decode images (``Split.as_tf_dataset``, and :func:`load_image_folder`,
which decodes every file once before training to skip the damaged ones). Every loader returns a
:class:`Dataset` whose splits give the model float32 images in [0, 1] shaped ``(N, H, W, C)`` to
match its input (:meth:`Split.images`, ``Split.as_tf_dataset``), and targets of the kind
``Dataset.target`` names (:class:`engine.tasks.TargetKind`): int64 class indices, multi-hot rows,
numeric values, int64 masks, or none. Folder layouts other than one sub-folder per class
(masks, labels.csv, bare images) are read by :mod:`engine.image_folders`.

Large data is never copied whole: image folders stay files (their splits hold paths and labels,
``x`` is None, and images are decoded lazily by ``as_tf_dataset``), and a .npz's or .npy's image
array stays as stored, memory-mapped when the file allows, converted batch by batch (see
:class:`Split`).

Loaders distrust their files: only regular files are opened (a pipe would block forever), array
headers are checked against the bytes stored and everything against :func:`memory_budget` before
allocating, and labels are checked in their own type (finite, whole, in range) before casting.
"""

from __future__ import annotations

import csv
import io
import math
import mmap
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import folder_index
from engine.errors import ConvasError
from engine.pixel_range import PixelRange
from engine.portable_paths import relative_or_absolute
from engine.tasks import TargetKind, Task


class DatasetError(ConvasError):
    """A dataset could not be loaded or does not fit the model; the message says how to fix it."""


# ---------------------------------------------------------------------------------------------
# Data classes


@dataclass
class Split:
    """One part of a dataset: its images, and ``y``, the targets of its samples (what the
    dataset's :class:`~engine.tasks.TargetKind` says: int64 class indices ``(N,)``, float32
    multi-hot rows ``(N, L)`` or values ``(N, T)``, int64 masks ``(N, H, W)``, or an empty
    ``(N, 0)`` for data without targets).

    Array-backed splits hold ``x``, an ``(M, h, w, c)`` array *as it is stored*: a file's own
    uint8 bytes stay bytes, and a .npz or .npy array that is not compressed is a read-only
    ``np.memmap`` of the file (whose rows are read with ``os.pread``, see :class:`FileRows`), so
    a dataset larger than memory trains in the memory of a few batches. The split's samples are
    the ``rows`` of ``x`` (None: every row, in order); training and validation share one ``x``
    and never copy it. A sample as the model sees it is ``x[row] / x_full_scale`` (in [0, 1]),
    with its channels adapted and resized bilinearly to ``image_shape`` (None: ``x``'s own) and
    multiplied by ``pixel_scale`` (the delivered range, :mod:`engine.pixel_range`); the
    ``tf.data`` pipeline converts batch by batch, and :meth:`images` converts just the samples
    asked for. Generated data (digits, shapes) and CSV pixels are float32 [0, 1] copies of
    their own, one per split, ready as they are.

    File-backed splits (see :meth:`from_files`) have ``x=None``, hold ``paths`` and
    ``image_shape`` instead and decode the images lazily in ``as_tf_dataset``; file-backed masks
    (``mask_paths``) are decoded the same way, and their ``y`` is an empty ``(N, 0, 0)``
    placeholder (read them with :meth:`targets`).
    """

    x: np.ndarray | None
    y: np.ndarray
    paths: list[str] | None = None
    image_shape: tuple[int, ...] | None = None
    pixel_scale: float = 1.0  # file-backed splits: decoded [0, 1] pixels × this (engine.pixel_range)
    mask_paths: list[str] | None = None  # file-backed masks (PNG of class indices), one per path
    mask_shift: int = 0  # subtracted from every decoded mask value (masks stored as 1..K)
    mask_palette: tuple[int, ...] | None = None  # palette PNG masks: their palette (r, g, b, r, ...)
    # Where decoded, resized samples are cached for later epochs: None (decoded every epoch),
    # "memory", or a folder (engine.image_pipeline; ``convas train --cache DIR``). Array-backed
    # splits need no cache: their array is random access, and converting a batch costs little.
    cache: str | None = None
    # (index, count): on a cluster, this worker reads every count-th sample of each epoch's
    # order, from the index-th (every worker draws the same order): each sample is read once
    # per epoch across the cluster (engine.training shards the splits of a multi-worker run).
    shard: tuple[int, int] | None = None
    rows: np.ndarray | None = None  # array-backed: the rows of x that are this split's samples
    x_full_scale: float = 1.0  # array-backed: x's value of a white pixel (255 for bytes)
    x_file: FileRows | None = None  # memory-mapped x: its rows read from the file (see FileRows)

    @classmethod
    def from_files(cls, paths: Sequence[str], labels: Sequence[int] | np.ndarray, image_shape: Sequence[int],
                   mask_paths: Sequence[str] | None = None, mask_shift: int = 0,
                   mask_palette: Sequence[int] | None = None) -> Split:
        """A split whose images (and masks) stay on disk until ``as_tf_dataset`` decodes them.
        ``labels`` keeps its dtype when it is an array (multi-hot rows, values); a sequence of
        ints becomes int64 class indices."""
        y = labels if isinstance(labels, np.ndarray) and labels.dtype != object else \
            np.asarray(labels, dtype=np.int64)
        if mask_paths is not None:
            y = np.zeros((len(paths), 0, 0), dtype=np.int64)
        return cls(x=None, y=y, paths=[str(p) for p in paths],
                   image_shape=tuple(int(d) for d in image_shape),
                   mask_paths=None if mask_paths is None else [str(p) for p in mask_paths],
                   mask_shift=int(mask_shift),
                   mask_palette=None if mask_palette is None else tuple(int(v) for v in mask_palette))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def is_lazy(self) -> bool:
        return self.x is None

    def _files(self) -> tuple[list[str], tuple[int, ...]]:
        """The paths and image shape of a file-backed split (one made by :meth:`from_files`)."""
        assert self.paths is not None and self.image_shape is not None, "a split holds x or files"
        return self.paths, self.image_shape

    @property
    def sample_shape(self) -> tuple[int, ...]:
        if self.image_shape is not None:
            return tuple(self.image_shape)
        return tuple(int(d) for d in self.x.shape[1:]) if self.x is not None else ()

    @property
    def target_shape(self) -> tuple[int, ...]:
        """The shape of one sample's target: ``()`` for a class, ``(L,)``/``(T,)`` for labels or
        values, ``(H, W)`` for a mask (file-backed masks: the images' height and width)."""
        if self.mask_paths is not None:
            return tuple(self.sample_shape[:2])
        return tuple(int(d) for d in self.y.shape[1:])

    def as_tf_dataset(self, batch_size: int, shuffle: bool = False, seed: int = 0):
        """A batched ``tf.data.Dataset`` of ``(x, y)``; shuffled (reproducibly by seed) if asked."""
        import tensorflow as tf

        if self.x is not None:
            return array_batches(self, int(batch_size), shuffle, seed).prefetch(tf.data.AUTOTUNE)
        return self.tf_samples(shuffle, seed).batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)

    def tf_samples(self, shuffle: bool = False, seed: int = 0):
        """The unbatched ``tf.data.Dataset`` of ``(x, y)`` samples, shuffled if asked. Array-backed
        samples are read and converted a batch at a time (see :func:`array_batches`); file-backed
        images and masks are decoded after shuffling (cheap paths are shuffled, not pixels)."""
        if self.x is not None:
            import tensorflow as tf

            samples = array_batches(self, SAMPLES_PER_READ, shuffle, seed)
            # Unbatching loses the count, and Keras then warns that the input "ran out of data"
            # after the first epoch (whose progress has no total): the count is known, so say it.
            count = len(self)
            if self.shard is not None:  # this worker's share: every count-th position from its index
                index, workers = self.shard
                count = len(range(index, count, workers))
            counted = tf.data.experimental.assert_cardinality(count)
            if self.y[:1].size or not len(self):
                return samples.unbatch().apply(counted)
            # Data without targets, (N, 0): unbatching an empty tensor crashes TensorFlow 2.21, so
            # the images are unbatched alone and each gets its empty target after.
            empty = tf.zeros(self.y.shape[1:], tf.as_dtype(self.y.dtype.newbyteorder("=")))
            return samples.map(lambda x, _y: x).unbatch().apply(counted).map(lambda x: (x, empty))
        from .image_pipeline import file_samples

        return file_samples(self, shuffle, seed)

    def stored_rows(self, indices) -> np.ndarray:
        """The rows of ``x`` (as stored) of the samples at ``indices``: read in file order, so that
        a memory-mapped array is read forward, then put back in the order asked for."""
        assert self.x is not None, "only array-backed splits have stored rows"
        positions = np.asarray(indices, dtype=np.intp)
        rows = positions if self.rows is None else self.rows[positions]
        order = np.argsort(rows, kind="stable")
        picked = np.empty((len(rows), *self.x.shape[1:]), dtype=self.x.dtype.newbyteorder("="))
        if self.x_file is not None:
            picked[order] = self.x_file.read(rows[order]).view(self.x.dtype).reshape(picked.shape)
        else:
            check_still_mapped(self.x)
            picked[order] = self.x[rows[order]]
        return picked

    def images(self, indices=None) -> np.ndarray:
        """The float32 ``(n, H, W, C)`` images at ``indices`` (an int or a sequence of ints; None:
        every sample), as the model sees them; a file-backed split decodes just those files."""
        indices = np.arange(len(self)) if indices is None else np.atleast_1d(np.asarray(indices, dtype=np.intp))
        if self.x is not None:
            images = convert_images(self.stored_rows(indices), self.x_full_scale, self.sample_shape)
            return images * np.float32(self.pixel_scale) if self.pixel_scale != 1 else images
        paths, image_shape = self._files()
        if not len(indices):
            return np.zeros((0, *image_shape), dtype=np.float32)
        return np.stack([np.asarray(decode_image_file(paths[int(i)], image_shape)) * self.pixel_scale
                         for i in indices]).astype(np.float32)

    def targets(self, indices) -> np.ndarray:
        """The targets at ``indices`` as the model is trained on them: ``y[indices]``, or for
        file-backed masks the int64 ``(n, H, W)`` masks decoded from just those files."""
        indices = np.atleast_1d(np.asarray(indices, dtype=np.intp))
        if self.mask_paths is None:
            return self.y[indices]
        height, width = self.sample_shape[:2]
        if not len(indices):
            return np.zeros((0, height, width), dtype=np.int64)
        return np.stack([np.asarray(decode_mask_file(self.mask_paths[int(i)], (height, width), self.mask_shift,
                                                     self.mask_palette))
                         for i in indices]).astype(np.int64)


def decode_mask_file(path, size: Sequence[int], shift: int = 0, palette: Sequence[int] | None = None):
    """Read one mask PNG (a path string or string tensor) into an int64 ``(H, W)`` tensor of class
    indices at ``size``: resized nearest-neighbour, so values stay the classes they were, minus
    ``shift`` (masks stored as 1..K). A palette PNG's classes are its palette indices (see
    :func:`mask_classes`)."""
    import tensorflow as tf

    height, width = (int(d) for d in size)
    mask = mask_classes(tf.io.read_file(path), palette)
    mask = tf.image.resize(mask, (height, width), method="nearest")
    mask = tf.cast(mask[..., 0], tf.int64) - int(shift)
    mask.set_shape((height, width))
    return mask


def mask_classes(raw, palette: Sequence[int] | None = None):
    """The int32 ``(h, w, 1)`` class numbers in a mask PNG's bytes: its grey values, or for a
    palette PNG (``palette`` its r, g, b, r, … entries) the palette index of every pixel.
    TensorFlow decodes a palette PNG to colours; each colour is looked up in the palette (the
    first index of a colour listed twice)."""
    import tensorflow as tf

    if palette is None:
        return tf.cast(decode_pixels(raw, 1), tf.int32)
    colours = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    keys, first = np.unique(colours[:, 0] * 65536 + colours[:, 1] * 256 + colours[:, 2], return_index=True)
    rgb = tf.cast(tf.io.decode_png(raw, channels=3), tf.int64)
    key = rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]
    where = tf.searchsorted(tf.constant(keys[None, :]), tf.reshape(key, (1, -1)))[0]
    index = tf.gather(tf.constant(first.astype(np.int32)), tf.minimum(where, len(keys) - 1))
    return tf.reshape(index, tf.concat([tf.shape(key), [1]], axis=0))


def decode_image_file(path, image_shape: Sequence[int]):
    """Read and decode one image file (a path string or string tensor) into a float32 tensor of
    ``image_shape`` with values in [0, 1]. Shared by the tf.data pipeline and :meth:`Split.images`
    so that a picture shown to the user is exactly what the model was fed."""
    import tensorflow as tf

    return decode_image_bytes(tf.io.read_file(path), image_shape)


def decode_image_bytes(raw, image_shape: Sequence[int]):
    """What :func:`decode_image_file` makes of a file's bytes ``raw`` (a string tensor)."""
    import tensorflow as tf

    height, width, channels = (int(d) for d in image_shape)
    image = decode_pixels(raw, channels)
    image = tf.image.convert_image_dtype(image, tf.float32)  # uint8 -> [0, 1]
    image = tf.image.resize(image, (height, width), method="bilinear")
    image = tf.clip_by_value(image, 0.0, 1.0)
    image.set_shape((height, width, channels))
    return image


def decode_pixels(raw, channels: int):
    """The uint8 ``(h, w, channels)`` pixels of a PNG, JPEG, BMP or GIF file's bytes (a string
    tensor or bytes; a GIF's first frame): what the model is fed and what
    :func:`load_image_folder` checks files with. TensorFlow's BMP and GIF decoders give only 3
    or 4 channels, so a BMP or GIF for a grey input is decoded as RGB and then made grey."""
    import tensorflow as tf

    def decode(wanted: int):
        return tf.io.decode_image(raw, channels=wanted, expand_animations=False)

    if channels != 1:
        return decode(channels)
    colour_only = tf.logical_or(tf.equal(tf.strings.substr(raw, 0, 2), b"BM"),
                                tf.equal(tf.strings.substr(raw, 0, 4), b"GIF8"))
    return tf.cond(colour_only, lambda: tf.image.rgb_to_grayscale(decode(3)), lambda: decode(1))


# Array-backed samples are read (and converted) this many at a time when the pipeline hands them
# on one by one (``Split.tf_samples``): reading rows one at a time through Python is ~50× slower.
SAMPLES_PER_READ = 128
_GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as PIL and TensorFlow make RGB grey


def convert_images(raw: np.ndarray, full_scale: float, shape: Sequence[int]) -> np.ndarray:
    """Stored images ``raw`` (``(n, h, w, c)``, any number type) as the model sees them: float32
    ``raw / full_scale`` (pixels in [0, 1]), grey made RGB or RGB(A) made grey (or alpha dropped)
    for ``shape``'s channels, resized bilinearly to ``shape``'s size and clipped to [0, 1]. The
    numpy twin of the pipeline's conversion (:func:`array_batches`), which a test keeps equal."""
    height, width, channels = (int(d) for d in shape)
    if raw.dtype == np.float32 and full_scale == 1 and tuple(raw.shape[1:]) == (height, width, channels):
        return raw  # generated data, and files of [0, 1] floats the model's size: nothing to do
    x = raw.astype(np.float32)
    if full_scale != 1:
        x /= np.float32(full_scale)
    have = x.shape[3]
    if have != channels:
        if have == 1:
            x = np.repeat(x, channels, axis=3)
        elif channels == 1:
            x = (x[..., :3] @ np.array(_GREY_WEIGHTS, dtype=np.float32))[..., None]
        else:
            x = x[..., :channels]
    x = resize_bilinear(x, height, width)
    return np.clip(x, 0.0, 1.0, out=x)


def array_batches(split: Split, batch_size: int, shuffle: bool = False, seed: int = 0):
    """The batched ``tf.data.Dataset`` of an array-backed ``split``'s ``(x, y)``: a (shuffled)
    order of sample positions, cut into batches; each batch's rows read from ``x`` as stored
    (:meth:`Split.stored_rows`, a few MB) and converted in TensorFlow (cast, scaled to [0, 1],
    channels, bilinear resize, clipped, times ``pixel_scale``). ``x`` never becomes one tensor
    (``from_tensor_slices`` would copy it whole) and is never converted whole.

    The order is what ``from_tensor_slices((x, y)).shuffle(len, seed)`` gave (the shuffle of
    the positions is the same), so a seeded run repeats the runs made before splits streamed."""
    import tensorflow as tf

    assert split.x is not None, "array_batches reads array-backed splits"
    n = len(split)
    stored_shape = tuple(int(d) for d in split.x.shape[1:])
    height, width, channels = split.sample_shape
    full_scale, pixel_scale = float(split.x_full_scale), float(split.pixel_scale)
    y = split.y
    x_type = tf.as_dtype(split.x.dtype.newbyteorder("="))
    y_type = tf.as_dtype(y.dtype.newbyteorder("="))

    def read(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return split.stored_rows(positions), np.ascontiguousarray(y[positions], dtype=y.dtype.newbyteorder("="))

    def load(positions):
        images, targets = tf.numpy_function(read, [positions], (x_type, y_type), stateful=False)
        images.set_shape((None, *stored_shape))
        targets.set_shape((None, *y.shape[1:]))
        return convert_batch(images), targets

    def convert_batch(images):
        if images.dtype == tf.float32 and full_scale == 1 and stored_shape == (height, width, channels):
            return images * pixel_scale if pixel_scale != 1 else images
        x = tf.cast(images, tf.float32)
        if full_scale != 1:
            x = x / full_scale
        have = stored_shape[2]
        if have != channels:
            if have == 1:
                x = tf.repeat(x, channels, axis=3)
            elif channels == 1:
                x = tf.tensordot(x[..., :3], tf.constant(_GREY_WEIGHTS, tf.float32), axes=1)[..., None]
            else:
                x = x[..., :channels]
        if stored_shape[:2] != (height, width):
            x = tf.image.resize(x, (height, width), method="bilinear")
        x = tf.clip_by_value(x, 0.0, 1.0)
        return x * pixel_scale if pixel_scale != 1 else x

    positions = tf.data.Dataset.range(n)
    if shuffle:
        positions = positions.shuffle(max(1, n), seed=seed, reshuffle_each_iteration=True)
    if split.shard is not None:  # after the shuffle, which every worker draws alike
        positions = positions.shard(split.shard[1], split.shard[0])
    # Plain graph code (its branches are on Python constants): AutoGraph has nothing to convert,
    # and trying warns "could not transform ... closure mismatch" on the console.
    load = tf.autograph.experimental.do_not_convert(load)
    return positions.batch(int(batch_size)).map(load, num_parallel_calls=tf.data.AUTOTUNE)


@dataclass
class Dataset:
    name: str
    class_names: list[str]
    train: Split
    validation: Split | None = None
    test: Split | None = None
    warnings: list[str] = field(default_factory=list)  # things skipped while loading, for the user
    pixel_range: PixelRange = PixelRange.UNIT  # what the splits hold; see engine.pixel_range.deliver
    # What ``Split.y`` holds (engine.tasks.TargetKind): class indices (N,), multi-hot rows (N, L),
    # numeric targets (N, T), masks (N, H, W) or nothing. ``class_names`` names what y indexes:
    # the classes, the labels, the regression targets or the mask classes; empty for NONE.
    target: TargetKind = TargetKind.CLASS

    def sample_shape(self) -> tuple[int, ...]:
        return self.train.sample_shape

    def class_counts(self) -> dict[str, int]:
        """How many training samples each class (or label) has: for multi-hot data the samples
        carrying each label, for in-memory masks the pixels of each class; empty for numeric
        targets, data without targets and file-backed masks (counting would decode them all)."""
        y = self.train.y
        if self.target is TargetKind.CLASS:
            counts = np.bincount(y, minlength=len(self.class_names))
        elif self.target is TargetKind.MULTI_HOT:
            counts = (y > 0.5).sum(axis=0)
        elif self.target is TargetKind.MASK and y.size:
            counts = np.bincount(y.ravel(), minlength=len(self.class_names))
        else:
            return {}
        return {name: int(counts[i]) for i, name in enumerate(self.class_names)}


# ---------------------------------------------------------------------------------------------
# Helpers


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or any(d <= 0 for d in shape):
        raise DatasetError(f"Image datasets need an input shape (height, width, channels); got {tuple(input_shape)}. "
                           "Set the model's Input to e.g. (28, 28, 1).")
    if shape[2] not in (1, 3):
        raise DatasetError(f"The model's input has {shape[2]} channels; image datasets support 1 (grey) or 3 (RGB).")
    return shape


def check_validation_split(validation_split: float) -> float:
    if not 0.0 <= float(validation_split) < 1.0:
        raise DatasetError(f"validation_split must be at least 0 and below 1; got {validation_split}.")
    return float(validation_split)


# ---------------------------------------------------------------------------------------------
# Guards: files that are not files, and data that cannot fit in memory


def memory_budget() -> int:
    """The bytes a dataset may take while it is loaded: 80 % of this computer's memory (8 GiB
    when the system does not say). Loading beyond it ends in a MemoryError or in the system
    killing Convas, so loaders refuse first and say why."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = 0
    return int(total * 0.8) if total > 0 else 8 << 30


def format_bytes(count: float) -> str:
    """``1536`` → ``"1.5 KB"``: a byte count the way people read it (powers of 1024)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if abs(count) < 1024 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_memory(needed: int, what: str, fix: str) -> None:
    budget = memory_budget()
    if needed > budget:
        raise DatasetError(f"{what} needs about {format_bytes(needed)} of memory, more than Convas allows "
                           f"itself on this computer ({format_bytes(budget)}); {fix}.")


def not_regular(mode: int) -> str | None:
    """What a file of this ``st_mode`` is when it is not a regular file (None when it is)."""
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def open_regular_file(path: Path, what: str) -> io.BufferedReader:
    """``path`` opened for reading, refusing anything but a regular file: a pipe, device or socket
    named like a dataset would block (or never end) on reading. Checked before opening, and again
    on the opened file (opened non-blocking, so that a file swapped for a pipe cannot hang)."""
    try:
        kind = not_regular(os.stat(path).st_mode)
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist.") from None
    except OSError as exc:
        raise DatasetError(f"{what} cannot be read ({exc.strerror or exc}).") from None
    if kind is None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise DatasetError(f"{what} cannot be read ({exc.strerror or exc}).") from None
        kind = not_regular(os.fstat(fd).st_mode)
        if kind is None:
            return os.fdopen(fd, "rb")
        os.close(fd)
    raise DatasetError(f"{what} is {kind}, not a regular file; Convas reads datasets from regular files only "
                       "(reading a pipe or device could wait forever).")


def resize_bilinear(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``(N, H, W, C)`` images bilinearly (half-pixel centres, like tf.image.resize)."""
    images = np.asarray(images, dtype=np.float32)
    n, h, w, c = images.shape
    if (h, w) == (height, width):
        return images

    def axis(src: int, dst: int):
        pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
        pos = np.clip(pos, 0, src - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, src - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    y0, y1, wy = axis(h, height)
    x0, x1, wx = axis(w, width)
    wy = wy[None, :, None, None]
    wx = wx[None, None, :, None]
    out = np.empty((n, height, width, c), dtype=np.float32)
    # A few samples at a time, so that the working copies stay near 64 MB beside the result.
    per_sample = 4 * c * height * (2 * w + 6 * width)
    step = max(1, (64 << 20) // max(1, per_sample))
    for start in range(0, n, step):
        part = images[start:start + step]
        top = part[:, y0][:, :, x0] * (1 - wx) + part[:, y0][:, :, x1] * wx
        bottom = part[:, y1][:, :, x0] * (1 - wx) + part[:, y1][:, :, x1] * wx
        out[start:start + step] = top * (1 - wy) + bottom * wy
    return out


def _fit_images(x: np.ndarray, input_shape: tuple[int, int, int], what: str) -> np.ndarray:
    """A float32 [0, 1] copy of images ``x`` at the model's input (for generated data and CSV
    pixels, which are small: files' arrays stay as stored, see :class:`StoredImages`)."""
    height, width, channels = input_shape
    x = image_rows(np.asarray(x), input_shape, what)
    n, h_in, w_in, c_in = (int(d) for d in x.shape)
    # float32 copies: the converted images, the resized ones, and their training/validation split
    needed = 4 * (n * h_in * w_in * max(c_in, channels) + 2 * n * height * width * channels)
    check_memory(needed, f"{what}: fitting {n:,} images of {h_in}×{w_in}×{c_in} to the input "
                  f"{height}×{width}×{channels}", f"give the design's input a smaller size, such as the "
                  f"images' own ({h_in}, {w_in}, {channels})")
    return convert_images(x, full_scale(x, what), input_shape)


def image_rows(x: np.ndarray, input_shape: tuple[int, int, int], what: str) -> np.ndarray:
    """``x`` as ``(N, h, w, c)`` images (a view: flat rows of pixels and ``(N, h, w)`` grey
    images reshaped), checked to be numbers whose channels the model's input can take."""
    height, width, channels = input_shape
    if x.dtype.kind not in "uifb":
        raise DatasetError(f"{what}: images must be numbers; got values of type {x.dtype}.")
    if x.ndim == 2:  # flat rows of pixels
        per_row = x.shape[1]
        if per_row == height * width * channels:
            x = x.reshape(-1, height, width, channels)
        elif per_row == height * width:
            x = x.reshape(-1, height, width, 1)
        else:
            raise DatasetError(f"{what}: each sample has {per_row} values but the model's input {input_shape} needs "
                               f"{height * width * channels} (or {height * width} grey pixels).")
    elif x.ndim == 3:
        x = x[..., None]
    elif x.ndim != 4:
        raise DatasetError(f"{what}: images must be shaped (N, H, W) or (N, H, W, C); got {x.shape}.")
    have = int(x.shape[3])
    if have != channels and not ((have == 1 and channels == 3) or (have in (3, 4) and channels == 1)
                                 or (have == 4 and channels == 3)):
        raise DatasetError(f"{what}: the images have {have} channels but the model's input wants {channels}.")
    return x


def full_scale(x: np.ndarray, what: str) -> float:
    """The value of a white pixel in images ``x``: 255 for bytes, and for other numbers 255 when
    some value is above 1, else 1 (checked: no NaN, nothing outside 0..255). Read in pieces of
    about 64 MB, so that a memory-mapped array is checked without being loaded."""
    if x.dtype == np.uint8:
        return 255.0
    if x.dtype.kind == "b":
        return 1.0
    low, high = math.inf, -math.inf
    step = max(1, (64 << 20) // max(1, x[:1].nbytes))
    for start in range(0, len(x), step):
        part = np.asarray(x[start:start + step])
        if part.dtype.kind == "f" and np.isnan(part).any():
            raise DatasetError(f"{what}: the images contain NaN (missing) values; remove or fill them.")
        if part.size:
            low, high = min(low, float(part.min())), max(high, float(part.max()))
    with np.errstate(over="ignore"):  # judged as float32, as the model gets them (1e300 is inf)
        low, high = float(np.float32(low)), float(np.float32(high))
    if high >= low and (low < 0 or high > 255):
        raise DatasetError(f"{what}: pixel values range from {low:g} to {high:g}; use 0..255 or 0..1.")
    return 255.0 if high > 1.0 else 1.0


# Without a design to say how many classes there are, this many are believed (or one per sample).
MAX_CLASSES_WITHOUT_DESIGN = 1000


def _labels_to_indices(y: np.ndarray, what: str, class_names: list[str] | None = None,
                      output_units: int | None = None, first_row: int | None = None):
    """Turn labels into int64 indices; returns (indices, class_names).

    Class numbers are bounded before any class is made: by ``class_names`` when given (a test
    split uses the training classes), else by the larger of the design's ``output_units`` and
    the number of samples (without a design: of the samples and :data:`MAX_CLASSES_WITHOUT_DESIGN`),
    so that one wild label (10¹², inf) is reported as such instead of becoming a trillion classes.
    ``first_row`` is the file row of the first label (CSV), so that a bad label is named by its
    row; without it, by its index."""
    y = np.asarray(y)

    def where(index: int) -> str:
        return f"in row {index + first_row}" if first_row is not None else f"at index {index}"

    if y.ndim == 0:
        raise DatasetError(f"{what}: the labels are a single value, not one label per sample (shaped (N,)).")
    n = len(y)
    limit = (len(class_names) if class_names else max(int(output_units), n, 2) if output_units
             else max(n, MAX_CLASSES_WITHOUT_DESIGN))
    limit_reason = (f"there are {len(class_names)} training classes" if class_names else
                    f"the design has {output_units} output units and the data {n:,} samples" if output_units
                    else f"the data has {n:,} samples (and no design says how many classes)")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2:  # one-hot (or probabilities)
        if y.dtype.kind not in "uifb":
            raise DatasetError(f"{what}: two-dimensional labels must be one-hot numbers.")
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise DatasetError(f"{what}: the labels contain NaN (missing) values; remove those samples.")
        if y.shape[1] > limit:
            raise DatasetError(f"{what}: the one-hot labels have {y.shape[1]:,} columns (classes), but "
                               f"{limit_reason}; save one column per class.")
        idx = np.argmax(y, axis=1).astype(np.int64)
        names = class_names or [str(i) for i in range(y.shape[1])]
        return idx, names
    elif y.ndim != 1:
        raise DatasetError(f"{what}: labels must be shaped (N,) or one-hot (N, classes); got {y.shape}.")
    if y.dtype.kind in "US":
        strings = y.astype(str)
        names = class_names or sorted(set(strings.tolist()))
        lookup = {name: i for i, name in enumerate(names)}
        unknown = sorted(set(strings.tolist()) - set(lookup))
        if unknown:
            raise DatasetError(f"{what}: labels {unknown[:5]} are not among the training classes {names}.")
        return np.array([lookup[s] for s in strings], dtype=np.int64), names
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind == "f":
        if np.isnan(y).any():
            first = int(np.flatnonzero(np.isnan(y))[0])
            raise DatasetError(f"{what}: the labels contain NaN (missing) values (first {where(first)}); "
                               "remove those samples.")
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(y) & np.equal(np.floor(y), y)
        if not whole.all():
            bad = y[~whole][:5]
            raise DatasetError(f"{what}: labels must be whole class numbers (0, 1, 2, ...); found "
                               f"{', '.join(_label_text(v) for v in bad)} (first {where(int(np.argmin(whole)))}). "
                               "If they are numeric targets, choose the task regression.")
    elif y.dtype.kind not in "ui":
        raise DatasetError(f"{what}: labels must be integers or names; got values of type {y.dtype}.")
    # Checked in the labels' own type: casting 1e300 or 2**64-1 to int64 would wrap around.
    if y.size and y.min() < 0:
        first = int(np.argmin(y))
        raise DatasetError(f"{what}: labels must be 0 or more; found {_label_text(y[first])} {where(first)}.")
    if y.size and y.max() >= limit:
        first = int(np.argmax(y))
        if class_names:
            raise DatasetError(f"{what}: label {_label_text(y[first])} {where(first)} is beyond the "
                               f"{len(class_names)} training classes.")
        raise DatasetError(f"{what}: label {_label_text(y[first])} {where(first)} is out of range: class numbers "
                           f"count up from 0, and {limit_reason}, so no label can be above {limit - 1}; "
                           "fix or remove that sample.")
    y = y.astype(np.int64)
    count = int(y.max()) + 1 if y.size else 0
    names = class_names or [str(i) for i in range(count)]
    return y, names


def _label_text(value) -> str:
    """A label as written: ``1000000000000`` rather than ``1e+12``, ``inf`` and ``1e+300`` as such."""
    number = value.item() if isinstance(value, np.generic) else value
    if isinstance(number, float) and math.isfinite(number) and number.is_integer() and abs(number) < 1e18:
        return str(int(number))
    return f"{number:g}" if isinstance(number, float) else str(number)


def _check_lengths(x: np.ndarray, y: np.ndarray, what: str) -> None:
    for array, kind, shape in ((x, "images", "(N, H, W) or (N, H, W, C)"), (y, "labels", "(N,)")):
        if array.ndim == 0:
            raise DatasetError(f"{what}: the {kind} are a single value, not an array shaped {shape}.")
    x_len, y_len = len(x), len(y)
    if x_len != y_len:
        raise DatasetError(f"{what}: there are {x_len} images but {y_len} labels; each image needs exactly one label.")
    if x_len == 0:
        raise DatasetError(f"{what}: the dataset is empty.")


def split_indices(y: np.ndarray, validation_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split of sample indices into (train, validation)."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    # Validation size per class: the overall total, shared out by largest remainder (stratified).
    quota = counts * validation_split
    n_val = np.floor(quota).astype(int)
    extra = round(len(y) * validation_split) - int(n_val.sum())
    for k in np.argsort(-(quota - n_val), kind="stable")[:max(extra, 0)]:
        n_val[k] += 1
    n_val = np.minimum(n_val, counts - 1)  # every class keeps at least one training sample
    train, val = [], []
    for cls, take in zip(classes, n_val):
        idx = np.flatnonzero(y == cls)
        idx = idx[rng.permutation(len(idx))]
        val.append(idx[:take])
        train.append(idx[take:])
    train_idx = np.concatenate(train) if train else np.zeros(0, np.intp)
    val_idx = np.concatenate(val) if val else np.zeros(0, np.intp)
    return rng.permutation(train_idx), rng.permutation(val_idx)


def _make_dataset(name, class_names, x, y, validation_split, seed, test=None, warnings=None,
                  target: TargetKind = TargetKind.CLASS, stored: StoredImages | None = None) -> Dataset:
    """A dataset split into training and validation: stratified by class for class targets,
    at random (seeded) for any other target. Images ``stored`` as a file holds them are shared
    by both splits (each names its rows); else ``x`` is float32 [0, 1] and each split copies its part."""
    train_idx, val_idx = split_indices(y if target is TargetKind.CLASS else np.zeros(len(y), np.int64),
                                       validation_split, seed)

    def part(indices: np.ndarray) -> Split:
        return stored.split(y[indices], indices) if stored is not None else Split(x[indices], y[indices])

    validation = part(val_idx) if len(val_idx) else None
    return Dataset(name, list(class_names), part(train_idx), validation, test, list(warnings or []), target=target)


@dataclass(frozen=True)
class StoredImages:
    """A file's images as stored (see :class:`Split`): ``x`` ``(N, h, w, c)``, whose white is
    ``full_scale``, for a model input of ``shape``."""

    x: np.ndarray
    full_scale: float
    shape: tuple[int, int, int]
    file: FileRows | None = None  # where a memory-mapped x's rows are read from

    @classmethod
    def of(cls, x: np.ndarray, shape: tuple[int, int, int], what: str, file: FileRows | None = None) -> StoredImages:
        """Images ``x`` (any layout :func:`image_rows` reads), checked, without copying them."""
        x = image_rows(x, shape, what)
        return cls(x, full_scale(x, what), shape, file)

    def split(self, y: np.ndarray, rows: np.ndarray | None = None) -> Split:
        """The split of the samples at ``rows`` (None: all), whose targets are ``y``."""
        return Split(self.x, y, image_shape=self.shape, rows=None if rows is None else np.asarray(rows, np.intp),
                     x_full_scale=self.full_scale, x_file=self.file)


# ---------------------------------------------------------------------------------------------
# Built-in and generated datasets


def load_digits_dataset(input_shape=(28, 28, 1), validation_split: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), resized to the input."""
    shape = check_input_shape(input_shape)
    validation_split = check_validation_split(validation_split)
    images, target = _read_sklearn_digits()
    x = _fit_images((images.astype(np.float32) / 16.0)[..., None], shape, "digits")
    y = target.astype(np.int64)
    return _make_dataset("digits", [str(i) for i in range(10)], x, y, validation_split, seed)


def _read_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 images (values 0–16) and labels of scikit-learn's digits.

    Read straight from the data file inside the installed scikit-learn package, as its
    ``load_digits`` does, without importing scikit-learn: that import (SciPy and all) adds about
    130 MB to the window's memory before any training. Falls back to ``load_digits`` if the file
    has moved in some other scikit-learn version."""
    import gzip
    from importlib.util import find_spec

    spec = find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt", encoding="ascii") as handle:
                table = np.loadtxt(handle, delimiter=",", dtype=np.float64)
            if table.ndim == 2 and table.shape[1] == 65:
                return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target


SHAPE_CLASSES = ("circle", "square", "triangle", "cross")


def _shape_mask(kind: str, u: np.ndarray, v: np.ndarray, size: float, inset: float = 0.0) -> np.ndarray:
    """Pixels inside the shape of the given size, shrunk by ``inset`` pixels on every edge."""
    if kind == "circle":
        return np.hypot(u, v) <= size - inset
    if kind == "square":
        s = size * 0.8 - inset
        return (np.abs(u) <= s) & (np.abs(v) <= s)
    if kind == "triangle":  # equilateral, circumradius = size
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):
            a = math.pi / 2 + k * 2 * math.pi / 3 + math.pi  # outward normals of the three edges
            inside &= u * math.cos(a) + v * math.sin(a) <= size / 2 - inset
        return inside
    if kind == "cross":
        arm, length = size * 0.28 - inset, size - inset
        return ((np.abs(u) <= arm) & (np.abs(v) <= length)) | ((np.abs(v) <= arm) & (np.abs(u) <= length))
    raise DatasetError(f"Unknown shape class {kind!r}; choose from {', '.join(SHAPE_CLASSES)}.")


SHAPE_TARGETS = ("size", "x", "y")  # the regression targets of the shapes dataset


def make_shapes_dataset(n: int = 2000, input_shape=(32, 32, 1), validation_split: float = 0.2, seed: int = 0,
                        classes: Sequence[str] = SHAPE_CLASSES, *, masks: bool = False,
                        task: Task | None = None) -> Dataset:
    """A generated, balanced dataset of filled or outlined shapes at random positions, sizes and rotations.

    What each image is labelled with follows ``task`` (None: classification):

    - classification: the shape's class;
    - segmentation (or ``masks=True``): the same images, with a mask per image that is 0 on the
      background and 1 + the shape's class index on exactly the pixels drawn for the shape;
      ``class_names`` are ``["background", *classes]``;
    - regression: filled shapes, with the values ``size`` (the radius of a circle of the shape's
      area, over the image's smaller side), ``x`` and ``y`` (the centre over the width and the
      height), all in [0, 1];
    - multilabel: 1–3 different, non-overlapping, smaller shapes per image, multi-hot over ``classes``;
    - reconstruction: the classification dataset (the images are the targets).
    """
    height, width, channels = check_input_shape(input_shape)
    validation_split = check_validation_split(validation_split)
    classes = list(classes)
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if unknown:
        raise DatasetError(f"Unknown shape classes {unknown}; choose from {', '.join(SHAPE_CLASSES)}.")
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise DatasetError("The shapes dataset needs at least 2 different classes.")
    if n < len(classes):
        raise DatasetError(f"Ask for at least {len(classes)} samples (one per class); got n={n}.")
    check_memory(2 * 4 * n * height * width * (channels + (2 if masks else 0)),
                  f"the shapes dataset ({n:,} images of {height}×{width}×{channels})",
                  "give the design's input a smaller size, such as (32, 32, 1)")
    if masks or task is Task.SEGMENTATION:
        return _shapes_with_masks(n, (height, width, channels), validation_split, seed, classes)
    if task is Task.REGRESSION:
        return _shapes_regression(n, (height, width, channels), validation_split, seed, classes)
    if task is Task.MULTILABEL:
        return _shapes_multilabel(n, (height, width, channels), validation_split, seed, classes)
    x, y, _ = _draw_shapes(n, (height, width, channels), seed, classes)
    return _make_dataset("shapes", classes, x, y, validation_split, seed)


def _placed_shape(kind: str, rows: np.ndarray, cols: np.ndarray, size: float, cy: float, cx: float,
                  angle: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The filled pixels of a shape of ``size`` centred at (cy, cx), turned by ``angle``, and the
    shape's own coordinates (u, v) of every pixel (to cut an outline)."""
    dy, dx = rows - cy, cols - cx
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    return _shape_mask(kind, u, v, size), u, v


def _draw_shapes(n: int, shape: tuple[int, int, int], seed: int, classes: list[str],
                 outlines: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` images of one shape each: (images, class indices, per image (size, cy, cx))."""
    x, y, params, _ = _draw_shapes_with_pixels(n, shape, seed, classes, outlines, keep_pixels=False)
    return x, y, params


def _draw_shapes_with_pixels(n: int, shape: tuple[int, int, int], seed: int, classes: list[str],
                             outlines: bool = True, keep_pixels: bool = True):
    """``n`` images of one shape each: (images, class indices, per image (size, cy, cx), and the
    boolean ``(n, H, W)`` pixels drawn for each shape when ``keep_pixels``). The random draws
    are the same whatever is kept, so that the images with masks are the classification images."""
    height, width, channels = shape
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(classes)).astype(np.int64)
    x = np.empty((n, height, width, channels), dtype=np.float32)
    drawn = np.zeros((n, height, width), dtype=bool) if keep_pixels else None
    params = np.empty((n, 3), dtype=np.float32)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = min(height, width)
    for i in range(n):
        kind = classes[y[i]]
        size = rng.uniform(0.18, 0.38) * scale
        cy = rng.uniform(size * 0.9, height - size * 0.9) if height > 2 * size * 0.9 else height / 2
        cx = rng.uniform(size * 0.9, width - size * 0.9) if width > 2 * size * 0.9 else width / 2
        angle = rng.uniform(0, 2 * math.pi)
        mask, u, v = _placed_shape(kind, rows, cols, size, cy, cx, angle)
        if rng.random() < 0.4 and outlines:  # outlined
            thickness = max(1.0, size * (0.1 if kind == "cross" else 0.18))
            mask &= ~_shape_mask(kind, u, v, size, inset=thickness)
        background = rng.uniform(0.0, 0.25, size=channels)
        foreground = rng.uniform(0.6, 1.0, size=channels)
        image = np.where(mask[..., None], foreground, background)
        image = image + rng.normal(0.0, 0.05, size=image.shape)
        x[i] = np.clip(image, 0.0, 1.0)
        params[i] = (size, cy, cx)
        if drawn is not None:
            drawn[i] = mask
    return x, y, params, drawn


def _shapes_with_masks(n: int, shape: tuple[int, int, int], validation_split: float, seed: int,
                       classes: list[str]) -> Dataset:
    x, y, _, drawn = _draw_shapes_with_pixels(n, shape, seed, classes)
    masks = np.where(drawn, (y + 1)[:, None, None], 0).astype(np.int64)
    return _make_dataset("shapes", ["background", *classes], x, masks, validation_split, seed,
                         target=TargetKind.MASK)


def _shapes_regression(n: int, shape: tuple[int, int, int], validation_split: float, seed: int,
                       classes: list[str]) -> Dataset:
    height, width, _ = shape
    x, _, params, drawn = _draw_shapes_with_pixels(n, shape, seed, classes, outlines=False)
    # The size is the radius of the circle with the shape's area: what the image shows, whatever
    # the shape (a square of circumradius r covers far more pixels than a cross of the same r).
    radius = np.sqrt(drawn.sum(axis=(1, 2)) / math.pi) / min(height, width)
    values = np.stack([radius, params[:, 2] / width, params[:, 1] / height], axis=1).astype(np.float32)
    return _make_dataset("shapes", list(SHAPE_TARGETS), x, values, validation_split, seed,
                         target=TargetKind.VALUES)


def _shapes_multilabel(n: int, shape: tuple[int, int, int], validation_split: float, seed: int,
                       classes: list[str]) -> Dataset:
    """1–3 different shapes per image, placed so that their bounding circles do not touch."""
    height, width, channels = shape
    rng = np.random.default_rng(seed)
    x = np.empty((n, height, width, channels), dtype=np.float32)
    labels = np.zeros((n, len(classes)), dtype=np.float32)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = min(height, width)
    for i in range(n):
        count = int(rng.integers(1, min(3, len(classes)) + 1))
        kinds = rng.choice(len(classes), size=count, replace=False)
        background = rng.uniform(0.0, 0.25, size=channels)
        image = np.broadcast_to(background, (height, width, channels)).astype(np.float64)
        placed: list[tuple[float, float, float]] = []
        for k in kinds:
            size = rng.uniform(0.12, 0.2) * scale
            reach = size * 1.15  # a square's corner lies 0.8·√2 ≈ 1.13 sizes from its centre
            for _ in range(100):
                cy = rng.uniform(reach, height - reach) if height > 2 * reach else height / 2
                cx = rng.uniform(reach, width - reach) if width > 2 * reach else width / 2
                if all(math.hypot(cy - py, cx - px) > reach + pr + 1 for py, px, pr in placed):
                    break
            else:
                continue  # no room left: fewer shapes in this image
            placed.append((cy, cx, reach))
            mask, u, v = _placed_shape(classes[k], rows, cols, size, cy, cx, rng.uniform(0, 2 * math.pi))
            if rng.random() < 0.4:
                thickness = max(1.0, size * (0.1 if classes[k] == "cross" else 0.18))
                mask &= ~_shape_mask(classes[k], u, v, size, inset=thickness)
            image = np.where(mask[..., None], rng.uniform(0.6, 1.0, size=channels), image)
            labels[i, k] = 1.0
        image = image + rng.normal(0.0, 0.05, size=image.shape)
        x[i] = np.clip(image, 0.0, 1.0)
    return _make_dataset("shapes", classes, x, labels, validation_split, seed, target=TargetKind.MULTI_HOT)


# ---------------------------------------------------------------------------------------------
# Files


def load_npz_dataset(path, input_shape, validation_split: float = 0.2, seed: int = 0,
                     output_units: int | None = None, *, task: Task | None = None,
                     output_shape: Sequence[int | None] | None = None) -> Dataset:
    """A .npz with ``x_train``/``y_train`` (+ optional ``x_test``/``y_test``, like mnist.npz) or ``x``/``y``.

    What ``y`` holds is read from its shape and values, and ``task`` (see :func:`npz_target`):
    class numbers or one-hot rows, multi-hot rows of 0/1, numeric targets, or masks
    ``(N, H, W[, 1])`` (resized nearest-neighbour to the input; see :func:`fit_masks`).

    The images stay as stored (see :class:`Split`): an image array saved uncompressed
    (``np.savez``) is memory-mapped from the file, so a file larger than memory trains; a
    compressed one (``np.savez_compressed``) is read into memory once, in its own type, and a
    warning in ``Dataset.warnings`` says so with its size. Each array's header is read first and
    checked against the bytes the file really holds, and what must be loaded against
    :func:`memory_budget`, so a damaged or hostile file is refused before anything is allocated.
    ``output_units`` (the design's) bounds the class numbers, with the sample count."""
    shape = check_input_shape(input_shape)
    validation_split = check_validation_split(validation_split)
    path = Path(path)
    name = path.name
    with open_regular_file(path, name) as handle:
        magic = handle.read(6)
        handle.seek(0)
        if magic == b"\x93NUMPY":
            raise DatasetError(f"{name} holds a single array, not a .npz archive with x_train/y_train or x/y.")
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise DatasetError(f"{name} is not a readable .npz file ({exc}).") from None
        with archive:
            keys = {member[:-4] for member in archive.namelist() if member.endswith(".npy")}
            x_key, y_key, wanted = _array_keys(keys, name, "arrays")
            headers = {key: _npy_header(archive, key, name) for key in wanted}
            where = {key: _stored_offset(handle, archive.getinfo(f"{key}.npy"), headers[key])
                     for key in wanted if key.startswith("x")}
            loaded = [key for key in wanted if not isinstance(where.get(key), int)]
            total = sum(headers[key][3] for key in loaded)
            check_memory(total, f"{name} ({', '.join(loaded)}: {format_bytes(total)} of arrays)",
                          "use a smaller dataset, or fewer or smaller images"
                          + (", or save it with np.savez (not np.savez_compressed)"
                             if _COMPRESSED in where.values() else ""))
            arrays = {key: _read_npy(archive, key, headers[key], name) for key in loaded}
            files: dict[str, FileRows | None] = {}
            for key, offset in where.items():
                if isinstance(offset, int):
                    arrays[key], files[key] = _map_npy(handle, offset, headers[key], key, name)
    warnings = [f"{name}: '{key}' ({format_bytes(headers[key][3])}) {why}, so it was loaded into memory; "
                f"{_MAPPABLE_FIX[why]} to read it from disk as training needs it"
                for key, why in where.items() if why in _MAPPABLE_FIX]
    return _arrays_dataset(path.stem, name, arrays, x_key, y_key, shape, validation_split, seed, output_units,
                           task, output_shape, warnings, files)


# Why an image array had to be loaded into memory, and how to save it so that it is not.
_COMPRESSED = "is compressed"
_FORTRAN = "is stored in Fortran (column) order"
_MAPPABLE_FIX = {_COMPRESSED: "save the file with np.savez (not np.savez_compressed)",
                 _FORTRAN: "save np.ascontiguousarray(images) instead"}


def _array_keys(keys: set[str], name: str, kind: str) -> tuple[str, str, list[str]]:
    """(images key, labels key, every key to read) among the array names ``keys`` of a .npz (or a
    folder of .npy files): x_train/y_train (+ x_test/y_test) or x/y."""
    if {"x_train", "y_train"} <= keys:
        x_key, y_key = "x_train", "y_train"
    elif {"x", "y"} <= keys:
        x_key, y_key = "x", "y"
    else:
        raise DatasetError(f"{name} has {kind} {sorted(keys)} but needs 'x_train' and 'y_train' "
                           "(optionally 'x_test' and 'y_test'), or 'x' and 'y'.")
    has_test = x_key == "x_train" and ("x_test" in keys or "y_test" in keys)
    if has_test and not {"x_test", "y_test"} <= keys:
        missing = "y_test" if "x_test" in keys else "x_test"
        raise DatasetError(f"{name} has a test split but no '{missing}'; add it or remove the other.")
    return x_key, y_key, [x_key, y_key] + (["x_test", "y_test"] if has_test else [])


def _arrays_dataset(stem: str, name: str, arrays: dict[str, np.ndarray], x_key: str, y_key: str,
                    shape: tuple[int, int, int], validation_split: float, seed: int, output_units: int | None,
                    task: Task | None, output_shape: Sequence[int | None] | None,
                    warnings: list[str], files: dict[str, FileRows | None]) -> Dataset:
    """The dataset of a .npz's (or .npy folder's) arrays: labels read as their task says, images
    kept as stored and shared by the training and validation splits."""
    x_raw, y_raw = arrays[x_key], arrays[y_key]
    _check_lengths(x_raw, y_raw, f"{name} ({x_key}/{y_key})")
    target = npz_target(y_raw, task)
    if target is TargetKind.CLASS:
        y, class_names = _labels_to_indices(y_raw, f"{name} ({y_key})", output_units=output_units)
    else:
        y, class_names, found = _targets_of_kind(y_raw, target, f"{name} ({y_key})", shape, output_shape)
        warnings = warnings + found
    stored = StoredImages.of(x_raw, shape, f"{name} ({x_key})", files.get(x_key))
    test = None
    if "x_test" in arrays:
        _check_lengths(arrays["x_test"], arrays["y_test"], f"{name} (x_test/y_test)")
        if target is TargetKind.CLASS:
            y_test, class_names = _labels_to_indices(arrays["y_test"], f"{name} (y_test)", class_names)
        else:
            y_test, _, _ = _targets_of_kind(arrays["y_test"], target, f"{name} (y_test)", shape, output_shape,
                                            len(class_names))
        test = StoredImages.of(arrays["x_test"], shape, f"{name} (x_test)", files.get("x_test")).split(y_test)
    return _make_dataset(stem, class_names, None, y, validation_split, seed, test, warnings, target, stored)


NPY_KEYS = ("x_train", "y_train", "x_test", "y_test", "x", "y")


def npy_folder(path) -> bool:
    """Whether ``path`` is a folder of .npy arrays as :func:`load_npy_dataset` reads them (one
    holding x.npy or x_train.npy), not a folder of images."""
    folder = Path(path)
    return folder.is_dir() and any((folder / f"{key}.npy").exists() for key in ("x", "x_train"))


def load_npy_dataset(path, input_shape, validation_split: float = 0.2, seed: int = 0,
                     output_units: int | None = None, *, task: Task | None = None,
                     output_shape: Sequence[int | None] | None = None) -> Dataset:
    """The arrays of a .npz, unzipped: a folder holding ``x_train.npy`` and ``y_train.npy`` (+
    optional ``x_test.npy``/``y_test.npy``) or ``x.npy`` and ``y.npy``; ``path`` is the folder or
    one of those files. Read as :func:`load_npz_dataset` reads a .npz; the images are always
    memory-mapped (unless stored in Fortran order), so a file larger than memory trains."""
    shape = check_input_shape(input_shape)
    validation_split = check_validation_split(validation_split)
    path = Path(path)
    if not path.is_dir() and path.stem not in NPY_KEYS:
        raise DatasetError(f"{path.name} is a single array; Convas reads .npy files named as np.savez names its "
                           "arrays, side by side in one folder: x_train.npy and y_train.npy (optionally x_test.npy "
                           "and y_test.npy), or x.npy and y.npy. Rename the files, or give a .npz.")
    folder = path if path.is_dir() else path.parent
    name = folder.name or str(folder)
    keys = {key for key in NPY_KEYS if (folder / f"{key}.npy").exists()}
    x_key, y_key, wanted = _array_keys(keys, name, ".npy files")
    arrays: dict[str, np.ndarray] = {}
    files: dict[str, FileRows | None] = {}
    warnings: list[str] = []
    handles = []
    try:
        headers: dict[str, NpyHeader] = {}
        for key in wanted:
            handle = open_regular_file(folder / f"{key}.npy", f"{key}.npy")
            handles.append(handle)
            if handle.read(6) != b"\x93NUMPY":
                raise DatasetError(f"{name}: {key}.npy is not a .npy file (it does not start as numpy writes one); "
                                   "save it with np.save.")
            handle.seek(0)
            headers[key] = _check_npy_header(handle, os.fstat(handle.fileno()).st_size, key, name)
        mapped = {key for key in wanted if key.startswith("x") and not headers[key][1] and headers[key][3]}
        loaded = [key for key in wanted if key not in mapped]
        total = sum(headers[key][3] for key in loaded)
        check_memory(total, f"{name} ({', '.join(loaded)}: {format_bytes(total)} of arrays)",
                     "use a smaller dataset, or fewer or smaller images")
        for key, handle in zip(wanted, handles):
            header = headers[key]
            if key in mapped:
                arrays[key], files[key] = _map_npy(handle, header[4], header, key, name)
            else:
                handle.seek(header[4])
                arrays[key] = _read_npy_data(handle, header, key, name)
                if key.startswith("x") and header[1]:
                    warnings.append(f"{name}: '{key}' ({format_bytes(header[3])}) {_FORTRAN}, so it was loaded "
                                    f"into memory; {_MAPPABLE_FIX[_FORTRAN]} to read it from disk as training needs it")
    finally:
        for handle in handles:
            handle.close()
    return _arrays_dataset(folder.name or "arrays", name, arrays, x_key, y_key, shape, validation_split, seed,
                           output_units, task, output_shape, warnings, files)


def npz_target(y: np.ndarray, task: Task | None) -> TargetKind:
    """What the labels array ``y`` of a .npz holds, given the task asked for (None: judged from
    ``y`` alone):

    - ``(N, H, W)`` or ``(N, H, W, 1)``: masks;
    - task regression: numeric targets; task multi-label: multi-hot rows;
    - ``(N, L)`` of 0/1 where some row has not exactly one 1: multi-hot rows;
    - floats that are mostly not whole numbers, and are not one-hot or probability rows: values;
    - anything else: class numbers or one-hot rows (as before tasks existed).
    """
    y = np.asarray(y)
    if y.ndim >= 3:
        return TargetKind.MASK
    if task is Task.REGRESSION:
        return TargetKind.VALUES
    if task is Task.MULTILABEL:
        return TargetKind.MULTI_HOT
    if y.dtype.kind not in "uifb" or not y.size:
        return TargetKind.CLASS
    with np.errstate(invalid="ignore"):
        if y.ndim == 2 and y.shape[1] > 1:
            binary = bool(np.isin(y, (0, 1)).all())
            sums = y.sum(axis=1, dtype=np.float64)
            if binary and not np.allclose(sums, 1.0):
                return TargetKind.MULTI_HOT
            if binary or (np.all(y >= 0) and np.allclose(sums, 1.0, atol=1e-3)):
                return TargetKind.CLASS
            return TargetKind.VALUES if np.isfinite(y).all() else TargetKind.CLASS
        # Mostly fractions: measurements. A few among whole numbers: damaged class labels,
        # which the class reader names.
        if y.dtype.kind == "f" and np.isfinite(y).all() and np.mean(np.floor(y) != y) > 0.5:
            return TargetKind.VALUES
    return TargetKind.CLASS


def _targets_of_kind(y: np.ndarray, target: TargetKind, what: str, shape: tuple[int, int, int],
                     output_shape: Sequence[int | None] | None = None,
                     count: int | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """(targets as ``Split.y`` holds them, their names, warnings) for labels that are not class
    numbers. ``count`` (a test split's) is the number of targets, labels or classes the training
    split has."""
    y = np.asarray(y)
    if y.dtype.kind not in "uifb":
        raise DatasetError(f"{what}: the targets must be numbers; got values of type {y.dtype}.")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        first = int(np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))[0])
        raise DatasetError(f"{what}: the targets contain NaN or infinite values (first at index {first}); "
                           "remove or fill those samples.")
    if target is TargetKind.MASK:
        masks, names, warnings = fit_masks(y, shape[:2], what, output_shape)
        if count is not None and len(names) > count:
            raise DatasetError(f"{what}: the masks use class {len(names) - 1}, beyond the {count} classes of "
                               "the training masks.")
        return masks, names if count is None else [str(i) for i in range(count)], warnings
    rows = y.reshape(len(y), -1).astype(np.float32) if y.ndim <= 2 else None
    if rows is None or y.ndim == 0:
        raise DatasetError(f"{what}: targets must be shaped (N,) or (N, targets); got {y.shape}.")
    if count is not None and rows.shape[1] != count:
        raise DatasetError(f"{what}: each sample has {rows.shape[1]} targets, but the training data has {count}.")
    if target is TargetKind.MULTI_HOT:
        if not np.isin(rows, (0.0, 1.0)).all():
            bad = rows[~np.isin(rows, (0.0, 1.0))][:3]
            raise DatasetError(f"{what}: multi-label targets are 1 (the label applies) or 0; found "
                               f"{', '.join(f'{v:g}' for v in bad)}. Use one 0/1 column per label.")
        if rows.shape[1] < 2 and y.ndim == 1:
            raise DatasetError(f"{what}: multi-label targets need one 0/1 column per label, shaped (N, labels); "
                               f"got {y.shape}.")
        return rows, [str(i) for i in range(rows.shape[1])], []
    names = ["y"] if rows.shape[1] == 1 else [f"y{i}" for i in range(rows.shape[1])]
    return rows, names, []


def fit_masks(y: np.ndarray, size: tuple[int, int], what: str,
              output_shape: Sequence[int | None] | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """int64 ``(N, H, W)`` class masks from ``(N, h, w)`` or ``(N, h, w, 1)`` whole numbers,
    resized nearest-neighbour to ``size`` (values stay classes); with (names "0".."K-1",
    warnings). Masks that never use 0 (values 1..K) are lowered by one when the design's output
    has K channels."""
    y = np.asarray(y)
    if y.ndim == 4 and y.shape[3] == 1:
        y = y[..., 0]
    if y.ndim != 3:
        raise DatasetError(f"{what}: masks must be shaped (N, H, W) or (N, H, W, 1) with a class number per "
                           f"pixel; got {y.shape}.")
    if y.dtype.kind == "f" and not np.equal(np.floor(y), y).all():
        raise DatasetError(f"{what}: mask values must be whole class numbers (0, 1, 2, ...); found "
                           f"{y[np.not_equal(np.floor(y), y)].flat[0]:g}.")
    if y.size and y.min() < 0:
        raise DatasetError(f"{what}: mask values must be 0 or more; found {_label_text(y.min())}.")
    if y.size and y.max() > 255:
        raise DatasetError(f"{what}: mask values go up to {_label_text(y.max())}, but Convas reads at most 256 "
                           "classes (0–255) per pixel.")
    n, h, w = y.shape
    height, width = size
    check_memory(8 * n * (h * w + height * width), f"{what}: {n:,} masks of {height}×{width}",
                  "give the design's input a smaller size")
    if (h, w) == (height, width):
        masks = y.astype(np.int64)  # one copy, not three
    else:
        rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.intp), h - 1)
        cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.intp), w - 1)
        masks = y[:, rows][:, :, cols].astype(np.int64)
    low, high = (int(masks.min()), int(masks.max())) if masks.size else (0, 0)
    channels = output_shape[-1] if output_shape is not None and len(output_shape) == 3 else None
    warnings: list[str] = []
    if low >= 1 and channels is not None and channels == high:
        masks -= 1
        high -= 1
        warnings.append(f"The masks use the values 1 to {high + 1} and never 0, and the output has {channels} "
                        f"channels, so every mask value is lowered by 1 (class 1 is trained as 0)")
    return masks, [str(i) for i in range(max(high + 1, 2))], warnings


# shape, Fortran order, dtype, data bytes, header bytes (where the data starts in the .npy)
NpyHeader = tuple[tuple[int, ...], bool, np.dtype, int, int]


def _read_npy_header(member) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from the start of a .npy stream (numpy's own parser)."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    return np.lib.format.read_array_header_2_0(member)


def _npy_header(archive: zipfile.ZipFile, key: str, name: str) -> NpyHeader:
    """The header of the array ``key`` in a .npz, checked (see :func:`_check_npy_header`)."""
    info = archive.getinfo(f"{key}.npy")
    try:
        with archive.open(info) as member:
            return _check_npy_header(member, info.file_size, key, name)
    except (OSError, zipfile.BadZipFile, zlib.error) as exc:
        raise DatasetError(f"{name}: the array '{key}' is damaged ({exc}); save the file again.") from None


def _check_npy_header(stream, stored: int, key: str, name: str) -> NpyHeader:
    """The header at the start of ``stream`` (a .npy of ``stored`` bytes), checked against what
    it really holds: no Python objects, no negative sizes, and no more data declared than stored."""
    try:
        shape, fortran, dtype = _read_npy_header(stream)
        header_bytes = stream.tell()
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DatasetError(f"{name}: the array '{key}' is damaged ({exc}); save the file again.") from None
    if dtype.hasobject:
        raise DatasetError(f"{name} stores Python objects in '{key}', which Convas does not load for safety; "
                           "save plain numeric arrays.")
    if any(d < 0 for d in shape):
        raise DatasetError(f"{name}: the array '{key}' is damaged: its header declares the shape {shape}, "
                           "and sizes cannot be negative; save the file again.")
    nbytes = math.prod(shape) * dtype.itemsize
    left = stored - header_bytes
    if nbytes > left:
        raise DatasetError(f"{name}: the array '{key}' is damaged or truncated: its header declares the shape "
                           f"{shape} ({format_bytes(nbytes)}), but the file holds {format_bytes(max(left, 0))} "
                           "of it; save the file again.")
    return shape, bool(fortran), dtype, nbytes, header_bytes


def _stored_offset(handle: io.BufferedReader, info: zipfile.ZipInfo, header: NpyHeader) -> int | str:
    """Where the data of a .npz member starts in the file, when it can be memory-mapped (stored
    uncompressed and unencrypted, in C order, not empty); else why it cannot: a sentence for
    the user, or ``""`` when reading costs nothing (an empty array) or is best left to zipfile,
    which names the damage (a member not where the directory says)."""
    shape, fortran, _, nbytes, header_bytes = header
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return _COMPRESSED
    if fortran and len(shape) > 1:
        return _FORTRAN
    if not nbytes:
        return ""
    handle.seek(info.header_offset)
    local = handle.read(30)  # the member's local header: its name and extra field come before the data
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        return ""
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_length + extra_length + header_bytes


def check_still_mapped(x: np.ndarray) -> None:
    """Refuse to read a memory-mapped ``x`` whose file has been cut short since it was mapped
    (saved again over the same name while training, as ``np.savez`` does): reading a page beyond
    the file's end kills the process (SIGBUS) instead of raising. One ``fstat`` per batch."""
    mapped = getattr(x, "_mmap", None) if isinstance(x, np.memmap) else None
    if not isinstance(mapped, mmap.mmap):
        return
    offset = int(getattr(x, "offset", 0))
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    try:
        size = mapped.size()
    except (OSError, ValueError):
        return  # the mapping keeps its own handle; a size that cannot be read is no news
    if size < start + len(mapped):
        raise _changed_on_disk(size, start + len(mapped))


def _changed_on_disk(size: int, held: int) -> DatasetError:
    return DatasetError(f"the images' file was changed on disk while Convas reads it (it now holds "
                        f"{format_bytes(size)}, less than the {format_bytes(held)} it held); load the dataset "
                        "again, and save a new dataset under another name while training")


@dataclass(frozen=True)
class FileRows:
    """The rows of an array stored in C order from ``offset`` in an open regular ``file``, read
    with ``os.pread``: the same bytes as the array's memory map, but read into the batch (the
    process's memory then holds the batch, not the pages of the file it touched, which the
    system keeps in its cache), and a file cut short while training is a clear error rather
    than the crash reading a mapped page past the file's end would be."""

    file: Any  # a binary file object, kept open as long as a split reads from it
    offset: int
    row_bytes: int
    rows: int

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The ``(len(rows), row_bytes)`` bytes of ``rows`` (ascending), one read per run of
        consecutive rows."""
        out = np.empty((len(rows), self.row_bytes), dtype=np.uint8)
        if not len(rows):
            return out
        if int(rows[0]) < 0 or int(rows[-1]) >= self.rows:
            raise IndexError(f"rows {int(rows[0])} to {int(rows[-1])} asked of an array of {self.rows}")
        fd = self.file.fileno()
        breaks = (np.flatnonzero(np.diff(rows) != 1) + 1).tolist()
        for first, end in zip([0, *breaks], [*breaks, len(rows)]):
            block = out[first:end].data.cast("B")
            start = self.offset + int(rows[first]) * self.row_bytes
            done = 0
            while done < len(block):
                got = os.preadv(fd, [block[done:]], start + done)
                if got <= 0:
                    raise _changed_on_disk(os.fstat(fd).st_size, self.offset + self.rows * self.row_bytes)
                done += got
        return out


def _map_npy(handle: io.BufferedReader, offset: int, header: NpyHeader, key: str,
             name: str) -> tuple[np.ndarray, FileRows | None]:
    """The array whose data starts at ``offset`` in the open regular file ``handle``, memory-mapped
    read-only, and where its rows are read from while training (:class:`FileRows`, on a copy of
    the handle; None where ``os.preadv`` does not exist, Windows: rows are read from the map)."""
    shape, _, dtype, nbytes, _ = header
    size = os.fstat(handle.fileno()).st_size
    if offset + nbytes > size:
        raise DatasetError(f"{name}: the array '{key}' is truncated: it holds {format_bytes(max(size - offset, 0))} "
                           f"of the {format_bytes(nbytes)} its header declares; save the file again.")
    try:
        mapped = np.memmap(handle, dtype=dtype, mode="r", offset=offset, shape=shape, order="C")
        rows = int(shape[0]) if shape else 0
        if not hasattr(os, "preadv") or not rows:
            return mapped, None
        return mapped, FileRows(os.fdopen(os.dup(handle.fileno()), "rb", buffering=0), offset, nbytes // rows, rows)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{name}: the array '{key}' cannot be mapped from the file ({exc}).") from None


def _read_npy(archive: zipfile.ZipFile, key: str, header: NpyHeader, name: str) -> np.ndarray:
    """The array ``key`` of a .npz whose ``header`` :func:`_npy_header` checked, read straight
    into its own memory (numpy's reader, minus pickles and minus trusting the header)."""
    try:
        with archive.open(f"{key}.npy") as member:
            _read_npy_header(member)
            return _read_npy_data(member, header, key, name)
    except (OSError, zipfile.BadZipFile, zlib.error) as exc:
        raise DatasetError(f"{name}: the array '{key}' is damaged ({exc}); save the file again.") from None


def _read_npy_data(stream, header: NpyHeader, key: str, name: str) -> np.ndarray:
    """The data of a checked .npy ``header`` from ``stream`` (just after the header), read in 16 MB
    pieces straight into the array: never a second copy of the whole array."""
    shape, fortran, dtype, nbytes, _ = header
    flat = np.empty(math.prod(shape), dtype=dtype)
    view = flat.view(np.uint8) if nbytes else np.zeros(0, np.uint8)
    done = 0
    try:
        while done < nbytes:
            piece = stream.read(min(nbytes - done, 16 << 20))
            if not piece:
                break
            view[done:done + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
            done += len(piece)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DatasetError(f"{name}: the array '{key}' is damaged ({exc}); save the file again.") from None
    if done < nbytes:
        raise DatasetError(f"{name}: the array '{key}' is truncated: it holds {format_bytes(done)} of the "
                           f"{format_bytes(nbytes)} its header declares; save the file again.")
    return flat.reshape(shape[::-1]).transpose() if fortran else flat.reshape(shape)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_PIXEL_HEADER = re.compile(r"^(pixel|pix|px|p)?[_ ]?\d+([x_]\d+)*$", re.IGNORECASE)
_LABEL_PREFIXES = ("label_", "label:")


def _csv_targets(header: list[str] | None, width: int, shape, what: str,
                 target_columns: Sequence[str], task: Task | None) -> tuple[list[int], TargetKind] | None:
    """The columns of a CSV that hold several targets, and what they are; None for the usual
    single label column. Named by ``target_columns``; else, with a header, the columns named
    ``label_…``/``label:…`` are multi-label targets; and for regression every column that is not
    a pixel (those not named like pixels, or else the first columns beyond the pixel count)."""
    if target_columns:
        if header is None:
            raise DatasetError(f"{what} has no header row, so its target columns cannot be named; add a header "
                               f"or name no target columns.")
        missing = [c for c in target_columns if c not in header]
        if missing:
            raise DatasetError(f"{what}: there is no column named {', '.join(repr(c) for c in missing)}; the header "
                               f"has {', '.join(header[:8])}{', ...' if len(header) > 8 else ''}.")
        cols = [header.index(c) for c in target_columns]
        if task is Task.CLASSIFICATION and len(cols) == 1:
            return None
        kind = (TargetKind.MULTI_HOT if task is Task.MULTILABEL else TargetKind.VALUES
                if task is Task.REGRESSION else None)
        return cols, kind or TargetKind.CLASS  # CLASS: decided from the values by the caller
    if header is not None and task in (None, Task.MULTILABEL, Task.RECONSTRUCTION):
        cols = [i for i, name in enumerate(header) if name.lower().startswith(_LABEL_PREFIXES)]
        if cols:
            return cols, TargetKind.MULTI_HOT
    if task is not Task.REGRESSION:
        return None
    height, width_px, channels = shape
    for pixels in (height * width_px * channels, height * width_px):
        extra = width - pixels
        if extra < 1:
            continue
        if header is not None:
            named = [i for i, name in enumerate(header) if not _PIXEL_HEADER.match(name)]
            if len(named) == extra:
                return named, TargetKind.VALUES
        return list(range(extra)), TargetKind.VALUES
    raise DatasetError(f"{what}: each row has {width} values, which leaves no target column beside the "
                       f"{height * width_px * channels} pixels the model's input {shape} needs; add the target "
                       f"columns or change the input's shape.")


def _csv_pixels(pixels_text: np.ndarray, shape, what: str, header) -> np.ndarray:
    """The float32 pixels of a CSV's pixel columns (text), checked: count, blanks, numbers."""
    height, width_px, channels = shape
    n_pixels = pixels_text.shape[1]
    if n_pixels not in (height * width_px * channels, height * width_px):
        expected = f"{height * width_px * channels}" + (f" (or {height * width_px} grey)" if channels > 1 else "")
        raise DatasetError(f"{what}: each row has {n_pixels} pixel columns but the model's input "
                           f"{shape} needs {expected} = {height}x{width_px}x{channels}. "
                           "Change the model's input shape to match the images.")
    blank = np.char.strip(pixels_text) == ""
    if blank.any():
        bad_row = int(np.flatnonzero(blank.any(axis=1))[0]) + (2 if header else 1)
        raise DatasetError(f"{what}: there are empty or NaN pixel values (first in row {bad_row}); "
                           "fill or remove them.")
    try:
        pixels = pixels_text.astype(np.float32)
    except ValueError:
        raise DatasetError(f"{what}: some pixel values are not numbers; every column but the label "
                           "must hold a number.") from None
    if np.isnan(pixels).any():
        bad_row = int(np.flatnonzero(np.isnan(pixels).any(axis=1))[0]) + (2 if header else 1)
        raise DatasetError(f"{what}: there are empty or NaN pixel values (first in row {bad_row}); "
                           "fill or remove them.")
    return pixels


def number_cells(cells, columns: int, problem) -> np.ndarray:
    """The float32 ``(rows, columns)`` values of a table of text ``cells`` (a 2-D array or a list
    of rows, possibly none); the first cell that is not a finite number raises :class:`DatasetError` with
    ``problem(row, column, cell)``, a message that says where it is and what to do."""
    table = np.asarray(cells, dtype=str).reshape(-1, columns)
    values = np.empty(table.shape, dtype=np.float32)
    for (r, c), cell in np.ndenumerate(table):
        try:
            values[r, c] = float(cell)
        except ValueError:
            values[r, c] = np.nan
        if not np.isfinite(values[r, c]):
            raise DatasetError(problem(r, c, str(cell)))
    return values


def _csv_target_values(text: np.ndarray, names: list[str], kind: TargetKind, what: str,
                       first_row: int) -> tuple[np.ndarray, TargetKind]:
    """The float32 ``(N, T)`` targets in a CSV's target columns, each cell a number (checked,
    naming row and column); ``kind`` CLASS means "decide": 0/1 columns are multi-hot when
    there are several, values otherwise."""
    values = number_cells(np.char.strip(text), len(names), lambda r, c, cell: (
        f"{what}: row {r + first_row} has {cell!r} in the target column '{names[c]}'; every target must be a "
        "number; fill or remove that row."))
    if kind is TargetKind.CLASS:
        several = len(names) > 1
        kind = TargetKind.MULTI_HOT if several and np.isin(values, (0.0, 1.0)).all() else TargetKind.VALUES
    if kind is TargetKind.MULTI_HOT and not np.isin(values, (0.0, 1.0)).all():
        r, c = (int(i[0]) for i in np.nonzero(~np.isin(values, (0.0, 1.0))))
        raise DatasetError(f"{what}: row {r + first_row} has {values[r, c]:g} in the label column '{names[c]}', "
                           "but label columns hold 1 (the label applies) or 0.")
    return values, kind


def _read_csv(path: Path, label_column, shape, what: str, class_names: list[str] | None = None,
              output_units: int | None = None, *, target_columns: Sequence[str] = (),
              task: Task | None = None):
    """(x, y, names, target) of a CSV: see :func:`load_csv_dataset`."""
    try:
        with io.TextIOWrapper(open_regular_file(path, what), newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{what} could not be read as CSV text ({exc}).") from None
    if not rows:
        raise DatasetError(f"{what} is empty.")
    first = [cell.strip() for cell in rows[0]]
    # A header is a first row whose cells are (mostly) not numbers, beyond a possible string label.
    header = None
    if sum(not _is_number(c) for c in first) > 1 or (len(first) > 1 and not any(_is_number(c) for c in first[1:])):
        header = first
        rows = rows[1:]
    width = len(first)
    targets = _csv_targets(header, width, shape, what, target_columns, task)
    if targets is None:
        if target_columns:
            label_column = target_columns[0]
        if isinstance(label_column, int):
            col = label_column if label_column >= 0 else width + label_column
            if not 0 <= col < width:
                raise DatasetError(f"{what}: label column {label_column} is outside the {width} columns.")
        elif header is not None and label_column in header:
            col = header.index(label_column)
        elif header is not None and label_column not in (None, "label"):
            raise DatasetError(f"{what}: there is no column named {label_column!r}; the header has "
                               f"{', '.join(header[:5])}{', ...' if len(header) > 5 else ''}.")
        else:
            col = 0  # default: the first column holds the label
        cols = [col]
    else:
        cols = targets[0]
    for number, row in enumerate(rows, start=2 if header else 1):
        if len(row) != width:
            raise DatasetError(f"{what}: row {number} has {len(row)} values but the first row has {width}.")
    if not rows:
        raise DatasetError(f"{what} has a header but no data rows.")
    table = np.asarray(rows, dtype=str)
    pixels = _csv_pixels(np.delete(table, cols, axis=1), shape, what, header)
    first_row = 2 if header else 1
    if targets is not None:
        assert header is not None or targets[1] is TargetKind.VALUES
        names = [header[c] if header is not None else f"y{i}" for i, c in enumerate(cols)]
        if header is None and len(names) == 1:
            names = ["y"]
        values, kind = _csv_target_values(table[:, cols], names, targets[1], what, first_row)
        if kind is TargetKind.MULTI_HOT:
            names = [_strip_label_prefix(n) for n in names]
        if class_names is not None and len(class_names) != len(names):
            raise DatasetError(f"{what} has {len(names)} target columns but the training data has "
                               f"{len(class_names)}.")
        return _fit_images(pixels, shape, what), values, class_names or names, kind
    labels = np.char.strip(table[:, col])
    if all(_is_number(s) for s in labels[:1000]) and all(_is_number(s) for s in labels):
        y_values = labels.astype(np.float64)
        if class_names is not None and not all(name.lstrip("-").isdigit() for name in class_names):
            y_values = labels  # training labels were names: look these up by name too
    else:
        y_values = labels
    y, names = _labels_to_indices(y_values, f"{what} (labels)", class_names, output_units,
                                  first_row=first_row)
    x = _fit_images(pixels, shape, what)
    return x, y, names, TargetKind.CLASS


def _strip_label_prefix(name: str) -> str:
    for prefix in _LABEL_PREFIXES:
        if name.lower().startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return name


def load_csv_dataset(path, input_shape, label_column: str | int | None = "label", validation_split: float = 0.2,
                     seed: int = 0, test_path=None, output_units: int | None = None, *,
                     task: Task | None = None, target_columns: Sequence[str] = ()) -> Dataset:
    """A CSV with one label column plus pixel columns (the MNIST-as-CSV layout), with or without header.

    The label column is the one named ``label_column`` when there is a header holding it, the column
    at that index when it is an int, and otherwise the first column. Numeric labels are class indices;
    string labels are mapped to sorted class names. ``test_path`` optionally names a test CSV.
    ``output_units`` (the design's) bounds the class numbers, with the sample count.

    Several targets: ``target_columns`` names them (0/1 columns are multi-label, or task says;
    other numbers are regression targets); without names, columns headed ``label_…`` or
    ``label:…`` are multi-label targets, and with ``task`` regression every non-pixel column is a
    target (see :func:`_csv_targets`). ``class_names`` are the column names (``label_`` dropped).
    """
    shape = check_input_shape(input_shape)
    validation_split = check_validation_split(validation_split)
    path = Path(path)
    x, y, names, target = _read_csv(path, label_column, shape, path.name, output_units=output_units,
                                    target_columns=target_columns, task=task)
    test = None
    if test_path is not None:
        test_path = Path(test_path)
        x_test, y_test, names, _ = _read_csv(test_path, label_column, shape, test_path.name, names,
                                             target_columns=target_columns, task=task)
        test = Split(x_test, y_test)
    return _make_dataset(path.stem, names, x, y, validation_split, seed, test, target=target)


IMAGE_SUFFIXES = set(folder_index.IMAGE_SUFFIXES)  # .png .jpg .jpeg .bmp .gif (a GIF's first frame)
# Folders of up to this many images are decode-checked before training (cached), so their damaged
# files are named before the first epoch; larger ones are checked by the pipeline as it reads
# them (engine.image_pipeline), and what it skips is remembered for the next run.
UP_FRONT_CHECKS = 2_000
# Larger images are refused before decoding: 50 megapixels is a 8160×6120 photo, and decoding
# and resizing one takes about 1 GB; a header claiming 100,000² pixels would take 40 GB.
MAX_IMAGE_PIXELS = 50_000_000
_JPEG_FRAME_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(handle) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, walking the markers from the start of the file."""
    handle.seek(2)
    while True:
        marker = handle.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        while marker[1] == 0xFF:  # fill bytes
            marker = marker[1:] + handle.read(1)
            if len(marker) < 2:
                return None
        kind = marker[1]
        if kind in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            continue
        length_bytes = handle.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if kind in _JPEG_FRAME_MARKERS:
            frame = handle.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        if kind == 0xDA or length < 2:  # scan data before any frame header: not a JPEG we read
            return None
        handle.seek(length - 2, os.SEEK_CUR)


def _image_problem(path: Path) -> str | None:
    """Why an image file cannot be decoded, judged from its header without decoding it (None if
    it looks fine): not a regular file, empty, not an image, damaged header, or more pixels than
    :data:`MAX_IMAGE_PIXELS`."""
    problem = image_header(path)
    return problem if isinstance(problem, str) else None


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of an image file from its header, without decoding it (None when the
    header cannot be read; see :func:`_image_problem` for why)."""
    found = image_header(path)
    return found if isinstance(found, tuple) else None


def image_header(path: Path) -> str | tuple[int, int]:
    """An image file's (width, height) from its header, or why it cannot be decoded."""
    try:
        handle = open_regular_file(path, path.name)
    except DatasetError as exc:
        return str(exc).removeprefix(path.name + " ").split(";")[0]
    with handle:
        try:
            head = handle.read(33)
            suffix = path.suffix.lower()
            size: tuple[int, int] | None = None
            if not head:
                return "is empty"
            if head.startswith(b"\x89PNG\r\n\x1a\n"):
                if len(head) < 33 or head[12:16] != b"IHDR":
                    return "is a truncated PNG"
                if zlib.crc32(head[12:29]) & 0xFFFFFFFF != struct.unpack(">I", head[29:33])[0]:
                    return "is a damaged PNG"
                size = struct.unpack(">II", head[16:24])
            elif head.startswith(b"\xff\xd8\xff"):
                size = _jpeg_size(handle)
                if size is None:
                    return "is a damaged JPEG (no frame header)"
            elif head.startswith((b"GIF87a", b"GIF89a")) and len(head) >= 10:
                size = struct.unpack("<HH", head[6:10])
            elif head.startswith(b"BM") and len(head) >= 26:
                old_os2 = struct.unpack("<I", head[14:18])[0] == 12  # a 12-byte header: 16-bit sizes
                width, height = struct.unpack("<HH", head[18:22]) if old_os2 else struct.unpack("<ii", head[18:26])
                size = (abs(width), abs(height))
            else:
                kinds = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".gif": "GIF"}
                return f"is not a valid {kinds.get(suffix, 'image')} file"
        except OSError as exc:
            return f"cannot be read ({exc.strerror or exc})"
    width, height = size
    if width == 0 or height == 0:
        return f"is an image of size {width}×{height}"
    if width * height > MAX_IMAGE_PIXELS:
        return (f"declares {width:,}×{height:,} pixels, more than the {MAX_IMAGE_PIXELS:,} Convas decodes "
                "(it would take about " + format_bytes(width * height * 16) + " to train on)")
    return int(width), int(height)


def _decode_problem(path: Path, channels: int) -> str | None:
    """Why TensorFlow cannot decode ``path`` as the model will be fed it (None if it can)."""
    import tensorflow as tf

    try:
        with open_regular_file(path, path.name) as handle:
            raw = handle.read()
        decode_pixels(raw, channels)
    except DatasetError as exc:
        return str(exc).removeprefix(path.name + " ").split(";")[0]
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    except (tf.errors.OpError, ValueError) as exc:
        reason = str(getattr(exc, "message", exc)).split("}} ")[-1].splitlines()[0]
        return f"cannot be decoded ({reason.split(' [Op:')[0].strip()})"
    return None


def _check_image(path: Path, channels: int) -> str | None:
    return _image_problem(path) or _decode_problem(path, channels)


class ImageChecks:
    """Whether each image file decodes, remembered by path, size and modification time (and the
    channels asked for), in memory and in a small JSON file in the user's cache folder: checking
    a folder of 60,000 images takes a while once, and a second run only looks at file dates."""

    VERSION = 1
    MAX_ENTRIES = 500_000

    def __init__(self) -> None:
        self._entries: dict[str, list] | None = None
        self._dirty = False

    @staticmethod
    def cache_file() -> Path:
        """In Convas's per-user cache folder, the platform's
        (:func:`engine.internal_error.user_cache_folder`)."""
        from .internal_error import user_cache_folder

        return user_cache_folder() / "image-checks.json"

    def _load(self) -> dict[str, list]:
        if self._entries is None:
            import json

            self._entries = {}
            try:
                stored = json.loads(self.cache_file().read_text(encoding="utf-8"))
                if isinstance(stored, dict) and stored.get("version") == self.VERSION:
                    self._entries = {k: v for k, v in stored.get("checks", {}).items()
                                     if isinstance(v, list) and len(v) == 4}
            except (OSError, ValueError, AttributeError):
                pass  # no cache yet, or an unreadable one: check again
        return self._entries

    def get(self, key: str, st: os.stat_result, channels: int) -> tuple[bool, Any]:
        """(known, problem): known is False when the file must be checked."""
        entry = self._load().get(key)
        if entry and entry[:3] == [st.st_size, st.st_mtime_ns, channels]:
            return True, entry[3]
        return False, None

    def __len__(self) -> int:
        return len(self._load())

    def known_problems(self, paths: Sequence[str], channels: int) -> dict[int, str]:
        """{position in ``paths``: its problem} for the files remembered as not decoding (with
        ``channels``) that have not changed since: a dictionary look-up per path (absolute,
        normalised, as :func:`engine.folder_index.scan_images` gives them), and a stat of only
        the few remembered as bad."""
        entries = self._load()
        found: dict[int, str] = {}
        for i, path in enumerate(paths):
            entry = entries.get(path)
            if entry is None or not isinstance(entry[3], str) or entry[2] != channels:
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue  # gone: reading it will say so
            if entry[:2] == [st.st_size, st.st_mtime_ns]:
                found[i] = entry[3]
        return found

    def put(self, key: str, st: os.stat_result, channels: int, problem: Any) -> None:
        """Remember what checking the file found (``problem``: any JSON value; for images the
        problem or None)."""
        self._load()[key] = [st.st_size, st.st_mtime_ns, channels, problem]
        self._dirty = True

    def save(self, keep: set[str]) -> None:
        """Write the cache (only ``keep``'s entries when it has grown too large); never fails."""
        if not self._dirty or self._entries is None:
            return
        import json

        from .atomic import write_bytes_atomically

        if len(self._entries) > self.MAX_ENTRIES:
            self._entries = {k: v for k, v in self._entries.items() if k in keep}
        target = self.cache_file()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomically(target, json.dumps({"version": self.VERSION, "checks": self._entries})
                                   .encode("utf-8"))
            self._dirty = False
        except (OSError, ConvasError):
            pass  # a cache that cannot be written only costs time on the next run


IMAGE_CHECKS = ImageChecks()


def check_image_files(files: Sequence[tuple[Path, os.stat_result]], channels: int,
                      checks: ImageChecks | None = None) -> list[str | None]:
    """The problem of each file (None when it decodes as the model will be fed it): known ones
    from ``checks`` (default :data:`IMAGE_CHECKS`), the rest decoded on a thread pool
    (TensorFlow's decoders release the GIL)."""
    checks = checks or IMAGE_CHECKS
    problems: list[str | None] = [None] * len(files)
    keys = [os.path.abspath(path) for path, _ in files]  # the stat (size, time) follows links
    todo: list[int] = []
    for i, (key, (_, st)) in enumerate(zip(keys, files)):
        known, problem = checks.get(key, st, channels)
        if known:
            problems[i] = problem
        else:
            todo.append(i)
    if todo:
        from concurrent.futures import ThreadPoolExecutor

        from .quiet_tf import importing_tensorflow

        with importing_tensorflow():  # once here, not by every worker at once
            import tensorflow  # noqa: F401

        workers = max(1, min(8, os.cpu_count() or 2, len(todo)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convas-image-check") as pool:
            found = list(pool.map(lambda i: _check_image(files[i][0], channels), todo))
        for i, problem in zip(todo, found):
            problems[i] = problem
            checks.put(keys[i], files[i][1], channels, problem)
        checks.save(set(keys))
    return problems


def first_few(problems: list[str], limit: int = 5) -> str:
    """``a; b; c; and 7 more``: the first few of many named problems."""
    shown = "; ".join(problems[:limit])
    return shown + (f"; and {len(problems) - limit} more" if len(problems) > limit else "")


def image_files(folder: Path, recursive: bool = True) -> list[Path]:
    """The .png/.jpg/.jpeg/.bmp/.gif files in ``folder`` (and its sub-folders when
    ``recursive``), sorted, hidden ones left out, with the entries named like images that are
    not files (pipes, devices; :func:`readable_images` names them). Nothing is opened (opening a
    pipe would wait for a writer); the listing is cached (:mod:`engine.folder_index`)."""
    listing = folder_index.scan_images([folder], recursive)[0]
    names = listing.files
    if listing.special:  # merged in at their places in the order
        names = sorted(names + list(listing.special), key=lambda name: Path(name).parts)
    start = len(os.path.abspath(folder)) + 1
    return [folder / name[start:] for name in names]


def readable_images(root: Path, files: Sequence[Path], channels: int) -> tuple[list[int], list[str]]:
    """Which of ``files`` decode as the model will be fed them: (the indices of those that do,
    a sentence for each that does not, naming it relative to ``root``). Folders named like images
    are left out silently; pipes, devices and unreadable, empty, damaged or too large files are
    named (see :func:`check_image_files`, whose results are cached). Beyond
    :data:`UP_FRONT_CHECKS` files only what is cheap is checked here (see
    :func:`usable_images`)."""
    if len(files) > UP_FRONT_CHECKS:
        paths = [os.path.abspath(f) for f in files]
        special: dict[str, str] = {}
        for path in paths:  # stat, never open: opening a pipe would wait for a writer
            try:
                kind = not_regular(os.stat(path).st_mode)
            except OSError as exc:
                special[path] = f"cannot be opened ({exc.strerror or exc})"
                continue
            if kind is not None:
                special[path] = "" if kind == "a folder" else f"is {kind}, not a regular file"
        return usable_images(str(root), paths, special, channels)
    unreadable: list[str] = []
    candidates: list[tuple[int, Path, os.stat_result]] = []
    for i, file in enumerate(files):
        try:
            st = file.stat()  # stat, never open: opening a pipe would wait for a writer
        except OSError as exc:
            unreadable.append(f"{file.relative_to(root)} cannot be opened ({exc.strerror or exc})")
            continue
        kind = not_regular(st.st_mode)
        if kind == "a folder":
            continue
        if kind is not None:
            unreadable.append(f"{file.relative_to(root)} is {kind}, not a regular file")
            continue
        candidates.append((i, file, st))
    problems = check_image_files([(file, st) for _, file, st in candidates], channels)
    readable: list[int] = []
    for (i, file, _), problem in zip(candidates, problems):
        if problem:
            unreadable.append(f"{file.relative_to(root)} {problem}")
        else:
            readable.append(i)
    return readable, unreadable


def usable_images(root: str, paths: Sequence[str], special: dict[str, str],
                  channels: int) -> tuple[list[int], list[str]]:
    """Which of ``paths`` (absolute path strings) to feed the model: (their indices, a sentence
    for each left out, naming it relative to ``root``). ``special`` maps the entries that are
    not regular files to why ('' for a folder named like an image: left out silently).

    Up to :data:`UP_FRONT_CHECKS` files are decode-checked now, as :func:`readable_images` does;
    beyond that only what costs no file opening: the entries in ``special``, and the files
    :class:`ImageChecks` remembers as not decoding (unchanged since). The rest are checked by
    the pipeline as it decodes them (:mod:`engine.image_pipeline`), which names and remembers
    any that fail."""
    base = os.path.abspath(root)

    def relative(path: str) -> str:
        return path[len(base) + 1:] if path.startswith(base + os.sep) else relative_or_absolute(path, base)

    if len(paths) + len(special) <= UP_FRONT_CHECKS:
        files = sorted([Path(p) for p in paths] + [Path(p) for p in special], key=lambda f: f.parts)
        readable, unreadable = readable_images(Path(base), files, channels)
        position = {p: i for i, p in enumerate(paths)}
        return sorted(position[str(files[i])] for i in readable if str(files[i]) in position), unreadable
    unreadable = [f"{relative(path)} {problem}" for path, problem in special.items() if problem]
    known = IMAGE_CHECKS.known_problems(paths, channels)
    unreadable += [f"{relative(paths[i])} {problem}" for i, problem in sorted(known.items())]
    if special:
        readable = [i for i, path in enumerate(paths) if i not in known and path not in special]
    else:
        readable = [i for i in range(len(paths)) if i not in known]
    return readable, unreadable


def skipped_sentence(unreadable: Sequence[str]) -> str:
    """``Skipped 3 unreadable images: a; b; c`` (empty when nothing was skipped)."""
    if not unreadable:
        return ""
    return (f"Skipped {len(unreadable)} unreadable image{'s' if len(unreadable) > 1 else ''}: "
            f"{first_few(list(unreadable))}")


def load_image_folder(path, input_shape, validation_split: float = 0.2, seed: int = 0) -> Dataset:
    """One sub-folder per class holding .png/.jpg/.bmp/.gif images; images stay on disk (lazy
    splits). The folders are listed without opening a file (:func:`engine.folder_index.scan_images`,
    cached until a folder changes).

    Files that cannot be fed — not regular files (pipes, devices), empty, truncated, damaged, not
    images, or larger than :data:`MAX_IMAGE_PIXELS` — are skipped, counted and named in
    ``Dataset.warnings``: up to :data:`UP_FRONT_CHECKS` images are decode-checked now (cached,
    see :class:`ImageChecks`); in a larger folder the pipeline finds them as it reads them and
    names them after the epoch (:mod:`engine.image_pipeline`), and the next load skips them
    here. Empty class folders and fewer than 2 classes are errors.
    """
    shape = check_input_shape(input_shape)
    validation_split = check_validation_split(validation_split)
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder. Choose a folder with one sub-folder of images per class.")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        found = f"only {class_dirs[0].name!r}" if class_dirs else "none"
        raise DatasetError(f"{root.name} needs at least 2 class sub-folders (one per class, holding its images); "
                           f"found {found}. (Other tasks read images/ and masks/ sub-folders for segmentation, "
                           f"a labels.csv for multi-label, or plain images for reconstruction.)")
    files: list[str] = []
    special: dict[str, str] = {}
    counts: list[int] = []
    for listing in folder_index.scan_images(class_dirs, recursive=True):
        files += listing.files
        special.update(listing.special)
        counts.append(len(listing.files))
    indices = np.repeat(np.arange(len(class_dirs), dtype=np.int64), counts)
    readable, unreadable = usable_images(str(root), files, special, shape[2])
    paths = [files[i] for i in readable] if len(readable) < len(files) else files
    labels = indices[readable] if len(readable) < len(files) else indices
    found_classes = set(np.unique(labels).tolist())
    empty = [d.name for i, d in enumerate(class_dirs) if i not in found_classes]
    skipped = skipped_sentence(unreadable)
    if empty:
        names = ", ".join(repr(n) for n in empty)
        raise DatasetError(f"The class folder{'s' if len(empty) > 1 else ''} {names} in {root.name} "
                           f"{'have' if len(empty) > 1 else 'has'} no readable .png/.jpg/.bmp/.gif images; add images "
                           f"or remove the folder." + (f" {skipped}." if skipped else ""))
    warnings = [skipped] if skipped else []
    y = np.asarray(labels, dtype=np.int64)
    all_paths = np.asarray(paths, dtype=object)
    train_idx, val_idx = split_indices(y, validation_split, seed)
    train = Split.from_files(all_paths[train_idx].tolist(), y[train_idx], shape)
    validation = Split.from_files(all_paths[val_idx].tolist(), y[val_idx], shape) if len(val_idx) else None
    return Dataset(root.name, [d.name for d in class_dirs], train, validation, None, warnings)


# ---------------------------------------------------------------------------------------------
# Does the dataset fit the model?


def normalise_loss(loss: str | None) -> str | None:
    """A loss name as :mod:`engine.tasks` spells it (``mse`` → ``mean_squared_error``; case and
    ``_`` ignored); other names lower-cased."""
    if loss is None:
        return None
    text = str(loss).strip().lower().replace("_", "")
    aliases = {"sparsecategoricalcrossentropy": "sparse_categorical_crossentropy",
               "categoricalcrossentropy": "categorical_crossentropy",
               "binarycrossentropy": "binary_crossentropy",
               "mse": "mean_squared_error", "meansquarederror": "mean_squared_error",
               "mae": "mean_absolute_error", "meanabsoluteerror": "mean_absolute_error",
               "huber": "huber", "huberloss": "huber", "dice": "dice"}
    return aliases.get(text, str(loss).strip().lower())


def check_compatibility(dataset: Dataset, output_units: int, output_activation: str | None, loss: str | None,
                        layer_name: str = "dense") -> list[str]:
    """Human-readable mismatches between the dataset and the model's last layer and loss (empty if fine)."""
    messages: list[str] = []
    classes = len(dataset.class_names)
    units = int(output_units)
    activation = (output_activation or "linear").strip().lower()
    loss_name = normalise_loss(loss)
    binary = classes == 2 and units == 1

    if binary:
        if activation != "sigmoid":
            messages.append(f"The last layer '{layer_name}' has 1 unit for 2 classes, so it needs "
                            f"activation='sigmoid' (it has {activation!r}).")
        if loss_name != "binary_crossentropy":
            messages.append(f"With 1 sigmoid unit for 2 classes use loss='binary_crossentropy' "
                            f"(it is {loss!r}); or set units=2 with softmax and sparse_categorical_crossentropy.")
        return messages

    if units != classes:
        messages.append(f"The dataset has {classes} classes but the last layer '{layer_name}' has {units} "
                        f"unit{'s' if units != 1 else ''}; set units={classes}.")
    if activation == "sigmoid":
        messages.append(f"The last layer '{layer_name}' uses sigmoid, which scores every class independently; "
                        "each image has exactly one class, so use activation='softmax'.")
    elif activation != "softmax":
        messages.append(f"The last layer '{layer_name}' has activation {activation!r}; for picking one of "
                        f"{classes} classes use activation='softmax'.")
    if loss_name is None:
        messages.append("No loss is set; use loss='sparse_categorical_crossentropy' (labels are class numbers).")
    elif loss_name == "categorical_crossentropy":
        messages.append("The labels are class numbers, but categorical_crossentropy expects one-hot labels; "
                        "use loss='sparse_categorical_crossentropy'.")
    elif loss_name == "binary_crossentropy":
        messages.append(f"binary_crossentropy is for 2 classes with 1 sigmoid unit; with {classes} classes "
                        "use loss='sparse_categorical_crossentropy'.")
    elif loss_name in ("mean_squared_error", "mean_absolute_error"):
        messages.append(f"{loss} is a regression loss; for classification use "
                        "loss='sparse_categorical_crossentropy'.")
    elif loss_name != "sparse_categorical_crossentropy":
        messages.append(f"The loss {loss!r} is unusual for classification; "
                        "loss='sparse_categorical_crossentropy' is the usual choice.")
    return messages
