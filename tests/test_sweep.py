"""The sweep engine (engine.sweep): rejection before training, trial counting, resuming, stopping,
refusing a changed study, pruning single- and multi-objective studies, reading a study back,
sharing one SQLite study between processes, and a real run on Digits with a latency objective.

Most tests replace engine.training.train with a fake that reports epochs and returns at once, so
that they exercise the sweep's own logic in well under a second; the slow test trains for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from engine.design import chain
from engine.search_range import SearchRange
from engine.sweep import (
    STALE_REASON, NullSweepReporter, SweepError, SweepProject, _Sweep, load_records, run_sweep,
    study_names, trial_design,
)
from engine.sweep_results import TrialOutcome
from engine.sweep_settings import Budget, CostKind, Objectives, PrunerKind, SamplerKind, SweepSettings
from engine.training import TrainingConfig, TrainingResult, TrainingSettings

ROOT = Path(__file__).resolve().parent.parent

KERNEL = "layer:conv2d:kernel_size"
FILTERS = "layer:conv2d:filters"


def tiny_design(name: str = "tiny"):
    """8×8 digits → Conv2D → Flatten → Dense(10): kernel 9 is invalid on an 8×8 input, and 64
    filters are over a 10,000-parameter budget (64·36·10 weights in the Dense layer alone)."""
    design = chain(("InputLayer", {"shape": (8, 8, 1)}),
                   ("Conv2D", {"filters": 4, "kernel_size": (3, 3), "activation": "relu"}),
                   ("Flatten", {}), ("Dense", {"units": 10, "activation": "softmax"}), name=name)
    design.set_search("conv2d", "kernel_size", SearchRange.among(3, 9))
    design.set_search("conv2d", "filters", SearchRange.among(2, 4, 64))
    return design


def project(tmp_path: Path, design=None, **settings) -> SweepProject:
    base = dict(trials=3, epochs=2, seed=0, sampler=SamplerKind.RANDOM, pruner=PrunerKind.NONE,
                budget=Budget(max_params=10_000))
    base.update(settings)
    training = TrainingSettings(config=TrainingConfig(epochs=2, batch_size=64))
    return SweepProject(design or tiny_design(), training, SweepSettings(**base), tmp_path / "tiny.convas")


class FakeTraining:
    """Stands for engine.training.train: counts calls, reports each epoch a validation accuracy
    that grows with the filters, and stops when the reporter says so (as train does)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.restored_epoch: int | None = None
        self.fail_with: Exception | None = None
        self.diverge = False

    def __call__(self, design, data_train, data_val, config, reporter=None, model=None, **kwargs):
        filters = design.nodes["conv2d"].args["filters"]
        self.calls.append({"filters": filters, "kernel": design.nodes["conv2d"].args["kernel_size"],
                           "samples": len(data_train), "validation": len(data_val)})
        if self.fail_with is not None:
            raise self.fail_with
        history: dict[str, list[float]] = {"val_accuracy": [], "val_loss": []}
        epochs = 0
        for epoch in range(config.epochs):
            if reporter.should_stop():
                break
            logs = {"val_accuracy": min(0.99, 0.2 + filters / 100 + epoch / 10), "val_loss": 1.0 - epoch / 10}
            for key, value in logs.items():
                history[key].append(value)
            epochs += 1
            reporter.on_epoch(epoch, logs)
        if self.diverge:
            return TrainingResult(model=None, history=history, epochs_run=epochs, diverged=True,
                                  stop_reason="the loss became NaN in epoch 1; try learning rate 0.0001")
        return TrainingResult(model=None, history=history, epochs_run=epochs, restored_epoch=self.restored_epoch)


@pytest.fixture
def fake_train(monkeypatch):
    fake = FakeTraining()
    monkeypatch.setattr("engine.training.train", fake)
    monkeypatch.setattr(_Sweep, "_load_keras", lambda self: None)
    monkeypatch.setattr(_Sweep, "_clear_keras", lambda self: None)
    return fake


