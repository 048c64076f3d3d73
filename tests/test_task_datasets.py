"""Datasets for every task: what each loader reads as targets (multi-hot labels, numeric values,
masks, nothing), the built-in shapes with masks, positions and several shapes per image, and the
messages for data that cannot serve a task. Test data is written in tmp_path (PNG by hand)."""

from __future__ import annotations

import csv
import struct
import zlib

import numpy as np
import pytest
from test_datasets import write_png

from engine.data_source import load_dataset
from engine.datasets import DatasetError, make_shapes_dataset
from engine.tasks import TargetKind, Task


def write_palette_png(path, indices: np.ndarray) -> None:
    """An 8-bit palette PNG (colour type 3), as Pascal VOC saves its masks: 256 distinct colours."""
    height, width = indices.shape
    raw = b"".join(b"\x00" + indices[row].astype(np.uint8).tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    palette = bytes(range(256)) * 3
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"PLTE", palette[:768])
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def grey(seed: int, size=(6, 6)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8)


def write_csv(path, rows) -> None:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)


# ---------------------------------------------------------------- multi-label

def test_folder_with_labels_csv_is_multilabel(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for name in ("a", "b", "c", "d", "e"):
        write_png(root / f"{name}.png", grey(ord(name)))
    write_png(root / "unlisted.png", grey(9))
    write_csv(root / "labels.csv", [["filename", "labels"], ["a.png", "cat dog"], ["b.png", "dog;sky"],
                                    ["c", "cat|sky"], ["d.png", "cat, dog, sky"], ["e.png", ""],
                                    ["gone.png", "cat"]])
    ds = load_dataset(str(root), (6, 6, 1), validation_split=0.2, seed=0)
    assert ds.target is TargetKind.MULTI_HOT
    assert ds.class_names == ["cat", "dog", "sky"]
    assert ds.train.is_lazy and len(ds.train) + len(ds.validation) == 5
    rows = {p.rsplit("/", 1)[-1]: tuple(r) for split in (ds.train, ds.validation)
            for p, r in zip(split.paths, split.y.tolist())}
    assert rows == {"a.png": (1, 1, 0), "b.png": (0, 1, 1), "c.png": (1, 0, 1), "d.png": (1, 1, 1),
                    "e.png": (0, 0, 0)}
    assert ds.train.y.dtype == np.float32
    assert any("gone.png" in w and "not in photos" in w for w in ds.warnings)
    assert any("unlisted.png" in w and "does not list" in w for w in ds.warnings)


def test_labels_csv_with_one_column_per_label(tmp_path):
    root = tmp_path / "tags"
    root.mkdir()
    for i in range(4):
        write_png(root / f"{i}.png", grey(i))
    write_csv(root / "labels.csv", [["file", "red", "round"], ["0.png", 1, 0], ["1.png", 0, 1],
                                    ["2.png", 1, 1], ["3.png", 0, 0]])
    ds = load_dataset(str(root), (6, 6, 1), validation_split=0)
    assert ds.class_names == ["red", "round"] and ds.target is TargetKind.MULTI_HOT
    assert sorted(map(tuple, ds.train.y.tolist())) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    write_csv(root / "labels.csv", [["file", "red"], ["0.png", 2]])
    with pytest.raises(DatasetError, match="row 2 has '2' in the column 'red'.*1 \\(applies\\) or 0"):
        load_dataset(str(root), (6, 6, 1), task=Task.MULTILABEL)


def test_labels_csv_with_numbers_is_regression(tmp_path):
    root = tmp_path / "ages"
    root.mkdir()
    for i in range(4):
        write_png(root / f"{i}.png", grey(i))
    write_csv(root / "labels.csv", [["image", "age", "height"], *[[f"{i}.png", 20.5 + i, 1 + i % 2] for i in range(4)]])
    ds = load_dataset(str(root), (6, 6, 1), validation_split=0)
    assert ds.target is TargetKind.VALUES and ds.class_names == ["age", "height"]
    assert sorted(ds.train.y[:, 0].tolist()) == [20.5, 21.5, 22.5, 23.5]
    write_csv(root / "labels.csv", [["image", "old"], *[[f"{i}.png", i % 2] for i in range(4)]])
    assert load_dataset(str(root), (6, 6, 1)).target is TargetKind.MULTI_HOT
    assert load_dataset(str(root), (6, 6, 1), task=Task.REGRESSION).target is TargetKind.VALUES
    write_csv(root / "labels.csv", [["image", "age"], ["0.png", "old"]])
    with pytest.raises(DatasetError, match="row 2 has 'old' in the column 'age', but these columns hold numbers"):
        load_dataset(str(root), (6, 6, 1))


def test_csv_with_label_columns_is_multilabel(tmp_path):
    path = tmp_path / "ml.csv"
    rows = [["label_a", "label_b", "label:c"] + [f"p{i}" for i in range(4)]]
    rows += [[i % 2, 1, 0, *range(4)] for i in range(10)]
    write_csv(path, rows)
    ds = load_dataset(str(path), (2, 2, 1), validation_split=0.2)
    assert ds.target is TargetKind.MULTI_HOT and ds.class_names == ["a", "b", "c"]
    assert ds.train.y.shape == (8, 3) and ds.sample_shape() == (2, 2, 1)
    named = load_dataset(str(path), (2, 2, 1), target_columns=["label:c", "label_a", "label_b"],
                         task=Task.MULTILABEL)
    assert named.class_names == ["c", "a", "b"] and named.target is TargetKind.MULTI_HOT
    with pytest.raises(DatasetError, match="each row has 5 pixel columns"):
        load_dataset(str(path), (2, 2, 1), target_columns=["label_a", "label_b"])
    with pytest.raises(DatasetError, match="no column named 'tags'"):
        load_dataset(str(path), (2, 2, 1), target_columns=["tags"])


def test_npz_multi_hot_rows_and_one_hot_rows(tmp_path):
    x = np.zeros((6, 4, 4), np.uint8)
    multi = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0], [0, 0, 0]])
    np.savez(tmp_path / "m.npz", x=x, y=multi)
    ds = load_dataset(str(tmp_path / "m.npz"), (4, 4, 1), validation_split=0)
    assert ds.target is TargetKind.MULTI_HOT and ds.class_names == ["0", "1", "2"]
    assert ds.train.y.dtype == np.float32 and ds.train.y.sum() == multi.sum()
    np.savez(tmp_path / "onehot.npz", x=x, y=np.eye(3)[[0, 1, 2, 0, 1, 2]])
    assert load_dataset(str(tmp_path / "onehot.npz"), (4, 4, 1)).target is TargetKind.CLASS
    # One-hot rows are multi-hot too, when the task says so.
    asked = load_dataset(str(tmp_path / "onehot.npz"), (4, 4, 1), task=Task.MULTILABEL)
    assert asked.target is TargetKind.MULTI_HOT


