"""Run a sweep: ask Optuna for values of a project's search ranges, reject what the engine can
reject before training, train the rest, and keep every trial in an Optuna study.

A sweep searches the ranges a project holds (:mod:`engine.search_space`) for the objectives and
budget of its :class:`~engine.sweep_settings.SweepSettings`. For every trial:

1. the trial's values make a design and training settings (:func:`engine.search_space.sample`),
   which the analysis checks like any design. An invalid design (a kernel larger than its
   input, a Dense layer whose units no longer match the classes) is recorded as INVALID
   (Optuna FAIL) with the reason, one over the budget as OVER_BUDGET (Optuna PRUNED): in
   microseconds to milliseconds, before TensorFlow is touched;
2. the others train with :func:`engine.training.train`, the Train panel's own, from fresh weights,
   reporting each epoch's validation metric so that the pruner can stop a poor trial early
   (:mod:`engine.sweep_pruning`); the value told to Optuna is the metric of the epoch whose
   weights training kept, and the cost (parameters, MACs, or the measured latency) beside it.

The study lives in an Optuna storage (:mod:`engine.sweep_storage`; a SQLite file beside the
project by default) together with what it searches (the space, the base design and training
settings, the objectives), so that a sweep can be stopped and resumed, several processes or
machines can run one study at once, and a reader (:func:`load_records`) can show it without the
project. A user's stop fails the trial it interrupts as STOPPED and queues its values again, so
that the resumed sweep trains it first.

``settings.trials`` counts trained trials (complete, pruned, failed, and those running in any
process, so that parallel processes do not overshoot); rejected trials do not count.

TensorFlow, Keras and Optuna are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from . import __version__
from .analysis import Analysis, analyse
from .design import Design
from .distribute import Distribution, Strategy
from .errors import ConvasError
from .search_space import SearchSpace, sample, search_space, space_problems
from .sweep_results import TrialOutcome, TrialRecord
from .sweep_settings import (
    CostKind, SamplerKind, SweepSettings, default_storage, metric_higher_is_better,
)
from .training import MessageKind, TrainingSettings

# Study user attributes: what a study searches, kept with it.
_ATTR_VERSION = "convas_version"
_ATTR_SPACE = "space"
_ATTR_DESIGN = "base_design"
_ATTR_TRAINING = "base_training"
_ATTR_METRIC = "metric"
_ATTR_HIGHER = "higher_is_better"
_ATTR_COST = "cost"

REJECTION_STREAK = 200  # rejected trials in a row after which a sweep gives up
LATENCY_CALLS = 20      # timed calls of a trained model on one sample (after warm-up)
STALE_REASON = "the process running it stopped before it finished"


class SweepError(ConvasError):
    """A sweep cannot run or be read: no ranges, a space that changed for an existing study, a
    storage that cannot be used, no such study."""


@dataclass(frozen=True)
class SweepProject:
    """What a sweep searches: a design and its training settings with their ranges, how to
    search (``settings``) and the project file's path (which places the default storage).
    ``distribution`` trains every trial under a ``tf.distribute`` strategy (MIRRORED: over every
    local GPU, or the devices it names), as ``convas train --distribute mirrored`` does; None:
    one device. A sweep spreads over machines by running in several processes on one storage,
    not by training each trial on a cluster."""

    design: Design
    training: TrainingSettings
    settings: SweepSettings
    path: Path | None = None
    distribution: Distribution | None = None


def storage_url(project: SweepProject) -> str:
    """The sweep's Optuna storage: the settings' URL, else ``name.sweep.db`` beside the project
    file; :class:`SweepError` for an unsaved project with no storage set."""
    if project.settings.storage:
        return project.settings.storage
    if project.path is not None:
        return default_storage(project.path)
    raise SweepError("the sweep needs somewhere to keep its trials: save the project first (the "
                     "trials go into a .sweep.db file beside it) or give a storage URL")


def study_name(project: SweepProject) -> str:
    """The study's name in the storage: the settings' name, else the design's."""
    return (project.settings.study or "").strip() or project.design.name


@dataclass(frozen=True)
class StudyInfo:
    """What a study holds besides its trials: where it is, its objectives, the space it searches
    (:meth:`engine.search_space.SearchSpace.to_dict`) and the design and training settings the
    trials' values apply to (:func:`trial_design`)."""

    storage: str
    study: str
    metric: str
    higher_is_better: bool
    cost: CostKind | None
    space: dict[str, dict[str, Any]]
    base_design: Design
    base_training: TrainingSettings


