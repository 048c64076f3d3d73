"""The Evaluation panel driven as a user would: waiting for the results, reading the confusion
matrix, clicking a cell, browsing samples, switching layers and classes.

The model has fixed weights, so every prediction is known: it predicts a class from an image's
mean brightness (dark < 1/3 < mid < 2/3 < bright). Its two convolutions copy the image into 4 and
70 channels, so the feature-map view has a small layer and one above the 64-tile cap.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.datasets import Dataset, Split
from gui.evaluation import EvaluationPanel
from gui.evaluation.feature_maps import MAX_CHANNELS
from gui.evaluation.panel import EMPTY_TEXT

pytestmark = pytest.mark.slow  # builds a Keras model; the first test imports TensorFlow
TIMEOUT_MS = 120_000
NAMES = ["dark", "mid", "bright"]
# (true class, brightness) of every validation sample; three are predicted wrongly.
SAMPLES = ([(0, v) for v in (0.05, 0.08, 0.1, 0.12, 0.15)] + [(0, 0.8), (0, 0.9)]
           + [(1, v) for v in (0.45, 0.5, 0.52, 0.55)] + [(1, 0.1)]
           + [(2, v) for v in (0.85, 0.9, 0.92, 0.95)])
CONFUSION = [[5, 0, 2],
             [1, 4, 0],
             [0, 0, 4]]


@pytest.fixture(scope="module")
def model():
    import keras

    inputs = keras.Input((8, 8, 1))
    copies = keras.layers.Conv2D(4, 1, activation="relu", name="conv_a")(inputs)
    many = keras.layers.Conv2D(70, 1, activation="relu", name="conv_b")(copies)
    mean = keras.layers.GlobalAveragePooling2D(name="gap")(many)
    outputs = keras.layers.Dense(3, activation="softmax", name="classes")(mean)
    model = keras.Model(inputs, outputs)
    model.get_layer("conv_a").set_weights([np.ones((1, 1, 1, 4), np.float32), np.zeros(4, np.float32)])
    model.get_layer("conv_b").set_weights([np.full((1, 1, 4, 70), 0.25, np.float32), np.zeros(70, np.float32)])
    # logits: dark 10 - 30m, mid 0, bright 30m - 20 for an image of mean m
    kernel = np.zeros((70, 3), np.float32)
    kernel[:, 0], kernel[:, 2] = -30 / 70, 30 / 70
    model.get_layer("classes").set_weights([kernel, np.array([10, 0, -20], np.float32)])
    return model


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    rng = np.random.default_rng(0)
    x = np.stack([np.clip(level + rng.normal(0, 0.01, (8, 8, 1)), 0, 1) for _, level in SAMPLES])
    y = np.array([label for label, _ in SAMPLES], np.int64)
    split = Split(x.astype(np.float32), y)
    return Dataset("brightness", NAMES, split, split)


@pytest.fixture
def panel(qtbot) -> EvaluationPanel:
    widget = EvaluationPanel()
    qtbot.addWidget(widget)
    widget.resize(900, 650)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture
def evaluated(panel, qtbot, model, dataset) -> EvaluationPanel:
    with qtbot.waitSignal(panel.sigEvaluated, timeout=TIMEOUT_MS):
        panel.set_result(model, dataset)
    return panel


def test_before_training_the_panel_says_what_to_do(panel):
    assert panel.stack.currentWidget() is panel.message_page
    assert panel.message_page.title.text() == EMPTY_TEXT
    assert panel.message_page.title.isVisible()


def test_the_summary_and_confusion_matrix_show_the_known_counts(evaluated):
    panel = evaluated
    assert panel.stack.currentWidget() is panel.content
    summary = panel.summary.text()
    assert "Validation" in summary and "16 samples" in summary and f"{13 / 16:.1%}" in summary
    assert "3&nbsp;mistakes" in summary
    shown = [[panel.confusion.cell_text(t, p) for p in range(3)] for t in range(3)]
    assert shown == [[str(n) for n in row] for row in CONFUSION]
    assert panel.confusion.class_names == NAMES


def test_clicking_a_confusion_cell_lists_its_mistakes_with_probabilities(evaluated, qtbot):
    panel = evaluated
    panel.tabs.setCurrentIndex(0)
    view = panel.confusion
    probabilities = panel.evaluation.probabilities
    for (t, p), count in (((0, 2), 2), ((1, 0), 1), ((2, 2), 4)):
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.cell_rect(t, p).center().toPoint())
        assert view.selected == (t, p)
        assert panel.cell_grid.count() == count
        indices = panel.cell_grid.indices()
        for index, caption in zip(indices, panel.cell_grid.captions()):
            assert caption == f"pred {NAMES[p]} ({probabilities[index, p]:.2f})\ntrue {NAMES[t]}"
        confidence = [probabilities[i, p] for i in indices]
        assert confidence == sorted(confidence, reverse=True)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.cell_rect(0, 2).center().toPoint())
    assert panel.cell_grid.captions() == ["pred bright (1.00)\ntrue dark", "pred bright (0.98)\ntrue dark"]
    assert "dark</b> mistaken for <b>bright" in panel.cell_note.text()


def test_the_per_class_table_has_one_row_per_class_and_sorts_by_number(evaluated):
    table = evaluated.class_table
    assert table.table.rowCount() == 3
    assert [table.cell_text(r, 0) for r in range(3)] == NAMES
    # mid: predicted 4 times, all right (precision 1), 4 of 5 found (recall 0.8)
    assert [table.cell_text(1, c) for c in range(1, 5)] == ["1.000", "0.800", "0.889", "5"]
    table.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)  # recall, as a header click does
    assert [table.cell_text(r, 0) for r in range(3)] == ["bright", "mid", "dark"]


def test_samples_show_worst_or_best_first_with_mistakes_in_red(evaluated, qtbot):
    view = evaluated.samples
    evaluation = evaluated.evaluation
    assert view.grid.count() == 16 and "16 samples" in view.note.text()
    assert view.grid.indices() == evaluation.ranked(best_first=False).tolist()
    first = view.grid.item(0)
    assert first.foreground().color().name() == "#e5484d"  # the worst one is a mistake
    qtbot.mouseClick(view.best_button, Qt.MouseButton.LeftButton)
    assert view.grid.indices() == evaluation.ranked(best_first=True).tolist()
    assert view.grid.item(0).foreground().style() == Qt.BrushStyle.NoBrush


def test_choosing_a_thumbnail_inspects_that_sample(evaluated, qtbot):
    panel = evaluated
    panel.tabs.setCurrentWidget(panel.samples)
    grid = panel.samples.grid
    rect = grid.visualItemRect(grid.item(2))
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    chosen = grid.indices()[2]
    assert panel.feature_maps.chooser.index() == chosen
    assert panel.grad_cam.chooser.index() == chosen


def settled(view, qtbot) -> None:
    """Wait until the view has shown the answer to its latest request."""
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=TIMEOUT_MS)


def test_switching_the_feature_map_layer_shows_one_tile_per_channel(evaluated, qtbot):
    panel = evaluated
    panel.tabs.setCurrentWidget(panel.feature_maps)
    view = panel.feature_maps
    assert view.layer_names() == ["conv_a", "conv_b"]
    settled(view, qtbot)  # shown: the first layer, computed
    assert view.layer_name() == "conv_a" and view.tile_count() == 4
    assert "all 4 channels" in view.note.text()
    with qtbot.waitSignal(view.sigComputed, timeout=TIMEOUT_MS):
        view.select_layer("conv_b")
    assert view.tile_count() == MAX_CHANNELS == 64
    assert "the first 64 of 70 channels" in view.note.text()
    with qtbot.waitSignal(view.sigComputed, timeout=TIMEOUT_MS):
        view.chooser.spin.setValue(5)
    assert view.tile_count() == 64 and panel.grad_cam.chooser.index() == 5


def test_feature_maps_and_grad_cam_are_computed_off_the_gui_thread(evaluated, qtbot, monkeypatch):
    import threading

    from gui.evaluation import feature_maps as feature_maps_module, gradcam as gradcam_module

    ran_on: dict[str, int] = {}
    for module, name in ((feature_maps_module, "feature_maps"), (gradcam_module, "grad_cam")):
        original = getattr(module, name)

        def recording(*args, _original=original, _name=name, **kwargs):
            ran_on[_name] = threading.get_ident()
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, recording)
    panel = evaluated
    for view in (panel.feature_maps, panel.grad_cam):
        with qtbot.waitSignal(view.sigComputed, timeout=TIMEOUT_MS):
            qtbot.mouseClick(panel.tabs.tabBar(), Qt.MouseButton.LeftButton,
                             pos=panel.tabs.tabBar().tabRect(panel.tabs.indexOf(view)).center())
        assert panel.tabs.currentWidget() is view
    main = threading.get_ident()
    assert set(ran_on) == {"feature_maps", "grad_cam"}
    assert main not in ran_on.values()


def test_a_newer_request_replaces_an_older_one(evaluated, qtbot):
    panel = evaluated
    panel.tabs.setCurrentWidget(panel.feature_maps)
    view = panel.feature_maps
    settled(view, qtbot)
    shown = []
    view.sigComputed.connect(lambda: shown.append((view.layer_name(), view.tile_count())))
    assert view.layer_name() == "conv_a"
    view.select_layer("conv_b")  # three requests in a row, each before the last has answered
    view.chooser.spin.setValue(3)
    view.select_layer("conv_a")
    assert view.is_busy()
    settled(view, qtbot)
    # Only the latest request is shown; the first runs, but its answer is dropped.
    assert shown == [("conv_a", 4)]
    assert "conv_a" in view.note.text() and view.chooser.index() == 3


def test_a_slow_computation_shows_a_busy_bar_until_its_answer(evaluated, qtbot, monkeypatch):
    import threading

    from gui.evaluation import feature_maps as feature_maps_module

    release = threading.Event()
    original = feature_maps_module.feature_maps
    monkeypatch.setattr(feature_maps_module, "feature_maps",
                        lambda *args: release.wait(10) and original(*args))
    panel = evaluated
    view = panel.feature_maps
    panel.tabs.setCurrentWidget(view)
    assert view.is_busy()
    qtbot.waitUntil(view.busy_bar.isVisible, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(view.sigComputed, timeout=TIMEOUT_MS):
        release.set()
    assert not view.is_busy() and not view.busy_bar.isVisible() and view.tile_count() == 4


def test_closing_the_panel_mid_evaluation_neither_aborts_nor_answers(qtbot, model, dataset):
    from gui import workers

    widget = EvaluationPanel()
    widget.show()
    widget.set_result(model, dataset)
    assert widget.is_busy() and workers.running() >= 1
    widget.close()
    widget.deleteLater()  # the worker, not the panel, owns the running thread
    qtbot.waitUntil(lambda: workers.running() == 0, timeout=TIMEOUT_MS)


def test_grad_cam_overlays_a_heat_map_on_the_sample(evaluated, qtbot):
    panel = evaluated
    with qtbot.waitSignal(panel.grad_cam.sigComputed, timeout=TIMEOUT_MS):
        panel.tabs.setCurrentWidget(panel.grad_cam)
    view = panel.grad_cam
    assert view.layer_name() == "conv_b"  # the last convolution
    overlay = view.overlay_image()
    assert overlay is not None and (overlay.width(), overlay.height()) == (8, 8)
    assert not view.overlay_view.pixmap().isNull() and view.overlay_view.pixmap().width() > 64
    predicted = int(panel.evaluation.y_pred[0])
    assert view.last.class_index == predicted
    assert f"{panel.evaluation.probabilities[0, predicted]:.2f}" in view.note.text()
    with qtbot.waitSignal(view.sigComputed, timeout=TIMEOUT_MS):
        view.class_combo.setCurrentIndex(view.class_combo.findData(1))  # ask about "mid" instead
    assert view.last.class_index == 1 and "<b>mid</b>" in view.note.text()


def test_a_model_that_does_not_fit_the_data_is_explained(panel, qtbot, model, dataset):
    two = Dataset("two", ["a", "b"], dataset.train, dataset.validation)
    with qtbot.waitSignal(panel.sigFailed, timeout=TIMEOUT_MS) as failed:
        panel.set_result(model, two)
    assert "3 units" in failed.args[0] and "2 classes" in failed.args[0]
    assert panel.stack.currentWidget() is panel.message_page
    assert "3 units" in panel.message_page.detail.text()


def test_clear_returns_to_the_invitation(evaluated):
    evaluated.clear()
    assert evaluated.stack.currentWidget() is evaluated.message_page
    assert evaluated.message_page.title.text() == EMPTY_TEXT
    assert evaluated.results is None and evaluated.confusion.confusion.size == 0
