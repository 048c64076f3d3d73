"""A cluster run from the window: ``convas train`` as a child process whose JSON progress feeds the
same signals as an in-process run.

``tf.distribute.MultiWorkerMirroredStrategy`` must be created before any other TensorFlow
operation in its process, and every worker is a process of its own, so the window never trains
a cluster itself: :class:`ClusterRun` writes the design snapshot (with the weights the run starts
from and the training settings, the automatic task resolved) to a temporary ``.convas``, starts
the chief (worker 0) as ``convas train … --progress json`` with ``--local-workers N`` or
``--workers … --worker-index 0``, and reads its one-JSON-object-per-line output on a
:mod:`gui.workers` thread, re-emitting each line as :class:`~gui.training.worker.TrainingWorker`
would. Stop sends SIGINT to the chief, which stops every worker after the same batch and saves;
the saved model is then loaded as the run's result, so evaluation works as after any run. The
chief runs in its own process group, is asked to stop (then killed) when the window goes, and
on Linux dies with the window even when the window is killed. Widget-free; no TensorFlow until
the trained model is loaded.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

from PySide6.QtCore import Signal

from engine.design import Design
from engine.distribute import Strategy
from engine.errors import ConvasError
from engine.training import ClusterKind, MessageKind, RunOn, TrainingConfig, TrainingResult, TrainingSettings
from engine.weights import WeightsKind, WeightsSource

from ..workers import TaskOwner, TaskState

ROOT = Path(__file__).resolve().parents[2]   # holds the engine package: the chief imports it
DEFAULT_PORT = 2222
EXIT_INTERRUPTED = 130                        # engine.cli's status after a stop that saved the model
STDERR_KEPT = 40                              # lines of the chief's stderr kept to explain a failure
KILL_GRACE_S = 10.0                           # after SIGTERM, before SIGKILL, when the window goes
ABANDON_GRACE_S = 15.0                        # closing: after the stop request, before SIGTERM
KILL_AFTER_TERM_S = 5.0
# The chief is engine.cli's main, run so that it needs nothing beside the engine package.
CHIEF_CODE = "import sys; from engine.cli import main; sys.exit(main())"


# --- addresses and commands (pure) ---------------------------------------------------------------

def parse_address(text: str) -> str:
    """``host:port`` checked (a port from 1 to 65535, a host without spaces); ConvasError saying
    what is wrong otherwise. ``[::1]:2222`` is accepted for IPv6."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port:
        raise ConvasError(f"{text!r} is not host:port (for example 10.0.0.2:{DEFAULT_PORT})")
    if any(c.isspace() for c in host) or "," in host:
        raise ConvasError(f"{text!r}: the host name cannot contain spaces or commas")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConvasError(f"{text!r}: the port must be a number from 1 to 65535")
    return f"{host}:{int(port)}"


def parse_addresses(text: str) -> tuple[str, ...]:
    """Addresses separated by commas or spaces, each :func:`parse_address`-checked."""
    parts = [p for p in text.replace(",", " ").split() if p]
    return tuple(parse_address(p) for p in parts)


def cluster_problem(run_on: RunOn) -> str | None:
    """Why a cluster of machines cannot start as ``run_on`` says (with the fix), or None."""
    if run_on.strategy is not Strategy.MULTIWORKER or run_on.cluster is not ClusterKind.MACHINES:
        return None
    if len(run_on.workers) < 2:
        return "a cluster of machines needs this computer's address and at least one other machine's"
    try:
        workers = [parse_address(w) for w in run_on.workers]
    except ConvasError as exc:
        return str(exc)
    for i, address in enumerate(workers):
        if address in workers[:i]:
            return f"the address {address} is listed twice; each worker needs its own host:port"
    return None


def worker_arguments(run_on: RunOn, index: int = 0) -> list[str]:
    """The ``convas train`` flags that make a process worker ``index`` of ``run_on``'s cluster."""
    if run_on.cluster is ClusterKind.LOCAL:
        return ["--local-workers", str(run_on.local_workers)]
    return ["--workers", ",".join(run_on.workers), "--worker-index", str(index)]


def remote_commands(run_on: RunOn, project: str, out: str) -> list[str]:
    """The command to run on each other machine of a cluster of machines (worker 1, 2, …), with
    the project ``project`` copied there: ``convas train NAME.convas --out NAME.keras --workers
    … --worker-index I`` (only the chief saves the model; every worker is given ``--out``)."""
    if run_on.cluster is not ClusterKind.MACHINES:
        return []
    return [shlex.join(["convas", "train", project, "--out", out, *worker_arguments(run_on, i)])
            for i in range(1, len(run_on.workers))]


