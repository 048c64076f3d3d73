"""What each task feeds the network (engine.task_data), the task chosen for a design and its
data (choose_task), and every data/design mismatch per task explained with its fix before any
training (dataset_problems). TensorFlow only for the tf.data pipelines."""

from __future__ import annotations

import numpy as np
import pytest
from test_task_datasets import make_mask_folder

from engine.data_source import ModelIO, choose_task, dataset_problems, load_dataset
from engine.datasets import Dataset, DatasetError, Split
from engine.pixel_range import PixelRange
from engine.task_data import task_data
from engine.tasks import TargetKind, Task


def batches(data, batch_size=4, shuffle=False, seed=0):
    return [(x.numpy(), y.numpy()) for x, y in data.as_tf_dataset(batch_size, shuffle, seed)]


def images(n=8, shape=(4, 4, 1), seed=0, scale=1.0):
    return (np.random.default_rng(seed).random((n, *shape)) * scale).astype(np.float32)


# ---------------------------------------------------------------- the pipeline

def test_noise_is_reproducible_varies_per_epoch_and_the_target_is_clean():
    x = images()
    split = Split(x, np.zeros((8, 0), np.float32))
    data = task_data(split, Task.RECONSTRUCTION, noise_stddev=0.3, seed=5)
    assert len(data) == 8
    stream = data.as_tf_dataset(8, shuffle=True, seed=1)
    (noisy1, clean1), = [(a.numpy(), b.numpy()) for a, b in stream]
    (noisy2, clean2), = [(a.numpy(), b.numpy()) for a, b in stream]  # the next epoch
    order = [int(np.flatnonzero((x == c).all(axis=(1, 2, 3)))[0]) for c in clean1]
    np.testing.assert_array_equal(clean1, x[order])  # targets: the images themselves
    assert not np.allclose(noisy1, clean1) and noisy1.min() >= 0 and noisy1.max() <= 1
    assert 0.2 < np.std(noisy1 - clean1) < 0.35  # σ 0.3, a little less where clipped
    assert not np.allclose(noisy1 - clean1, noisy2 - clean2[[list(map(bytes, clean2)).index(bytes(c))
                                                              for c in clean1]])
    again = task_data(split, Task.RECONSTRUCTION, noise_stddev=0.3, seed=5)
    np.testing.assert_array_equal(batches(again, 8, True, 1)[0][0], noisy1)  # the same run, the same noise
    other = task_data(split, Task.RECONSTRUCTION, noise_stddev=0.3, seed=6)
    assert not np.allclose(batches(other, 8, True, 1)[0][0], noisy1)


def test_validation_noise_is_the_same_every_pass_and_follows_the_pixel_range():
    x = images(scale=255.0)
    data = task_data(Split(x, np.zeros(8, np.int64)), Task.RECONSTRUCTION, noise_stddev=0.1, seed=2,
                     pixel_range=PixelRange.RAW)
    first, second = batches(data), batches(data)
    for (a, clean), (b, _) in zip(first, second):
        np.testing.assert_array_equal(a, b)
        assert a.min() >= 0 and a.max() <= 255 and 15 < np.std(a - clean) < 30  # 0.1 of 255
    plain = batches(task_data(Split(x, np.zeros(8, np.int64)), Task.RECONSTRUCTION))
    np.testing.assert_array_equal(plain[0][0], plain[0][1])


def test_targets_per_task():
    x = images()
    label = batches(task_data(Split(x, np.arange(8) % 2), Task.CLASSIFICATION))
    assert label[0][1].dtype == np.int64 and label[0][1].tolist() == [0, 1, 0, 1]
    values = batches(task_data(Split(x, np.arange(16, dtype=np.float64).reshape(8, 2)), Task.REGRESSION))
    assert values[0][1].dtype == np.float32 and values[0][1].shape == (4, 2)
    multi = batches(task_data(Split(x, np.eye(8, 3, dtype=np.int64)), Task.MULTILABEL))
    assert multi[0][1].dtype == np.float32 and multi[0][1][1].tolist() == [0, 1, 0]


