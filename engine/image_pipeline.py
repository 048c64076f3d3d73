"""The ``tf.data`` pipeline of file-backed splits: image files (and mask files) decoded as the
model trains, never all at once. TensorFlow is imported inside the functions only.

Built for folders of a million images:

- **Order.** The paths are one constant tensor; each epoch draws a permutation of the sample
  indices (``stateless_shuffle`` seeded by a per-epoch random value: a new order every epoch, the
  same orders for the same seed) and gathers paths by index. Nothing fills a shuffle buffer
  before the first batch, and no string is copied around.
- **Damaged files.** Files are not opened before training (beyond small folders, see
  :data:`engine.datasets.UP_FRONT_CHECKS`). The pipeline refuses a header claiming more than
  :data:`engine.datasets.MAX_IMAGE_PIXELS` before decoding, drops any sample whose file fails
  (``ignore_errors``), and notes the indices it delivered, a chunk at a time. At the end of an
  epoch the indices never delivered are the skipped files: each is checked once more to say why
  (:func:`engine.datasets._check_image`), remembered in :class:`engine.datasets.ImageChecks` so
  that the next load leaves it out up front, left out of later epochs, and named:
  :func:`take_skipped` gives the sentence for the training loop's warning,
  :func:`skipped_files` all of them.
- **Cache** (``Split.cache``): ``"memory"`` or a folder. The first complete epoch writes every
  decoded, resized sample as uint8 (N×H×W×C bytes: 100,000 64×64 RGB images take 1.2 GB) into an
  array in memory or a file in the folder (``convas-samples-<key>.u8``, reused by later runs on
  the same files and input size); later epochs gather rows from it by the epoch's permutation,
  so the order still changes every epoch. Samples are exact when the images already have the
  input's size (resizing to the same size changes nothing, and uint8 holds the decoded pixels);
  resized ones are within half a grey level (1/510) of the decoded values. Segmentation splits
  (masks) are not cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .datasets import Split

# Samples whose delivery is noted (and, when caching, written) in one Python call.
CHUNK = 64
# Skipped files checked one by one to say why; beyond this many they are named without a reason.
EXPLAINED = 200


# ---------------------------------------------------------------------------------------------
# What the pipelines of a split skipped


@dataclass
class _Skips:
    """The files a split's pipelines skipped: {index: sentence}, and how many were handed on."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    bad: dict[int, str] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    taken: int = 0


_skips: dict[int, _Skips] = {}
_skips_lock = threading.Lock()


def _skips_of(split: Split) -> _Skips:
    with _skips_lock:
        found = _skips.get(id(split))
        if found is None:
            found = _skips[id(split)] = _Skips()
            weakref.finalize(split, _skips.pop, id(split), None)
        return found


def skipped_files(split: Split) -> list[str]:
    """Every file the pipelines of ``split`` skipped so far, one sentence each ("cats/x.png
    cannot be decoded (…)"), in the order found."""
    skips = _skips_of(split)
    with skips.lock:
        return [skips.bad[i] for i in skips.order]


def take_skipped(split: Split) -> str | None:
    """The sentence naming the files skipped since the last call ("Skipped 2 unreadable images:
    …"), or None: what the training loop sends as a warning after each epoch."""
    from .datasets import skipped_sentence

    skips = _skips_of(split)
    with skips.lock:
        new = [skips.bad[i] for i in skips.order[skips.taken:]]
        skips.taken = len(skips.order)
    return skipped_sentence(new) or None


def _name_root(paths: list[str]) -> str:
    """The folder every path is named relative to: the deepest one holding them all (the
    common prefix of the first and last path in sorted order is every path's)."""
    if not paths:
        return ""
    low, high = min(paths), max(paths)
    try:
        common = os.path.commonpath([low, high])
    except ValueError:
        return ""
    return common if common not in (low, high) else os.path.dirname(common)


# ---------------------------------------------------------------------------------------------
# The sample cache


