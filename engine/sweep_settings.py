"""What a sweep optimises and how: objectives, budget, sampler, pruner, trials, storage.

A project keeps these as its top-level ``"sweep"`` object (see :mod:`engine.project_file`), so
that ``convas sweep`` and the Sweep panel run the same search. Everything is plain, checked data;
the search itself is :mod:`engine.sweep`, the space :mod:`engine.search_space`.

Objectives: a sweep maximises (or minimises) a validation metric, by default the task's own
quality measure (``val_accuracy`` for classification, ``val_r2`` for regression, see
:attr:`engine.tasks.TaskSpec.quality`), and may at the same time minimise one cost: parameters,
multiply-accumulates (MACs) or the measured inference latency. With a cost the search is
multi-objective and its answer is a Pareto front; without one it is a single best trial.

The budget rejects a sampled design before any training: at most so many parameters, MACs or
bytes of activation memory at the training batch size (the analysis knows all three exactly).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import ConvasError

SWEEP_DB_SUFFIX = ".sweep.db"


class CostKind(StrEnum):
    """A cost a sweep may minimise beside its metric (the value is what ``--objectives`` says)."""

    PARAMS = "params"
    MACS = "macs"
    LATENCY = "latency"  # milliseconds per image, measured on the trained model (batch of one)

    @property
    def label(self) -> str:
        return {CostKind.PARAMS: "Parameters", CostKind.MACS: "MACs",
                CostKind.LATENCY: "Latency (ms)"}[self]


class SamplerKind(StrEnum):
    """How Optuna chooses the next trial's values."""

    TPE = "tpe"        # Tree-structured Parzen Estimator (multi-objective too): the default
    NSGA2 = "nsga2"    # the NSGA-II genetic algorithm, for multi-objective searches
    RANDOM = "random"  # uniform draws: a baseline


class PrunerKind(StrEnum):
    """How a trial is stopped early on its per-epoch validation metric."""

    NONE = "none"
    MEDIAN = "median"        # below the median of earlier trials at the same epoch
    HYPERBAND = "hyperband"  # successive halving over several brackets


def metric_higher_is_better(metric: str) -> bool:
    """Whether a larger value of validation metric ``metric`` is better: losses and errors are
    minimised, everything else (accuracy, r2, mean_iou, precision, ...) maximised."""
    name = metric.removeprefix("val_").lower()
    return not (name == "loss" or name.endswith("_loss") or name in ("mae", "mse", "rmse", "msle")
                or "error" in name)


@dataclass(frozen=True)
class Objectives:
    """What a sweep optimises: the validation ``metric`` (None: the task's quality, as
    ``val_<quality>``) and optionally one ``cost`` to minimise at the same time."""

    metric: str | None = None
    cost: CostKind | None = CostKind.MACS

    @classmethod
    def parse(cls, text: str) -> Objectives:
        """``--objectives`` text: ``val_accuracy,macs``, ``val_accuracy``, ``params``... The
        metric is anything starting with ``val_`` (or ``metric`` for the task's own); the cost
        one of :class:`CostKind`. :class:`ConvasError` naming what is wrong otherwise."""
        metric: str | None = None
        cost: CostKind | None = None
        seen_metric = False
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts or len(parts) > 2:
            raise ConvasError(f"--objectives takes a validation metric and at most one cost, e.g. "
                              f"val_accuracy,macs; not {text!r}")
        costs = ", ".join(c.value for c in CostKind)
        for part in parts:
            lowered = part.lower()
            if lowered in {c.value for c in CostKind}:
                if cost is not None:
                    raise ConvasError(f"--objectives takes one cost ({costs}), not two")
                cost = CostKind(lowered)
            elif lowered == "metric" or (lowered.startswith("val_") and re.fullmatch(r"val_\w+", lowered)):
                if seen_metric:
                    raise ConvasError("--objectives takes one validation metric, not two")
                seen_metric = True
                metric = None if lowered == "metric" else lowered
            else:
                raise ConvasError(f"unknown objective {part!r}: use a validation metric such as "
                                  f"val_accuracy (or 'metric' for the task's own) and/or one cost of "
                                  f"{costs}")
        return cls(metric, cost)

    def text(self, task_metric: str = "metric") -> str:
        """The objectives as ``--objectives`` writes them."""
        return ",".join(p for p in (self.metric or task_metric, self.cost.value if self.cost else None) if p)


@dataclass(frozen=True)
class Budget:
    """Upper limits a sampled design must keep to be trained (None: no limit)."""

    max_params: int | None = None
    max_macs: int | None = None
    max_activation_bytes: int | None = None  # activation memory at the training batch size

    def exceeded(self, params: int, macs: int, activation_bytes: int) -> str | None:
        """Why a design of these costs is over budget, as a sentence; None when it is within."""
        reasons = []
        for value, limit, what in ((params, self.max_params, "parameters"), (macs, self.max_macs, "MACs"),
                                   (activation_bytes, self.max_activation_bytes, "bytes of activations")):
            if limit is not None and value > limit:
                reasons.append(f"{value:,} {what} (budget {limit:,})")
        return "over budget: " + "; ".join(reasons) if reasons else None

    @property
    def empty(self) -> bool:
        return self.max_params is None and self.max_macs is None and self.max_activation_bytes is None


