"""Errors the engine raises. Each carries a message written for the person using Convas."""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from typing import Any


class ConvasError(Exception):
    """Base of every error Convas reports to a user (never shown as a traceback)."""


class FileFormatError(ConvasError):
    """A file could not be read: malformed, truncated, of another format or a newer version."""


class UnsupportedLayerError(ConvasError):
    """A model uses layers Convas does not know (custom classes, Lambda, ...), listed by name.

    When the rest of the model could be read, ``design`` is it (each such layer an unsupported
    node) and ``unsupported`` lists them (:class:`engine.keras_import.UnsupportedLayer` values),
    so that a caller can still show what was read; both are empty for a model with no layers to
    show (a subclassed model)."""

    def __init__(self, message: str, layers: list[str] | None = None, *, design: Any = None,
                 unsupported: list[Any] | None = None) -> None:
        super().__init__(message)
        self.layers = list(layers or [])
        self.design = design
        self.unsupported = list(unsupported or [])


# The system's ways of saying a destination cannot take a file: full, over quota, read-only,
# not allowed, too large for the file system.
_REFUSING_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EROFS,
                                               errno.EACCES, errno.EPERM, errno.EFBIG) if code is not None)
# TensorFlow's words for the same: its SaveV2 op raises ResourceExhaustedError on a full disk and
# PermissionDeniedError on a read-only or forbidden folder (matched by name: no TensorFlow import).
_TF_REFUSALS = frozenset({"ResourceExhaustedError", "PermissionDeniedError"})


def error_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then the error it was raised from or while handling (``__cause__``, else
    ``__context__``), and so on; each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def destination_refusal(exc: BaseException) -> BaseException | None:
    """The error in ``exc``'s chain (:func:`error_chain`) that says the destination cannot take
    the file (a full disk, a quota, a read-only or forbidden folder), or None. Decided by type
    and errno, never by the message's words."""
    for error in error_chain(exc):
        if isinstance(error, OSError) and error.errno in _REFUSING_ERRNOS:
            return error
        if any(cls.__name__ in _TF_REFUSALS and cls.__module__.startswith("tensorflow")
               for cls in type(error).__mro__):
            return error
    return None


def refusal_reason(refusal: BaseException) -> str:
    """What :func:`destination_refusal` found, in a few words: the system's ("No space left on
    device") for an OSError; TensorFlow's line without the temporary file's path before "; "."""
    if isinstance(refusal, OSError) and refusal.strerror:
        return refusal.strerror
    line = first_line(refusal)
    head, sep, tail = line.rpartition("; ")
    return tail if sep and ("/" in head or "\\" in head) else line


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Lines that say where an error happened, not what it was: Keras's and TensorFlow's wrappers
# ("Exception encountered when calling Functional.call().", "Graph execution error:", "in user
# code:", "Detected at node … defined at (most recent call last):"), Python's traceback headers
# and frames, Keras's list of the call's arguments and TensorFlow's node references.
_WRAPPER = re.compile(r"""^(?:
      Exception\ encountered\b.*
    | Graph\ execution\ error:?
    | in\ user\ code:
    | Detected\ at\ node\b.*
    | Node:\ .*
    | Traceback\ \(most\ recent\ call\ last\):
    | During\ handling\ of\ the\ above\ exception.*
    | The\ above\ exception\ was\ the\ direct\ cause.*
    | Arguments\ received\ by\b.*
    | •.*
    | \[\[\{\{node\ .*
    | .*\bError\ encountered:
    | [~^\s]+
)$""", re.X)
_FRAME = re.compile(r'^File ".*", line \d+')   # a traceback frame; the lines indented under it are its code
# TensorFlow's prefix and suffix around an op's message: "{{function_node __wrapped__…}} " and " [Op:SaveV2]".
_OP_PREFIX = re.compile(r"^\{\{function_node [^}]*\}\}\s*")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\]$")
# A raised exception as a traceback prints it: "ValueError: …", "tensorflow.…InvalidArgumentError: …".
_RAISED = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt):(?:\s|$)")
# Lines that carry the reason even when other text comes first.
_REASONS = (re.compile(r"\bis not a valid scope name\b"),)


def _lines(exc_or_text: BaseException | str | None) -> list[str]:
    """The lines of an error that may say what went wrong: blank lines, colours, wrappers,
    traceback frames (with their code lines) and TensorFlow's op prefix and suffix removed."""
    text = "" if exc_or_text is None else _ANSI.sub("", str(exc_or_text))
    kept: list[str] = []
    frame_indent: int | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        indent = len(raw) - len(raw.lstrip())
        if frame_indent is not None and indent > frame_indent:
            continue  # the code under a traceback frame
        frame_indent = None
        if _FRAME.match(line):
            frame_indent = indent
            continue
        if _WRAPPER.match(line):
            continue
        line = _OP_SUFFIX.sub("", _OP_PREFIX.sub("", line))
        if line:
            kept.append(line)
    return kept


def _reason(lines: list[str]) -> str:
    """The line that says why: one naming a known reason, else the last "XxxError: …" line (a
    traceback or a TensorFlow "in user code:" report ends with the error raised), else the first."""
    for line in lines:
        if any(pattern.search(line) for pattern in _REASONS):
            return line
    raised = [line for line in lines if _RAISED.match(line)]
    return raised[-1] if raised else lines[0]


def _shorten(line: str, limit: int | None) -> str:
    return line if limit is None or len(line) <= limit else line[:limit - 1] + "…"


def _fallback(exc_or_text: BaseException | str | None, limit: int | None) -> str:
    """For an error whose own text says nothing: its cause's line, else its class name."""
    if not isinstance(exc_or_text, BaseException):
        return ""
    inner = exc_or_text.__cause__ or exc_or_text.__context__
    if inner is not None and inner is not exc_or_text and _lines(inner):
        return first_line(inner, limit)
    return type(exc_or_text).__name__


def first_line(exc_or_text: BaseException | str | None, limit: int | None = 300) -> str:
    """The line of an error (or of a text) that says why, for a one-line message: Keras's and
    TensorFlow's wrappers ("Exception encountered when calling…", "Graph execution error:", "in
    user code:"), traceback frames, blank lines and terminal colours skipped; a line with a known
    reason ("… is not a valid scope name") or else the last "XxxError: …" line preferred; cut to
    ``limit`` characters (None: uncut). An exception with no text gives its cause's line or its
    class name; a text, ``""``."""
    lines = _lines(exc_or_text)
    if lines:
        return _shorten(_reason(lines), limit)
    return _fallback(exc_or_text, limit)


def last_line(exc_or_text: BaseException | str | None, limit: int | None = 300) -> str:
    """The last line (a traceback's, which names the error), wrappers skipped as in :func:`first_line`."""
    lines = _lines(exc_or_text)
    if lines:
        return _shorten(lines[-1], limit)
    return _fallback(exc_or_text, limit)
