"""The operating system's list of recent documents: Convas adds each design it opens or saves.

Each desktop keeps its own list, which file choosers, the dock or the taskbar's jump list and
the desktop's search show:

- Linux and other freedesktop desktops: ``recently-used.xbel`` in ``$XDG_DATA_HOME`` (the
  desktop-bookmark specification; GTK, GNOME and KDE read it). Written here in Python, because it
  is a file every application edits: other applications' bookmarks are kept as they were, the
  write is atomic (:mod:`engine.atomic`), and a file this module cannot read is left alone.
- Windows: ``SHAddToRecentDocs`` (the Recent folder and the taskbar jump list).
- macOS: ``NSDocumentController.noteNewRecentDocumentURL:`` (File → Open Recent and the Dock),
  called through the Objective-C runtime with ctypes: no PyObjC dependency for one call.

A recent-documents entry is a courtesy: :func:`add_recent` never raises and never shows a
message; what happened is its return value, for tests and ``--debug``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import enum
import mimetypes
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from .app_identity import APP_NAME, EXECUTABLE, EXTENSION, MIME_TYPE

XBEL_NAME = "recently-used.xbel"
BOOKMARK_NS = "http://www.freedesktop.org/standards/desktop-bookmarks"
MIME_NS = "http://www.freedesktop.org/standards/shared-mime-info"
METADATA_OWNER = "http://freedesktop.org"  # GLib reads mime type and applications only from this owner's metadata
# A list GTK applications keep short themselves; a larger file is someone else's problem, not
# one to parse on the window's thread (it is read whenever a design is opened or saved).
MAX_XBEL_BYTES = 8 * 1024 * 1024
# The most bookmarks left in the file: beyond it the least recently modified go (GTK prunes by age).
MAX_BOOKMARKS = 1000
APP_EXEC = f"'{EXECUTABLE} %u'"  # as GLib writes it: the command line, quoted, %u the document's URI


class RecentResult(enum.Enum):
    """What :func:`add_recent` did."""

    ADDED = "added"              # a new entry
    UPDATED = "updated"          # the file was already listed: its times and count were updated
    UNREADABLE = "unreadable"    # the list is malformed or too large: left untouched
    UNSUPPORTED = "unsupported"  # this system has no list Convas knows
    FAILED = "failed"            # the system refused (no permission, a missing library)


def add_recent(path: str | os.PathLike[str]) -> RecentResult:
    """Add ``path`` to the system's recent documents. Never raises."""
    try:
        absolute = Path(os.path.abspath(path))
        if sys.platform == "win32":
            return _add_windows(absolute)
        if sys.platform == "darwin":
            return _add_macos(absolute)
        return add_to_xbel(xbel_path(), absolute)
    except Exception:  # noqa: BLE001 - a courtesy to the desktop must never disturb the user
        return RecentResult.FAILED


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or not absolute (as the spec says)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if value and os.path.isabs(value) else Path.home() / ".local" / "share"


def xbel_path() -> Path:
    return data_home() / XBEL_NAME


# --- freedesktop: recently-used.xbel ----------------------------------------------------------

