"""Convas's training step under a ``tf.distribute`` strategy: :func:`engine.training.train`'s loop
when a run is mirrored over local devices or spread over a cluster of workers.

Keras 3's ``model.fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585,
tensorflow/tensorflow#72388), and so does ``strategy.run(model.train_step)``, so this module
writes the one step TensorFlow's own guides write: the model, its optimizer and its metrics live
under ``strategy.scope()``; each replica computes its per-sample losses (``reduction=None``) and
averages them over the *global* batch, so the gradients the optimizer sums across replicas are
the gradients of one device on the whole batch; Keras metric objects accumulate per replica and
are read once, aggregated. Everything around the step is :func:`engine.training.train`'s own:
the :class:`Watcher` callback (reporter, NaN guard, best weights), early stopping and learning-
rate reduction run through ``keras.callbacks.CallbackList`` and ``model.stop_training``, so both
paths report, stop and log alike.

Every worker must take the same decisions after the same step, or the others wait in a
collective until it times out: the chief's stop and pause requests travel as a small tensor
all-reduced with every step (:class:`SharedFlags`); everything the callbacks read (loss, metrics)
is already aggregated, so the NaN guard and early stopping agree everywhere.

Per-epoch checkpoints (:class:`EpochCheckpoint`) follow Keras's ``BackupAndRestore``: the chief
writes to the checkpoint folder, the other workers to temporary folders they remove; a rerun
restores the last completed epoch and continues. TensorFlow is imported inside functions only.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .distribute import Distribution, Placement, Strategy, WorkerLost, lost_tasks
from .errors import ConvasError

if TYPE_CHECKING:
    from .training import Reporter

# The history and best-epoch record the chief keeps beside its checkpoint.
STATE_FILE = "convas_state.json"
BEST_WEIGHTS_FILE = "best_weights.npz"
STATE_VERSION = 1
# Names in TensorFlow's errors that mean another worker went away mid-collective.
_LOST_WORDS = ("unhealthy", "stopped sending heartbeats", "failed to connect", "connection reset",
               "socket closed", "task has been restarted")
# The mirrored strategies this process made, by their devices: TensorFlow numbers collective
# operations per strategy, so a second strategy over the same devices would reuse the numbers of
# the first one's (cached with other shapes) and fail; a window that trains twice reuses one.
_MIRRORED: dict[tuple[str, ...], Any] = {}


# --------------------------------------------------------------------------------------------
# The strategy

def make_strategy(distribution: Distribution) -> Any:
    """The ``tf.distribute`` strategy ``distribution`` asks for. Mirrored: the named devices
    (``CPU:0``, ``GPU:1``; several CPU devices are split from the one CPU with
    :func:`split_cpu`), else every local GPU (:class:`ConvasError` when there is none).
    Multi-worker: the cluster's workers, this process at ``cluster.index``, collectives timing
    out after ``distribution.timeout_s``. A multi-worker strategy must be made before any other
    TensorFlow operation runs in the process (TensorFlow's rule), hence a launcher may make it
    early and hand it to :func:`engine.training.train`."""
    import tensorflow as tf

    if distribution.strategy is Strategy.MIRRORED:
        devices = [normal_device(d) for d in distribution.devices]
        cpus = [d for d in devices if d.startswith("/cpu:")]
        if len(cpus) > 1:
            split_cpu(max(int(d.rsplit(":", 1)[1]) for d in cpus) + 1)
        if not devices:
            gpus = tf.config.list_logical_devices("GPU")
            if not gpus:
                raise ConvasError("no GPU found; mirrored training needs GPUs, or name CPU devices with "
                                  "--devices (e.g. --devices CPU:0,CPU:1 to try it on this computer)")
            devices = [normal_device(d.name) for d in gpus]
        known = {normal_device(d.name) for d in tf.config.list_logical_devices()}
        missing = [d for d in devices if d not in known]
        if missing:
            have = ", ".join(sorted(d.lstrip("/").upper() for d in known)) or "none"
            raise ConvasError(f"no device {', '.join(d.lstrip('/').upper() for d in missing)} on this "
                              f"computer (it has {have}); name existing devices with --devices")
        key = tuple(devices)
        if key not in _MIRRORED:
            _MIRRORED[key] = tf.distribute.MirroredStrategy(devices)
        return _MIRRORED[key]
    if distribution.strategy is Strategy.MULTIWORKER:
        cluster = distribution.cluster
        if cluster is None:
            raise ConvasError("multi-worker training needs a cluster of workers: set TF_CONFIG, use "
                              "--cluster slurm, --workers HOST:PORT,... with --worker-index, or "
                              "--local-workers N")
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec({"worker": list(cluster.workers)}), task_type="worker",
            task_id=cluster.index, rpc_layer="grpc")
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=float(distribution.timeout_s))
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver,
                                                         communication_options=options)
    raise ConvasError(f"no tf.distribute strategy for --distribute {distribution.strategy.value}")


def normal_device(name: str) -> str:
    """``CPU:0``, ``cpu:0``, ``/device:CPU:0`` or ``/job:localhost/replica:0/task:0/device:CPU:0``
    as ``/cpu:0``: one spelling to compare devices by."""
    text = name.strip().lower()
    text = text.rsplit("device:", 1)[-1].lstrip("/")
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "gpu") or not index.isdigit():
        raise ConvasError(f"{name!r} is not a device name; write CPU:0, GPU:1, ...")
    return f"/{kind}:{int(index)}"


def split_cpu(count: int) -> None:
    """Make the CPU appear as ``count`` logical devices (``CPU:0`` ... ``CPU:{count-1}``), so that
    mirrored training can be tried and tested on a computer without GPUs. TensorFlow allows this
    only before it initialises its devices; later, :class:`ConvasError` unless the CPU is split
    that way already."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    if not cpus:
        raise ConvasError("TensorFlow sees no CPU to split into devices")
    current = tf.config.get_logical_device_configuration(cpus[0]) or []
    if len(current) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as exc:
        have = len(tf.config.list_logical_devices("CPU"))
        raise ConvasError(f"cannot split the CPU into {count} devices: TensorFlow set up its devices "
                          f"already (with {have} CPU device(s)); choose the devices before anything else "
                          f"runs TensorFlow in this process (e.g. start a fresh `convas train "
                          f"--distribute mirrored --devices ...`)") from exc


def placement(strategy: Any, distribution: Distribution | None, global_batch: int) -> Placement:
    """Where a run trains: one device without a strategy, else the strategy's replicas."""
    if strategy is None or distribution is None or distribution.strategy is Strategy.NONE:
        return Placement(Strategy.NONE, workers=1, replicas=1, global_batch=global_batch)
    workers = distribution.cluster.size if distribution.cluster is not None else 1
    extended = getattr(strategy, "extended", None)
    devices = tuple(str(d) for d in getattr(extended, "worker_devices", ()) or ())
    return Placement(distribution.strategy, workers=workers, replicas=int(strategy.num_replicas_in_sync),
                     global_batch=global_batch, devices=devices)


def model_in_scope(model: Any, strategy: Any) -> Any:
    """``model`` with its variables made under ``strategy`` (as mirrored variables): the model
    itself when they are, else a copy rebuilt from its config inside the scope with its weights and
    trainable flags (a model built outside the scope cannot be trained by the strategy)."""
    import keras

    if all(strategy.extended.variable_created_in_scope(v.value if hasattr(v, "value") else v)
           for v in model.weights):
        return model
    with strategy.scope():
        try:
            copy = keras.models.clone_model(model)
        except Exception as exc:
            raise ConvasError(f"cannot spread this model over devices: Keras could not rebuild it "
                              f"({exc})") from exc
        for source, target in zip(model.layers, copy.layers, strict=True):
            target.trainable = source.trainable
        copy.set_weights(model.get_weights())
    return copy


# --------------------------------------------------------------------------------------------
# Loss and metrics, as model.compile would make them

def per_sample_loss(loss: Any) -> Any:
    """The Keras loss object for ``loss`` (what :func:`engine.tasks.keras_loss` gives: a name or a
    loss object) with ``reduction=None``: one value per sample (or per pixel), averaged by the
    caller over the global batch."""
    import keras

    try:
        found = keras.losses.get(loss)
    except (ValueError, TypeError) as exc:
        raise ConvasError(f"unknown loss {loss!r}; choose a Keras loss name") from exc
    if isinstance(found, keras.losses.Loss):
        config = {**found.get_config(), "reduction": None}
        return type(found).from_config(config)
    if callable(found):  # Keras's loss functions reduce over the last axis only
        return found
    raise ConvasError(f"unknown loss {loss!r}; choose a Keras loss name")


def metric_object(identifier: Any, y_true: Any, y_pred: Any) -> Any:
    """A Keras metric object for one entry of :func:`engine.tasks.keras_metrics`, chosen and named
    as ``model.compile`` chooses it (Keras's ``compile_utils.get_metric``): ``"accuracy"`` is
    binary accuracy for one output unit, sparse categorical accuracy for class numbers, else
    categorical accuracy; a name keeps its own spelling as its log name. ``y_true`` and
    ``y_pred`` are shapes (or anything with ``.shape``) of one batch."""
    import keras

    true_shape, pred_shape = _shape(y_true), _shape(y_pred)
    if isinstance(identifier, keras.metrics.Metric):
        return identifier  # made by engine.tasks.keras_metrics, under the caller's scope
    if str(identifier).lower() in ("accuracy", "acc"):
        binary = pred_shape[-1] == 1
        sparse = len(true_shape) < len(pred_shape) or (true_shape[-1] == 1 and pred_shape[-1] > 1)
        cls = (keras.metrics.BinaryAccuracy if binary else keras.metrics.SparseCategoricalAccuracy if sparse
               else keras.metrics.CategoricalAccuracy)
        return cls(name=str(identifier))
    try:
        found = keras.metrics.get(identifier)
    except (ValueError, TypeError) as exc:
        raise ConvasError(f"unknown metric {identifier!r}; choose a Keras metric name") from exc
    if isinstance(found, type):
        found = found()
    if not isinstance(found, keras.metrics.Metric):
        found = keras.metrics.MeanMetricWrapper(found, name=str(identifier))
    found.name = str(identifier) if isinstance(identifier, str) else found.name
    return found


def _shape(value: Any) -> tuple[Any, ...]:
    shape = getattr(value, "shape", value)
    return tuple(shape) if shape is not None else ()


# --------------------------------------------------------------------------------------------
# Stop and pause, the same on every worker

class SharedFlags:
    """The reporter the Watcher sees under a strategy: everything passes through to ``reporter``
    except ``should_stop``/``should_pause``, which answer what the *chief's* reporter said at the
    last step (all-reduced with the step, so every worker stops after the same step). While
    paused, each ``should_pause`` asks again with a tiny all-reduce, so that every worker waits
    together and no collective times out."""

    def __init__(self, reporter: Reporter, strategy: Any, is_chief: bool) -> None:
        self.reporter, self.strategy, self.is_chief = reporter, strategy, is_chief
        self.stop, self.pause = False, False
        self._poll_fn: Any = None

    # Reporter methods that pass through (only the chief's reporter writes anything).
    def on_batch(self, epoch: int, batch: int, batches: int | None, logs: dict[str, float]) -> None:
        self.reporter.on_batch(epoch, batch, batches, logs)

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        self.reporter.on_epoch(epoch, logs)

    def on_message(self, kind: Any, text: str) -> None:
        self.reporter.on_message(kind, text)

    def should_stop(self) -> bool:
        return self.stop

    def should_pause(self) -> bool:
        if self.pause:  # paused: ask the chief again (every worker does, in step)
            self.update(self._all_reduce(self.local()))
        return self.pause

    def local(self) -> Any:
        """This worker's [stop, pause] request: the chief's reporter's, zeros elsewhere."""
        import tensorflow as tf

        if not self.is_chief:
            return tf.zeros([2], tf.float32)
        return tf.constant([float(self.reporter.should_stop()), float(self.reporter.should_pause())],
                           tf.float32)

    def update(self, reduced: Any) -> None:
        values = reduced.numpy()
        self.stop, self.pause = bool(values[0] > 0.5), bool(values[1] > 0.5)

    def _all_reduce(self, flags: Any) -> Any:
        if self._poll_fn is None:
            import tensorflow as tf

            strategy = self.strategy

            @tf.function
            def poll(value: Any) -> Any:
                per_replica = strategy.run(lambda v: tf.identity(v), args=(value,))
                return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

            self._poll_fn = poll
        return self._poll_fn(flags)


# --------------------------------------------------------------------------------------------
# Checkpoints

@dataclass
class ResumeState:
    """What the chief recorded with its last checkpoint: the epochs completed, the history so far,
    fine-tuning's first-phase length, and the best epoch the Watcher kept."""

    epochs_done: int
    history: dict[str, list[float]] = field(default_factory=dict)
    phase_epochs: int | None = None
    best: float = math.inf
    best_epoch: int = -1


class EpochCheckpoint:
    """Per-epoch checkpoints of the model, its optimizer and the epoch (``tf.train.Checkpoint``,
    one kept), with Keras's ``BackupAndRestore`` layout: the chief writes to ``folder`` (and the
    history beside it), every other worker to a temporary folder removed after each save (saving
    takes all workers, as mirrored variables are read collectively)."""

    def __init__(self, folder: Path, is_chief: bool, worker: int) -> None:
        self.folder, self.is_chief, self.worker = Path(folder), is_chief, worker

    def state(self) -> ResumeState | None:
        """The chief's record of the last completed epoch, or None when there is no checkpoint."""
        path = self.folder / STATE_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            history = {str(k): [float(v) if v is not None else math.nan for v in values]
                       for k, values in data["history"].items()}
            best = data.get("best")
            return ResumeState(int(data["epochs_done"]), history,
                               None if data.get("phase_epochs") is None else int(data["phase_epochs"]),
                               math.inf if best is None else float(best), int(data.get("best_epoch", -1)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConvasError(f"the checkpoint in {self.folder} is unreadable ({exc}); remove the folder "
                              f"to start over") from exc

    def restore(self, model: Any, epochs_done: int, with_optimizer: bool = True) -> None:
        """Put the checkpoint's weights (and, ``with_optimizer``, the optimizer's state: not when
        fine-tuning's second phase starts with a fresh optimizer) into ``model``, built and
        compiled as when it was saved; :class:`ConvasError` when they do not fit (the design
        changed)."""
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(str(self.folder))
        if latest is None:
            raise ConvasError(f"the checkpoint in {self.folder} records epoch {epochs_done} but holds no "
                              f"weights; remove the folder to start over")
        epoch = tf.Variable(0, dtype=tf.int64)
        checkpoint = self._checkpoint(model, epoch, with_optimizer)
        try:
            status = checkpoint.restore(latest)
            status.expect_partial()  # the optimizer's state is left out when its phase changed
            status.assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConvasError(f"the checkpoint in {self.folder} belongs to another model (the design or "
                              f"the training settings changed since it was written: {first[:200]}); "
                              f"remove the folder to start over, or restore the design") from exc

    def best_weights(self) -> list[Any] | None:
        """The best epoch's weights the chief saved beside its checkpoint, if any."""
        import numpy as np

        path = self.folder / BEST_WEIGHTS_FILE
        if not path.is_file():
            return None
        with np.load(path) as data:
            return [data[f"w{i}"] for i in range(len(data.files))]

    def save(self, model: Any, state: ResumeState, best_weights: list[Any] | None,
             best_changed: bool) -> None:
        """Checkpoint the epoch every worker just completed (all workers call this together)."""
        import tensorflow as tf

        folder = self.folder if self.is_chief else Path(tempfile.mkdtemp(prefix=f"convas-worker{self.worker}-"))
        try:
            checkpoint = self._checkpoint(model, tf.Variable(state.epochs_done, dtype=tf.int64), True)
            manager = tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=1)
            try:
                manager.save(checkpoint_number=state.epochs_done)
            except (OSError, tf.errors.OpError) as exc:
                raise ConvasError(f"could not write the checkpoint to {folder}: {exc}; free space or "
                                  f"choose another checkpoint folder") from exc
            if self.is_chief:
                if best_changed and best_weights is not None:
                    self._write_best(best_weights)
                self._write_state(state)
        finally:
            if not self.is_chief:
                shutil.rmtree(folder, ignore_errors=True)

    def mark_phase_two(self, phase_epochs: int) -> None:
        """Record that fine-tuning's second phase began after ``phase_epochs`` epochs, so that a
        rerun resumes in it (chief only; nothing to do before the first checkpoint)."""
        if not self.is_chief:
            return
        state = self.state()
        if state is not None and state.phase_epochs != phase_epochs:
            state.phase_epochs = phase_epochs
            self._write_state(state)

    def remove(self) -> None:
        """Delete the checkpoint folder (the chief's; a run that completed needs it no more)."""
        if self.is_chief:
            shutil.rmtree(self.folder, ignore_errors=True)

    @staticmethod
    def _checkpoint(model: Any, epoch: Any, with_optimizer: bool) -> Any:
        """The checkpoint's objects: the model's and the optimizer's variables by their Keras
        paths (not the model's object graph: Keras files a layer's variables under different
        lists once it is unfrozen, so a graph saved in fine-tuning's first phase would not match
        in the second), and the epoch."""
        import tensorflow as tf

        def by_path(variables: Any) -> dict[str, Any]:
            return {f"{i:04d}:{getattr(v, 'path', v.name)}": getattr(v, "value", v)
                    for i, v in enumerate(variables)}

        weights = {getattr(v, "path", v.name): getattr(v, "value", v) for v in model.weights}
        parts: dict[str, Any] = {"weights": weights, "epoch": epoch}
        if with_optimizer:
            parts["optimizer"] = by_path(model.optimizer.variables)
        return tf.train.Checkpoint(**parts)

    def _write_state(self, state: ResumeState) -> None:
        from .atomic import write_bytes_atomically

        def clean(value: float) -> float | None:
            return None if not math.isfinite(value) else value

        data = {"version": STATE_VERSION, "epochs_done": state.epochs_done,
                "history": {k: [clean(v) for v in values] for k, values in state.history.items()},
                "phase_epochs": state.phase_epochs, "best": clean(state.best), "best_epoch": state.best_epoch}
        write_bytes_atomically(self.folder / STATE_FILE, json.dumps(data, indent=1).encode("utf-8"))

    def _write_best(self, weights: list[Any]) -> None:
        import numpy as np

        from .atomic import replace_atomically

        def fill(tmp: Path) -> None:
            with open(tmp, "xb") as handle:
                np.savez(handle, **{f"w{i}": w for i, w in enumerate(weights)})

        replace_atomically(self.folder / BEST_WEIGHTS_FILE, fill, "the best weights")


# --------------------------------------------------------------------------------------------
# The loop

@dataclass
class DistributedLoop:
    """One run's training under ``strategy``: the datasets distributed, the per-sample loss, the
    metric objects, and the compiled step functions (remade when the trainable weights change,
    i.e. for fine-tuning's second phase). :func:`engine.training.train` calls :meth:`fit` once per
    phase, with its Watcher and callbacks."""

    strategy: Any
    distribution: Distribution
    flags: SharedFlags
    train_ds: Any
    val_ds: Any
    loss: Any
    checkpoint: EpochCheckpoint | None = None
    metrics: list[Any] = field(default_factory=list)
    loss_tracker: Any = None
    _loss_object: Any = None
    _train_step: Any = None
    _test_step: Any = None
    _model: Any = None
    _dist_train: Any = None
    _dist_val: Any = None
    phase_epochs: int | None = None
    checkpointed_epochs: int = 0
    _pending: ResumeState | None = None  # a checkpoint read by resume(), restored by restore()

    def prepare(self, model: Any, task: Any, classes: int | None, extras: tuple[str, ...]) -> None:
        """Make the loss, the metrics (:func:`engine.tasks.keras_metrics`, named and chosen as
        ``compile`` would) and the distributed datasets, under the strategy's scope."""
        import keras
        import tensorflow as tf

        from .tasks import keras_loss, keras_metrics

        y_spec = self.train_ds.element_spec[1]
        pred_shape = tuple(model.outputs[0].shape)
        self._loss_object = per_sample_loss(keras_loss(task, self.loss))
        with self.strategy.scope():
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.metrics = [metric_object(m, y_spec.shape, pred_shape)
                            for m in keras_metrics(task, classes, extras, self.loss)]
        self._dist_train = self.strategy.experimental_distribute_dataset(_sharded(self.train_ds, tf))
        self._dist_val = (self.strategy.experimental_distribute_dataset(_sharded(self.val_ds, tf))
                          if self.val_ds is not None else None)

    def resume(self, watcher: Any, config: Any, reporter: Reporter) -> tuple[int, int | None]:
        """Read the checkpoint (every worker must find the same epoch in it): the epochs it
        completed, and fine-tuning's first-phase length when the run had reached the second
        phase. ``watcher`` takes the history and the best epoch so far; :meth:`restore` puts
        the weights back once the model is compiled for its phase."""
        from .training import MessageKind

        assert self.checkpoint is not None
        state = self.checkpoint.state()
        start = state.epochs_done if state is not None else 0
        cluster = self.distribution.cluster
        try:
            agree = cluster is None or cluster.size < 2 or self.all_agree(start)
        except Exception as exc:
            lost = self.lost_worker(exc, start)
            if lost is not None:
                raise lost from exc
            raise
        if not agree:
            raise ConvasError(f"the workers found different checkpoints in {self.checkpoint.folder} "
                              f"(this one: {start} epoch(s) done); put the checkpoint folder on storage "
                              f"every worker reads, or remove it on every machine to start over")
        if state is None:
            return 0, None
        watcher.history = {key: list(values) for key, values in state.history.items()}
        watcher.epochs_run = start
        if config.keep_best_weights and state.best_epoch >= 0:
            watcher.best, watcher.best_epoch = state.best, state.best_epoch
            watcher.best_weights = self.checkpoint.best_weights()
        phase = state.phase_epochs
        if config.two_phases and phase is None and start >= config.head_epochs:
            phase = start
        self.phase_epochs = phase if config.two_phases else None
        self.checkpointed_epochs = start
        self._pending = state
        reporter.on_message(MessageKind.INFO, f"resuming from epoch {start + 1} (checkpoint in "
                            f"{self.checkpoint.folder})")
        return start, self.phase_epochs

    def restore(self, model: Any, with_optimizer: bool) -> None:
        """Restore the checkpoint :meth:`resume` read, if any, into the compiled ``model``."""
        if self._pending is None or self.checkpoint is None:
            return
        state, self._pending = self._pending, None
        self.checkpoint.restore(model, state.epochs_done, with_optimizer)

    def begin_phase_two(self, phase_epochs: int) -> None:
        """Fine-tuning's second phase begins: checkpoints record it from now on."""
        self.phase_epochs = phase_epochs
        if self.checkpoint is not None:
            self.checkpoint.mark_phase_two(phase_epochs)

    def build_optimizer(self, model: Any) -> None:
        """Create the (freshly compiled) optimizer's variables under the scope, for the weights
        trainable now, and forget step functions traced for other weights."""
        if not model.optimizer.built:  # a model compiled the same way before keeps its state
            with self.strategy.scope():
                model.optimizer.build(model.trainable_variables)
        self._train_step = self._test_step = None

    # -- steps ------------------------------------------------------------------------------
    def _replica_loss(self, model: Any, y: Any, y_pred: Any) -> tuple[Any, Any]:
        """(this replica's share of the global mean loss, its per-sample losses incl. regularisation)."""
        import tensorflow as tf

        values = self._loss_object(y, y_pred)
        values = tf.cast(values, tf.float32)
        count = tf.shape(y_pred)[0]
        if values.shape.rank == 0:  # a loss that reduces over the batch itself (Dice without axis)
            values = tf.fill([count], values)
        elif values.shape.rank > 1:  # per pixel: each sample's mean, as Keras's mean over all values
            values = tf.reduce_mean(tf.reshape(values, [count, -1]), axis=1)
        context = tf.distribute.get_replica_context()
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(count, tf.float32))
        share = tf.math.divide_no_nan(tf.reduce_sum(values), total)
        extra = model.losses
        if extra:
            regular = tf.add_n([tf.cast(v, tf.float32) for v in extra])
            share += regular / float(self.strategy.num_replicas_in_sync)
            values = values + regular
        return share, values

    def _make_steps(self, model: Any) -> None:
        import tensorflow as tf

        strategy, metrics, tracker = self.strategy, self.metrics, self.loss_tracker

        def train_replica(batch: Any, flags: Any) -> Any:
            x, y = batch[0], batch[1]
            with tf.GradientTape() as tape:
                y_pred = model(x, training=True)
                share, values = self._replica_loss(model, y, y_pred)
            variables = model.trainable_variables
            gradients = tape.gradient(share, variables)
            model.optimizer.apply_gradients(zip(gradients, variables, strict=True))
            tracker.update_state(values)
            for metric in metrics:
                metric.update_state(y, y_pred)
            return tf.identity(flags)  # a per-replica value, summed across replicas

        def test_replica(batch: Any) -> None:
            x, y = batch[0], batch[1]
            y_pred = model(x, training=False)
            _share, values = self._replica_loss(model, y, y_pred)
            tracker.update_state(values)
            for metric in metrics:
                metric.update_state(y, y_pred)

        # Signatures with an unknown batch size: a partial last batch (or validation's) reuses the
        # traced step instead of tracing another (seconds each under a strategy).
        @tf.function(input_signature=[self._dist_train.element_spec, tf.TensorSpec([2], tf.float32)])
        def train_step(batch: Any, flags: Any) -> Any:
            per_replica = strategy.run(train_replica, args=(batch, flags))
            # The running results, read (aggregated) in the graph: one fetch per step.
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None), self._result_tensors()

        def test_step(batch: Any) -> None:
            strategy.run(test_replica, args=(batch,))

        if self._dist_val is not None:
            test_step = tf.function(test_step, input_signature=[self._dist_val.element_spec])

        self._train_step, self._test_step, self._model = train_step, test_step, model

    def _result_tensors(self) -> dict[str, Any]:
        """The loss and metrics so far, as ``model.fit`` logs them (aggregated over replicas)."""
        logs = {"loss": self.loss_tracker.result()}
        for metric in self.metrics:
            value = metric.result()
            if isinstance(value, dict):
                logs.update(value)
            else:
                logs[metric.name] = value
        return logs

    def _results(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{key}": float(value) for key, value in self._result_tensors().items()}

    def _reset(self) -> None:
        self.loss_tracker.reset_state()
        for metric in self.metrics:
            metric.reset_state()

    # -- epochs -----------------------------------------------------------------------------
    def fit(self, model: Any, epochs: int, initial_epoch: int, callbacks: list[Any], watcher: Any) -> None:
        """Train ``model`` from ``initial_epoch`` up to ``epochs`` as ``model.fit`` would, driving
        ``callbacks`` (the Watcher last) and honouring ``model.stop_training``; checkpoint each
        completed epoch. TensorFlow's errors about a lost worker become :class:`WorkerLost`."""
        import keras

        if self._train_step is None or self._model is not model:
            self._make_steps(model)
        callback_list = keras.callbacks.CallbackList(callbacks, model=model, add_history=False,
                                                     add_progbar=False, epochs=epochs, verbose=0)
        model.stop_training = False
        epoch = initial_epoch
        try:
            callback_list.on_train_begin()
            for epoch in range(initial_epoch, epochs):
                self._reset()
                callback_list.on_epoch_begin(epoch)
                for index, batch in enumerate(self._dist_train):
                    callback_list.on_train_batch_begin(index)
                    flags, logs = self._train_step(batch, self.flags.local())
                    self.flags.update(flags)
                    callback_list.on_train_batch_end(index, {k: float(v) for k, v in logs.items()})
                    if model.stop_training:
                        break
                if model.stop_training:
                    # Stopped within the epoch (a stop request, the NaN guard): its logs describe
                    # part of it, which the Watcher ignores and early stopping must not judge.
                    break
                logs = self._results()
                if self._dist_val is not None:
                    self._reset()
                    for batch in self._dist_val:
                        self._test_step(batch)
                    logs.update(self._results("val_"))
                logs["learning_rate"] = float(model.optimizer.learning_rate.numpy())
                best_before = watcher.best_epoch
                epochs_before = watcher.epochs_run
                callback_list.on_epoch_end(epoch, logs)
                if self.checkpoint is not None and watcher.epochs_run > epochs_before:
                    self.checkpoint.save(model, ResumeState(watcher.epochs_run, watcher.history,
                                                            self.phase_epochs, watcher.best,
                                                            watcher.best_epoch),
                                         watcher.best_weights, watcher.best_epoch != best_before)
                    self.checkpointed_epochs = watcher.epochs_run
                if model.stop_training:
                    break
            callback_list.on_train_end()
        except Exception as exc:
            lost = self.lost_worker(exc, epoch)
            if lost is not None:
                raise lost from exc
            raise

    def lost_worker(self, exc: BaseException, epoch: int) -> WorkerLost | None:
        """The :class:`WorkerLost` that TensorFlow's ``exc`` means, or None when it is another
        error (which then passes through)."""
        import tensorflow as tf

        cluster = self.distribution.cluster
        if cluster is None or cluster.size < 2 or not isinstance(exc, tf.errors.OpError):
            return None  # one process: no worker to lose
        lost_kinds = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                      tf.errors.CancelledError)
        text = str(exc)
        if not isinstance(exc, lost_kinds) and not any(w in text.lower() for w in _LOST_WORDS):
            return None
        return worker_lost(text, self.distribution, epoch, self.checkpointed_epochs,
                           self.checkpoint.folder if self.checkpoint is not None else None)

    def all_agree(self, value: int) -> bool:
        """Whether every worker holds the same ``value`` (one small all-reduce of value, value²
        and 1: their spread is zero only when all are equal)."""
        import tensorflow as tf

        strategy = self.strategy

        @tf.function
        def total(v: Any) -> Any:
            per_replica = strategy.run(lambda t: tf.identity(t), args=(v,))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        sums = total(tf.constant([float(value), float(value) ** 2, 1.0], tf.float64)).numpy()
        mean = sums[0] / sums[2]
        return abs(sums[1] / sums[2] - mean * mean) < 1e-6 and abs(mean - value) < 1e-6