def test_masks_sparse_or_one_hot():
    masks = np.random.default_rng(0).integers(0, 3, size=(8, 4, 4))
    split = Split(images(), masks)
    sparse = batches(task_data(split, Task.SEGMENTATION, loss="sparse_categorical_crossentropy", classes=3))
    assert sparse[0][1].dtype == np.int64 and sparse[0][1].shape == (4, 4, 4)
    one_hot = batches(task_data(split, Task.SEGMENTATION, loss="Dice", classes=3))
    assert one_hot[0][1].dtype == np.float32 and one_hot[0][1].shape == (4, 4, 4, 3)
    np.testing.assert_array_equal(one_hot[0][1].argmax(-1), masks[:4])
    assert (one_hot[0][1].sum(-1) == 1).all()
    with pytest.raises(DatasetError, match="one-hot masks need the number of classes"):
        task_data(split, Task.SEGMENTATION, loss="dice")


def test_file_backed_masks_stream_resized_nearest(tmp_path):
    root = make_mask_folder(tmp_path / "seg", stems=("a", "b", "c"), values=(0, 4, 7), size=(9, 7))
    ds = load_dataset(str(root), (5, 3, 1), validation_split=0)
    assert ds.train.x is None and ds.class_names == [str(i) for i in range(8)]
    (x, y), = batches(task_data(ds.train, Task.SEGMENTATION, classes=8), batch_size=8)
    assert x.shape == (3, 5, 3, 1) and y.shape == (3, 5, 3) and y.dtype == np.int64
    assert set(np.unique(y)) <= {0, 4, 7}  # nearest-neighbour: no value in between
    np.testing.assert_array_equal(y, ds.train.targets([0, 1, 2]))


# ---------------------------------------------------------------- choosing the task

def dataset(target: TargetKind, y: np.ndarray, names, shape=(8, 8, 1), pixel_range=PixelRange.UNIT) -> Dataset:
    x = np.zeros((len(y), *shape), np.float32)
    return Dataset("t", list(names), Split(x, y), None, None, target=target, pixel_range=pixel_range)


CLASSES = dataset(TargetKind.CLASS, np.arange(4) % 2, ["a", "b"])
MULTI = dataset(TargetKind.MULTI_HOT, np.eye(4, 3, dtype=np.float32), ["x", "y", "z"])
VALUES = dataset(TargetKind.VALUES, np.linspace(-2, 3, 8, dtype=np.float32).reshape(4, 2), ["w", "h"])
MASKS = dataset(TargetKind.MASK, np.zeros((4, 8, 8), np.int64), ["bg", "cat", "dog"])
NONE = dataset(TargetKind.NONE, np.zeros((4, 0), np.float32), [])


def vector(units, activation, shape=(8, 8, 1)):
    return ModelIO(shape, units, activation, "out", (units,))


def image_out(shape, activation, inp=(8, 8, 1)):
    return ModelIO(inp, shape[-1], activation, "out", shape)


def test_choose_task_from_the_data_or_the_override():
    assert choose_task(vector(3, "sigmoid"), MULTI) is Task.MULTILABEL
    assert choose_task(vector(2, None), VALUES) is Task.REGRESSION
    assert choose_task(image_out((8, 8, 3), "softmax"), MASKS) is Task.SEGMENTATION
    assert choose_task(image_out((8, 8, 1), "sigmoid"), NONE) is Task.RECONSTRUCTION
    assert choose_task(vector(2, "softmax"), CLASSES) is Task.CLASSIFICATION
    assert choose_task(vector(2, "softmax"), CLASSES, Task.REGRESSION) is Task.REGRESSION


# ---------------------------------------------------------------- mismatches, one message each