@dataclass(frozen=True)
class SweepSettings:
    """How a sweep runs. ``trials``: trained trials the study should hold when it stops (designs
    rejected before training do not count); ``timeout_s``: stop starting trials after this long
    (None: no limit); ``epochs``: per trial (None: the training settings' epochs); ``study``:
    the study's name in the storage (None: the design's name); ``storage``: an Optuna storage
    URL (None: ``name.sweep.db`` beside the project, :func:`default_storage`)."""

    objectives: Objectives = field(default_factory=Objectives)
    sampler: SamplerKind = SamplerKind.TPE
    pruner: PrunerKind = PrunerKind.MEDIAN
    trials: int = 20
    timeout_s: float | None = None
    epochs: int | None = 3
    budget: Budget = field(default_factory=Budget)
    study: str | None = None
    storage: str | None = None
    seed: int | None = None  # the sampler's seed (None: a different search every run)

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise ConvasError(problem)

    def problem(self) -> str | None:
        if not _is_int(self.trials) or self.trials < 1:
            return f"a sweep needs at least 1 trial, not {self.trials!r}"
        if self.timeout_s is not None and (not _is_number(self.timeout_s) or self.timeout_s <= 0):
            return f"the sweep's timeout must be a positive number of seconds, not {self.timeout_s!r}"
        if self.epochs is not None and (not _is_int(self.epochs) or self.epochs < 1):
            return f"a sweep trains each trial for at least 1 epoch, not {self.epochs!r}"
        for value, what in ((self.budget.max_params, "parameters"), (self.budget.max_macs, "MACs"),
                            (self.budget.max_activation_bytes, "activation bytes")):
            if value is not None and (not _is_int(value) or value < 1):
                return f"the budget's maximum {what} must be a whole number of at least 1, not {value!r}"
        if self.study is not None and (not isinstance(self.study, str) or not self.study.strip()):
            return f"the study name must be text, not {self.study!r}"
        if self.storage is not None and (not isinstance(self.storage, str) or "://" not in self.storage):
            return (f"the storage must be a database URL such as sqlite:///sweep.db or "
                    f"postgresql://user@host/db, not {self.storage!r}")
        if self.seed is not None and (not _is_int(self.seed) or self.seed < 0):
            return f"the sweep's seed must be a whole number (0 or more), not {self.seed!r}"
        return None

    def with_changes(self, **changes: Any) -> SweepSettings:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The project file's ``sweep`` object."""
        data: dict[str, Any] = {
            "metric": self.objectives.metric,
            "cost": self.objectives.cost.value if self.objectives.cost else None,
            "sampler": self.sampler.value, "pruner": self.pruner.value, "trials": self.trials,
            "timeout_s": self.timeout_s, "epochs": self.epochs,
            "max_params": self.budget.max_params, "max_macs": self.budget.max_macs,
            "max_activation_bytes": self.budget.max_activation_bytes,
            "study": self.study, "storage": self.storage, "seed": self.seed,
        }
        return data

    @classmethod
    def from_dict(cls, data: Any) -> SweepSettings:
        """Settings from a project's ``sweep`` object (None: the defaults); :class:`ConvasError`
        naming the bad entry otherwise."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConvasError(f"the sweep settings must be a mapping, not {type(data).__name__}")
        known = set(cls().to_dict())
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConvasError(f"unknown sweep setting(s): {', '.join(map(str, unknown))}")
        d = {**cls().to_dict(), **data}
        metric = d["metric"]
        if metric is not None and (not isinstance(metric, str) or not re.fullmatch(r"val_\w+", metric)):
            raise ConvasError(f"the sweep's metric must be a validation metric such as val_accuracy, "
                              f"not {metric!r}")
        cost = _enum(CostKind, d["cost"], "cost") if d["cost"] is not None else None
        return cls(Objectives(metric, cost), _enum(SamplerKind, d["sampler"], "sampler"),
                   _enum(PrunerKind, d["pruner"], "pruner"), d["trials"], d["timeout_s"], d["epochs"],
                   Budget(d["max_params"], d["max_macs"], d["max_activation_bytes"]),
                   d["study"], d["storage"], d["seed"])

    @classmethod
    def from_saved(cls, data: Any) -> tuple[SweepSettings, str | None]:
        """Settings from a project file; the defaults and the reason when those are unusable."""
        try:
            return cls.from_dict(data), None
        except ConvasError as exc:
            return cls(), str(exc)


def default_storage(project: str | os.PathLike[str]) -> str:
    """The SQLite storage URL beside a project: ``name.convas`` → ``sqlite:///…/name.sweep.db``
    (an absolute path, so that every process of a sweep opens the same file)."""
    from .sweep_storage import sqlite_url

    path = Path(project).resolve()
    return sqlite_url(path.with_name(path.name.removesuffix(path.suffix) + SWEEP_DB_SUFFIX))


def _enum(kind: type[StrEnum], value: Any, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(k.value for k in kind)
        raise ConvasError(f"the sweep's {what} must be one of {choices}, not {value!r}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
