"""Mirrored training over two logical CPU devices, run in a fresh interpreter by
``tests/test_distributed_training.py`` (TensorFlow splits the CPU only before it initialises its
devices, which pytest's process has done already). Prints one JSON object as its last line.

Usage: ``PYTHONPATH=. python tests/distributed_run.py CASE FOLDER`` with CASE ``compare`` (one device against
mirrored on the same data), ``resume`` (two-phase fine-tuning stopped after its first phase's
epoch, then resumed from the checkpoint in FOLDER) or ``both`` (the two in turn, the checkpoint in
FOLDER/resume; the JSON object holds each case's under its name).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from engine.datasets import load_digits_dataset
from engine.distribute import Distribution, Strategy
from engine.distributed_loop import split_cpu
from engine.errors import ConvasError
from engine.examples import seed_design
from engine.training import MessageKind, TrainingConfig, train

MIRRORED = Distribution(Strategy.MIRRORED, devices=("CPU:0", "CPU:1"))


class Recorder:
    """Records what train() reports; stops at (epoch, batch) ``stop_at`` and pauses for
    ``pause_polls`` questions at (epoch, batch) ``pause_at``."""

    def __init__(self, stop_at: tuple[int, int] | None = None, pause_at: tuple[int, int] | None = None,
                 pause_polls: int = 0) -> None:
        self.stop_at, self.pause_at, self.pause_polls = stop_at, pause_at, pause_polls
        self.messages: list[tuple[str, str]] = []
        self.epochs: list[int] = []
        self.batches = 0
        self.where = (0, 0)
        self.stop = False
        self.pause_asked = 0

    def on_batch(self, epoch: int, batch: int, batches: int | None, logs: dict[str, float]) -> None:
        self.batches += 1
        self.where = (epoch, batch)
        if self.stop_at is not None and (epoch, batch) >= self.stop_at:
            self.stop = True

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        self.epochs.append(epoch)

    def should_stop(self) -> bool:
        return self.stop

    def should_pause(self) -> bool:
        if self.pause_at is not None and self.where >= self.pause_at and self.pause_asked < self.pause_polls:
            self.pause_asked += 1
            return True
        return False

    def on_message(self, kind: MessageKind, text: str) -> None:
        self.messages.append((kind.value, text))


def weights_sum(model: Any) -> list[float]:
    return [float(w.sum()) for w in model.get_weights()]


def compare() -> dict[str, Any]:
    """The seed CNN on Digits for 2 epochs at global batch 50 (1438 samples: a partial last
    batch of 38, split 19/19; 359 for validation: a last batch of 9), on one device and mirrored."""
    data = load_digits_dataset()
    config = TrainingConfig(epochs=2, batch_size=50)
    one = train(seed_design(), data.train, data.validation, config, Recorder())
    reporter = Recorder()
    two = train(seed_design(), data.train, data.validation, config, reporter, distribution=MIRRORED)
    diff = max(float(abs(a - b).max()) for a, b in zip(one.model.get_weights(), two.model.get_weights(),
                                                        strict=True))
    try:
        split_cpu(4)
        late = ""
    except ConvasError as exc:
        late = str(exc)
    return {"one": one.history, "two": two.history, "weight_diff": diff,
            "placement": two.placement.describe(), "one_placement": one.placement.describe(),
            "replicas": two.placement.replicas, "messages": reporter.messages, "late_split": late,
            "batches": reporter.batches}


def fine_tuning_design() -> Any:
    design = seed_design()
    for name in ("conv2d", "conv2d_1"):
        design.nodes[name].trainable = False
    return design


def resume(folder: Path) -> dict[str, Any]:
    """Two-phase fine-tuning (1 head epoch, 3 in all) with checkpoints in ``folder``: the first
    run pauses briefly, then stops in epoch 2 (phase two's first); the rerun resumes at epoch 2 and
    finishes. Then a changed design meets a copy of the first run's checkpoint."""
    data = load_digits_dataset()
    config = TrainingConfig(epochs=3, batch_size=64, head_epochs=1)
    distribution = Distribution(Strategy.MIRRORED, devices=("CPU:0", "CPU:1"), checkpoint_dir=folder)
    first_reporter = Recorder(stop_at=(1, 3), pause_at=(0, 2), pause_polls=3)
    design = fine_tuning_design()
    first = train(design, data.train, data.validation, config, first_reporter, distribution=distribution)
    frozen_kernel = first.model.get_layer("conv2d").get_weights()[0]
    left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    copy = folder.with_name(folder.name + "-copy")
    shutil.copytree(folder, copy)
    second_reporter = Recorder()
    second = train(fine_tuning_design(), data.train, data.validation, config, second_reporter,
                   distribution=distribution)
    removed = not folder.exists()

    # The first run's checkpoint, met by a changed design (a narrower first convolution).
    changed = fine_tuning_design()
    changed.nodes["conv2d"].args["filters"] = 16
    other = Distribution(Strategy.MIRRORED, devices=("CPU:0", "CPU:1"), checkpoint_dir=copy)
    try:
        train(changed, data.train, data.validation, config, Recorder(), distribution=other)
        incompatible = ""
    except ConvasError as exc:
        incompatible = str(exc)
    return {"first": {"history": first.history, "epochs_run": first.epochs_run,
                      "stopped": first.stop_reason, "phase_epochs": first.phase_epochs,
                      "messages": first_reporter.messages, "pause_asked": first_reporter.pause_asked,
                      "frozen_kernel_sum": float(frozen_kernel.sum())},
            "left": left,
            "second": {"history": second.history, "epochs_run": second.epochs_run,
                       "stopped": second.stop_reason, "phase_epochs": second.phase_epochs,
                       "resumed": second.resumed_epochs, "messages": second_reporter.messages,
                       "epochs": second_reporter.epochs},
            "removed": removed, "incompatible": incompatible}


def clean(value: Any) -> Any:
    """JSON without NaN (as null)."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


if __name__ == "__main__":
    split_cpu(2)  # before anything initialises TensorFlow's devices (engine imports no TensorFlow)
    case, where = sys.argv[1], Path(sys.argv[2])
    if case == "both":  # one interpreter, one TensorFlow import (about 15 s) for both cases
        out = {"compare": compare(), "resume": resume(where / "resume")}
    else:
        out = compare() if case == "compare" else resume(where)
    print(json.dumps(clean(out)))