class Recorder(NullSweepReporter):
    def __init__(self, stop_at_epoch_of: int | None = None) -> None:
        self.started: list[int] = []
        self.finished = []
        self.epochs: list[tuple[int, int]] = []
        self.before = None
        self.stop_at_epoch_of = stop_at_epoch_of
        self.stop = False

    def sweep_started(self, info, records):
        self.before = records

    def trial_started(self, number, params):
        self.started.append(number)

    def trial_epoch(self, number, epoch, logs):
        self.epochs.append((number, epoch))
        if number == self.stop_at_epoch_of:
            self.stop = True

    def trial_finished(self, record):
        self.finished.append(record)

    def should_stop(self):
        return self.stop


def enqueue(info, params):
    """Queue ``params`` as the study's next trial, as another process could."""
    import optuna

    from engine.sweep_storage import open_storage

    optuna.load_study(study_name=info.study, storage=open_storage(info.storage)).enqueue_trial(params)


def by_outcome(records, outcome):
    return [r for r in records if r.outcome is outcome]


# --- refusing ---------------------------------------------------------------------------------

def test_a_project_without_ranges_is_refused(tmp_path):
    design = chain(("InputLayer", {"shape": (8, 8, 1)}), ("Flatten", {}), ("Dense", {"units": 10}))
    with pytest.raises(SweepError, match=r"has no search ranges; make an argument a range with the … button"):
        run_sweep(project(tmp_path, design))


def test_a_bad_storage_url_is_one_sentence(tmp_path):
    with pytest.raises(SweepError, match=r"cannot open the sweep storage .*folder exists") as caught:
        run_sweep(project(tmp_path, storage=f"sqlite:///{tmp_path}/no/such/folder/x.db"))
    assert "Traceback" not in str(caught.value) and "sqlalchemy" not in str(caught.value).lower()
    with pytest.raises(SweepError, match=r"not a database URL Convas can use"):
        run_sweep(project(tmp_path, storage="nosuchdb://host/x"))


# --- rejection, counting, resuming ------------------------------------------------------------

def test_invalid_and_over_budget_trials_are_recorded_without_training(tmp_path, fake_train):
    recorder = Recorder()
    outcome = run_sweep(project(tmp_path, trials=4), recorder)

    records = outcome.records
    invalid = by_outcome(records, TrialOutcome.INVALID)
    over = by_outcome(records, TrialOutcome.OVER_BUDGET)
    complete = by_outcome(records, TrialOutcome.COMPLETE)
    assert invalid and over, [r.outcome for r in records]
    assert all(r.params[KERNEL] == 9 for r in invalid)
    assert all("9×9 kernel is larger than its 8×8 input" in (r.reason or "") for r in invalid)
    assert all(r.params[FILTERS] == 64 and r.params[KERNEL] == 3 for r in over)
    assert all((r.reason or "").startswith("over budget:") and "parameters (budget 10,000)" in (r.reason or "")
               for r in over)
    assert all(r.params_count is not None and r.params_count > 10_000 for r in over)
    # Only the trained ones reached train(): never a kernel of 9 or 64 filters.
    assert len(fake_train.calls) == len(complete) == 4 == outcome.trained
    assert all(c["kernel"] in (3, (3, 3)) and c["filters"] in (2, 4) for c in fake_train.calls)
    assert outcome.rejected == len(invalid) + len(over)
    for r in invalid + over:
        assert r.epochs_run == 0 and r.curve == () and r.metric is None
        assert r.seconds is not None and r.seconds >= 0  # the time the decision took
        assert r.worker and r.worker.endswith(f":{os.getpid()}")
    assert outcome.rejected_seconds > 0 and outcome.trained_seconds > 0
    assert sorted(recorder.started) == outcome.ran == [r.number for r in records]
    assert [r.number for r in recorder.finished] == outcome.ran
    assert outcome.stop_reason is None and not outcome.stopped


def test_complete_trials_carry_metric_cost_and_curve(tmp_path, fake_train):
    outcome = run_sweep(project(tmp_path, trials=2, objectives=Objectives(cost=CostKind.PARAMS)))
    for r in by_outcome(outcome.records, TrialOutcome.COMPLETE):
        filters = r.params[FILTERS]
        assert r.metric == pytest.approx(0.2 + filters / 100 + 0.1)  # the last epoch (no restore)
        assert r.curve == pytest.approx((0.2 + filters / 100, 0.3 + filters / 100))
        assert r.cost == r.params_count and r.epochs_run == 2


