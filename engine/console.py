"""The terminal Convas prints to, made safe for any text before the first line is written.

A console or pipe on Windows often encodes as a legacy code page (cp1252, cp437): printing
"→", "×" or a layer name in Chinese there raises :class:`UnicodeEncodeError` in the middle of a
command. Convas's own output is meant to be read, so a character the stream cannot encode is
replaced (``?``) rather than ending the command with a traceback.
"""

from __future__ import annotations

import contextlib
import io
import sys


def prepare_streams() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` replace what their encoding cannot write. A
    stream that is missing (a windowed executable on Windows has none) or cannot be
    reconfigured (a test's capture) is left as it is."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and not _encodes_everything(stream.encoding):
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors="replace")


def _encodes_everything(encoding: str | None) -> bool:
    """Whether ``encoding`` is a Unicode encoding (so nothing needs replacing)."""
    return (encoding or "").lower().replace("-", "").replace("_", "") in {"utf8", "utf16", "utf32", "utf8sig"}