def worker_lost(text: str, distribution: Distribution, epoch: int, checkpointed: int,
                folder: Path | None) -> WorkerLost:
    """The :class:`WorkerLost` for TensorFlow's error ``text`` during ``epoch`` (from 0): the lost
    workers named (``cluster.name``), what is saved and how to go on."""
    cluster = distribution.cluster
    own = cluster.index if cluster is not None else None
    lost = lost_tasks(text, own)
    if cluster is not None and lost:
        who = ", ".join(cluster.name(i) for i in lost)
        what = f"lost {who}" if len(lost) == 1 else f"lost workers {who}"
    else:
        what = "lost contact with another worker"
    if folder is not None and checkpointed > 0:
        saved = (f"the last completed epoch ({checkpointed}) is checkpointed in {folder}; rerun the same "
                 f"command to resume from epoch {checkpointed + 1}")
    elif folder is not None:
        saved = "no epoch had completed, so nothing is checkpointed; rerun the same command to start over"
    else:
        saved = "nothing is checkpointed (no checkpoint folder); rerun the same command to start over"
    return WorkerLost(f"{what} during epoch {epoch + 1} (it stopped answering: crashed, killed or "
                      f"unreachable); {saved}", workers=lost)


def _sharded(dataset: Any, tf: Any) -> Any:
    """``dataset`` with ``tf.data`` auto-sharding by data (every worker reads the same, equally
    shuffled, stream and keeps its share of each global batch), unless it is already this
    worker's share: dataset splits are sharded before anything is read (``Split.shard``: each
    worker decodes only its own files or array rows), and marked so."""
    policy = tf.data.experimental.AutoShardPolicy
    if dataset.options().experimental_distribute.auto_shard_policy == policy.OFF:
        return dataset  # already this worker's share (engine.training shards dataset splits)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy.DATA
    return dataset.with_options(options)