class _SampleStore:
    """Decoded, resized samples as uint8 rows, in memory or in a file (see the module's
    docstring); ``ready`` once a complete epoch has written it."""

    def __init__(self, where: str, paths: list[str], shape: tuple[int, ...]) -> None:
        from .datasets import DatasetError, check_memory, format_bytes

        self.shape = (len(paths), *shape)
        self.size = int(np.prod(self.shape, dtype=np.int64))
        self.lock = threading.Lock()
        self.array: np.ndarray | None = None
        self.valid = np.zeros(len(paths), dtype=bool)
        self.ready = False
        self.file: Path | None = None
        what = f"the sample cache ({len(paths):,} samples of {'×'.join(map(str, shape))} bytes)"
        if where == "memory":
            check_memory(self.size, what, "cache the samples in a folder instead (--cache DIR)")
            return
        folder = Path(where)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatasetError(f"cannot make the cache folder {folder} ({exc.strerror or exc}); choose a "
                               f"folder you can write to") from None
        digest = hashlib.sha1(json.dumps([list(shape), len(paths)]).encode())
        for path in paths:
            digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
        self.file = folder / f"convas-samples-{digest.hexdigest()[:20]}.u8"
        marker = self._marker()
        try:
            stored = json.loads(marker.read_text(encoding="utf-8"))
            if stored.get("shape") == list(self.shape) and self.file.stat().st_size == self.size:
                self.valid[:] = True
                self.valid[np.asarray(stored.get("skipped", []), dtype=np.int64)] = False
                self.array = np.memmap(self.file, dtype=np.uint8, mode="r", shape=self.shape)
                self.ready = True
                return
        except (OSError, ValueError, TypeError, AttributeError, IndexError):
            pass  # no complete cache yet: the first epoch writes it
        import shutil

        free = shutil.disk_usage(folder).free + (self.file.stat().st_size if self.file.exists() else 0)
        if free < self.size:
            raise DatasetError(f"{what} needs {format_bytes(self.size)} in {folder}, which has "
                               f"{format_bytes(free)} free; free some space or choose another folder")

    def _marker(self) -> Path:
        assert self.file is not None
        return self.file.with_suffix(".json")

    def write(self, indices: np.ndarray, rows: np.ndarray) -> None:
        with self.lock:
            if self.ready:
                return
            if self.array is None:
                if self.file is None:
                    self.array = np.empty(self.shape, dtype=np.uint8)
                else:
                    self.array = np.memmap(self.file, dtype=np.uint8, mode="w+", shape=self.shape)
            self.array[indices] = rows

    def complete(self, delivered: np.ndarray) -> None:
        """Every sample but the skipped ones was written: later epochs read from here."""
        with self.lock:
            if self.ready or self.array is None:
                return
            self.valid = delivered.copy()
            if isinstance(self.array, np.memmap):
                self.array.flush()
                from .atomic import write_bytes_atomically
                from .errors import ConvasError

                skipped = np.flatnonzero(~delivered).tolist()
                with contextlib.suppress(ConvasError):  # unwritten: the next run writes the cache again
                    write_bytes_atomically(self._marker(), json.dumps(
                        {"shape": list(self.shape), "skipped": skipped}).encode("utf-8"))
            self.ready = True

    def read(self, indices: np.ndarray) -> np.ndarray:
        assert self.array is not None
        order = np.argsort(indices)  # rows in file order read faster; put back after
        rows = np.empty((len(indices), *self.shape[1:]), dtype=np.uint8)
        rows[order] = self.array[indices[order]]
        return rows


# ---------------------------------------------------------------------------------------------
# One pipeline's epochs


