""".npz and .npy arrays stream: the images stay as stored (uint8 stays uint8, memory-mapped when
the file allows it), each split names its rows, and conversion to what the model sees happens
batch by batch. Every result is compared with the float copy a user got before."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from engine.data_source import load_dataset
from engine.datasets import (
    Dataset,
    DatasetError,
    Split,
    _fit_images,
    convert_images,
    load_npy_dataset,
    load_npz_dataset,
    split_indices,
)
from engine.pixel_range import PixelRange, deliver
from engine.task_data import task_data
from engine.tasks import TargetKind, Task


def images(n: int = 60, h: int = 8, w: int = 8, c: int | None = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, h, w) + ((c,) if c else ()), dtype=np.uint8)


def labels(n: int = 60, classes: int = 3) -> np.ndarray:
    return np.arange(n) % classes


def old_float_splits(x: np.ndarray, y: np.ndarray, shape, validation_split=0.25, seed=0, scale=1.0):
    """What the loader gave before it streamed: float32 [0, 1] copies of every split, × scale."""
    fitted = _fit_images(x, shape, "x") * np.float32(scale) if scale != 1 else _fit_images(x, shape, "x")
    train_idx, val_idx = split_indices(y, validation_split, seed)
    return (fitted[train_idx], y[train_idx]), (fitted[val_idx], y[val_idx])


def mapped(array: np.ndarray) -> bool:
    """Whether ``array`` reads its values from a file mapped into memory (not a copy in RAM)."""
    import mmap

    while array is not None and not isinstance(array, mmap.mmap):
        array = getattr(array, "base", None)
    return array is not None


def batches(data) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(a.numpy(), b.numpy()) for a, b in data]


# ------------------------------------------------------------------ stored as the file holds it


def test_uint8_npz_is_memory_mapped_bytes_shared_by_both_splits(tmp_path):
    x, y = images(), labels()
    path = tmp_path / "bytes.npz"
    np.savez(path, x=x, y=y)
    ds = load_npz_dataset(path, (8, 8, 3), validation_split=0.25, seed=0)
    assert ds.warnings == []
    for split in (ds.train, ds.validation):
        assert mapped(split.x) and split.x.dtype == np.uint8
    assert ds.train.x is ds.validation.x  # one array, two sets of rows
    assert sorted(np.concatenate([ds.train.rows, ds.validation.rows]).tolist()) == list(range(60))
    assert ds.sample_shape() == (8, 8, 3) and len(ds.train) == 45 and len(ds.validation) == 15
    (old_x, old_y), (old_vx, old_vy) = old_float_splits(x, y, (8, 8, 3))
    assert np.array_equal(ds.train.images(), old_x) and np.array_equal(ds.train.y, old_y)
    assert np.array_equal(ds.validation.images(), old_vx) and np.array_equal(ds.validation.y, old_vy)
    assert np.array_equal(ds.train.images([3, 0]), old_x[[3, 0]])


def test_delivering_0_255_copies_nothing(tmp_path):
    path = tmp_path / "bytes.npz"
    np.savez(path, x=images(), y=labels())
    unit = load_npz_dataset(path, (8, 8, 3))
    raw = deliver(unit, PixelRange.RAW)
    assert raw.train.x is unit.train.x and raw.train.pixel_scale == 255.0
    assert np.allclose(raw.train.images(), unit.train.images() * 255, rtol=1e-6)
    digits = load_dataset("digits", (8, 8, 1))
    raw_digits = deliver(digits, PixelRange.RAW)
    assert raw_digits.train.x is digits.train.x
    assert float(raw_digits.train.images().max()) == 255.0


def test_compressed_member_is_loaded_once_in_its_type_and_says_so(tmp_path):
    x, y = images(200, 16, 16), labels(200)
    path = tmp_path / "small.npz"
    np.savez_compressed(path, x=x, y=y)
    ds = load_npz_dataset(path, (16, 16, 3))
    assert not mapped(ds.train.x) and ds.train.x.dtype == np.uint8
    assert ds.train.x is ds.validation.x
    assert ds.warnings == ["small.npz: 'x' (150.0 KB) is compressed, so it was loaded into memory; save the "
                           "file with np.savez (not np.savez_compressed) to read it from disk as training needs it"]
    (old_x, _), _ = old_float_splits(x, y, (16, 16, 3), validation_split=0.2)
    assert np.array_equal(ds.train.images(), old_x)


def test_compressed_images_still_meet_the_memory_check(tmp_path, monkeypatch):
    path = tmp_path / "big.npz"
    np.savez_compressed(path, x=images(), y=labels())
    monkeypatch.setattr("engine.datasets.memory_budget", lambda: 1000)
    with pytest.raises(DatasetError, match=r"big.npz \(x, y: 11.7 KB of arrays\) needs about .* more than "
                                           r"Convas allows .* or save it with np.savez \(not np.savez_compressed\)"):
        load_npz_dataset(path, (8, 8, 3))


def test_a_memory_mapped_file_is_not_held_to_the_memory_budget(tmp_path, monkeypatch):
    path = tmp_path / "big.npz"
    np.savez(path, x=images(), y=labels())  # 11.5 KB of images, 480 bytes of labels
    monkeypatch.setattr("engine.datasets.memory_budget", lambda: 1000)
    assert len(load_npz_dataset(path, (8, 8, 3)).train) == 48


def test_fortran_ordered_images_are_loaded_with_a_warning(tmp_path):
    x, y = images(), labels()
    path = tmp_path / "f.npz"
    np.savez(path, x=np.asfortranarray(x), y=y)
    ds = load_npz_dataset(path, (8, 8, 3))
    assert not mapped(ds.train.x)
    assert "'x' (11.2 KB) is stored in Fortran (column) order, so it was loaded into memory" in ds.warnings[0]
    (old_x, _), _ = old_float_splits(x, y, (8, 8, 3), validation_split=0.2)
    assert np.array_equal(ds.train.images(), old_x)


def test_big_endian_floats_in_0_255_and_flat_rows(tmp_path):
    x, y = images(40, 4, 5, c=None), labels(40)
    stored = x.reshape(40, -1).astype(">f8")  # flat rows of big-endian float64 values 0..255
    path = tmp_path / "flat.npz"
    np.savez(path, x=stored, y=y)
    ds = load_npz_dataset(path, (4, 5, 1), validation_split=0.25)
    assert mapped(ds.train.x) and ds.train.x.dtype == np.dtype(">f8")
    assert ds.train.x.shape == (40, 4, 5, 1) and ds.train.x_full_scale == 255.0
    (old_x, old_y), _ = old_float_splits(stored, y, (4, 5, 1))
    assert np.array_equal(ds.train.images(), old_x)
    (got_x, got_y), = batches(ds.train.as_tf_dataset(64))
    assert got_x.dtype == np.float32 and np.array_equal(got_x, old_x) and np.array_equal(got_y, old_y)


# ------------------------------------------------------------------ the pipeline, batch by batch


@pytest.mark.parametrize("stored, shape, pixel_range", [
    ((20, 20, 3), (8, 8, 3), PixelRange.UNIT),    # bytes, smaller input: resized per batch
    ((6, 6, 1), (12, 12, 3), PixelRange.RAW),     # grey bytes to a larger RGB input, delivered 0-255
    ((10, 10, 4), (10, 10, 1), PixelRange.UNIT),  # RGBA made grey
])
def test_batches_equal_the_old_float_path(tmp_path, stored, shape, pixel_range):
    import tensorflow as tf

    h, w, c = stored
    x, y = images(100, h, w, c), labels(100, 4)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    ds = load_dataset(str(path), shape, 0.25, 0, pixel_range)
    (old_x, old_y), (old_vx, old_vy) = old_float_splits(x, y, shape, scale=pixel_range.scale)
    tolerance = 1e-5 * pixel_range.scale  # TensorFlow's bilinear resize against numpy's
    assert np.allclose(ds.train.images(), old_x, atol=tolerance, rtol=0)
    # Shuffled as before: the same samples in the same order, epoch after epoch.
    before = tf.data.Dataset.from_tensor_slices((old_x, old_y)).shuffle(len(old_y), seed=5).batch(16)
    now = ds.train.as_tf_dataset(16, shuffle=True, seed=5)
    for _ in range(2):
        pairs = list(zip(batches(before), batches(now), strict=True))
        for (a, b), (c_, d) in pairs:
            assert np.array_equal(b, d) and a.shape == c_.shape
            assert np.allclose(a, c_, atol=tolerance, rtol=0)
    # Unbatched (the tasks' pipeline) and unshuffled (validation): the old order too.
    samples = batches(ds.validation.tf_samples().batch(7))
    assert np.allclose(np.concatenate([a for a, _ in samples]), old_vx, atol=tolerance, rtol=0)
    assert np.array_equal(np.concatenate([b for _, b in samples]), old_vy)


def test_numpy_and_tensorflow_conversions_agree_on_a_downscale():
    import tensorflow as tf

    raw = images(5, 64, 48, 3)
    split = Split(raw, np.zeros(5, np.int64), image_shape=(32, 20, 1), x_full_scale=255.0)
    (piped, _), = batches(split.as_tf_dataset(8))
    assert np.allclose(piped, convert_images(raw, 255.0, (32, 20, 1)), atol=1e-5, rtol=0)
    resized = tf.image.resize(raw.astype(np.float32) / 255, (32, 20)).numpy()
    grey = resized @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.allclose(piped[..., 0], grey, atol=1e-5)


def test_tasks_stream_npz_masks_and_reconstruction(tmp_path):
    x = images(24, 8, 8, 1)
    masks = (x[..., 0] > 128).astype(np.uint8)
    path = tmp_path / "seg.npz"
    np.savez(path, x=x, y=masks)
    ds = load_npz_dataset(path, (8, 8, 1), validation_split=0.25, task=Task.SEGMENTATION)
    assert ds.target is TargetKind.MASK and ds.train.x.dtype == np.uint8
    fed = task_data(ds.train, Task.SEGMENTATION, loss="dice", classes=2)
    assert int(fed.as_tf_dataset(8).cardinality()) == 3  # counted: Keras knows each epoch's length
    (got_x, got_masks), = batches(fed.as_tf_dataset(32))
    assert got_masks.shape == (18, 8, 8, 2)
    assert np.array_equal(got_masks.argmax(-1), ds.train.y)
    assert np.array_equal(got_x, ds.train.images())
    again = task_data(ds.validation, Task.RECONSTRUCTION)
    (inputs, targets), = batches(again.as_tf_dataset(32))
    assert np.array_equal(inputs, targets) and np.array_equal(inputs, ds.validation.images())


def test_a_model_trains_on_a_memory_mapped_file(tmp_path):
    import keras

    x = images(64, 8, 8, 1)
    y = (x.reshape(64, -1).mean(axis=1) > 127.5).astype(np.int64)
    path = tmp_path / "train.npz"
    np.savez(path, x=x, y=y)
    ds = load_npz_dataset(path, (8, 8, 1), validation_split=0.25)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(ds.train.as_tf_dataset(16, shuffle=True), epochs=2, verbose=0, shuffle=False,
                        validation_data=ds.validation.as_tf_dataset(16))
    assert all(np.isfinite(history.history["loss"])) and len(history.history["val_loss"]) == 2


# ------------------------------------------------------------------ .npy files


def test_npy_folder_and_a_named_npy_file(tmp_path):
    x, y = images(40, 6, 6, 3), labels(40, 2)
    folder = tmp_path / "arrays"
    folder.mkdir()
    np.save(folder / "x_train.npy", x)
    np.save(folder / "y_train.npy", y)
    np.save(folder / "x_test.npy", x[:10])
    np.save(folder / "y_test.npy", y[:10])
    for source in (folder, folder / "x_train.npy", folder / "y_train.npy"):
        ds = load_dataset(str(source), (6, 6, 3), 0.25, 0)
        assert ds.name == "arrays" and ds.class_names == ["0", "1"] and ds.warnings == []
        assert mapped(ds.train.x) and ds.train.x.dtype == np.uint8
        assert len(ds.train) == 30 and len(ds.validation) == 10 and len(ds.test) == 10
        (old_x, _), _ = old_float_splits(x, y, (6, 6, 3))
        assert np.array_equal(ds.train.images(), old_x)
        assert np.array_equal(ds.test.images(), _fit_images(x[:10], (6, 6, 3), "x"))


def test_npy_files_are_checked_like_npz_members(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    np.save(folder / "y.npy", labels(20))
    header = np.lib.format.header_data_from_array_1_0(images(20, 4, 4, 1))
    header["shape"] = (10**9, 4, 4, 1)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    (folder / "x.npy").write_bytes(buffer.getvalue() + images(20, 4, 4, 1).tobytes())
    with pytest.raises(DatasetError, match=r"bad: the array 'x' is damaged or truncated: its header declares "
                                           r"the shape \(1000000000, 4, 4, 1\) \(14.9 GB\), but the file holds 320"):
        load_npy_dataset(folder, (4, 4, 1))
    np.save(folder / "x.npy", np.array([object()] * 20, dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match="stores Python objects in 'x'"):
        load_npy_dataset(folder, (4, 4, 1))
    (folder / "x.npy").write_text("not an array")
    with pytest.raises(DatasetError, match=r"bad: x.npy is not a .npy file"):
        load_npy_dataset(folder, (4, 4, 1))
    np.save(tmp_path / "images.npy", images(4))
    with pytest.raises(DatasetError, match="images.npy is a single array; Convas reads .npy files named as np.savez"):
        load_dataset(str(tmp_path / "images.npy"), (8, 8, 3))
    only_x = tmp_path / "only_x"
    only_x.mkdir()
    np.save(only_x / "x.npy", images(4))
    with pytest.raises(DatasetError, match=r"only_x has .npy files \['x'\] but needs 'x_train' and 'y_train'"):
        load_dataset(str(only_x), (8, 8, 3))


def test_npz_member_not_where_the_directory_says_is_damaged_not_mapped(tmp_path):
    """A stored member whose local header is not where the central directory points is left to
    zipfile, which names the damage, instead of being mapped from the wrong bytes."""
    path = tmp_path / "moved.npz"
    np.savez(path, x=images(), y=labels())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo("x.npy").header_offset
    data[offset:offset + 4] = b"XXXX"
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="the array 'x' is damaged"):
        load_npz_dataset(path, (8, 8, 3))


def test_a_file_cut_short_while_mapped_is_a_message_not_a_crash(tmp_path):
    """Saving a dataset again under the same name truncates the file; reading a mapped page past
    its new end would kill the process (SIGBUS), so every read first checks the file's size."""
    import os

    from dataclasses import replace

    path = tmp_path / "rewritten.npz"
    np.savez(path, x=images(2000, 32, 32), y=labels(2000))
    ds = load_npz_dataset(path, (32, 32, 3))
    from_map = replace(ds.train, x_file=None)  # where os.preadv does not exist (Windows)
    assert np.array_equal(ds.train.images([0, 7]), from_map.images([0, 7]))
    os.truncate(path, 100_000)
    for split in (ds.train, from_map):
        with pytest.raises(DatasetError, match=r"the images' file was changed on disk while Convas reads it \(it "
                                               r"now holds 97.7 KB, less than the 5.9 MB it held\); load the dataset"):
            split.images([5])


