"""Where a run trains: one device, every local GPU, or a cluster of workers (``tf.distribute``).

Convas does not write its own distribution layer. :class:`Distribution` says which
``tf.distribute`` strategy a run uses and, for a cluster, which :class:`Cluster` of workers (from
``TF_CONFIG``, Slurm, ``--workers``, or ``--local-workers``); :func:`engine.training.train` takes
it and runs its own training step under the strategy (Keras 3's ``model.fit`` fails under
``MultiWorkerMirroredStrategy``: keras-team/keras#20585, tensorflow/tensorflow#72388).
:class:`Placement` is what a run ended up on, for the progress output, the log and the saved
model's metadata. No TensorFlow is imported at module level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import ConvasError


class Strategy(StrEnum):
    """The ``--distribute`` choices."""

    NONE = "none"                # the default device (Keras's own fit loop)
    MIRRORED = "mirrored"        # tf.distribute.MirroredStrategy over local devices
    MULTIWORKER = "multiworker"  # tf.distribute.MultiWorkerMirroredStrategy over a cluster


class ClusterSource(StrEnum):
    """Where a cluster's description came from (named in messages and metadata)."""

    TF_CONFIG = "TF_CONFIG"
    SLURM = "slurm"
    FLAGS = "--workers"
    LOCAL = "--local-workers"


@dataclass(frozen=True)
class Cluster:
    """The workers of a multi-worker run, as ``host:port`` addresses, and which one this process
    is. Worker 0 is the chief: it alone writes the model, the log and the progress output."""

    workers: tuple[str, ...]
    index: int
    source: ClusterSource = ClusterSource.FLAGS

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def size(self) -> int:
        return len(self.workers)

    def name(self, index: int) -> str:
        """``worker 1 (10.0.0.2:2222)``: a worker as messages name it."""
        return f"worker {index} ({self.workers[index]})" if 0 <= index < len(self.workers) else f"worker {index}"


@dataclass(frozen=True)
class Distribution:
    """How :func:`engine.training.train` spreads a run. ``devices`` (mirrored) names the local
    devices (empty: every GPU, else the CPU). ``cluster`` is required for multiworker.
    ``scale_lr``: multiply the learning rate by the number of replicas (linear scaling).
    ``checkpoint_dir``: per-epoch checkpoints there (``BackupAndRestore`` semantics: a rerun
    resumes from the last completed epoch; removed when the run completes); None: none.
    ``timeout_s``: how long a worker waits for the others in one step before it gives up."""

    strategy: Strategy = Strategy.NONE
    devices: tuple[str, ...] = ()
    cluster: Cluster | None = None
    scale_lr: bool = False
    checkpoint_dir: Path | None = None
    timeout_s: float = 60.0

    @property
    def is_chief(self) -> bool:
        return self.cluster is None or self.cluster.is_chief


@dataclass(frozen=True)
class Placement:
    """What a run trained on: the strategy, how many workers and replicas, and the batch each
    replica got (the global batch is ``--batch-size``)."""

    strategy: Strategy
    workers: int
    replicas: int
    global_batch: int
    devices: tuple[str, ...] = ()

    @property
    def per_replica_batch(self) -> int:
        return max(1, self.global_batch // max(1, self.replicas))

    def describe(self) -> str:
        """``mirrored over 2 replicas (1 worker), batch 64 = 32 per replica``."""
        if self.strategy is Strategy.NONE:
            return f"one device, batch {self.global_batch}"
        workers = f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        return (f"{self.strategy.value} over {self.replicas} replica{'s' if self.replicas != 1 else ''} "
                f"({workers}), batch {self.global_batch} = {self.per_replica_batch} per replica")

    def metadata(self) -> dict[str, Any]:
        """The saved model's metadata entry (``convas.json``)."""
        return {"distribute": {"strategy": self.strategy.value, "workers": self.workers,
                               "replicas": self.replicas, "global_batch": self.global_batch,
                               "per_replica_batch": self.per_replica_batch}}


class WorkerLost(ConvasError):
    """Another worker stopped answering mid-run (it crashed, was killed, or its machine went
    away). ``workers`` are their indices, when TensorFlow's error names them."""

    def __init__(self, message: str, workers: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.workers = workers


_TASK = re.compile(r"/job:worker/(?:replica:\d+/)?task:(\d+)")


def lost_tasks(text: str, own: int | None = None) -> tuple[int, ...]:
    """The worker indices TensorFlow's error ``text`` names as unhealthy (``/job:worker/…/task:1``),
    sorted, without ``own`` (this process, which the error also names as the reporter)."""
    found = {int(m) for m in _TASK.findall(text)}
    found.discard(own if own is not None else -1)
    return tuple(sorted(found))
