"""Where a run trains: one device, every local GPU, or a cluster of workers (``tf.distribute``).

Convas does not write its own distribution layer. :class:`Distribution` says which
``tf.distribute`` strategy a run uses and, for a cluster, which :class:`Cluster` of workers (from
``TF_CONFIG``, Slurm, ``--workers``, or ``--local-workers``); :func:`engine.training.train` takes
it and runs its own training step under the strategy (Keras 3's ``model.fit`` fails under
``MultiWorkerMirroredStrategy``: keras-team/keras#20585, tensorflow/tensorflow#72388).
:class:`Placement` is what a run ended up on, for the progress output, the log and the saved
model's metadata.

The cluster is resolved and checked before anything heavy is loaded: :func:`cluster_from_tf_config`,
:func:`cluster_from_slurm`, :func:`cluster_from_flags` (each a :class:`ClusterError` that says what
is wrong and how to fix it), :func:`check_own_port`; then :func:`rendezvous` waits for every
worker with a time limit, because TensorFlow itself waits for a missing worker forever. No
TensorFlow is imported at module level.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
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



# --------------------------------------------------------------------------------------------
# Resolving the cluster: TF_CONFIG, Slurm, --workers

class ClusterError(ConvasError):
    """A cluster description that cannot be used (malformed, inconsistent, a port in use, a peer
    that never joined); found before training starts. The message says how to fix it."""


TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
                     '"task": {"type": "worker", "index": 0}}')
DEFAULT_SLURM_PORT = 8888  # the first port SlurmClusterResolver gives a node's tasks
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-_]*[A-Za-z0-9])?)$")


def parse_address(text: str, what: str = "a worker") -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) as (host, port); a :class:`ClusterError` naming
    ``text`` and ``what`` it was when the host is empty or malformed or the port not 1–65535."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    example = "give host:port, e.g. 10.0.0.2:2222 or localhost:2222"
    if not sep or not host:
        raise ClusterError(f"{what} {text!r} is not host:port; {example}")
    if not _HOST.match(host):
        raise ClusterError(f"{what} {text!r} has a malformed host {host!r}; {example}")
    try:
        port = int(port_text)
    except ValueError:
        raise ClusterError(f"{what} {text!r} has a port {port_text!r} that is not a number; {example}") from None
    if not 1 <= port <= 65535:
        raise ClusterError(f"{what} {text!r} has port {port}, outside 1-65535; {example}")
    return host, port


def _host_key(host: str) -> str:
    """Hosts that name this machine compare equal (``localhost`` and ``127.0.0.1``)."""
    host = host.strip("[]").lower()
    return "loopback" if host in ("localhost", "127.0.0.1", "::1") else host


def check_workers(workers: Sequence[str], source: ClusterSource) -> tuple[str, ...]:
    """``workers`` checked (each ``host:port``, no address twice, at least one): as a tuple."""
    cleaned = tuple(w.strip() for w in workers)
    if not cleaned:
        raise ClusterError(f"the cluster from {source.value} lists no workers")
    seen: dict[tuple[str, int], int] = {}
    for i, address in enumerate(cleaned):
        host, port = parse_address(address, f"worker {i} from {source.value}")
        key = (_host_key(host), port)
        if key in seen:
            raise ClusterError(f"workers {seen[key]} and {i} from {source.value} are both {address}; "
                               "every worker needs its own host:port")
        seen[key] = i
    return cleaned


def _check_index(index: int, workers: tuple[str, ...], source: ClusterSource, how: str) -> None:
    if not 0 <= index < len(workers):
        raise ClusterError(f"{how} {index} is out of range: the cluster from {source.value} has "
                           f"{len(workers)} worker(s), numbered 0 to {len(workers) - 1}")


def cluster_from_flags(workers: str | Sequence[str], index: int | None,
                       source: ClusterSource = ClusterSource.FLAGS) -> Cluster:
    """The cluster ``--workers host:port,… --worker-index I`` describes."""
    items = workers.split(",") if isinstance(workers, str) else list(workers)
    checked = check_workers([w for w in items if w.strip()], source)
    if index is None:
        raise ClusterError("--workers needs --worker-index I too: which of the workers this process is "
                           "(0 is the chief; run the same command on every machine with its own index)")
    _check_index(index, checked, source, "--worker-index")
    return Cluster(checked, index, source)


def cluster_from_tf_config(text: str) -> Cluster:
    """The cluster a ``TF_CONFIG`` value describes, in Keras's convention: ``cluster.worker`` (and
    an optional ``cluster.chief``, listed first: it becomes worker 0) and ``task.type``/``index``.
    Parameter servers and evaluators are not supported (Convas trains with
    ``MultiWorkerMirroredStrategy``, where every worker holds the whole model)."""
    example = f"e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}'"
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClusterError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}); {example}") from None
    if not isinstance(config, dict):
        raise ClusterError(f"TF_CONFIG must be a JSON object with \"cluster\" and \"task\"; {example}")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ClusterError(f"TF_CONFIG has no \"cluster\" object listing the workers; {example}")
    if not isinstance(task, dict):
        raise ClusterError(f"TF_CONFIG has no \"task\" object saying which worker this is; {example}")
    unsupported = sorted(set(cluster) - {"worker", "chief"})
    if unsupported:
        raise ClusterError(f"TF_CONFIG's cluster has {', '.join(repr(k) for k in unsupported)} jobs; Convas "
                           "trains with MultiWorkerMirroredStrategy, which uses only \"worker\" (and an "
                           f"optional \"chief\") tasks; remove the others; {example}")
    chief, workers = cluster.get("chief", []), cluster.get("worker", [])
    for name, value in (("chief", chief), ("worker", workers)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ClusterError(f"TF_CONFIG's cluster.{name} must be a list of \"host:port\" strings; {example}")
    if len(chief) > 1:
        raise ClusterError(f"TF_CONFIG's cluster.chief lists {len(chief)} tasks; there can be only one "
                           f"chief; {example}")
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in ("worker", "chief"):
        kind = f"{task_type!r}" if task_type is not None else "missing"
        hint = (" (parameter servers and evaluators are not supported: Convas trains with "
                "MultiWorkerMirroredStrategy)" if task_type in ("ps", "evaluator") else "")
        raise ClusterError(f"TF_CONFIG's task.type is {kind}; it must be \"worker\" or \"chief\"{hint}; "
                           f"{example}")
    if not isinstance(index, int) or isinstance(index, bool):
        raise ClusterError(f"TF_CONFIG's task.index must be a whole number, not {index!r}; {example}")
    addresses = check_workers([*chief, *workers], ClusterSource.TF_CONFIG)
    listed = chief if task_type == "chief" else workers
    if not 0 <= index < len(listed):
        raise ClusterError(f"TF_CONFIG's task.index {index} is out of range: cluster.{task_type} has "
                           f"{len(listed)} task(s)" + (f", numbered 0 to {len(listed) - 1}" if listed else "")
                           + f"; {example}")
    own = index if task_type == "chief" else len(chief) + index
    return Cluster(addresses, own, ClusterSource.TF_CONFIG)


def cluster_from_slurm(port_base: int = DEFAULT_SLURM_PORT, environ: Mapping[str, str] | None = None) -> Cluster:
    """The cluster of the Slurm job step this process runs in (one worker per task, as
    ``tf.distribute.cluster_resolver.SlurmClusterResolver`` numbers them: task 0 is the chief),
    ports from ``port_base`` up on each node."""
    env = os.environ if environ is None else environ
    needed = ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST", "SLURM_STEP_TASKS_PER_NODE")
    missing = [name for name in needed if not env.get(name)]
    if missing:
        raise ClusterError(f"--cluster slurm needs Slurm's job-step variables ({', '.join(missing)} "
                           "not set): run convas inside a job step, e.g. `srun --ntasks=2 convas train "
                           "... --distribute multiworker --cluster slurm`")
    if not 1 <= port_base <= 65535:
        raise ClusterError(f"the Slurm port base {port_base} is outside 1-65535")
    from .quiet_tf import importing_tensorflow

    saved = dict(os.environ)
    try:
        if environ is not None:
            os.environ.update({k: v for k, v in environ.items() if k.startswith("SLURM_")})
        with importing_tensorflow():
            import tensorflow as tf
        tasks = int(env["SLURM_STEP_NUM_TASKS"])
        # The resolver hands out a node's ports only alongside GPUs (one range per GPU): claim one
        # per task and let Slurm decide which GPUs a task sees (--gpus-per-task, or one task per
        # node with every GPU), rather than the resolver rewriting CUDA_VISIBLE_DEVICES.
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(
            jobs={"worker": tasks}, port_base=port_base, gpus_per_node=tasks, gpus_per_task=1,
            auto_set_gpu=False)
        spec = resolver.cluster_spec().as_dict()
        index = int(resolver.task_id)
    except ConvasError:
        raise
    except Exception as exc:  # noqa: BLE001 - the resolver's errors are RuntimeError/ValueError/KeyError
        raise ClusterError(f"cannot read the Slurm job step's nodes: {exc}; run convas inside a job step "
                           "started with srun") from None
    finally:
        if environ is not None:
            os.environ.clear()
            os.environ.update(saved)
    workers = spec.get("worker", [])
    addresses = check_workers(workers, ClusterSource.SLURM)
    _check_index(index, addresses, ClusterSource.SLURM, "the Slurm task id")
    return Cluster(addresses, index, ClusterSource.SLURM)


# --------------------------------------------------------------------------------------------
# Before TensorFlow joins: this worker's port, and peers that never come

def _bind_probe(port: int) -> socket.socket:
    """A socket bound to ``port`` on every interface, as TensorFlow's server will bind it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if os.name == "nt":
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", socket.SO_REUSEADDR), 1)
    else:  # a port left in TIME_WAIT by an earlier run is free for a listening server
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("", port))
    except OSError:
        sock.close()
        raise
    return sock


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now."""
    try:
        _bind_probe(port).close()
    except OSError:
        return False
    return True


def check_own_port(cluster: Cluster) -> None:
    """This worker's port can be listened on; else a :class:`ClusterError` naming it (before
    TensorFlow would fail with a less helpful message, or another worker would wait for it)."""
    address = cluster.workers[cluster.index]
    _, port = parse_address(address)
    try:
        _bind_probe(port).close()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        who = ("another program (maybe an earlier convas run still running: "
               f"`lsof -i :{port}` or `ss -ltnp | grep {port}` shows which)")
        raise ClusterError(f"{cluster.name(cluster.index)} cannot listen on port {port}: {reason}; "
                           f"it is used by {who}; stop it, or give this worker another port") from None


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on loopback now (chosen by the system)."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
            ports.append(int(sock.getsockname()[1]))
    finally:
        for sock in sockets:
            sock.close()
    return ports


JOIN_GREETING = "convas-join"


def _cluster_token(workers: Sequence[str]) -> str:
    """A short fingerprint of the worker list: workers started with different lists differ."""
    import hashlib

    return hashlib.sha256(",".join(workers).encode()).hexdigest()[:16]


def rendezvous(cluster: Cluster, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
    """Wait until every worker of ``cluster`` has started, before TensorFlow joins them.

    Why: ``MultiWorkerMirroredStrategy`` waits for a missing worker forever (measured: still
    waiting after 3 minutes, deaf to SIGTERM, and holding Python's GIL, so no watchdog thread
    can even run). So each worker first listens on its own port with a plain socket, greets
    every other worker (``convas-join INDEX TOKEN``) and waits to be greeted by each; a worker
    keeps listening until it has heard from all, so none closes before a late peer reaches it.
    Then the port is free again for TensorFlow's server. A :class:`ClusterError` names the
    workers that did not join within ``timeout_s``, and a worker started with another list."""
    import select

    token = _cluster_token(cluster.workers)
    greeting = f"{JOIN_GREETING} {cluster.index} {token}\n".encode()
    peers = [i for i in range(cluster.size) if i != cluster.index]
    reached: set[int] = set()
    heard: set[int] = set()
    problems: dict[int, str] = {}
    _, port = parse_address(cluster.workers[cluster.index])
    try:
        listener = _bind_probe(port)
    except OSError:
        check_own_port(cluster)  # says which port and why
        raise
    deadline = clock() + timeout_s
    with listener:
        listener.listen(max(8, len(peers)))
        while set(peers) - reached or set(peers) - heard:
            for i in sorted(set(peers) - reached):
                host, peer_port = parse_address(cluster.workers[i])
                try:
                    with socket.create_connection((host.strip("[]"), peer_port), timeout=1.0) as conn:
                        conn.sendall(greeting)
                    reached.add(i)
                except OSError as exc:
                    problems[i] = exc.strerror or str(exc) or type(exc).__name__
            ready, _, _ = select.select([listener], [], [], 0.2)
            if ready:
                try:
                    heard.update(_read_greeting(listener, cluster, token))
                except _OtherList as exc:
                    _greet(cluster, exc.index, greeting)  # so that it learns why too
                    raise ClusterError(str(exc)) from None
            if clock() >= deadline and (set(peers) - reached or set(peers) - heard):
                raise ClusterError(_join_failure(cluster, sorted((set(peers) - reached) | (set(peers) - heard)),
                                                 timeout_s, problems))


class _OtherList(Exception):
    """A greeting from a worker started with another list of workers (its ``index``)."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def _greet(cluster: Cluster, index: int, greeting: bytes) -> None:
    """Best effort: send ``greeting`` to worker ``index`` (it may be gone already)."""
    if not 0 <= index < cluster.size or index == cluster.index:
        return
    host, port = parse_address(cluster.workers[index])
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=1.0) as conn:
            conn.sendall(greeting)
    except OSError:
        pass


