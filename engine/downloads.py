"""Downloading a file the user asked for (pretrained weights), with progress, cancel and a check.

:func:`download` streams a URL to a temporary file beside its destination, reports bytes done
and the total, stops within one chunk when asked, verifies the hash Keras publishes for the file
(SHA-256 or MD5, told apart by length, as Keras does) and only then renames the file into place,
so the destination is either absent or complete. Every failure is a :class:`DownloadError`
whose :class:`DownloadFailure` says what happened (for the caller to act on) and whose message
says what to do. Standard library only.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from urllib.parse import urlparse

from .atomic import fsync_file, fsync_folder, remove_quietly, replace_file, sibling_path
from .errors import ConvasError

CHUNK = 256 * 1024
TIMEOUT_S = 30.0  # per socket operation: a stalled connection fails instead of hanging forever


class DownloadFailure(Enum):
    OFFLINE = "offline"      # no connection: DNS, refused, unreachable, timed out
    HTTP = "http"            # the server answered with an error status
    CANCELLED = "cancelled"  # the user stopped it
    HASH = "hash"            # the file arrived but is not the one published
    DISK = "disk"            # it could not be written


class DownloadError(ConvasError):
    """A download that did not complete; ``failure`` says why (never parse the message)."""

    def __init__(self, failure: DownloadFailure, message: str) -> None:
        super().__init__(message)
        self.failure = failure


def hash_algorithm(expected_hash: str) -> str:
    """"sha256" for a 64-digit hash, else "md5": the rule Keras's ``get_file`` follows."""
    return "sha256" if len(expected_hash) == 64 else "md5"


def download(url: str, dest: Path, expected_hash: str | None = None,
             progress: Callable[[int, int | None], None] | None = None,
             cancelled: Callable[[], bool] | None = None, *, fallback: str = "") -> Path:
    """Fetch ``url`` to ``dest`` (its folder is created). ``progress(done, total)`` after each
    chunk (``total`` None when the server does not say); ``cancelled()`` is asked before each
    chunk, and True stops the download and removes the partial file. ``expected_hash`` (hex,
    SHA-256 or MD5) is checked before the file is renamed into place. ``fallback`` ends the
    offline message with what else the user can do.

    Returns ``dest``. Raises :class:`DownloadError` (OFFLINE, HTTP, CANCELLED, HASH or DISK);
    ``dest`` is then untouched."""
    dest = Path(dest)
    host = urlparse(url).netloc or url
    ask_cancel = cancelled or (lambda: False)
    report = progress or (lambda _done, _total: None)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(DownloadFailure.DISK, f"cannot create {dest.parent}: {exc.strerror or exc}; "
                            "free some space or choose another folder") from None
    tmp = sibling_path(dest, "part")
    digest = hashlib.new(hash_algorithm(expected_hash)) if expected_hash else None
    try:
        if ask_cancel():
            raise DownloadError(DownloadFailure.CANCELLED, f"the download of {dest.name} was cancelled")
        request = urllib.request.Request(url, headers={"User-Agent": "Convas"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            report(done, total)
            with open(tmp, "xb") as fh:
                while True:
                    if ask_cancel():
                        raise DownloadError(DownloadFailure.CANCELLED, f"the download of {dest.name} was cancelled")
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    fh.write(chunk)
                    if digest is not None:
                        digest.update(chunk)
                    done += len(chunk)
                    report(done, total)
            if total is not None and done < total:
                raise DownloadError(DownloadFailure.OFFLINE, f"the connection to {host} closed after "
                                    f"{done:,} of {total:,} bytes; try again{fallback}")
        if digest is not None and expected_hash and digest.hexdigest().lower() != expected_hash.lower():
            raise DownloadError(DownloadFailure.HASH, (
                f"{dest.name} from {host} is not the published file (its {hash_algorithm(expected_hash)} is "
                f"{digest.hexdigest()}, expected {expected_hash}); it was not kept. Try again later{fallback}"))
        fsync_file(tmp)
        replace_file(tmp, dest)  # waits out a Windows virus scanner holding the new file
        fsync_folder(dest.parent)
    except DownloadError:
        remove_quietly(tmp)
        raise
    except urllib.error.HTTPError as exc:
        remove_quietly(tmp)
        raise DownloadError(DownloadFailure.HTTP, f"{host} answered {exc.code} {exc.reason} for {dest.name}; "
                            f"try again later{fallback}") from None
    except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
        remove_quietly(tmp)
        raise DownloadError(DownloadFailure.OFFLINE, _offline_message(host, exc, fallback)) from None
    except OSError as exc:
        remove_quietly(tmp)
        raise DownloadError(DownloadFailure.DISK, f"cannot write {dest}: {exc.strerror or exc}; "
                            "free some space or choose another folder") from None
    except BaseException:
        remove_quietly(tmp)
        raise
    return dest


def _offline_message(host: str, exc: BaseException, fallback: str) -> str:
    reason = getattr(exc, "reason", exc)
    detail = getattr(reason, "strerror", None) or str(reason)
    return f"no connection to {host} ({detail}); connect to the internet{fallback or ' and try again'}"
