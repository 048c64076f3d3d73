"""The dataset layer: built-in, generated, npz, csv and image-folder loaders, errors and compatibility."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

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
    assert ds.sample_shape() == (12, 12, 1) and ds.test.images().shape == (8, 12, 12, 1)
    assert ds.train.images().min() >= 0 and ds.train.images().max() <= 1
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
    assert np.allclose(np.sort(ds.train.images().ravel()), np.sort(x.ravel()))


def test_npz_channels_repeated_for_rgb(tmp_path):
    x, y = small_images(6, 4, 4)
    path = tmp_path / "g.npz"
    np.savez(path, x=x, y=y)
    ds = load_npz_dataset(path, (4, 4, 3), validation_split=0)
    assert ds.sample_shape() == (4, 4, 3)
    assert np.array_equal(ds.train.images()[..., 0], ds.train.images()[..., 1])


def test_npz_deterministic_split(tmp_path):
    x, y = small_images(30, 4, 4, classes=3)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    a = load_npz_dataset(path, (4, 4, 1), seed=5)
    b = load_npz_dataset(path, (4, 4, 1), seed=5)
    assert np.array_equal(a.train.images(), b.train.images()) and np.array_equal(a.validation.y, b.validation.y)
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


# ---------------------------------------------------------------- hardening (issue 13)
# Each test below generates inputs of one class of hostile or damaged data and checks that the
# loader refuses (or skips) it with a message that says what is wrong, before allocating anything.


def npy_bytes(array: np.ndarray, **header_changes) -> bytes:
    """The .npy file of ``array``, its header's fields replaced by ``header_changes`` (so the
    header may lie about the shape while the data stays small)."""
    import io

    header = np.lib.format.header_data_from_array_1_0(array)
    header.update(header_changes)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + array.tobytes()


def write_npz(path, **members: bytes) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for key, data in members.items():
            archive.writestr(f"{key}.npy", data)


GOOD_X = np.zeros((20, 4, 4), np.uint8)
GOOD_Y = np.arange(20) % 2


@settings(max_examples=25, deadline=None)
@given(value=st.one_of(st.integers(-5, 5), st.floats(allow_nan=False)), in_x=st.booleans())
def test_npz_zero_dimensional_arrays_are_named(tmp_path_factory, value, in_x):
    path = tmp_path_factory.mktemp("npz") / "scalar.npz"
    arrays = {"x": np.asarray(value), "y": GOOD_Y} if in_x else {"x": GOOD_X, "y": np.asarray(value)}
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match="single value"):
        load_npz_dataset(path, (4, 4, 1))


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 10**6), min_size=1, max_size=4).filter(lambda s: np.prod(s, dtype=object) > 400),
       key=st.sampled_from(["x", "y"]))
def test_npz_header_declaring_more_data_than_stored_is_refused_before_allocating(tmp_path_factory, shape, key):
    path = tmp_path_factory.mktemp("npz") / "liar.npz"
    members = {"x": npy_bytes(GOOD_X), "y": npy_bytes(GOOD_Y)}
    members[key] = npy_bytes(GOOD_X if key == "x" else GOOD_Y, shape=tuple(shape))
    write_npz(path, **members)
    with pytest.raises(DatasetError, match=rf"'{key}' is damaged or truncated: its header declares the shape"):
        load_npz_dataset(path, (4, 4, 1))


def test_npz_declaring_a_trillion_elements(tmp_path):
    path = tmp_path / "huge.npz"
    write_npz(path, x=npy_bytes(GOOD_X, shape=(10**12,)), y=npy_bytes(GOOD_Y))
    with pytest.raises(DatasetError, match=r"\(1000000000000,\) \(931.3 GB\), but the file holds 320 bytes"):
        load_npz_dataset(path, (4, 4, 1))


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(1, 319), negative=st.integers(-10**6, -1))
def test_npz_truncated_or_negative_is_damaged_not_python_objects(tmp_path_factory, cut, negative):
    folder = tmp_path_factory.mktemp("npz")
    write_npz(folder / "cut.npz", x=npy_bytes(GOOD_X)[:-cut], y=npy_bytes(GOOD_Y))
    with pytest.raises(DatasetError, match="truncated") as info:
        load_npz_dataset(folder / "cut.npz", (4, 4, 1))
    assert "Python objects" not in str(info.value)
    write_npz(folder / "neg.npz", x=npy_bytes(GOOD_X, shape=(negative, 4, 4)), y=npy_bytes(GOOD_Y))
    with pytest.raises(DatasetError, match="sizes cannot be negative") as info:
        load_npz_dataset(folder / "neg.npz", (4, 4, 1))
    assert "Python objects" not in str(info.value)


def test_npz_beyond_the_memory_budget_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.npz"
    np.savez_compressed(path, x=GOOD_X, y=GOOD_Y)  # loaded into memory (a stored array is memory-mapped)
    monkeypatch.setattr("engine.datasets.memory_budget", lambda: 100)
    with pytest.raises(DatasetError, match=r"big.npz \(x, y: .* of arrays\) needs about .* more than Convas allows"):
        load_npz_dataset(path, (4, 4, 1))


def test_a_single_npy_is_refused_without_reading_its_data(tmp_path):
    path = tmp_path / "one.npz"
    path.write_bytes(npy_bytes(GOOD_X, shape=(10**12,)))
    with pytest.raises(DatasetError, match="holds a single array"):
        load_npz_dataset(path, (4, 4, 1))


@settings(max_examples=10, deadline=None)
@given(height=st.integers(20_000, 10**6), width=st.integers(20_000, 10**6))
def test_resizing_beyond_memory_is_explained_before_allocating(height, width):
    with pytest.raises(DatasetError, match=r"digits: fitting 1,797 images of 8×8×1 to the input .* needs about "
                                           r".* more than Convas allows .* such as the images' own \(8, 8, 1\)"):
        load_digits_dataset((height, width, 1))
    with pytest.raises(DatasetError, match="the shapes dataset .* more than Convas allows"):
        make_shapes_dataset(2000, (height, width, 1))


def test_resizing_in_pieces_matches_resizing_at_once(monkeypatch):
    images = np.random.default_rng(0).random((7, 5, 6, 2)).astype(np.float32)
    whole = resize_bilinear(images, 9, 4)
    assert whole.shape == (7, 9, 4, 2) and whole.dtype == np.float32
    for i in range(7):
        assert np.allclose(resize_bilinear(images[i:i + 1], 9, 4)[0], whole[i])


WILD_FLOATS = st.one_of(st.sampled_from([np.inf, -np.inf, 1e300, -1e300, 1e12, 2.0**63, 2.0**64]),
                        st.floats(min_value=1e6, max_value=1e308), st.floats(max_value=-1, min_value=-1e308))


@settings(max_examples=40, deadline=None)
@given(wild=WILD_FLOATS, index=st.integers(0, 19))
def test_npz_wild_float_labels_are_named_not_wrapped(tmp_path_factory, wild, index):
    path = tmp_path_factory.mktemp("npz") / "wild.npz"
    y = (np.arange(20) % 2).astype(np.float64)
    y[index] = wild
    np.savez(path, x=GOOD_X, y=y)
    with pytest.raises(DatasetError) as info:
        load_npz_dataset(path, (4, 4, 1))
    message = str(info.value)
    assert "-9223372036854775808" not in message
    assert f"at index {index}" in message, message


@settings(max_examples=40, deadline=None)
@given(wild=st.integers(1000, 10**6), index=st.integers(0, 19),
       dtype=st.sampled_from([np.int64, np.uint64, np.uint32, np.float64]))
def test_npz_one_huge_label_is_reported_not_made_into_classes(tmp_path_factory, wild, index, dtype):
    path = tmp_path_factory.mktemp("npz") / "wild.npz"
    y = (np.arange(20) % 2).astype(dtype)
    y[index] = wild
    np.savez(path, x=GOOD_X, y=y)
    with pytest.raises(DatasetError, match=rf"label {wild} at index {index} is out of range: .* the data has 20 "
                                           r"samples \(and no design says how many classes\), so no label can be "
                                           r"above 999"):
        load_npz_dataset(path, (4, 4, 1))
    with pytest.raises(DatasetError, match=rf"label {wild} at index {index} .* the design has 64 output units "
                                           r"and the data 20 samples, so no label can be above 63"):
        load_npz_dataset(path, (4, 4, 1), output_units=64)


def test_a_trillion_as_a_label_is_one_wild_label(tmp_path):
    for dtype in (np.int64, np.uint64, np.float64):
        y = (np.arange(20) % 2).astype(dtype)
        y[16] = 10**12
        np.savez(tmp_path / "t.npz", x=GOOD_X, y=y)
        with pytest.raises(DatasetError, match="label 1000000000000 at index 16 is out of range"):
            load_npz_dataset(tmp_path / "t.npz", (4, 4, 1), output_units=10)


def test_labels_up_to_the_units_or_the_samples_are_classes(tmp_path):
    y = np.arange(20) % 2
    y[3] = 30  # 31 classes: fits 64 output units (dataset_problems then explains the mismatch)
    np.savez(tmp_path / "ok.npz", x=GOOD_X, y=y)
    assert len(load_npz_dataset(tmp_path / "ok.npz", (4, 4, 1), output_units=64).class_names) == 31
    y[3] = 19  # 20 classes for 20 samples, whatever the design
    np.savez(tmp_path / "ok.npz", x=GOOD_X, y=y)
    assert len(load_npz_dataset(tmp_path / "ok.npz", (4, 4, 1), output_units=10).class_names) == 20
    y[3] = 999  # without a design, up to 1,000 classes however few the samples
    np.savez(tmp_path / "ok.npz", x=GOOD_X, y=y)
    assert len(load_npz_dataset(tmp_path / "ok.npz", (4, 4, 1)).class_names) == 1000


@settings(max_examples=30, deadline=None)
@given(label=st.one_of(st.sampled_from(["inf", "-inf", "1e300", "1000000000000", "Infinity", "-1"]),
                       st.integers(21, 10**15).map(str)),
       index=st.integers(0, 19), header=st.booleans())
def test_csv_wild_labels_are_named_by_row(tmp_path_factory, label, index, header):
    path = tmp_path_factory.mktemp("csv") / "wild.csv"
    x, y = small_images(n=20, h=2, w=2)
    labels = [str(v) for v in y]
    labels[index] = label
    write_csv(path, x, labels, header=header)
    with pytest.raises(DatasetError) as info:
        load_csv_dataset(path, (2, 2, 1), output_units=10)
    message = str(info.value)
    assert f"in row {index + (2 if header else 1)}" in message, message
    assert "-9223372036854775808" not in message


def test_csv_huge_label_names_the_row_and_the_units(tmp_path):
    x, y = small_images(n=20, h=2, w=2)
    labels = [str(v) for v in y]
    labels[15] = "1000000000000"
    write_csv(tmp_path / "t.csv", x, labels)
    with pytest.raises(DatasetError, match="label 1000000000000 in row 17 is out of range: .*the design has 10 "
                                           "output units"):
        load_csv_dataset(tmp_path / "t.csv", (2, 2, 1), output_units=10)


def test_one_hot_labels_wider_than_the_classes_can_be(tmp_path):
    np.savez(tmp_path / "wide.npz", x=GOOD_X, y=np.eye(20, 5000)[np.arange(20) % 2])
    with pytest.raises(DatasetError, match="one-hot labels have 5,000 columns"):
        load_npz_dataset(tmp_path / "wide.npz", (4, 4, 1), output_units=10)
    with pytest.raises(DatasetError, match="one-hot labels have 5,000 columns"):
        load_npz_dataset(tmp_path / "wide.npz", (4, 4, 1))


# A pipe, a socket or a device named like a dataset: opening it for reading would wait forever.


def _special_file(path: Path, kind: str) -> Path:
    import os
    import socket

    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":  # bound by its short relative name: socket paths are limited to ~100 bytes
        server, here = socket.socket(socket.AF_UNIX), os.getcwd()
        os.chdir(path.parent)
        try:
            server.bind(path.name)
        finally:
            os.chdir(here)
            server.close()
    else:
        path.symlink_to("/dev/zero")
    return path


def _within(seconds: float, call):
    """``call()``'s result, or a failure (not a hang) when it has not returned in time."""
    import threading

    result: dict[str, object] = {}

    def run():
        try:
            result["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "the loader is still waiting on the file"
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]


