"""A sweep's time on designs the engine rejected before training, against its time training.

Issue 17: every sampled design goes through the analysis first; an invalid one (a kernel larger
than its input) and one over the budget (max MACs) are recorded in microseconds to milliseconds,
never built or trained. This runs a real sweep of the bundled example
(``resources/examples/seed_cnn_sweep.convas``: the seed CNN with ranges on filters, kernel sizes,
the first stride, dropout and learning rate; objectives val_accuracy and MACs; a 4 M MACs budget)
with :func:`engine.sweep.run_sweep`, the function ``convas sweep`` runs, into a SQLite study in a
temporary folder, and prints:

1. the sweep's time on rejected designs (from asking Optuna for the values to recording the
   trial, storage writes included; and the engine's checks alone) against its time training,
   each as a fraction of the whole sweep;
2. the baseline, measured in the same run: what the rejected designs would have cost without the
   pre-check. An invalid design: the time Keras takes to build it until it refuses
   (``build_keras_model(..., check=False)``); an over-budget design: building and training it
   for the sweep's epochs, as the sweep would have. The ratio of the two, for the checks alone
   and with Optuna's own bookkeeping of a trial (asking for values, recording the result in
   SQLite), which a trial pays whether it is rejected or trained.

Goal: rejected designs take a negligible share of the sweep (well under 1 %).

Run: uv run python benchmarks/bench_sweep.py [--trials 12] [--epochs 1] [--seed 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.project_file import load_project  # noqa: E402
from engine.sweep_results import TrialOutcome, TrialRecord  # noqa: E402
from engine.sweep_settings import SweepSettings  # noqa: E402
from engine.training import TrainingSettings  # noqa: E402

EXAMPLE = ROOT / "resources" / "examples" / "seed_cnn_sweep.convas"


class Collect:
    """A sweep reporter that keeps the finished trials and prints one short line each."""

    def __init__(self) -> None:
        self.finished: list[TrialRecord] = []

    def sweep_started(self, info, records) -> None:
        pass

    def trial_started(self, number, params) -> None:
        pass

    def trial_epoch(self, number, epoch, logs) -> None:
        pass

    def trial_finished(self, record: TrialRecord) -> None:
        self.finished.append(record)
        seconds = record.seconds or 0.0
        shown = f"{seconds * 1000:.2f} ms" if record.outcome.rejected else f"{seconds:.1f} s"
        print(f"  trial {record.number:>2}  {record.outcome.value:<11} {shown:>10}"
              + (f"  {record.reason}" if record.outcome.rejected else ""), flush=True)

    def should_stop(self) -> bool:
        return False


def baseline_seconds(info, record: TrialRecord, dataset, task, epochs: int) -> tuple[float, str]:
    """What ``record``'s design would have cost without the pre-check, and what was measured."""
    import keras

    from engine.keras_build import build_keras_model
    from engine.sweep import trial_design
    from engine.training import NullReporter, train

    design, training = trial_design(info, record)
    keras.backend.clear_session()
    started = time.perf_counter()
    if record.outcome is TrialOutcome.INVALID:
        try:
            build_keras_model(design, check=False)
        except Exception as exc:  # noqa: BLE001 - what Keras says does not matter here, only when
            seconds = time.perf_counter() - started
            return seconds, f"Keras refused it: {type(exc).__name__}"
        return time.perf_counter() - started, "Keras built it (the analysis is stricter)"
    config = replace(training.config, epochs=epochs)
    train(design, dataset.train, dataset.validation, config, NullReporter(), task=task,
          pixel_range=training.pixel_range)
    return time.perf_counter() - started, f"built and trained {epochs} epoch(s)"