class SweepReporter(Protocol):
    """Receives a sweep's progress and may stop it. Called on the sweep's thread: a GUI
    reporter should queue what it receives and answer ``should_stop`` from a flag."""

    def sweep_started(self, info: StudyInfo, records: list[TrialRecord]) -> None:
        """The study is open; ``records`` are the trials it already holds."""

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        """Trial ``number`` has its values (every trial, before it is checked)."""

    def trial_epoch(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        """Trial ``number`` finished ``epoch`` (from 0) with these logs."""

    def trial_finished(self, record: TrialRecord) -> None:
        """A trial ended, however: rejected, pruned, failed, complete or stopped."""

    def should_stop(self) -> bool:
        """Polled between trials and at every batch: true stops the sweep."""
        return False


class NullSweepReporter:
    """A reporter that ignores everything and never stops; subclass it and override what you need."""

    def sweep_started(self, info: StudyInfo, records: list[TrialRecord]) -> None:
        pass

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        pass

    def trial_epoch(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        pass

    def trial_finished(self, record: TrialRecord) -> None:
        pass

    def should_stop(self) -> bool:
        return False


class _Complete:
    """A reporter with every method: the given one's, else :class:`NullSweepReporter`'s."""

    def __init__(self, reporter: Any) -> None:
        self._reporter = reporter
        self._null = NullSweepReporter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._reporter, name, None) if self._reporter is not None else None
        return method if method is not None else getattr(self._null, name)


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did. ``records`` is the whole study at the end (other processes'
    trials included); ``ran`` the numbers of the trials this run ran; ``trained`` and
    ``rejected`` how many of them trained or were rejected; ``rejected_seconds`` the time the
    rejected ones took from asking Optuna to recording them, ``trained_seconds`` the time the
    trained ones took. ``stopped`` says the user stopped it; ``stop_reason`` says why the sweep
    ended before the study held ``settings.trials`` trained trials (None when it did)."""

    info: StudyInfo
    records: list[TrialRecord]
    ran: list[int] = field(default_factory=list)
    trained: int = 0
    rejected: int = 0
    rejected_seconds: float = 0.0
    trained_seconds: float = 0.0
    stopped: bool = False
    stop_reason: str | None = None


# --------------------------------------------------------------------------------------------
# Running

def run_sweep(project: SweepProject, reporter: SweepReporter | None = None, *,
              dataset: Any = None) -> SweepOutcome:
    """Run the sweep of ``project`` until its study holds ``settings.trials`` trained trials, the
    timeout passes or ``reporter`` asks to stop (see the module docstring). ``dataset`` (an
    :class:`engine.datasets.Dataset`, as the window has it loaded) saves loading the training
    settings' one. :class:`SweepError` when the sweep cannot start; a trial's failure is a
    failed trial, not an error."""
    from .sweep_storage import quiet_optuna

    reporter = _Complete(reporter)
    settings = project.settings
    quiet_optuna()
    space = search_space(project.design, project.training)
    if not space:
        raise SweepError(f"{project.design.name} has no search ranges; make an argument a range "
                         f"with the … button in the Inspector")
    problems = space_problems(project.design, project.training)
    if problems:
        raise SweepError("the search ranges cannot be searched: " + "; ".join(problems))
    url = storage_url(project)
    name = study_name(project)

    from .sweep_storage import open_storage

    try:
        storage = open_storage(url)
    except ConvasError as exc:
        raise SweepError(str(exc)) from None
    strategy = _strategy(project.distribution)  # before any other TensorFlow operation
    data = _TrialData.load(project, dataset)
    metric = settings.objectives.metric or data.metric
    higher = metric_higher_is_better(metric)
    study = _open_study(storage, url, name, project, space, metric, higher)
    info = _info_of(url, name, study.user_attrs)
    return _Sweep(project, study, info, data, reporter, strategy).run()


@dataclass
class _TrialData:
    """The data every trial trains on, loaded once per sweep, and what follows from it."""

    dataset: Any
    task: Any
    metric: str  # the task's own: val_<quality>

    @classmethod
    def load(cls, project: SweepProject, dataset: Any) -> _TrialData:
        from .data_source import choose_task, load_training_data, model_io
        from .datasets import DatasetError
        from .tasks import spec

        training = project.training
        config = training.config
        analysis = analyse(project.design, batch_size=config.batch_size, input_range=training.pixel_range)
        try:
            io = model_io(project.design, analysis)
            if dataset is None:
                dataset, task = load_training_data(training, io)
            else:
                task = choose_task(io, dataset, config.task)
        except DatasetError as exc:
            raise SweepError(f"cannot prepare the sweep's data: {exc}") from None
        if dataset.validation is None or len(dataset.validation) == 0:
            raise SweepError("a sweep compares trials on validation data, and the dataset has none; "
                             "set a validation split above 0 in the training settings")
        return cls(dataset, task, "val_" + spec(task).quality)


def _directions(higher: bool, cost: CostKind | None) -> list[Any]:
    return ["maximize" if higher else "minimize"] + (["minimize"] if cost is not None else [])


def _sampler(settings: SweepSettings) -> Any:
    import optuna

    if settings.sampler is SamplerKind.NSGA2:
        return optuna.samplers.NSGAIISampler(seed=settings.seed)
    if settings.sampler is SamplerKind.RANDOM:
        return optuna.samplers.RandomSampler(seed=settings.seed)
    # constant_liar: a trial running in another process counts as a poor one, so that parallel
    # processes spread out instead of all trying the same promising values.
    return optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=settings.seed)


def _json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(value))


def _fingerprint(design: Design, training: TrainingSettings, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a study's trials share beyond their values: the design and training settings with
    every searched value and every layer's position left out (so that applying a trial, or
    moving a card, leaves a study resumable), and the training settings ``ignore`` names."""
    from .project_file import design_to_dict

    data = _json(design_to_dict(design))
    for node in data.get("nodes", []):
        node.pop("position", None)
        for arg in node.get("search", {}):
            node["args"].pop(arg, None)
    settings = _json(training.to_dict())
    for key in (*training.search, *ignore):
        settings.pop(key, None)
    return {"design": data, "training": settings}


def _open_study(storage: Any, url: str, name: str, project: SweepProject, space: SearchSpace,
                metric: str, higher: bool) -> Any:
    """The study ``name`` in ``storage``, created with what it searches, or the existing one
    when it searches the same; :class:`SweepError` with the fix otherwise."""
    import optuna

    from .project_file import design_to_dict
    from .sweep_pruning import make_pruner

    settings = project.settings
    cost = settings.objectives.cost
    epochs = settings.epochs or project.training.config.epochs
    # The version goes last: a study that has it has all the others (see _existing_attrs).
    attrs = {_ATTR_SPACE: _json(space.to_dict()), _ATTR_DESIGN: _json(design_to_dict(project.design)),
             _ATTR_TRAINING: _json(project.training.to_dict()), _ATTR_METRIC: metric, _ATTR_HIGHER: higher,
             _ATTR_COST: cost.value if cost else None, _ATTR_VERSION: __version__}
    try:
        existing = _existing_attrs(storage, name)
        if existing is not None:
            _check_same_study(existing, attrs, project, url, name)
        study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                    directions=_directions(higher, cost), sampler=_sampler(settings),
                                    pruner=make_pruner(settings.pruner, epochs))
        if existing is None:
            for key, value in attrs.items():
                study.set_user_attr(key, value)
        elif len(study.directions) != len(_directions(higher, cost)):
            raise SweepError(f"the study {name!r} has {len(study.directions)} objective(s), this sweep "
                             f"{len(_directions(higher, cost))}; give the sweep another study name")
    except ConvasError:
        raise
    except Exception as exc:  # noqa: BLE001 - database errors of every driver
        from .sweep_storage import storage_error

        raise SweepError(storage_error(url, exc)) from None
    return study


