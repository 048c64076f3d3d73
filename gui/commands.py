"""Undo commands. Every user edit is one :class:`OpCommand` (or a macro of them) on the
document's QUndoStack; each calls exactly one document method in ``redo`` and ``undo``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QUndoCommand

from engine.editing import Op

if TYPE_CHECKING:  # pragma: no cover
    from .document import Document


class OpCommand(QUndoCommand):
    """One engine edit. ``redo`` applies it and keeps the exact inverse for ``undo``."""

    def __init__(self, document: "Document", op: Op, text: str | None = None) -> None:
        super().__init__(text or op.describe())
        self.document = document
        self.op = op
        self.inverse: Op | None = None

    def redo(self) -> None:
        self.inverse = self.document.apply(self.op)

    def undo(self) -> None:
        assert self.inverse is not None
        self.document.apply(self.inverse)
