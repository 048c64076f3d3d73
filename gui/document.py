"""The open document: the design, its analysis, its file and its undo stack.

The document owns the truth; the canvas, inspector and summary only mirror it through the
signals below. Every change goes through :meth:`Document.edit` (one undoable step made of engine
ops); the design is re-analysed once per step, when the undo stack's index moves. That analysis
is incremental: :meth:`Document.apply` notes the layers each op touched (:func:`engine.editing.touched_by`), and
only what lies downstream of them is analysed again (``analysis.changes`` names the reports that
are new, so the views redraw only those).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QUndoStack

from engine.analysis import Analysis, analyse
from engine.design import Design
from engine.editing import (
    AddNode, Arrange, Connect, Disconnect, Move, Op, RemoveNode, Rename, RestoreNode, SetGroup,
    SetNodeGroup, SetSearch, apply_op, touched_by,
)
from engine.pixel_range import PixelRange
from engine.sweep_settings import SweepSettings
from engine.training import TrainingSettings
from engine.weights import WeightsSource

from .commands import OpCommand


class Document(QObject):
    nodeAdded = Signal(str)
    nodeRemoved = Signal(str)
    nodeRenamed = Signal(str, str)
    nodeMoved = Signal(str)
    arranged = Signal()                  # many cards moved at once (a layout): re-place them all
    groupsChanged = Signal()             # a group was added, removed, collapsed, expanded or filled
    inputsChanged = Signal(str)          # the inbound connections of this node changed
    analysed = Signal()                  # self.analysis is new
    designReset = Signal()               # a whole new design (new, open, revert)
    pathChanged = Signal()
    weightsChanged = Signal()            # self.weights is new
    trainingChanged = Signal()           # self.training is new (the Train panel, or a fix)
    searchChanged = Signal(str)          # a search range of this layer changed
    sweepChanged = Signal()              # self.sweep is new (the Sweep panel)
    modifiedChanged = Signal(bool)

    def __init__(self, design: Design | None = None, path: Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.design = design or Design()
        self.path: Path | None = path
        self.weights: WeightsSource | None = None  # imported or saved weights (a .keras file), see reset()
        self.training = TrainingSettings()       # the data and settings the Train panel shows
        self.training_error: str | None = None   # why the opened file's settings were unusable
        self.sweep = SweepSettings()             # how the Sweep panel searches (saved with the project)
        self.sweep_error: str | None = None      # why the opened file's sweep settings were unusable
        self.batch_size = 32
        self._unsaved_without_history = False
        self._resetting = False
        self.undo_stack = QUndoStack(self)
        self.undo_stack.indexChanged.connect(self._on_index_changed)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        # The layers the ops applied since the last analysis touched (None: anything may have
        # changed, so the next analysis is a full one).
        self._touched: set[str] | None = None
        self.analysis: Analysis = self._analyse()

    @Slot(int)
    def _on_index_changed(self, _index: int) -> None:
        if not self._resetting:
            self.reanalyse()

    @Slot(bool)
    def _on_clean_changed(self, clean: bool) -> None:
        self.modifiedChanged.emit(self.modified)

    # --- state ----------------------------------------------------------------------------

    @property
    def modified(self) -> bool:
        return self._unsaved_without_history or not self.undo_stack.isClean()

    def mark_unsaved(self) -> None:
        """Flag changes that have no undo history (a design restored from an autosave)."""
        self._unsaved_without_history = True
        self.modifiedChanged.emit(True)

    def mark_saved(self) -> None:
        self._unsaved_without_history = False
        self.undo_stack.setClean()
        self.modifiedChanged.emit(False)

    def title(self) -> str:
        """The file's name; before the first save, the design's own name (an example opens as
        "seed_cnn", File → New as "Untitled")."""
        if self.path is not None:
            return self.path.name
        return self.design.name or "Untitled"

    @property
    def weights_file(self) -> Path | None:
        """The ``.keras`` file whose weights exports and training start from (by layer name)."""
        return self.weights.file if self.weights is not None else None

    def reset(self, design: Design, path: Path | None = None, training: TrainingSettings | None = None,
              weights: WeightsSource | None = None, training_error: str | None = None,
              sweep: SweepSettings | None = None, sweep_error: str | None = None) -> None:
        """Replace the whole design (new/open/revert): a fresh undo history, not modified.
        ``weights`` are those of an imported ``.keras`` model or saved beside the project."""
        self.design = design
        self.path = path
        self.weights = weights
        self.training = training if training is not None else TrainingSettings()
        self.training_error = training_error
        self.sweep = sweep if sweep is not None else SweepSettings()
        self.sweep_error = sweep_error
        self._unsaved_without_history = False
        self._touched = None
        self._resetting = True  # clearing the history moves its index: no analysis of that
        try:
            self.undo_stack.clear()
            self.undo_stack.setClean()
        finally:
            self._resetting = False
        # Analysed before anyone hears of the new design: designReset handlers read the analysis.
        self.analysis = self._analyse()
        self.designReset.emit()
        self.sweepChanged.emit()
        self.pathChanged.emit()
        self.weightsChanged.emit()
        self.analysed.emit()
        self.modifiedChanged.emit(False)

    def set_path(self, path: Path) -> None:
        self.path = path
        self.pathChanged.emit()

    def set_weights(self, weights: WeightsSource | None, *, saved: bool = False) -> None:
        """New weights for exports and training to start from; ``saved``: they are the ones the
        project file on disk names, otherwise the change is unsaved."""
        self.weights = weights
        self.weightsChanged.emit()
        if not saved:
            self.mark_unsaved()

    def set_training(self, training: TrainingSettings, *, undoable: bool = False) -> None:
        """New training settings (chosen in the Train panel, or by a fix): an unsaved change,
        unless ``undoable`` (an undo command's step, which the undo stack's clean state tracks).
        A new pixel range is re-analysed: the design's preprocessing is checked against it."""
        old_range = self.training.pixel_range
        self.training = training
        self.training_error = None
        if not undoable:
            self.mark_unsaved()
        self.trainingChanged.emit()
        if training.pixel_range is not old_range:
            self.reanalyse()

    def set_sweep(self, sweep: SweepSettings) -> None:
        """New sweep settings (chosen in the Sweep panel): an unsaved change."""
        if sweep == self.sweep:
            return
        self.sweep = sweep
        self.sweep_error = None
        self.mark_unsaved()
        self.sweepChanged.emit()

    def project_parts(self) -> dict:
        """What :func:`engine.project_file.save_project` writes besides the design and weights:
        the training settings and the sweep settings (only when they are not the defaults)."""
        return {"training": self.training.to_dict(),
                "sweep": self.sweep.to_dict() if self.sweep != SweepSettings() else None}

    def set_pixel_range(self, pixel_range: PixelRange) -> None:
        """Deliver the training data in ``pixel_range`` (the SET_PIXEL_RANGE fix)."""
        if pixel_range is not self.training.pixel_range:
            self.set_training(replace(self.training, pixel_range=pixel_range))

    def set_batch_size(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.reanalyse()

    def reanalyse(self) -> None:
        """Analyse the design again (after an edit, or at a new batch size or pixel range) and
        tell the views."""
        self.analysis = self._analyse()
        self.analysed.emit()

    def _analyse(self) -> Analysis:
        """The analysis at the batch size shown, knowing the range the training data delivers:
        from the previous one when the ops applied since say what they touched."""
        touched, self._touched = self._touched, set()
        if touched is None:
            return analyse(self.design, self.batch_size, input_range=self.training.pixel_range)
        return analyse(self.design, self.batch_size, input_range=self.training.pixel_range,
                       previous=self.analysis, touched=touched)

    # --- editing --------------------------------------------------------------------------

    def edit(self, text: str, ops: Sequence[Op], *, merge: bool = False) -> None:
        """Run ``ops`` as one undoable step named ``text``. ``merge``: a step of a spin box that
        joins the previous step on the same argument when it follows quickly (see OpCommand)."""
        ops = list(ops)
        if not ops:
            return
        if len(ops) == 1:
            self.undo_stack.push(OpCommand(self, ops[0], text, mergeable=merge))
            return
        self.undo_stack.beginMacro(text)
        for op in ops:
            self.undo_stack.push(OpCommand(self, op))
        self.undo_stack.endMacro()

    def apply(self, op: Op) -> Op:
        """Perform one engine op and announce what changed (called by undo commands only)."""
        readers: list[str] = []
        if isinstance(op, (RemoveNode, Rename)):
            name = op.name if isinstance(op, RemoveNode) else op.old
            readers = sorted({n for n, _c, _s in self.design.consumers(name)})
        if self._touched is not None:
            touched = touched_by(self.design, op)
            if touched is None:
                self._touched = None
            else:
                self._touched |= touched
        inverse = apply_op(self.design, op)
        if isinstance(op, AddNode):
            self.nodeAdded.emit(op.name)
        elif isinstance(op, RestoreNode):
            self.nodeAdded.emit(op.node.name)
            for target in sorted({c[0] for c in op.consumers}):
                self.inputsChanged.emit(target)
        elif isinstance(op, RemoveNode):
            self.nodeRemoved.emit(op.name)
            for target in readers:
                self.inputsChanged.emit(target)
        elif isinstance(op, (Connect, Disconnect)):
            self.inputsChanged.emit(op.target)
        elif isinstance(op, Rename):
            self.nodeRenamed.emit(op.old, op.new)
            for target in readers:
                self.inputsChanged.emit(target)
        elif isinstance(op, Move):
            self.nodeMoved.emit(op.name)
        elif isinstance(op, Arrange):
            self.arranged.emit()
        elif isinstance(op, (SetGroup, SetNodeGroup)):
            self.groupsChanged.emit()
        elif isinstance(op, SetSearch):
            self.searchChanged.emit(op.name)
        return inverse