def _existing_attrs(storage: Any, name: str, wait_s: float = 10.0) -> dict[str, Any] | None:
    """The user attributes of the study ``name`` (None: there is none yet, or one that another
    process is creating this moment has no trials and can be taken over). A study another
    process has just created gets its attributes within milliseconds: wait for them."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            study_id = storage.get_study_id_from_name(name)
        except KeyError:
            return None
        attrs = dict(storage.get_study_user_attrs(study_id))
        if _ATTR_VERSION in attrs:
            return attrs
        if storage.get_all_trials(study_id, deepcopy=False):
            return attrs  # trials but no Convas attributes: not a Convas study
        if time.monotonic() >= deadline:
            return None  # its creator died before describing it: describe it here
        time.sleep(0.1)


def _check_same_study(existing: Mapping[str, Any], attrs: Mapping[str, Any], project: SweepProject,
                      url: str, name: str) -> None:
    """:class:`SweepError` when the existing study ``name`` searches something else."""
    fix = ("give the sweep another study name to start a new study (the Study field, or --study)")
    # Where training runs does not change what it learns; nor do the plain epochs when the
    # sweep sets its own.
    ignore = ("distribution",) + (("epochs",) if project.settings.epochs is not None else ())
    if _ATTR_SPACE not in existing:
        raise SweepError(f"the study {name!r} in {url} was not made by a Convas sweep; {fix}")
    old_space, new_space = existing[_ATTR_SPACE], attrs[_ATTR_SPACE]
    if old_space != new_space:
        changes = _space_changes(old_space, new_space)
        raise SweepError(f"the study {name!r} searched other ranges ({changes}); {fix}, or put the "
                         f"ranges back as they were to continue it")
    if existing.get(_ATTR_METRIC) != attrs[_ATTR_METRIC] or existing.get(_ATTR_COST) != attrs[_ATTR_COST]:
        def said(metric: Any, cost: Any) -> str:
            return ",".join(str(p) for p in (metric, cost) if p)
        raise SweepError(f"the study {name!r} optimised {said(existing.get(_ATTR_METRIC), existing.get(_ATTR_COST))}, "
                         f"not {said(attrs[_ATTR_METRIC], attrs[_ATTR_COST])}; {fix}, or set the objectives "
                         f"back to continue it")
    try:
        from .project_file import design_from_dict

        old = _fingerprint(design_from_dict(existing[_ATTR_DESIGN]),
                           TrainingSettings.from_dict(existing[_ATTR_TRAINING]), ignore)
    except (ConvasError, KeyError, TypeError, ValueError):
        raise SweepError(f"the study {name!r} in {url} holds a design this Convas cannot read; {fix}") from None
    new = _fingerprint(project.design, project.training, ignore)
    if old["design"] != new["design"]:
        raise SweepError(f"the design changed since the study {name!r} started (beyond its searched "
                         f"values); {fix}, or undo the change to continue it")
    if old["training"] != new["training"]:
        keys = sorted(k for k in set(old["training"]) | set(new["training"])
                      if old["training"].get(k) != new["training"].get(k))
        raise SweepError(f"the training settings changed since the study {name!r} started "
                         f"({', '.join(k.replace('_', ' ') for k in keys)}); {fix}, or set them back "
                         f"to continue it")


def _space_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    from .search_space import SearchTarget

    def label(key: str) -> str:
        try:
            return SearchTarget.parse(key).label
        except ConvasError:
            return key

    parts = [f"{label(k)} added" for k in new if k not in old]
    parts += [f"{label(k)} removed" for k in old if k not in new]
    parts += [f"{label(k)} changed" for k in new if k in old and new[k] != old[k]]
    return ", ".join(parts)


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _TrialReporter:
    """The training reporter of one trial: forwards epochs, reports the metric to the pruner, and
    stops training when the pruner or the user says so."""

    def __init__(self, sweep: _Sweep, trial: Any, pruning: Any, epochs: int) -> None:
        self.sweep = sweep
        self.trial = trial
        self.pruning = pruning
        self.epochs = epochs
        self.curve: list[float] = []
        self.pruned_at: int | None = None
        self.user_stop = False

    def on_batch(self, epoch: int, batch: int, batches: int | None, logs: dict[str, float]) -> None:
        pass

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        self.sweep.reporter.trial_epoch(self.trial.number, epoch, dict(logs))
        value = logs.get(self.sweep.info.metric)
        if value is None or not math.isfinite(float(value)):
            return
        self.curve.append(float(value))
        if self.pruned_at is None and self.pruning.report(epoch, float(value), judge=epoch + 1 < self.epochs):
            self.pruned_at = epoch

    def should_stop(self) -> bool:
        if self.pruned_at is not None:
            return True
        if self.sweep.reporter.should_stop():
            self.user_stop = True
        return self.user_stop

    def should_pause(self) -> bool:
        return False

    def on_message(self, kind: MessageKind, text: str) -> None:
        pass


@dataclass
class _Checked:
    """A trial's design after the engine looked at it: the sampled design and training
    settings, its analysis, and the outcome when it is rejected."""

    design: Design | None = None
    training: TrainingSettings | None = None
    analysis: Analysis | None = None
    io: Any = None
    outcome: TrialOutcome | None = None
    reason: str | None = None


class _Sweep:
    """One run of :func:`run_sweep` over an open study."""

    def __init__(self, project: SweepProject, study: Any, info: StudyInfo, data: _TrialData,
                 reporter: Any, strategy: Any = None) -> None:
        self.project, self.study, self.info, self.data = project, study, info, data
        self.strategy = strategy  # the project's distribution, made once for every trial
        self.reporter = reporter
        self.settings = project.settings
        self.space = search_space(project.design, project.training)
        self.distributions = self.space.distributions()
        self.worker = _worker()
        self.outcome = SweepOutcome(info, [])
        self.keras_loaded = False
        self.keras_seconds = 0.0  # loading TensorFlow in the current trial: not the trial's time
        self.base_analysis: Any = None  # the base design's, from which trials are analysed

    # --- the loop -----------------------------------------------------------------------------

    def run(self) -> SweepOutcome:
        from .sweep_storage import fail_stale

        fail_stale(self.study)
        self.reporter.sweep_started(self.info, records_of(self.study))
        started = time.monotonic()
        streak = 0
        out = self.outcome
        while True:
            if self.reporter.should_stop():
                out.stopped, out.stop_reason = True, "stopped by the user"
                break
            timeout = self.settings.timeout_s
            if timeout is not None and time.monotonic() - started >= timeout:
                out.stop_reason = f"the sweep's time limit ({timeout:g} s) passed"
                break
            fail_stale(self.study)
            if self._trained_in_study() >= self.settings.trials:
                break
            outcome = self._run_trial()
            if outcome is TrialOutcome.STOPPED:
                out.stopped = True
                out.stop_reason = "stopped by the user; the interrupted trial is trained first when the sweep resumes"
                break
            streak = streak + 1 if outcome.rejected else 0
            if streak >= REJECTION_STREAK:
                out.stop_reason = (f"the last {REJECTION_STREAK} trials were all rejected before training: "
                                   f"the ranges give almost only invalid or over-budget designs; narrow "
                                   f"them or raise the budget")
                break
        out.records = records_of(self.study)
        return out

    def _trained_in_study(self) -> int:
        """Trials of the study that trained or are training, in any process (see the module
        docstring): what ``settings.trials`` counts."""
        from optuna.trial import TrialState

        counted = 0
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                   TrialState.FAIL, TrialState.RUNNING)):
            outcome = trial.user_attrs.get("outcome")
            if outcome in (TrialOutcome.INVALID, TrialOutcome.OVER_BUDGET, TrialOutcome.STOPPED):
                continue
            counted += 1
        return counted

    def _run_trial(self) -> TrialOutcome:
        from optuna.storages._heartbeat import get_heartbeat_thread

        asked = time.perf_counter()
        trial = self.study.ask(fixed_distributions=self.distributions)
        params = dict(trial.params)
        self.outcome.ran.append(trial.number)
        self.reporter.trial_started(trial.number, params)
        with get_heartbeat_thread(trial._trial_id, self.study._storage):
            try:
                checking = time.perf_counter()
                checked = self._check(params)
                decided = time.perf_counter() - checking
                if checked.outcome is not None:
                    record = self._reject(trial, params, checked, decided)
                    self.outcome.rejected += 1
                    self.outcome.rejected_seconds += time.perf_counter() - asked
                else:
                    record = self._train(trial, params, checked)
                    if record.outcome is not TrialOutcome.STOPPED:
                        self.outcome.trained += 1
                    self.outcome.trained_seconds += time.perf_counter() - asked - self.keras_seconds
                    self.keras_seconds = 0.0
            except BaseException:  # KeyboardInterrupt, a bug: the trial must not stay RUNNING
                self._abandon(trial, params)
                raise
        self.reporter.trial_finished(record)
        return record.outcome

    # --- before training ----------------------------------------------------------------------

    def _check(self, params: dict[str, Any]) -> _Checked:
        """The trial's design and whether the engine rejects it (no TensorFlow here)."""
        from .data_source import dataset_problems, model_io
        from .datasets import DatasetError

        try:
            design, training = sample(self.project.design, self.project.training, params)
            config = replace(training.config, epochs=self.settings.epochs or training.config.epochs)
        except ConvasError as exc:
            return _Checked(outcome=TrialOutcome.INVALID, reason=str(exc))
        training = replace(training, config=config)
        analysis = self._analyse(design, config.batch_size, training.pixel_range)
        checked = _Checked(design, training, analysis)
        if not analysis.valid:
            errors = analysis.errors
            shown = "; ".join(f"{p.node}: {p.message}" if p.node else p.message for p in errors[:2])
            more = f" (and {len(errors) - 2} more)" if len(errors) > 2 else ""
            checked.outcome, checked.reason = TrialOutcome.INVALID, shown + more
            return checked
        try:
            checked.io = model_io(design, analysis)
        except DatasetError as exc:
            checked.outcome, checked.reason = TrialOutcome.INVALID, str(exc)
            return checked
        problems = dataset_problems(self.data.dataset, checked.io, config.loss, task=self.data.task)
        if problems:
            checked.outcome, checked.reason = TrialOutcome.INVALID, "; ".join(problems[:2])
            return checked
        over = self.settings.budget.exceeded(analysis.total_params, analysis.macs, analysis.activation_bytes)
        if over is not None:
            checked.outcome, checked.reason = TrialOutcome.OVER_BUDGET, over
        return checked

    def _analyse(self, design: Design, batch_size: int, pixel_range: Any) -> Any:
        """The analysis of a trial's design. A trial that only changed arguments (no group
        repeated, the base's batch size) is analysed incrementally from the base design's
        analysis, from the layers whose arguments changed: well under a millisecond even for a
        1,000-layer design, where a full analysis takes tens."""
        base = self.project.design
        if self.base_analysis is None:
            self.base_analysis = analyse(base, batch_size=self.project.training.config.batch_size,
                                         input_range=self.project.training.pixel_range)
        previous = self.base_analysis
        if (previous.batch_size != batch_size or pixel_range != self.project.training.pixel_range
                or list(design.nodes) != list(base.nodes)):
            return analyse(design, batch_size=batch_size, input_range=pixel_range)
        touched = {name for name, node in design.nodes.items() if node.args != base.nodes[name].args}
        return analyse(design, batch_size=batch_size, input_range=pixel_range, previous=previous,
                       touched=touched)

    def _costs(self, checked: _Checked) -> dict[str, Any]:
        analysis = checked.analysis
        if analysis is None or not analysis.valid:
            return {}
        return {"params_count": analysis.total_params, "macs": analysis.macs,
                "activation_bytes": analysis.activation_bytes}

    def _finish(self, trial: Any, attrs: dict[str, Any], state: Any, values: list[float] | None = None) -> None:
        from .sweep_storage import set_user_attrs

        set_user_attrs(self.study, trial, {k: v for k, v in attrs.items() if v is not None})
        self.study.tell(trial, values, state=state)

    def _reject(self, trial: Any, params: dict[str, Any], checked: _Checked, seconds: float) -> TrialRecord:
        from optuna.trial import TrialState

        outcome = checked.outcome
        assert outcome is not None
        attrs = {"outcome": outcome.value, "reason": checked.reason, **self._costs(checked),
                 "seconds": seconds, "worker": self.worker, "epochs_run": 0}
        state = TrialState.PRUNED if outcome is TrialOutcome.OVER_BUDGET else TrialState.FAIL
        self._finish(trial, attrs, state)
        return _record_from(trial.number, outcome, params, attrs)

    # --- training -----------------------------------------------------------------------------

    def _train(self, trial: Any, params: dict[str, Any], checked: _Checked) -> TrialRecord:
        from optuna.trial import TrialState

        from . import training as training_module
        from .internal_error import describe_error
        from .sweep_pruning import EpochPruning

        assert checked.design is not None and checked.training is not None and checked.analysis is not None
        from .sweep_storage import set_user_attrs

        set_user_attrs(self.study, trial, {"outcome": TrialOutcome.RUNNING.value, "worker": self.worker})
        self._load_keras()
        started = time.perf_counter()
        pruning = EpochPruning(self.study, trial, self.info.higher_is_better)
        watcher = _TrialReporter(self, trial, pruning, checked.training.config.epochs)
        metric = self.info.metric
        attrs: dict[str, Any] = {**self._costs(checked), "worker": self.worker}
        result = None
        reason: str | None = None
        try:
            extra: dict[str, Any] = {}
            if self.strategy is not None:
                extra = {"distribution": self.project.distribution, "strategy": self.strategy}
            result = training_module.train(checked.design, self.data.dataset.train, self.data.dataset.validation,
                                           checked.training.config, watcher, task=self.data.task,
                                           pixel_range=checked.training.pixel_range, **extra)
        except ConvasError as exc:
            reason = f"Keras cannot train the design: {exc}"
        except Exception as exc:  # noqa: BLE001 - TensorFlow's errors are many; one line says it
            reason = f"training failed: {describe_error(exc)}"
        attrs["curve"] = watcher.curve
        finished_all = result is not None and result.epochs_run >= checked.training.config.epochs
        if watcher.user_stop and not finished_all:
            return self._stop_trial(trial, params, checked, watcher.curve, time.perf_counter() - started,
                                    epochs=result.epochs_run if result is not None else 0)
        value: float | None = None
        if result is not None:
            attrs["epochs_run"] = result.epochs_run
            if result.placement is not None:  # what the trial trained on (a mirrored sweep's replicas)
                attrs["replicas"] = result.placement.replicas
            history = result.history.get(metric)
            if result.diverged:
                reason = result.stop_reason or "training diverged"
            elif not history:
                logged = ", ".join(k for k in result.history if k.startswith("val_")) or "none"
                reason = f"training logged no {metric} (its validation metrics: {logged})"
            else:
                index = result.restored_epoch if result.restored_epoch is not None else len(history) - 1
                value = float(history[min(index, len(history) - 1)])
                if not math.isfinite(value):
                    reason, value = f"{metric} was {value}", None
        if reason is None and watcher.pruned_at is not None:
            attrs.update(outcome=TrialOutcome.PRUNED.value, metric=watcher.curve[-1] if watcher.curve else None,
                         reason=f"pruned after epoch {watcher.pruned_at + 1}: {metric} behind the other trials",
                         seconds=time.perf_counter() - started)
            self._finish(trial, attrs, TrialState.PRUNED)
            self._clear_keras()
            return _record_from(trial.number, TrialOutcome.PRUNED, params, attrs)
        if reason is not None or value is None:
            attrs.update(outcome=TrialOutcome.FAILED.value, reason=reason or "training gave no metric",
                         seconds=time.perf_counter() - started)
            self._finish(trial, attrs, TrialState.FAIL)
            self._clear_keras()
            return _record_from(trial.number, TrialOutcome.FAILED, params, attrs)
        assert result is not None
        cost = self.settings.objectives.cost
        if cost is CostKind.LATENCY:
            try:
                attrs["latency_ms"] = measure_latency(result.model, checked.io.input_shape)
            except Exception as exc:  # noqa: BLE001 - as training's
                attrs.update(outcome=TrialOutcome.FAILED.value, reason=f"measuring latency failed: "
                             f"{describe_error(exc)}", seconds=time.perf_counter() - started)
                self._finish(trial, attrs, TrialState.FAIL)
                self._clear_keras()
                return _record_from(trial.number, TrialOutcome.FAILED, params, attrs)
        values = [value]
        if cost is not None:
            cost_value = {CostKind.PARAMS: attrs.get("params_count"), CostKind.MACS: attrs.get("macs"),
                          CostKind.LATENCY: attrs.get("latency_ms")}[cost]
            values.append(float(cost_value or 0.0))
            attrs["cost"] = values[1]
        attrs.update(outcome=TrialOutcome.COMPLETE.value, metric=value, seconds=time.perf_counter() - started)
        self._finish(trial, attrs, TrialState.COMPLETE, values)
        self._clear_keras()
        return _record_from(trial.number, TrialOutcome.COMPLETE, params, attrs)

    def _stop_trial(self, trial: Any, params: dict[str, Any], checked: _Checked, curve: list[float],
                    seconds: float, epochs: int = 0) -> TrialRecord:
        """The user stopped the trial: record it as STOPPED and queue its values again."""
        from optuna.trial import TrialState

        attrs = {"outcome": TrialOutcome.STOPPED.value, **self._costs(checked), "curve": curve,
                 "epochs_run": epochs, "seconds": seconds, "worker": self.worker,
                 "reason": "stopped by the user; it is trained again first when the sweep resumes"}
        self._finish(trial, attrs, TrialState.FAIL)
        self.study.enqueue_trial(params)
        return _record_from(trial.number, TrialOutcome.STOPPED, params, attrs)

    def _abandon(self, trial: Any, params: dict[str, Any]) -> None:
        """The run is ending with an exception: a trial still RUNNING becomes STOPPED and is
        queued again, as after a stop (the exception that ends the run is the one to report)."""
        from optuna.trial import TrialState

        try:
            if self.study._storage.get_trial(trial._trial_id).state is TrialState.RUNNING:
                self._stop_trial(trial, params, _Checked(), [], 0.0)
        except Exception:  # noqa: BLE001 - a database that fails now: the heartbeat check fails it later
            pass

    def _load_keras(self) -> None:
        if self.keras_loaded:
            return
        from .quiet_tf import importing_tensorflow

        started = time.perf_counter()
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with importing_tensorflow():
            import keras  # noqa: F401 - imported here so that its start-up chatter stays quiet
        self.keras_loaded = True
        self.keras_seconds = time.perf_counter() - started

    def _clear_keras(self) -> None:
        """Free the trained model's graph state before the next trial builds its own."""
        import keras

        keras.backend.clear_session()


