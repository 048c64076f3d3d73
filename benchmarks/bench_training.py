"""Training the seed CNN on the built-in Digits (28×28×1, batch 32): accuracy and throughput.

1. Accuracy: ``engine.training.train`` with the default settings (adam 1e-3, batch 32, 8 epochs)
   — the best and final validation accuracy and the first epoch reaching 0.95
   (goal: ≥ 0.95 within 8 epochs), for training seeds 0, 1 and 2 (the data split stays seed 0).
2. Throughput: our training path (``engine.training.train`` reporting to the real
   ``convas train`` progress reporter, drawing its progress line as on a terminal into
   /dev/null) against a plain ``model.fit(x, y, batch_size=32, validation_data=..., verbose=0)``
   on the same arrays, from the same initial weights. Each epoch is timed from the end of the
   previous one (validation included, for both), the first epoch of every run (graph tracing)
   is left out, and short runs alternate plain, ours, plain, ours, ... to cancel drift (the
   machine is shared). The plain run carries one callback with an epoch hook only, to read the
   clock: Keras dispatches batches the same way as without it. Goal: median ours / median
   plain ≥ 0.97. Also printed: the paired ratio of each round, the best epochs (noise only
   slows) and the process CPU time per batch, which other processes disturb less.

Run: uv run python benchmarks/bench_training.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.datasets import load_digits_dataset  # noqa: E402
from engine.examples import seed_design  # noqa: E402
from engine.keras_build import build_keras_model  # noqa: E402
from engine.progress import ConsoleReporter  # noqa: E402
from engine.training import NullReporter, TrainingConfig, train  # noqa: E402

BATCH = 32
GOAL_ACCURACY, GOAL_EPOCHS, GOAL_RATIO = 0.95, 8, 0.97


def accuracy_figure(data, seeds: list[int]) -> None:
    config = TrainingConfig()  # the defaults a new project gets
    assert config.batch_size == BATCH and config.epochs == GOAL_EPOCHS
    print(f"Accuracy: seed CNN, default settings ({config.optimizer} {config.learning_rate:g}, "
          f"batch {config.batch_size}, {config.epochs} epochs), {len(data.train)} train / "
          f"{len(data.validation)} validation digits (goal: val_accuracy ≥ {GOAL_ACCURACY:.2f} "
          f"within {GOAL_EPOCHS} epochs)")
    print("  seed  val_accuracy per epoch" + " " * 42 + "best (epoch)   final   first ≥ 0.95")
    for seed in seeds:
        config = TrainingConfig(seed=seed)
        result = train(seed_design(), data.train, data.validation, config, NullReporter())
        val = result.history["val_accuracy"]
        best = max(range(len(val)), key=val.__getitem__)
        reached = next((i + 1 for i, v in enumerate(val) if v >= GOAL_ACCURACY), None)
        where = f"epoch {reached}" if reached else "not reached"
        print(f"  {seed:<4}  {' '.join(f'{v:.4f}' for v in val):<63}  {val[best]:.4f} ({best + 1})"
              f"     {val[-1]:.4f}  {where}")


class EpochClock:
    """Wall and process-CPU clock readings at the start and at each epoch end."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def tick(self) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def rates(self, samples: int) -> list[float]:
        """Samples per second of each epoch after the first (the first traces the graphs)."""
        return [samples / (b - a) for a, b in zip(self.wall[1:], self.wall[2:])]

    def cpu_ms_per_batch(self, batches: int) -> list[float]:
        """Process CPU time (all threads) per training batch of each epoch after the first."""
        return [(b - a) * 1000 / batches for a, b in zip(self.cpu[1:], self.cpu[2:])]


def plain_run(initial, data, epochs: int) -> EpochClock:
    import keras

    class Clock(keras.callbacks.Callback):  # epoch hooks only: batches stay dispatched as usual
        def on_train_begin(self, logs=None):
            clock.tick()

        def on_epoch_end(self, epoch, logs=None):
            clock.tick()

    clock = EpochClock()
    model = build_keras_model(seed_design())
    model.set_weights(initial)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.train.x, data.train.y, batch_size=BATCH, epochs=epochs,
              validation_data=(data.validation.x, data.validation.y), verbose=0,
              callbacks=[Clock()])
    return clock


class TimedReporter(ConsoleReporter):
    """The CLI's reporter, noting when each epoch ends."""

    def __init__(self, clock: EpochClock, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.epoch_clock = clock

    def on_epoch(self, epoch, logs):
        self.epoch_clock.tick()
        super().on_epoch(epoch, logs)


def our_run(initial, data, epochs: int) -> EpochClock:
    clock = EpochClock()
    model = build_keras_model(seed_design())
    model.set_weights(initial)
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        reporter = TimedReporter(clock, epochs, len(data.train), BATCH, stream=devnull,
                                 interactive=True)  # redraws its line as on a terminal
        clock.tick()
        reporter.start()
        train(None, data.train, data.validation, TrainingConfig(epochs=epochs, batch_size=BATCH),
              reporter, model=model)
    return clock


def throughput(data, epochs: int, rounds: int) -> None:
    import keras

    keras.utils.set_random_seed(0)
    initial = build_keras_model(seed_design()).get_weights()
    samples, batches = len(data.train), -(-len(data.train) // BATCH)
    rates: dict[str, list[float]] = {"plain": [], "ours": []}
    cpu: dict[str, list[float]] = {"plain": [], "ours": []}
    paired: list[float] = []
    print(f"Throughput: {rounds} rounds of plain then ours, {epochs} epochs a run; each epoch after "
          f"a run's first timed from the previous epoch's end (validation included)")
    for r in range(rounds):
        medians = {}
        for name, run in (("plain", plain_run), ("ours", our_run)):
            clock = run(initial, data, epochs)
            rates[name] += clock.rates(samples)
            cpu[name] += clock.cpu_ms_per_batch(batches)
            medians[name] = statistics.median(clock.rates(samples))
        paired.append(medians["ours"] / medians["plain"])
        print(f"  round {r + 1}: plain {medians['plain']:7.1f}  ours {medians['ours']:7.1f} "
              f"samples/s  (ours/plain {paired[-1]:.3f})")
    p, o = statistics.median(rates["plain"]), statistics.median(rates["ours"])
    n = len(rates["ours"])
    print(f"  plain model.fit, numpy arrays    : {p:8.1f} samples/s median of {n} epochs "
          f"(best {max(rates['plain']):.1f}); CPU {statistics.median(cpu['plain']):.1f} ms/batch")
    print(f"  convas train path + CLI reporter : {o:8.1f} samples/s median of {n} epochs "
          f"(best {max(rates['ours']):.1f}); CPU {statistics.median(cpu['ours']):.1f} ms/batch")
    print(f"  ratio ours / plain               : {o / p:8.3f}  (goal ≥ {GOAL_RATIO}); median of the "
          f"paired round ratios {statistics.median(paired):.3f}, of the best epochs "
          f"{max(rates['ours']) / max(rates['plain']):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and rounds (noisier)")
    args = parser.parse_args()
    epochs, rounds, seeds = (3, 2, [0]) if args.quick else (4, 8, [0, 1, 2])
    data = load_digits_dataset((28, 28, 1), validation_split=0.2, seed=0)
    import keras  # noqa: F401 - imported before any clock starts

    accuracy_figure(data, seeds)
    throughput(data, epochs, rounds)


if __name__ == "__main__":
    main()
