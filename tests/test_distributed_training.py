"""Training under a ``tf.distribute`` strategy (engine.distributed_loop): mirrored over two logical
CPU devices against one device, fine-tuning's two phases, stop and pause, per-epoch checkpoints
and resuming; and the pieces that need no strategy (lost-worker messages, metric and loss
choice, device names). Mirrored runs happen in fresh interpreters (tests/distributed_run.py):
TensorFlow splits the CPU only before it initialises its devices."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.distribute import Cluster, Distribution, Placement, Strategy, WorkerLost
from engine.distributed_loop import metric_object, normal_device, placement, worker_lost
from engine.errors import ConvasError

SCRIPT = Path(__file__).with_name("distributed_run.py")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both mirrored cases, in one new interpreter (the CPU is split before TensorFlow starts;
    one import of TensorFlow, not two: the suite's other worker keeps the second core busy)."""
    folder = tmp_path_factory.mktemp("distributed")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(SCRIPT.parent.parent)}
    process = subprocess.Popen([sys.executable, str(SCRIPT), "both", str(folder)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-3000:]
    results: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    results["folder"] = folder
    return results


@pytest.mark.slow
def test_mirrored_over_two_cpus_matches_one_device(runs: dict[str, Any]) -> None:
    result = runs["compare"]
    one, two = result["one"], result["two"]
    assert set(one) == set(two) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_s"}
    # Epoch 1 sees the same shuffled batches, the last one partial (1438 = 28 × 50 + 38, split 19/19;
    # validation 359 = 7 × 50 + 9): the global-batch average makes it what one device computes.
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert two[key][0] == pytest.approx(one[key][0], abs=1e-4), key
    # Keras's fit draws its second epoch's order from a later reshuffle than a plain iteration
    # does, so epoch 2 agrees to within what another order gives.
    assert two["val_accuracy"][1] == pytest.approx(one["val_accuracy"][1], abs=0.02)
    assert two["loss"][1] == pytest.approx(one["loss"][1], abs=0.05)
    assert result["weight_diff"] < 0.05
    assert result["batches"] == 2 * 29
    assert result["replicas"] == 2
    assert result["placement"] == "mirrored over 2 replicas (1 worker), batch 50 = 25 per replica"
    assert result["one_placement"] == "one device, batch 50"
    assert result["messages"] == [["info", "training " + result["placement"]]]
    assert "TensorFlow set up its devices already" in result["late_split"]


@pytest.mark.slow
def test_fine_tuning_stops_checkpoints_and_resumes(runs: dict[str, Any]) -> None:
    result = runs["resume"]
    first, second = result["first"], result["second"]
    kinds = [kind for kind, _text in first["messages"]]
    # Paused briefly in epoch 1 (every worker waits on the chief's flag), then stopped in epoch 2.
    assert kinds == ["info", "paused", "resumed", "phase", "stopped"]
    assert first["pause_asked"] == 3
    assert first["epochs_run"] == 1 and first["phase_epochs"] == 1
    assert first["stopped"].startswith("stopped on request at epoch 2")
    assert {"checkpoint", "convas_state.json"} <= set(result["left"])
    # The rerun resumes at epoch 2, in fine-tuning's second phase, and keeps the first epoch's logs.
    assert ["info", f"resuming from epoch 2 (checkpoint in {runs['folder'] / 'resume'})"] in second["messages"]
    assert second["resumed"] == 1 and second["epochs"] == [1, 2] and second["epochs_run"] == 3
    assert second["phase_epochs"] == 1 and second["stopped"] is None
    for key, values in first["history"].items():
        assert second["history"][key][0] == pytest.approx(values[0]), key
    assert second["history"]["lr"][1:] == pytest.approx([1e-4, 1e-4])
    assert second["history"]["val_accuracy"][2] > 0.5
    assert result["removed"]  # a completed run needs its checkpoint no more
    assert "belongs to another model" in result["incompatible"]
    assert "remove the folder to start over" in result["incompatible"]


# --- pieces without a strategy ---------------------------------------------------------------

def test_a_lost_worker_is_named_with_what_was_saved(tmp_path: Path) -> None:
    cluster = Cluster(("localhost:23451", "localhost:23452", "localhost:23453"), index=0)
    distribution = Distribution(Strategy.MULTIWORKER, cluster=cluster, checkpoint_dir=tmp_path)
    text = ("Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks "
            "are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:2\n")
    lost = worker_lost(text, distribution, epoch=3, checkpointed=3, folder=tmp_path)
    assert isinstance(lost, WorkerLost) and isinstance(lost, ConvasError)
    assert lost.workers == (1, 2)
    message = str(lost)
    assert message.startswith("lost workers worker 1 (localhost:23452), worker 2 (localhost:23453) during "
                              "epoch 4")
    assert f"the last completed epoch (3) is checkpointed in {tmp_path}" in message
    assert "rerun the same command to resume from epoch 4" in message
    nothing = worker_lost("/job:worker/replica:0/task:1 unhealthy", distribution, 0, 0, None)
    assert nothing.workers == (1,) and "nothing is checkpointed" in str(nothing)


def test_device_names_are_read_in_any_spelling() -> None:
    assert normal_device("CPU:0") == "/cpu:0"
    assert normal_device("/job:localhost/replica:0/task:0/device:GPU:1") == "/gpu:1"
    with pytest.raises(ConvasError, match="not a device name"):
        normal_device("TPU")


def test_accuracy_is_the_metric_compile_would_choose() -> None:
    import keras

    assert isinstance(metric_object("accuracy", (None,), (None, 10)), keras.metrics.SparseCategoricalAccuracy)
    assert isinstance(metric_object("accuracy", (None, 10), (None, 10)), keras.metrics.CategoricalAccuracy)
    assert isinstance(metric_object("accuracy", (None, 1), (None, 1)), keras.metrics.BinaryAccuracy)
    assert metric_object("accuracy", (None,), (None, 10)).name == "accuracy"
    assert metric_object("mae", (None, 1), (None, 1)).name == "mae"


def test_placement_without_a_strategy_is_one_device() -> None:
    assert placement(None, None, 32) == Placement(Strategy.NONE, workers=1, replicas=1, global_batch=32)


def test_mirrored_without_gpus_says_how_to_name_devices() -> None:
    import tensorflow as tf

    from engine.distributed_loop import make_strategy

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this computer has a GPU")
    with pytest.raises(ConvasError, match="no GPU found; mirrored training needs GPUs, or name CPU devices"):
        make_strategy(Distribution(Strategy.MIRRORED))
    with pytest.raises(ConvasError, match="no device GPU:3 on this computer"):
        make_strategy(Distribution(Strategy.MIRRORED, devices=("GPU:3",)))


class _Silent:
    def on_batch(self, epoch: int, batch: int, batches: int | None, logs: dict[str, float]) -> None: ...

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None: ...

    def should_stop(self) -> bool:
        return False

    def should_pause(self) -> bool:
        return False

    def on_message(self, kind: Any, text: str) -> None:
        self.messages = [*getattr(self, "messages", []), text]


class _Arrays:
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def as_tf_dataset(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> Any:
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices((self.x, self.y)).batch(batch_size)


def test_one_device_runs_report_their_placement() -> None:
    import keras

    from engine.training import TrainingConfig, train

    rng = np.random.default_rng(0)
    data = _Arrays(rng.random((40, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, 40))
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    reporter = _Silent()
    result = train(None, data, None, TrainingConfig(epochs=1, batch_size=16), reporter, model=model,
                   distribution=Distribution(Strategy.NONE))
    assert result.placement == Placement(Strategy.NONE, workers=1, replicas=1, global_batch=16)
    assert result.placement.describe() == "one device, batch 16"
    assert not getattr(reporter, "messages", [])  # one device: nothing new to say
    assert result.epochs_run == 1 and not math.isnan(result.history["loss"][0])


def _tiny_run(config: Any, model: Any = None) -> tuple[Any, _Silent]:
    """A one-replica mirrored run in this process (splitting the CPU needs a fresh one)."""
    import keras

    from engine.training import train

    rng = np.random.default_rng(0)
    data = _Arrays(rng.random((48, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, 48))
    model = model or keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                       keras.layers.Dense(16, activation="relu"),
                                       keras.layers.Dense(3, activation="softmax")])
    reporter = _Silent()
    result = train(None, data, data, config, reporter, model=model,
                   distribution=Distribution(Strategy.MIRRORED, devices=("CPU:0",)))
    return result, reporter


def test_a_model_built_outside_the_scope_is_rebuilt_inside_with_its_weights_and_callbacks() -> None:
    import keras

    from engine.training import TrainingConfig

    keras.utils.set_random_seed(1)
    given = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(name="flat"),
                              keras.layers.Dense(3, activation="softmax", name="out")])
    before = given.get_weights()
    config = TrainingConfig(epochs=3, batch_size=16, learning_rate=0.05, reduce_lr_patience=0,
                            early_stopping_patience=5, keep_best_weights=False)
    result, reporter = _tiny_run(config, given)
    assert result.model is not given and [w.shape for w in result.model.get_weights()] == \
        [w.shape for w in before]
    assert np.array_equal(given.get_weights()[0], before[0])  # the given model is left as it was
    assert reporter.messages[0] == "training mirrored over 1 replica (1 worker), batch 16 = 16 per replica"
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_s"}
    # ReduceLROnPlateau halves the rate after an epoch without a better val_loss (patience 0).
    lrs = result.history["lr"]
    assert lrs[0] == pytest.approx(0.05) and all(b <= a for a, b in itertools.pairwise(lrs))


def test_the_nan_guard_stops_a_mirrored_regression() -> None:
    import keras

    from engine.tasks import Task
    from engine.training import TrainingConfig, train

    rng = np.random.default_rng(0)
    data = _Arrays(rng.random((48, 8, 8, 1), dtype=np.float32) * np.float32(1000),
                   rng.random((48, 1), dtype=np.float32))
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    config = TrainingConfig(epochs=2, batch_size=16, optimizer="sgd", learning_rate=1e6,
                            keep_best_weights=False, task=Task.REGRESSION)
    result = train(None, data, data, config, _Silent(), model=model,
                   distribution=Distribution(Strategy.MIRRORED, devices=("CPU:0",)))
    assert result.diverged and result.stopped_early and result.epochs_run == 0
    assert "epoch 1, batch " in (result.stop_reason or "")
    assert "lower the learning rate" in (result.stop_reason or "")