def test_the_metric_is_the_kept_epochs_and_a_given_dataset_is_used(tmp_path, fake_train):
    from engine.data_source import load_dataset

    fake_train.restored_epoch = 0  # training put the first epoch's weights back
    dataset = load_dataset("digits", (8, 8, 1), validation_split=0.5, seed=3)
    outcome = run_sweep(project(tmp_path, trials=2), dataset=dataset)
    assert {(c["samples"], c["validation"]) for c in fake_train.calls} == {(len(dataset.train),
                                                                            len(dataset.validation))}
    for r in by_outcome(outcome.records, TrialOutcome.COMPLETE):
        assert r.metric == pytest.approx(r.curve[0]) and r.metric < r.curve[1]


def test_failed_training_is_a_failed_trial_that_counts(tmp_path, fake_train):
    fake_train.fail_with = RuntimeError("OOM when allocating tensor")
    outcome = run_sweep(project(tmp_path, trials=2))
    failed = by_outcome(outcome.records, TrialOutcome.FAILED)
    assert len(failed) == 2 == outcome.trained
    assert all(r.reason == "training failed: RuntimeError: OOM when allocating tensor" for r in failed)
    fake_train.fail_with, fake_train.diverge = None, True
    diverged = run_sweep(project(tmp_path, trials=3))
    last = diverged.records[diverged.ran[-1]]
    assert last.outcome is TrialOutcome.FAILED and "the loss became NaN" in (last.reason or "")


def test_a_dense_layer_that_no_longer_matches_the_classes_is_invalid(tmp_path, fake_train):
    design = tiny_design()
    design.set_search("conv2d", "kernel_size", None)
    design.set_search("dense", "units", SearchRange.among(10, 12))
    first = run_sweep(project(tmp_path, design, trials=1, budget=Budget()))
    enqueue(first.info, {FILTERS: 4, "layer:dense:units": 12})
    outcome = run_sweep(project(tmp_path, design, trials=2, budget=Budget()))
    invalid = by_outcome(outcome.records, TrialOutcome.INVALID)
    assert [r.number for r in invalid] == [outcome.ran[0]]
    assert invalid[0].reason == "the dataset has 10 classes but the last layer 'dense' has 12 units; set units=10."
    assert len(fake_train.calls) == 2 and outcome.trained == 1


def test_the_time_limit_stops_starting_trials(tmp_path, fake_train):
    outcome = run_sweep(project(tmp_path, trials=50, timeout_s=0.2))
    assert "time limit (0.2 s) passed" in (outcome.stop_reason or "") and not outcome.stopped
    assert outcome.trained < 50


def test_resuming_continues_numbering_and_trains_only_the_missing_trials(tmp_path, fake_train):
    first = run_sweep(project(tmp_path, trials=2))
    assert first.trained == 2
    last = max(first.ran)
    recorder = Recorder()
    second = run_sweep(project(tmp_path, trials=5), recorder)
    assert recorder.before == first.records  # the panel is shown the study as it was
    assert second.trained == 3 and min(second.ran) == last + 1
    trained = [r for r in second.records if r.outcome.trained]
    assert len(trained) == 5 and len(fake_train.calls) == 5
    third = run_sweep(project(tmp_path, trials=5))
    assert third.ran == [] and third.trained == 0  # already complete: nothing to do


