"""Every task trains through ``engine.training.train`` to a stated quality on a built-in dataset:
regression R² ≥ 0.9 on Shapes' size and position, the convolutional autoencoder a reconstruction
error under half the pixels' variance on Digits. The quality is computed here from the model's
predictions, independently of Keras's metrics. The U-Net example's mean IoU ≥ 0.7 on Shapes masks
and multi-label binary accuracy ≥ 0.9 on Shapes with several shapes per image are checked the same
way (from the model's predictions) on the runs tests/gui/test_train_panel_tasks.py trains through
the Train panel, which calls the same ``train``: each of those trainings costs a minute, so it runs
once."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data_source import choose_task, load_dataset, model_io
from engine.datasets import Split
from engine.design import chain
from engine.examples import load_example
from engine.tasks import Task, spec
from engine.training import TrainingConfig, train

CONV = {"kernel_size": (3, 3), "padding": "same", "activation": "relu"}


def _predict(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=256, verbose=0))


def _logged(history: dict, task: Task) -> set[str]:
    """The task's own metrics, each logged for training and validation."""
    return {name for m in ("loss", *spec(task).metrics) for name in (m, f"val_{m}")}


@pytest.mark.slow
def test_regression_learns_the_size_and_position_of_a_shape():
    data = load_dataset("shapes", (32, 32, 1), task=Task.REGRESSION)
    assert data.class_names == ["size", "x", "y"]
    design = chain(("InputLayer", {"shape": (32, 32, 1)}),
                   ("Conv2D", {"filters": 16, **CONV}), ("MaxPooling2D", {"pool_size": (2, 2)}),
                   ("Conv2D", {"filters": 32, **CONV}), ("MaxPooling2D", {"pool_size": (2, 2)}),
                   ("Conv2D", {"filters": 64, **CONV}), ("MaxPooling2D", {"pool_size": (2, 2)}),
                   ("Flatten", {}), ("Dense", {"units": 128, "activation": "relu"}),
                   ("Dense", {"units": 3}), name="regressor")
    task = choose_task(model_io(design), data, None)
    assert task is Task.REGRESSION
    config = TrainingConfig(epochs=5, batch_size=16, learning_rate=2e-3)
    result = train(design, data.train, data.validation, config, task=task)
    assert result.task is Task.REGRESSION and _logged(result.history, task) <= set(result.history)
    y = data.validation.y
    predicted = _predict(result.model, data.validation.x)
    assert predicted.shape == y.shape == (len(data.validation), 3)
    r2 = 1 - ((predicted - y) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    assert r2.mean() >= 0.9, r2


@pytest.mark.slow
def test_the_autoencoder_example_trains_as_it_opens_and_denoises():
    design = load_example("conv_autoencoder")
    io = model_io(design)
    data = load_dataset("digits", io.input_shape)
    task = choose_task(io, data, None)
    assert task is Task.RECONSTRUCTION
    result = train(design, data.train, data.validation, TrainingConfig(epochs=2, batch_size=32))
    assert result.task is Task.RECONSTRUCTION  # inferred by train() too
    assert _logged(result.history, task) <= set(result.history)
    x = data.validation.x
    error = ((_predict(result.model, x) - x) ** 2).mean()
    assert error <= 0.5 * x.var(), (error, x.var())
    # Denoising: the inputs get noise, the targets stay clean, so the same model's validation
    # loss on noisy inputs is higher than on clean ones.
    noisy = train(design, data.train, data.validation,
                  TrainingConfig(epochs=1, batch_size=32, noise_stddev=0.4, learning_rate=1e-5),
                  model=result.model)
    assert noisy.history["val_loss"][0] > 1.5 * result.history["val_loss"][-1]


def test_classification_is_as_before():
    design = load_example("seed_cnn")
    data = load_dataset("digits", (28, 28, 1))
    small = Split(data.train.x[:256], data.train.y[:256])
    result = train(design, small, data.validation, TrainingConfig(epochs=1, batch_size=64))
    assert result.task is Task.CLASSIFICATION
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_s"}


def test_segmentation_trains_with_the_dice_loss():
    design = load_example("unet_shapes")
    data = load_dataset("shapes", (32, 32, 1), task=Task.SEGMENTATION)
    small = Split(data.train.x[:64], data.train.y[:64])
    val = Split(data.validation.x[:64], data.validation.y[:64])
    result = train(design, small, val, TrainingConfig(epochs=1, batch_size=32, loss="dice",
                                                      task=Task.SEGMENTATION))
    assert result.task is Task.SEGMENTATION
    assert 0 <= result.history["val_mean_iou"][0] <= 1 and np.isfinite(result.history["val_loss"][0])


def test_a_task_the_targets_cannot_train_is_explained():
    from engine.errors import ConvasError

    data = load_dataset("digits", (28, 28, 1))
    with pytest.raises(ConvasError, match="the task is regression, but the data has one class per image; "
                                          "choose the task classification or reconstruction"):
        train(load_example("seed_cnn"), data.train, None, TrainingConfig(epochs=1, task=Task.REGRESSION))
