"""The dataset layer: built-in, generated, npz, csv and image-folder loaders, errors and compatibility."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import (
    Dataset,
    DatasetError,
    Split,
    check_compatibility,
    load_csv_dataset,
    load_digits_dataset,
    load_image_folder,
    load_npz_dataset,
    make_shapes_dataset,
    resize_bilinear,
)
from engine.errors import ConvasError


def write_png(path, image: np.ndarray) -> None:
    """A minimal PNG writer (8-bit grey or RGB), pure python."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    height, width, channels = image.shape
    colour_type = {1: 0, 3: 2}[channels]
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def small_images(n=20, h=6, w=6, classes=2, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    y = np.arange(n) % classes
    return x, y


# ---------------------------------------------------------------- resize


def test_resize_bilinear_shapes_and_values():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    out = resize_bilinear(x, 2, 2)
    assert out.shape == (1, 2, 2, 1) and out.dtype == np.float32
    assert np.allclose(out[0, ..., 0], [[2.5, 4.5], [10.5, 12.5]])
    up = resize_bilinear(x, 9, 7)
    assert up.shape == (1, 9, 7, 1)
    assert up.min() >= 0 and up.max() <= 15
    assert resize_bilinear(np.ones((2, 3, 3, 3)), 5, 5).shape == (2, 5, 5, 3)
    assert np.allclose(resize_bilinear(np.ones((2, 3, 3, 3)), 5, 5), 1.0)


# ---------------------------------------------------------------- digits


def test_digits_counts_shapes_and_range():
    ds = load_digits_dataset((28, 28, 1), validation_split=0.2, seed=0)
    assert ds.class_names == [str(i) for i in range(10)]
    assert len(ds.train) + len(ds.validation) == 1797
    assert 340 <= len(ds.validation) <= 380
    assert ds.sample_shape() == (28, 28, 1)
    assert ds.train.x.dtype == np.float32 and ds.train.y.dtype == np.int64
    assert ds.train.x.min() >= 0.0 and ds.train.x.max() <= 1.0 and ds.train.x.max() > 0.9
    assert sum(ds.class_counts().values()) == len(ds.train)
    assert ds.test is None
    rgb = load_digits_dataset((16, 12, 3), validation_split=0.0)
    assert rgb.validation is None and len(rgb.train) == 1797
    assert rgb.sample_shape() == (16, 12, 3)
    assert np.array_equal(rgb.train.x[..., 0], rgb.train.x[..., 2])


def test_digits_are_scikit_learns_own_without_importing_it():
    """Read from the file scikit-learn ships (importing sklearn costs ~130 MB of window memory),
    yet the very images and labels of ``sklearn.datasets.load_digits``."""
    import subprocess
    import sys

    code = ("import sys; from engine.datasets import load_digits_dataset; "
            "load_digits_dataset((8, 8, 1)); print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(Path(__file__).resolve().parent.parent))
    assert out.stdout.strip() == "False"
    from sklearn.datasets import load_digits

    digits = load_digits()
    ds = load_digits_dataset((8, 8, 1), validation_split=0.0)
    assert len(ds.train) == len(digits.target) == 1797
    # The split shuffles: compare as multisets of (image, label) rows.
    ours = np.concatenate([ds.train.x.reshape(len(ds.train), -1) * 16, ds.train.y[:, None]], axis=1)
    theirs = np.concatenate([digits.images.reshape(len(digits.target), -1), digits.target[:, None]], axis=1)
    assert np.array_equal(np.unique(np.round(ours), axis=0), np.unique(theirs, axis=0))


def test_digits_deterministic_by_seed():
    a = load_digits_dataset((8, 8, 1), seed=3)
    b = load_digits_dataset((8, 8, 1), seed=3)
    c = load_digits_dataset((8, 8, 1), seed=4)
    assert np.array_equal(a.train.y, b.train.y) and np.array_equal(a.train.x, b.train.x)
    assert not np.array_equal(a.train.y, c.train.y)


# ---------------------------------------------------------------- shapes


def test_shapes_balanced_deterministic_in_range():
    a = make_shapes_dataset(n=200, input_shape=(32, 32, 1), validation_split=0.25, seed=7)
    b = make_shapes_dataset(n=200, input_shape=(32, 32, 1), validation_split=0.25, seed=7)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.validation.y, b.validation.y)
    assert a.class_names == ["circle", "square", "triangle", "cross"]
    all_y = np.concatenate([a.train.y, a.validation.y])
    assert np.bincount(all_y).tolist() == [50, 50, 50, 50]
    assert len(a.validation) == 50
    assert sum(a.class_counts().values()) == len(a.train) == 150
    assert max(a.class_counts().values()) - min(a.class_counts().values()) <= 1
    assert a.train.x.dtype == np.float32 and a.train.x.min() >= 0 and a.train.x.max() <= 1
    c = make_shapes_dataset(n=200, seed=8)
    assert not np.array_equal(a.train.x, c.train.x)
    rgb = make_shapes_dataset(n=12, input_shape=(20, 24, 3), classes=("circle", "cross"), validation_split=0)
    assert rgb.sample_shape() == (20, 24, 3) and rgb.class_names == ["circle", "cross"]


def test_shapes_classes_differ_on_average():
    ds = make_shapes_dataset(n=400, validation_split=0, seed=0)
    means = [ds.train.x[ds.train.y == k].mean(axis=0) for k in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.allclose(means[i], means[j], atol=0.01)


def test_shapes_bad_classes():
    with pytest.raises(DatasetError, match="hexagon"):
        make_shapes_dataset(n=10, classes=("circle", "hexagon"))
    with pytest.raises(DatasetError, match="at least 2"):
        make_shapes_dataset(n=10, classes=("circle",))


# ---------------------------------------------------------------- npz


def test_npz_keras_layout_with_test_and_resize(tmp_path):
    x, y = small_images(40, 6, 6, classes=4)
    xt, yt = small_images(8, 6, 6, classes=4, seed=2)
    path = tmp_path / "mini.npz"
    np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt)
    ds = load_npz_dataset(path, (12, 12, 1), validation_split=0.25, seed=0)
    assert ds.name == "mini" and ds.class_names == ["0", "1", "2", "3"]
    assert len(ds.train) == 30 and len(ds.validation) == 10 and len(ds.test) == 8
    assert ds.sample_shape() == (12, 12, 1) and ds.test.x.shape == (8, 12, 12, 1)
    assert ds.train.x.min() >= 0 and ds.train.x.max() <= 1
    assert sum(ds.class_counts().values()) == 30 and set(ds.class_counts().values()) <= {7, 8}


def test_npz_xy_layout_one_hot_same_size_float(tmp_path):
    x, y = small_images(10, 5, 5, classes=2)
    x = x.astype(np.float32) / 255.0
    path = tmp_path / "xy.npz"
    np.savez(path, x=x[..., None], y=np.eye(3)[y])  # one-hot with an unused third class
    ds = load_npz_dataset(path, (5, 5, 1), validation_split=0.0)
    assert ds.test is None and ds.validation is None
    assert ds.class_names == ["0", "1", "2"]
    assert sorted(ds.train.y.tolist()) == sorted(y.tolist())
    # exact values kept when no resize is needed
    assert np.allclose(np.sort(ds.train.x.ravel()), np.sort(x.ravel()))


def test_npz_channels_repeated_for_rgb(tmp_path):
    x, y = small_images(6, 4, 4)
    path = tmp_path / "g.npz"
    np.savez(path, x=x, y=y)
    ds = load_npz_dataset(path, (4, 4, 3), validation_split=0)
    assert ds.sample_shape() == (4, 4, 3)
    assert np.array_equal(ds.train.x[..., 0], ds.train.x[..., 1])


def test_npz_deterministic_split(tmp_path):
    x, y = small_images(30, 4, 4, classes=3)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    a = load_npz_dataset(path, (4, 4, 1), seed=5)
    b = load_npz_dataset(path, (4, 4, 1), seed=5)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.validation.y, b.validation.y)
    assert sorted(np.bincount(a.validation.y).tolist()) == [2, 2, 2]  # stratified


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"images": np.zeros((2, 4, 4)), "labels": np.zeros(2)}, "x_train"),
        ({"x": np.zeros((3, 4, 4)), "y": np.zeros(2)}, "3 images but 2 labels"),
        ({"x": np.zeros((2, 4, 4)), "y": np.array([0.0, 1.5])}, "whole class numbers"),
        ({"x": np.zeros((2, 4, 4)), "y": np.array([0.0, np.nan])}, "NaN"),
        ({"x": np.full((2, 4, 4), np.nan), "y": np.array([0, 1])}, "NaN"),
        ({"x_train": np.zeros((2, 4, 4)), "y_train": np.array([0, 1]), "x_test": np.zeros((1, 4, 4))}, "y_test"),
        ({"x": np.zeros((2, 4, 4)), "y": np.array([0, -1])}, "0 or more"),
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=match):
        load_npz_dataset(path, (4, 4, 1))


