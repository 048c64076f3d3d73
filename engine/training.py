"""Train a design's Keras model, reporting progress to whoever watches (the GUI, the CLI, a test).

The training loop is Keras's own ``model.fit``; a custom callback forwards the per-batch and
per-epoch logs to a :class:`Reporter`, asks it after every batch whether to stop or pause, and
guards against a loss that becomes NaN or infinite. Training settings live in a
:class:`TrainingConfig`, which round-trips through plain dicts so a project file can keep it.

Conventions: ``epoch`` and ``batch`` passed to a reporter count from 0 (as in Keras); messages
written for people count from 1. Keras is imported inside the functions only.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .design import Design
from .errors import ConvasError
from .pixel_range import PixelRange
from .tasks import Task

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
# Losses the auto choice may pick; any other Keras loss name may still be set explicitly.
SPARSE_CCE = "sparse_categorical_crossentropy"
CCE = "categorical_crossentropy"
BCE = "binary_crossentropy"
MSE = "mean_squared_error"
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
        self.metrics = tuple(self.metrics)
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
            values["metrics"] = tuple(metrics)
        return cls(**values)


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

    def to_dict(self) -> dict[str, Any]:
        """The ``training`` object of a ``.convas`` file."""
        return {"dataset": self.dataset, "pixel_range": self.pixel_range.value, **self.config.to_dict()}

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
        return cls(dataset.strip(), TrainingConfig.from_dict(values), pixel_range)

    @classmethod
    def from_saved(cls, data: Any) -> tuple[TrainingSettings, str | None]:
        """Settings from a project file's ``training`` object; the defaults and the reason when
        those are unusable (a file is still worth opening for its design)."""
        try:
            return cls.from_dict(data), None
        except ConvasError as exc:
            return cls(), str(exc)


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
          config: TrainingConfig, reporter: Reporter | None = None, model: Any = None) -> TrainingResult:
    """Train ``model`` (or a new model built from ``design``) on ``data_train``, validating on
    ``data_val`` when given, and report progress to ``reporter``.

    A given model already compiled by an earlier ``train`` with the same optimizer, learning
    rate, loss and metrics keeps its optimizer state; otherwise it is (re)compiled.
    Training stops within one batch of ``reporter.should_stop()`` turning true (the weights
    trained so far are kept), and waits while ``reporter.should_pause()`` is true.
    """
    import keras

    config.validate()
    reporter = reporter or NullReporter()
    if len(data_train) == 0:
        raise ConvasError("there are no training samples")
    keras.utils.set_random_seed(config.seed)
    if model is None:
        if design is None:
            raise ConvasError("give a design or a model to train")
        from .keras_build import build_keras_model
        model = build_keras_model(design)

    train_ds = data_train.as_tf_dataset(config.batch_size, shuffle=True, seed=config.seed)
    val_ds = None
    if data_val is not None and len(data_val) > 0:
        val_ds = data_val.as_tf_dataset(config.batch_size, shuffle=False, seed=config.seed)

    loss = config.loss
    if loss is None:
        activation, units = output_activation(model)
        loss = choose_loss(activation, units, label_kind(train_ds.element_spec, units))
    compile_key = (config.optimizer, float(config.learning_rate), float(config.momentum), loss,
                   tuple(config.metrics))
    if not (getattr(model, "compiled", False) and getattr(model, "_convas_compile_key", None) == compile_key):
        try:
            model.compile(optimizer=make_optimizer(config), loss=loss, metrics=list(config.metrics))
        except Exception as exc:
            raise ConvasError(f"Keras could not prepare the model for training: {exc}") from exc
        model._convas_compile_key = compile_key

    monitor = "val_loss" if val_ds is not None else "loss"
    batches = math.ceil(len(data_train) / config.batch_size)
    watcher = _watcher_class()(reporter, config, batches, len(data_train), monitor)
    callbacks: list[Any] = [watcher]
    if config.early_stopping_patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=config.early_stopping_patience, restore_best_weights=False))
    if config.reduce_lr_patience is not None:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, patience=config.reduce_lr_patience, factor=0.5, verbose=0))
    # The watcher goes last so that epoch logs include what the other callbacks changed (lr).
    callbacks.append(callbacks.pop(0))

    model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=callbacks,
              shuffle=False, verbose=0)  # the dataset is shuffled already

    result = TrainingResult(model=model, history=watcher.history, epochs_run=watcher.epochs_run)
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
