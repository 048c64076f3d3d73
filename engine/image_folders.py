"""Folders of images for every task: which layout a folder has, and the loaders for the layouts
beyond one sub-folder per class (:func:`engine.datasets.load_image_folder`).

- ``images/`` + ``masks/`` (or ``trimaps/``, ``annotations/trimaps/``): segmentation. Each mask
  is a PNG of class indices (8-bit grey values, or palette indices as Pascal VOC saves them) with
  the stem of its image (the Oxford-IIIT Pets trimaps and Keras's segmentation example).
- a ``labels.csv`` beside the images: multi-label, one row per image naming its labels (or
  regression, one numeric column per target).
- images directly in the folder, no class folders: images without targets (reconstruction).

Images and masks stay on disk (lazy splits). Folders are listed without opening a file
(:mod:`engine.folder_index`, cached); images are decode-checked before training in folders of up
to :data:`engine.datasets.UP_FRONT_CHECKS` images, and in larger ones by the pipeline as it reads
them (:mod:`engine.image_pipeline`); results are cached (:class:`engine.datasets.ImageChecks`,
:class:`MaskChecks`). TensorFlow is imported only to decode files.
"""

from __future__ import annotations

import csv
import io
import os
import re
import struct
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .datasets import (IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, Dataset, DatasetError, ImageChecks, Split,
                       check_input_shape, check_memory, check_validation_split, first_few, image_files,
                       image_size, load_image_folder, mask_classes, not_regular, number_cells, open_regular_file,
                       readable_images, skipped_sentence, split_indices)
from .tasks import TargetKind, Task

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
                           f"the images in {root.name}/images and, for each, a PNG of class "
                           f"numbers with the same name in {root.name}/masks")
    labels_file = root / LABEL_FILE
    class_dirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if labels_file.exists() and not (task is Task.CLASSIFICATION and len(class_dirs) >= 2):
        return load_labelled_folder(root, input_shape, validation_split, seed, task)
    if task is Task.MULTILABEL:
        raise DatasetError(f"{root.name} has no {LABEL_FILE}, which multi-label training needs: a CSV with a "
                           f"'filename' column and a 'labels' column listing each image's labels "
                           f"(separated by spaces or ';'), or one 0/1 column per label")
    if task is Task.REGRESSION:
        raise DatasetError(f"{root.name} has no {LABEL_FILE}, which regression from a folder needs: a CSV with a "
                           f"'filename' column and one column of numbers per target")
    if len(class_dirs) < 2 and image_files(root, recursive=False):
        return load_unlabelled_folder(root, input_shape, validation_split, seed)
    if len(class_dirs) < 2 and task is Task.RECONSTRUCTION:  # e.g. faces/all/*.png: no classes needed
        return load_unlabelled_folder(root, input_shape, validation_split, seed, recursive=True)
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


def load_unlabelled_folder(path, input_shape, validation_split: float = 0.2, seed: int = 0,
                           recursive: bool = False) -> Dataset:
    """The images directly in ``path`` (and in its sub-folders when ``recursive``), without
    targets (``TargetKind.NONE``): what an autoencoder learns from. Unreadable files are skipped
    and named in the warnings."""
    shape = check_input_shape(input_shape)
    validation_split = check_validation_split(validation_split)
    root = Path(path)
    files = image_files(root, recursive=recursive)
    readable, unreadable = readable_images(root, files, shape[2])
    skipped = skipped_sentence(unreadable)
    if not readable:
        raise DatasetError(f"{root.name} has no readable .png/.jpg/.bmp/.gif images; add images, or one "
                           f"sub-folder per class." + (f" {skipped}." if skipped else ""))
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


