"""The one way Convas replaces a file: write a temporary file beside it, flush it to disk, then
swap it in with :func:`os.replace`, so that readers see the old file or the new one, never half.

Project files, their weights, Python exports, trained models and CSV logs all go through
:func:`replace_atomically`. (A SavedModel export is a folder; folders cannot be swapped in one
step, so :mod:`engine.export.run` moves those into place through a moment-long backup.)

Temporary files and folders are hidden siblings of their destination named by
:func:`sibling_path` (``.m.keras.<pid>-<random>.tmp.keras``); a process killed mid-write leaves
them behind, and :func:`clean_leftovers` removes them (or puts a SavedModel folder back) on the
next write to the same destination.

On Windows a file that another program holds open (a virus scanner reading the new file, a sync
client uploading the old one, an editor showing it) cannot be replaced for a moment:
:func:`replace_file` tries again for about two seconds, then raises :class:`HeldOpenError`,
which :func:`replace_atomically` turns into a message saying to close that program.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from .errors import ConvasError


def replace_atomically(target: str | os.PathLike[str], fill: Callable[[Path], None], what: str,
                       suffix: str = "") -> Path:
    """Replace ``target`` by what ``fill(tmp)`` writes to a temporary file beside it (its name
    ends in ``suffix``, for writers that insist on one, as Keras does on ``.keras``): flushed to
    disk, given the old file's permissions, then swapped in with :func:`replace_file` (which
    waits out a Windows program holding either file open), and the folder flushed so that the
    rename itself survives a crash. On failure the old file is untouched, the temporary file
    removed, and an :class:`OSError` becomes a :class:`ConvasError` saying it "could not save
    ``what``" (and, for a file still held open, to close the program holding it); other
    exceptions from ``fill`` pass through unchanged. Returns the file written (a symlink's target, not the link)."""
    target = write_target(target)
    tmp = sibling_path(target, "tmp", suffix)
    try:
        # The umask gives new files their usual permissions; a replaced file keeps its own.
        mode = target.stat().st_mode & 0o7777 if target.exists() else None
        fill(tmp)
        fsync_file(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        replace_file(tmp, target)
    except HeldOpenError as exc:
        remove_quietly(tmp)
        raise ConvasError(held_open_message(what, target)) from exc
    except OSError as exc:
        remove_quietly(tmp)
        raise ConvasError(f"could not save {what}: {exc.strerror or exc}") from exc
    except BaseException:
        remove_quietly(tmp)
        raise
    fsync_folder(target.parent)
    return target


# Waits (seconds) between tries of a replace that Windows refused because another program has
# the file open: about two seconds in all, long enough for a virus scanner or a sync client to
# let go, short enough that a save does not seem to hang.
REPLACE_RETRY_DELAYS_S = (0.02, 0.04, 0.06, 0.1, 0.14, 0.2, 0.25, 0.3, 0.4, 0.5)


# Whether a PermissionError from os.replace may be another program holding the file open
# (Windows) rather than a lack of permission (everywhere else).
REPLACE_REFUSED_WHILE_OPEN = os.name == "nt"


class HeldOpenError(PermissionError):
    """Windows refused to replace or move a file, after every retry of :func:`replace_file`:
    another program has it (or the file moved onto it) open."""


def replace_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """:func:`os.replace`, tried again after each of :data:`REPLACE_RETRY_DELAYS_S` while
    Windows answers :class:`PermissionError` (WinError 5 or 32: another program has ``src`` or
    ``dst`` open; it usually lets go within a second), then :class:`HeldOpenError`. Elsewhere
    a :class:`PermissionError` is a real lack of permission, raised at once, as are other
    errors everywhere."""
    for delay in (*REPLACE_RETRY_DELAYS_S, None):
        try:
            os.replace(src, dst)
            return
        except PermissionError as exc:
            if not REPLACE_REFUSED_WHILE_OPEN:
                raise
            if delay is None:
                raise HeldOpenError(exc.errno, exc.strerror, exc.filename, getattr(exc, "winerror", None),
                                    exc.filename2) from exc
            time.sleep(delay)


def held_open_message(what: str, target: str | os.PathLike[str], again: str = "save again") -> str:
    """What to tell someone whose save of ``what`` (at ``target``) failed with
    :class:`HeldOpenError`; ``again`` is what to do once the file is free."""
    return (f"could not save {what}: another program (a virus scanner, a sync client such as OneDrive "
            f"or Dropbox, an editor) has {Path(target).name} open; close it and {again}. "
            "The previous version is unchanged")


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`replace_atomically`."""
    def fill(tmp: Path) -> None:
        with open(tmp, "xb") as fh:  # "x": fail rather than clobber
            fh.write(data)

    replace_atomically(Path(path), fill, Path(path).name)


def write_target(path: str | os.PathLike[str]) -> Path:
    """What a write to ``path`` replaces: for a symbolic link its target, as editors do (the
    link stays a link, and the temporary file goes beside the target, on its file system)."""
    path = Path(path).expanduser()
    return path.resolve() if path.is_symlink() else path


# Why a temporary sibling exists; clean_leftovers recognises these and no other names.
SIBLING_KINDS = ("tmp", "part", "old", "probe")


def sibling_path(target: Path, kind: str, suffix: str = "") -> Path:
    """A hidden, unused name beside ``target`` for a temporary file or folder of ``kind`` (one of
    :data:`SIBLING_KINDS`): ``.NAME.<pid>-<random>.KIND<suffix>``. The process id lets a later
    run tell what a killed process left from what a live one is still writing."""
    assert kind in SIBLING_KINDS, kind
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(3)}.{kind}{suffix}")


def check_can_create(target: Path) -> None:
    """Raise the system's :class:`OSError` when no file can be created beside ``target``, found
    by creating (and removing) one: ``os.access`` says yes to root for folders such as ``/proc``
    where creating a file fails, and knows nothing of read-only mounts or quotas."""
    probe = sibling_path(target, "probe")
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    remove_quietly(probe)


# A leftover older than this is stale even when its process id is in use again (ids are
# reused, by containers above all) or cannot be checked (Windows).
STALE_AFTER_S = 3600.0


def clean_leftovers(target: str | os.PathLike[str]) -> list[str]:
    """Remove what interrupted writes to ``target`` left beside it (partial files and folders,
    probes, a SavedModel's backup), and when ``target`` itself is missing while a backup of it
    is there (a kill between a SavedModel swap's two renames), put the newest backup back.
    Leftovers of a process still running are kept, unless older than :data:`STALE_AFTER_S`.
    Returns one sentence per thing done, for the caller to show."""
    target = write_target(target)
    kinds = "|".join(SIBLING_KINDS)
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(?:(\d+)-)?[0-9a-f]+\.({kinds})(?:\.\w+)*$")
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    found = [(target.parent / name, match) for name in names if (match := pattern.match(name))]
    stale = [(path, match.group(2)) for path, match in found
             if _stale(path, int(match.group(1)) if match.group(1) else None)]
    done: list[str] = []
    backups = sorted((path for path, kind in stale if kind == "old"), key=_mtime, reverse=True)
    if backups and not os.path.lexists(target):
        try:
            os.replace(backups[0], target)
        except OSError as exc:
            done.append(f"could not restore {target.name} from {backups[0].name}, where an "
                        f"interrupted write had moved it: {exc.strerror or exc}")
        else:
            done.append(f"restored {target.name} from {backups[0].name}, where an interrupted write had moved it")
            stale = [(path, kind) for path, kind in stale if path != backups[0]]
    for path, kind in stale:
        if kind == "probe":
            remove_quietly(path)
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            remove_quietly(path)
        what = "the previous version" if kind == "old" else "a partial copy"
        done.append(f"removed {path.name}, {what} of {target.name} left by an interrupted write")
    return done


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _stale(path: Path, pid: int | None) -> bool:
    if time.time() - _mtime(path) > STALE_AFTER_S:
        return True
    if pid is None:
        return True  # named before names carried a process id: an older Convas's
    if pid == os.getpid() or os.name != "posix":
        return False  # maybe this process's own, or no way to ask (os.kill(pid, 0) kills on Windows)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, belongs to someone else
    return False


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to disk (before it is renamed into place)."""
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def fsync_tree(path: Path) -> None:
    """:func:`fsync_file` for a file; for a folder (a SavedModel), every file and folder in it."""
    if not path.is_dir():
        fsync_file(path)
        return
    for folder, _dirs, files in os.walk(path):
        for name in files:
            fsync_file(Path(folder) / name)
        fsync_folder(Path(folder))


def remove_quietly(path: Path) -> None:
    """Delete ``path`` if it is there; a failure is ignored (it is cleanup after another error)."""
    with contextlib.suppress(OSError):
        path.unlink()


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); harmless where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
