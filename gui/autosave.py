"""Autosave of unsaved work to a recovery file, and recovery after a crash.

Every 30 s, if the document has unsaved changes, the design is written (atomically, by the
engine's project writer) to ``recovery.convas`` in the per-user data folder, with a small
sidecar naming the file it came from. A clean close or a save deletes both; finding them at start
means the last session did not end cleanly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, QTimer

from engine.errors import ConvasError
from engine.project_file import Project, load_project, save_project

from .document import Document

INTERVAL_MS = 30_000


def recovery_dir() -> Path:
    override = os.environ.get("CONVAS_RECOVERY_DIR")
    if override:
        return Path(override)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".convas")


class Autosaver(QObject):
    def __init__(self, document: Document, folder: Path | None = None, interval_ms: int = INTERVAL_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.folder = folder or recovery_dir()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)
        self.timer.start()

    @property
    def design_path(self) -> Path:
        return self.folder / "recovery.convas"

    @property
    def meta_path(self) -> Path:
        return self.folder / "recovery.json"

    def save_now(self) -> bool:
        """Write the recovery file if there is unsaved work; True when written."""
        if not self.document.modified:
            return False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            save_project(self.design_path, self.document.design, **self.document.project_parts())
            meta = {"source": str(self.document.path) if self.document.path else None}
            self.meta_path.write_text(json.dumps(meta), encoding="utf-8")
            return True
        except (ConvasError, OSError):
            return False  # autosave must never interrupt the user; the next tick tries again

    def discard(self) -> None:
        for p in (self.design_path, self.meta_path):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                pass

    def pending(self) -> bool:
        return self.design_path.is_file()

    def recover(self) -> tuple[Project, Path | None]:
        """The autosaved project and the path of the file it was a version of (if any)."""
        project = load_project(self.design_path)
        source = None
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            source = Path(meta["source"]) if meta.get("source") else None
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return project, source