def read_label_table(path: Path, task: Task | None = None) -> tuple[list[str], list[str], np.ndarray, TargetKind]:
    """(file names, target names, float32 rows, what they are) from a labels CSV: a file column
    (``filename``, ``file``, ``image`` or ``path``) and either a ``labels`` column listing each
    image's labels (multi-hot), or one column per target: 0/1 columns are labels (multi-hot),
    other numbers regression values (as are any numbers when ``task`` is regression)."""
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
    if labels_col is not None:
        lists = [split_labels(row[labels_col]) for row in body]
        names = sorted({label for labels in lists for label in labels})
        if not names:
            raise DatasetError(f"{what}: the '{rows[0][labels_col]}' column names no labels; list each image's "
                               f"labels there, separated by spaces or ';'.")
        check_memory(4 * len(body) * len(names), f"{what} ({len(body):,} images × {len(names):,} different labels)",
                     "check that the labels are separated by spaces, ';', ',' or '|'")
        index = {name: i for i, name in enumerate(names)}
        y = np.zeros((len(body), len(names)), dtype=np.float32)
        for i, labels in enumerate(lists):
            y[i, [index[label] for label in labels]] = 1.0
        return files, names, y, TargetKind.MULTI_HOT
    label_cols = [i for i in range(len(header)) if i != file_col]
    if not label_cols:
        raise DatasetError(f"{what} has only the file column; add a 'labels' column listing each image's labels.")
    names = [rows[0][i] for i in label_cols]
    table = [[row[i] for i in label_cols] for row in body]
    values = number_cells(table, len(names), lambda r, c, cell: (
        f"{what}: row {r + 2} has {cell!r} in the column '{names[c]}', but these columns hold numbers: 1 (the "
        f"label applies) or 0, or regression targets; or use one 'labels' column listing each image's labels."))
    binary = bool(np.isin(values, (0.0, 1.0)).all())
    if task is Task.REGRESSION or (task is not Task.MULTILABEL and not binary):
        return files, names, values, TargetKind.VALUES
    if not binary:
        r, c = (int(i[0]) for i in np.nonzero(~np.isin(values, (0.0, 1.0))))
        raise DatasetError(f"{what}: row {r + 2} has {table[r][c]!r} in the column '{names[c]}', but label columns "
                           f"hold 1 (applies) or 0; or use one 'labels' column listing each image's labels.")
    return files, names, values, TargetKind.MULTI_HOT


def load_labelled_folder(path, input_shape, validation_split: float = 0.2, seed: int = 0,
                         task: Task | None = None) -> Dataset:
    """A folder of images with a ``labels.csv`` naming each image's labels (multi-hot targets,
    ``class_names`` the sorted labels or the label columns) or numeric targets (regression; see
    :func:`read_label_table`). Files are named relative to the folder, with or without their
    extension. Rows whose image is missing or unreadable are skipped and named in the warnings,
    as are images the table does not list."""
    shape = check_input_shape(input_shape)
    validation_split = check_validation_split(validation_split)
    root = Path(path)
    names_in_table, label_names, y, target = read_label_table(root / LABEL_FILE, task)
    on_disk = image_files(root)
    by_name = {f.relative_to(root).as_posix(): f for f in on_disk}
    by_stem: dict[str, Path] = {}
    for f in on_disk:
        by_stem.setdefault(f.relative_to(root).with_suffix("").as_posix(), f)
    files: list[Path] = []
    rows: list[int] = []
    missing: list[str] = []
    for row, name in enumerate(names_in_table):
        key = name.replace("\\", "/").removeprefix("./")
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
                        f"is not in {root.name}: {first_few(missing)}")
    if unreadable:
        warnings.append(skipped_sentence(unreadable))
    listed = set(files)
    unlisted = [f.relative_to(root).as_posix() for f in on_disk if f not in listed]
    if unlisted:
        warnings.append(f"Left out {len(unlisted)} image{'s' if len(unlisted) > 1 else ''} that {LABEL_FILE} does "
                        f"not list: {first_few(unlisted)}")
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
                   warnings, target=target)


# ---------------------------------------------------------------------------------------------
# Segmentation: images/ and masks/


class MaskChecks(ImageChecks):
    """What each mask file holds (its problem, or its smallest and largest value), remembered by
    path, size and modification time like :class:`ImageChecks`, in its own cache file."""

    @staticmethod
    def cache_file() -> Path:
        return ImageChecks.cache_file().with_name("mask-checks.json")


MASK_CHECKS = MaskChecks()


def mask_header(path: Path) -> tuple[str | None, tuple[int, ...] | None]:
    """(why the mask file cannot hold class numbers or None, its palette): read from the PNG's
    header and, for a palette PNG, its PLTE chunk, without decoding. Grey PNGs must have 8-bit
    pixels (their values are the classes); palette PNGs hold their classes as palette indices;
    colour PNGs hold colours, not classes."""
    try:
        with open_regular_file(path, path.name) as handle:
            head = handle.read(33)
            if not head.startswith(b"\x89PNG\r\n\x1a\n") or len(head) < 33 or head[12:16] != b"IHDR":
                return "is not a PNG file (masks are PNGs of class numbers)", None
            width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
            if width == 0 or height == 0:
                return f"is an image of size {width}×{height}", None
            if width * height > MAX_IMAGE_PIXELS:
                return f"declares {width:,}×{height:,} pixels, more than the {MAX_IMAGE_PIXELS:,} Convas decodes", None
            if colour in (2, 6):
                return "is a colour PNG; a mask is a grey or palette PNG whose values are class numbers", None
            if colour == 3:
                palette = _read_palette(handle)
                return (None, palette) if palette else ("is a palette PNG without a palette (damaged)", None)
            if depth != 8:
                return f"has {depth}-bit pixels; save it as an 8-bit grey PNG", None
            return None, None
    except DatasetError as exc:
        return str(exc).removeprefix(path.name + " ").split(";")[0], None
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})", None


