"""The Evaluation panel's views of multi-label, regression, reconstruction and segmentation
results, driven as a user would. The results are made by ``from_arrays`` and the "model" is a
numpy function, so nothing trains and nothing imports TensorFlow (except the one test that
evaluates a real Keras model through the panel)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from engine.datasets import Dataset, Split
from engine.task_evaluation import (
    MultiLabelEvaluation, ReconstructionEvaluation, RegressionEvaluation, SegmentationEvaluation,
)
from engine.tasks import TargetKind, Task
from gui.evaluation import EvaluationPanel
from gui.evaluation.results import TaskResults

TIMEOUT_MS = 60_000


class NumpyModel:
    """Stands in for a Keras model: called on a batch of images, answers with ``function``."""

    def __init__(self, function) -> None:
        self.function = function
        self.layers: list = []

    def __call__(self, images, training=False):
        return self.function(np.asarray(images, dtype=np.float32))


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 8, 8, 1)).astype(np.float32)


def _dataset(x, y, names, target) -> Dataset:
    split = Split(x, y)
    return Dataset("tiny", names, split, test=split, target=target)


@pytest.fixture
def panel(qtbot) -> EvaluationPanel:
    widget = EvaluationPanel()
    qtbot.addWidget(widget)
    widget.resize(1000, 650)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _click_row(qtbot, table, row: int) -> None:
    rect = table.visualRect(table.model().index(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


# --- regression ----------------------------------------------------------------------------------

def regression_results() -> TaskResults:
    x = _images(40, 1)
    truth = np.stack([x.mean(axis=(1, 2, 3)), x.max(axis=(1, 2, 3)) * 10], axis=1)
    predicted = truth + np.random.default_rng(2).normal(0, [0.01, 1.0], truth.shape)
    ev = RegressionEvaluation.from_arrays(truth, predicted, ["brightness", "peak"], "test")
    return TaskResults(NumpyModel(lambda i: i), _dataset(x, truth.astype(np.float32), ["brightness", "peak"],
                                                           TargetKind.VALUES), Task.REGRESSION, ev)


def test_clicking_a_regression_target_plots_that_targets_points(panel, qtbot):
    results = regression_results()
    panel.show_task_results(results)
    view = panel.task_view(Task.REGRESSION)
    assert panel.views.currentWidget() is panel.task_tabs and panel.task_tabs.tabText(0) == "Predicted vs true"
    assert "R²&nbsp;<b>" in panel.summary.text()
    ev = results.evaluation
    x, y = view.shown_points()
    np.testing.assert_allclose(x, ev.y_true[:, 0])
    assert view.table.isVisible() and view.table.rowCount() == 2
    with qtbot.waitSignal(view.sigTargetShown):
        _click_row(qtbot, view.table, view.table.table_row(1))
    x, y = view.shown_points()
    np.testing.assert_allclose(x, ev.y_true[:, 1])
    np.testing.assert_allclose(y, ev.y_pred[:, 1])
    assert view.plot.title().startswith("peak: R² ") and f"{ev.per_target[1].r2:.3f}" in view.plot.title()
    worst = int(np.argmax(np.abs(ev.y_pred[:, 1] - ev.y_true[:, 1])))
    assert view.worst.indices()[0] == worst  # the worst samples now speak of the peak
    assert view.worst.captions()[0] == results.caption(worst)
    # Clicking a point picks its sample for the feature maps.
    k = int(np.argmax(ev.y_true[:, 1]))  # the rightmost point, away from the crowd
    box = view.plot.getPlotItem().getViewBox()
    where = view.plot.mapFromScene(box.mapViewToScene(QPointF(float(ev.y_true[k, 1]), float(ev.y_pred[k, 1]))))
    with qtbot.waitSignal(view.sigSampleChosen) as chosen:
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert chosen.args == [k] and panel.task_feature_maps.chooser.index() == k
    assert view.worst_note.text().startswith(f"Sample {k}: pred ")


def test_one_regression_target_shows_only_its_scatter(panel):
    x = _images(10)
    ev = RegressionEvaluation.from_arrays(x.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)) + 0.1, ["mean"], "test")
    panel.show_task_results(TaskResults(NumpyModel(lambda i: i), _dataset(x, x.mean(axis=(1, 2)), ["mean"],
                                                                           TargetKind.VALUES), Task.REGRESSION, ev))
    view = panel.task_view(Task.REGRESSION)
    assert not view.table.isVisible() and "MAE 0.1" in view.plot.title()


# --- multi-label ---------------------------------------------------------------------------------

def test_threshold_slider_rescores_the_labels_at_once(panel, qtbot):
    x = _images(6)
    truth = np.array([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0], [0, 1]], np.float32)
    scores = np.array([[0.9, 0.1], [0.47, 0.8], [0.2, 0.46], [0.1, 0.2], [0.48, 0.3], [0.3, 0.9]], np.float32)
    ev = MultiLabelEvaluation.from_arrays(truth, scores, ["cat", "dog"], "test")
    panel.show_task_results(TaskResults(NumpyModel(lambda i: i), _dataset(x, truth, ["cat", "dog"],
                                                                           TargetKind.MULTI_HOT), Task.MULTILABEL, ev))
    view = panel.task_view(Task.MULTILABEL)
    assert panel.task_tabs.tabText(0) == "Labels"
    assert view.table.text(0, 0) == "cat" and view.table.text(0, 2) == "0.333"  # recall of cat at 0.50
    assert "exact match&nbsp;<b>50.0%</b>" in panel.summary.text()
    view.slider.setFocus()
    with qtbot.waitSignal(view.sigThresholdChanged):
        qtbot.keyClick(view.slider, Qt.Key.Key_PageDown)  # 0.50 → 0.45
    assert view.threshold_label.text() == "Threshold 0.45"
    assert view.table.text(0, 2) == "1.000" and view.table.text(1, 2) == "1.000"
    assert "exact match&nbsp;<b>100.0%</b>" in panel.summary.text()
    qtbot.waitUntil(lambda: view.grid.count() == 6 and "pred cat, dog\ntrue cat, dog" in view.grid.captions())


# --- segmentation --------------------------------------------------------------------------------

def segmentation_results(n: int = 5) -> TaskResults:
    x = _images(n, 3)
    truth = (x[..., 0] > 0.5).astype(np.int64)
    truth[:, :2, :] = 2  # a band of class 2 the "model" never predicts: IoU differs per image

    def predict(images):
        bright = images[..., 0] > 0.5
        return np.stack([~bright, bright, np.zeros_like(bright)], axis=-1).astype(np.float32)

    predicted = np.stack([predict(x[i:i + 1])[0] for i in range(n)]).argmax(axis=-1)
    names = ["background", "square", "band"]
    ev = SegmentationEvaluation.from_arrays(truth, predicted, names, "test")
    return TaskResults(NumpyModel(predict), _dataset(x, truth, names, TargetKind.MASK), Task.SEGMENTATION, ev)


def test_segmentation_browses_worst_first_with_masks_and_opacity(panel, qtbot):
    results = segmentation_results()
    view = panel.task_view(Task.SEGMENTATION)
    with qtbot.waitSignal(view.sigImageShown, timeout=TIMEOUT_MS) as shown:
        panel.show_task_results(results)
    ev = results.evaluation
    assert shown.args == [int(ev.worst[0])] and panel.task_tabs.tabText(0) == "Masks"
    assert view.table.text(2, 0) == "band" and view.table.text(2, 1) == "0.000"
    assert f"{ev.mean_iou:.3f}" in view.scores.text() and "background" in view.legend.text()
    worst_image = results.split.x[int(ev.worst[0])]
    np.testing.assert_array_equal(view.masks[int(ev.worst[0])], worst_image[..., 0] > 0.5)  # the model's mask
    assert not view.previous_button.isEnabled()  # the worst image has none worse
    predicted_before = view.predicted_view.image().copy()
    view.opacity.setFocus()
    qtbot.keyClick(view.opacity, Qt.Key.Key_End)
    assert view.opacity.value() == 100 and view.predicted_view.image() != predicted_before
    with qtbot.waitSignal(view.sigImageShown, timeout=TIMEOUT_MS) as shown:
        qtbot.mouseClick(view.next_button, Qt.MouseButton.LeftButton)
    assert view.position.value() == 2 and shown.args == [int(ev.worst[1])]
    assert ev.per_image_iou[ev.worst[0]] <= ev.per_image_iou[ev.worst[1]]
    assert view.previous_button.isEnabled()


# --- reconstruction ------------------------------------------------------------------------------

def test_reconstruction_orders_and_noisy_inputs(panel, qtbot):
    x = _images(20, 4)
    halve = NumpyModel(lambda images: images * 0.5)
    ev = ReconstructionEvaluation.from_arrays(x, x * 0.5, "test", noise_stddev=0.1)
    results = TaskResults(halve, _dataset(x, np.zeros(20, np.int64), ["all"], TargetKind.CLASS),
                          Task.RECONSTRUCTION, ev, noise_stddev=0.1)
    view = panel.task_view(Task.RECONSTRUCTION)
    with qtbot.waitSignal(view.sigPicturesShown, timeout=TIMEOUT_MS):
        panel.show_task_results(results)
    assert panel.task_tabs.tabText(0) == "Reconstructions" and "denoising σ&nbsp;0.1" in panel.summary.text()
    assert view.row_names == ["Noisy input (σ 0.1)", "Clean input", "Output", "|Difference|"]
    assert view.shown_indices == [int(i) for i in ev.worst[:8]]
    with qtbot.waitSignal(view.sigPicturesShown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(view.buttons["best"], Qt.MouseButton.LeftButton)
    assert view.shown_indices == [int(i) for i in ev.best[:8]]
    assert view.mean_line.value() == pytest.approx(ev.mse) and view.variance_line.value() == pytest.approx(ev.variance)
    assert "of the data variance" in view.plot.title()
    assert view.variance_line.isVisible() and not view.variance_arrow.isVisible()
    # A model far better than the mean image: the variance is off the errors' scale, and says so.
    close = ReconstructionEvaluation.from_arrays(x, x * 0.99, "test")
    with qtbot.waitSignal(view.sigPicturesShown, timeout=TIMEOUT_MS):
        panel.show_task_results(TaskResults(NumpyModel(lambda images: images * 0.99), results.dataset,
                                            Task.RECONSTRUCTION, close))
    assert view.row_names == ["Input", "Output", "|Difference|"]
    assert view.variance_arrow.isVisible() and view.variance_arrow.textItem.toPlainText() == (
        f"data variance {close.variance:.4f} →")


def test_panel_switches_views_by_task_and_explains_grad_cam(panel):
    panel.show_task_results(regression_results())
    assert panel.task is Task.REGRESSION and "no class to trace" in panel.no_grad_cam.text()
    panel.show_task_results(segmentation_results())
    assert panel.task is Task.SEGMENTATION
    assert panel.task_view_stack.currentWidget() is panel.task_view(Task.SEGMENTATION)
    assert panel.task_tabs.tabText(2) == "Grad-CAM" and "class per pixel" in panel.no_grad_cam.text()
    panel.clear()
    assert panel.task_results is None and panel.stack.currentWidget() is panel.message_page


@pytest.mark.slow
def test_a_trained_regression_model_is_evaluated_as_regression(panel, qtbot):
    import keras

    x = _images(12, 5)
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
    data = _dataset(x, x.mean(axis=(1, 2)), ["brightness"], TargetKind.VALUES)
    with qtbot.waitSignal(panel.sigEvaluated, timeout=TIMEOUT_MS):
        panel.set_result(model, data)  # no task given: inferred from the data's numeric targets
    assert panel.task is Task.REGRESSION and isinstance(panel.task_evaluation, RegressionEvaluation)
    assert panel.task_evaluation.r2 == pytest.approx(1.0)
    assert panel.task_tabs.isVisible() and panel.task_tabs.tabText(1) == "Feature maps"


@pytest.mark.slow
def test_a_multilabel_model_has_feature_maps_and_grad_cam_per_label(panel, qtbot):
    import keras

    x = _images(12, 6)
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(inputs)
    scores = keras.layers.Dense(2, activation="sigmoid", name="labels")(keras.layers.GlobalAveragePooling2D()(conv))
    model = keras.Model(inputs, scores)
    labels = (np.random.default_rng(7).random((12, 2)) < 0.5).astype(np.float32)
    with qtbot.waitSignal(panel.sigEvaluated, timeout=TIMEOUT_MS):
        panel.set_result(model, _dataset(x, labels, ["cat", "dog"], TargetKind.MULTI_HOT), Task.MULTILABEL)
    assert panel.task is Task.MULTILABEL and panel.grad_cam_stack.currentWidget() is panel.task_grad_cam
    with qtbot.waitSignal(panel.task_grad_cam.sigComputed, timeout=TIMEOUT_MS):
        panel.task_tabs.setCurrentWidget(panel.grad_cam_stack)
    cam = panel.task_grad_cam
    assert [cam.class_combo.itemText(i) for i in range(3)] == ["Highest-scoring label", "cat", "dog"]
    assert "highest-scoring label" in cam.note.text() and "score <b>" in cam.note.text()
    with qtbot.waitSignal(panel.task_feature_maps.sigComputed, timeout=TIMEOUT_MS):
        panel.task_tabs.setCurrentWidget(panel.task_feature_maps)
    assert panel.task_feature_maps.tile_count() == 3