def test_npz_refuses_pickled_objects_and_missing_file(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([object(), 1], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DatasetError, match="Python objects"):
        load_npz_dataset(path, (4, 4, 1))
    with pytest.raises(DatasetError, match="does not exist"):
        load_npz_dataset(tmp_path / "nope.npz", (4, 4, 1))
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ConvasError):
        load_npz_dataset(tmp_path / "junk.npz", (4, 4, 1))


# ---------------------------------------------------------------- csv


def write_csv(path, x, y, header=True, label_name="label", label_first=True):
    flat = x.reshape(len(x), -1)
    lines = []
    if header:
        cols = [f"pixel{i}" for i in range(flat.shape[1])]
        lines.append(",".join([label_name] + cols if label_first else cols + [label_name]))
    for row, label in zip(flat, y):
        cells = [str(int(v)) for v in row]
        lines.append(",".join([str(label)] + cells if label_first else cells + [str(label)]))
    path.write_text("\n".join(lines) + "\n")


def test_csv_with_header(tmp_path):
    x, y = small_images(20, 4, 4, classes=2)
    write_csv(tmp_path / "train.csv", x, y, header=True)
    ds = load_csv_dataset(tmp_path / "train.csv", (4, 4, 1), validation_split=0.2)
    assert ds.class_names == ["0", "1"] and len(ds.train) == 16 and len(ds.validation) == 4
    full = np.concatenate([ds.train.x, ds.validation.x])
    assert np.allclose(np.sort(full.ravel()), np.sort(x.ravel() / 255.0), atol=1e-6)