def test_a_stop_marks_the_trial_stopped_and_resuming_trains_it_first(tmp_path, fake_train):
    first_trained = None

    class StopInFirstTrained(Recorder):
        def trial_epoch(self, number, epoch, logs):
            nonlocal first_trained
            first_trained = number if first_trained is None else first_trained
            self.stop = True

    outcome = run_sweep(project(tmp_path, trials=3), StopInFirstTrained())
    assert outcome.stopped and "resumes" in (outcome.stop_reason or "")
    stopped = by_outcome(outcome.records, TrialOutcome.STOPPED)
    assert [r.number for r in stopped] == [first_trained]
    assert stopped[0].epochs_run == 1 and "stopped by the user" in (stopped[0].reason or "")
    waiting = by_outcome(outcome.records, TrialOutcome.WAITING)
    assert [w.params for w in waiting] == [stopped[0].params]  # queued again

    resumed = run_sweep(project(tmp_path, trials=3), Recorder())
    retried = next(r for r in resumed.records if r.number == resumed.ran[0])
    assert retried.params == stopped[0].params and retried.outcome is TrialOutcome.COMPLETE
    assert not by_outcome(resumed.records, TrialOutcome.WAITING)
    assert sum(r.outcome.trained for r in resumed.records) == 3  # the stopped one does not count


def test_an_abort_leaves_no_trial_running(tmp_path, fake_train):
    fake_train.fail_with = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(project(tmp_path, trials=2))
    _info, records = load_records(f"sqlite:///{tmp_path}/tiny.sweep.db", "tiny")
    stopped = by_outcome(records, TrialOutcome.STOPPED)
    assert len(stopped) == 1 and not by_outcome(records, TrialOutcome.RUNNING)
    assert [w.params for w in by_outcome(records, TrialOutcome.WAITING)] == [stopped[0].params]


def test_a_study_whose_space_or_objectives_changed_is_refused(tmp_path, fake_train):
    run_sweep(project(tmp_path, trials=1))
    wider = tiny_design()
    wider.set_search("dense", "activation", SearchRange.among("softmax", "sigmoid"))
    with pytest.raises(SweepError, match=r"searched other ranges \(dense.activation added\); give the sweep "
                                         r"another study name .*--study.*put the ranges back"):
        run_sweep(project(tmp_path, wider, trials=2))
    with pytest.raises(SweepError, match=r"optimised val_accuracy,macs, not val_accuracy,params"):
        run_sweep(project(tmp_path, trials=2, objectives=Objectives(cost=CostKind.PARAMS)))
    # Another study name starts afresh in the same storage.
    other = run_sweep(project(tmp_path, wider, trials=1, study="wider"))
    assert other.info.study == "wider" and other.trained == 1
    assert study_names(other.info.storage) == ["tiny", "wider"]


def test_applying_a_trial_keeps_the_study_resumable_but_another_design_does_not(tmp_path, fake_train):
    first = run_sweep(project(tmp_path, trials=1))
    record = by_outcome(first.records, TrialOutcome.COMPLETE)[0]
    applied, _ = trial_design(first.info, record)
    assert run_sweep(project(tmp_path, applied, trials=2)).trained == 1
    changed = tiny_design()
    changed.set_arg("dense", "activation", "sigmoid")
    with pytest.raises(SweepError, match=r"the design changed since the study 'tiny' started"):
        run_sweep(project(tmp_path, changed, trials=3))
    base = project(tmp_path, trials=3)
    longer = replace(base.training, config=replace(base.training.config, epochs=9))
    assert run_sweep(replace(base, training=longer)).trained == 1  # the sweep sets its own epochs
    smaller = replace(base.training, config=replace(base.training.config, batch_size=16))
    with pytest.raises(SweepError, match=r"the training settings changed since the study 'tiny' started "
                                         r"\(batch size\)"):
        run_sweep(replace(base, training=smaller, settings=replace(base.settings, trials=4)))


def test_endless_rejections_stop_with_a_reason(tmp_path, fake_train, monkeypatch):
    monkeypatch.setattr("engine.sweep.REJECTION_STREAK", 5)
    outcome = run_sweep(project(tmp_path, trials=3, budget=Budget(max_params=10)))
    assert outcome.trained == 0 and outcome.rejected == 5 and not fake_train.calls
    assert "almost only invalid or over-budget designs" in (outcome.stop_reason or "")


