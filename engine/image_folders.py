"""Folders of images for every task: which layout a folder has, and the loaders for the layouts
beyond one sub-folder per class (:func:`engine.datasets.load_image_folder`).

- ``images/`` + ``masks/`` (or ``trimaps/``, ``annotations/trimaps/``): segmentation. Each mask
  is a greyscale PNG of class indices with the stem of its image (the Oxford-IIIT Pets trimaps
  and Keras's segmentation example).
- a ``labels.csv`` beside the images: multi-label, one row per image naming its labels.
- images directly in the folder, no class folders: images without targets (reconstruction).

Images and masks stay on disk (lazy splits); every file is checked once before training and the
result cached (:class:`engine.datasets.ImageChecks`, :class:`MaskChecks`). TensorFlow is imported
only to decode files.
"""

from __future__ import annotations

import csv
import io
import os
import re
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .datasets import (IMAGE_SUFFIXES, Dataset, DatasetError, ImageChecks, Split, _check_input_shape,
                       _check_validation_split, _listing, _not_regular, decode_pixels, image_files,
                       load_image_folder, open_regular_file, readable_images, skipped_sentence,
                       split_indices)
from .tasks import Task, TargetKind

MASK_FOLDERS = ("masks", "trimaps", "annotations/trimaps")
LABEL_FILE = "labels.csv"
# Masks are checked one by one (and cached); beyond this many, an even sample decides the classes.
MASK_SAMPLE = 2000
_FILE_COLUMNS = ("filename", "file", "image", "path", "file_name", "image_id", "id", "name")
_LABELS_COLUMNS = ("labels", "label", "tags", "classes")


