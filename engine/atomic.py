"""The one way Convas replaces a file: write a temporary file beside it, flush it to disk, then
swap it in with :func:`os.replace`, so that readers see the old file or the new one, never half.

Project files, their weights, Python exports, trained models and CSV logs all go through
:func:`replace_atomically`. (A SavedModel export is a folder; folders cannot be swapped in one
step, so :mod:`engine.export.run` moves those into place through a moment-long backup.)
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from .errors import ConvasError


def replace_atomically(target: str | os.PathLike[str], fill: Callable[[Path], None], what: str,
                       suffix: str = "") -> Path:
    """Replace ``target`` by what ``fill(tmp)`` writes to a temporary file beside it (its name
    ends in ``suffix``, for writers that insist on one, as Keras does on ``.keras``): flushed to
    disk, given the old file's permissions, then swapped in with :func:`os.replace`, and the
    folder flushed so that the rename itself survives a crash. On failure the old file is
    untouched, the temporary file removed, and an :class:`OSError` becomes a
    :class:`ConvasError` saying it "could not save ``what``"; other exceptions from ``fill``
    pass through unchanged. Returns the file written (a symlink's target, not the link)."""
    target = Path(target)
    if target.is_symlink():  # replace the file the link points to, not the link
        target = target.resolve()
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{suffix}")
    try:
        # The umask gives new files their usual permissions; a replaced file keeps its own.
        mode = target.stat().st_mode & 0o7777 if target.exists() else None
        fill(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        remove_quietly(tmp)
        raise ConvasError(f"could not save {what}: {exc.strerror or exc}") from exc
    except BaseException:
        remove_quietly(tmp)
        raise
    fsync_folder(target.parent)
    return target


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`replace_atomically`."""
    def fill(tmp: Path) -> None:
        with open(tmp, "xb") as fh:  # "x": fail rather than clobber
            fh.write(data)

    replace_atomically(Path(path), fill, Path(path).name)


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
