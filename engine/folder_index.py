"""Which image files a folder holds, listed fast and remembered: the index of an image folder.

A folder of a million images must start training in seconds, so listing never opens a file:
:func:`scan_images` walks the folders with :func:`os.scandir` on a few threads and reads only
what the directory entries say (names, and whether an entry is a regular file, a folder or
something else: a named pipe or a device is named, never opened, as opening one would wait
forever). Whether a file decodes is found out later, in the training pipeline
(:mod:`engine.image_pipeline`), or up front for small folders (:func:`engine.datasets.readable_images`).

The listing is cached in the user's cache folder (beside :class:`engine.datasets.ImageChecks`'s
file, so ``CONVAS_CACHE_DIR`` moves both), one file per set of folders listed together. It holds
every folder's modification time: adding, removing or renaming an image changes its folder's
time, and any change lists everything again. (Replacing a file's contents in place changes no
folder's time; the pipeline still finds a file that no longer decodes.)

Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# What the index lists: the suffixes TensorFlow's decode_image reads (a GIF's first frame).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif"})
INDEX_VERSION = 1
# Folders listed at once: directory reads wait on the disk and release the GIL, so a few
# threads overlap them (a network drive gains most).
SCAN_THREADS = 8
# On Windows a directory listing carries each file's size, so empty files are named without a
# stat call; elsewhere a stat per file would cost more than the listing (the pipeline finds them).
_STAT_IS_FREE = os.name == "nt"


@dataclass
class FolderFiles:
    """The image files under one folder: ``files`` (absolute path strings of regular files, or
    links to them, in the order ``sorted(Path.rglob(...))`` gives) and ``special`` (absolute
    path → why it is skipped, e.g. "is a named pipe (FIFO), not a regular file", for entries
    named like images that are neither files nor folders, or links to nothing)."""

    files: list[str] = field(default_factory=list)
    special: dict[str, str] = field(default_factory=dict)


def _problem(mode: int) -> str:
    """Why an entry that is neither a regular file nor a folder is skipped, in the words of
    :func:`engine.datasets.readable_images`."""
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a special file")
    return f"is {kind}, not a regular file"


def _sort_key(relative: str) -> list[str]:
    """The order of ``sorted(Path)``: by path parts (a folder's files before ``a-b/``'s when
    the folder is ``a``), case-folded on Windows as Windows paths compare."""
    parts = relative.split("/")
    return [p.lower() for p in parts] if sys.platform == "win32" else parts


def _is_image_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot > 0 and not name.startswith(".") and name[dot:].lower() in IMAGE_SUFFIXES


def _scan_one(folder: str, prefix: str, files: list[str], special: list[tuple[str, str]],
              subfolders: list[tuple[str, str]]) -> int:
    """List one directory: image files into ``files`` (relative to the listed folder, '/'
    joined), special entries into ``special``, sub-folders (not links to folders, as
    ``Path.rglob`` does not follow them) into ``subfolders``. Returns the directory's mtime_ns."""
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if entry.is_dir(follow_symlinks=False):
                subfolders.append((entry.path, prefix + name + "/"))
                continue
            if not _is_image_name(name):
                continue
            try:
                if entry.is_file():  # from the directory entry's type: no stat for a plain file
                    if _STAT_IS_FREE and entry.stat().st_size == 0:  # Windows lists sizes with names
                        special.append((prefix + name, "is empty"))
                    else:
                        files.append(prefix + name)
                elif not entry.is_dir():  # a folder named like an image is left out silently
                    special.append((prefix + name, _problem(entry.stat().st_mode)))
            except OSError as exc:  # a broken link, or an entry gone meanwhile
                special.append((prefix + name, f"cannot be opened ({exc.strerror or exc})"))
        return os.stat(folder).st_mtime_ns


@dataclass
class _Listing:
    """One folder's scan: relative file names, special entries and every directory's mtime."""

    files: list[str]
    special: list[tuple[str, str]]
    dirs: list[tuple[str, int]]  # (relative folder, '' for the root; its mtime_ns)


def _scan_folder(root: str, recursive: bool, pool: ThreadPoolExecutor | None) -> _Listing:
    """List ``root`` (and its sub-folders when ``recursive``, level by level on ``pool``)."""
    files: list[str] = []
    special: list[tuple[str, str]] = []
    dirs: list[tuple[str, int]] = []
    level = [(root, "")]
    while level:
        found: list[tuple[list[str], list[tuple[str, str]], list[tuple[str, str]], str, int]] = []

        def one(item: tuple[str, str]):
            folder, prefix = item
            own_files: list[str] = []
            own_special: list[tuple[str, str]] = []
            own_subfolders: list[tuple[str, str]] = []
            mtime = _scan_one(folder, prefix, own_files, own_special, own_subfolders)
            return own_files, own_special, own_subfolders, prefix, mtime

        if pool is not None and len(level) > 1:
            found = list(pool.map(one, level))
        else:
            found = [one(item) for item in level]
        level = []
        for own_files, own_special, own_subfolders, prefix, mtime in found:
            files += own_files
            special += own_special
            dirs.append((prefix.rstrip("/"), mtime))
            if recursive:
                level += own_subfolders
    files.sort(key=_sort_key)
    return _Listing(files, special, dirs)


