"""Autosave of unsaved work to a recovery file, and recovery after a crash.

Every 30 s, if the document has unsaved changes, the design is written (atomically, by the
engine's project writer) to this window's ``recovery-<pid>-<random>.convas`` in the per-user data
folder, with a small sidecar naming the file it came from. A clean close or a save deletes both;
finding one at start whose window is gone means that window did not end cleanly.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, QStandardPaths, QTimer

from engine.atomic import write_bytes_atomically
from engine.errors import ConvasError
from engine.project_file import Project, load_project, save_project

from .document import Document

INTERVAL_MS = 30_000
PREFIX = "recovery-"              # recovery-<pid>-<random>.convas, .json, .lock
LEGACY_NAME = "recovery.convas"   # the one shared file of Convas 0.1 before per-window files


def recovery_dir() -> Path:
    override = os.environ.get("CONVAS_RECOVERY_DIR")
    if override:
        return Path(override)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".convas")


class Autosaver(QObject):
    """Writes this window's unsaved work to its own recovery file, and finds the files that
    windows which ended without a clean close left behind.

    Several Convas windows may run at once (a second file opened from the desktop starts its
    own process), all with the same recovery folder: each autosaver writes
    ``recovery-<pid>-<random>.convas`` and holds a :class:`QLockFile` beside it while it has
    unsaved work, so another window neither overwrites nor deletes it, and a start offers only
    the files whose window is gone (Qt tells a dead owner's lock from a live one's)."""

    def __init__(self, document: Document, folder: Path | None = None, interval_ms: int = INTERVAL_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.folder = folder or recovery_dir()
        self.token = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._lock: QLockFile | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)
        self.timer.start()

    @property
    def design_path(self) -> Path:
        return self.folder / f"{PREFIX}{self.token}.convas"

    @property
    def meta_path(self) -> Path:
        return self.design_path.with_suffix(".json")

    def save_now(self) -> bool:
        """Write the recovery file if there is unsaved work; True when written."""
        if not self.document.modified:
            return False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if self._lock is None:
                lock = QLockFile(str(self.design_path.with_suffix(".lock")))
                lock.setStaleLockTime(0)  # stale only when this process is gone, however long it runs
                if not lock.tryLock(0):
                    return False
                self._lock = lock
            save_project(self.design_path, self.document.design, **self.document.project_parts())
            meta = {"source": str(self.document.path) if self.document.path else None}
            write_bytes_atomically(self.meta_path, json.dumps(meta).encode("utf-8"))
            return True
        except (ConvasError, OSError):
            return False  # autosave must never interrupt the user; the next tick tries again

    def discard(self) -> None:
        """Forget this window's recovery file (saved, or closed cleanly)."""
        _remove(self.design_path, self.meta_path)
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None

    def pending(self) -> bool:
        """Whether a window that is gone left unsaved work behind."""
        return self.left_behind() is not None

    def left_behind(self) -> Path | None:
        """The newest recovery file whose window is gone (its lock can be taken), or None. The
        file of a Convas before recovery files were per window, ``recovery.convas``, counts too."""
        try:
            found = [p for p in self.folder.glob("recovery*.convas") if p != self.design_path]
        except OSError:
            return None
        for path in sorted(found, key=_mtime, reverse=True):
            if path.name == LEGACY_NAME or _owner_gone(path):
                return path
        return None

    def recover(self) -> tuple[Project, Path | None, Path]:
        """The newest left-behind project, the path of the file it was a version of (if any),
        and its recovery file (for :meth:`forget`, once the window holds the project)."""
        path = self.left_behind()
        if path is None:
            raise ConvasError("there is no autosaved design to recover")
        try:
            project = load_project(path)
        except ConvasError as exc:
            raise RecoveryError(path, exc) from exc
        source = None
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            source = Path(meta["source"]) if meta.get("source") else None
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return project, source, path

    @staticmethod
    def forget(path: Path) -> None:
        """Delete a left-behind recovery file (recovered into a window, or declined)."""
        _remove(path, path.with_suffix(".json"), path.with_suffix(".lock"))


class RecoveryError(ConvasError):
    """A left-behind recovery file that cannot be read; ``path`` is it."""

    def __init__(self, path: Path, cause: ConvasError) -> None:
        super().__init__(str(cause))
        self.path = path


def _owner_gone(path: Path) -> bool:
    lock = QLockFile(str(path.with_suffix(".lock")))
    lock.setStaleLockTime(0)
    if not lock.tryLock(0):
        return False
    lock.unlock()
    return True


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _remove(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink()