@pytest.mark.parametrize("sampler", list(SamplerKind))
@pytest.mark.parametrize("pruner", [PrunerKind.MEDIAN, PrunerKind.HYPERBAND])
def test_every_sampler_and_pruner_runs_a_two_objective_sweep(tmp_path, fake_train, sampler, pruner):
    class Partial:  # a reporter with only the methods it needs
        def __init__(self):
            self.finished = 0

        def trial_finished(self, record):
            self.finished += 1

    design = tiny_design()
    design.set_search("conv2d", "kernel_size", None)
    design.set_search("conv2d", "filters", SearchRange.ints(2, 16, 2))
    partial = Partial()
    outcome = run_sweep(project(tmp_path, design, trials=8, epochs=3, sampler=sampler, pruner=pruner,
                                objectives=Objectives(cost=CostKind.MACS)), partial)
    assert outcome.trained == 8 == len(fake_train.calls) and partial.finished == len(outcome.ran)
    trained = [r for r in outcome.records if r.outcome.trained]
    assert {r.outcome for r in trained} <= {TrialOutcome.COMPLETE, TrialOutcome.PRUNED}
    for r in trained:
        assert r.curve and (r.outcome is TrialOutcome.PRUNED) == (len(r.curve) < 3)


def test_a_group_repeats_as_its_trial_says(tmp_path, fake_train):
    from engine.design import Group

    design = chain(("InputLayer", {"shape": (8, 8, 1)}), ("Conv2D", {"filters": 4, "kernel_size": (3, 3)}),
                   ("Flatten", {}), ("Dense", {"units": 10, "activation": "softmax"}), name="tiny")
    design.set_group("block", Group("block", repeats=SearchRange.ints(1, 4, 1)))
    design.set_node_group("conv2d", "block")
    repeats = "group:block:repeats"
    first = run_sweep(project(tmp_path, design, trials=1, budget=Budget()))
    enqueue(first.info, {repeats: 4})  # 8 → 6 → 4 → 2 → a 3×3 kernel on 2×2: invalid
    enqueue(first.info, {repeats: 3})
    outcome = run_sweep(project(tmp_path, design, trials=2, budget=Budget()))
    four, three = (outcome.records[n] for n in outcome.ran[:2])
    assert four.params == {repeats: 4} and four.outcome is TrialOutcome.INVALID
    assert "larger than its 2×2 input" in (four.reason or "")
    assert three.params == {repeats: 3} and three.outcome is TrialOutcome.COMPLETE
    repeated, _ = trial_design(outcome.info, three)
    assert sum(n.kind == "Conv2D" for n in repeated.nodes.values()) == 3
    assert len(fake_train.calls) == 2


# --- reading back -----------------------------------------------------------------------------

def test_load_records_round_trip_and_trial_design(tmp_path, fake_train):
    outcome = run_sweep(project(tmp_path, trials=3, objectives=Objectives(cost=CostKind.MACS)))
    info, records = load_records(outcome.info.storage, "tiny")
    assert records == outcome.records
    assert info == outcome.info
    assert info.metric == "val_accuracy" and info.higher_is_better and info.cost is CostKind.MACS
    assert set(info.space) == {KERNEL, FILTERS}
    for record in records:
        design, _training = trial_design(info, record)
        kernel = design.nodes["conv2d"].args["kernel_size"]
        assert design.nodes["conv2d"].args["filters"] == record.params[FILTERS]
        assert kernel == record.params[KERNEL] or tuple(kernel) == (record.params[KERNEL],) * 2
    with pytest.raises(SweepError, match=r"holds no study named 'nope'; it holds 'tiny'"):
        load_records(outcome.info.storage, "nope")
    missing = f"sqlite:///{tmp_path}/missing.sweep.db"
    with pytest.raises(SweepError, match="no sweep storage"):
        load_records(missing, "tiny")
    assert study_names(missing) == [] and not (tmp_path / "missing.sweep.db").exists()


