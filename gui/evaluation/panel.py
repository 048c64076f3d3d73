"""The Evaluation panel: how a trained model performs, where it errs and what it looks at.

:meth:`EvaluationPanel.set_result` evaluates the model on a worker thread (:mod:`.worker`) for
its task (given by the trainer, else inferred) and, when the answer comes back, fills a summary
line and the tabs of that task. A classifier gets five: the confusion matrix with the samples of
the clicked cell, per-class scores, the best/worst samples, feature maps and Grad-CAM. The other
tasks get their own view (:mod:`.multilabel_view`, :mod:`.regression_view`,
:mod:`.reconstruction_view`, :mod:`.segmentation_view`, made on first use: two of them import
pyqtgraph), feature maps, and Grad-CAM per label for a multi-label model (for the others, a
tab that says why it is not offered). Every number comes
from :mod:`engine.evaluation` and :mod:`engine.task_evaluation`; this module only arranges them.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame, QLabel, QProgressBar, QPushButton, QScrollArea, QSplitter, QStackedWidget, QTabWidget, QVBoxLayout,
    QWidget,
)

from engine.datasets import Dataset
from engine.design import Design
from engine.errors import ConvasError
from engine.evaluation import Evaluation, choose_split
from engine.task_evaluation import (
    MultiLabelEvaluation, ReconstructionEvaluation, RegressionEvaluation, SegmentationEvaluation, TaskEvaluation,
)
from engine.tasks import Task
from engine.weights import WeightsKind, WeightsSource

from ..theme import ERROR_COLOR
from ..widgets import mute
from ..workers import Worker
from .class_table import ClassTable
from .confusion import ConfusionView
from .feature_maps import FeatureMapsView
from .gradcam import GradCamView
from .results import Results, TaskResults
from .samples import SampleGrid, SamplesView, shown_note
from .worker import start_evaluation

EMPTY_TEXT = "Train the design to see how it performs"
EMPTY_DETAIL = ("Once a model is trained, this panel shows its accuracy, which classes it confuses, "
                "the samples it gets most wrong, and what its layers look at.")
WEIGHTS_TEXT = "This design has {what}"
WEIGHTS_DETAIL = ("{summary} can be evaluated on the data chosen in the Train panel; training the "
                  "design makes new ones.")
TASK_VIEW_TITLES = {Task.MULTILABEL: "Labels", Task.REGRESSION: "Predicted vs true",
                    Task.RECONSTRUCTION: "Reconstructions", Task.SEGMENTATION: "Masks"}
NO_GRAD_CAM = {
    Task.REGRESSION: "Grad-CAM traces the evidence for a class; a regression model predicts numbers, with no "
                     "class to trace. Feature maps show what its layers see.",
    Task.RECONSTRUCTION: "Grad-CAM traces the evidence for a class; an autoencoder outputs an image, with no "
                         "class to trace. Feature maps show what its layers see.",
    Task.SEGMENTATION: "Grad-CAM traces the evidence for one class of a whole image; a segmentation model "
                       "gives a class per pixel, shown in the Masks tab. Feature maps show what its layers see.",
}


class _MessagePage(QWidget):
    """A centred title and explanation, with an optional busy bar (empty, busy and error states)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(self)
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.detail = QLabel(self)
        self.busy = QProgressBar(self)
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setFixedWidth(220)
        for label in (self.title, self.detail):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mute(self.detail)  # follows the theme, unlike a palette copied now
        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 24, 32, 24)
        layout.setSpacing(10)
        layout.addStretch(1)
        layout.addWidget(self.title)
        layout.addWidget(self.detail)
        layout.addWidget(self.busy, 0, Qt.AlignmentFlag.AlignHCenter)
        self.button = QPushButton(self)  # an action the message offers (shown only with a text)
        self.button.hide()
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)

    def show_message(self, title: str, detail: str = "", busy: bool = False, error: bool = False,
                     button: str = "") -> None:
        self.title.setText(title)
        self.title.setStyleSheet(f"color: {ERROR_COLOR};" if error else "")
        self.detail.setText(detail)
        self.detail.setVisible(bool(detail))
        self.busy.setVisible(busy)
        self.button.setText(button)
        self.button.setVisible(bool(button))