def test_csv_without_header_grey_to_rgb_and_test_file(tmp_path):
    x, y = small_images(12, 4, 4, classes=3)
    write_csv(tmp_path / "a.csv", x, y, header=False)
    write_csv(tmp_path / "b.csv", x[:5], y[:5], header=False)
    ds = load_csv_dataset(tmp_path / "a.csv", (4, 4, 3), validation_split=0, test_path=tmp_path / "b.csv")
    assert ds.sample_shape() == (4, 4, 3) and len(ds.train) == 12 and len(ds.test) == 5
    assert np.array_equal(ds.train.x[..., 0], ds.train.x[..., 2])
    assert ds.class_names == ["0", "1", "2"]


def test_csv_string_labels_named_column_last(tmp_path):
    x, _ = small_images(9, 3, 3)
    names = np.array(["dog", "cat", "bird"] * 3)
    write_csv(tmp_path / "s.csv", x, names, header=True, label_name="kind", label_first=False)
    ds = load_csv_dataset(tmp_path / "s.csv", (3, 3, 1), label_column="kind", validation_split=0)
    assert ds.class_names == ["bird", "cat", "dog"]
    assert ds.class_counts() == {"bird": 3, "cat": 3, "dog": 3}
    # string labels without header, first column
    write_csv(tmp_path / "n.csv", x, names, header=False)
    assert load_csv_dataset(tmp_path / "n.csv", (3, 3, 1), validation_split=0).class_names == ["bird", "cat", "dog"]


