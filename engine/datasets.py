"""Datasets to train a design on: built-in, generated, and loaded from .npz, .csv or image folders.

Pure numpy/stdlib (plus scikit-learn for the built-in digits). TensorFlow is imported only inside
``Split.as_tf_dataset``. Every loader returns a :class:`Dataset` whose splits hold float32 images in
[0, 1] shaped ``(N, H, W, C)`` to match the model's input, and int64 class indices.

Image folders are not loaded into memory: their splits hold file paths and labels (``x`` is None)
and images are decoded lazily by ``as_tf_dataset``.
"""

from __future__ import annotations

import csv
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import ConvasError


class DatasetError(ConvasError):
    """A dataset could not be loaded or does not fit the model; the message says how to fix it."""


# ---------------------------------------------------------------------------------------------
# Data classes


@dataclass
class Split:
    """One part of a dataset.

    In-memory splits hold ``x`` (float32, ``(N, *sample_shape)``, values in [0, 1]) and ``y``
    (int64 class indices, ``(N,)``). File-backed splits (see :meth:`from_files`) have ``x=None``,
    hold ``paths`` and ``image_shape`` instead and decode the images lazily in ``as_tf_dataset``.
    """

    x: np.ndarray | None
    y: np.ndarray
    paths: list[str] | None = None
    image_shape: tuple[int, ...] | None = None

    @classmethod
    def from_files(cls, paths: Sequence[str], labels: Sequence[int], image_shape: Sequence[int]) -> Split:
        """A split whose images stay on disk until ``as_tf_dataset`` decodes them."""
        return cls(x=None, y=np.asarray(labels, dtype=np.int64), paths=[str(p) for p in paths],
                   image_shape=tuple(int(d) for d in image_shape))

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
        if self.x is not None:
            return tuple(int(d) for d in self.x.shape[1:])
        return tuple(self.image_shape or ())

    def as_tf_dataset(self, batch_size: int, shuffle: bool = False, seed: int = 0):
        """A batched ``tf.data.Dataset`` of ``(x, y)``; shuffled (reproducibly by seed) if asked."""
        import tensorflow as tf

        if self.x is not None:
            data = tf.data.Dataset.from_tensor_slices((self.x, self.y))
        else:
            paths, image_shape = self._files()
            data = tf.data.Dataset.from_tensor_slices((np.asarray(paths, dtype=str), self.y))

            def decode(path, label):
                return decode_image_file(path, image_shape), label

            if shuffle:  # shuffle cheap paths, not decoded images
                data = data.shuffle(max(1, len(self)), seed=seed, reshuffle_each_iteration=True)
                shuffle = False
            data = data.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        if shuffle:
            data = data.shuffle(max(1, len(self)), seed=seed, reshuffle_each_iteration=True)
        return data.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)

    def images(self, indices) -> np.ndarray:
        """The float32 ``(n, H, W, C)`` images at ``indices`` (an int or a sequence of ints), as
        the model sees them; a file-backed split decodes just those files."""
        indices = np.atleast_1d(np.asarray(indices, dtype=np.intp))
        if self.x is not None:
            return self.x[indices]
        paths, image_shape = self._files()
        if not len(indices):
            return np.zeros((0, *image_shape), dtype=np.float32)
        return np.stack([np.asarray(decode_image_file(paths[int(i)], image_shape))
                         for i in indices]).astype(np.float32)


def decode_image_file(path, image_shape: Sequence[int]):
    """Read and decode one image file (a path string or string tensor) into a float32 tensor of
    ``image_shape`` with values in [0, 1]. Shared by the tf.data pipeline and :meth:`Split.images`
    so that a picture shown to the user is exactly what the model was fed."""
    import tensorflow as tf

    height, width, channels = (int(d) for d in image_shape)
    raw = tf.io.read_file(path)
    image = tf.io.decode_image(raw, channels=channels, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)  # uint8 -> [0, 1]
    image = tf.image.resize(image, (height, width), method="bilinear")
    image = tf.clip_by_value(image, 0.0, 1.0)
    image.set_shape((height, width, channels))
    return image