def load_folder(path, input_shape, validation_split: float = 0.2, seed: int = 0, *,
                task: Task | None = None, output_shape: Sequence[int | None] | None = None) -> Dataset:
    """The dataset in the folder ``path``, read by its layout (see the module's docstring);
    ``task`` settles a folder that has two layouts, and asks for one it lacks with a fix."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder. Choose a folder with one sub-folder of images per class.")
    images_dir, masks_dir = segmentation_folders(root)
    if images_dir is not None and masks_dir is not None and task is not Task.CLASSIFICATION:
        return load_mask_folder(root, input_shape, validation_split, seed, output_shape=output_shape)
    if task is Task.SEGMENTATION:
        raise DatasetError(f"{root.name} has no images/ and masks/ sub-folders, which segmentation needs: put "
                           f"the images in {root.name}/images and, for each, a greyscale PNG of class "
                           f"numbers with the same name in {root.name}/masks")
    labels_file = root / LABEL_FILE
    class_dirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if labels_file.exists() and not (task is Task.CLASSIFICATION and len(class_dirs) >= 2):
        return load_labelled_folder(root, input_shape, validation_split, seed)
    if task is Task.MULTILABEL:
        raise DatasetError(f"{root.name} has no {LABEL_FILE}, which multi-label training needs: a CSV with a "
                           f"'filename' column and a 'labels' column listing each image's labels "
                           f"(separated by spaces or ';'), or one 0/1 column per label")
    if len(class_dirs) < 2 and image_files(root, recursive=False):
        return load_unlabelled_folder(root, input_shape, validation_split, seed)
    return load_image_folder(root, input_shape, validation_split, seed)


def segmentation_folders(root: Path) -> tuple[Path | None, Path | None]:
    """The ``images`` and masks folders of a segmentation layout (None where missing)."""
    images = root / "images"
    masks = next((root / name for name in MASK_FOLDERS if (root / name).is_dir()), None)
    return (images if images.is_dir() else None), masks


def _random_split(count: int, validation_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return split_indices(np.zeros(count, dtype=np.int64), validation_split, seed)


# ---------------------------------------------------------------------------------------------
# Images without targets


def load_unlabelled_folder(path, input_shape, validation_split: float = 0.2, seed: int = 0) -> Dataset:
    """The images directly in ``path`` (no class folders), without targets (``TargetKind.NONE``):
    what an autoencoder learns from. Unreadable files are skipped and named in the warnings."""
    shape = _check_input_shape(input_shape)
    validation_split = _check_validation_split(validation_split)
    root = Path(path)
    files = image_files(root, recursive=False)
    readable, unreadable = readable_images(root, files, shape[2])
    skipped = skipped_sentence(unreadable)
    if not readable:
        raise DatasetError(f"{root.name} has no readable .png/.jpg/.bmp images; add images, or one sub-folder "
                           f"per class." + (f" {skipped}." if skipped else ""))
    paths = np.asarray([str(files[i]) for i in readable], dtype=object)
    train_idx, val_idx = _random_split(len(paths), validation_split, seed)

    def split(indices: np.ndarray) -> Split:
        return Split.from_files(paths[indices].tolist(), np.zeros((len(indices), 0), np.float32), shape)

    return Dataset(root.name, [], split(train_idx), split(val_idx) if len(val_idx) else None, None,
                   [skipped] if skipped else [], target=TargetKind.NONE)


# ---------------------------------------------------------------------------------------------
# Multi-label: a folder of images and labels.csv


def split_labels(text: str) -> list[str]:
    """The labels in one cell: separated by ``;``, ``|``, ``,`` or spaces (in that preference:
    a cell with ``;`` keeps spaces inside label names)."""
    for separator in (";", "|", ","):
        if separator in text:
            return [part.strip() for part in text.split(separator) if part.strip()]
    return text.split()


def read_label_table(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(file names, label names, multi-hot float32 rows) from a labels CSV: a file column
    (``filename``, ``file``, ``image`` or ``path``) and either a ``labels`` column listing each
    image's labels or one 0/1 column per label."""
    what = path.name
    try:
        with io.TextIOWrapper(open_regular_file(path, what), newline="", encoding="utf-8-sig") as handle:
            rows = [[c.strip() for c in row] for row in csv.reader(handle) if row and any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{what} could not be read as CSV text ({exc}).") from None
    if len(rows) < 2:
        raise DatasetError(f"{what} needs a header row and one row per image; it has {len(rows)} row"
                           f"{'s' if len(rows) != 1 else ''}.")
    header = [h.lower() for h in rows[0]]
    file_col = next((header.index(c) for c in _FILE_COLUMNS if c in header), None)
    if file_col is None:
        raise DatasetError(f"{what} has no column naming the image files; name the first column 'filename' "
                           f"(its header has {', '.join(rows[0][:5])}).")
    body = rows[1:]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DatasetError(f"{what}: row {number} has {len(row)} values but the header has {len(header)}.")
    files = [row[file_col] for row in body]
    labels_col = next((header.index(c) for c in _LABELS_COLUMNS if c in header), None)
    if labels_col is not None and len(header) == 2:
        lists = [split_labels(row[labels_col]) for row in body]
        names = sorted({label for labels in lists for label in labels})
        if not names:
            raise DatasetError(f"{what}: the '{rows[0][labels_col]}' column names no labels; list each image's "
                               f"labels there, separated by spaces or ';'.")
        index = {name: i for i, name in enumerate(names)}
        y = np.zeros((len(body), len(names)), dtype=np.float32)
        for i, labels in enumerate(lists):
            y[i, [index[label] for label in labels]] = 1.0
        return files, names, y
    label_cols = [i for i in range(len(header)) if i != file_col]
    if not label_cols:
        raise DatasetError(f"{what} has only the file column; add a 'labels' column listing each image's labels.")
    names = [rows[0][i] for i in label_cols]
    table = [[row[i] for i in label_cols] for row in body]
    bad = next(((r, c) for r, row in enumerate(table) for c, v in enumerate(row) if v not in ("0", "1", "0.0",
                                                                                          "1.0")), None)
    if bad is not None:
        r, c = bad
        raise DatasetError(f"{what}: row {r + 2} has {table[r][c]!r} in the column '{names[c]}', but label columns "
                           f"hold 1 (applies) or 0; or use one 'labels' column listing each image's labels.")
    return files, names, np.asarray(table, dtype=np.float32)


def load_labelled_folder(path, input_shape, validation_split: float = 0.2, seed: int = 0) -> Dataset:
    """A folder of images with a ``labels.csv`` naming each image's labels (multi-hot targets,
    ``class_names`` the sorted labels or the label columns). Files are named relative to the
    folder, with or without their extension. Rows whose image is missing or unreadable are skipped
    and named in the warnings, as are images the table does not list."""
    shape = _check_input_shape(input_shape)
    validation_split = _check_validation_split(validation_split)
    root = Path(path)
    names_in_table, label_names, y = read_label_table(root / LABEL_FILE)
    on_disk = image_files(root)
    by_name = {f.relative_to(root).as_posix(): f for f in on_disk}
    by_stem: dict[str, Path] = {}
    for f in on_disk:
        by_stem.setdefault(f.relative_to(root).with_suffix("").as_posix(), f)
    files: list[Path] = []
    rows: list[int] = []
    missing: list[str] = []
    for row, name in enumerate(names_in_table):
        key = name.replace("\\", "/").lstrip("./") if name.startswith("./") else name.replace("\\", "/")
        file = by_name.get(key) or (by_stem.get(key) if Path(key).suffix.lower() not in IMAGE_SUFFIXES else None)
        if file is None:
            missing.append(name)
        else:
            files.append(file)
            rows.append(row)
    readable, unreadable = readable_images(root, files, shape[2])
    warnings: list[str] = []
    if missing:
        warnings.append(f"Skipped {len(missing)} row{'s' if len(missing) > 1 else ''} of {LABEL_FILE} whose image "
                        f"is not in {root.name}: {_listing(missing)}")
    if unreadable:
        warnings.append(skipped_sentence(unreadable))
    listed = {files[i] for i in range(len(files))}
    unlisted = [f.relative_to(root).as_posix() for f in on_disk if f not in listed]
    if unlisted:
        warnings.append(f"Left out {len(unlisted)} image{'s' if len(unlisted) > 1 else ''} that {LABEL_FILE} does "
                        f"not list: {_listing(unlisted)}")
    if not readable:
        raise DatasetError(f"none of the {len(names_in_table)} images {LABEL_FILE} lists is a readable image in "
                           f"{root.name}; name them relative to that folder (e.g. 'photo1.jpg'). "
                           + " ".join(warnings))
    paths = np.asarray([str(files[i]) for i in readable], dtype=object)
    targets = y[[rows[i] for i in readable]]
    train_idx, val_idx = _random_split(len(paths), validation_split, seed)

    def split(indices: np.ndarray) -> Split:
        return Split.from_files(paths[indices].tolist(), targets[indices], shape)

    return Dataset(root.name, label_names, split(train_idx), split(val_idx) if len(val_idx) else None, None,
                   warnings, target=TargetKind.MULTI_HOT)


# ---------------------------------------------------------------------------------------------
# Segmentation: images/ and masks/


class MaskChecks(ImageChecks):
    """What each mask file holds (its problem, or its smallest and largest value), remembered by
    path, size and modification time like :class:`ImageChecks`, in its own cache file."""

    @staticmethod
    def cache_file() -> Path:
        return ImageChecks.cache_file().with_name("mask-checks.json")


MASK_CHECKS = MaskChecks()


def _mask_header_problem(path: Path) -> str | None:
    """Why a mask file cannot hold class numbers, from its PNG header (None if it can): not a
    PNG, or a colour, palette or 16-bit PNG (whose decoded values are colours, not classes)."""
    try:
        with open_regular_file(path, path.name) as handle:
            head = handle.read(33)
    except DatasetError as exc:
        return str(exc).removeprefix(path.name + " ").split(";")[0]
    if not head.startswith(b"\x89PNG\r\n\x1a\n") or len(head) < 33 or head[12:16] != b"IHDR":
        return "is not a PNG file (masks are PNGs of class numbers)"
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    if width == 0 or height == 0:
        return f"is an image of size {width}×{height}"
    if colour == 3:
        return "is a palette PNG, whose colours Convas would read instead of its class numbers; save it as 8-bit grey"
    if colour in (2, 6):
        return "is a colour PNG; a mask is an 8-bit grey PNG whose values are class numbers"
    if depth != 8:
        return f"has {depth}-bit pixels; save it as an 8-bit grey PNG"
    return None


def _mask_summary(path: Path) -> list | str:
    """[smallest, largest value, height, width] of a mask file, or why it cannot be read."""
    problem = _mask_header_problem(path)
    if problem:
        return problem
    import tensorflow as tf

    try:
        with open_regular_file(path, path.name) as handle:
            values = np.asarray(decode_pixels(handle.read(), 1))
    except (tf.errors.OpError, ValueError, OSError, DatasetError) as exc:
        return f"cannot be decoded ({str(getattr(exc, 'message', exc)).splitlines()[0]})"
    return [int(values.min()), int(values.max()), int(values.shape[0]), int(values.shape[1])]


def check_masks(files: Sequence[Path], checks: MaskChecks | None = None) -> list[list | str]:
    """For each mask file, [smallest, largest value, height, width] or why it cannot be used;
    cached (see :class:`MaskChecks`), the rest decoded on a thread pool."""
    checks = checks or MASK_CHECKS
    results: list[list | str] = [""] * len(files)
    todo: list[tuple[int, str, os.stat_result]] = []
    for i, file in enumerate(files):
        key = os.path.abspath(file)
        try:
            st = file.stat()
        except OSError as exc:
            results[i] = f"cannot be opened ({exc.strerror or exc})"
            continue
        kind = _not_regular(st.st_mode)
        if kind is not None:
            results[i] = f"is {kind}, not a regular file"
            continue
        known, value = checks.get(key, st, 0)
        if known:
            results[i] = value
        else:
            todo.append((i, key, st))
    if todo:
        from concurrent.futures import ThreadPoolExecutor

        from .quiet_tf import importing_tensorflow

        with importing_tensorflow():
            import tensorflow  # noqa: F401

        workers = max(1, min(8, os.cpu_count() or 2, len(todo)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convas-mask-check") as pool:
            found = list(pool.map(lambda item: _mask_summary(files[item[0]]), todo))
        for (i, key, st), value in zip(todo, found):
            results[i] = value
            checks.put(key, st, 0, value)
        checks.save({key for _, key, _ in todo})
    return results


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def load_mask_folder(path, input_shape, validation_split: float = 0.2, seed: int = 0, *,
                     output_shape: Sequence[int | None] | None = None) -> Dataset:
    """A segmentation folder: ``images/`` and ``masks/`` whose files pair by stem; each mask is an
    8-bit grey PNG whose values are class numbers, resized nearest-neighbour to the input.

    The classes are 0 up to the largest mask value (over up to :data:`MASK_SAMPLE` masks); their
    names come from an optional ``classes.txt`` (one per line), else "0", "1", …. Masks that never
    use 0 (values 1..K, like the Pets trimaps) are shifted down by one when the design's output
    (``output_shape``) has K channels, with a warning. Images without a mask, masks without an
    image and unreadable files are skipped and named in the warnings; an error if no pair is left.
    """
    shape = _check_input_shape(input_shape)
    validation_split = _check_validation_split(validation_split)
    root = Path(path)
    images_dir, masks_dir = segmentation_folders(root)
    assert images_dir is not None and masks_dir is not None, "load_folder checks the layout"
    images: dict[str, Path] = {}
    for f in image_files(images_dir, recursive=False):
        images.setdefault(f.stem, f)
    masks: dict[str, Path] = {}
    for f in sorted(masks_dir.iterdir()):
        if f.suffix.lower() == ".png" and not f.name.startswith("."):
            masks.setdefault(f.stem, f)
    rel = lambda f: f.relative_to(root).as_posix()  # noqa: E731
    no_mask = sorted((rel(images[s]) for s in images.keys() - masks.keys()), key=_natural)
    no_image = sorted((rel(masks[s]) for s in masks.keys() - images.keys()), key=_natural)
    stems = sorted(images.keys() & masks.keys(), key=_natural)
    warnings: list[str] = []
    unpaired = ([f"{len(no_mask)} image{'s' if len(no_mask) > 1 else ''} without a mask in {rel(masks_dir)}: "
                 f"{_listing(no_mask)}"] if no_mask else []) + \
               ([f"{len(no_image)} mask{'s' if len(no_image) > 1 else ''} without an image in "
                 f"{rel(images_dir)}: {_listing(no_image)}"] if no_image else [])
    if not stems:
        raise DatasetError(f"{root.name} has no image with a mask of the same name: "
                           + ("; ".join(unpaired) if unpaired else "both folders are empty")
                           + f". Give each image in {rel(images_dir)} a PNG mask with the same name "
                           f"(e.g. cat1.jpg and cat1.png) in {rel(masks_dir)}.")
    warnings += [f"Skipped {text}" for text in unpaired]
    image_list = [images[s] for s in stems]
    readable, unreadable = readable_images(root, image_list, shape[2])
    if unreadable:
        warnings.append(skipped_sentence(unreadable))
    stems = [stems[i] for i in readable]
    mask_list = [masks[s] for s in stems]
    sample = (np.arange(len(mask_list)) if len(mask_list) <= MASK_SAMPLE
              else np.linspace(0, len(mask_list) - 1, MASK_SAMPLE).astype(np.intp))
    summaries = dict(zip(sample.tolist(), check_masks([mask_list[i] for i in sample])))
    bad = [f"{rel(mask_list[i])} {v}" for i, v in summaries.items() if isinstance(v, str)]
    if bad:
        warnings.append(f"Skipped {len(bad)} unusable mask{'s' if len(bad) > 1 else ''}: {_listing(bad)}")
    keep = [i for i in range(len(stems)) if not isinstance(summaries.get(i), str)]
    if not keep:
        raise DatasetError(f"{root.name} has no pair of a readable image and a usable mask. " + " ".join(warnings))
    good = [v for v in summaries.values() if not isinstance(v, str)]
    low, high = min(v[0] for v in good), max(v[1] for v in good)
    channels = output_shape[-1] if output_shape is not None and len(output_shape) == 3 else None
    shift = 0
    if low >= 1 and channels is not None and channels == high:
        shift = 1
        warnings.append(f"The masks use the values 1 to {high} and never 0, and the output has {channels} "
                        f"channels, so every mask value is lowered by 1 (class 1 is trained as 0)")
    classes = high + 1 - shift
    names = _class_names(root, classes, shift)
    paths = [str(images[stems[i]]) for i in keep]
    mask_paths = [str(mask_list[i]) for i in keep]
    train_idx, val_idx = _random_split(len(paths), validation_split, seed)

    def split(indices: np.ndarray) -> Split:
        return Split.from_files([paths[i] for i in indices], [], shape,
                                mask_paths=[mask_paths[i] for i in indices], mask_shift=shift)

    return Dataset(root.name, names, split(train_idx), split(val_idx) if len(val_idx) else None, None,
                   warnings, target=TargetKind.MASK)


def _class_names(root: Path, classes: int, shift: int) -> list[str]:
    """The mask classes' names: ``classes.txt`` (one per line, for the values as stored) when it
    names enough of them, else "0", "1", … (counting the values as stored)."""
    names_file = root / "classes.txt"
    if names_file.is_file():
        try:
            with io.TextIOWrapper(open_regular_file(names_file, names_file.name), encoding="utf-8-sig") as handle:
                lines = [line.strip() for line in handle if line.strip()]
        except (OSError, UnicodeDecodeError, DatasetError):
            lines = []
        if len(lines) >= classes + shift:
            return lines[shift:shift + classes]
        if len(lines) == classes:
            return lines
    return [str(v + shift) for v in range(classes)]