def test_csv_errors(tmp_path):
    x, y = small_images(4, 4, 4)
    write_csv(tmp_path / "p.csv", x, y)
    with pytest.raises(DatasetError, match=r"16 pixel columns .* needs 25"):
        load_csv_dataset(tmp_path / "p.csv", (5, 5, 1))
    (tmp_path / "nan.csv").write_text("label,a,b,c,d\n0,1,2,3,4\n1,1,,3,4\n")
    with pytest.raises(DatasetError, match="empty or NaN .* row 3"):
        load_csv_dataset(tmp_path / "nan.csv", (2, 2, 1))
    (tmp_path / "nan2.csv").write_text("0,1,2,3,4\n1,1,nan,3,4\n")
    with pytest.raises(DatasetError, match="NaN"):
        load_csv_dataset(tmp_path / "nan2.csv", (2, 2, 1))
    (tmp_path / "frac.csv").write_text("0.5,1,2,3,4\n1,1,2,3,4\n")
    with pytest.raises(DatasetError, match="whole class numbers"):
        load_csv_dataset(tmp_path / "frac.csv", (2, 2, 1))
    (tmp_path / "ragged.csv").write_text("0,1,2,3,4\n1,1,2,3\n")
    with pytest.raises(DatasetError, match="row 2"):
        load_csv_dataset(tmp_path / "ragged.csv", (2, 2, 1))
    (tmp_path / "text.csv").write_text("0,1,2,3,4\n1,1,x,3,4\n")
    with pytest.raises(DatasetError, match="not numbers"):
        load_csv_dataset(tmp_path / "text.csv", (2, 2, 1))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DatasetError, match="empty"):
        load_csv_dataset(tmp_path / "empty.csv", (2, 2, 1))
    with pytest.raises(DatasetError, match="no column named 'kind'"):
        load_csv_dataset(tmp_path / "p.csv", (4, 4, 1), label_column="kind")


# ---------------------------------------------------------------- image folder


def make_folder(root, per_class=5, classes=("cats", "dogs"), size=(6, 5), rgb=False):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            shape = size + ((3,) if rgb else ())
            write_png(root / name / f"{i}.png", rng.integers(0, 256, size=shape, dtype=np.uint8))
    return root


def test_image_folder_lazy_split(tmp_path):
    root = make_folder(tmp_path / "pets", per_class=5)
    (root / "dogs" / "notes.txt").write_text("ignored")
    ds = load_image_folder(root, (8, 8, 1), validation_split=0.2, seed=0)
    assert ds.class_names == ["cats", "dogs"] and ds.warnings == []
    assert len(ds.train) == 8 and len(ds.validation) == 2
    assert ds.train.x is None and ds.train.is_lazy and len(ds.train.paths) == 8
    assert ds.sample_shape() == (8, 8, 1)
    assert ds.class_counts() == {"cats": 4, "dogs": 4}
    again = load_image_folder(root, (8, 8, 1), validation_split=0.2, seed=0)
    assert again.train.paths == ds.train.paths


