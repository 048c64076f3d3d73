"""`convas sweep` end to end: trials into SQLite and read back, designs rejected before training,
two processes sharing one study, resuming, --export-best, Ctrl+C, and one clean message for
every bad input."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_train import run, sigint_guard as sigint_guard  # sigint_guard: a fixture these tests use

from engine.cli import main as cli
from engine.design import chain
from engine.project_file import design_to_dict, load_project, save_project
from engine.search_range import SearchRange
from engine.sweep_results import TrialOutcome, TrialRecord
from engine.sweep_settings import Budget, CostKind, Objectives, PrunerKind, SamplerKind, SweepSettings
from engine.training import TrainingConfig, TrainingSettings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "resources" / "examples" / "seed_cnn_sweep.convas"
SEED = ROOT / "resources" / "examples" / "seed_cnn.convas"
TRIAL_LINE = re.compile(r"^trial (\d+)(?: \[(\d+)/(\d+)\])?  (.*)  →  (.*)$", re.M)


def tiny_project(path: Path, *, conv2_kernels: tuple[int, ...] = (3, 5), filters: tuple[int, ...] | None = None,
                 trials: int = 4, epochs: int = 1, seed: int = 0, max_macs: int | None = None) -> Path:
    """A small CNN on Digits (28×28) with ranges on filters, kernel size, dropout and learning
    rate: a trial trains one epoch in about a second."""
    design = chain(("InputLayer", {"shape": (28, 28, 1)}),
                   ("Conv2D", {"filters": 4, "kernel_size": (3, 3), "activation": "relu"}),
                   ("MaxPooling2D", {"pool_size": (2, 2)}),
                   ("Conv2D", {"filters": 4, "kernel_size": (3, 3), "activation": "relu"}),
                   ("MaxPooling2D", {"pool_size": (2, 2)}),
                   ("Flatten", {}), ("Dropout", {"rate": 0.1}),
                   ("Dense", {"units": 10, "activation": "softmax"}), name="tiny")
    design.set_search("conv2d", "filters", SearchRange.among(*filters) if filters else SearchRange.ints(4, 8, 4))
    design.set_search("conv2d_1", "kernel_size", SearchRange.among(*conv2_kernels))
    design.set_search("dropout", "rate", SearchRange.floats(0.0, 0.5))
    training = TrainingSettings("digits", TrainingConfig(batch_size=64),
                                search={"learning_rate": SearchRange.floats(1e-3, 1e-2, log=True)})
    sweep = SweepSettings(Objectives("val_accuracy", CostKind.MACS), SamplerKind.RANDOM, PrunerKind.NONE,
                          trials=trials, epochs=epochs, budget=Budget(max_macs=max_macs), seed=seed)
    save_project(path, design, training.to_dict(), sweep=sweep.to_dict())
    return path


def storage_of(project: Path) -> str:
    return "sqlite:///" + project.with_name(project.stem + ".sweep.db").resolve().as_posix()


def records(project: Path, study: str = "tiny"):
    from engine.sweep import load_records

    return load_records(storage_of(project), study)


def trial_lines(out: str) -> dict[int, tuple[str, str]]:
    """Trial number → (values, outcome) as printed."""
    return {int(m[1]): (m[4], m[5]) for m in TRIAL_LINE.finditer(out)}


# ---------------------------------------------------------------- words (no TensorFlow)

def _reporter():
    from engine.sweep_cli import ConsoleSweepReporter

    stream = io.StringIO()
    reporter = ConsoleSweepReporter(12, 2, stream=stream, interactive=False)
    reporter.labels = {"layer:conv2d:filters": "conv2d.filters", "training:learning_rate": "learning rate"}
    return reporter, stream


def test_rejected_trials_say_why_and_show_no_time():
    reporter, stream = _reporter()
    params = {"layer:conv2d:filters": 24, "training:learning_rate": 0.0012345}
    reporter.trial_finished(TrialRecord(3, TrialOutcome.INVALID, params, seconds=0.0002,
                                        reason="conv2d_1: 7×7 kernel is larger than its 6×6 input"))
    reporter.trial_finished(TrialRecord(4, TrialOutcome.OVER_BUDGET, params, seconds=0.0001,
                                        reason="over budget: 5,017,600 MACs (budget 4,000,000)"))
    assert stream.getvalue().splitlines() == [
        "trial 3  conv2d.filters 24, learning rate 0.001234  →  rejected (invalid): conv2d_1: 7×7 kernel is "
        "larger than its 6×6 input",
        "trial 4  conv2d.filters 24, learning rate 0.001234  →  rejected (over budget): 5,017,600 MACs "
        "(budget 4,000,000)"]
    assert reporter.trained == 0


def test_trained_trials_count_towards_the_target():
    from engine.sweep_cli import ConsoleSweepReporter

    reporter, stream = _reporter()
    reporter.info = type("Info", (), {"metric": "val_accuracy", "cost": CostKind.MACS})()
    reporter.trial_finished(TrialRecord(0, TrialOutcome.COMPLETE, {"layer:conv2d:filters": 8}, metric=0.91234,
                                        cost=1_234_567.0, seconds=4.21, epochs_run=2))
    reporter.trial_finished(TrialRecord(1, TrialOutcome.PRUNED, {"layer:conv2d:filters": 16}, metric=0.5,
                                        seconds=2.0, epochs_run=1))
    assert stream.getvalue().splitlines() == [
        "trial 0 [1/12]  conv2d.filters 8  →  val_accuracy 0.9123, 1.23 M MACs, 4.2 s",
        "trial 1 [2/12]  conv2d.filters 16  →  pruned after 1 epoch(s): val_accuracy 0.5000, 2.0 s"]
    assert isinstance(reporter, ConsoleSweepReporter)


def test_the_best_of_the_front_is_the_most_accurate_then_the_cheapest():
    from engine.sweep_cli import best_of_front

    front = [TrialRecord(1, TrialOutcome.COMPLETE, metric=0.80, cost=1.0),
             TrialRecord(2, TrialOutcome.COMPLETE, metric=0.95, cost=9.0),
             TrialRecord(5, TrialOutcome.COMPLETE, metric=0.95, cost=3.0)]
    assert best_of_front(front, higher_is_better=True).number == 5
    assert best_of_front(front, higher_is_better=False).number == 1
    assert best_of_front([], True) is None


def test_the_example_ships_a_search_space_and_sweep_settings():
    from engine.analysis import analyse
    from engine.search_space import search_space, space_problems

    project = load_project(EXAMPLE)
    training = TrainingSettings.from_dict(project.training)
    labels = [t.label for t, _ in search_space(project.design, training)]
    assert labels == ["conv2d.filters", "conv2d.kernel_size", "conv2d.strides", "conv2d_1.filters",
                      "conv2d_1.kernel_size", "dropout.rate", "learning rate"]
    assert space_problems(project.design, training) == []
    settings = SweepSettings.from_dict(project.sweep)
    assert (settings.objectives, settings.epochs, settings.trials) == (Objectives("val_accuracy", CostKind.MACS), 2, 12)
    assert analyse(project.design).macs <= settings.budget.max_macs  # the design itself is within


# ---------------------------------------------------------------- bad input (no training)

@pytest.mark.parametrize("args, needle", [
    (["--trials", "0"], "argument --trials: must be at least 1, got 0"),
    (["--epochs", "two"], "argument --epochs: 'two' is not a whole number"),
    (["--objectives", "val_accuracy,macs,params"], "at most one cost"),
    (["--objectives", "speed"], "unknown objective 'speed'"),
    (["--sampler", "grid"], "argument --sampler: invalid choice: 'grid'"),
    (["--max-macs", "lots"], "argument --max-macs: 'lots' is not a whole number"),
    (["--max-activation-mb", "-1"], "argument --max-activation-mb: must be greater than 0"),
    (["--storage", "nowhere"], "argument --storage: write a database URL such as sqlite:///sweep.db or "
                               "postgresql://user@host/db, not 'nowhere'"),
    (["--study", " "], "argument --study: give the study a name"),
    (["--distribute", "multiworker"], "argument --distribute: invalid choice: 'multiworker'"),
])
def test_bad_flags_exit_2_with_the_reason(capsys, args, needle):
    with pytest.raises(SystemExit) as info:
        cli(["sweep", str(EXAMPLE), *args])
    err = capsys.readouterr().err
    assert info.value.code == 2 and needle in err and "Traceback" not in err, err


def test_help_lists_sweep(capsys):
    with pytest.raises(SystemExit):
        cli(["sweep", "-h"])
    text = capsys.readouterr().out
    for flag in ("--trials", "--timeout", "--epochs", "--objectives", "--storage", "--study", "--sampler",
                 "--pruner", "--max-params", "--max-macs", "--max-activation-mb", "--seed", "--data",
                 "--export-best", "--pick", "Ctrl+C"):
        assert flag in text


KERAS_JSON = """{"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": [
 {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 4], "name": "input_layer"}},
 {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "units": 2}}]}}"""


@pytest.mark.parametrize("make, extra, needle", [
    (lambda tmp: tmp / "missing.convas", [], "missing.convas: no such file"),
    (lambda tmp: SEED, [], "seed_cnn.convas has no search ranges: give some layer arguments or training "
                           "settings a range"),
    (lambda tmp: tmp / "model.json", [], "model.json is a Keras model, which holds no search ranges: open "
                                         "it in Convas, give some arguments a range"),
    (lambda tmp: tmp / "notzip.keras", [], "notzip.keras"),
    (lambda tmp: EXAMPLE, ["--storage", "sqlite:///{tmp}/no/such/folder/s.db"],
     "cannot open the sweep storage sqlite:///{tmp}/no/such/folder/s.db: check that its folder exists"),
    (lambda tmp: EXAMPLE, ["--storage", "nosuchdb://host/x"], "is not a database URL Convas can use"),
    (lambda tmp: EXAMPLE, ["--pick", "3"], "--pick chooses the trial --export-best writes"),
    (lambda tmp: EXAMPLE, ["--export-best", "{tmp}/best.keras"], "--export-best {tmp}/best.keras must end "
                                                                 "in .convas"),
    (lambda tmp: EXAMPLE, ["--export-best", "{tmp}/gone/best.convas"], "the folder {tmp}/gone does not exist"),
    (lambda tmp: EXAMPLE, ["--devices", "CPU:0,CPU:1"], "--devices names the local devices of mirrored training"),
    (lambda tmp: EXAMPLE, ["--distribute", "mirrored", "--devices", "TPU:9"], "--devices: 'TPU:9' is not a device"),
])
def test_bad_input_exits_2_with_a_sentence(tmp_path, capsys, make, extra, needle):
    (tmp_path / "model.json").write_text(KERAS_JSON, encoding="utf-8")
    (tmp_path / "notzip.keras").write_text("this is not a zip archive", encoding="utf-8")
    code, out, err = run(capsys, "sweep", make(tmp_path), *[a.format(tmp=tmp_path) for a in extra])
    assert code == 2, (out, err)
    assert needle.format(tmp=tmp_path) in err, err
    assert err.startswith("convas: ") and "Traceback" not in err + out
    assert not list(tmp_path.glob("*.convas")) and not list(tmp_path.glob("*.db"))


def test_sweep_settings_the_project_cannot_use_exit_2(tmp_path, capsys):
    path = tmp_path / "odd.convas"
    tiny_project(path)
    text = path.read_text().replace('"sampler": "random"', '"sampler": "annealing"')
    path.write_text(text)
    code, _, err = run(capsys, "sweep", path)
    assert code == 2 and "odd.convas: sweep settings: the sweep's sampler must be one of tpe, nsga2, random" in err


# ---------------------------------------------------------------- sweeps that train

@pytest.mark.slow
def test_8_trials_run_through_the_cli_into_sqlite(tmp_path, capsys):
    """A space over filters, kernel size, dropout and learning rate on Digits: 8 one-epoch trials."""
    project = tiny_project(tmp_path / "tiny.convas", trials=8, seed=3)
    code, out, err = run(capsys, "sweep", project)
    assert code == 0, err
    info, recs = records(project)
    assert (info.metric, info.cost, info.higher_is_better) == ("val_accuracy", CostKind.MACS, True)
    assert len(recs) == 8 and all(r.outcome is TrialOutcome.COMPLETE for r in recs)
    assert all(r.epochs_run == 1 and len(r.curve) == 1 and r.cost == r.macs and 0 <= r.metric <= 1 for r in recs)
    assert {r.params["layer:conv2d:filters"] for r in recs} <= {4, 8}
    lines = trial_lines(out)
    assert sorted(lines) == list(range(8))
    for r in recs:
        values, outcome = lines[r.number]
        assert values.startswith(f"conv2d.filters {r.params['layer:conv2d:filters']}, conv2d_1.kernel_size "
                                 f"{r.params['layer:conv2d_1:kernel_size']}, dropout.rate ")
        assert "learning rate " in values
        assert outcome.startswith(f"val_accuracy {r.metric:.4f}, ") and " MACs, " in outcome
    assert "8 trained, 0 rejected before training; training took " in out
    assert "Pareto front (val_accuracy: higher is better; MACs: lower is better):" in out
    table = out[out.index("Pareto front"):].splitlines()[1:]
    assert table[0].split() == ["trial", "val_accuracy", "MACs", "params", "differs", "from", "the", "design"]
    from engine.sweep_results import pareto_front

    assert [int(row.split()[0]) for row in table[1:]] == [r.number for r in pareto_front(recs)]
    assert "4 range(s)" in err and "conv2d_1.kernel_size: 3 | 5" in err


@pytest.mark.slow
def test_the_example_runs_as_it_is(tmp_path, capsys):
    """The shipped example with its saved settings (one trial, to keep the test short)."""
    project = tmp_path / "seed_cnn_sweep.convas"
    project.write_bytes(EXAMPLE.read_bytes())
    code, out, err = run(capsys, "sweep", project, "--trials", "1")
    assert code == 0, err
    _info, recs = records(project, "seed_cnn_sweep")
    trained = [r for r in recs if r.outcome.trained]
    assert len(trained) == 1 and trained[0].epochs_run in (1, 2)
    assert "7 range(s), until the study holds 1 trained trial(s), 2 epoch(s) each on digits; objectives " \
           "val_accuracy,macs; tpe sampler, median pruner; budget at most 4,000,000 MACs" in err
    assert set(trial_lines(out)) == {r.number for r in recs}


@pytest.mark.slow
def test_invalid_and_over_budget_designs_are_recorded_without_training(tmp_path, capsys):
    # conv2d_1 sees 13×13: a 15×15 kernel is invalid; 64 filters in conv2d cost more than 150 K MACs.
    project = tiny_project(tmp_path / "tiny.convas", conv2_kernels=(3, 15), filters=(4, 64), trials=2, seed=1)
    code, out, err = run(capsys, "sweep", project, "--max-macs", "150k")
    assert code == 0, err
    _info, recs = records(project)
    invalid = [r for r in recs if r.outcome is TrialOutcome.INVALID]
    over = [r for r in recs if r.outcome is TrialOutcome.OVER_BUDGET]
    assert invalid and over, [r.outcome for r in recs]
    for r in invalid:
        assert r.params["layer:conv2d_1:kernel_size"] == 15 and r.epochs_run == 0 and not r.curve
        assert "15×15 kernel is larger than its" in r.reason
        assert "rejected (invalid): conv2d_1: 15×15 kernel is larger than its" in trial_lines(out)[r.number][1]
    for r in over:
        assert r.params["layer:conv2d:filters"] == 64 and r.epochs_run == 0 and r.macs > 150_000
        assert "(budget 150,000)" in r.reason and r.seconds < 1.0
        assert trial_lines(out)[r.number][1].startswith(f"rejected (over budget): {r.macs:,} MACs (budget 150,000)")
    assert sum(r.outcome.trained for r in recs) == 2
    assert (f"2 trained, {len(invalid) + len(over)} rejected before training ({len(invalid)} invalid, "
            f"{len(over)} over budget: ") in out
    assert "ms of it the engine's checks); skipping the over-budget design(s) saved about " in out


@pytest.mark.slow
def test_no_trainable_design_exits_1(tmp_path, capsys):
    project = tiny_project(tmp_path / "tiny.convas", conv2_kernels=(15, 17))
    code, out, err = run(capsys, "sweep", project, "--timeout", "2")
    assert code == 1, (out, err)
    assert "no trial could be trained to the end (every design was rejected or failed: " in err
    assert "invalid" in err and "Traceback" not in err
    _info, recs = records(project)
    assert recs and all(r.outcome is TrialOutcome.INVALID for r in recs)


@pytest.mark.slow
def test_data_that_cannot_be_loaded_exits_2(tmp_path, capsys):
    project = tiny_project(tmp_path / "tiny.convas")
    code, out, err = run(capsys, "sweep", project, "--data", tmp_path / "nowhere")
    assert code == 2, (out, err)
    assert "convas: cannot prepare the sweep's data: " in err and "nowhere does not exist" in err
    assert "Traceback" not in err and not trial_lines(out)


@pytest.mark.slow
def test_resuming_continues_the_study_and_export_best_writes_the_trial(tmp_path, capsys):
    from engine.sweep import trial_design
    from engine.sweep_cli import best_of_front
    from engine.sweep_results import pareto_front

    project = tiny_project(tmp_path / "tiny.convas")
    code, _first, err = run(capsys, "sweep", project, "--trials", "3")
    assert code == 0, err
    _info, recs = records(project)
    assert sum(r.outcome.trained for r in recs) == 3
    before = max(r.number for r in recs)

    best_path = tmp_path / "best.convas"
    code, second, err = run(capsys, "sweep", project, "--trials", "5", "--export-best", best_path)
    assert code == 0, err
    assert "resuming study tiny: it holds 3 trained trial(s)" in err
    info, recs = records(project)
    assert sum(r.outcome.trained for r in recs) == 5
    assert sorted(r.number for r in recs) == list(range(len(recs)))  # every number once, none lost
    assert min(trial_lines(second)) == before + 1  # numbering continues
    assert "2 trained" in second

    best = best_of_front(pareto_front(recs, info.higher_is_better), info.higher_is_better)
    assert f"wrote trial {best.number} (val_accuracy {best.metric:.4f}" in second
    design, training = trial_design(info, best)
    written = load_project(best_path)
    assert design_to_dict(written.design) == design_to_dict(design)
    assert TrainingSettings.from_dict(written.training) == training
    assert SweepSettings.from_dict(written.sweep).trials == 5

    # --pick another trial; the study already holds 5 trained trials, so none runs
    other = next(r for r in recs if r.outcome is TrialOutcome.COMPLETE and r.number != best.number)
    picked = tmp_path / "picked.convas"
    code, third, err = run(capsys, "sweep", project, "--trials", "5", "--export-best", picked,
                           "--pick", str(other.number))
    assert code == 0, err
    assert not trial_lines(third) and "the study already held 5 trained trial(s)" in err
    assert f"wrote trial {other.number} " in third
    assert design_to_dict(load_project(picked).design) == design_to_dict(trial_design(info, other)[0])
    code, _, err = run(capsys, "sweep", project, "--trials", "5", "--export-best", picked, "--pick", "99")
    assert code == 2 and "--pick 99: study tiny has no trial 99" in err


def _sweep_process(project: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "sweep", str(project), *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path):
    project = tiny_project(tmp_path / "tiny.convas", trials=4)
    first, second = _sweep_process(project, "--sampler", "tpe"), _sweep_process(project, "--sampler", "tpe")
    outputs = [p.communicate(timeout=900) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    _info, recs = records(project)
    assert len([r for r in recs if r.outcome.trained]) == 4
    assert all(r.outcome is TrialOutcome.COMPLETE and r.metric is not None and r.cost is not None for r in recs)
    assert sorted(r.number for r in recs) == list(range(len(recs)))
    printed = [set(trial_lines(out)) for out, _ in outputs]
    assert not printed[0] & printed[1]  # no trial ran twice
    assert printed[0] | printed[1] == {r.number for r in recs}  # and none was lost


@pytest.mark.slow
def test_ctrl_c_records_the_trial_stopped_and_the_same_command_resumes(tmp_path, capsys, monkeypatch,
                                                                       sigint_guard):
    from engine.sweep_cli import ConsoleSweepReporter

    original = ConsoleSweepReporter.trial_epoch

    def trial_epoch(self, number, epoch, logs):  # Ctrl+C after the first epoch of the second trial
        original(self, number, epoch, logs)
        if number == 1 and epoch == 0:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(ConsoleSweepReporter, "trial_epoch", trial_epoch)
    project = tiny_project(tmp_path / "tiny.convas", trials=2, epochs=3)
    code, out, err = run(capsys, "sweep", project)
    assert code == 130, err
    assert sigint_guard == [], "the CLI did not handle Ctrl+C itself"
    assert "stopping: the running trial is recorded as stopped and trained first when the sweep resumes" in err
    assert f"Resume with:\n  convas sweep {project}\n" in err and "Traceback" not in err
    assert "trial 1  " in out and "stopped after 1 epoch(s); it is trained first when the sweep resumes" in out
    _info, recs = records(project)
    assert [r.outcome for r in recs] == [TrialOutcome.COMPLETE, TrialOutcome.STOPPED, TrialOutcome.WAITING]
    assert recs[2].params == recs[1].params

    monkeypatch.setattr(ConsoleSweepReporter, "trial_epoch", original)
    code, out, err = run(capsys, "sweep", project)
    assert code == 0, err
    _info, recs = records(project)
    assert [r.outcome for r in recs] == [TrialOutcome.COMPLETE, TrialOutcome.STOPPED, TrialOutcome.COMPLETE]
    assert recs[2].params == recs[1].params and recs[2].epochs_run == 3  # the stopped values, trained first


@pytest.mark.slow
def test_each_trial_trains_mirrored_when_asked(tmp_path):
    """--distribute mirrored: every trial trains through train() under MirroredStrategy (here
    over the CPU split in two, in a process of its own: devices are set before TensorFlow starts)."""
    import optuna

    project = tiny_project(tmp_path / "tiny.convas", trials=1)
    process = _sweep_process(project, "--distribute", "mirrored", "--devices", "CPU:0,CPU:1")
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, (out, err)
    assert "each trial mirrored over CPU:0, CPU:1" in err
    study = optuna.load_study(study_name="tiny", storage=storage_of(project))
    trained = [t for t in study.trials if t.user_attrs.get("outcome") == TrialOutcome.COMPLETE.value]
    assert len(trained) == 1 and trained[0].user_attrs["replicas"] == 2