def _read_palette(handle) -> tuple[int, ...] | None:
    """The r, g, b, r, … entries of the PLTE chunk that follows IHDR (None if there is none
    before the image data), walking the chunks from just after IHDR."""
    for _ in range(64):
        top = handle.read(8)
        if len(top) < 8:
            return None
        length, kind = struct.unpack(">I", top[:4])[0], top[4:]
        if kind == b"PLTE":
            data = handle.read(min(length, 768))
            return tuple(data[:len(data) - len(data) % 3]) or None
        if kind in (b"IDAT", b"IEND"):
            return None
        handle.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
    return None


def _palette_marker(palette: tuple[int, ...] | None) -> int:
    """What the mask cache records beside a file, so that a summary read with another palette is
    read again: 0 for grey masks."""
    return 0 if palette is None else 1 + zlib.crc32(bytes(palette))


def _mask_summary(path: Path, palette: tuple[int, ...] | None) -> list | str:
    """[smallest, largest class, height, width] of a mask file, or why it cannot be read."""
    import tensorflow as tf

    try:
        with open_regular_file(path, path.name) as handle:
            values = np.asarray(mask_classes(handle.read(), palette))
    except (tf.errors.OpError, ValueError, OSError, DatasetError) as exc:
        return f"cannot be decoded ({str(getattr(exc, 'message', exc)).splitlines()[0]})"
    return [int(values.min()), int(values.max()), int(values.shape[0]), int(values.shape[1])]


def check_masks(files: Sequence[Path], palette: tuple[int, ...] | None = None,
                checks: MaskChecks | None = None) -> list[list | str]:
    """For each mask file (whose header :func:`mask_header` passed), [smallest, largest class,
    height, width] or why it cannot be used; cached (see :class:`MaskChecks`), the rest decoded
    on a thread pool."""
    checks = checks or MASK_CHECKS
    marker = _palette_marker(palette)
    results: list[list | str] = [""] * len(files)
    todo: list[tuple[int, str, os.stat_result]] = []
    for i, file in enumerate(files):
        key = os.path.abspath(file)
        try:
            st = file.stat()
        except OSError as exc:
            results[i] = f"cannot be opened ({exc.strerror or exc})"
            continue
        kind = not_regular(st.st_mode)
        if kind is not None:
            results[i] = f"is {kind}, not a regular file"
            continue
        known, value = checks.get(key, st, marker)
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
            found = list(pool.map(lambda item: _mask_summary(files[item[0]], palette), todo))
        for (i, key, st), value in zip(todo, found):
            results[i] = value
            checks.put(key, st, marker, value)
        checks.save({os.path.abspath(file) for file in files})
    return results