@dataclass
class Dataset:
    name: str
    class_names: list[str]
    train: Split
    validation: Split | None = None
    test: Split | None = None
    warnings: list[str] = field(default_factory=list)  # things skipped while loading, for the user

    def sample_shape(self) -> tuple[int, ...]:
        return self.train.sample_shape

    def class_counts(self) -> dict[str, int]:
        """How many training samples each class has."""
        counts = np.bincount(self.train.y, minlength=len(self.class_names))
        return {name: int(counts[i]) for i, name in enumerate(self.class_names)}


# ---------------------------------------------------------------------------------------------
# Helpers


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or any(d <= 0 for d in shape):
        raise DatasetError(f"Image datasets need an input shape (height, width, channels); got {tuple(input_shape)}. "
                           "Set the model's Input to e.g. (28, 28, 1).")
    if shape[2] not in (1, 3):
        raise DatasetError(f"The model's input has {shape[2]} channels; image datasets support 1 (grey) or 3 (RGB).")
    return shape


def _check_validation_split(validation_split: float) -> float:
    if not 0.0 <= float(validation_split) < 1.0:
        raise DatasetError(f"validation_split must be at least 0 and below 1; got {validation_split}.")
    return float(validation_split)


def resize_bilinear(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``(N, H, W, C)`` images bilinearly (half-pixel centres, like tf.image.resize)."""
    images = np.asarray(images, dtype=np.float32)
    _, h, w, _ = images.shape
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
    top = images[:, y0][:, :, x0] * (1 - wx) + images[:, y0][:, :, x1] * wx
    bottom = images[:, y1][:, :, x0] * (1 - wx) + images[:, y1][:, :, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def _fit_images(x: np.ndarray, input_shape: tuple[int, int, int], what: str) -> np.ndarray:
    """Scale to float32 [0, 1], add/adapt channels and resize to the model's input."""
    height, width, channels = input_shape
    x = np.asarray(x)
    if x.dtype.kind not in "uifb":
        raise DatasetError(f"{what}: images must be numbers; got values of type {x.dtype}.")
    if x.dtype.kind == "f" and np.isnan(x).any():
        raise DatasetError(f"{what}: the images contain NaN (missing) values; remove or fill them.")
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
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    else:
        x = x.astype(np.float32)
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DatasetError(f"{what}: pixel values range from {x.min():g} to {x.max():g}; "
                               "use 0..255 or 0..1.")
        if x.size and x.max() > 1.0:
            x = x / 255.0
    have = x.shape[3]
    if have != channels:
        if have == 1 and channels == 3:
            x = np.repeat(x, 3, axis=3)
        elif have in (3, 4) and channels == 1:
            x = (x[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
        elif have == 4 and channels == 3:
            x = x[..., :3]
        else:
            raise DatasetError(f"{what}: the images have {have} channels but the model's input wants {channels}.")
    x = resize_bilinear(x, height, width)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def _labels_to_indices(y: np.ndarray, what: str, class_names: list[str] | None = None):
    """Turn labels into int64 indices; returns (indices, class_names)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2:  # one-hot (or probabilities)
        if y.dtype.kind not in "uifb":
            raise DatasetError(f"{what}: two-dimensional labels must be one-hot numbers.")
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise DatasetError(f"{what}: the labels contain NaN (missing) values; remove those samples.")
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
            raise DatasetError(f"{what}: the labels contain NaN (missing) values; remove those samples.")
        if not np.all(np.equal(np.floor(y), y)):
            bad = y[np.not_equal(np.floor(y), y)][:5]
            raise DatasetError(f"{what}: labels must be whole class numbers (0, 1, 2, ...); found {bad.tolist()}.")
    elif y.dtype.kind not in "ui":
        raise DatasetError(f"{what}: labels must be integers or names; got values of type {y.dtype}.")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise DatasetError(f"{what}: labels must be 0 or more; found {int(y.min())}.")
    count = int(y.max()) + 1 if y.size else 0
    names = class_names or [str(i) for i in range(count)]
    if count > len(names):
        raise DatasetError(f"{what}: label {count - 1} is beyond the {len(names)} training classes.")
    return y, names


def _check_lengths(x_len: int, y_len: int, what: str) -> None:
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


def _make_dataset(name, class_names, x, y, validation_split, seed, test=None, warnings=None) -> Dataset:
    train_idx, val_idx = split_indices(y, validation_split, seed)
    validation = Split(x[val_idx], y[val_idx]) if len(val_idx) else None
    return Dataset(name, list(class_names), Split(x[train_idx], y[train_idx]), validation, test,
                   list(warnings or []))


# ---------------------------------------------------------------------------------------------
# Built-in and generated datasets


def load_digits_dataset(input_shape=(28, 28, 1), validation_split: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), resized to the input."""
    shape = _check_input_shape(input_shape)
    validation_split = _check_validation_split(validation_split)
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


def make_shapes_dataset(n: int = 2000, input_shape=(32, 32, 1), validation_split: float = 0.2, seed: int = 0,
                        classes: Sequence[str] = SHAPE_CLASSES) -> Dataset:
    """A generated, balanced dataset of filled or outlined shapes at random positions, sizes and rotations."""
    height, width, channels = _check_input_shape(input_shape)
    validation_split = _check_validation_split(validation_split)
    classes = list(classes)
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if unknown:
        raise DatasetError(f"Unknown shape classes {unknown}; choose from {', '.join(SHAPE_CLASSES)}.")
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise DatasetError("The shapes dataset needs at least 2 different classes.")
    if n < len(classes):
        raise DatasetError(f"Ask for at least {len(classes)} samples (one per class); got n={n}.")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(classes)).astype(np.int64)
    x = np.empty((n, height, width, channels), dtype=np.float32)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = min(height, width)
    for i in range(n):
        kind = classes[y[i]]
        size = rng.uniform(0.18, 0.38) * scale
        cy = rng.uniform(size * 0.9, height - size * 0.9) if height > 2 * size * 0.9 else height / 2
        cx = rng.uniform(size * 0.9, width - size * 0.9) if width > 2 * size * 0.9 else width / 2
        angle = rng.uniform(0, 2 * math.pi)
        dy, dx = rows - cy, cols - cx
        u = dx * math.cos(angle) + dy * math.sin(angle)
        v = -dx * math.sin(angle) + dy * math.cos(angle)
        mask = _shape_mask(kind, u, v, size)
        if rng.random() < 0.4:  # outlined
            thickness = max(1.0, size * (0.1 if kind == "cross" else 0.18))
            mask &= ~_shape_mask(kind, u, v, size, inset=thickness)
        background = rng.uniform(0.0, 0.25, size=channels)
        foreground = rng.uniform(0.6, 1.0, size=channels)
        image = np.where(mask[..., None], foreground, background)
        image = image + rng.normal(0.0, 0.05, size=image.shape)
        x[i] = np.clip(image, 0.0, 1.0)
    return _make_dataset("shapes", classes, x, y, validation_split, seed)


# ---------------------------------------------------------------------------------------------
# Files


def load_npz_dataset(path, input_shape, validation_split: float = 0.2, seed: int = 0) -> Dataset:
    """A .npz with ``x_train``/``y_train`` (+ optional ``x_test``/``y_test``, like mnist.npz) or ``x``/``y``."""
    shape = _check_input_shape(input_shape)
    validation_split = _check_validation_split(validation_split)
    path = Path(path)
    name = path.name
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist.") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise DatasetError(f"{name} is not a readable .npz file ({exc}).") from None
    if not hasattr(archive, "files"):
        raise DatasetError(f"{name} holds a single array, not a .npz archive with x_train/y_train or x/y.")
    with archive:
        keys = set(archive.files)
        if {"x_train", "y_train"} <= keys:
            x_key, y_key = "x_train", "y_train"
        elif {"x", "y"} <= keys:
            x_key, y_key = "x", "y"
        else:
            raise DatasetError(f"{name} has arrays {sorted(keys)} but needs 'x_train' and 'y_train' "
                               "(optionally 'x_test' and 'y_test'), or 'x' and 'y'.")
        has_test = x_key == "x_train" and ("x_test" in keys or "y_test" in keys)
        if has_test and not {"x_test", "y_test"} <= keys:
            missing = "y_test" if "x_test" in keys else "x_test"
            raise DatasetError(f"{name} has a test split but no '{missing}'; add it or remove the other.")
        try:
            x_raw, y_raw = archive[x_key], archive[y_key]
            test_raw = (archive["x_test"], archive["y_test"]) if has_test else None
        except ValueError as exc:  # object arrays need pickle, which we never allow
            raise DatasetError(f"{name} stores Python objects, which Convas does not load for safety; "
                               f"save plain numeric arrays ({exc}).") from None
    _check_lengths(len(x_raw), len(y_raw), f"{name} ({x_key}/{y_key})")
    y, class_names = _labels_to_indices(y_raw, f"{name} ({y_key})")
    x = _fit_images(x_raw, shape, f"{name} ({x_key})")
    test = None
    if test_raw is not None:
        _check_lengths(len(test_raw[0]), len(test_raw[1]), f"{name} (x_test/y_test)")
        y_test, class_names = _labels_to_indices(test_raw[1], f"{name} (y_test)", class_names)
        test = Split(_fit_images(test_raw[0], shape, f"{name} (x_test)"), y_test)
    return _make_dataset(path.stem, class_names, x, y, validation_split, seed, test)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path: Path, label_column, shape, what: str, class_names: list[str] | None = None):
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist.") from None
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
    for number, row in enumerate(rows, start=2 if header else 1):
        if len(row) != width:
            raise DatasetError(f"{what}: row {number} has {len(row)} values but the first row has {width}.")
    if not rows:
        raise DatasetError(f"{what} has a header but no data rows.")
    table = np.asarray(rows, dtype=str)
    labels = np.char.strip(table[:, col])
    pixels_text = np.delete(table, col, axis=1)
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
    if all(_is_number(s) for s in labels[:1000]) and all(_is_number(s) for s in labels):
        y_values = labels.astype(np.float64)
        if class_names is not None and not all(name.lstrip("-").isdigit() for name in class_names):
            y_values = labels  # training labels were names: look these up by name too
    else:
        y_values = labels
    y, names = _labels_to_indices(y_values, f"{what} (labels)", class_names)
    x = _fit_images(pixels, shape, what)
    return x, y, names


def load_csv_dataset(path, input_shape, label_column: str | int | None = "label", validation_split: float = 0.2,
                     seed: int = 0, test_path=None) -> Dataset:
    """A CSV with one label column plus pixel columns (the MNIST-as-CSV layout), with or without header.

    The label column is the one named ``label_column`` when there is a header holding it, the column
    at that index when it is an int, and otherwise the first column. Numeric labels are class indices;
    string labels are mapped to sorted class names. ``test_path`` optionally names a test CSV.
    """
    shape = _check_input_shape(input_shape)
    validation_split = _check_validation_split(validation_split)
    path = Path(path)
    x, y, names = _read_csv(path, label_column, shape, path.name)
    test = None
    if test_path is not None:
        test_path = Path(test_path)
        x_test, y_test, names = _read_csv(test_path, label_column, shape, test_path.name, names)
        test = Split(x_test, y_test)
    return _make_dataset(path.stem, names, x, y, validation_split, seed, test)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def _image_problem(path: Path) -> str | None:
    """Why an image file cannot be decoded, judged from its header (None if it looks fine)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(33)
    except OSError as exc:
        return f"cannot be opened ({exc.strerror})"
    suffix = path.suffix.lower()
    if not head:
        return "is empty"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(head) < 33 or head[12:16] != b"IHDR":
            return "is a truncated PNG"
        w, h = struct.unpack(">II", head[16:24])
        if w == 0 or h == 0:
            return "is a PNG of size 0"
        if zlib.crc32(head[12:29]) & 0xFFFFFFFF != struct.unpack(">I", head[29:33])[0]:
            return "is a damaged PNG"
        return None
    if head.startswith(b"\xff\xd8\xff"):
        return None
    if head.startswith(b"BM") and len(head) >= 26:
        return None
    kinds = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}
    return f"is not a valid {kinds.get(suffix, 'image')} file"


def load_image_folder(path, input_shape, validation_split: float = 0.2, seed: int = 0) -> Dataset:
    """One sub-folder per class holding .png/.jpg/.bmp images; images stay on disk (lazy splits).

    Unreadable images (empty, truncated or not images, judged from their headers) are skipped and
    listed in ``Dataset.warnings``. Empty class folders and fewer than 2 classes are errors.
    """
    shape = _check_input_shape(input_shape)
    validation_split = _check_validation_split(validation_split)
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder. Choose a folder with one sub-folder of images per class.")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        found = f"only {class_dirs[0].name!r}" if class_dirs else "none"
        raise DatasetError(f"{root.name} needs at least 2 class sub-folders (one per class, holding its images); "
                           f"found {found}.")
    paths: list[str] = []
    labels: list[int] = []
    empty: list[str] = []
    unreadable: list[str] = []
    for index, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not p.name.startswith("."))
        good = 0
        for file in files:
            problem = _image_problem(file)
            if problem:
                unreadable.append(f"{file.relative_to(root)} {problem}")
                continue
            paths.append(str(file))
            labels.append(index)
            good += 1
        if good == 0:
            empty.append(class_dir.name)
    if empty:
        names = ", ".join(repr(n) for n in empty)
        raise DatasetError(f"The class folder{'s' if len(empty) > 1 else ''} {names} in {root.name} "
                           f"{'have' if len(empty) > 1 else 'has'} no readable .png/.jpg/.bmp images; add images "
                           "or remove the folder.")
    warnings = []
    if unreadable:
        listed = "; ".join(unreadable[:10]) + ("; ..." if len(unreadable) > 10 else "")
        warnings.append(f"Skipped {len(unreadable)} unreadable image{'s' if len(unreadable) > 1 else ''}: {listed}")
    y = np.asarray(labels, dtype=np.int64)
    all_paths = np.asarray(paths, dtype=object)
    train_idx, val_idx = split_indices(y, validation_split, seed)
    train = Split.from_files(all_paths[train_idx].tolist(), y[train_idx], shape)
    validation = Split.from_files(all_paths[val_idx].tolist(), y[val_idx], shape) if len(val_idx) else None
    return Dataset(root.name, [d.name for d in class_dirs], train, validation, None, warnings)


# ---------------------------------------------------------------------------------------------
# Does the dataset fit the model?


def _normalise_loss(loss: str | None) -> str | None:
    if loss is None:
        return None
    text = str(loss).strip().lower().replace("_", "")
    aliases = {"sparsecategoricalcrossentropy": "sparse_categorical_crossentropy",
               "categoricalcrossentropy": "categorical_crossentropy",
               "binarycrossentropy": "binary_crossentropy",
               "mse": "mean_squared_error", "meansquarederror": "mean_squared_error",
               "mae": "mean_absolute_error", "meanabsoluteerror": "mean_absolute_error"}
    return aliases.get(text, str(loss).strip().lower())


def check_compatibility(dataset: Dataset, output_units: int, output_activation: str | None, loss: str | None,
                        layer_name: str = "dense") -> list[str]:
    """Human-readable mismatches between the dataset and the model's last layer and loss (empty if fine)."""
    messages: list[str] = []
    classes = len(dataset.class_names)
    units = int(output_units)
    activation = (output_activation or "linear").strip().lower()
    loss_name = _normalise_loss(loss)
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