class _FlippingSplitter(QSplitter):
    """Side by side when there is room across, stacked otherwise (the panel may sit in a tall
    narrow dock or a wide one)."""

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        wanted = (Qt.Orientation.Horizontal if self.width() > 1.3 * self.height()
                  else Qt.Orientation.Vertical)
        if wanted != self.orientation():
            self.setOrientation(wanted)
            total = self.width() if wanted == Qt.Orientation.Horizontal else self.height()
            self.setSizes([total * 3 // 5, total - total * 3 // 5])


class EvaluationPanel(QWidget):
    """Evaluates a trained model on a dataset and shows the results.

    ``sigEvaluated`` is emitted (on the GUI thread) once the views show a new evaluation;
    ``sigFailed`` carries a message when the model could not be evaluated.
    """

    sigEvaluated = Signal()
    sigFailed = Signal(str)
    sigEvaluateWeights = Signal()   # the user asked to evaluate the weights offered (offer_weights)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results: Results | None = None
        self.task_results: TaskResults | None = None  # the evaluation of a task but classification
        self.task: Task | None = None                  # the task of the evaluation shown
        self._run = 0
        self._busy = False
        self._pending: tuple[Any, Dataset, Task | None, float, str | None] | None = None
        self._weights: WeightsSource | None = None  # imported or saved weights, offered while empty
        self._loading: Worker | None = None         # builds the model of evaluate_weights
        self._current: tuple[Worker, int, Any, Dataset, float] | None = None  # the run until it answers
        self._task_views: dict[Task, Any] = {}        # made on first use

        self.message_page = _MessagePage(self)
        self.summary = QLabel(self)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setContentsMargins(10, 8, 10, 8)

        self.confusion = ConfusionView(self)
        self.confusion.sigCellClicked.connect(self.show_cell)
        self.cell_note = QLabel(self)
        self.cell_note.setWordWrap(True)
        self.cell_note.setContentsMargins(10, 6, 10, 2)
        self.cell_grid = SampleGrid(self)
        self.class_table = ClassTable(self)
        self.samples = SamplesView(self)
        self.feature_maps = FeatureMapsView(self)
        self.grad_cam = GradCamView(self)

        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._confusion_tab(), "Confusion")
        self.tabs.addTab(self.class_table, "Per class")
        self.tabs.addTab(self.samples, "Samples")
        self.tabs.addTab(self.feature_maps, "Feature maps")
        self.tabs.addTab(self.grad_cam, "Grad-CAM")

        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        content = QWidget(self)
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.setSpacing(0)
        content_layout.addWidget(self.summary)
        content_layout.addWidget(line)
        self.task_tabs = QTabWidget(self)
        self.task_tabs.setDocumentMode(True)
        self.task_view_stack = QStackedWidget(self)
        self.task_feature_maps = FeatureMapsView(self)
        self.no_grad_cam = QLabel(self)
        self.no_grad_cam.setWordWrap(True)
        self.no_grad_cam.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_grad_cam.setContentsMargins(40, 20, 40, 20)
        mute(self.no_grad_cam)
        self.task_grad_cam = GradCamView(self)  # per label, for a multi-label model
        self.grad_cam_stack = QStackedWidget(self)
        self.grad_cam_stack.addWidget(self.no_grad_cam)
        self.grad_cam_stack.addWidget(self.task_grad_cam)
        self.task_tabs.addTab(self.task_view_stack, "Results")
        self.task_tabs.addTab(self.task_feature_maps, "Feature maps")
        self.task_tabs.addTab(self.grad_cam_stack, "Grad-CAM")
        for view in (self.task_feature_maps, self.task_grad_cam):
            view.sigSampleChanged.connect(self.inspect_task_sample)
        self.views = QStackedWidget(self)
        self.views.addWidget(self.tabs)
        self.views.addWidget(self.task_tabs)
        content_layout.addWidget(self.views, 1)
        self.content = content

        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.message_page)
        self.stack.addWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

        self.message_page.button.clicked.connect(self.sigEvaluateWeights)
        for grid in (self.cell_grid, self.samples.grid):
            grid.sigSampleChosen.connect(self.inspect_sample)
            grid.sigInspect.connect(self._inspect_and_show)
        for view in (self.feature_maps, self.grad_cam):
            view.sigSampleChanged.connect(self.inspect_sample)
        self.clear()

    # --- public -------------------------------------------------------------------------------

    @property
    def evaluation(self) -> Evaluation | None:
        return self.results.evaluation if self.results else None

    @property
    def task_evaluation(self) -> TaskEvaluation | None:
        """The result shown for a task other than classification (None otherwise)."""
        return self.task_results.evaluation if self.task_results else None

    def task_view(self, task: Task) -> Any:
        """The view of ``task``'s results (made now if it was not yet)."""
        view = self._task_views.get(task)
        if view is None:
            if task is Task.MULTILABEL:
                from .multilabel_view import MultiLabelView
                view = MultiLabelView(self)
                view.sigThresholdChanged.connect(lambda _t: self._refresh_task_summary())
            elif task is Task.REGRESSION:
                from .regression_view import RegressionView
                view = RegressionView(self)
                view.sigSampleChosen.connect(self.inspect_task_sample)  # a clicked point
            elif task is Task.RECONSTRUCTION:
                from .reconstruction_view import ReconstructionView
                view = ReconstructionView(self)
            else:
                from .segmentation_view import SegmentationView
                view = SegmentationView(self)
            self._task_views[task] = view
            self.task_view_stack.addWidget(view)
            grid = getattr(view, "grid", None) or getattr(view, "worst", None)
            if grid is not None:  # thumbnails choose the sample of the feature maps and Grad-CAM
                grid.sigSampleChosen.connect(self.inspect_task_sample)
                grid.sigInspect.connect(self._inspect_task_sample_and_show)
        return view

    @Slot(int)
    def inspect_task_sample(self, index: int) -> None:
        """Make ``index`` the sample of the task tabs' feature maps and Grad-CAM."""
        self.task_feature_maps.set_sample(index)
        if self.task is Task.MULTILABEL:
            self.task_grad_cam.set_sample(index)

    def _inspect_task_sample_and_show(self, index: int) -> None:
        self.inspect_task_sample(index)
        self.task_tabs.setCurrentWidget(self.grad_cam_stack if self.task is Task.MULTILABEL
                                        else self.task_feature_maps)

    def is_busy(self) -> bool:
        return self._busy

    def set_result(self, model: Any, dataset: Dataset, task: Task | None = None, noise_stddev: float = 0.0,
                   loss: str | None = None) -> None:
        """Evaluate ``model`` on ``dataset`` (its test split, else validation) for ``task`` (None:
        inferred from the model's output and the data) in the background, then show the results.
        ``noise_stddev`` is the noise a denoising autoencoder was trained with, ``loss`` the loss
        trained with (None: the task's default). A call while one runs replaces it once that one
        ends."""
        self._run += 1
        if self._busy:
            self._pending = (model, dataset, task, noise_stddev, loss)
            return
        self._start(model, dataset, task, noise_stddev, loss)

    def clear(self) -> None:
        """Forget the results and invite the user to train (or to evaluate the weights offered)."""
        self._run += 1
        self._pending = None
        self._show_results(None)
        self._show_empty()
        self.stack.setCurrentWidget(self.message_page)

    def offer_weights(self, weights: WeightsSource | None) -> None:
        """While nothing is shown, offer to evaluate ``weights`` (the design's imported or saved
        ones; None: nothing to offer). A click emits ``sigEvaluateWeights``."""
        self._weights = weights if weights is not None and weights.file is not None else None
        if self.results is None and not self._busy and self._loading is None:
            self._show_empty()

    def evaluate_weights(self, weights: WeightsSource, design: Design, dataset: Dataset) -> None:
        """Build ``design``'s model holding ``weights`` (matched by layer name) off the GUI
        thread, then evaluate it on ``dataset`` as :meth:`set_result` does."""
        from ..workers import create_worker

        self._run += 1
        run = self._run
        self.message_page.show_message(f"Loading {weights.summary()}…",
                                       "Building the design's model with them.", busy=True)
        self.stack.setCurrentWidget(self.message_page)
        worker = create_worker(_model_with_weights, design.copy(), weights, name="convas-weights",
                               failure="Could not load the weights")
        self._loading = worker

        def loaded(model: Any) -> None:
            self._loading = None
            if run == self._run:
                self.set_result(model, dataset)

        def failed(message: str) -> None:
            self._loading = None
            if run == self._run:
                self.message_page.show_message("The weights could not be evaluated", message, error=True)
                self.sigFailed.emit(message)

        worker.sigFinished.connect(loaded)
        worker.sigFailed.connect(failed)

    def _show_empty(self) -> None:
        weights = self._weights
        if weights is None:
            self.message_page.show_message(EMPTY_TEXT, EMPTY_DETAIL)
            return
        which = "imported" if weights.kind is WeightsKind.IMPORTED else "saved"
        self.message_page.show_message(WEIGHTS_TEXT.format(what=f"{which} weights"),
                                       WEIGHTS_DETAIL.format(summary=_capitalized(weights.summary())),
                                       button=f"Evaluate {which} weights")

    @Slot(int, int)
    def show_cell(self, true_class: int, predicted_class: int) -> None:
        """List the samples of one confusion cell under the matrix, most confident first."""
        if self.results is None:
            return
        self.confusion.select(true_class, predicted_class)
        indices = self.results.evaluation.cell(true_class, predicted_class)
        self.cell_grid.show_samples(self.results, indices)
        true_name = html.escape(self.results.name(true_class))
        pred_name = html.escape(self.results.name(predicted_class))
        if true_class == predicted_class:
            what = f"<b>{true_name}</b> recognised correctly"
        else:
            what = f"<b>{true_name}</b> mistaken for <b>{pred_name}</b>"
        order = "most confident first"
        self.cell_note.setText(f"{what}: {shown_note(self.cell_grid.count(), len(indices), order)}")

    @Slot(int)
    def inspect_sample(self, index: int) -> None:
        """Make ``index`` the sample of the feature-map and Grad-CAM tabs."""
        self.feature_maps.set_sample(index)
        self.grad_cam.set_sample(index)

    # --- running ------------------------------------------------------------------------------

    def _start(self, model: Any, dataset: Dataset, task: Task | None = None, noise_stddev: float = 0.0,
               loss: str | None = None) -> None:
        self._busy = True
        run = self._run
        try:
            where = f"the {choose_split(dataset)[0]} split"
        except ConvasError:
            where = "the dataset"  # the worker reports what is wrong
        self.message_page.show_message(f"Evaluating on {where}…",
                                       "Predicting every sample with the trained model.", busy=True)
        self.stack.setCurrentWidget(self.message_page)
        worker = start_evaluation(model, dataset, task, noise_stddev, loss)
        worker.sigFinished.connect(self._on_finished)
        worker.sigFailed.connect(self._on_failed)
        self._current = (worker, run, model, dataset, noise_stddev)

    @Slot(object)
    def _on_finished(self, answer: tuple[Task, Any]) -> None:
        if self._current is None:
            return
        _worker, run, model, dataset, noise_stddev = self._current
        if self._end_run(run):
            task, evaluation = answer
            if task is Task.CLASSIFICATION:
                self._show_results(Results(model, dataset, evaluation))
            else:
                self.show_task_results(TaskResults(model, dataset, task, evaluation, noise_stddev))
            self.stack.setCurrentWidget(self.content)
            self.sigEvaluated.emit()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self._current is None:
            return
        if self._end_run(self._current[1]):
            self._show_results(None)
            self.message_page.show_message("The model could not be evaluated", message, error=True)
            self.stack.setCurrentWidget(self.message_page)
            self.sigFailed.emit(message)

    def _end_run(self, run: int) -> bool:
        """Finish bookkeeping of ``run``; True when its answer is still wanted."""
        self._current = None
        self._busy = False
        if self._pending is not None:
            pending = self._pending
            self._pending = None
            self._start(*pending)
            return False
        return run == self._run

    # --- showing ------------------------------------------------------------------------------

    def show_task_results(self, results: TaskResults | None) -> None:
        """Show the evaluation of a task other than classification (made elsewhere, e.g. by
        ``from_arrays``): its view, feature maps, and why Grad-CAM is not offered."""
        self._show_results(None)
        self.task_results = results
        self.task = results.task if results is not None else None
        for task, view in self._task_views.items():
            if results is None or task is not results.task:
                view.set_results(None)
        if results is None:
            self.task_feature_maps.set_results(None)
            self.task_grad_cam.set_results(None)
            return
        view = self.task_view(results.task)
        view.set_results(results)
        self.task_view_stack.setCurrentWidget(view)
        self.task_tabs.setTabText(0, TASK_VIEW_TITLES[results.task])
        self.task_tabs.setCurrentIndex(0)
        self.task_feature_maps.set_results(results)
        if results.task is Task.MULTILABEL:
            self.task_grad_cam.set_results(results)
            self.grad_cam_stack.setCurrentWidget(self.task_grad_cam)
        else:
            self.task_grad_cam.set_results(None)
            self.no_grad_cam.setText(NO_GRAD_CAM[results.task])
            self.grad_cam_stack.setCurrentWidget(self.no_grad_cam)
        self._refresh_task_summary()
        self.views.setCurrentWidget(self.task_tabs)
        self.stack.setCurrentWidget(self.content)

    def _refresh_task_summary(self) -> None:
        if self.task_results is not None:
            self.summary.setText(task_summary_html(self.task_results.evaluation))

    def _show_results(self, results: Results | None) -> None:
        if results is not None or self.task_results is not None:
            self.task_results, self.task = None, (Task.CLASSIFICATION if results is not None else None)
            for view in self._task_views.values():
                view.set_results(None)
            self.task_feature_maps.set_results(None)
            self.task_grad_cam.set_results(None)
        self.views.setCurrentWidget(self.tabs)
        self.results = results
        evaluation = results.evaluation if results else None
        if evaluation is not None:
            self.summary.setText(self._summary_html(evaluation))
            self.confusion.set_matrix(evaluation.confusion, evaluation.class_names)
        else:
            self.summary.clear()
            self.confusion.set_matrix([], [])
        self.class_table.set_evaluation(evaluation)
        self.samples.set_results(results)
        self.feature_maps.set_results(results)
        self.grad_cam.set_results(results)
        self.cell_grid.clear()
        self.cell_note.clear()
        if evaluation is not None:
            self._show_biggest_confusion(evaluation)

    def _show_biggest_confusion(self, evaluation: Evaluation) -> None:
        """Open on the most frequent mistake (or, with none, the largest class)."""
        errors = evaluation.confusion.copy()
        errors[range(len(errors)), range(len(errors))] = 0
        if errors.max() > 0:
            t, p = divmod(int(errors.argmax()), len(errors))
        else:
            t = p = int(evaluation.confusion.diagonal().argmax())
        self.show_cell(t, p)

    @staticmethod
    def _summary_html(evaluation: Evaluation) -> str:
        n = len(evaluation)
        wrong = int((evaluation.y_pred != evaluation.y_true).sum())
        loss = f"{evaluation.loss:.4g}" if evaluation.loss is not None else "n/a"
        parts = [f"<b>{evaluation.split_name.capitalize()}</b> split, {n:,} samples",
                 f"accuracy&nbsp;<b>{evaluation.accuracy:.1%}</b>",
                 f"loss&nbsp;<b>{loss}</b>",
                 f"{wrong:,}&nbsp;mistake{'s' if wrong != 1 else ''}"]
        return "&nbsp;&nbsp;·&nbsp;&nbsp;".join(parts)

    def _confusion_tab(self) -> QWidget:
        scroll = QScrollArea(self)
        scroll.setWidget(self.confusion)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        below = QWidget(self)
        below_layout = QVBoxLayout(below)
        below_layout.setContentsMargins(0, 0, 0, 0)
        below_layout.setSpacing(2)
        below_layout.addWidget(self.cell_note)
        below_layout.addWidget(self.cell_grid, 1)
        splitter = _FlippingSplitter(Qt.Orientation.Vertical, self)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(scroll)
        splitter.addWidget(below)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        return splitter

    def _inspect_and_show(self, index: int) -> None:
        self.inspect_sample(index)
        self.tabs.setCurrentWidget(self.grad_cam)