def chief_command(project: Path, out: Path, run_on: RunOn) -> list[str]:
    """The chief's command line: ``convas train`` on ``project``, saving to ``out``, with JSON
    progress on stdout for this window."""
    return [sys.executable, "-c", CHIEF_CODE, "train", str(project), "--out", str(out),
            "--progress", "json", *worker_arguments(run_on, 0)]


# --- the child processes: never outliving the window --------------------------------------------

_CHILDREN: set[subprocess.Popen] = set()
_CHILDREN_LOCK = threading.Lock()


def _parent_death_signal() -> Any:
    """Linux's ``prctl``, looked up now: between fork and exec the child may only call it (an
    import there could wait forever on a lock another thread of the window held at the fork)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _parent_death_signal()
_PR_SET_PDEATHSIG, _SIGTERM = 1, int(signal.SIGTERM)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the chief gets SIGTERM when the window's process dies, even by SIGKILL."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, _SIGTERM)


def end_children(grace_s: float = KILL_GRACE_S) -> None:
    """Stop every chief still running (and its process group, the local workers): SIGTERM, then
    SIGKILL after ``grace_s``. Called when the application quits, and at exit."""
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for child in children:
        if child.poll() is None:
            _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(max(0.0, deadline - time.monotonic()))
        if child.poll() is None:
            _signal_group(child, signal.SIGKILL)


def _detached() -> dict[str, Any]:
    """Popen arguments that give the chief a process group of its own (so that it and its local
    workers can be ended together, and a Ctrl+C in the window's terminal is not theirs)."""
    if os.name == "nt":  # pragma: no cover - Windows: CTRL_BREAK_EVENT reaches the new group
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
    return {"start_new_session": True,
            "preexec_fn": _die_with_parent if _PRCTL is not None else None}


def _ask_to_stop(process: subprocess.Popen) -> None:
    """The chief's "stop after this batch and save": SIGINT (CTRL_BREAK_EVENT on Windows)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, OSError):
        process.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGINT)  # type: ignore[attr-defined]


def _sweep_group(child: subprocess.Popen, wait_s: float = KILL_AFTER_TERM_S) -> None:
    """After the chief has ended: a worker of its process group still there ``wait_s`` seconds
    later (the chief ends its local workers itself; this is the safety net) is killed."""
    if os.name != "posix":
        return
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.killpg(child.pid, 0)  # anyone left in the group?
        except (ProcessLookupError, PermissionError, OSError):
            return
        time.sleep(0.1)
    _signal_group(child, signal.SIGKILL)


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        if os.name == "posix":
            os.killpg(child.pid, signum)
        elif child.poll() is None:
            child.kill()


atexit.register(end_children, 2.0)


# --- the run ----------------------------------------------------------------------------------

class ClusterRun(TaskOwner):
    """Trains ``design`` on a cluster through ``convas train`` once :meth:`start` is called; the
    same signals as :class:`~gui.training.worker.TrainingWorker` (exactly one of ``sigFinished``
    and ``sigFailed``, then ``sigEnded``, all on the GUI thread). Pausing is not offered: every
    worker waits on the others in each step, so a paused cluster would time out."""

    sigPhase = Signal(str)
    sigBatch = Signal(int, int, int, object)
    sigEpoch = Signal(int, object)
    sigMessage = Signal(object, str)

    can_pause = False

    def __init__(self, design: Design, settings: TrainingSettings, config: TrainingConfig,
                 weights: WeightsSource | None = None) -> None:
        super().__init__()
        self.design, self.config = design, config
        self.settings = dataclasses.replace(settings, config=config, distribution=RunOn())
        self.run_on = settings.distribution
        self.weights = weights if weights is not None and weights.kind in (WeightsKind.IMPORTED,
                                                                           WeightsKind.SAVED) else None
        self.load_model = True        # False: the window is closing, nobody will look at the model
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stop_sent = False
        self._started = False         # the chief's first batch is near: its stderr is no longer news
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_KEPT)
        self.own_task(self._run, name="convas-cluster-run", failure="Cluster training failed")

    # --- called from the GUI thread ---------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the chief to stop after the current batch (SIGINT): it stops every worker and saves."""
        super().request_stop()
        with self._lock:
            process, asked = self.process, self._stop_sent
            self._stop_sent = True
        if process is not None and not asked:  # once: a second interrupt may mean "abort" to it
            _ask_to_stop(process)

    def set_paused(self, paused: bool) -> None:
        """Not offered for cluster runs (see the class)."""

    def abandon(self, grace_s: float = ABANDON_GRACE_S) -> None:
        """The window is closing: stop, do not load the model afterwards, and when the chief has
        not ended ``grace_s`` seconds later (a worker that hangs), end it and its workers
        (SIGTERM: without saving; SIGKILL a few seconds after that)."""
        self.load_model = False
        self.request_stop()
        timer = threading.Timer(grace_s, self._end_now)
        timer.daemon = True
        timer.start()

    def _end_now(self) -> None:
        with self._lock:
            process = self.process
        if process is None or process.poll() is not None:
            return
        _signal_group(process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(KILL_AFTER_TERM_S)
        if process.poll() is None:
            _signal_group(process, signal.SIGKILL)

    # --- the run (worker thread) --------------------------------------------------------------

    def _run(self, state: TaskState) -> TrainingResult:
        folder = Path(tempfile.mkdtemp(prefix="convas-cluster-"))
        try:
            return self._run_in(folder, state)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _run_in(self, folder: Path, state: TaskState) -> TrainingResult:
        from engine.project_file import save_project

        project, out = folder / "design.convas", folder / "trained.keras"
        self.sigPhase.emit("Writing the design for the workers…")
        save_project(project, self.design, self.settings.to_dict(), weights=self.weights)
        if state.is_cancelled():
            return TrainingResult(model=None, stopped_early=True, stop_reason="stopped before training began")
        where = (f"{self.run_on.local_workers} workers on this computer" if self.run_on.cluster is ClusterKind.LOCAL
                 else f"{len(self.run_on.workers)} machines")
        self.sigPhase.emit(f"Starting {where}…")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONIOENCODING"] = "utf-8"  # as read below (Windows would write its code page)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        process = subprocess.Popen(
            chief_command(project, out, self.run_on), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", bufsize=1, env=env,
            **_detached())
        with _CHILDREN_LOCK:
            _CHILDREN.add(process)
        with self._lock:
            self.process = process
            stop_now = self._stop_sent
        if stop_now:  # Stop was pressed while the file was written
            _ask_to_stop(process)
        reader = threading.Thread(target=self._read_stderr, args=(process.stderr,), daemon=True,
                                  name="convas-cluster-stderr")
        reader.start()
        if self.load_model and "keras" not in sys.modules:
            # The trained model is loaded here at the end: import Keras while the workers start,
            # so that the model shows as soon as the chief has saved it.
            threading.Thread(target=_import_keras, name="convas-keras-import").start()
        try:
            outcome = self._read_progress(process)
            status = process.wait()
        finally:
            if process.poll() is None:
                _signal_group(process, signal.SIGKILL)
                process.wait()
            _sweep_group(process)
            reader.join(5)
            with _CHILDREN_LOCK:
                _CHILDREN.discard(process)
        return self._result(outcome, status, out)

    def _read_stderr(self, stream: IO[str] | None) -> None:
        """Keep the chief's last lines for a failure; until training starts, show each as what is
        happening ("joining the cluster as worker 0 …; waiting up to 60 s for the others")."""
        if stream is None:
            return
        for line in stream:
            line = line.rstrip()
            if not line:
                continue
            self.stderr_tail.append(line)
            if not self._started and not line.startswith("convas"):
                self.sigPhase.emit(line[:1].upper() + line[1:])

    def _read_progress(self, process: subprocess.Popen) -> _Outcome:
        """Re-emit the chief's JSON lines until its stdout closes; what they said of the end."""
        outcome = _Outcome()
        assert process.stdout is not None
        for line in process.stdout:
            line = line.strip()
            if not line.startswith("{"):
                continue  # not progress (a library's print): the JSON lines are the contract
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                self._dispatch(event, outcome)
        return outcome

    def _dispatch(self, event: dict[str, Any], outcome: _Outcome) -> None:
        kind = event.get("event")
        if kind == "batch":
            outcome.batches = int(event.get("batches") or outcome.batches or 0)
            self.sigBatch.emit(int(event.get("epoch", 0)), int(event.get("batch", 0)), outcome.batches,
                               _logs(event.get("logs")))
        elif kind == "epoch":
            logs = _logs(event.get("logs"))
            outcome.epochs += 1
            for key, value in logs.items():
                outcome.history.setdefault(key, []).append(value)
            self.sigEpoch.emit(int(event.get("epoch", 0)), logs)
        elif kind == "message":
            try:
                message_kind = MessageKind(event.get("kind", MessageKind.INFO.value))
            except ValueError:
                message_kind = MessageKind.INFO
            if message_kind is MessageKind.PHASE:
                outcome.phase_epochs = outcome.epochs  # the epochs so far were phase one's
            self.sigMessage.emit(message_kind, str(event.get("text", "")))
        elif kind == "start":
            outcome.started = self._started = True
            if isinstance(event.get("task"), str):
                outcome.task = event["task"]
            text = _placement_text(event.get("placement"))  # the chief says it as a message too
            self.sigPhase.emit(f"Training {text}…" if text else "Training…")
        elif kind == "done":
            outcome.done = event
        elif kind == "error":
            text = str(event.get("text") or "the cluster run failed")
            outcome.error = text.removeprefix("convas: ")

    def _result(self, outcome: _Outcome, status: int, out: Path) -> TrainingResult:
        """The run's result: the chief's saved model loaded, or ConvasError saying why there is none."""
        stopped = self._stop_sent
        if not self.load_model:  # the window is closing: nobody reads the outcome
            return TrainingResult(model=None, stopped_early=True, stop_reason="the window closed")
        if outcome.error:
            raise ConvasError(outcome.error)
        if not out.is_file():
            if stopped and outcome.epochs == 0 and status in (EXIT_INTERRUPTED, 0, -signal.SIGINT):
                return TrainingResult(model=None, stopped_early=True, stop_reason="stopped before training began")
            raise ConvasError(self._failure_text(status))
        done = outcome.done or {}
        self.sigPhase.emit("Loading the trained model…")
        model = _load_model(out)
        saved = done.get("history")
        history: dict[str, list[float]] = saved if isinstance(saved, dict) else outcome.history
        epochs_run = int(done.get("epochs_run", outcome.epochs) or outcome.epochs)
        stop_reason = done.get("stop_reason")
        if stop_reason is None and stopped:
            stop_reason = "stopped on request"
        task = outcome.task or (self.config.task.value if self.config.task is not None else None)
        result = TrainingResult(model=model, history={str(k): [math.nan if v is None else float(v) for v in vs]
                                                      for k, vs in history.items()},
                                stopped_early=stop_reason is not None or epochs_run < self.config.epochs,
                                stop_reason=stop_reason, epochs_run=epochs_run,
                                restored_epoch=done.get("restored_epoch"),
                                phase_epochs=outcome.phase_epochs)
        if task is not None:
            from engine.tasks import Task

            result.task = Task(task)
        return result

    def _failure_text(self, status: int) -> str:
        """Why the chief ended without a model: its own ``convas: …`` lines, else the status."""
        said = [line.removeprefix("convas: ").removeprefix("error: ") for line in self.stderr_tail
                if line.startswith("convas")]
        if said:
            return "Cluster training failed: " + " ".join(said[-3:])
        if status < 0:
            return f"Cluster training failed: the chief process was killed ({signal.Signals(-status).name})"
        tail = [line for line in self.stderr_tail if line.strip()]
        detail = f": {tail[-1]}" if tail else ""
        return f"Cluster training failed: the chief process ended with status {status}{detail}"


@dataclasses.dataclass
class _Outcome:
    """What the chief's progress said, for the result."""

    started: bool = False
    batches: int = 0
    epochs: int = 0
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    done: dict[str, Any] | None = None
    error: str | None = None
    task: str | None = None
    phase_epochs: int | None = None


def _logs(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    logs: dict[str, float] = {}
    for key, item in value.items():
        with contextlib.suppress(TypeError, ValueError):
            logs[str(key)] = math.nan if item is None else float(item)  # null: NaN or infinite
    return logs


def _placement_text(placement: Any) -> str:
    """``multiworker over 2 replicas (2 workers), batch 64 = 32 per replica`` from the JSON form of
    :class:`engine.distribute.Placement`."""
    if not isinstance(placement, dict):
        return ""
    if isinstance(placement.get("text"), str):
        return str(placement["text"])
    data = placement.get("distribute", placement)
    try:
        from engine.distribute import Placement, Strategy

        return Placement(Strategy(data["strategy"]), int(data["workers"]), int(data["replicas"]),
                         int(data["global_batch"])).describe()
    except (KeyError, TypeError, ValueError):
        return ""


_KERAS_IMPORT = threading.Lock()


def _import_keras() -> None:
    """Import Keras quietly (once, whichever thread comes first; the other waits for it)."""
    from engine.quiet_tf import importing_tensorflow

    with _KERAS_IMPORT, importing_tensorflow():
        import keras  # noqa: F401


def _load_model(path: Path) -> Any:
    """The chief's saved model, compiled when Keras can (the evaluation then reports Keras's own
    loss), else as weights and layers only."""
    _import_keras()
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception:  # noqa: BLE001 - a compile setting Keras cannot restore: the layers still load
        from engine.weights import load_keras_model

        return load_keras_model(path)