def test_a_trial_whose_process_died_is_failed_by_the_next_run(tmp_path, fake_train, monkeypatch):
    import optuna

    from engine import sweep_storage

    run_sweep(project(tmp_path, trials=1))
    monkeypatch.setattr(sweep_storage, "HEARTBEAT_S", 1)
    monkeypatch.setattr(sweep_storage, "GRACE_S", 1)
    url = f"sqlite:///{tmp_path}/tiny.sweep.db"
    storage = sweep_storage.open_storage(url)
    study = optuna.load_study(study_name="tiny", storage=storage)
    orphan = study.ask()
    storage.record_heartbeat(orphan._trial_id)  # then its process "dies"
    _info, records = load_records(url, "tiny")
    assert records[orphan.number].outcome is TrialOutcome.RUNNING
    time.sleep(2.5)
    _info, records = load_records(url, "tiny")  # a reader (the Sweep panel) notices it too
    assert records[orphan.number].outcome is TrialOutcome.FAILED
    assert records[orphan.number].reason == STALE_REASON
    outcome = run_sweep(project(tmp_path, trials=2))
    dead = outcome.records[orphan.number]
    assert dead.outcome is TrialOutcome.FAILED and dead.reason == STALE_REASON


# --- pruning ----------------------------------------------------------------------------------

@pytest.mark.parametrize("multi", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("kind", [PrunerKind.MEDIAN, PrunerKind.HYPERBAND])
def test_pruning_works_for_single_and_multi_objective_studies(kind, multi):
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from engine.sweep_pruning import EpochPruning, make_pruner
    from engine.sweep_storage import quiet_optuna

    quiet_optuna()
    directions = ["maximize", "minimize"] if multi else ["maximize"]
    study = optuna.create_study(directions=directions, pruner=make_pruner(kind, epochs=2),
                                study_name=f"prune-{kind.value}-{multi}")
    for i in range(6):  # finished trials that reached 0.8–0.9 by the second epoch
        good = 0.8 + i / 50
        study.add_trial(create_trial(
            state=TrialState.COMPLETE, values=[good, 1000.0] if multi else [good],
            params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
            intermediate_values={0: good - 0.1, 1: good}, system_attrs={"completed_rung_0": good}))

    def pruned_after(first: float, second: float) -> bool:
        trial = study.ask({"x": FloatDistribution(0, 1)})
        pruning = EpochPruning(study, trial, higher_is_better=True)
        assert not pruning.report(0, first)  # the first epoch is never judged
        decision = pruning.report(1, second)
        assert study._storage.get_trial(trial._trial_id).intermediate_values == {0: first, 1: second}
        if decision:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, [second, 1.0] if multi else second)
        return decision

    last = study.ask({"x": FloatDistribution(0, 1)})
    pruning = EpochPruning(study, last, higher_is_better=True)
    pruning.report(0, 0.1)
    assert not pruning.report(1, 0.2, judge=False)  # after its last epoch a trial is kept
    study.tell(last, state=TrialState.FAIL)

    assert pruned_after(0.1, 0.2)       # far behind: pruned
    assert not pruned_after(0.9, 0.99)  # ahead of them all: kept


def test_no_pruner_records_the_curve_and_never_prunes():
    import optuna
    from optuna.distributions import FloatDistribution

    from engine.sweep_pruning import EpochPruning, make_pruner

    study = optuna.create_study(directions=["maximize", "minimize"], pruner=make_pruner(PrunerKind.NONE, 3))
    trial = study.ask({"x": FloatDistribution(0, 1)})
    pruning = EpochPruning(study, trial, higher_is_better=True)
    assert not any(pruning.report(epoch, 0.0) for epoch in range(3))
    assert study._storage.get_trial(trial._trial_id).intermediate_values == {0: 0.0, 1: 0.0, 2: 0.0}


# --- several processes on one SQLite file ----------------------------------------------------

WORKER = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    import engine.training
    from engine.sweep import _Sweep, run_sweep
    from engine.training import TrainingResult
    sys.path.insert(0, str(Path(sys.argv[1]) / "tests"))
    import test_sweep as t

    fake = t.FakeTraining()

    def slow(*args, **kwargs):
        time.sleep(0.1)
        return fake(*args, **kwargs)

    # Start together (both have imported everything), so that both take part.
    folder = Path(sys.argv[2])
    (folder / f"ready-{os.getpid()}").touch()
    for _ in range(1200):
        if len(list(folder.glob("ready-*"))) >= 2:
            break
        time.sleep(0.1)

    engine.training.train = slow
    _Sweep._load_keras = lambda self: None
    _Sweep._clear_keras = lambda self: None
    outcome = run_sweep(t.project(Path(sys.argv[2]), trials=int(sys.argv[3]), seed=None))
    heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
    print(json.dumps({"ran": outcome.ran, "trained": outcome.trained, "heavy": heavy}))
