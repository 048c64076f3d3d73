"""A sweep's trials as Convas shows them: what each tried, what it scored, what it cost, and why
it was stopped or rejected; and the Pareto front of the finished ones.

:mod:`engine.sweep` writes trials into an Optuna study and reads them back as
:class:`TrialRecord` values (``engine.sweep.load_records``); the CLI's table and the Sweep
panel's scatter and table show only these, never Optuna's objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TrialOutcome(StrEnum):
    """How a trial ended (the value is what the CLI's JSON and tables say)."""

    COMPLETE = "complete"        # trained to the end: it has a metric (and a cost)
    PRUNED = "pruned"            # stopped early by the pruner on its per-epoch metric
    FAILED = "failed"            # training failed (diverged, Keras refused the design, ...)
    INVALID = "invalid"          # rejected before training: the analysis found the design invalid
    OVER_BUDGET = "over_budget"  # rejected before training: over the budget
    STOPPED = "stopped"          # the user stopped the sweep while it trained
    RUNNING = "running"          # training now (in this process or another)
    WAITING = "waiting"          # queued, not started

    @property
    def rejected(self) -> bool:
        """Rejected by the engine before any training (microseconds, no training cost)."""
        return self in (TrialOutcome.INVALID, TrialOutcome.OVER_BUDGET)

    @property
    def finished(self) -> bool:
        return self not in (TrialOutcome.RUNNING, TrialOutcome.WAITING)

    @property
    def trained(self) -> bool:
        """Whether the trial went through training (counts towards a sweep's trials)."""
        return self in (TrialOutcome.COMPLETE, TrialOutcome.PRUNED, TrialOutcome.FAILED,
                        TrialOutcome.RUNNING)


@dataclass(frozen=True)
class TrialRecord:
    """One trial. ``params`` maps search keys (:mod:`engine.search_space`) to the values tried;
    ``metric`` is the objective's validation metric (the best epoch's, as training keeps the
    best weights; a pruned trial: its last reported), ``cost`` the objective's cost (None in a
    single-objective sweep). ``params_count``, ``macs`` and ``activation_bytes`` are the
    analysis' figures for the sampled design (known even for a rejected one, unless it was
    invalid), ``latency_ms`` the measured inference latency when that was an objective.
    ``curve`` is the per-epoch validation metric; ``reason`` says why a trial failed, was
    pruned or was rejected; ``seconds`` is how long it took, rejection included."""

    number: int
    outcome: TrialOutcome
    params: dict[str, Any] = field(default_factory=dict)
    metric: float | None = None
    cost: float | None = None
    params_count: int | None = None
    macs: int | None = None
    activation_bytes: int | None = None
    latency_ms: float | None = None
    epochs_run: int = 0
    curve: tuple[float, ...] = ()
    seconds: float | None = None
    reason: str | None = None
    worker: str | None = None  # which process ran it (host:pid), for shared studies


def dominates(a: TrialRecord, b: TrialRecord, higher_is_better: bool) -> bool:
    """Whether ``a`` is at least as good as ``b`` on metric and cost and better on one."""
    assert a.metric is not None and b.metric is not None
    ma, mb = (a.metric, b.metric) if higher_is_better else (-a.metric, -b.metric)
    if a.cost is None or b.cost is None:
        return ma > mb
    return ma >= mb and a.cost <= b.cost and (ma > mb or a.cost < b.cost)


def pareto_front(records: Iterable[TrialRecord], higher_is_better: bool = True) -> list[TrialRecord]:
    """The complete trials no other complete trial dominates, by increasing cost (a
    single-objective sweep: the best trial alone). Ties on both values keep the earliest."""
    done = [r for r in records if r.outcome is TrialOutcome.COMPLETE and r.metric is not None]
    front: list[TrialRecord] = []
    seen: set[tuple[float, float | None]] = set()
    for r in sorted(done, key=lambda r: r.number):
        if any(dominates(o, r, higher_is_better) for o in done):
            continue
        key = (float(r.metric or 0.0), r.cost)
        if key in seen:
            continue
        seen.add(key)
        front.append(r)
    return sorted(front, key=lambda r: (r.cost if r.cost is not None else 0.0, r.number))


def step_line(front: Sequence[TrialRecord], higher_is_better: bool = True) -> tuple[list[float], list[float]]:
    """The front as the staircase a plot draws (cost on x, metric on y): from each point, flat
    to the next cost, then up (or down) to its metric."""
    xs: list[float] = []
    ys: list[float] = []
    for i, r in enumerate(front):
        assert r.metric is not None and r.cost is not None
        if i:
            xs.append(float(r.cost))
            ys.append(ys[-1])
        xs.append(float(r.cost))
        ys.append(float(r.metric))
    return xs, ys