def test_image_folder_skips_and_reports_unreadable(tmp_path):
    root = make_folder(tmp_path / "pets", per_class=3)
    (root / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    (root / "dogs" / "fake.jpg").write_text("hello")
    (root / "dogs" / "zero.bmp").write_bytes(b"")
    ds = load_image_folder(root, (8, 8, 1), validation_split=0)
    assert len(ds.train) == 6
    assert len(ds.warnings) == 1 and "Skipped 3 unreadable images" in ds.warnings[0]
    for name in ("broken.png", "fake.jpg", "zero.bmp"):
        assert name in ds.warnings[0]


def test_image_folder_errors(tmp_path):
    root = make_folder(tmp_path / "pets", per_class=2)
    (root / "birds").mkdir()
    with pytest.raises(DatasetError, match="'birds'"):
        load_image_folder(root, (8, 8, 1))
    one = make_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(DatasetError, match="at least 2 class"):
        load_image_folder(one, (8, 8, 1))
    with pytest.raises(DatasetError, match="not a folder"):
        load_image_folder(tmp_path / "missing", (8, 8, 1))
    bad = make_folder(tmp_path / "bad", per_class=1)
    (bad / "cats" / "0.png").write_text("garbage")
    with pytest.raises(DatasetError, match="'cats'"):
        load_image_folder(bad, (8, 8, 1))


# ---------------------------------------------------------------- compatibility


def tiny(classes):
    split = Split(np.zeros((len(classes), 2, 2, 1), np.float32), np.arange(len(classes), dtype=np.int64))
    return Dataset("t", list(classes), split, None, None)


def test_check_compatibility():
    ten = tiny([str(i) for i in range(10)])
    assert check_compatibility(ten, 10, "softmax", "sparse_categorical_crossentropy") == []
    msgs = check_compatibility(ten, 4, "softmax", "sparse_categorical_crossentropy")
    assert msgs == ["The dataset has 10 classes but the last layer 'dense' has 4 units; set units=10."]
    assert any("one-hot" in m for m in check_compatibility(ten, 10, "softmax", "categorical_crossentropy"))
    assert any("softmax" in m for m in check_compatibility(ten, 10, "sigmoid", "sparse_categorical_crossentropy"))
    assert any("No loss" in m for m in check_compatibility(ten, 10, "softmax", None))
    assert any("regression" in m for m in check_compatibility(ten, 10, "softmax", "mse"))
    assert "'out'" in check_compatibility(ten, 3, "softmax", "sparse_categorical_crossentropy", layer_name="out")[0]
    two = tiny(["a", "b"])
    assert check_compatibility(two, 1, "sigmoid", "binary_crossentropy") == []
    assert check_compatibility(two, 2, "softmax", "SparseCategoricalCrossentropy") == []
    assert any("binary_crossentropy" in m for m in check_compatibility(two, 1, "sigmoid", "mse"))
    assert any("sigmoid" in m for m in check_compatibility(two, 1, "softmax", "binary_crossentropy"))


# ---------------------------------------------------------------- TensorFlow


@pytest.mark.slow
def test_as_tf_dataset_arrays_and_lazy_images(tmp_path):
    ds = make_shapes_dataset(n=20, input_shape=(16, 16, 1), validation_split=0)
    batches = list(ds.train.as_tf_dataset(batch_size=8, shuffle=True, seed=1))
    assert [int(b[0].shape[0]) for b in batches] == [8, 8, 4]
    assert tuple(batches[0][0].shape[1:]) == (16, 16, 1)
    again = list(ds.train.as_tf_dataset(batch_size=8, shuffle=True, seed=1))
    assert np.array_equal(batches[0][1].numpy(), again[0][1].numpy())

    root = make_folder(tmp_path / "pets", per_class=3, rgb=True)
    folder = load_image_folder(root, (8, 8, 3), validation_split=0)
    images, labels = next(iter(folder.train.as_tf_dataset(batch_size=6)))
    assert tuple(images.shape) == (6, 8, 8, 3) and labels.dtype.name == "int64"
    assert float(images.numpy().min()) >= 0.0 and float(images.numpy().max()) <= 1.0
    grey = load_image_folder(root, (5, 6, 1), validation_split=0)
    images, _ = next(iter(grey.train.as_tf_dataset(batch_size=2)))
    assert tuple(images.shape) == (2, 5, 6, 1)