class _Epochs:
    """What one pipeline delivers in the epoch under way: which sample indices came out, and at
    the end which never did (the skipped files)."""

    def __init__(self, split: Split, store: _SampleStore | None) -> None:
        self.split = split
        self.skips = _skips_of(split)
        self.store = store
        self.n = len(split)
        self.seen = np.zeros(self.n, dtype=bool)
        self.expected = np.ones(self.n, dtype=bool)  # what the epoch under way delivers
        self.lock = threading.Lock()

    def start(self) -> tuple[np.bool_, np.ndarray]:
        """A new epoch: (whether the cache answers, which samples to feed)."""
        with self.lock:
            self.seen = np.zeros(self.n, dtype=bool)
            self.expected = np.ones(self.n, dtype=bool)
        keep = np.ones(self.n, dtype=bool)
        with self.skips.lock:
            if self.skips.bad:
                keep[np.fromiter(self.skips.bad, dtype=np.int64)] = False
        ready = self.store is not None and self.store.ready
        if ready:
            assert self.store is not None
            keep &= self.store.valid
        return np.bool_(ready), keep

    def expect(self, order: np.ndarray) -> np.ndarray:
        """This epoch delivers ``order`` only (a worker's share of a cluster's epoch): the
        samples outside it are not missing."""
        with self.lock:
            self.expected = np.zeros(self.n, dtype=bool)
            self.expected[order] = True
        return order

    def record(self, indices: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        with self.lock:
            self.seen[indices] = True
        if rows is not None and self.store is not None:
            self.store.write(indices, rows)
        return indices

    def finish(self) -> np.ndarray:
        """The epoch's end: name, remember and leave out what was never delivered."""
        with self.lock:
            seen, expected = self.seen.copy(), self.expected.copy()
        with self.skips.lock:
            known = set(self.skips.bad)
        missing = [int(i) for i in np.flatnonzero(expected & ~seen) if int(i) not in known]
        if missing:
            self._name(missing)
        if self.store is not None:
            self.store.complete(seen)
        return np.zeros(0, dtype=np.int64)

    def _name(self, missing: list[int]) -> None:
        from .datasets import IMAGE_CHECKS, _check_image

        paths, image_shape = self.split._files()
        channels = int(image_shape[2])
        root = _name_root(paths)
        masks = self.split.mask_paths
        found: dict[int, str] = {}
        for count, i in enumerate(missing):
            path = paths[i]
            name = path[len(root) + 1:] if root and path.startswith(root) else path
            problem = _check_image(Path(path), channels) if count < EXPLAINED else None
            if problem is not None:
                with contextlib.suppress(OSError):  # gone meanwhile: nothing to remember
                    IMAGE_CHECKS.put(path, os.stat(path), channels, problem)
            elif masks is not None:
                mask = masks[i]
                problem = f"has a mask that cannot be read ({mask[len(root) + 1:] if root else mask})"
            else:
                problem = "could not be read while training"
            found[i] = f"{name} {problem}"
        if len(IMAGE_CHECKS) > IMAGE_CHECKS.MAX_ENTRIES:
            IMAGE_CHECKS.save(set(paths))
        else:
            IMAGE_CHECKS.save(set())
        with self.skips.lock:
            for i, sentence in found.items():
                if i not in self.skips.bad:
                    self.skips.bad[i] = sentence
                    self.skips.order.append(i)


# ---------------------------------------------------------------------------------------------
# The pipeline


def _header_weights() -> np.ndarray:
    """A (26, 9) matrix that turns an image file's first 26 bytes into the numbers its header
    declares: PNG width and height (big-endian at 16, 20), GIF's (little-endian 16-bit at 6, 8),
    BMP's (little-endian 32-bit at 18, 22), the BMP header's size (at 14) and an OS/2 BMP's
    16-bit sizes (at 18, 20). One matrix product instead of dozens of small ops keeps tracing
    the pipeline quick."""
    weights = np.zeros((26, 9), dtype=np.int64)
    for column, (at, count, big) in enumerate([(16, 4, True), (20, 4, True), (6, 2, False), (8, 2, False),
                                               (18, 4, False), (22, 4, False), (14, 4, False),
                                               (18, 2, False), (20, 2, False)]):
        for k in range(count):
            weights[at + k, column] = 256 ** (count - 1 - k if big else k)
    return weights


def _pixel_guard(raw):
    """An op that fails when the image in ``raw`` (a string tensor) declares more pixels than
    :data:`engine.datasets.MAX_IMAGE_PIXELS` (read from the PNG, GIF or BMP header, or JPEG's
    frame header), so that a decompression bomb is dropped before it is decoded."""
    import tensorflow as tf

    from .datasets import MAX_IMAGE_PIXELS

    head = tf.strings.substr(tf.strings.join([tf.strings.substr(raw, 0, 26), b"\0" * 26]), 0, 26)
    numbers = tf.linalg.matvec(tf.constant(_header_weights().T),
                               tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64))
    signed = tf.abs(tf.where(numbers >= 2 ** 31, numbers - 2 ** 32, numbers))  # BMP heights may be negative
    first = tf.strings.substr(raw, 0, 4)
    bmp = tf.where(tf.equal(numbers[6], 12), numbers[7] * numbers[8], signed[4] * signed[5])
    pixels = tf.where(tf.equal(first, b"\x89PNG"), numbers[0] * numbers[1],
                      tf.where(tf.equal(first, b"GIF8"), numbers[2] * numbers[3],
                               tf.where(tf.equal(tf.strings.substr(raw, 0, 2), b"BM"), bmp, 0)))
    is_jpeg = tf.equal(tf.strings.substr(raw, 0, 3), b"\xff\xd8\xff")
    pixels = tf.cond(is_jpeg, lambda: tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(raw)[:2], tf.int64)),
                     lambda: pixels)
    # The bare op: tf.debugging's asserts wrap it in a cond that takes longer to trace.
    return tf.raw_ops.Assert(condition=pixels <= MAX_IMAGE_PIXELS, data=["the image declares too many pixels"])


