"""``convas train --local-workers N``: a cluster of N worker processes on this machine.

The process the user started becomes a small supervisor (it never imports TensorFlow): it picks
N free loopback ports and starts N ``python -m engine.cli train …`` processes, the same arguments
with ``--local-workers N`` replaced by ``--workers 127.0.0.1:P0,… --worker-index I``. Worker 0,
the chief, writes to this process's stdout and stderr (its progress, its messages, its JSON
lines); the others write nothing unless they fail, and then their output is shown.

Why a supervisor rather than training in this process too: a worker blocked in a collective
operation (TensorFlow's C++ code) cannot be interrupted from Python, and TensorFlow's
multi-worker runtime catches SIGTERM (its preemption notifier) — only SIGKILL reliably ends a
stuck worker, and a process cannot send that to itself and still report. The supervisor can:

- a worker that exits with a failure stops the others within :attr:`LocalCluster.grace_s`
  seconds (the chief may first report the lost worker itself), and the message names it;
- Ctrl+C (SIGINT; CTRL_BREAK on Windows) is passed to the chief, which stops every worker after
  the same batch and saves, as single-machine training does; a second Ctrl+C from a keyboard
  aborts them all;
- no worker outlives the supervisor: they are killed when it exits, and each also ends itself
  when its supervisor disappears (Linux: the parent-death signal; elsewhere
  :func:`watch_launcher`, which polls).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .distribute import Cluster, ClusterSource, free_ports

LAUNCHER_ENV = "CONVAS_LAUNCHER_PID"  # set in each worker: the supervisor's process id
EXIT_WORKER_LOST = 3  # engine.cli's status for a lost worker (kept equal; cli imports it from here)
_FLAGS_WITH_VALUE = ("--local-workers", "--workers", "--worker-index", "--cluster", "--distribute")


def worker_argv(argv: Sequence[str], cluster: Cluster) -> list[str]:
    """``argv`` (``convas`` arguments, ``train`` first) for worker ``cluster.index``: without
    ``--local-workers`` and any cluster flags, with ``--distribute multiworker --workers …
    --worker-index I``."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _FLAGS_WITH_VALUE:
            skip = "=" not in arg
            continue
        kept.append(arg)
    return [*kept, "--distribute", "multiworker", "--workers", ",".join(cluster.workers),
            "--worker-index", str(cluster.index)]


_FOLDER_PREFIX = "convas-workers-"  # + the supervisor's pid: the workers' output files