def _strategy(distribution: Distribution | None) -> Any:
    """The strategy every trial of a sweep trains under (None: one device); only MIRRORED is a
    sweep's (a cluster trains one model; a sweep's processes share a storage instead)."""
    if distribution is None or distribution.strategy is Strategy.NONE:
        return None
    if distribution.strategy is not Strategy.MIRRORED:
        raise SweepError("a sweep trains each trial on this computer (mirrored over its devices at "
                         "most); to spread a sweep over machines, run `convas sweep` on each with the "
                         "same --storage")
    from .distributed_loop import make_strategy
    from .quiet_tf import importing_tensorflow

    with importing_tensorflow():
        import keras  # noqa: F401 - its start-up chatter stays quiet
    try:
        return make_strategy(distribution)
    except ConvasError as exc:
        raise SweepError(str(exc)) from None


def measure_latency(model: Any, input_shape: tuple[int, ...], calls: int = LATENCY_CALLS) -> float:
    """The median milliseconds of one call of ``model`` on one sample (``model(x,
    training=False)``), after warm-up calls. The call is compiled into a TensorFlow graph, as a
    deployed model runs: called eagerly, Python's dispatch takes 5–15 ms and varies more than
    a small CNN's whole computation (measured: 1.3 ms compiled), which would make latency an
    objective of noise."""
    import numpy as np

    x = np.zeros((1, *input_shape), dtype="float32")

    def eager(batch: Any) -> Any:
        return model(batch, training=False)

    call: Any = eager
    try:
        import tensorflow as tf

        call = tf.function(eager)
    except ImportError:  # another Keras backend: its eager call is what there is
        pass
    for _ in range(3):
        call(x)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call(x)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000.0


