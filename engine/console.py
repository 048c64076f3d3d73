"""The terminal Convas prints to, made safe for any text before the first line is written.

A console or pipe on Windows often encodes as a legacy code page (cp1252, cp437): printing
"→", "─" or a layer name in Chinese there raises :class:`UnicodeEncodeError` in the middle of a
command. Convas's own output is meant to be read, so a character the stream cannot encode is
written as its ASCII look-alike when it has one ("→" as "->", "─" as "-", "✓" as "v") and as
``?`` otherwise, rather than ending the command with a traceback.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import sys

# The error handler prepare_streams gives a stream (registered with codecs on first use).
ERRORS = "convas-lookalike"

# ASCII for the symbols Convas's own messages and tables use; anything else becomes "?".
LOOKALIKES: dict[str, str] = {
    "→": "->", "←": "<-", "↔": "<->", "⇒": "=>", "↑": "^", "↓": "v",
    "×": "x", "…": "...", "–": "-", "—": "--", "−": "-", "±": "+/-", "≈": "~", "≤": "<=", "≥": ">=",
    "≠": "!=", "·": ".", "•": "*", "✓": "v", "✔": "v", "✗": "x", "✘": "x", "⚠": "!", "°": "deg",
    "‘": "'", "’": "'", "“": '"', "”": '"', "«": '"', "»": '"', "\u00a0": " ", "\u202f": " ",
    # box drawing, as tables use it
    "─": "-", "━": "=", "│": "|", "┃": "|", "═": "=", "║": "|",
    **dict.fromkeys("┌┐└┘├┤┬┴┼┏┓┗┛┣┫┳┻╋┡┩╇╞╡╪╔╗╚╝╠╣╦╩╬", "+"),
}


def prepare_streams() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` write what their encoding cannot encode as
    :data:`LOOKALIKES` or ``?``. A stream that is missing (a windowed executable on Windows
    has none) or cannot be reconfigured (a test's capture) is left as it is."""
    _register()
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and not _encodes_everything(stream.encoding):
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors=ERRORS)


def lookalike(error: UnicodeError) -> tuple[str, int]:
    """The codecs error handler: the unencodable characters as their ASCII look-alikes."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start:error.end]
    return "".join(LOOKALIKES.get(char, "?") for char in text), error.end


def _register() -> None:
    try:
        codecs.lookup_error(ERRORS)
    except LookupError:
        codecs.register_error(ERRORS, lookalike)


def _encodes_everything(encoding: str | None) -> bool:
    """Whether ``encoding`` is a Unicode encoding (so nothing needs replacing)."""
    return (encoding or "").lower().replace("-", "").replace("_", "") in {"utf8", "utf16", "utf32", "utf8sig"}
