"""Unexpected errors (a bug in Convas, not a bad file or design): one line for the person using
Convas, the traceback for whoever fixes it.

Every entry point ends in a guard that catches what nothing else did (``convas summary``,
``train`` and ``export`` in :func:`engine.cli.main`; the window through ``sys.excepthook`` in
:mod:`gui.app`); the guard says "internal error: …, please report it" and keeps the traceback
in a log file, or prints it under ``--debug``. The guard is the last line, not the fix: known
failures have their own messages where they happen.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from .errors import first_line

LOG_NAME = "convas.log"
MAX_LOG_BYTES = 1_000_000  # beyond this the log starts afresh (the previous one kept as convas.log.1)


def user_cache_folder() -> Path:
    """Convas's folder in the platform's per-user cache location (the command line's; the window
    asks Qt for its own): ``$CONVAS_CACHE_DIR`` when set (tests set it), else
    ``$XDG_CACHE_HOME/convas`` or ``~/.cache/convas`` on Linux, ``~/Library/Caches/Convas`` on
    macOS, ``%LOCALAPPDATA%\\Convas\\Cache`` on Windows."""
    if os.environ.get("CONVAS_CACHE_DIR"):
        return Path(os.environ["CONVAS_CACHE_DIR"])
    home = Path.home()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return (Path(base) if base else home / "AppData" / "Local") / "Convas" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "Convas"
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else home / ".cache") / "convas"


def cli_log_path() -> Path:
    return user_cache_folder() / LOG_NAME


def traceback_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def append_to_log(log: Path, text: str) -> Path | None:
    """Append ``text`` (a traceback) to ``log`` under a time stamp, creating its folder; a log
    past :data:`MAX_LOG_BYTES` is moved to ``convas.log.1`` first. Returns ``log``, or None
    when it cannot be written (the report then says so; it never fails itself)."""
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        if log.exists() and log.stat().st_size > MAX_LOG_BYTES:
            os.replace(log, log.with_name(log.name + ".1"))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"--- {stamp} convas (pid {os.getpid()}): {' '.join(sys.argv)}\n{text}\n")
    except OSError:
        return None
    return log


def describe_error(exc: BaseException) -> str:
    """``ValueError: what it says`` (the line that says why: :func:`engine.errors.first_line`)."""
    line = first_line(exc)
    name = type(exc).__name__
    return line if line == name or line.startswith(f"{name}:") else f"{name}: {line}"


def report(exc: BaseException, *, debug: bool, log: Path | None) -> str:
    """The one line the user sees for an unexpected ``exc``: the traceback is printed to stderr
    (``debug``) or appended to ``log``, and the line says where it went."""
    text = traceback_text(exc)
    if debug:
        sys.stderr.write(text)
        where = "with the traceback above"
    else:
        written = append_to_log(log, text) if log is not None else None
        where = (f"with the traceback from {written}" if written is not None
                 else "run again with --debug to see the traceback")
    return f"internal error: {describe_error(exc)}; please report it, {where}"
