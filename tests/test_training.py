"""Training: settings, the loss choice, the reporter protocol, stopping, the NaN guard, CSV logs."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from engine.errors import ConvasError
from engine.training import (
    BCE,
    CCE,
    MSE,
    SPARSE_CCE,
    MessageKind,
    NullReporter,
    Reporter,
    TrainingConfig,
    TrainingData,
    choose_loss,
    suggested_learning_rate,
    train,
    write_csv_log,
)


class ArrayData:
    """Tiny in-memory data satisfying the TrainingData protocol."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def as_tf_dataset(self, batch_size: int, shuffle: bool = False, seed: int = 0):
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((self.x, self.y))
        if shuffle:
            ds = ds.shuffle(len(self.x), seed=seed)
        return ds.batch(batch_size)


class Recorder:
    """A reporter that records everything and stops once ``stop_after`` batches have run."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.batches: list[tuple[int, int, int | None, dict]] = []
        self.epochs: list[tuple[int, dict]] = []
        self.messages: list[str] = []
        self.kinds: list[MessageKind] = []
        self.stop_after = stop_after

    def on_batch(self, epoch, batch, batches, logs):
        self.batches.append((epoch, batch, batches, logs))

    def on_epoch(self, epoch, logs):
        self.epochs.append((epoch, logs))

    def should_stop(self):
        return self.stop_after is not None and len(self.batches) >= self.stop_after

    def should_pause(self):
        return False

    def on_message(self, kind, text):
        self.messages.append(text)
        self.kinds.append(kind)


def mnist_like(n: int = 128, seed: int = 0, scale: float = 1.0) -> ArrayData:
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 28, 28, 1), dtype=np.float32) * scale).astype(np.float32)
    y = rng.integers(0, 10, size=n).astype(np.int64)
    return ArrayData(x, y)


# ---------------------------------------------------------------------------- settings (no TF)

def test_config_round_trip():
    config = TrainingConfig(optimizer="SGD", learning_rate=0.01, momentum=0.5, batch_size=16,
                            epochs=3, loss="categorical_crossentropy", metrics=("accuracy", "auc"),
                            early_stopping_patience=2, reduce_lr_patience=1,
                            keep_best_weights=False, seed=7, validation_split=0.1)
    data = config.to_dict()
    assert data["optimizer"] == "sgd" and data["metrics"] == ["accuracy", "auc"]
    assert TrainingConfig.from_dict(data) == config
    assert TrainingConfig.from_dict({}) == TrainingConfig()


@pytest.mark.parametrize("bad, words", [
    ({"learning_rate": -0.1}, "learning rate"),
    ({"learning_rate": 0}, "learning rate"),
    ({"learning_rate": float("nan")}, "learning rate"),
    ({"optimizer": "adagrad"}, "unknown optimizer"),
    ({"batch_size": 0}, "batch size"),
    ({"epochs": 2.5}, "epochs"),
    ({"momentum": 1.0}, "momentum"),
    ({"early_stopping_patience": -1}, "early stopping"),
    ({"validation_split": 1.0}, "validation split"),
    ({"metrics": "accuracy"}, "metrics"),
    ({"keep_best_weights": "yes"}, "keep best"),
    ({"colour": "blue"}, "unknown training setting"),
])
def test_config_validation(bad, words):
    with pytest.raises(ConvasError, match=words):
        TrainingConfig.from_dict(bad)


def test_from_dict_rejects_non_mapping():
    with pytest.raises(ConvasError):
        TrainingConfig.from_dict(["adam"])


def test_auto_loss_choice():
    assert choose_loss("softmax", 10, "integer") == SPARSE_CCE
    assert choose_loss("softmax", 10, "one_hot") == CCE
    assert choose_loss("sigmoid", 1, "integer") == BCE
    assert choose_loss("sigmoid", 1, "float") == BCE
    assert choose_loss(None, 1, "float") == MSE
    with pytest.raises(ConvasError, match="choose the loss"):
        choose_loss("relu", 10, "integer")
    with pytest.raises(ConvasError, match="choose the loss"):
        choose_loss("softmax", 1, "integer")


def test_suggested_learning_rate():
    assert suggested_learning_rate(10.0) == pytest.approx(1e-3)
    assert suggested_learning_rate(1e-3) == pytest.approx(1e-4)


def test_protocols():
    assert isinstance(NullReporter(), Reporter)
    assert isinstance(Recorder(), Reporter)
    assert isinstance(ArrayData(np.zeros((1, 2)), np.zeros(1)), TrainingData)
    reporter = NullReporter()
    assert not reporter.should_stop() and not reporter.should_pause()


def test_csv_log_format(tmp_path):
    history = {"loss": [2.5, 1.5], "accuracy": [0.1, 0.4], "val_loss": [2.0, 1.8],
               "val_accuracy": [0.2, 0.3], "lr": [0.001, 0.0005], "samples_per_s": [100.0, 120.0]}
    path = tmp_path / "log.csv"
    path.write_text("old contents")
    write_csv_log(history, path)
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["epoch", "accuracy", "loss", "lr", "samples_per_s", "val_accuracy", "val_loss"]
    assert rows[1][0] == "0" and rows[2][0] == "1"
    assert float(rows[2][2]) == 1.5
    assert len(rows) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]  # no temp file left behind


def test_csv_log_missing_values(tmp_path):
    path = tmp_path / "log.csv"
    write_csv_log({"loss": [1.0, 0.5], "val_loss": [math.nan, 0.7]}, path)
    rows = list(csv.reader(path.open(newline="")))
    assert rows[1] == ["0", "1.0", "NA"]


# ---------------------------------------------------------------------------- real training

@pytest.fixture(scope="module")
def design():
    from engine.examples import seed_design
    return seed_design()


@pytest.mark.slow
def test_reporter_receives_batch_and_epoch_logs(design, tmp_path):
    reporter = Recorder()
    config = TrainingConfig(epochs=2, batch_size=32)
    result = train(design, mnist_like(128), mnist_like(32, seed=1), config, reporter)
    assert result.epochs_run == 2 and not result.stopped_early and result.stop_reason is None
    assert len(reporter.batches) == 8  # 4 batches × 2 epochs
    assert reporter.batches[0][:3] == (0, 0, 4)
    assert reporter.batches[-1][:3] == (1, 3, 4)
    assert {"loss", "accuracy"} <= set(reporter.batches[0][3])
    assert [e for e, _ in reporter.epochs] == [0, 1]
    logs = reporter.epochs[0][1]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_s"):
        assert isinstance(logs[key], float), key
    assert logs["lr"] == pytest.approx(1e-3)
    assert logs["samples_per_s"] > 0
    assert all(len(v) == 2 for v in result.history.values())
    write_csv_log(result.history, tmp_path / "log.csv")
    header = next(csv.reader((tmp_path / "log.csv").open(newline="")))
    assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"} <= set(header)


@pytest.mark.slow
def test_stop_within_one_batch_keeps_trained_weights(design):
    import keras

    from engine.keras_build import build_keras_model

    keras.utils.set_random_seed(0)
    model = build_keras_model(design)
    initial = [w.copy() for w in model.get_weights()]
    reporter = Recorder(stop_after=3)
    result = train(None, mnist_like(128), None, TrainingConfig(epochs=2, batch_size=16),
                   reporter, model=model)
    assert len(reporter.batches) in (3, 4)
    assert result.stopped_early and "stopped on request" in result.stop_reason
    assert result.epochs_run == 0 and reporter.epochs == []
    assert result.model is model
    trained = model.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(initial, trained))
    assert all(np.all(np.isfinite(w)) for w in trained)


@pytest.mark.slow
def test_nan_guard(design):
    reporter = Recorder()
    config = TrainingConfig(optimizer="sgd", learning_rate=1e6, epochs=2, batch_size=16,
                            keep_best_weights=False)
    result = train(design, mnist_like(128, scale=1000.0), None, config, reporter)
    assert result.stopped_early
    reason = result.stop_reason
    assert reason is not None and ("NaN" in reason or "infinite" in reason)
    assert "epoch 1, batch " in reason and "1e+06" in reason and "0.001" in reason
    assert reason in reporter.messages
    assert reporter.kinds[reporter.messages.index(reason)] is MessageKind.NAN  # a kind, not words
    last = reporter.batches[-1]
    assert f"batch {last[1] + 1};" in reason
    assert len(reporter.batches) < 16  # stopped at once, not after both epochs


@pytest.mark.slow
def test_binary_auto_loss_with_early_stopping_and_reduce_lr():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    rng = np.random.default_rng(0)
    x = rng.random((64, 4), dtype=np.float32)
    y = (x.sum(axis=1) > 2).astype(np.int32)
    reporter = Recorder()
    config = TrainingConfig(epochs=4, batch_size=16, early_stopping_patience=0,
                            reduce_lr_patience=0, learning_rate=0.05)
    result = train(None, ArrayData(x, y), ArrayData(x[:16], y[:16]), config, reporter, model=model)
    assert model.loss == BCE
    assert 1 <= result.epochs_run <= 4
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}


@pytest.mark.slow
def test_pause_waits_until_resumed_then_stop_ends_it():
    import time

    import keras

    class Pauser(Recorder):
        def __init__(self):
            super().__init__()
            self.paused_at = None

        def should_pause(self):
            if len(self.batches) == 2 and self.paused_at is None:
                self.paused_at = time.perf_counter()
            return self.paused_at is not None and time.perf_counter() - self.paused_at < 0.3

        def should_stop(self):
            return len(self.batches) >= 3

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    x = np.random.default_rng(0).random((64, 4), dtype=np.float32)
    y = np.arange(64) % 3
    reporter = Pauser()
    start = time.perf_counter()
    result = train(None, ArrayData(x, y), None, TrainingConfig(epochs=1, batch_size=8), reporter,
                   model=model)
    assert time.perf_counter() - start >= 0.3
    assert "training paused" in reporter.messages and "training resumed" in reporter.messages
    assert reporter.kinds[:2] == [MessageKind.PAUSED, MessageKind.RESUMED]
    assert len(reporter.batches) == 3 and result.stopped_early


def test_a_pipeline_dataset_error_reaches_the_user_as_its_sentence():
    """A DatasetError raised inside tf.data (e.g. an .npz rewritten while training) arrives
    wrapped in TensorFlow's error; train() gives the user its sentence alone."""
    from engine.datasets import DatasetError
    from engine.training import _pipeline_error

    wrapped = RuntimeError("Traceback (most recent call last):\n  ...\nengine.datasets.DatasetError: the images' "
                           "file was changed on disk (x.npz); load it again\n\t [[{{node PyFunc}}]]")
    found = _pipeline_error(wrapped)
    assert isinstance(found, DatasetError)
    assert str(found) == "the images' file was changed on disk (x.npz); load it again"
    assert _pipeline_error(ValueError("shapes do not match")) is None
