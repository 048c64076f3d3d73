"""Train a design's Keras model, reporting progress to whoever watches (the GUI, the CLI, a test).

The training loop is Keras's own ``model.fit``; a custom callback forwards the per-batch and
per-epoch logs to a :class:`Reporter`, asks it after every batch whether to stop or pause, and
guards against a loss that becomes NaN or infinite. Training settings live in a
:class:`TrainingConfig`, which round-trips through plain dicts so a project file can keep it.
Under a ``tf.distribute`` strategy (mirrored over local devices, or a cluster of workers:
:mod:`engine.distribute`) the same :func:`train` runs :mod:`engine.distributed_loop`'s step in
place of ``model.fit``, with the same Watcher callback, Keras callbacks, phases and history.

One :func:`train` serves every task (:mod:`engine.tasks`: its loss, metrics and targets) and
transfer learning: the layers a design freezes stay frozen, and with ``head_epochs`` a run
fine-tunes in two phases (the head alone, then also what :func:`engine.freezing.to_unfreeze`
chooses, at a lower learning rate), one history counted on across both.

Conventions: ``epoch`` and ``batch`` passed to a reporter count from 0 (as in Keras); messages
written for people count from 1. Keras is imported inside the functions only.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .design import Design
from .distribute import Distribution, Placement, Strategy
from .errors import ConvasError
from .pixel_range import PixelRange
from .search_range import RangeKind, SearchRange
from .tasks import TargetKind, Task, infer_task, keras_loss, keras_metrics, spec

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
# Losses the auto choice may pick; any other Keras loss name may still be set explicitly.
SPARSE_CCE = "sparse_categorical_crossentropy"
CCE = "categorical_crossentropy"
BCE = "binary_crossentropy"
MSE = "mean_squared_error"
# What project files may say for a task inferred from the design and the data.
AUTO_TASK = "auto"
# The training settings a sweep may search (engine.search_space), each with the range kinds it takes.
SEARCHABLE_SETTINGS: dict[str, tuple[RangeKind, ...]] = {
    "learning_rate": (RangeKind.FLOAT, RangeKind.CHOICE), "batch_size": (RangeKind.INT, RangeKind.CHOICE),
    "optimizer": (RangeKind.CHOICE,), "momentum": (RangeKind.FLOAT, RangeKind.CHOICE),
}
# How often a paused training thread checks whether it may go on (seconds).
PAUSE_POLL_S = 0.05


# --------------------------------------------------------------------------------------------
# Settings

@dataclass
class TrainingConfig:
    """How to train. ``loss=None`` chooses the loss from the model's output and the labels (see
    :func:`choose_loss`). ``validation_split`` is the fraction of the data that whoever prepares
    the datasets should hold out for validation; :func:`train` itself takes the two sets ready.
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9  # used by "sgd"
    batch_size: int = 32
    epochs: int = 8
    loss: str | None = None
    metrics: tuple[str, ...] = ()  # extra metrics beside the task's own (engine.tasks.TaskSpec)
    early_stopping_patience: int | None = None
    reduce_lr_patience: int | None = None
    keep_best_weights: bool = True
    seed: int = 0
    validation_split: float = 0.2
    # What the network learns (engine.tasks); None: inferred from the design's output and the data.
    task: Task | None = None
    # Reconstruction: the standard deviation of Gaussian noise added to the inputs (pixels in
    # [0, 1]); the target stays the clean image, so the model learns to denoise. 0: none.
    noise_stddev: float = 0.0
    # Fine-tuning in two phases: ``head_epochs`` epochs with the layers the design freezes kept
    # frozen, then the rest of ``epochs`` with ``unfreeze`` (layer or group names) and the top
    # ``unfreeze_top`` frozen layers with weights made trainable (both empty: every frozen layer;
    # BatchNormalization layers stay frozen, in inference mode, as Keras's transfer-learning
    # guide advises), at ``fine_tune_learning_rate`` (None: a tenth of ``learning_rate``).
    # ``head_epochs`` None: one phase.
    head_epochs: int | None = None
    unfreeze: tuple[str, ...] = ()
    unfreeze_top: int = 0
    fine_tune_learning_rate: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.metrics, (list, tuple)):
            self.metrics = tuple(self.metrics)
        if isinstance(self.unfreeze, list):
            self.unfreeze = tuple(self.unfreeze)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConvasError` with a readable message for the first bad setting."""
        if not isinstance(self.optimizer, str) or self.optimizer.lower() not in OPTIMIZERS:
            raise ConvasError(f"unknown optimizer {self.optimizer!r}; choose one of "
                              f"{', '.join(OPTIMIZERS)}")
        self.optimizer = self.optimizer.lower()
        if not _is_number(self.learning_rate) or not math.isfinite(self.learning_rate) \
                or self.learning_rate <= 0:
            raise ConvasError(f"the learning rate must be a positive number, not {self.learning_rate!r}")
        if not _is_number(self.momentum) or not 0 <= self.momentum < 1:
            raise ConvasError(f"the momentum must be between 0 and 1 (exclusive), not {self.momentum!r}")
        for name in ("batch_size", "epochs"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ConvasError(f"{name.replace('_', ' ')} must be a whole number of at least 1, "
                                  f"not {value!r}")
        for name in ("early_stopping_patience", "reduce_lr_patience"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                raise ConvasError(f"{name.replace('_', ' ')} must be a whole number of epochs (0 or "
                                  f"more) or empty, not {value!r}")
        if self.loss is not None and (not isinstance(self.loss, str) or not self.loss.strip()):
            raise ConvasError(f"the loss must be the name of a Keras loss or empty (automatic), "
                              f"not {self.loss!r}")
        if not all(isinstance(m, str) and m for m in self.metrics):
            raise ConvasError(f"metrics must be names of Keras metrics, not {list(self.metrics)!r}")
        if not isinstance(self.keep_best_weights, bool):
            raise ConvasError(f"keep best weights must be true or false, not {self.keep_best_weights!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ConvasError(f"the seed must be a whole number (0 or more), not {self.seed!r}")
        if not _is_number(self.validation_split) or not 0 <= self.validation_split < 1:
            raise ConvasError(f"the validation split must be a fraction from 0 up to (not including) 1, "
                              f"not {self.validation_split!r}")
        if self.task is not None and not isinstance(self.task, Task):
            self.task = Task.parse(self.task)
        if not _is_number(self.noise_stddev) or not math.isfinite(self.noise_stddev) \
                or self.noise_stddev < 0:
            raise ConvasError(f"the noise must be a standard deviation of 0 (none) or more, e.g. 0.1, "
                              f"not {self.noise_stddev!r}")
        if self.head_epochs is not None:
            if not _is_int(self.head_epochs) or self.head_epochs < 1:
                raise ConvasError(f"head epochs must be a whole number of at least 1 (or empty for one "
                                  f"phase), not {self.head_epochs!r}")
            if self.head_epochs >= self.epochs:
                raise ConvasError(f"head epochs ({self.head_epochs}) must be fewer than the epochs "
                                  f"({self.epochs}): fine-tuning trains the rest; raise the epochs to at "
                                  f"least {self.head_epochs + 1} or lower the head epochs")
        if isinstance(self.unfreeze, str) or not all(isinstance(n, str) and n.strip()
                                                     for n in self.unfreeze):
            raise ConvasError(f"unfreeze must be a list of layer or group names, not {self.unfreeze!r}")
        if not _is_int(self.unfreeze_top) or self.unfreeze_top < 0:
            raise ConvasError(f"unfreeze top must be a whole number of layers (0 or more), not "
                              f"{self.unfreeze_top!r}")
        if self.fine_tune_learning_rate is not None and (
                not _is_number(self.fine_tune_learning_rate)
                or not math.isfinite(self.fine_tune_learning_rate) or self.fine_tune_learning_rate <= 0):
            raise ConvasError(f"the fine-tuning learning rate must be a positive number or empty (a "
                              f"tenth of the learning rate), not {self.fine_tune_learning_rate!r}")

    @property
    def two_phases(self) -> bool:
        """Whether training fine-tunes in two phases (see ``head_epochs``)."""
        return self.head_epochs is not None

    @property
    def phase_two_learning_rate(self) -> float:
        """The learning rate of fine-tuning's second phase."""
        if self.fine_tune_learning_rate is not None:
            return float(self.fine_tune_learning_rate)
        return float(self.learning_rate) / 10

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, for the project file."""
        return {
            "optimizer": self.optimizer, "learning_rate": float(self.learning_rate),
            "momentum": float(self.momentum), "batch_size": self.batch_size, "epochs": self.epochs,
            "loss": self.loss, "metrics": list(self.metrics),
            "early_stopping_patience": self.early_stopping_patience,
            "reduce_lr_patience": self.reduce_lr_patience,
            "keep_best_weights": self.keep_best_weights, "seed": self.seed,
            "validation_split": float(self.validation_split),
            **({"task": self.task.value} if self.task is not None else {}),
            "noise_stddev": float(self.noise_stddev),
            "head_epochs": self.head_epochs, "unfreeze": list(self.unfreeze),
            "unfreeze_top": self.unfreeze_top,
            "fine_tune_learning_rate": (None if self.fine_tune_learning_rate is None
                                        else float(self.fine_tune_learning_rate)),
        }

    @classmethod
    def from_dict(cls, data: Any) -> TrainingConfig:
        """The config ``data`` describes (missing keys take their defaults); :class:`ConvasError`
        for unknown keys or bad values."""
        if not isinstance(data, dict):
            raise ConvasError(f"training settings must be a mapping, not {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConvasError(f"unknown training setting(s): {', '.join(map(str, unknown))}")
        values = dict(data)
        if "metrics" in values:
            metrics = values["metrics"]
            if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
                raise ConvasError(f"metrics must be a list of metric names, not {metrics!r}")
            # Before tasks, "metrics" listed every metric and its default was ["accuracy"]; now
            # it lists extras beside the task's own, so that old default means none.
            values["metrics"] = () if list(metrics) == ["accuracy"] else tuple(metrics)
        if "task" in values:
            task = values["task"]
            if task is None or (isinstance(task, str) and task.strip().lower() in ("", AUTO_TASK)):
                values["task"] = None
            elif not isinstance(task, str):
                raise ConvasError(f"the task must be one of {', '.join(t.value for t in Task)} or "
                                  f"{AUTO_TASK}, not {task!r}")
        if "unfreeze" in values:
            names = values["unfreeze"]
            if isinstance(names, str) or not isinstance(names, (list, tuple)):
                raise ConvasError(f"unfreeze must be a list of layer or group names, not {names!r}")
            values["unfreeze"] = tuple(names)
        return cls(**values)


class ClusterKind(Enum):
    """Where the workers of a cluster run started from the window are."""

    LOCAL = "local"          # N worker processes on this computer (``convas train --local-workers N``)
    MACHINES = "machines"    # one worker per listed machine, this computer first (``--workers``)


LOCAL_WORKERS_MAX = 16


@dataclass(frozen=True)
class RunOn:
    """Where the window trains, kept by a project as ``training.distribution``: ``strategy`` NONE
    (this computer, the default), MIRRORED (every local GPU, in the window's process) or
    MULTIWORKER (a cluster: ``local_workers`` processes here when ``cluster`` is LOCAL, else one
    worker on each of ``workers``, ``host:port`` addresses with this computer's first). The
    cluster fields are kept while another strategy is chosen, so switching back restores them."""

    strategy: Strategy = Strategy.NONE
    cluster: ClusterKind = ClusterKind.LOCAL
    local_workers: int = 2
    workers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy.value, "cluster": self.cluster.value,
                "local_workers": self.local_workers, "workers": list(self.workers)}

    @classmethod
    def from_dict(cls, data: Any) -> RunOn:
        """The entry ``data`` describes (missing keys take their defaults); :class:`ConvasError`
        naming a bad value. Addresses are checked when a run starts, not here: a project whose
        machines are unreachable still opens."""
        if not isinstance(data, dict):
            raise ConvasError(f"distribution must be a mapping, not {type(data).__name__}")
        unknown = sorted(set(data) - {"strategy", "cluster", "local_workers", "workers"})
        if unknown:
            raise ConvasError(f"unknown distribution setting(s): {', '.join(map(str, unknown))}")
        try:
            strategy = Strategy(data.get("strategy", Strategy.NONE.value))
        except ValueError:
            raise ConvasError(f"distribution strategy must be one of {', '.join(s.value for s in Strategy)}, "
                              f"not {data.get('strategy')!r}") from None
        try:
            cluster = ClusterKind(data.get("cluster", ClusterKind.LOCAL.value))
        except ValueError:
            raise ConvasError(f"the cluster must be {' or '.join(c.value for c in ClusterKind)}, "
                              f"not {data.get('cluster')!r}") from None
        local = data.get("local_workers", 2)
        if not _is_int(local) or not 2 <= local <= LOCAL_WORKERS_MAX:
            raise ConvasError(f"local workers must be a whole number from 2 to {LOCAL_WORKERS_MAX}, not {local!r}")
        workers = data.get("workers", [])
        if isinstance(workers, str) or not isinstance(workers, (list, tuple)) \
                or not all(isinstance(w, str) and w.strip() for w in workers):
            raise ConvasError(f"the workers must be a list of host:port addresses, not {workers!r}")
        return cls(strategy, cluster, local, tuple(w.strip() for w in workers))


@dataclass
class TrainingSettings:
    """What a project file keeps about training: where the data comes from (``digits``,
    ``shapes`` or a path, see :mod:`engine.data_source`), the range its pixels are delivered in
    (see :mod:`engine.pixel_range`; files without one mean [0, 1]) and how to train."""

    dataset: str = "digits"
    config: TrainingConfig = field(default_factory=TrainingConfig)
    pixel_range: PixelRange = PixelRange.UNIT
    # The CSV columns that hold the targets (regression values, or one 0/1 column per label of a
    # multi-label dataset); empty: the loader's own conventions (engine.datasets).
    target_columns: tuple[str, ...] = ()
    # Where the window trains (this computer, every local GPU, a cluster); written only when it
    # is not the default, so files that never chose stay as they were.
    distribution: RunOn = field(default_factory=RunOn)
    # What a sweep may try for some settings (SEARCHABLE_SETTINGS), beside the values in
    # ``config`` that plain training uses; written only when there is one.
    search: dict[str, SearchRange] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``training`` object of a ``.convas`` file."""
        return {"dataset": self.dataset, "pixel_range": self.pixel_range.value,
                **({"target_columns": list(self.target_columns)} if self.target_columns else {}),
                **({"distribution": self.distribution.to_dict()} if self.distribution != RunOn() else {}),
                **({"search": {k: r.to_dict() for k, r in self.search.items()}} if self.search else {}),
                **self.config.to_dict()}

    @classmethod
    def from_dict(cls, data: Any) -> TrainingSettings:
        """Settings from a project file's ``training`` object (None or {} give the defaults);
        :class:`ConvasError` naming the bad setting otherwise."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConvasError(f"training settings must be a mapping, not {type(data).__name__}")
        values = dict(data)
        dataset = values.pop("dataset", "digits")
        if not isinstance(dataset, str) or not dataset.strip():
            raise ConvasError(f"the dataset must be digits, shapes or a path, not {dataset!r}")
        try:
            pixel_range = PixelRange.parse(values.pop("pixel_range", PixelRange.UNIT.value))
        except ValueError as exc:
            raise ConvasError(str(exc)) from None
        columns = values.pop("target_columns", [])
        if isinstance(columns, str) or not isinstance(columns, (list, tuple)) \
                or not all(isinstance(c, str) and c.strip() for c in columns):
            raise ConvasError(f"the target columns must be a list of CSV column names, not {columns!r}")
        distribution = values.pop("distribution", None)
        search = _search_settings(values.pop("search", {}))
        return cls(dataset.strip(), TrainingConfig.from_dict(values), pixel_range,
                   tuple(c.strip() for c in columns),
                   RunOn() if distribution is None else RunOn.from_dict(distribution), search)

    @classmethod
    def from_saved(cls, data: Any) -> tuple[TrainingSettings, str | None]:
        """Settings from a project file's ``training`` object; the defaults and the reason when
        those are unusable (a file is still worth opening for its design)."""
        try:
            return cls.from_dict(data), None
        except ConvasError as exc:
            return cls(), str(exc)


def _search_settings(data: Any) -> dict[str, SearchRange]:
    """The ``search`` entry of the training settings: a range per searchable setting."""
    if not isinstance(data, dict):
        raise ConvasError(f"the training search ranges must be a mapping, not {type(data).__name__}")
    ranges: dict[str, SearchRange] = {}
    for key, raw in data.items():
        if key not in SEARCHABLE_SETTINGS:
            raise ConvasError(f"a sweep cannot search the training setting {key!r}; it can search "
                              f"{', '.join(SEARCHABLE_SETTINGS)}")
        try:
            ranges[key] = SearchRange.from_dict(raw)
        except ConvasError as exc:
            raise ConvasError(f"the search range of {key}: {exc}") from None
        if ranges[key].kind not in SEARCHABLE_SETTINGS[key]:
            kinds = " or ".join(k.value for k in SEARCHABLE_SETTINGS[key])
            raise ConvasError(f"the search range of {key} must be {kinds}, not {ranges[key].kind.value}")
    return ranges


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# Who watches, and what is trained on

class MessageKind(Enum):
    """What a reporter's message is about, so that a reporter chooses how to show it by its kind,
    never by its words."""

    INFO = "info"            # worth knowing, nothing wrong (e.g. which weights a run starts from)
    WARNING = "warning"      # something may be wrong, training goes on
    NAN = "nan"              # the loss became NaN or infinite: training stopped
    PAUSED = "paused"        # training waits for should_pause() to turn false
    RESUMED = "resumed"      # and goes on
    STOPPED = "stopped"      # training ended before its last epoch (on request, early stopping)
    RESTORED = "restored"    # the best epoch's weights were put back
    PHASE = "phase"          # fine-tuning's second phase begins (after TrainingResult.phase_epochs)
    ERROR = "error"          # the run failed (sent by the runner around train(), not by train)

    @property
    def is_warning(self) -> bool:
        """Shown as a warning: the run did not go as asked."""
        return self in (MessageKind.WARNING, MessageKind.NAN)



@runtime_checkable
class Reporter(Protocol):
    """Receives progress and steers training. Called on the training thread: a GUI reporter
    should queue what it receives and answer ``should_stop``/``should_pause`` from flags."""

    def on_batch(self, epoch: int, batch: int, batches: int | None, logs: dict[str, float]) -> None: ...

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None: ...

    def should_stop(self) -> bool: ...

    def should_pause(self) -> bool: ...

    def on_message(self, kind: MessageKind, text: str) -> None: ...


class NullReporter:
    """A reporter that ignores everything and never stops or pauses training."""

    def on_batch(self, epoch: int, batch: int, batches: int | None, logs: dict[str, float]) -> None:
        pass

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        pass

    def should_stop(self) -> bool:
        return False

    def should_pause(self) -> bool:
        return False

    def on_message(self, kind: MessageKind, text: str) -> None:
        pass


@runtime_checkable
class TrainingData(Protocol):
    """A set of samples: ``len()`` of them, batched as a ``tf.data.Dataset`` of (x, y)."""

    def __len__(self) -> int: ...

    def as_tf_dataset(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> Any: ...


@dataclass
class TrainingResult:
    """What :func:`train` did. ``history`` maps each log name (loss, accuracy, val_loss,
    val_accuracy, lr, samples_per_s, ...) to one value per completed epoch. ``stop_reason`` says
    in words why training ended before its last epoch (None when it ran them all).
    ``restored_epoch`` is set when the best weights of an earlier epoch were put back."""

    model: Any
    history: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: bool = False
    stop_reason: str | None = None
    epochs_run: int = 0
    restored_epoch: int | None = None  # from 0: the earlier epoch whose weights the model holds
    diverged: bool = False  # the loss became NaN or infinite (stop_reason says where)
    task: Task = Task.CLASSIFICATION  # what was trained (the config's, or the inferred one)
    phase_epochs: int | None = None  # epochs of fine-tuning's first phase (None: one phase)
    # What the run trained on (engine.distribute): one device, or a strategy's replicas and workers.
    placement: Placement | None = None
    # Epochs a distributed run restored from its checkpoint instead of training them again.
    resumed_epochs: int = 0


# --------------------------------------------------------------------------------------------
# Choosing the loss

def choose_loss(activation: str | None, units: int | None, label_kind: str) -> str:
    """The loss for a model whose (single) output has ``units`` units after ``activation``, given
    labels that are ``"integer"`` class indices, ``"one_hot"`` vectors or ``"float"`` values.

    Softmax with several units: sparse categorical cross-entropy for integer labels, categorical
    cross-entropy for one-hot ones; one sigmoid unit: binary cross-entropy; one linear unit with
    float labels: mean squared error. Anything else raises :class:`ConvasError` asking for a loss.
    """
    act = (activation or "linear").lower()
    if act == "softmax" and units is not None and units > 1:
        if label_kind == "integer":
            return SPARSE_CCE
        if label_kind == "one_hot":
            return CCE
    if act == "sigmoid" and units == 1:
        return BCE
    if act == "linear" and units == 1 and label_kind == "float":
        return MSE
    raise ConvasError(f"cannot choose a loss automatically for an output of {units} unit(s) with "
                      f"{act} activation and {label_kind.replace('_', '-')} labels; choose the loss "
                      f"in the training settings")


def output_activation(model: Any) -> tuple[str | None, int | None]:
    """The activation name and unit count of a single-output Keras model's output."""
    outputs = model.outputs
    if len(outputs) != 1:
        raise ConvasError(f"the model has {len(outputs)} outputs; choose the loss in the training "
                          f"settings (automatic choice handles one output)")
    tensor = outputs[0]
    units = tensor.shape[-1]
    layer = tensor._keras_history[0]
    if type(layer).__name__ == "Softmax":
        return "softmax", units
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", None) if act is not None else None
    if isinstance(act, str):
        name = act
    return name, units


def label_kind(element_spec: Any, units: int | None) -> str:
    """``"integer"``, ``"one_hot"`` or ``"float"``: what the labels of a dataset with this
    ``element_spec`` (an (x, y) pair) look like to a model output of ``units`` units."""
    if not isinstance(element_spec, (tuple, list)) or len(element_spec) < 2:
        raise ConvasError("the training data must give (inputs, labels) pairs")
    spec = element_spec[1]
    if spec.dtype.is_integer or spec.dtype.is_bool:
        return "integer"
    shape = spec.shape
    if units is not None and units > 1 and shape.rank and shape[-1] == units:
        return "one_hot"
    return "float"


# --------------------------------------------------------------------------------------------
# Training

def make_optimizer(config: TrainingConfig) -> Any:
    """A fresh Keras optimizer for ``config``."""
    import keras

    lr = float(config.learning_rate)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=float(config.momentum))
    return keras.optimizers.RMSprop(learning_rate=lr)


def suggested_learning_rate(lr: float) -> float:
    """A learning rate worth trying after ``lr`` made the loss explode."""
    return min(lr / 10, 1e-3)


def train(design: Design | None, data_train: TrainingData, data_val: TrainingData | None,
          config: TrainingConfig, reporter: Reporter | None = None, model: Any = None, *,
          task: Task | None = None, pixel_range: PixelRange = PixelRange.UNIT,
          distribution: Distribution | None = None, strategy: Any = None) -> TrainingResult:
    """Train ``model`` (or a new model built from ``design``) on ``data_train``, validating on
    ``data_val`` when given, and report progress to ``reporter``.

    The task is ``config.task``, else ``task`` (what the caller resolved, e.g. with
    :func:`engine.data_source.choose_task`), else inferred from the model's output and the
    targets. A :class:`engine.datasets.Split` is fed through :func:`engine.task_data.task_data`
    (the task's targets, reconstruction's noise, scaled to ``pixel_range``, the range the pixels
    are delivered in); any other :class:`TrainingData` is used as it is.
    The loss is ``config.loss``, else the task's default (:func:`choose_loss` for classification);
    the metrics are the task's own and ``config.metrics``.

    With ``config.head_epochs`` training runs in two phases (see :class:`TrainingConfig`): the
    layers the design freezes stay frozen for ``head_epochs`` epochs, then the reporter is told
    (:attr:`MessageKind.PHASE`), :func:`engine.freezing.to_unfreeze`'s layers become trainable
    and training continues at the fine-tuning learning rate up to ``config.epochs``, counting
    epochs on in one history. Stopping, pausing, the NaN guard and keeping the best weights span
    both phases; early stopping ends the phase it happens in.

    A given model already compiled by an earlier ``train`` with the same optimizer, learning
    rate, loss and metrics keeps its optimizer state; otherwise it is (re)compiled.
    Training stops within one batch of ``reporter.should_stop()`` turning true (the weights
    trained so far are kept), and waits while ``reporter.should_pause()`` is true.

    ``distribution`` (:mod:`engine.distribute`) mirrored or multi-worker runs the same training
    through :mod:`engine.distributed_loop` under ``strategy`` (made from ``distribution`` when
    not given; a launcher makes a multi-worker strategy first, as TensorFlow requires): the same
    reporter calls, history, phases and callbacks; the chief's stop and pause hold for every
    worker; ``config.batch_size`` is the global batch. With ``distribution.checkpoint_dir`` each
    epoch is checkpointed and a rerun resumes after the last one (:attr:`MessageKind.INFO`); the
    folder is removed when the run ends other than by a stop request. A lost worker raises
    :class:`engine.distribute.WorkerLost`. ``result.placement`` says what the run trained on.
    """
    import keras

    config.validate()
    reporter = reporter or NullReporter()
    if len(data_train) == 0:
        raise ConvasError("there are no training samples")
    if config.two_phases and design is None and (model is None or config.unfreeze):
        raise ConvasError("fine-tuning in two phases needs the design to resolve the layer and group "
                          "names to unfreeze; give the design with the model")
    if distribution is None or distribution.strategy is Strategy.NONE:
        strategy = None
    elif strategy is None:
        from .distributed_loop import make_strategy

        strategy = make_strategy(distribution)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        keras.utils.set_random_seed(config.seed)
        if model is None:
            if design is None:
                raise ConvasError("give a design or a model to train")
            from .keras_build import build_keras_model
            model = build_keras_model(design)
    if strategy is not None:
        from .distributed_loop import model_in_scope

        model = model_in_scope(model, strategy)
    if design is not None:
        _apply_trainable(model, design)
    unfreeze = _phase_two_layers(model, design, config) if config.two_phases else []

    task = config.task or task or infer_model_task(model, data_train)
    _check_targets(task, data_train)
    classes = output_channels(model)
    cluster = distribution.cluster if distribution is not None and strategy is not None else None
    shard = (cluster.index, cluster.size) if cluster is not None and cluster.size > 1 else None
    data_train, train_sharded = _shard(data_train, shard)
    train_ds = task_training_data(data_train, task, config, classes, pixel_range=pixel_range) \
        .as_tf_dataset(config.batch_size, shuffle=True, seed=config.seed)
    train_ds = _read_as_sharded(train_ds) if train_sharded else train_ds
    val_ds = None
    if data_val is not None and len(data_val) > 0:
        data_val, val_sharded = _shard(data_val, shard)
        val_ds = task_training_data(data_val, task, config, classes, validation=True,
                           pixel_range=pixel_range) \
            .as_tf_dataset(config.batch_size, shuffle=False, seed=config.seed)
        val_ds = _read_as_sharded(val_ds) if val_sharded else val_ds

    loss = config.loss
    if loss is None:
        if task is Task.CLASSIFICATION:
            activation, units = output_activation(model)
            loss = choose_loss(activation, units, label_kind(train_ds.element_spec, units))
        else:
            loss = spec(task).default_loss

    monitor = "val_loss" if val_ds is not None else "loss"
    batches = math.ceil(len(data_train) / config.batch_size)
    run = _Run(model, config, task, loss, classes, train_ds, val_ds, reporter, strategy, distribution)
    watcher = _watcher_class()(run.watched, config, batches, len(data_train), monitor)
    watcher.fed = [d for d in (data_train, data_val) if d is not None]
    result = TrainingResult(model=model, task=task, placement=run.placement)
    start, phase_epochs = run.resume(watcher, unfreeze)
    result.resumed_epochs = start

    if phase_epochs is None:  # phase one (or the only phase)
        run.compile(run.learning_rate(float(config.learning_rate)))
        run.restore(with_optimizer=True)
        first = config.head_epochs if config.head_epochs is not None else config.epochs
        run.fit(watcher, first, start)
        if config.two_phases and watcher.stop_reason is None:
            phase_epochs = watcher.epochs_run
            start = -1  # phase two starts where phase one ended, with a fresh optimizer
    if config.two_phases and watcher.stop_reason is None and phase_epochs is not None:
        result.phase_epochs = phase_epochs
        lr = run.learning_rate(config.phase_two_learning_rate)
        if start < 0 or start == phase_epochs:
            shown = ", ".join(unfreeze[:6]) + (f" and {len(unfreeze) - 6} more" if len(unfreeze) > 6 else "")
            reporter.on_message(MessageKind.PHASE,
                                f"fine-tuning from epoch {phase_epochs + 1}: unfroze {len(unfreeze)} "
                                f"layer(s) ({shown}); learning rate {lr:g}")
        for name in unfreeze:
            model.get_layer(name).trainable = True
        run.begin_phase_two(phase_epochs)
        run.compile(lr)
        run.restore(with_optimizer=start > phase_epochs)
        run.fit(watcher, config.epochs, watcher.epochs_run)
    run.finish(watcher)

    result.history, result.epochs_run = watcher.history, watcher.epochs_run
    if watcher.stop_reason is not None:
        result.stopped_early, result.stop_reason = True, watcher.stop_reason
        result.diverged = watcher.nan
    elif watcher.epochs_run < config.epochs:
        result.stopped_early = True
        result.stop_reason = (f"early stopping: {monitor} did not improve for "
                              f"{config.early_stopping_patience} epoch(s)")
    if watcher.restore_best():
        result.restored_epoch = watcher.best_epoch
        reporter.on_message(MessageKind.RESTORED, f"restored the weights of epoch {watcher.best_epoch + 1}, "
                            f"which had the best {monitor} ({watcher.best:.4g})")
    if result.stop_reason:
        reporter.on_message(MessageKind.NAN if result.diverged else MessageKind.STOPPED, result.stop_reason)
    return result


class _Run:
    """How :func:`train` compiles and fits one run: Keras's ``model.fit`` on one device, or
    :class:`engine.distributed_loop.DistributedLoop` under a strategy (with its checkpoints). The
    phases, the Watcher and the callbacks are :func:`train`'s own either way."""

    def __init__(self, model: Any, config: TrainingConfig, task: Task, loss: str, classes: int | None,
                 train_ds: Any, val_ds: Any, reporter: Reporter, strategy: Any,
                 distribution: Distribution | None) -> None:
        self.model, self.config, self.task, self.loss, self.classes = model, config, task, loss, classes
        self.train_ds, self.val_ds, self.reporter = train_ds, val_ds, reporter
        self.strategy, self.distribution = strategy, distribution
        self.monitor = "val_loss" if val_ds is not None else "loss"
        self.loop: Any = None
        self.watched: Reporter = reporter
        self._restore_from: Any = None  # the checkpoint state to restore at the next compile
        if strategy is None or distribution is None:
            self.placement = Placement(Strategy.NONE, workers=1, replicas=1, global_batch=config.batch_size)
            return
        from .distributed_loop import DistributedLoop, EpochCheckpoint, SharedFlags, placement

        self.placement = placement(strategy, distribution, config.batch_size)
        reporter.on_message(MessageKind.INFO, f"training {self.placement.describe()}")
        cluster = distribution.cluster
        checkpoint = (EpochCheckpoint(distribution.checkpoint_dir, distribution.is_chief,
                                      cluster.index if cluster is not None else 0)
                      if distribution.checkpoint_dir is not None else None)
        flags = SharedFlags(reporter, strategy, distribution.is_chief)
        self.loop = DistributedLoop(strategy, distribution, flags, train_ds, val_ds, loss, checkpoint)
        self.loop.prepare(model, task, classes, config.metrics)
        self.watched = flags
        if distribution.scale_lr and self.placement.replicas > 1:
            reporter.on_message(MessageKind.INFO, f"learning rate scaled by {self.placement.replicas} replicas "
                                f"(--scale-lr): {float(config.learning_rate):g} → "
                                f"{self.learning_rate(float(config.learning_rate)):g}")

    def learning_rate(self, lr: float) -> float:
        """``lr``, times the replicas when the distribution scales it (linear scaling)."""
        if self.distribution is not None and self.distribution.scale_lr and self.strategy is not None:
            return lr * self.placement.replicas
        return lr

    def resume(self, watcher: Any, unfreeze: list[str]) -> tuple[int, int | None]:
        """Read a distributed run's checkpoint, if any: the epochs it completed and, when it had
        reached fine-tuning's second phase, the first phase's length (None otherwise). The
        Watcher takes the history and best epoch so far; the weights are restored by
        :meth:`restore` once the model is compiled for its phase."""
        if self.loop is None or self.loop.checkpoint is None:
            return 0, None
        return self.loop.resume(watcher, self.config, self.reporter)

    def compile(self, lr: float) -> None:
        with self.strategy.scope() if self.strategy is not None else contextlib.nullcontext():
            _compile(self.model, self.config, self.task, self.loss, self.classes, lr)
        if self.loop is not None:
            self.loop.build_optimizer(self.model)

    def restore(self, with_optimizer: bool) -> None:
        if self.loop is not None:
            self.loop.restore(self.model, with_optimizer)

    def begin_phase_two(self, phase_epochs: int) -> None:
        if self.loop is not None:
            self.loop.begin_phase_two(phase_epochs)

    def fit(self, watcher: Any, epochs: int, initial_epoch: int) -> None:
        if initial_epoch >= epochs:
            return
        callbacks = _callbacks(watcher, self.config, self.monitor)
        try:
            if self.loop is None:
                self.model.fit(self.train_ds, validation_data=self.val_ds, epochs=epochs,
                               initial_epoch=initial_epoch, callbacks=callbacks, shuffle=False,
                               verbose=0)  # the dataset is shuffled already
            else:
                self.loop.fit(self.model, epochs, initial_epoch, callbacks, watcher)
        except Exception as exc:  # only a pipeline's own DatasetError is reworded
            found = _pipeline_error(exc)
            if found is None:
                raise
            raise found from None


    def finish(self, watcher: Any) -> None:
        """A distributed run that ended other than by a stop request needs its checkpoint no more."""
        if self.loop is not None and self.loop.checkpoint is not None and not watcher.user_stopped:
            self.loop.checkpoint.remove()


def _shard(data: Any, shard: tuple[int, int] | None) -> tuple[Any, bool]:
    """``data`` reading only this worker's share of every epoch (``shard``: its index and the
    number of workers; :attr:`engine.datasets.Split.shard`), so that no worker reads or decodes
    the samples of another: (the data, whether it was sharded). A dataset split (or one fed as
    a task learns from it) is; other training data is left to ``tf.data``'s auto-sharding by
    data, in which every worker reads everything and keeps its share."""
    from dataclasses import replace

    from .datasets import Split
    from .task_data import TaskData

    if shard is None:
        return data, False
    if isinstance(data, Split):
        return replace(data, shard=shard), True
    if isinstance(data, TaskData):
        return replace(data, split=replace(data.split, shard=shard)), True
    return data, False


def _read_as_sharded(dataset: Any) -> Any:
    """``dataset``, already this worker's share, marked so that ``tf.distribute`` does not
    shard it again."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)


def _pipeline_error(exc: Exception) -> ConvasError | None:
    """The :class:`~engine.datasets.DatasetError` a data pipeline raised while reading a batch
    (e.g. the file changed on disk), which reaches Keras wrapped in a TensorFlow error: its
    sentence alone, so the user reads it rather than TensorFlow's dump. None for other errors."""
    from .datasets import DatasetError

    if isinstance(exc, ConvasError):
        return None
    text = str(getattr(exc, "message", exc))
    marker = "DatasetError: "
    if marker not in text:
        return None
    return DatasetError(text.split(marker, 1)[1].splitlines()[0].strip())


def _compile(model: Any, config: TrainingConfig, task: Task, loss: str, classes: int | None,
             learning_rate: float) -> None:
    """Compile ``model`` for ``task`` unless an earlier :func:`train` compiled it the same way
    (then its optimizer keeps its state). Which layers are trainable is part of the key: Keras
    reads it when compiling."""
    from dataclasses import replace

    trainable = tuple(layer.name for layer in model.layers if layer.trainable)
    key = (config.optimizer, learning_rate, float(config.momentum), task, loss, tuple(config.metrics),
           trainable)
    if getattr(model, "compiled", False) and getattr(model, "_convas_compile_key", None) == key:
        return
    try:
        model.compile(optimizer=make_optimizer(replace(config, learning_rate=learning_rate)),
                      loss=keras_loss(task, loss), metrics=keras_metrics(task, classes, config.metrics, loss))
    except ConvasError:
        raise
    except Exception as exc:
        raise ConvasError(f"Keras could not prepare the model for training: {exc}") from exc
    model._convas_compile_key = key


def _callbacks(watcher: Any, config: TrainingConfig, monitor: str) -> list[Any]:
    """One phase's callbacks: early stopping and learning-rate reduction (fresh each phase, as
    the second phase starts at its own learning rate), then ``watcher``, which lasts the run and
    goes last so that epoch logs include what the others changed (lr)."""
    import keras

    callbacks: list[Any] = []
    if config.early_stopping_patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=config.early_stopping_patience, restore_best_weights=False))
    if config.reduce_lr_patience is not None:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, patience=config.reduce_lr_patience, factor=0.5, verbose=0))
    return [*callbacks, watcher]


def _apply_trainable(model: Any, design: Design) -> None:
    """Make each of ``model``'s layers as trainable as its node in ``design`` says (a model from
    an earlier two-phase run has its backbone unfrozen)."""
    for layer in model.layers:
        node = design.nodes.get(layer.name)
        if node is not None and node.kind != "InputLayer" and layer.trainable != node.trainable:
            layer.trainable = node.trainable


def _phase_two_layers(model: Any, design: Design | None, config: TrainingConfig) -> list[str]:
    """The layers of ``model`` fine-tuning's second phase unfreezes (see :func:`phase_two_layers`);
    without a design, the model's own frozen layers (then no names can be given)."""
    weighted = {layer.name for layer in model.layers if layer.weights}
    if design is None:
        from .freezing import STAYS_FROZEN_KINDS

        frozen = [layer.name for layer in model.layers if not layer.trainable and layer.weights
                  and type(layer).__name__ not in STAYS_FROZEN_KINDS]
        if not frozen:
            raise ConvasError("fine-tuning in two phases trains the head alone first, with the backbone "
                              "frozen, but the model freezes no layer with weights (BatchNormalization "
                              "layers stay frozen); freeze some layers, or train in one phase")
        return frozen[-config.unfreeze_top:] if config.unfreeze_top > 0 else frozen
    return [n for n in phase_two_layers(design, config, weighted) if _has_layer(model, n)]


def phase_two_layers(design: Design, config: TrainingConfig, weighted: set[str]) -> list[str]:
    """The frozen layers of ``design`` that fine-tuning's second phase makes trainable
    (:func:`engine.freezing.to_unfreeze` with ``config.unfreeze`` and ``config.unfreeze_top``;
    ``weighted`` names the layers with weights); :class:`ConvasError` with a fix when the design
    freezes nothing or the choice covers no frozen layer. The CLI asks before training starts."""
    from .freezing import STAYS_FROZEN_KINDS, frozen_nodes, to_unfreeze

    frozen = frozen_nodes(design)
    if not frozen:
        raise ConvasError("fine-tuning in two phases trains the head alone first, with the backbone "
                          "frozen, but the design freezes no layer; freeze the backbone (convas train "
                          "--freeze backbone) or some layers, or train in one phase")
    names = to_unfreeze(design, config.unfreeze, config.unfreeze_top, weighted)
    if not names:
        kinds = {design.nodes[n].kind for n in frozen}
        why = " (BatchNormalization layers stay frozen)" if kinds <= STAYS_FROZEN_KINDS else ""
        asked = ", ".join(config.unfreeze) or f"the top {config.unfreeze_top}"
        raise ConvasError(f"fine-tuning's second phase would unfreeze nothing: {asked} covers no frozen "
                          f"layer with weights{why}; name frozen layers or groups, or raise the number "
                          f"of top layers to unfreeze")
    return names


def _has_layer(model: Any, name: str) -> bool:
    try:
        model.get_layer(name)
    except ValueError:
        return False
    return True


def output_channels(model: Any) -> int | None:
    """The last axis of the model's (first) output: classes, labels, targets or channels."""
    outputs = getattr(model, "outputs", None) or []
    if not outputs:
        return None
    last = outputs[0].shape[-1]
    return int(last) if last is not None else None


def task_training_data(data: TrainingData, task: Task, config: TrainingConfig, classes: int | None,
                       validation: bool = False, pixel_range: PixelRange = PixelRange.UNIT) -> TrainingData:
    """``data`` as ``task`` trains on it: a dataset split of another task than classification
    goes through :func:`engine.task_data.task_data`; other training data is already prepared."""
    from .datasets import Split

    if not isinstance(data, Split) or task is Task.CLASSIFICATION:
        return data  # a split feeds classification as it is
    from .task_data import task_data

    loss = config.loss or spec(task).default_loss
    # Validation noise is fixed (a denoiser is judged on the same noisy inputs every epoch).
    seed = config.seed + 1 if validation else config.seed
    return task_data(data, task, loss=loss, classes=classes, noise_stddev=config.noise_stddev, seed=seed,
                     pixel_range=pixel_range)


def infer_model_task(model: Any, data: TrainingData) -> Task:
    """The task of ``model`` trained on ``data`` when nobody said: :func:`engine.tasks.infer_task`
    with the model's output and what the data's targets look like (a dataset split's ``y``)."""
    from .tasks import OutputShape

    try:
        activation, _units = output_activation(model)
    except ConvasError:  # several outputs: classification, as before tasks (its loss is given)
        return Task.CLASSIFICATION
    io = OutputShape(tuple(model.inputs[0].shape[1:]), tuple(model.outputs[0].shape[1:]), activation)
    return infer_task(io, _target_kind(data))


def _check_targets(task: Task, data: TrainingData) -> None:
    """:class:`ConvasError` (with a fix, :func:`engine.tasks.task_problem`) when a split's class
    numbers or masks cannot train ``task``; float targets are left to the caller's checks
    (:func:`engine.data_source.dataset_problems`), since their kind is not certain from values."""
    from .tasks import task_problem

    kind = _target_kind(data)
    if kind in (TargetKind.CLASS, TargetKind.MASK):
        problem = task_problem(task, kind)
        if problem is not None:
            raise ConvasError(problem)


def _target_kind(data: TrainingData) -> TargetKind | None:
    """What ``data``'s targets are, guessed from a split's ``y`` (None when it has none to read)."""
    import numpy as np

    if getattr(data, "mask_paths", None) is not None:  # masks in files, decoded as it trains
        return TargetKind.MASK
    y = getattr(data, "y", None)
    if not isinstance(y, np.ndarray) or y.size == 0:
        return None
    if np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
        return TargetKind.CLASS if y.ndim == 1 else TargetKind.MASK if y.ndim >= 3 else TargetKind.MULTI_HOT
    if y.ndim == 2 and np.isin(y, (0.0, 1.0)).all():
        return TargetKind.MULTI_HOT
    return TargetKind.VALUES


_WATCHER_CLASS: type | None = None


def _watcher_class() -> type:
    """The Keras callback class of :func:`train`, made on first use so that importing this module
    does not import Keras."""
    global _WATCHER_CLASS
    if _WATCHER_CLASS is not None:
        return _WATCHER_CLASS
    import keras

    base = keras.callbacks.Callback

    class Watcher(base):  # type: ignore[misc, valid-type]
        def __init__(self, reporter: Reporter, config: TrainingConfig, batches: int,
                     samples: int, monitor: str) -> None:
            super().__init__()
            self.reporter, self.config, self.batches = reporter, config, batches
            self.samples, self.monitor = samples, monitor
            self.fed: list[Any] = []  # the training and validation data, for files they skipped
            self.history: dict[str, list[float]] = {}
            self.epochs_run = 0
            self.stop_reason: str | None = None
            self.user_stopped = False
            self.nan = False
            self.best = math.inf
            self.best_epoch = -1
            self.best_weights: list[Any] | None = None
            self.epoch = 0
            self.started = 0.0
            self.train_time = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch
            self.started, self.train_time = time.perf_counter(), 0.0

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            self.train_time = time.perf_counter() - self.started
            self.reporter.on_batch(self.epoch, batch, self.batches, logs)
            loss = logs.get("loss")
            if loss is not None and not math.isfinite(loss):
                self._nan_stop(loss, batch)
                return
            if self.reporter.should_pause():
                self.reporter.on_message(MessageKind.PAUSED, "training paused")
                while self.reporter.should_pause() and not self.reporter.should_stop():
                    time.sleep(PAUSE_POLL_S)
                if not self.reporter.should_stop():
                    self.reporter.on_message(MessageKind.RESUMED, "training resumed")
                self.started = time.perf_counter() - self.train_time  # a pause is not training time
            if self.reporter.should_stop():
                self.user_stopped = True
                self.stop_reason = (f"stopped on request at epoch {self.epoch + 1}, batch {batch + 1}")
                self.model.stop_training = True

        def _nan_stop(self, loss: float, batch: int) -> None:
            lr = self._lr()
            what = "NaN" if math.isnan(loss) else "infinite"
            self.nan = True
            self.stop_reason = (f"the loss became {what} at epoch {self.epoch + 1}, batch {batch + 1}; "
                                f"lower the learning rate (now {lr:g}), e.g. to "
                                f"{suggested_learning_rate(lr):g}")
            self.model.stop_training = True

        def _lr(self) -> float:
            return float(self.model.optimizer.learning_rate.numpy())

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.user_stopped or self.nan:
                return  # an unfinished epoch: its logs describe part of it only
            logs = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
            logs["lr"] = self._lr()
            seconds = self.train_time or (time.perf_counter() - self.started)
            logs["samples_per_s"] = self.samples / seconds if seconds > 0 else 0.0
            for key, value in logs.items():
                self.history.setdefault(key, [math.nan] * self.epochs_run).append(value)
            for values in self.history.values():
                if len(values) < self.epochs_run + 1:
                    values.append(math.nan)
            self.epochs_run += 1
            value = logs.get(self.monitor)
            if self.config.keep_best_weights and value is not None and value < self.best:
                self.best, self.best_epoch = value, epoch
                self.best_weights = self.model.get_weights()
            self.reporter.on_epoch(epoch, logs)
            self.report_skipped()

        def report_skipped(self) -> None:
            """Name the image files the pipeline could not decode during the epoch (issue 7:
            the user is told which files were left out); they are left out of later epochs."""
            from .image_pipeline import take_skipped

            for data in self.fed:
                split = getattr(data, "split", data)
                if getattr(split, "is_lazy", False):
                    text = take_skipped(split)
                    if text:
                        self.reporter.on_message(MessageKind.WARNING, text)

        def restore_best(self) -> bool:
            """Put back the best weights unless training was stopped on request (then the weights
            trained so far are kept) or the best epoch was the last. True if it restored."""
            if (self.user_stopped or self.best_weights is None
                    or (self.best_epoch == self.epochs_run - 1 and not self.nan)):
                return False
            self.model.set_weights(self.best_weights)
            return True

    _WATCHER_CLASS = Watcher
    return Watcher


# --------------------------------------------------------------------------------------------
# Logs

def write_csv_log(history: dict[str, list[float]], path: str | os.PathLike[str]) -> None:
    """Write ``history`` as Keras's ``CSVLogger`` would (an ``epoch`` column counting from 0, then
    the log names sorted; "NA" for a missing value), atomically (:mod:`engine.atomic`): a reader
    never sees half a file. A file that cannot be written is a :class:`ConvasError`."""
    from .atomic import replace_atomically

    keys = sorted(history)
    rows = max((len(v) for v in history.values()), default=0)

    def fill(tmp: Path) -> None:
        with open(tmp, "x", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["epoch"] + keys, dialect=csv.excel)
            writer.writeheader()
            for epoch in range(rows):
                row: dict[str, Any] = {"epoch": epoch}
                for key in keys:
                    values = history[key]
                    value = values[epoch] if epoch < len(values) else None
                    row[key] = "NA" if value is None or (isinstance(value, float) and math.isnan(value)) \
                        else value
                writer.writerow(row)

    replace_atomically(Path(path), fill, Path(path).name)