def task_summary_html(evaluation: TaskEvaluation) -> str:
    """The summary line of a task's evaluation: the split, its size and the task's main numbers."""
    def loss_text(loss: float | None) -> str:
        return f"loss&nbsp;<b>{loss:.4g}</b>" if loss is not None else "loss&nbsp;<b>n/a</b>"

    ev = evaluation
    head = f"<b>{ev.split_name.capitalize()}</b> split, {len(ev):,} samples"
    if isinstance(ev, MultiLabelEvaluation):
        parts = [f"exact match&nbsp;<b>{ev.exact_match:.1%}</b>", f"label accuracy&nbsp;<b>{ev.label_accuracy:.1%}</b>",
                 f"precision&nbsp;<b>{ev.precision:.3f}</b>", f"recall&nbsp;<b>{ev.recall:.3f}</b>",
                 f"at threshold&nbsp;{ev.threshold:.2f}", loss_text(ev.loss)]
    elif isinstance(ev, RegressionEvaluation):
        parts = [f"R²&nbsp;<b>{ev.r2:.3f}</b>", f"MAE&nbsp;<b>{ev.mae:.4g}</b>", loss_text(ev.loss)]
    elif isinstance(ev, ReconstructionEvaluation):
        ratio = f" ({ev.mse / ev.variance:.1%} of the data variance {ev.variance:.4f})" if ev.variance > 0 else ""
        noise = [f"denoising σ&nbsp;{ev.noise_stddev:g}"] if ev.noise_stddev > 0 else []
        parts = [f"MSE&nbsp;<b>{ev.mse:.4f}</b>{ratio}", f"MAE&nbsp;<b>{ev.mae:.4f}</b>", *noise]
    else:
        assert isinstance(ev, SegmentationEvaluation)
        parts = [f"mean IoU&nbsp;<b>{ev.mean_iou:.3f}</b>", f"pixel accuracy&nbsp;<b>{ev.pixel_accuracy:.1%}</b>",
                 loss_text(ev.loss)]
    return "&nbsp;&nbsp;·&nbsp;&nbsp;".join([head, *parts])


def _model_with_weights(_state: Any, design: Design, weights: WeightsSource) -> Any:
    """The design's Keras model holding ``weights`` (on a worker thread: imports TensorFlow).
    Strict: a layer the file lacks is an error naming it, not a silently fresh layer."""
    from engine.quiet_tf import importing_tensorflow
    from engine.weights import model_with_weights

    with importing_tensorflow():
        import keras  # noqa: F401  (the slow import, on this thread)
    model, _fresh = model_with_weights(design, weights, strict=True)
    return model


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]