@pytest.mark.parametrize("data, io, loss, task, expected", [
    (MULTI, vector(3, "sigmoid"), None, None, []),
    (MULTI, vector(2, "sigmoid"), None, None,
     ["the data has 3 labels (x, y, z) but the last layer 'out' has 2 units; set units=3"]),
    (MULTI, vector(3, "softmax"), None, None,
     ["the last layer 'out' has activation 'softmax', but each label applies or not on its own (softmax "
      "makes the labels compete, so only one could apply); use activation='sigmoid'"]),
    (MULTI, vector(3, "sigmoid"), "mse", None,
     ["the loss mean_squared_error does not fit labels that each apply or not; use "
      "loss='binary_crossentropy'"]),
    (VALUES, vector(2, None), "huber", None, []),
    (VALUES, vector(3, None), None, None,
     ["the data has 2 targets (w, h) but the last layer 'out' has 3 units; set units=2"]),
    (VALUES, vector(2, "sigmoid"), None, None,
     ["the targets range from -2 to 3, but the last layer 'out' uses sigmoid, which gives only values from "
      "0 to 1; use activation='linear' (or scale the targets into its range)"]),
    (VALUES, vector(2, None), "sparse_categorical_crossentropy", None,
     ["the loss sparse_categorical_crossentropy is not a regression loss; use loss='mean_squared_error' "
      "(or mean_absolute_error, huber)"]),
    (MASKS, image_out((8, 8, 3), "softmax"), "dice", None, []),
    (MASKS, image_out((4, 4, 3), "softmax"), None, None,
     ["the output 'out' is 4×4 pixels but the masks are 8×8; end the design with Conv2D(filters=3, "
      "kernel_size=1, activation='softmax') at 8×8 (a decoder of Conv2DTranspose or UpSampling2D brings it "
      "back to size)"]),
    (MASKS, image_out((8, 8, 2), "softmax"), None, None,
     ["the masks have 3 classes (bg, cat, dog) but the output 'out' has 2 channels; set its filters=3"]),
    (MASKS, image_out((8, 8, 3), "sigmoid"), None, None,
     ["the last layer 'out' has activation 'sigmoid', but each pixel has exactly one class; use "
      "activation='softmax'"]),
    (MASKS, image_out((8, 8, 3), "softmax"), "categorical_crossentropy", None,
     ["the loss categorical_crossentropy does not fit masks of class numbers (the masks hold class numbers, "
      "not one-hot vectors); use loss='sparse_categorical_crossentropy' or 'dice'"]),
    (NONE, image_out((8, 8, 1), "sigmoid"), "binary_crossentropy", None, []),
    (NONE, image_out((4, 4, 1), "sigmoid"), None, None,
     ["the output 'out' gives 4×4×1 values per image, but reconstruction learns the input image, 8×8×1; end "
      "the design with layers that give back the input's shape (8, 8, 1) (a decoder of Conv2DTranspose or "
      "UpSampling2D and a Conv2D with 1 filter)"]),
    (dataset(TargetKind.NONE, np.zeros((4, 0)), [], pixel_range=PixelRange.RAW), image_out((8, 8, 1), "sigmoid"),
     None, None,
     ["the pixels are in 0–255 (raw), but the last layer 'out' uses sigmoid, which gives only values from 0 "
      "to 1; switch the data to [0, 1], or use activation='relu' or 'linear'"]),
    (dataset(TargetKind.NONE, np.zeros((4, 0)), [], pixel_range=PixelRange.RAW), image_out((8, 8, 1), "relu"),
     None, None, []),
    (NONE, vector(2, "softmax"), None, Task.CLASSIFICATION,
     ["the task is classification, but the data has images only; choose the task reconstruction, or data "
      "made for classification"]),
    (CLASSES, vector(2, "softmax"), None, Task.REGRESSION,
     ["the task is regression, but the data has one class per image; choose the task classification or "
      "reconstruction, or data made for regression"]),
])
def test_every_mismatch_is_one_message_with_its_fix(data, io, loss, task, expected):
    assert dataset_problems(data, io, loss, task) == expected


def test_segmentation_problems_read_file_backed_masks_by_their_size(tmp_path):
    ds = load_dataset(str(make_mask_folder(tmp_path / "seg", stems=("a", "b"))), (8, 8, 1), validation_split=0)
    assert dataset_problems(ds, image_out((8, 8, 3), "softmax"), None) == []
    assert dataset_problems(ds, vector(3, "softmax"), None, Task.SEGMENTATION) == [
        "the output 'out' gives 3 values per image, but segmentation gives one score per class for every pixel, "
        "8×8×3; end the design with Conv2D(filters=3, kernel_size=1, activation='softmax') at 8×8 (a decoder "
        "of Conv2DTranspose or UpSampling2D brings it back to size)"]
