"""Where training data comes from for a design: the design's input/output, loading a source by
name or path, and the mismatch messages shown before any training starts. TensorFlow only to
decode image files."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from test_datasets import make_folder

from engine.data_source import (SHAPES_SAMPLES, ModelIO, choose_task, dataset_problems, load_dataset, model_io,
                                task_to_load)
from engine.datasets import Dataset, DatasetError, Split
from engine.design import Design, chain
from engine.examples import example_names, load_example, seed_design
from engine.tasks import Task

# What every shipped example looks like from the outside: (input shape, output units, output
# activation, output layer, output shape).
EXAMPLE_IO = {
    "conv_autoencoder": ((28, 28, 1), 1, "sigmoid", "conv2d_2", (28, 28, 1)),
    "inception_module": ((28, 28, 1), 10, "softmax", "dense", (10,)),
    "lenet5": ((28, 28, 1), 10, "softmax", "dense_2", (10,)),
    "mobilenet_block": ((32, 32, 3), 10, "softmax", "dense", (10,)),
    "resnet_block": ((28, 28, 1), 10, "softmax", "dense", (10,)),
    "seed_cnn": ((28, 28, 1), 10, "softmax", "dense", (10,)),
    "seed_cnn_sweep": ((28, 28, 1), 10, "softmax", "dense", (10,)),
    "small_vgg": ((32, 32, 3), 10, "softmax", "dense_1", (10,)),
    "unet_shapes": ((32, 32, 1), 5, "softmax", "mask", (32, 32, 5)),
}


def test_every_shipped_example_has_an_expected_io():
    assert sorted(EXAMPLE_IO) == example_names()


@pytest.mark.parametrize("name", sorted(EXAMPLE_IO))
def test_model_io_of_each_example(name):
    assert model_io(load_example(name)) == ModelIO(*EXAMPLE_IO[name])


def classifier(units: int = 10, activation: str | None = "softmax", shape=(28, 28, 1)) -> Design:
    d = Design(name="clf")
    d.add("InputLayer", "image", {"shape": shape})
    d.add("Flatten", "flat", inputs=["image"])
    args = {"units": units} if activation is None else {"units": units, "activation": activation}
    d.add("Dense", "scores", args, inputs=["flat"])
    return d


def test_model_io_reads_activation_layers_after_dense():
    d = classifier(activation=None)
    assert model_io(d).output_activation == "linear"  # Dense's default, filled in by the analysis
    d.add("Softmax", "probs", inputs=["scores"])
    assert model_io(d) == ModelIO((28, 28, 1), 10, "softmax", "probs", (10,))
    d.remove("probs")
    d.add("Activation", "act", {"activation": "sigmoid"}, inputs=["scores"])
    assert model_io(d).output_activation == "sigmoid"


def test_model_io_refuses_designs_that_cannot_train_on_images():
    bad = seed_design()
    bad.set_arg("conv2d_1", "kernel_size", 15)
    with pytest.raises(DatasetError, match="the design has errors.*'conv2d_1'.*15×15"):
        model_io(bad)

    two_in = classifier()
    two_in.add("InputLayer", "other", {"shape": (4,)})
    two_in.add("Dense", "side", {"units": 2}, inputs=["other"])
    with pytest.raises(DatasetError, match="exactly one input; the design has 2"):
        model_io(two_in)

    two_out = classifier()
    two_out.add("Dense", "aux", {"units": 3}, inputs=["flat"])
    with pytest.raises(DatasetError, match="exactly one output; the design has 2"):
        model_io(two_out)

    free = Design(name="free")
    free.add("InputLayer", "image", {"shape": (None, None, 1)})
    free.add("GlobalAveragePooling2D", "gap", inputs=["image"])
    free.add("Dense", "scores", {"units": 10, "activation": "softmax"}, inputs=["gap"])
    with pytest.raises(DatasetError, match="no fixed size"):
        model_io(free)


# ---------------------------------------------------------------- load_dataset

def test_digits_by_name_sized_for_the_input():
    ds = load_dataset(" Digits ", (20, 24, 3), validation_split=0.25, seed=1)
    assert ds.name == "digits" and len(ds.class_names) == 10
    assert ds.sample_shape() == (20, 24, 3)
    assert len(ds.train) + len(ds.validation) == 1797 and len(ds.validation) == 449
    again = load_dataset("digits", (20, 24, 3), validation_split=0.25, seed=1)
    assert np.array_equal(ds.train.y, again.train.y)
    assert load_dataset("digits", (28, 28), validation_split=0).validation is None


def test_shapes_by_name():
    ds = load_dataset("shapes", (24, 24, 1), validation_split=0.2, seed=0)
    assert ds.name == "shapes" and ds.class_names == ["circle", "square", "triangle", "cross"]
    assert len(ds.train) + len(ds.validation) == SHAPES_SAMPLES
    assert ds.sample_shape() == (24, 24, 1)


def test_npz_path(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mini.npz"
    np.savez(path, x_train=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), y_train=np.arange(40) % 4,
             x_test=rng.integers(0, 256, (6, 8, 8), dtype=np.uint8), y_test=np.arange(6) % 4)
    ds = load_dataset(str(path), (16, 16, 1), validation_split=0.25)
    assert ds.name == "mini" and ds.sample_shape() == (16, 16, 1)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (30, 10, 6)
    upper = tmp_path / "UPPER.NPZ"
    upper.write_bytes(path.read_bytes())
    assert load_dataset(str(upper), (8, 8, 1)).name == "UPPER"


def test_csv_path(tmp_path):
    path = tmp_path / "pixels.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label"] + [f"p{i}" for i in range(16)])
        for i in range(12):
            writer.writerow([i % 3] + [(i * 7 + j) % 256 for j in range(16)])
    ds = load_dataset(str(path), (4, 4, 1), validation_split=0.25)
    assert ds.name == "pixels" and ds.class_names == ["0", "1", "2"]
    assert len(ds.train) == 9 and len(ds.validation) == 3


def test_folder_path(tmp_path):
    root = make_folder(tmp_path / "pets", per_class=4)
    ds = load_dataset(str(root), (8, 8, 1), validation_split=0.25)
    assert ds.class_names == ["cats", "dogs"] and ds.train.is_lazy
    assert len(ds.train) == 6 and len(ds.validation) == 2


@pytest.mark.parametrize("source, needle", [
    ("", "no dataset given"),
    ("   ", "no dataset given"),
    ("{tmp}/missing.npz", "missing.npz does not exist; use digits, shapes"),
    ("{tmp}/notes.txt", "notes.txt is not a dataset Convas reads; use a .npz file"),
])
def test_sources_that_cannot_be_loaded(tmp_path, source, needle):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError) as info:
        load_dataset(source.format(tmp=tmp_path), (28, 28, 1))
    assert needle in str(info.value)


def test_loader_errors_pass_through(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, images=np.zeros((3, 4, 4)))
    with pytest.raises(DatasetError, match="needs 'x_train' and 'y_train'"):
        load_dataset(str(path), (4, 4, 1))
    with pytest.raises(DatasetError, match="64 channels"):
        load_dataset("digits", (28, 28, 64))


def _pixels_csv(path, labels, side=4):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label"] + [f"p{i}" for i in range(side * side)])
        for i, label in enumerate(labels):
            writer.writerow([label] + [(i * 7 + j) % 256 for j in range(side * side)])
    return path


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_one_wild_label_is_bounded_by_the_designs_units(tmp_path, suffix):
    labels = [i % 10 for i in range(40)]
    labels[15] = 10**12
    if suffix == ".csv":
        path, where = _pixels_csv(tmp_path / "wild.csv", labels), "in row 17"
    else:
        path, where = tmp_path / "wild.npz", "at index 15"
        np.savez(path, x=np.zeros((40, 4, 4), np.uint8), y=np.asarray(labels))
    with pytest.raises(DatasetError, match=f"label 1000000000000 {where} is out of range: .*the design has 10 "
                                           "output units"):
        load_dataset(str(path), (4, 4, 1), output_units=10)
    labels[15] = 11  # 12 classes for a 10-unit design: loaded, and dataset_problems says set units=12
    path = _pixels_csv(tmp_path / "twelve.csv", labels)
    ds = load_dataset(str(path), (4, 4, 1), output_units=10)
    assert len(ds.class_names) == 12
    assert "set units=12" in " ".join(dataset_problems(ds, ModelIO((4, 4, 1), 10, "softmax", "dense", (10,)), None))


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("name", ["data.npz", "data.csv", "data.txt"])
def test_a_named_pipe_is_refused_without_blocking(tmp_path, name):
    import os

    from test_datasets import _release, _within

    os.mkfifo(tmp_path / name)
    try:
        with pytest.raises(DatasetError, match=f"{name} is a named pipe|{name} is not a dataset"):
            _within(10, lambda: load_dataset(str(tmp_path / name), (4, 4, 1)))
    finally:
        _release(tmp_path / name)


# ---------------------------------------------------------------- convas train: dataset problems exit 2

def _cli(capsys, *argv) -> tuple[int, str]:
    from engine.cli import main

    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_cli_refuses_an_input_too_large_to_resize_digits_into(tmp_path, capsys):
    from engine.project_file import save_project

    design = seed_design()
    design.set_arg(design.input_names()[0], "shape", (30000, 30000, 1))
    save_project(tmp_path / "big.convas", design)
    code, err = _cli(capsys, "train", tmp_path / "big.convas", "--out", tmp_path / "m.keras")
    assert code == 2 and "Traceback" not in err
    assert "digits: fitting 1,797 images of 8×8×1 to the input 30000×30000×1 needs about" in err
    assert "such as the images' own (8, 8, 1)" in err


def test_cli_names_a_wild_label_and_the_units(tmp_path, capsys):
    labels = [i % 10 for i in range(40)]
    labels[15] = 10**12
    data = _pixels_csv(tmp_path / "wild.csv", labels, side=28)
    code, err = _cli(capsys, "train", seed_design_path(tmp_path), "--data", data, "--out", tmp_path / "m.keras")
    assert code == 2 and "label 1000000000000 in row 17 is out of range" in err
    assert "the design has 10 output units" in err


def test_cli_damaged_images_exit_2_naming_them(tmp_path, capsys):
    root = make_folder(tmp_path / "pets", per_class=2)
    for name in ("0.png", "1.png"):
        data = (root / "cats" / name).read_bytes()
        (root / "cats" / name).write_bytes(data[:-20])
    code, err = _cli(capsys, "train", seed_design_path(tmp_path), "--data", root, "--out", tmp_path / "m.keras")
    assert code == 2 and "Traceback" not in err and "InvalidArgumentError" not in err
    assert "'cats' in pets has no readable" in err
    assert "Skipped 2 unreadable images: cats/0.png cannot be decoded" in err


def seed_design_path(tmp_path):
    from engine.project_file import save_project

    path = tmp_path / "seed.convas"
    save_project(path, seed_design())
    return path


# ---------------------------------------------------------------- dataset_problems

def digits_like(classes: int = 10, shape=(28, 28, 1)) -> Dataset:
    x = np.zeros((classes, *shape), np.float32)
    return Dataset("t", [str(i) for i in range(classes)], Split(x, np.arange(classes)), None, None)


def test_a_matching_dataset_has_no_problems():
    io = model_io(seed_design())
    assert dataset_problems(digits_like(), io, None) == []
    assert dataset_problems(digits_like(), io, "sparse_categorical_crossentropy") == []
    binary = ModelIO((28, 28, 1), 1, "sigmoid", "out", (1,))
    assert dataset_problems(digits_like(2), binary, None) == []


def test_wrong_number_of_units():
    io = model_io(classifier(units=4))
    assert dataset_problems(digits_like(), io, None) == [
        "the dataset has 10 classes but the last layer 'scores' has 4 units; set units=10."]


@pytest.mark.parametrize("activation, needle", [
    ("sigmoid", "the last layer 'scores' uses sigmoid, which scores every class independently; "
                "each image has exactly one class, so use activation='softmax'."),
    ("relu", "the last layer 'scores' has activation 'relu'; for picking one of 10 classes use "
             "activation='softmax'."),
    (None, "the last layer 'scores' has activation 'linear'; for picking one of 10 classes use "
           "activation='softmax'."),
])
def test_wrong_output_activation(activation, needle):
    io = model_io(classifier(activation=activation))
    assert dataset_problems(digits_like(), io, None) == [needle]


def test_binary_output_needs_sigmoid_and_binary_loss():
    io = model_io(classifier(units=1, activation="softmax"))
    problems = dataset_problems(digits_like(2), io, None)
    assert problems == ["the last layer 'scores' has 1 unit for 2 classes, so it needs "
                        "activation='sigmoid' (it has 'softmax')."]


def test_explicit_loss_that_does_not_fit_integer_labels():
    io = model_io(seed_design())
    problems = dataset_problems(digits_like(), io, "categorical_crossentropy")
    assert problems == ["the labels are class numbers, but categorical_crossentropy expects one-hot "
                        "labels; use loss='sparse_categorical_crossentropy'."]


def test_wrong_input_size():
    io = model_io(seed_design())
    problems = dataset_problems(digits_like(shape=(32, 32, 3)), io, None)
    assert problems == ["the images are 32×32×3 but the input expects 28×28×1; set the input's "
                        "shape to (32, 32, 3)"]


def test_an_autoencoder_on_digits_is_reconstruction_and_fits():
    io = model_io(load_example("conv_autoencoder"))
    assert choose_task(io, digits_like()) is Task.RECONSTRUCTION
    assert dataset_problems(digits_like(), io, None) == []
    # Asked to classify, it is told how.
    (problem,) = dataset_problems(digits_like(), io, None, Task.CLASSIFICATION)
    assert problem == ("the output 'conv2d_2' gives 28×28×1 values per image, but a classifier gives one "
                       "score per class; end the design with Flatten (or GlobalAveragePooling2D) and "
                       "Dense(units=10, activation='softmax')")


def test_output_that_is_not_a_vector_nor_the_input_image():
    d = chain(("InputLayer", {"shape": (28, 28, 1)}), ("Conv2D", {"filters": 4, "kernel_size": 3}))
    problems = dataset_problems(digits_like(), model_io(d), None)
    assert problems == ["the output 'conv2d' gives 26×26×4 values per image, but reconstruction learns "
                        "the input image, 28×28×1; end the design with layers that give back the input's "
                        "shape (28, 28, 1) (a decoder of Conv2DTranspose or UpSampling2D and a Conv2D with "
                        "1 filter); or, to train a classifier, end it with Flatten (or "
                        "GlobalAveragePooling2D) and Dense(units=10, activation='softmax')"]


def test_every_problem_is_listed_at_once():
    io = model_io(classifier(units=3, activation="relu", shape=(28, 28, 1)))
    problems = dataset_problems(digits_like(shape=(8, 8, 1)), io, "mse")
    assert len(problems) == 4
    assert problems[0].startswith("the images are 8×8×1 but the input expects 28×28×1")
    assert "set units=10" in problems[1] and "'relu'" in problems[2] and "regression" in problems[3]


def test_shapes_is_drawn_for_the_task_the_design_suggests_and_files_say_their_own():
    regressor = ModelIO((32, 32, 1), 3, None, "out", (3,))
    tagger = ModelIO((32, 32, 1), 4, "sigmoid", "out", (4,))
    segmenter = ModelIO((32, 32, 1), 5, "softmax", "mask", (32, 32, 5))
    classifier = ModelIO((32, 32, 1), 4, "softmax", "out", (4,))
    assert task_to_load("shapes", regressor, None) is Task.REGRESSION
    assert task_to_load(" Shapes ", tagger, None) is Task.MULTILABEL
    assert task_to_load("shapes", segmenter, None) is Task.SEGMENTATION
    assert task_to_load("shapes", classifier, None) is Task.CLASSIFICATION
    assert task_to_load("shapes", regressor, Task.RECONSTRUCTION) is Task.RECONSTRUCTION
    assert task_to_load("data.npz", regressor, None) is None  # a file's targets say what it holds