def _same_aspect(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two (width, height) sizes have the same shape (a mask may be stored smaller)."""
    return abs(a[0] * b[1] - a[1] * b[0]) <= 0.02 * max(a[0] * b[1], a[1] * b[0])


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def load_mask_folder(path, input_shape, validation_split: float = 0.2, seed: int = 0, *,
                     output_shape: Sequence[int | None] | None = None) -> Dataset:
    """A segmentation folder: ``images/`` and ``masks/`` whose files pair by stem; each mask is a
    PNG whose values (8-bit grey) or palette indices are class numbers, resized nearest-neighbour
    to the input. All masks are read one way: the kind (grey, or one palette) most of them have.

    The classes are 0 up to the largest mask value (over up to :data:`MASK_SAMPLE` masks); their
    names come from an optional ``classes.txt`` (one per line), else "0", "1", …. Masks that never
    use 0 (values 1..K, like the Pets trimaps) are shifted down by one when the design's output
    (``output_shape``) has K channels, with a warning. Images without a mask, masks without an
    image and unreadable files are skipped and named in the warnings; an error if no pair is left.
    """
    shape = check_input_shape(input_shape)
    validation_split = check_validation_split(validation_split)
    root = Path(path)
    images_dir, masks_dir = segmentation_folders(root)
    assert images_dir is not None and masks_dir is not None, "load_folder checks the layout"
    images: dict[str, Path] = {}
    for f in image_files(images_dir, recursive=False):
        images.setdefault(f.stem, f)
    masks: dict[str, Path] = {}
    lossy: list[Path] = []  # JPEG masks: compression blurs the class numbers at every edge
    for f in sorted(masks_dir.iterdir()):
        if f.suffix.lower() == ".png" and not f.name.startswith("."):
            masks.setdefault(f.stem, f)
        elif f.suffix.lower() in IMAGE_SUFFIXES - {".png"} and not f.name.startswith("."):
            lossy.append(f)
    rel = lambda f: f.relative_to(root).as_posix()  # noqa: E731
    no_mask = sorted((rel(images[s]) for s in images.keys() - masks.keys()), key=_natural)
    no_image = sorted((rel(masks[s]) for s in masks.keys() - images.keys()), key=_natural)
    stems = sorted(images.keys() & masks.keys(), key=_natural)
    warnings: list[str] = []
    unpaired = ([f"{len(no_mask)} image{'s' if len(no_mask) > 1 else ''} without a mask in {rel(masks_dir)}: "
                 f"{first_few(no_mask)}"] if no_mask else []) + \
               ([f"{len(no_image)} mask{'s' if len(no_image) > 1 else ''} without an image in "
                 f"{rel(images_dir)}: {first_few(no_image)}"] if no_image else [])
    if lossy:
        unpaired.append(f"{len(lossy)} mask{'s' if len(lossy) > 1 else ''} that {'are' if len(lossy) > 1 else 'is'} "
                        f"not PNG ({first_few([rel(f) for f in lossy])}): masks must be PNG, as JPEG "
                        f"compression changes the class numbers along every edge")
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
    # Every mask's header is read (colour PNGs hold no class numbers); the pixels of up to
    # MASK_SAMPLE of them, spread evenly, say how many classes there are (and their sizes, whether
    # they line up with their images).
    sample = (np.arange(len(mask_list)) if len(mask_list) <= MASK_SAMPLE
              else np.linspace(0, len(mask_list) - 1, MASK_SAMPLE).astype(np.intp))
    headers = [mask_header(file) for file in mask_list]
    # All masks are read one way: grey values, or the indices of one palette (most masks').
    kinds = Counter(palette for problem, palette in headers if problem is None)
    palette = kinds.most_common(1)[0][0] if kinds else None
    summaries: dict[int, list | str | None] = {}
    for i, (problem, own) in enumerate(headers):
        if problem is None and own != palette:
            problem = ("is a grey PNG while most masks are palette PNGs" if own is None else
                       "is a palette PNG while most masks are grey" if palette is None else
                       "has another palette than most masks, so its indices may mean other classes")
        if problem:
            summaries[i] = problem
    sample = np.asarray([i for i in sample if i not in summaries], dtype=np.intp)
    summaries.update(zip(sample.tolist(), check_masks([mask_list[i] for i in sample], palette)))
    for i in sample.tolist():
        summary, size = summaries[i], image_size(images[stems[i]])
        if isinstance(summary, list) and size is not None and not _same_aspect((summary[3], summary[2]), size):
            summaries[i] = (f"is {summary[3]}×{summary[2]} but its image is {size[0]}×{size[1]}, another shape, "
                            f"so the mask would not line up with the image")
    bad = [f"{rel(mask_list[i])} {v}" for i, v in sorted(summaries.items()) if isinstance(v, str)]
    if bad:
        warnings.append(f"Skipped {len(bad)} unusable mask{'s' if len(bad) > 1 else ''}: {first_few(bad)}")
    keep = [i for i in range(len(stems)) if not isinstance(summaries.get(i), str)]
    good = [v for v in summaries.values() if isinstance(v, list)]
    if not keep or not good:
        raise DatasetError(f"{root.name} has no pair of a readable image and a usable mask (a PNG of class "
                           f"numbers: 8-bit grey values or palette indices). " + " ".join(warnings))
    low, high = min(v[0] for v in good), max(v[1] for v in good)
    channels = output_shape[-1] if output_shape is not None and len(output_shape) == 3 else None
    shift = 0
    if low >= 1 and channels is not None and channels == high:
        shift = 1
        warnings.append(f"The masks use the values 1 to {high} and never 0, and the output has {channels} "
                        f"channels, so every mask value is lowered by 1 (class 1 is trained as 0)")
    if high == 255:
        warnings.append("The masks use the value 255, which datasets such as Pascal VOC use for 'void' pixels "
                        "(borders to leave out); Convas trains it as a class of its own, so there are 256 "
                        "classes: give those pixels a real class in the masks (e.g. 0, the background)")
    classes = high + 1 - shift
    names = _class_names(root, classes, shift)
    paths = [str(images[stems[i]]) for i in keep]
    mask_paths = [str(mask_list[i]) for i in keep]
    train_idx, val_idx = _random_split(len(paths), validation_split, seed)

    def split(indices: np.ndarray) -> Split:
        return Split.from_files([paths[i] for i in indices], [], shape,
                                mask_paths=[mask_paths[i] for i in indices], mask_shift=shift,
                                mask_palette=palette)

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
