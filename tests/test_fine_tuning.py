"""Transfer learning end to end with a locally built "pretrained" network: frozen layers keep
their weights bit for bit, the head learns, fine-tuning's second phase trains what it unfreezes
(a frozen BatchNormalization stays as it was), the CLI runs both phases, and the fine-tuned model
exports and verifies. Nothing is downloaded: the pretrained file is made here."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import make_shapes_dataset
from engine.errors import ConvasError
from engine.freezing import resolve
from engine.keras_import import load_keras_design
from engine.training import MessageKind, TrainingConfig, train
from engine.weights import WeightsSource, starting_model

SHAPE = (16, 16, 1)
BACKBONE = ("conv_a", "bn", "conv_b")
HEAD = "head"


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A tiny "pretrained" classifier saved as a .keras file: two convolutions with a
    BatchNormalization between them (its moving statistics moved away from the defaults, as a
    real pretrained network's have), global pooling and a 4-class head."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input(SHAPE, name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_a")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name=HEAD)(x)
    model = keras.Model(inputs, outputs, name="pretrained")
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.full(4, 0.25, dtype="float32"))
    bn.moving_variance.assign(np.full(4, 2.0, dtype="float32"))
    path = tmp_path_factory.mktemp("pretrained") / "pretrained.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def shapes():
    return make_shapes_dataset(160, SHAPE, 0.25, seed=3)


def _weights(model, name: str) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_layer(name).get_weights()]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))


class Messages:
    def __init__(self) -> None:
        self.seen: list[tuple[MessageKind, str]] = []
        self.epochs: list[int] = []

    def on_batch(self, *args) -> None:
        pass

    def on_epoch(self, epoch, logs) -> None:
        self.epochs.append(epoch)

    def should_stop(self) -> bool:
        return False

    def should_pause(self) -> bool:
        return False

    def on_message(self, kind, text) -> None:
        self.seen.append((kind, text))


def _start(path: Path, freeze: tuple[str, ...] = ("backbone",)):
    design = load_keras_design(path)
    for name in resolve(design, freeze):
        design.nodes[name].trainable = False
    model, _said = starting_model(design, WeightsSource.imported(path), seed=0)
    original = {name: _weights(model, name) for name in (*BACKBONE, HEAD)}
    return design, model, original


def test_frozen_backbone_keeps_its_weights_bit_for_bit_and_the_head_learns(pretrained, shapes):
    design, model, original = _start(pretrained)
    assert resolve(design, ["backbone"]) == {"conv_a", "bn", "relu", "conv_b", "pool"}
    result = train(design, shapes.train, shapes.validation, TrainingConfig(epochs=2, batch_size=16),
                   model=model)
    assert result.epochs_run == 2 and result.phase_epochs is None
    for name in BACKBONE:  # BN's moving statistics included: a frozen BN runs in inference mode
        assert _same(_weights(result.model, name), original[name]), name
    assert not _same(_weights(result.model, HEAD), original[HEAD])


def test_two_phases_train_the_head_then_what_they_unfreeze(pretrained, shapes):
    design, model, original = _start(pretrained)
    messages = Messages()
    config = TrainingConfig(epochs=3, head_epochs=1, unfreeze_top=1, fine_tune_learning_rate=1e-3,
                            batch_size=16, keep_best_weights=False)
    result = train(design, shapes.train, shapes.validation, config, messages, model=model)
    assert result.phase_epochs == 1 and result.epochs_run == 3
    assert messages.epochs == [0, 1, 2]  # one run, epochs counted on across the phases
    assert len(result.history["loss"]) == len(result.history["val_accuracy"]) == 3
    (phase,) = [text for kind, text in messages.seen if kind is MessageKind.PHASE]
    assert "fine-tuning from epoch 2" in phase and "conv_b" in phase and "learning rate 0.001" in phase
    # The top frozen layer with weights (conv_b) was unfrozen and trained; the rest stayed frozen.
    assert not _same(_weights(result.model, "conv_b"), original["conv_b"])
    assert _same(_weights(result.model, "conv_a"), original["conv_a"])
    assert _same(_weights(result.model, "bn"), original["bn"])
    assert not _same(_weights(result.model, HEAD), original[HEAD])
    assert result.history["lr"] == pytest.approx([1e-3, 1e-3, 1e-3])


def test_unfreezing_everything_leaves_batch_normalization_frozen(pretrained, shapes):
    design, model, original = _start(pretrained)
    messages = Messages()
    config = TrainingConfig(epochs=2, head_epochs=1, batch_size=16, learning_rate=1e-2)
    result = train(design, shapes.train, None, config, messages, model=model)
    (phase,) = [text for kind, text in messages.seen if kind is MessageKind.PHASE]
    assert "unfroze 4 layer(s) (conv_a, relu, conv_b, pool)" in phase and "learning rate 0.001" in phase
    assert _same(_weights(result.model, "bn"), original["bn"])
    assert not _same(_weights(result.model, "conv_a"), original["conv_a"])


def test_a_stop_in_the_first_phase_ends_the_run(pretrained, shapes):
    design, model, original = _start(pretrained)

    class StopAfterOneBatch(Messages):
        def should_stop(self) -> bool:
            return True

    reporter = StopAfterOneBatch()
    result = train(design, shapes.train, None, TrainingConfig(epochs=3, head_epochs=1), reporter,
                   model=model)
    assert result.stopped_early and result.phase_epochs is None and result.epochs_run == 0
    assert not any(kind is MessageKind.PHASE for kind, _ in reporter.seen)
    assert _same(_weights(result.model, "conv_b"), original["conv_b"])


def test_a_stop_in_the_second_phase_keeps_the_epochs_of_both(pretrained, shapes):
    design, model, _original = _start(pretrained)

    class StopInPhaseTwo(Messages):
        def should_stop(self) -> bool:
            return any(kind is MessageKind.PHASE for kind, _ in self.seen)

    reporter = StopInPhaseTwo()
    result = train(design, shapes.train, shapes.validation, TrainingConfig(epochs=3, head_epochs=1),
                   reporter, model=model)
    assert result.phase_epochs == 1 and result.epochs_run == 1 and reporter.epochs == [0]
    assert result.stop_reason == "stopped on request at epoch 2, batch 1"
    assert result.restored_epoch is None  # a stop keeps the weights trained so far


def test_fine_tuning_mistakes_are_explained_before_training(pretrained, shapes):
    with pytest.raises(ConvasError, match=r"head epochs \(3\) must be fewer than the epochs \(3\)"):
        TrainingConfig(epochs=3, head_epochs=3)
    design = load_keras_design(pretrained)
    with pytest.raises(ConvasError, match="the design freezes no layer; freeze the backbone"):
        train(design, shapes.train, None, TrainingConfig(epochs=2, head_epochs=1))
    design, model, _ = _start(pretrained, freeze=("bn",))
    with pytest.raises(ConvasError, match=r"would unfreeze nothing.*BatchNormalization layers stay frozen"):
        train(design, shapes.train, None, TrainingConfig(epochs=2, head_epochs=1), model=model)
    with pytest.raises(ConvasError, match="needs the design to resolve the layer and group names"):
        train(None, shapes.train, None, TrainingConfig(epochs=2, head_epochs=1, unfreeze=("conv_b",)),
              model=model)
    with pytest.raises(ConvasError, match="the model freezes no layer with weights"):
        train(None, shapes.train, None, TrainingConfig(epochs=2, head_epochs=1), model=model)


def test_a_model_alone_fine_tunes_its_own_frozen_layers(pretrained, shapes):
    _design, model, original = _start(pretrained)  # conv_a, bn, conv_b frozen on the model
    messages = Messages()
    result = train(None, shapes.train, None, TrainingConfig(epochs=2, head_epochs=1, unfreeze_top=1,
                                                            batch_size=32), messages, model=model)
    assert any(kind is MessageKind.PHASE and "(conv_b)" in text for kind, text in messages.seen)
    assert not _same(_weights(result.model, "conv_b"), original["conv_b"])
    assert _same(_weights(result.model, "conv_a"), original["conv_a"])


def test_settings_round_trip_and_read_old_files():
    config = TrainingConfig(epochs=6, head_epochs=2, unfreeze=("block_3", "conv_b"), unfreeze_top=4,
                            fine_tune_learning_rate=1e-5, noise_stddev=0.1, task="regression")
    assert TrainingConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["task"] == "regression"
    assert "task" not in TrainingConfig().to_dict()  # automatic
    assert TrainingConfig.from_dict({"task": "auto"}).task is None
    # Before tasks, metrics listed every metric and defaulted to ["accuracy"]: now no extras.
    assert TrainingConfig.from_dict({"metrics": ["accuracy"]}).metrics == ()
    assert TrainingConfig.from_dict({"metrics": ["accuracy", "auc"]}).metrics == ("accuracy", "auc")
    with pytest.raises(ConvasError, match="unknown task 'segment'"):
        TrainingConfig.from_dict({"task": "segment"})
    with pytest.raises(ConvasError, match="unfreeze must be a list of layer or group names"):
        TrainingConfig.from_dict({"unfreeze": "conv_b"})


@pytest.mark.slow
def test_cli_runs_both_phases_and_the_fine_tuned_model_exports_and_verifies(pretrained, tmp_path, capsys):
    from engine.cli import main
    from engine.embedded_design import read_metadata
    from engine.export.run import ExportOptions, export_model

    out = tmp_path / "tuned.keras"
    code = main(["train", str(pretrained), "--data", "shapes", "--freeze", "backbone", "--epochs", "2",
                 "--head-epochs", "1", "--unfreeze-top", "1", "--batch-size", "64", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "for classification (inferred" in captured.err
    assert "(1 for the head, then 1 fine-tuning 1 unfrozen layer(s) at 0.0001)" in captured.err
    assert "--- phase 2: fine-tuning from epoch 2: unfroze 1 layer(s) (conv_b)" in captured.err
    assert read_metadata(out)["task"] == "classification"

    tuned = load_keras_design(out)
    export = export_model(tuned, tmp_path / "tuned_export.keras", ExportOptions("keras"),
                          weights=WeightsSource.imported(out))
    assert export.comparison is not None and export.comparison.ok
    assert os.path.getsize(export.path) > 0