def _release(path: Path) -> None:
    """Let a reader blocked on the FIFO ``path`` go (only a broken loader would be one)."""
    import os

    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("kind, what", [("fifo", "a named pipe"), ("socket", "a socket"), ("device", "a device")])
@pytest.mark.parametrize("loader, name", [
    (lambda p: load_npz_dataset(p, (4, 4, 1)), "data.npz"),
    (lambda p: load_csv_dataset(p, (4, 4, 1)), "data.csv"),
    (lambda p: load_csv_dataset(p.with_name("ok.csv"), (4, 4, 1), test_path=p), "test.csv"),
])
def test_special_files_are_refused_without_blocking(tmp_path, kind, what, loader, name):
    x, y = small_images(n=6, h=4, w=4)
    write_csv(tmp_path / "ok.csv", x, y)
    path = _special_file(tmp_path / name, kind)
    try:
        with pytest.raises(DatasetError, match=f"{name} is {what}.*, not a regular file"):
            _within(10, lambda: loader(path))
    finally:
        if kind == "fifo":
            _release(path)


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
def test_special_files_in_an_image_folder_are_skipped_and_counted(tmp_path):
    root = make_folder(tmp_path / "pets", per_class=3)
    _special_file(root / "cats" / "pipe.png", "fifo")
    _special_file(root / "dogs" / "zero.jpg", "device")
    try:
        ds = _within(60, lambda: load_image_folder(root, (8, 8, 1), validation_split=0))
    finally:
        _release(root / "cats" / "pipe.png")
    assert len(ds.train) == 6
    assert "Skipped 2 unreadable images" in ds.warnings[0]
    assert "cats/pipe.png is a named pipe (FIFO), not a regular file" in ds.warnings[0]
    assert "dogs/zero.jpg is a device, not a regular file" in ds.warnings[0]


