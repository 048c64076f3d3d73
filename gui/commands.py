"""Undo commands. Every user edit is one :class:`OpCommand` (or a macro of them) on the
document's QUndoStack; each calls exactly one document method in ``redo`` and ``undo``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtGui import QUndoCommand

from engine.editing import Op, SetArg, SetGroup, SetSearch
from engine.training import TrainingSettings

if TYPE_CHECKING:  # pragma: no cover
    from .document import Document

SET_ARG_ID = 1
# Steps of one argument closer together than this (spin box arrows held or clicked quickly)
# are one undo step; the window restarts at every step, so holding a key stays one step.
MERGE_WINDOW_S = 1.0


def merge_key(op: Op) -> tuple[str, ...] | None:
    """What a spin box's steps change, for merging them: an argument of a layer, a search range
    of one, or a group (its repeats range); None for an op that never merges."""
    if isinstance(op, SetArg):
        return ("arg", op.name, op.arg)
    if isinstance(op, SetSearch):
        return ("search", op.name, op.arg)
    if isinstance(op, SetGroup) and op.group is not None:
        return ("group", op.name)
    return None


class OpCommand(QUndoCommand):
    """One engine edit. ``redo`` applies it and keeps the exact inverse for ``undo``.

    Consecutive ``mergeable`` commands (spin box steps) on the same argument, range or group
    (:func:`merge_key`) within :data:`MERGE_WINDOW_S` merge into one (Qt asks :meth:`mergeWith`
    when ``id()`` matches); a value typed and committed is always a step of its own."""

    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, document: Document, op: Op, text: str | None = None, *,
                 mergeable: bool = False) -> None:
        super().__init__(text or op.describe())
        self.document = document
        self.op = op
        self.inverse: Op | None = None
        self.stamp = self.clock()
        self.mergeable = mergeable and merge_key(op) is not None

    def redo(self) -> None:
        self.inverse = self.document.apply(self.op)

    def undo(self) -> None:
        assert self.inverse is not None
        self.document.apply(self.inverse)

    def id(self) -> int:
        return SET_ARG_ID if self.mergeable else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not (isinstance(other, OpCommand) and self.mergeable and other.mergeable):
            return False
        if merge_key(other.op) != merge_key(self.op):
            return False
        if other.stamp - self.stamp > MERGE_WINDOW_S:
            return False
        # ``other`` has been applied already; undoing the merged step restores our old value.
        self.op = other.op
        self.stamp = other.stamp
        self.setText(other.text())
        self.setObsolete(self.inverse == self.op)  # stepped back to where it started
        return True


class TrainingCommand(QUndoCommand):
    """New training settings as an undo step (Apply of a sweep's trial: with its design's ops,
    one macro). ``redo`` and ``undo`` each call ``document.set_training`` once."""

    def __init__(self, document: Document, old: TrainingSettings, new: TrainingSettings,
                 text: str = "Set training settings") -> None:
        super().__init__(text)
        self.document, self.old, self.new = document, old, new

    def redo(self) -> None:
        self.document.set_training(self.new, undoable=True)

    def undo(self) -> None:
        self.document.set_training(self.old, undoable=True)