def test_batches_are_read_from_the_file_not_through_its_map(tmp_path):
    """Rows are read with pread (one read per run of consecutive rows), so the process holds the
    batch, not the file's pages; the bytes are the map's."""
    x = images(300, 5, 7)
    path = tmp_path / "rows.npz"
    np.savez(path, x=x, y=labels(300))
    ds = load_npz_dataset(path, (5, 7, 3), validation_split=0)
    assert ds.train.x_file is not None and ds.train.x_file.rows == 300 and ds.train.x_file.row_bytes == 105
    rows = np.array([0, 1, 2, 3, 50, 51, 52, 299])
    assert np.array_equal(ds.train.x_file.read(rows).reshape(-1, 5, 7, 3), x[rows])
    assert np.array_equal(ds.train.stored_rows(np.arange(300)), x[ds.train.rows])
    with pytest.raises(IndexError):
        ds.train.x_file.read(np.array([299, 300]))


def test_split_images_of_generated_data_are_its_own_array():
    ds = load_dataset("digits", (8, 8, 1), 0.2, 0)
    assert ds.train.rows is None and ds.train.x.dtype == np.float32
    assert np.array_equal(ds.train.images(), ds.train.x)
    dataset = Dataset("d", ["a"], ds.train)
    assert np.array_equal(dataset.train.images([2]), ds.train.x[[2]])