# ---------------------------------------------------------------- regression

def test_npz_regression_targets(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((10, 4, 4))
    np.savez(tmp_path / "r.npz", x=x, y=rng.normal(size=(10, 3)))
    ds = load_dataset(str(tmp_path / "r.npz"), (4, 4, 1), validation_split=0.2)
    assert ds.target is TargetKind.VALUES and ds.class_names == ["y0", "y1", "y2"]
    assert ds.train.y.shape == (8, 3) and ds.train.y.dtype == np.float32
    np.savez(tmp_path / "one.npz", x=x, y=rng.random(10) * 5)
    one = load_dataset(str(tmp_path / "one.npz"), (4, 4, 1))
    assert one.target is TargetKind.VALUES and one.class_names == ["y"] and one.train.y.ndim == 2
    np.savez(tmp_path / "ints.npz", x=x, y=np.arange(10))
    assert load_dataset(str(tmp_path / "ints.npz"), (4, 4, 1)).target is TargetKind.CLASS
    ints = load_dataset(str(tmp_path / "ints.npz"), (4, 4, 1), task=Task.REGRESSION, validation_split=0)
    assert ints.target is TargetKind.VALUES and sorted(ints.train.y[:, 0].tolist()) == list(range(10))
    np.savez(tmp_path / "inf.npz", x=x, y=np.r_[np.ones(9) * 0.5, np.inf])
    with pytest.raises(DatasetError, match="NaN or infinite values \\(first at index 9\\)"):
        load_dataset(str(tmp_path / "inf.npz"), (4, 4, 1), task=Task.REGRESSION)


def test_csv_regression_with_named_and_found_target_columns(tmp_path):
    path = tmp_path / "r.csv"
    rows = [["age", "weight"] + [f"pixel{i}" for i in range(4)]]
    rows += [[20 + i, 50.5 + i, *range(4)] for i in range(10)]
    write_csv(path, rows)
    ds = load_dataset(str(path), (2, 2, 1), target_columns=["age", "weight"], validation_split=0)
    assert ds.target is TargetKind.VALUES and ds.class_names == ["age", "weight"]
    assert sorted(ds.train.y[:, 1].tolist()) == [50.5 + i for i in range(10)]
    found = load_dataset(str(path), (2, 2, 1), task=Task.REGRESSION)
    assert found.class_names == ["age", "weight"] and found.target is TargetKind.VALUES
    rows[3][1] = "heavy"
    write_csv(path, rows)
    with pytest.raises(DatasetError, match="row 4 has 'heavy' in the target column 'weight'"):
        load_dataset(str(path), (2, 2, 1), task=Task.REGRESSION)


# ---------------------------------------------------------------- segmentation

def make_mask_folder(root, stems=("a", "b", "c", "d"), values=(0, 1, 2), size=(8, 8)):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, stem in enumerate(stems):
        write_png(root / "images" / f"{stem}.png", grey(i, size))
        mask = np.full(size, values[0], np.uint8)
        mask[: size[0] // 2] = values[1 + i % (len(values) - 1)]
        write_png(root / "masks" / f"{stem}.png", mask)
    return root


def test_images_and_masks_folder(tmp_path):
    root = make_mask_folder(tmp_path / "pets")
    write_png(root / "images" / "lonely.png", grey(7, (8, 8)))
    write_png(root / "masks" / "orphan.png", np.zeros((8, 8), np.uint8))
    (root / "classes.txt").write_text("background\nfur\nsky\n")
    ds = load_dataset(str(root), (4, 4, 1), validation_split=0.25)
    assert ds.target is TargetKind.MASK and ds.class_names == ["background", "fur", "sky"]
    assert len(ds.train) == 3 and len(ds.validation) == 1 and ds.train.is_lazy
    assert ds.train.target_shape == (4, 4)
    warnings = " ".join(ds.warnings)
    assert "1 image without a mask in masks: images/lonely.png" in warnings
    assert "1 mask without an image in images: masks/orphan.png" in warnings
    masks = ds.train.targets([0, 1, 2])
    assert masks.shape == (3, 4, 4) and masks.dtype == np.int64
    assert set(np.unique(masks)) <= {0, 1, 2}
    assert (masks[:, 2:] == 0).all() and (masks[:, :2] > 0).all()  # the top half is the object


def test_masks_that_count_from_one_are_lowered_for_an_output_of_k_channels(tmp_path):
    root = make_mask_folder(tmp_path / "trimaps", values=(2, 1, 3))  # like the Pets trimaps: 1, 2, 3
    shifted = load_dataset(str(root), (8, 8, 1), output_shape=(8, 8, 3), validation_split=0)
    assert shifted.class_names == ["1", "2", "3"]  # named as stored, trained as 0, 1, 2
    assert "values 1 to 3 and never 0, and the output has 3 channels" in " ".join(shifted.warnings)
    assert set(np.unique(shifted.train.targets(range(4)))) == {0, 1, 2}
    kept = load_dataset(str(root), (8, 8, 1), output_shape=(8, 8, 4), validation_split=0)
    assert kept.class_names == ["0", "1", "2", "3"] and kept.warnings == []
    assert set(np.unique(kept.train.targets(range(4)))) == {1, 2, 3}


def test_mask_folder_without_pairs_or_with_unusable_masks(tmp_path):
    root = tmp_path / "nothing"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    write_png(root / "images" / "a.png", grey(0))
    write_png(root / "masks" / "b.png", grey(1))
    with pytest.raises(DatasetError, match="no image with a mask of the same name: 1 image without a mask.*"
                                           "images/a.png.*masks/b.png.*same name"):
        load_dataset(str(root), (6, 6, 1))
    other = make_mask_folder(tmp_path / "mixed", stems=("a", "b"))
    write_png(other / "images" / "c.png", grey(3, (8, 8)))
    write_palette_png(other / "masks" / "c.png", np.ones((8, 8), np.uint8))
    write_png(other / "images" / "e.png", grey(5, (8, 8)))
    write_png(other / "masks" / "e.png", np.zeros((8, 4), np.uint8))  # half as wide: would not line up
    write_png(other / "images" / "f.png", grey(6, (8, 8)))
    write_png(other / "masks" / "f.png", np.zeros((4, 4), np.uint8))  # half the size: lines up when resized
    write_png(other / "images" / "d.png", grey(4, (8, 8)))
    write_png(other / "masks" / "d.jpg", np.zeros((8, 8), np.uint8))  # PNG bytes, but named .jpg
    ds = load_dataset(str(other), (8, 8, 1), validation_split=0)
    assert len(ds.train) == 3
    assert "masks/c.png is a palette PNG while most masks are grey" in " ".join(ds.warnings)
    assert "masks/e.png is 4×8 but its image is 8×8, another shape" in " ".join(ds.warnings)
    assert "1 mask that is not PNG (masks/d.jpg): masks must be PNG" in " ".join(ds.warnings)


def test_palette_masks_are_read_by_their_indices(tmp_path):
    root = tmp_path / "voc"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(3):
        write_png(root / "images" / f"{i}.png", grey(i, (8, 8)))
        indices = np.zeros((8, 8), np.uint8)
        indices[:, 4:] = 1 + i  # classes 1..3 on the right half
        write_palette_png(root / "masks" / f"{i}.png", indices)
    ds = load_dataset(str(root), (4, 4, 1), validation_split=0)
    assert ds.target is TargetKind.MASK and ds.class_names == ["0", "1", "2", "3"]
    masks = ds.train.targets(range(3))
    assert (masks[:, :, :2] == 0).all()
    assert sorted(np.unique(masks[:, :, 2:]).tolist()) == [1, 2, 3]
    assert ds.train.mask_palette is not None and len(ds.train.mask_palette) == 768
    (_, fed), = [(x, y.numpy()) for x, y in ds.train.as_tf_dataset(8)]  # the pipeline reads them alike
    np.testing.assert_array_equal(fed, masks)


def test_npz_masks(tmp_path):
    x = np.zeros((4, 8, 8), np.uint8)
    y = np.zeros((4, 8, 8, 1), np.uint8)
    y[:, :4, :4] = 2
    y[:, 4:, 4:] = 1
    np.savez(tmp_path / "seg.npz", x=x, y=y)
    ds = load_dataset(str(tmp_path / "seg.npz"), (4, 4, 1), validation_split=0)
    assert ds.target is TargetKind.MASK and ds.class_names == ["0", "1", "2"]
    assert ds.train.y.shape == (4, 4, 4) and ds.train.y.dtype == np.int64
    assert (ds.train.y[:, :2, :2] == 2).all() and (ds.train.y[:, 2:, 2:] == 1).all()
    assert (ds.train.y[:, :2, 2:] == 0).all()
    np.savez(tmp_path / "frac.npz", x=x, y=y[..., 0] * 0.5)
    with pytest.raises(DatasetError, match="whole class numbers \\(0, 1, 2, ...\\); found 0.5"):
        load_dataset(str(tmp_path / "frac.npz"), (4, 4, 1))


def test_a_folder_without_masks_for_segmentation_says_how(tmp_path):
    from test_datasets import make_folder

    root = make_folder(tmp_path / "pets")
    with pytest.raises(DatasetError, match="no images/ and masks/ sub-folders, which segmentation needs"):
        load_dataset(str(root), (6, 5, 1), task=Task.SEGMENTATION)
    with pytest.raises(DatasetError, match="has no labels.csv, which multi-label training needs"):
        load_dataset(str(root), (6, 5, 1), task=Task.MULTILABEL)
    with pytest.raises(DatasetError, match="has no labels.csv, which regression from a folder needs: a CSV with a "
                                           "'filename' column and one column of numbers per target"):
        load_dataset(str(root), (6, 5, 1), task=Task.REGRESSION)


# ---------------------------------------------------------------- no targets

def test_a_folder_of_images_without_classes_has_no_targets(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    for i in range(5):
        write_png(root / f"{i}.png", grey(i))
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    ds = load_dataset(str(root), (6, 6, 1), validation_split=0.2)
    assert ds.target is TargetKind.NONE and ds.class_names == []
    assert len(ds.train) == 4 and len(ds.validation) == 1 and ds.class_counts() == {}
    assert "broken.png" in ds.warnings[0]


# ---------------------------------------------------------------- the built-in datasets

def test_shapes_masks_are_the_drawn_pixels():
    ds = make_shapes_dataset(40, (24, 24, 1), validation_split=0, seed=3, masks=True)
    assert ds.target is TargetKind.MASK
    assert ds.class_names == ["background", "circle", "square", "triangle", "cross"]
    x, masks = ds.train.x[..., 0], ds.train.y
    plain = make_shapes_dataset(40, (24, 24, 1), validation_split=0, seed=3)
    assert sorted(map(bytes, x)) == sorted(map(bytes, plain.train.x[..., 0]))  # the same images
    for image, mask in zip(x, masks):
        classes = set(np.unique(mask)) - {0}
        assert len(classes) == 1  # one shape per image, drawn where its mask is
        # shape pixels are drawn in 0.6–1.0 and the background in 0–0.25, plus noise of σ 0.05
        assert image[mask > 0].mean() > 0.55 and image[mask == 0].mean() < 0.3
        assert np.mean((image > 0.425) == (mask > 0)) > 0.99


def test_shapes_for_regression_give_size_and_position():
    ds = make_shapes_dataset(60, (32, 32, 1), validation_split=0, seed=1, task=Task.REGRESSION)
    assert ds.target is TargetKind.VALUES and ds.class_names == ["size", "x", "y"]
    values = ds.train.y
    assert values.shape == (60, 3) and values.min() >= 0 and values.max() <= 1
    for image, (size, cx, cy) in zip(ds.train.x[..., 0], values):
        rows, cols = np.nonzero(image > 0.425)
        assert abs(cols.mean() / 32 - cx) < 0.08 and abs(rows.mean() / 32 - cy) < 0.08
        assert abs(np.sqrt(len(rows) / np.pi) / 32 - size) < 0.02  # the radius of a circle as large


def test_shapes_for_multilabel_have_one_to_three_shapes():
    ds = load_dataset("shapes", (32, 32, 1), task=Task.MULTILABEL, validation_split=0.25)
    assert ds.target is TargetKind.MULTI_HOT and ds.class_names == ["circle", "square", "triangle", "cross"]
    counts = ds.train.y.sum(axis=1)
    assert counts.min() == 1 and counts.max() == 3 and set(np.unique(ds.train.y)) == {0.0, 1.0}
    assert min(ds.class_counts().values()) > 300
    # more shapes, more bright pixels
    bright = (ds.train.x[..., 0] > 0.425).sum(axis=(1, 2))
    assert bright[counts == 3].mean() > bright[counts == 1].mean() * 1.5


def test_digits_cannot_serve_regression_or_segmentation():
    for task, what in ((Task.REGRESSION, "size and position"), (Task.SEGMENTATION, "a mask per image")):
        with pytest.raises(DatasetError, match=f"digits dataset has one class per image, so it cannot train "
                                               f"{task.value}; use shapes \\(it has [^)]*{what}"):
            load_dataset("digits", (8, 8, 1), task=task)
    assert load_dataset("digits", (8, 8, 1), task=Task.RECONSTRUCTION).target is TargetKind.CLASS


def test_reconstruction_reads_images_in_one_sub_folder(tmp_path):
    root = tmp_path / "faces"
    (root / "all").mkdir(parents=True)
    for i in range(3):
        write_png(root / "all" / f"{i}.png", grey(i))
    with pytest.raises(DatasetError, match="at least 2 class sub-folders"):
        load_dataset(str(root), (6, 6, 1))
    ds = load_dataset(str(root), (6, 6, 1), task=Task.RECONSTRUCTION, validation_split=0)
    assert ds.target is TargetKind.NONE and len(ds.train) == 3


def test_shapes_for_a_design_that_scores_every_pixel_come_with_masks():
    ds = load_dataset("shapes", (16, 16, 1), output_shape=(16, 16, 5))
    assert ds.target is TargetKind.MASK and len(ds.class_names) == 5
    assert load_dataset("shapes", (16, 16, 1), output_shape=(16, 16, 1)).target is TargetKind.CLASS  # an autoencoder
    assert load_dataset("shapes", (16, 16, 1), output_shape=(4,)).target is TargetKind.CLASS


def test_hostile_masks_are_skipped_without_decoding(tmp_path):
    import os

    root = make_mask_folder(tmp_path / "seg", stems=("a", "b", "huge", "pipe"))
    huge = root / "masks" / "huge.png"
    head = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + head
                     + struct.pack(">I", zlib.crc32(b"IHDR" + head) & 0xFFFFFFFF))
    (root / "masks" / "pipe.png").unlink()
    os.mkfifo(root / "masks" / "pipe.png")
    ds = load_dataset(str(root), (8, 8, 1), validation_split=0)
    assert len(ds.train) == 2
    warning = " ".join(ds.warnings)
    assert "masks/huge.png declares 100,000×100,000 pixels" in warning
    assert "masks/pipe.png is a named pipe (FIFO)" in warning


def test_void_pixels_of_255_are_pointed_out(tmp_path):
    root = make_mask_folder(tmp_path / "voc", stems=("a", "b"), values=(0, 1, 255))
    ds = load_dataset(str(root), (8, 8, 1), validation_split=0)
    assert len(ds.class_names) == 256
    assert "use the value 255, which datasets such as Pascal VOC use for 'void' pixels" in " ".join(ds.warnings)
