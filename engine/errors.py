"""Errors the engine raises. Each carries a message written for the person using Convas."""

from __future__ import annotations

import re


class ConvasError(Exception):
    """Base of every error Convas reports to a user (never shown as a traceback)."""


class FileFormatError(ConvasError):
    """A file could not be read: malformed, truncated, of another format or a newer version."""


class UnsupportedLayerError(ConvasError):
    """A model uses layers Convas does not know (custom classes, Lambda, ...), listed by name."""

    def __init__(self, message: str, layers: list[str] | None = None) -> None:
        super().__init__(message)
        self.layers = list(layers or [])


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Keras wraps a layer's error in a preamble that says where, not what.
_PREAMBLES = ("Exception encountered",)


def _lines(exc_or_text: BaseException | str | None) -> list[str]:
    text = "" if exc_or_text is None else str(exc_or_text)
    lines = (line.strip() for line in _ANSI.sub("", text).splitlines())
    return [line for line in lines if line and not line.startswith(_PREAMBLES)]


def _shorten(line: str, limit: int | None) -> str:
    return line if limit is None or len(line) <= limit else line[:limit - 1] + "…"


def first_line(exc_or_text: BaseException | str | None, limit: int | None = 300) -> str:
    """The informative first line of an error (or of a text) for a one-line message: blank lines,
    terminal colours and Keras's "Exception encountered when calling…" preamble skipped, cut to
    ``limit`` characters (None: uncut). An exception with no text gives its class name; a text, ``""``."""
    lines = _lines(exc_or_text)
    if lines:
        return _shorten(lines[0], limit)
    return type(exc_or_text).__name__ if isinstance(exc_or_text, BaseException) else ""


def last_line(exc_or_text: BaseException | str | None, limit: int | None = 300) -> str:
    """The last non-blank line (a traceback's, which names the error), as :func:`first_line`."""
    lines = _lines(exc_or_text)
    if lines:
        return _shorten(lines[-1], limit)
    return type(exc_or_text).__name__ if isinstance(exc_or_text, BaseException) else ""