# --------------------------------------------------------------------------------------------
# Reading

def _record_from(number: int, outcome: TrialOutcome, params: dict[str, Any], attrs: Mapping[str, Any],
                 metric: float | None = None, cost: float | None = None) -> TrialRecord:
    curve = attrs.get("curve") or ()

    def number_or_none(key: str) -> Any:
        value = attrs.get(key)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    return TrialRecord(
        number=number, outcome=outcome, params=dict(params),
        metric=metric if metric is not None else number_or_none("metric"),
        cost=cost if cost is not None else number_or_none("cost"),
        params_count=number_or_none("params_count"), macs=number_or_none("macs"),
        activation_bytes=number_or_none("activation_bytes"), latency_ms=number_or_none("latency_ms"),
        epochs_run=int(attrs.get("epochs_run") or 0),
        curve=tuple(float(v) for v in curve if isinstance(v, (int, float))),
        seconds=number_or_none("seconds"), reason=attrs.get("reason"), worker=attrs.get("worker"))


def _record_of(trial: Any) -> TrialRecord:
    """The :class:`TrialRecord` of an Optuna ``FrozenTrial`` (see the module docstring)."""
    from optuna.trial import TrialState

    attrs = dict(trial.user_attrs)
    said = attrs.get("outcome")
    params = dict(trial.params) or dict(trial.system_attrs.get("fixed_params") or {})
    state = trial.state
    metric = cost = None
    if state is TrialState.RUNNING:
        outcome = TrialOutcome.RUNNING
    elif state is TrialState.WAITING:
        outcome = TrialOutcome.WAITING
    elif state is TrialState.COMPLETE:
        outcome = TrialOutcome.COMPLETE
        values = trial.values or []
        metric = values[0] if values else None
        cost = values[1] if len(values) > 1 else None
    elif state is TrialState.PRUNED:
        outcome = TrialOutcome.OVER_BUDGET if said == TrialOutcome.OVER_BUDGET else TrialOutcome.PRUNED
    elif said in (TrialOutcome.INVALID, TrialOutcome.STOPPED, TrialOutcome.FAILED):
        outcome = TrialOutcome(said)
    else:  # failed by another process's stale-trial check (its own process died), or by Optuna
        outcome = TrialOutcome.FAILED
        attrs.setdefault("reason", STALE_REASON)
        if said == TrialOutcome.RUNNING:
            attrs["reason"] = STALE_REASON
    if "seconds" not in attrs and trial.duration is not None and outcome.finished:
        attrs["seconds"] = trial.duration.total_seconds()
    if outcome in (TrialOutcome.RUNNING, TrialOutcome.WAITING) and not attrs.get("curve"):
        attrs["curve"] = [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
    return _record_from(trial.number, outcome, params, attrs, metric, cost)


def records_of(study: Any) -> list[TrialRecord]:
    """Every trial of an open Optuna ``study`` as a :class:`TrialRecord`, by number."""
    return [_record_of(t) for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)]