""")


@pytest.mark.slow
def test_two_processes_share_one_sqlite_study_without_duplicates_or_losses(tmp_path):
    trials = 12
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(ROOT), str(tmp_path), str(trials)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate()
        assert proc.returncode == 0, err
        assert err == ""  # nothing of Optuna or SQLAlchemy reaches stderr
        results.append(json.loads(out.strip().splitlines()[-1]))
    _info, records = load_records(f"sqlite:///{tmp_path}/tiny.sweep.db", "tiny")
    numbers = [r.number for r in records]
    ran = [set(r["ran"]) for r in results]
    assert not ran[0] & ran[1]                     # no trial ran twice
    assert ran[0] | ran[1] == set(numbers)          # and none was lost
    assert all(ran)                                 # both processes took part
    assert len({r.worker for r in records}) == 2
    assert not [r for r in records if not r.outcome.finished]
    trained = [r for r in records if r.outcome.trained]
    assert trials <= len(trained) <= trials + 1     # running trials count: at most one extra
    assert sum(r["trained"] for r in results) == len(trained)
    # Loading the data, sampling, checking and rejecting designs never touched TensorFlow.
    assert [r["heavy"] for r in results] == [[], []]


# --- for real ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_real_sweep_on_digits_measures_latency(tmp_path):
    design = tiny_design("digits_latency")
    design.set_search("conv2d", "kernel_size", None)
    design.set_search("conv2d", "filters", SearchRange.among(2, 4))
    outcome = run_sweep(project(tmp_path, design, trials=2, epochs=1, pruner=PrunerKind.MEDIAN,
                                objectives=Objectives(cost=CostKind.LATENCY)))
    complete = by_outcome(outcome.records, TrialOutcome.COMPLETE)
    assert len(complete) == 2 and outcome.trained == 2
    for r in complete:
        assert r.latency_ms is not None and r.latency_ms > 0 and r.cost == pytest.approx(r.latency_ms)
        assert r.metric is not None and 0.0 <= r.metric <= 1.0 and len(r.curve) == 1
        assert r.metric == pytest.approx(r.curve[0])


def test_trials_are_analysed_incrementally_exactly_as_a_full_analysis():
    """The pre-check analyses a trial from the base design's analysis when only arguments
    changed: its verdict and costs must be those of a full analysis, valid or not."""
    import random

    from engine.analysis import analyse
    from engine.examples import load_example
    from engine.project_file import load_project
    from engine.search_space import sample, search_space
    from engine.sweep import SweepProject, _Sweep
    from engine.sweep_settings import SweepSettings
    from engine.training import TrainingSettings

    project = load_project(ROOT / "resources" / "examples" / "seed_cnn_sweep.convas")
    design, training = project.design, TrainingSettings.from_dict(project.training)
    assert design == load_example("seed_cnn_sweep")
    sweep = _Sweep.__new__(_Sweep)
    sweep.project, sweep.base_analysis = SweepProject(design, training, SweepSettings()), None
    draw = random.Random(7)
    verdicts = set()
    for _ in range(40):
        params = {t.key: draw.choice(r.values() or [r.low, r.high]) for t, r in search_space(design, training)}
        trial, trial_training = sample(design, training, params)
        batch = trial_training.config.batch_size
        quick = sweep._analyse(trial, batch, trial_training.pixel_range)
        full = analyse(trial, batch, input_range=trial_training.pixel_range)
        assert (quick.valid, quick.total_params, quick.macs, quick.activation_bytes) == \
            (full.valid, full.total_params, full.macs, full.activation_bytes)
        assert [str(p) for p in quick.errors] == [str(p) for p in full.errors]
        verdicts.add(full.valid)
    assert verdicts == {True, False}  # both kinds were drawn
