"""Errors the engine raises. Each carries a message written for the person using Convas."""

from __future__ import annotations


class ConvasError(Exception):
    """Base of every error Convas reports to a user (never shown as a traceback)."""


class FileFormatError(ConvasError):
    """A file could not be read: malformed, truncated, of another format or a newer version."""


class UnsupportedLayerError(ConvasError):
    """A model uses layers Convas does not know (custom classes, Lambda, ...), listed by name."""

    def __init__(self, message: str, layers: list[str] | None = None) -> None:
        super().__init__(message)
        self.layers = list(layers or [])