def file_samples(split: Split, shuffle: bool = False, seed: int = 0) -> Any:
    """The unbatched ``tf.data.Dataset`` of ``(x, y)`` samples of a file-backed ``split``: a new
    order every epoch if ``shuffle`` (the same orders for the same ``seed``), files decoded
    after the order is drawn, undecodable ones skipped and named, decoded samples cached if
    ``split.cache`` says so (see the module's docstring)."""
    import warnings

    import tensorflow as tf

    from .datasets import decode_image_bytes, decode_mask_file

    # Files that do not decode are skipped, so Keras cannot count the batches ahead and warns,
    # harmlessly, when an epoch's data ends (training names the skipped files instead).
    warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)

    paths, image_shape = split._files()
    image_shape = tuple(int(d) for d in image_shape)
    n = len(paths)
    scale = float(split.pixel_scale)
    masks = split.mask_paths
    # A cluster worker reads a different share every epoch, so its cache would hold a changing
    # part of the data: sharded splits are not cached.
    store = _SampleStore(split.cache, paths, image_shape) \
        if split.cache and masks is None and split.shard is None else None
    epochs = _Epochs(split, store)
    path_table = tf.constant(np.asarray(paths, dtype=object))
    if masks is not None:
        shift, palette = split.mask_shift, split.mask_palette
        mask_table = tf.constant(np.asarray(masks, dtype=object))
        target_spec = tf.TensorSpec(image_shape[:2], tf.int64)
    else:
        y = np.ascontiguousarray(split.y)
        targets = tf.constant(y)
        target_spec = tf.TensorSpec(y.shape[1:], tf.as_dtype(y.dtype))

    def target(index):
        if masks is not None:
            return decode_mask_file(tf.gather(mask_table, index), image_shape[:2], shift, palette)
        return tf.gather(targets, index)

    @tf.autograph.experimental.do_not_convert  # plain TF ops: tracing is 10× faster
    def decode(index):
        raw = tf.io.read_file(tf.gather(path_table, index))
        with tf.control_dependencies([_pixel_guard(raw)]):
            image = decode_image_bytes(raw, image_shape)
        return index, image, target(index)

    def scaled(images):
        return images * scale if scale != 1.0 else images

    @tf.autograph.experimental.do_not_convert  # plain TF ops: tracing is 10× faster
    def record(indices, images, labels):
        if store is None:
            noted = tf.numpy_function(epochs.record, [indices], tf.int64, stateful=True)
        else:
            rows = tf.cast(tf.round(images * 255.0), tf.uint8)
            noted = tf.numpy_function(epochs.record, [indices, rows], tf.int64, stateful=True)
        with tf.control_dependencies([noted]):  # delivered only once noted
            return scaled(tf.identity(images)), labels

    @tf.autograph.experimental.do_not_convert  # plain TF ops: tracing is 10× faster
    def end(_):
        noted = tf.numpy_function(epochs.finish, [], tf.int64, stateful=True)
        with tf.control_dependencies([noted]):
            return (tf.zeros((0, *image_shape), tf.float32),
                    tf.zeros((0, *target_spec.shape), target_spec.dtype))

    def decoded(order):
        samples = tf.data.Dataset.from_tensor_slices(order) \
            .map(decode, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
        chunks = samples.batch(CHUNK).map(record)
        return chunks.concatenate(tf.data.Dataset.range(1).map(end)).unbatch()

    def cached(order):
        assert store is not None, "read only when the store is ready"
        reader = store.read

        @tf.autograph.experimental.do_not_convert  # plain TF ops: tracing is 10× faster
        def read(indices):
            rows = tf.numpy_function(reader, [indices], tf.uint8, stateful=False)
            rows.set_shape((None, *image_shape))
            return scaled(tf.image.convert_image_dtype(rows, tf.float32)), tf.gather(targets, indices)

        return tf.data.Dataset.from_tensor_slices(order).batch(CHUNK) \
            .map(read, num_parallel_calls=tf.data.AUTOTUNE).unbatch()

    @tf.autograph.experimental.do_not_convert  # plain TF ops: tracing is 10× faster
    def epoch(key):
        ready, keep = tf.numpy_function(epochs.start, [], (tf.bool, tf.bool), stateful=True)
        ready.set_shape(())
        keep.set_shape((n,))
        order = tf.range(n, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, seed=tf.stack([key, tf.constant(seed, tf.int64)]))
        order = tf.boolean_mask(order, tf.gather(keep, order))
        if split.shard is not None:  # this worker's share of the order every worker draws alike
            index, count = split.shard
            order = tf.numpy_function(epochs.expect, [order[index::count]], tf.int64, stateful=True)
            order.set_shape((None,))
        if store is None:
            return decoded(order)
        return tf.cond(ready, lambda: cached(order), lambda: decoded(order))

    # One random key per iteration (a new permutation each epoch), the same keys for the same seed.
    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1) if shuffle \
        else tf.data.Dataset.from_tensors(tf.constant(0, tf.int64))
    return keys.flat_map(epoch)