def load_data(design, training: TrainingSettings):
    """The project's dataset and task, loaded once (the sweep and the baseline share them)."""
    from engine.data_source import choose_task, load_dataset, model_io, task_to_load

    config = training.config
    io = model_io(design)
    dataset = load_dataset(training.dataset, io.input_shape, config.validation_split, config.seed,
                           training.pixel_range, output_units=io.output_units,
                           task=task_to_load(training.dataset, io, config.task),
                           target_columns=training.target_columns, output_shape=io.output_shape)
    return dataset, choose_task(io, dataset, config.task)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=12, help="trained trials (default 12)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per trial (default 1)")
    parser.add_argument("--seed", type=int, default=3,
                        help="the sampler's seed (default 3: a run that meets both kinds of rejection)")
    args = parser.parse_args()

    from engine.quiet_tf import importing_tensorflow
    from engine.sweep import SweepProject, run_sweep

    folder = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    try:
        project_path = folder / EXAMPLE.name
        shutil.copyfile(EXAMPLE, project_path)
        project = load_project(project_path)
        training = TrainingSettings.from_dict(project.training)
        settings = SweepSettings.from_dict(project.sweep).with_changes(
            trials=args.trials, epochs=args.epochs, seed=args.seed)
        print(f"command: uv run python benchmarks/bench_sweep.py --trials {args.trials} --epochs {args.epochs} "
              f"--seed {args.seed}")
        print(f"the same sweep from the command line: convas sweep {EXAMPLE.relative_to(ROOT)} --trials "
              f"{args.trials} --epochs {args.epochs} --seed {args.seed}")
        print(f"sweep: {project.design.name}, {settings.trials} trained trials of {settings.epochs} epoch(s), "
              f"objectives {settings.objectives.text()}, budget {settings.budget.max_macs:,} MACs, "
              f"{settings.sampler.value} sampler (seed {settings.seed}), storage in {folder}")
        with importing_tensorflow():
            import keras  # noqa: F401 - loaded before the clock starts, as `convas sweep` does

        dataset, task = load_data(project.design, training)
        reporter = Collect()
        started = time.perf_counter()
        outcome = run_sweep(SweepProject(project.design, training, settings, project_path), reporter,
                            dataset=dataset)
        wall = time.perf_counter() - started
        rejected = [r for r in reporter.finished if r.outcome.rejected]
        checks = sum(r.seconds or 0.0 for r in rejected)
        print()
        print(f"sweep wall time {wall:.1f} s (data loading and opening the study included): "
              f"{outcome.trained} trained, {outcome.rejected} rejected "
              f"({sum(r.outcome is TrialOutcome.INVALID for r in rejected)} invalid, "
              f"{sum(r.outcome is TrialOutcome.OVER_BUDGET for r in rejected)} over budget)")
        print(f"  training:  {outcome.trained_seconds:8.2f} s     {outcome.trained_seconds / wall:7.2%} of the sweep")
        print(f"  rejected:  {outcome.rejected_seconds * 1000:8.1f} ms    {outcome.rejected_seconds / wall:7.3%} "
              f"of the sweep (asking Optuna, checking, recording)")
        print(f"    of which the engine's checks: {checks * 1000:.2f} ms "
              f"({checks * 1000 / max(1, len(rejected)):.2f} ms per design)")
        if not rejected:
            print("no design was rejected in this run: try another --seed")
            return

        print()
        print("baseline, without the pre-check (measured now, same process):")
        total = 0.0
        for record in rejected:
            seconds, what = baseline_seconds(outcome.info, record, dataset, task, settings.epochs or 1)
            total += seconds
            print(f"  trial {record.number:>2}  {record.outcome.value:<11} {seconds:8.2f} s  {what}")
        bookkeeping = outcome.rejected_seconds - checks  # Optuna's ask and tell: every trial pays it
        without = bookkeeping + total
        print(f"  the rejected designs' checks: {checks * 1000:.2f} ms, against {total:.2f} s of Keras "
              f"({total / max(checks, 1e-9):,.0f}× less)")
        print(f"  with Optuna's bookkeeping, which every trial pays either way "
              f"({bookkeeping * 1000 / len(rejected):.0f} ms a trial): {outcome.rejected_seconds:.2f} s with "
              f"the pre-check, {without:.2f} s without ({without / outcome.rejected_seconds:,.1f}× more)")
        print(f"  share of the sweep they took: {outcome.rejected_seconds / wall:.2%}; would have taken: "
              f"{without / (wall - outcome.rejected_seconds + without):.2%}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def large_design_check(blocks: int = 333, rounds: int = 5) -> None:
    """The pre-check at scale: a design of ``blocks`` Conv2D/BatchNorm/ReLU blocks with one range
    on the first Conv2D; the median time to make a trial's design (:func:`sample`), to analyse it
    as the sweep does (incrementally from the design's own analysis) and, as the baseline in the
    same run, to analyse it in full."""
    from statistics import median

    from engine.analysis import analyse
    from engine.design import chain
    from engine.search_range import SearchRange
    from engine.search_space import sample
    from engine.sweep import SweepProject, _Sweep
    from engine.sweep_settings import SweepSettings

    layers: list[tuple[str, dict]] = [("InputLayer", {"shape": (64, 64, 3)})]
    for _ in range(blocks):
        layers += [("Conv2D", {"filters": 16, "kernel_size": 3, "padding": "same"}), ("BatchNormalization", {}),
                   ("ReLU", {})]
    layers += [("GlobalAveragePooling2D", {}), ("Dense", {"units": 10, "activation": "softmax"})]
    design = chain(*layers)
    design.nodes["conv2d"].search["filters"] = SearchRange.ints(8, 64, 8)
    training = TrainingSettings()
    sweep = _Sweep.__new__(_Sweep)
    sweep.project, sweep.base_analysis = SweepProject(design, training, SweepSettings()), None
    sweep._analyse(design, 32, training.pixel_range)  # the design's own analysis, made once per sweep
    copies, quick, full = [], [], []
    for i in range(rounds):
        started = time.perf_counter()
        trial, _ = sample(design, training, {"layer:conv2d:filters": 8 * (1 + i % 8)})
        copies.append(time.perf_counter() - started)
        started = time.perf_counter()
        sweep._analyse(trial, 32, training.pixel_range)
        quick.append(time.perf_counter() - started)
        started = time.perf_counter()
        analyse(trial, 32, input_range=training.pixel_range)
        full.append(time.perf_counter() - started)
    print(f"\n{len(design):,}-layer design, one range on the first Conv2D (median of {rounds}):")
    print(f"  the trial's design (sample): {median(copies) * 1000:.1f} ms")
    print(f"  its analysis as the sweep does it (incremental): {median(quick) * 1000:.2f} ms")
    print(f"  baseline, a full analysis: {median(full) * 1000:.1f} ms "
          f"({median(full) / median(quick):,.0f}× the incremental one)")


if __name__ == "__main__":
    main()
    large_design_check()