def _info_of(url: str, name: str, attrs: Mapping[str, Any]) -> StudyInfo:
    from .project_file import design_from_dict

    if _ATTR_SPACE not in attrs or _ATTR_DESIGN not in attrs:
        raise SweepError(f"the study {name!r} in {url} was not made by a Convas sweep")
    try:
        design = design_from_dict(attrs[_ATTR_DESIGN])
        training = TrainingSettings.from_dict(attrs[_ATTR_TRAINING])
        cost = CostKind(attrs[_ATTR_COST]) if attrs.get(_ATTR_COST) else None
    except (ConvasError, KeyError, ValueError, TypeError) as exc:
        raise SweepError(f"the study {name!r} in {url} holds a design this Convas cannot read: {exc}") from None
    metric = str(attrs.get(_ATTR_METRIC) or "val_accuracy")
    higher = attrs.get(_ATTR_HIGHER)
    return StudyInfo(storage=url, study=name, metric=metric,
                     higher_is_better=metric_higher_is_better(metric) if not isinstance(higher, bool) else higher,
                     cost=cost, space=dict(attrs[_ATTR_SPACE]), base_design=design, base_training=training)


def load_records(storage: str, study: str) -> tuple[StudyInfo, list[TrialRecord]]:
    """The study ``study`` in the storage at URL ``storage``: what it searches and every trial,
    running and queued ones included. :class:`SweepError` when there is no such study (naming
    those there are) or the storage cannot be read."""
    import optuna

    from .sweep_storage import fail_stale, open_storage, storage_error

    if _missing_sqlite_file(storage):
        raise SweepError(f"there is no sweep storage at {storage} yet; run a sweep first")
    try:  # with heartbeats: a trial whose process died is failed here too, not shown as running
        opened = open_storage(storage)
    except ConvasError as exc:
        raise SweepError(str(exc)) from None
    try:
        try:
            loaded = optuna.load_study(study_name=study, storage=opened)
        except KeyError:
            names = [s.study_name for s in opened.get_all_studies()]
            there = f"; it holds {', '.join(repr(n) for n in names)}" if names else "; it holds none yet"
            raise SweepError(f"{storage} holds no study named {study!r}{there}") from None
        info = _info_of(storage, study, loaded.user_attrs)
        with contextlib.suppress(Exception):  # a storage this process may not write to is still read
            fail_stale(loaded)
        return info, records_of(loaded)
    except ConvasError:
        raise
    except Exception as exc:  # noqa: BLE001 - database errors of every driver
        raise SweepError(storage_error(storage, exc)) from None


def study_names(storage: str) -> list[str]:
    """The names of the studies in the storage at URL ``storage`` (:class:`SweepError` when it
    cannot be read)."""
    from .sweep_storage import open_storage, storage_error

    if _missing_sqlite_file(storage):
        return []
    try:
        opened = open_storage(storage, heartbeat=False)
        return sorted(s.study_name for s in opened.get_all_studies())
    except ConvasError as exc:
        raise SweepError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - database errors of every driver
        raise SweepError(storage_error(storage, exc)) from None


def _missing_sqlite_file(url: str) -> bool:
    """Whether ``url`` names a SQLite file that does not exist (reading must not create it)."""
    from .sweep_storage import sqlite_path

    path = sqlite_path(url)
    return path is not None and not Path(path).exists()


def trial_design(info: StudyInfo, record: TrialRecord) -> tuple[Design, TrainingSettings]:
    """The design and training settings trial ``record`` tried (its values applied to the
    study's base design); :class:`SweepError` when its values no longer fit."""
    try:
        return sample(info.base_design, info.base_training, record.params)
    except ConvasError as exc:
        raise SweepError(f"trial {record.number}: {exc}") from None