def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def timestamp(moment: dt.datetime) -> str:
    """An xbel time as GLib writes it: UTC, ISO 8601, microseconds, ``Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def add_to_xbel(xbel: Path, document: Path, now: dt.datetime | None = None,
                app_name: str = APP_NAME, app_exec: str = APP_EXEC) -> RecentResult:
    """Add ``document`` (absolute) to the bookmark file ``xbel``, or update its entry.

    A new bookmark gets ``added``, ``modified`` and ``visited`` times, its MIME type and
    an application entry for Convas; a listed one gets new ``modified``/``visited`` times and its
    Convas entry a new time and a count one higher (an entry is never duplicated). Other
    bookmarks, other applications' entries and unknown elements are kept. A file that is not an
    xbel bookmark list is left exactly as it is (:attr:`RecentResult.UNREADABLE`)."""
    from .atomic import write_bytes_atomically

    stamp = timestamp(now or dt.datetime.now(dt.UTC))
    href = document.as_uri()  # percent-encodes spaces and non-ASCII (as UTF-8), as the spec wants
    root = _read_xbel(xbel)
    if root is None:
        return RecentResult.UNREADABLE
    bookmark = next((b for b in root.findall("bookmark") if b.get("href") == href), None)
    result = RecentResult.UPDATED if bookmark is not None else RecentResult.ADDED
    if bookmark is None:
        bookmark = ET.SubElement(root, "bookmark", {"href": href, "added": stamp})
    bookmark.set("modified", stamp)
    bookmark.set("visited", stamp)
    metadata = _freedesktop_metadata(bookmark)
    if metadata.find(_q(MIME_NS, "mime-type")) is None:  # a listed file keeps the type it was given
        metadata.insert(0, ET.Element(_q(MIME_NS, "mime-type"), {"type": mime_type(document)}))
    apps = metadata.find(_q(BOOKMARK_NS, "applications"))
    if apps is None:
        apps = ET.SubElement(metadata, _q(BOOKMARK_NS, "applications"))
    app = next((a for a in apps.findall(_q(BOOKMARK_NS, "application")) if a.get("name") == app_name), None)
    if app is None:
        app = ET.SubElement(apps, _q(BOOKMARK_NS, "application"), {"name": app_name, "exec": app_exec, "count": "0"})
    app.set("modified", stamp)
    app.set("count", str(_count(app.get("count")) + 1))
    _prune(root)
    _indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    xbel.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(xbel, data + b"\n")
    return result


def mime_type(document: Path) -> str:
    """The MIME type a bookmark names: a design's own; for an imported Keras file or anything
    else, what the standard library knows of its extension."""
    if document.suffix.lower() == EXTENSION:
        return MIME_TYPE
    return mimetypes.guess_type(document.name)[0] or "application/octet-stream"


def _read_xbel(xbel: Path) -> ET.Element | None:
    """The file's root element (a new, empty list when there is no file), or None when it is
    not one this module may rewrite: malformed, not ``<xbel>``, or too large."""
    _register_prefixes()
    try:
        size = xbel.stat().st_size
    except FileNotFoundError:
        return ET.Element("xbel", {"version": "1.0"})
    if size > MAX_XBEL_BYTES:
        return None
    try:
        parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
        root = ET.fromstring(xbel.read_bytes(), parser=parser)
    except (ET.ParseError, OSError, ValueError):
        return None
    return root if root.tag == "xbel" else None


def _register_prefixes() -> None:
    # The prefixes GLib writes; without them ElementTree would invent ns0, ns1 (still correct
    # XML, but every other application's bookmarks would change their look on our first write).
    ET.register_namespace("bookmark", BOOKMARK_NS)
    ET.register_namespace("mime", MIME_NS)


def _freedesktop_metadata(bookmark: ET.Element) -> ET.Element:
    info = bookmark.find("info")
    if info is None:
        info = ET.SubElement(bookmark, "info")
    metadata = next((m for m in info.findall("metadata") if m.get("owner") == METADATA_OWNER), None)
    if metadata is None:
        metadata = ET.SubElement(info, "metadata", {"owner": METADATA_OWNER})
    return metadata


def _count(text: str | None) -> int:
    try:
        return max(0, int(text or 0))
    except ValueError:
        return 0


def _prune(root: ET.Element) -> None:
    bookmarks = root.findall("bookmark")
    if len(bookmarks) <= MAX_BOOKMARKS:
        return
    # ISO 8601 UTC times of one form sort as text; a bookmark without one goes first.
    oldest = sorted(bookmarks, key=lambda b: b.get("modified") or b.get("added") or "")
    for bookmark in oldest[:len(bookmarks) - MAX_BOOKMARKS]:
        root.remove(bookmark)


def _indent(root: ET.Element) -> None:
    # Re-indent only whitespace-only text, so that our new elements line up with GLib's.
    for element in root.iter():
        if element.text is not None and not element.text.strip():
            element.text = None
        if element.tail is not None and not element.tail.strip():
            element.tail = None
    ET.indent(root, space="  ")


# --- Windows and macOS --------------------------------------------------------------------------

SHARD_PATHW = 3


def _add_windows(document: Path) -> RecentResult:
    shell32 = ctypes.WinDLL("shell32")  # type: ignore[attr-defined,unused-ignore]
    shell32.SHAddToRecentDocs.argtypes = [ctypes.c_uint, ctypes.c_wchar_p]
    shell32.SHAddToRecentDocs.restype = None
    shell32.SHAddToRecentDocs(SHARD_PATHW, str(document))
    return RecentResult.ADDED


def _add_macos(document: Path) -> RecentResult:
    objc_path = ctypes.util.find_library("objc")
    if not objc_path:
        return RecentResult.FAILED
    objc = ctypes.cdll.LoadLibrary(objc_path)
    ctypes.cdll.LoadLibrary("/System/Library/Frameworks/AppKit.framework/AppKit")  # NSDocumentController
    objc.objc_getClass.restype = ctypes.c_void_p
    objc.objc_getClass.argtypes = [ctypes.c_char_p]
    objc.sel_registerName.restype = ctypes.c_void_p
    objc.sel_registerName.argtypes = [ctypes.c_char_p]
    # objc_msgSend must be called through a prototype of the method's own signature (on arm64
    # a variadic call passes arguments differently): one cast per signature used.
    address = ctypes.cast(objc.objc_msgSend, ctypes.c_void_p).value
    if not address:
        return RecentResult.FAILED
    send = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(address)
    send_text = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)(address)
    send_object = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(address)

    def cls(name: bytes) -> int:
        found = objc.objc_getClass(name)
        if not found:
            raise OSError(f"no Objective-C class {name.decode()}")
        return int(found)

    def sel(name: bytes) -> int:
        return int(objc.sel_registerName(name))

    text = send_text(cls(b"NSString"), sel(b"stringWithUTF8String:"), os.fsencode(document))
    url = send_object(cls(b"NSURL"), sel(b"fileURLWithPath:"), text) if text else None
    controller = send(cls(b"NSDocumentController"), sel(b"sharedDocumentController"))
    if not url or not controller:
        return RecentResult.FAILED
    send_object(controller, sel(b"noteNewRecentDocumentURL:"), url)
    return RecentResult.ADDED