# Damaged images that pass a header sniff: every file is decoded (as training will) first.


def png_bytes(image: np.ndarray) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "i.png"
        write_png(path, image)
        return path.read_bytes()


def bmp_bytes(width: int, height: int, pixels: bytes | None = None) -> bytes:
    """A 24-bit BMP; ``pixels`` replaces the pixel data (garbage, or too little of it)."""
    row = (width * 3 + 3) // 4 * 4
    data = bytes(range(256)) * (row * height // 256 + 1)
    data = data[:row * height] if pixels is None else pixels
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(data), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(header) + len(data), 0, 0, 54) + header + data


def jpeg_bytes(image: np.ndarray) -> bytes:
    import tensorflow as tf

    return tf.io.encode_jpeg(image).numpy()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose (well-formed, checksummed) header claims a size its tiny data does not have."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


RNG_IMAGE = np.random.default_rng(3).integers(0, 256, size=(12, 10, 3), dtype=np.uint8)


@st.composite
def damaged_images(draw):
    """(file name, bytes) of an image that sniffs as PNG, JPEG or BMP but does not decode."""
    kind = draw(st.sampled_from(["png", "jpg", "bmp-garbage", "bmp-short", "png-huge", "jpg-huge"]))
    if kind == "png":
        data = png_bytes(RNG_IMAGE)
        return "t.png", data[:draw(st.integers(34, len(data) - 13))]  # cut inside the pixel data
    if kind == "jpg":
        data = jpeg_bytes(RNG_IMAGE)
        return "t.jpg", data[:draw(st.integers(len(data) // 2, len(data) - 40))]
    if kind == "bmp-garbage":  # header of a big image, a little garbage behind it
        garbage = draw(st.binary(min_size=0, max_size=64))
        return "g.bmp", bmp_bytes(draw(st.integers(20, 4000)), draw(st.integers(20, 4000)), garbage)
    if kind == "bmp-short":
        return "s.bmp", bmp_bytes(16, 16)[:draw(st.integers(60, 54 + 16 * 48 - 1))]
    if kind == "png-huge":
        side = draw(st.integers(8_000, 100_000))
        return "h.png", png_claiming(side, side)
    data = jpeg_bytes(RNG_IMAGE)  # a JPEG whose frame header claims 60000×60000
    at = data.index(b"\xff\xc0") + 5
    return "h.jpg", data[:at] + struct.pack(">HH", 60000, 60000) + data[at + 4:]


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(bad=st.lists(damaged_images(), min_size=1, max_size=8), channels=st.sampled_from([1, 3]))
def test_damaged_images_are_skipped_named_and_counted_before_training(tmp_path_factory, bad, channels):
    root = make_folder(tmp_path_factory.mktemp("img") / "pets", per_class=3, rgb=True)
    names = []
    for i, (name, data) in enumerate(bad):
        target = root / ("cats", "dogs")[i % 2] / f"{i}{name}"
        target.write_bytes(data)
        names.append(f"{target.parent.name}/{target.name}")
    ds = load_image_folder(root, (8, 8, channels), validation_split=0)
    assert len(ds.train) == 6, ds.warnings
    plural = "s" if len(bad) > 1 else ""
    assert ds.warnings[0].startswith(f"Skipped {len(bad)} unreadable image{plural}: "), ds.warnings
    assert sum(name in ds.warnings[0] for name in names) == min(len(bad), 5)  # the first few by name
    if len(bad) > 5:
        assert ds.warnings[0].endswith(f"; and {len(bad) - 5} more")
    images, _ = next(iter(ds.train.as_tf_dataset(batch_size=6)))  # what training reads decodes
    assert tuple(images.shape) == (6, 8, 8, channels)


def test_damaged_images_say_why(tmp_path):
    root = make_folder(tmp_path / "pets", per_class=2, rgb=True)
    data = png_bytes(RNG_IMAGE)
    (root / "cats" / "cut.png").write_bytes(data[:len(data) // 2])
    (root / "cats" / "huge.png").write_bytes(png_claiming(100_000, 100_000))
    (root / "dogs" / "garbage.bmp").write_bytes(bmp_bytes(300, 300, b"garbage"))
    warning = load_image_folder(root, (8, 8, 3), validation_split=0).warnings[0]
    assert "cats/cut.png cannot be decoded (Invalid PNG data" in warning
    assert "cats/huge.png declares 100,000×100,000 pixels, more than the 50,000,000 Convas decodes" in warning
    assert "dogs/garbage.bmp cannot be decoded (" in warning


def test_a_class_of_only_damaged_images_is_an_error_naming_them(tmp_path):
    root = make_folder(tmp_path / "pets", per_class=2)
    for name in ("0.png", "1.png"):
        data = (root / "cats" / name).read_bytes()
        (root / "cats" / name).write_bytes(data[:-20])
    with pytest.raises(DatasetError, match=r"'cats' .* no readable .* Skipped 2 unreadable images: "
                                           r"cats/0.png cannot be decoded .*; cats/1.png cannot be decoded"):
        load_image_folder(root, (8, 8, 1))


def test_bmp_images_train_on_a_grey_input(tmp_path):
    root = tmp_path / "bmps"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(2):
            (root / name / f"{i}.bmp").write_bytes(bmp_bytes(10, 7))
    for channels in (1, 3):
        ds = load_image_folder(root, (5, 5, channels), validation_split=0)
        assert ds.warnings == [] and len(ds.train) == 4
        images, _ = next(iter(ds.train.as_tf_dataset(batch_size=4)))
        assert tuple(images.shape) == (4, 5, 5, channels)
        assert ds.train.images([0, 1]).shape == (2, 5, 5, channels)


def test_image_checks_are_cached_by_path_size_and_time(tmp_path, monkeypatch):
    import os

    import engine.datasets as datasets

    monkeypatch.setenv("CONVAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "IMAGE_CHECKS", datasets.ImageChecks())
    root = make_folder(tmp_path / "pets", per_class=3)
    data = (root / "dogs" / "0.png").read_bytes()
    (root / "dogs" / "0.png").write_bytes(data[:-20])
    decoded: list[str] = []
    real = datasets._decode_problem
    monkeypatch.setattr(datasets, "_decode_problem", lambda p, c: decoded.append(p.name) or real(p, c))

    def load(checks):
        monkeypatch.setattr(datasets, "IMAGE_CHECKS", checks)
        return load_image_folder(root, (8, 8, 1), validation_split=0)

    first = load(datasets.ImageChecks())
    assert len(decoded) == 6 and "dogs/0.png cannot be decoded" in first.warnings[0]
    decoded.clear()
    second = load(datasets.ImageChecks())  # a new process: the cache file answers
    assert decoded == [] and second.warnings == first.warnings
    assert second.train.paths == first.train.paths
    (root / "dogs" / "0.png").write_bytes(data)  # repaired: a new size and time
    os.utime(root / "cats" / "1.png", ns=(1, 1))  # touched
    third = load(datasets.ImageChecks())
    assert sorted(decoded) == ["0.png", "1.png"] and third.warnings == [] and len(third.train) == 6
