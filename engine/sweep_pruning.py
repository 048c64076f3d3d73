"""Stopping a sweep's trial early on its per-epoch validation metric, single- or multi-objective.

Optuna's pruners (median, Hyperband) compare a trial's intermediate values with those of the
study's other trials, in the study's one direction. A single-objective study asks them through
``trial.report`` and ``trial.should_prune``. A multi-objective study (metric and cost) refuses
both, although the intermediate values are only ever the metric's: so :class:`EpochPruning`
writes each epoch's value straight into the storage and asks the pruner with a *view* of the
study that has a single direction, the metric's (:func:`metric_view`). The view reads and writes
the same storage, so Hyperband's brackets and successive halving's rung records work as in a
single-objective study.
"""

from __future__ import annotations

from typing import Any

from .sweep_settings import PrunerKind


def make_pruner(kind: PrunerKind, epochs: int) -> Any:
    """The Optuna pruner of ``kind`` for trials of ``epochs`` epochs (``NopPruner``: none). The
    median pruner waits for 3 complete trials and prunes from the second epoch; Hyperband's
    resource is the epoch, from 1 to ``epochs``."""
    import optuna

    if kind is PrunerKind.MEDIAN:
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if kind is PrunerKind.HYPERBAND:
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs), reduction_factor=3)
    return optuna.pruners.NopPruner()


class _OneDirectionStorage:
    """A study's storage that answers its directions with the metric's alone; everything else
    goes to the real storage (see the module docstring)."""

    def __init__(self, storage: Any, direction: Any) -> None:
        self._storage = storage
        self._direction = direction

    def get_study_directions(self, study_id: int) -> list[Any]:
        return [self._direction]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


def metric_view(study: Any, higher_is_better: bool, pruner: Any) -> Any:
    """``study`` seen as a single-objective study of its metric (the first objective), with
    ``pruner``: what a pruner may be asked with when the study itself has two directions."""
    import optuna
    from optuna.study import StudyDirection

    direction = StudyDirection.MAXIMIZE if higher_is_better else StudyDirection.MINIMIZE
    storage: Any = _OneDirectionStorage(study._storage, direction)
    return optuna.study.Study(study.study_name, storage=storage, sampler=study.sampler, pruner=pruner)


class EpochPruning:
    """Reports one trial's per-epoch metric and says whether to stop it (see the module
    docstring) with the study's pruner (:func:`make_pruner`; Optuna's ``NopPruner``: values are
    still recorded, nothing is pruned)."""

    def __init__(self, study: Any, trial: Any, higher_is_better: bool) -> None:
        from optuna.pruners import NopPruner

        self.study = study
        self.trial = trial
        self.pruner = None if isinstance(study.pruner, NopPruner) else study.pruner
        self.multi = len(study.directions) > 1
        self.view: Any = None
        if self.multi and self.pruner is not None:
            self.view = metric_view(study, higher_is_better, self.pruner)

    def report(self, epoch: int, value: float, judge: bool = True) -> bool:
        """Record ``value`` as the trial's value at ``epoch`` (from 0); whether to prune it
        (never when not ``judge``: after the last epoch, stopping saves nothing and would throw
        away a finished result)."""
        if not self.multi:
            self.trial.report(value, epoch)
            return judge and self.pruner is not None and self.trial.should_prune()
        storage = self.study._storage
        storage.set_trial_intermediate_value(self.trial._trial_id, epoch, value)
        if self.pruner is None or not judge:
            return False
        frozen = storage.get_trial(self.trial._trial_id)
        return bool(self.pruner.prune(self.view, frozen))