def remove_stale_folders(folder: str | None = None) -> list[Path]:
    """Remove the output folders of supervisors that no longer run (killed by SIGKILL, which
    leaves no chance to clean up); POSIX only (asking whether a process runs kills it on
    Windows). The folders removed."""
    import shutil

    removed: list[Path] = []
    if os.name != "posix":
        return removed
    for path in Path(folder or tempfile.gettempdir()).glob(f"{_FOLDER_PREFIX}*-*"):
        pid_text = path.name[len(_FOLDER_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except OSError:
            pass  # it runs, as another user
    return removed


def _die_with_parent() -> None:
    """In a child before exec (Linux): be killed when the supervisor dies, however it dies."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # watch_launcher() in the worker covers it


def watch_launcher(status: int = EXIT_WORKER_LOST, interval: float = 0.5) -> None:
    """In a worker started by a supervisor (:data:`LAUNCHER_ENV` set): end this process when the
    supervisor is gone, so that no worker is left behind (a daemon thread; POSIX and Windows)."""
    text = os.environ.get(LAUNCHER_ENV)
    if not text or not text.isdigit():
        return
    launcher = int(text)

    def alive() -> bool:
        if os.name == "posix":
            return os.getppid() == launcher
        try:
            os.kill(launcher, 0)
        except OSError:
            return False
        return True

    def watch() -> None:
        while alive():
            time.sleep(interval)
        os._exit(status)

    threading.Thread(target=watch, name="convas-launcher-watch", daemon=True).start()


@dataclass
class Worker:
    """One started worker: its index, address, process, and (non-chiefs) the file of its output."""

    index: int
    address: str
    process: subprocess.Popen[bytes]
    output: Path | None = None
    handle: IO[bytes] | None = None

    def returncode(self) -> int | None:
        return self.process.poll()

    def output_tail(self, lines: int = 20) -> list[str]:
        if self.output is None:
            return []
        try:
            text = self.output.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if line.strip()][-lines:]


def describe_status(code: int) -> str:
    """``exited with status 2`` / ``was killed by SIGKILL``."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


@dataclass
class LocalCluster:
    """Starts and supervises the workers of a ``--local-workers`` run (see the module's notes).
    ``argv`` are the ``convas`` arguments (``train …``); ``resume_hint`` ends the message about a
    lost worker (where the checkpoints are, that a rerun resumes)."""

    argv: Sequence[str]
    count: int
    resume_hint: str = ""
    grace_s: float = 3.0        # a failed worker: how long the chief may take to report it itself
    finish_s: float = 30.0      # the chief finished: how long the others may take to finish too
    python: str = sys.executable
    stderr: Any = None
    keyboard: Callable[[], bool] = lambda: False
    json_errors: bool = False   # --progress json: a failure the chief could not report is a JSON line
    workers: list[Worker] = field(default_factory=list)
    _interrupts: list[float] = field(default_factory=list)
    _folder: Path | None = None

    def run(self) -> int:
        """Start the workers, wait for them, and return the exit status for the user: the chief's,
        or a failed worker's (:data:`EXIT_WORKER_LOST` when it crashed or was killed)."""
        err = self.stderr or sys.stderr
        previous = self._install_signals()
        try:
            self._start()
            return self._supervise(err)
        finally:
            self._kill_all()
            self._restore_signals(previous)
            self._cleanup()

    # -- starting -----------------------------------------------------------------------------

    def _start(self) -> None:
        ports = free_ports(self.count)
        addresses = tuple(f"127.0.0.1:{p}" for p in ports)
        remove_stale_folders()
        self._folder = Path(tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-"))
        env = {**os.environ, LAUNCHER_ENV: str(os.getpid()), "PYTHONUNBUFFERED": "1"}
        env.pop("TF_CONFIG", None)  # the cluster is --workers; a stale TF_CONFIG must not interfere
        for index in range(self.count):
            cluster = Cluster(addresses, index, ClusterSource.LOCAL)
            command = [self.python, "-m", "engine.cli", *worker_argv(self.argv, cluster)]
            output = handle = None
            if index:
                output = self._folder / f"worker-{index}.txt"
                handle = open(output, "wb")  # noqa: SIM115 - closed in _cleanup
            self.workers.append(Worker(index, addresses[index],
                                       self._popen(command, env, handle), output, handle))

    def _popen(self, command: list[str], env: dict[str, str], output: IO[bytes] | None) -> subprocess.Popen[bytes]:
        root = Path(__file__).resolve().parent.parent  # so that `-m engine.cli` finds this engine
        env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)}
        kwargs: dict[str, Any] = {"env": env, "stdin": subprocess.DEVNULL}
        if output is not None:
            kwargs.update(stdout=output, stderr=subprocess.STDOUT)
        if os.name == "posix":
            # Its own session: a Ctrl+C at the terminal reaches the supervisor only, which
            # passes it to the chief (the chief stops everyone after the same batch).
            kwargs.update(start_new_session=True,
                          preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        else:
            kwargs.update(creationflags=subprocess.CREATE_NEW_PROCESS_GROUP)  # type: ignore[attr-defined]
        return subprocess.Popen(command, **kwargs)

    # -- supervising --------------------------------------------------------------------------

    def _supervise(self, err: Any) -> int:
        chief = self.workers[0]
        failed: Worker | None = None
        deadline: float | None = None
        while True:
            codes = {w.index: w.returncode() for w in self.workers}
            now = time.monotonic()
            if failed is None:  # the chief first: when several have failed, its message is the one
                for worker in self.workers:
                    code = codes[worker.index]
                    if code is not None and (code != 0 and not (worker is chief and code == 130)):
                        failed, deadline = worker, now + self.grace_s
                        break
                if failed is None and codes[0] is not None and deadline is None:
                    deadline = now + self.finish_s  # the chief is done; the others finish the same steps
            if all(code is not None for code in codes.values()):
                break
            if deadline is not None and now >= deadline:
                break
            time.sleep(0.05)
        still = [w for w in self.workers if w.returncode() is None]
        self._kill_all()
        return self._report(failed, still, err)

    def _report(self, failed: Worker | None, stopped: list[Worker], err: Any) -> int:
        status, headline = self._outcome(failed, stopped, err)
        chief_code = self.workers[0].returncode()
        if self.json_errors and (chief_code is None or chief_code < 0):
            # The chief was stopped before it could send its own "error" line: send one for it.
            from .progress import write_event

            write_event(sys.stdout, "error", status=status, text=f"convas: {headline}")
        return status

    def _outcome(self, failed: Worker | None, stopped: list[Worker], err: Any) -> tuple[int, str]:
        """The exit status and the message of a run that ended (said on ``err`` here)."""
        chief = self.workers[0]
        chief_code = chief.returncode()
        cluster = Cluster(tuple(w.address for w in self.workers), 0, ClusterSource.LOCAL)
        if failed is None or failed is chief:
            # The chief has said what happened (on the user's stderr); other workers that did not
            # finish with it were stopped.
            for worker in self.workers[1:]:
                code = worker.returncode()
                if worker in stopped or (code not in (0, None) and failed is None):
                    self._show(worker, err, f"{cluster.name(worker.index)} did not finish with the chief "
                               "and was stopped" if worker in stopped else
                               f"{cluster.name(worker.index)} {describe_status(code or 0)}")
            if chief_code is not None and chief_code >= 0:
                return chief_code, ""
            headline = f"{cluster.name(0)} {describe_status(chief_code or 0)}"
            print(f"convas: {headline}", file=err, flush=True)
            return EXIT_WORKER_LOST, headline
        code = failed.returncode() or 0
        name = cluster.name(failed.index)
        lost = code < 0 or code not in (1, 2)
        if not lost and chief_code == code:
            return code, ""  # every worker refused the same input; the chief has said why
        tail = (f"; {self.resume_hint}" if self.resume_hint else "") if lost else ""
        headline = f"{name} {describe_status(code)}, so the run was stopped{tail}"
        self._show(failed, err, headline)
        if chief_code not in (None, 0, 130) and not lost:
            return chief_code, headline  # the chief failed the same way and has said why
        return (EXIT_WORKER_LOST if lost else code), headline

    def _show(self, worker: Worker, err: Any, headline: str) -> None:
        print(f"convas: {headline}", file=err, flush=True)
        own = [line for line in worker.output_tail() if line.startswith("convas:")]
        for line in own or worker.output_tail(8):
            print(f"  worker {worker.index}: {line}", file=err, flush=True)

    # -- signals and clean-up -----------------------------------------------------------------

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        names = ["SIGINT", "SIGBREAK", "SIGTERM", "SIGHUP"]
        for name in names:
            number = getattr(signal, name, None)
            if number is None:
                continue
            with contextlib.suppress(ValueError, OSError):  # not the main thread: no handlers
                previous[number] = signal.signal(number, self._on_signal)
        return previous

    def _restore_signals(self, previous: dict[int, Any]) -> None:
        for number, handler in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(number, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum not in (signal.SIGINT, getattr(signal, "SIGBREAK", -1)):
            self._kill_all()  # SIGTERM / SIGHUP: end everything now, nothing is saved
            raise SystemExit(128 + signum)
        now = time.monotonic()
        first = self._interrupts[0] if self._interrupts else None
        self._interrupts.append(now)
        if first is not None and now - first <= 1.0:
            return  # the same Ctrl+C delivered twice (uv run forwards it)
        if first is not None and self.keyboard():
            self._kill_all()
            raise KeyboardInterrupt
        if self.workers:
            self._interrupt(self.workers[0])

    def _interrupt(self, worker: Worker) -> None:
        if worker.returncode() is not None:
            return
        try:
            if os.name == "posix":
                worker.process.send_signal(signal.SIGINT)
            else:
                worker.process.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        except OSError:
            pass

    def _kill_all(self) -> None:
        """SIGKILL every worker still running (TensorFlow's multi-worker runtime catches SIGTERM),
        and reap them."""
        for worker in self.workers:
            if worker.returncode() is None:
                with contextlib.suppress(OSError):
                    worker.process.kill()
        for worker in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=10)

    def _cleanup(self) -> None:
        for worker in self.workers:
            if worker.handle is not None:
                worker.handle.close()
        if self._folder is not None:
            import shutil

            shutil.rmtree(self._folder, ignore_errors=True)


def run_local_workers(argv: Sequence[str], count: int, *, resume_hint: str = "",
                      keyboard: Callable[[], bool] = lambda: False, json_errors: bool = False) -> int:
    """Train with ``count`` local worker processes (see :class:`LocalCluster`); the exit status."""
    cluster = LocalCluster(argv, count, resume_hint=resume_hint, keyboard=keyboard, json_errors=json_errors)
    try:
        return cluster.run()
    except KeyboardInterrupt:
        print("\nconvas: interrupted; every worker was stopped and nothing was saved", file=sys.stderr)
        return 130