def index_folder() -> Path:
    """Where listings are cached: ``folder-index/`` beside the image checks' file."""
    from .datasets import ImageChecks

    return ImageChecks.cache_file().parent / "folder-index"


def _index_file(roots: Sequence[str], recursive: bool) -> Path:
    key = json.dumps([INDEX_VERSION, recursive, list(roots)]).encode("utf-8", "surrogateescape")
    return index_folder() / (hashlib.sha1(key).hexdigest()[:20] + ".idx")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _save(path: Path, roots: Sequence[str], recursive: bool, listings: Sequence[_Listing]) -> None:
    """Write the listings: a JSON header line (folders, their times, special entries, counts),
    then every folder's file names joined by NUL bytes (names cannot hold one): 1.28 M names
    read back in a fraction of a second, where JSON would take seconds."""
    from .atomic import write_bytes_atomically
    from .errors import ConvasError

    header = {"version": INDEX_VERSION, "recursive": recursive, "roots": list(roots),
              "folders": [{"dirs": listing.dirs, "special": listing.special, "count": len(listing.files)}
                          for listing in listings]}
    names = _encode("\0".join(name for listing in listings for name in listing.files))
    data = json.dumps(header, ensure_ascii=True).encode("ascii") + b"\n" + names
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(path, data)
    except (OSError, ConvasError):
        pass  # an index that cannot be written only costs time on the next run


def _load(path: Path, roots: Sequence[str], recursive: bool) -> list[_Listing] | None:
    """The cached listings of ``roots``, or None when there are none or any folder changed."""
    try:
        data = path.read_bytes()
        end = data.index(b"\n")
        header = json.loads(data[:end].decode("ascii"))
        if header.get("version") != INDEX_VERSION or header.get("roots") != list(roots) \
                or header.get("recursive") != recursive:
            return None
        listings: list[_Listing] = []
        for root, folder in zip(roots, header["folders"]):
            dirs = [(str(d), int(t)) for d, t in folder["dirs"]]
            for relative, mtime in dirs:
                if os.stat(os.path.join(root, relative) if relative else root).st_mtime_ns != mtime:
                    return None
            listings.append(_Listing([], [(str(a), str(b)) for a, b in folder["special"]], dirs))
        names = data[end + 1:].decode("utf-8", "surrogateescape").split("\0") if len(data) > end + 1 else []
        at = 0
        for listing, folder in zip(listings, header["folders"]):
            count = int(folder["count"])
            listing.files = names[at:at + count]
            at += count
        if at != len(names):
            return None
        return listings
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


_lock = threading.Lock()


def scan_images(folders: Iterable[str | os.PathLike[str]], recursive: bool = True,
                use_cache: bool = True) -> list[FolderFiles]:
    """The image files in each of ``folders`` (and their sub-folders when ``recursive``), hidden
    ones left out; nothing is opened. Listed together on a few threads, and cached (see the
    module's docstring) unless ``use_cache`` is False."""
    roots = [os.path.abspath(folder) for folder in folders]
    listings: list[_Listing] | None = None
    index = _index_file(roots, recursive) if use_cache else None
    with _lock:  # two loaders listing at once would write the same index
        if index is not None:
            listings = _load(index, roots, recursive)
        if listings is None:
            with ThreadPoolExecutor(max_workers=SCAN_THREADS, thread_name_prefix="convas-scan") as pool:
                if len(roots) > 1:
                    listings = list(pool.map(lambda root: _scan_folder(root, recursive, None), roots))
                else:
                    listings = [_scan_folder(root, recursive, pool) for root in roots]
            if index is not None:
                _save(index, roots, recursive, listings)
    result: list[FolderFiles] = []
    for root, listing in zip(roots, listings):
        base = root if root.endswith(os.sep) else root + os.sep
        if os.sep != "/":
            files = [base + name.replace("/", os.sep) for name in listing.files]
            special = {base + name.replace("/", os.sep): kind for name, kind in listing.special}
        else:
            files = [base + name for name in listing.files]
            special = {base + name: kind for name, kind in listing.special}
        result.append(FolderFiles(files, special))
    return result