def _read_greeting(listener: socket.socket, cluster: Cluster, token: str) -> set[int]:
    """The worker index an incoming greeting names (none for anything else that connects)."""
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(2.0)
        data = b""
        try:
            while b"\n" not in data and len(data) < 256:
                chunk = conn.recv(256)
                if not chunk:
                    break
                data += chunk
        except OSError:
            return set()
    words = data.decode("ascii", "replace").split()
    if len(words) != 3 or words[0] != JOIN_GREETING or not words[1].isdigit():
        return set()  # not a convas worker: ignore it
    index = int(words[1])
    if words[2] != token or not 0 <= index < cluster.size:
        raise _OtherList(f"worker {index} was started with another list of workers than this one "
                           f"({', '.join(cluster.workers)}); give every worker the same --workers (or "
                           "TF_CONFIG), each with its own index", index)
    return {index}


def _join_failure(cluster: Cluster, missing: list[int], timeout_s: float, problems: dict[int, str]) -> str:
    names = ", ".join(cluster.name(i) for i in missing)
    reasons = {problems[i] for i in missing if i in problems}
    why = f" (last attempt: {'; '.join(sorted(reasons))})" if reasons else ""
    indices = ", ".join(str(i) for i in missing)
    return (f"{names} did not join within {timeout_s:g} s{why}; start convas train there with the same "
            f"arguments and --worker-index {indices}, check the host and port and that no firewall blocks "
            "them, or wait longer with --connect-timeout")
