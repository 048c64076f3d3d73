"""The Train panel driven as a user would: choosing data, editing settings, Train/Stop, closing.

Training tests are marked slow: the first one imports TensorFlow (about 17 s) on the worker
thread; each run after that is one short epoch of the seed CNN on the built-in digits.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from engine.editing import SetArg, plan_delete
from engine.examples import seed_design
from engine.project_file import load_project, save_project
from engine.tasks import Task
from engine.training import MessageKind, TrainingSettings
from engine.weights import WeightsKind
from gui.main_window import MainWindow
from gui.theme import WARNING_COLOR
from gui.training.series import BatchSeries
from gui.training.settings_form import _log_steps

TRAIN_TIMEOUT_MS = 180_000  # the first run includes the TensorFlow import
PROJECT = "Convas projects (*.convas)"


def type_into(qtbot, spin, text: str) -> None:
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text)
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)


def choose(qtbot, combo, text: str) -> None:
    """Pick ``text`` in a combo box with the keyboard (as a user tabbing through the form)."""
    combo.setFocus()
    target = combo.findText(text)
    assert target >= 0, text
    key = Qt.Key.Key_Down if target > combo.currentIndex() else Qt.Key.Key_Up
    while combo.currentIndex() != target:
        qtbot.keyClick(combo, key)
    assert combo.currentText() == text


def short_run(qtbot, panel, epochs: int = 1, batch: int = 64) -> None:
    type_into(qtbot, panel.form.epochs_spin, str(epochs))
    type_into(qtbot, panel.form.batch_spin, str(batch))
    assert panel.form.config().epochs == epochs and panel.form.config().batch_size == batch


def click_train(qtbot, panel):
    assert panel.train_button.isEnabled()
    qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    assert panel.is_training() and panel.session.worker is not None
    return panel.session.worker


def fits(label) -> bool:
    """All of ``label``'s text is on screen: wrapped to its width, it needs no more height."""
    from PySide6.QtCore import QRect

    rect = label.contentsRect()
    needed = label.fontMetrics().boundingRect(QRect(0, 0, max(rect.width(), 1), 10_000),
                                              int(Qt.TextFlag.TextWordWrap), label.text())
    return label.isVisible() and needed.width() <= rect.width() and needed.height() <= rect.height()


def wait_for_a_batch(qtbot, worker) -> None:
    """Wait until the worker has trained a batch. Not ``qtbot.waitSignal(worker.sigBatch)``: the
    worker emits on its own thread, where the blocker would stop its GUI-thread timer (Qt warns
    "Timers cannot be stopped from another thread")."""
    trained = threading.Event()
    worker.sigBatch.connect(lambda *_: trained.set(), Qt.ConnectionType.DirectConnection)
    qtbot.waitUntil(trained.is_set, timeout=TRAIN_TIMEOUT_MS)


# --- no TensorFlow -------------------------------------------------------------------------------

def test_window_start_leaves_the_panel_idle_and_light(window):
    panel = window.train_panel
    assert panel.curves is None and panel.dataset is None  # nothing heavy until it is shown
    assert not panel.is_training() and not panel.stop_button.isEnabled()


def test_dataset_box_shows_digits_counts_and_shapes_replace_them(panel, qtbot):
    summary = panel.dataset_box.summary_label.text()
    assert "1,438</b> training" in summary and "359</b> validation" in summary and "10</b> classes" in summary
    counts = [int(label.text().replace(",", "")) for label in panel.sample_preview.count_labels]
    assert len(counts) == 10 and sum(counts) == 1438
    assert [label.toolTip() for label in panel.sample_preview.class_labels] == [str(i) for i in range(10)]
    assert panel.train_button.isEnabled() and not panel.problem_label.isVisible()

    choose(qtbot, panel.dataset_box.combo, "Shapes")
    qtbot.waitUntil(lambda: "4</b> classes" in panel.dataset_box.summary_label.text(), timeout=30_000)
    summary = panel.dataset_box.summary_label.text()
    assert "1,600</b> training" in summary and "400</b> validation" in summary
    assert [label.toolTip() for label in panel.sample_preview.class_labels] == \
        ["circle", "square", "triangle", "cross"]
    # The document keeps typed settings, converted to a dict only when a file is written.
    assert isinstance(panel.document.training, TrainingSettings)
    assert panel.document.training.dataset == "shapes" and panel.window().isWindowModified()
    # Four classes do not fit the seed CNN's ten outputs: said in red, and Train is off.
    assert not panel.train_button.isEnabled()
    assert "units=4" in panel.problem_label.text()


def test_output_units_that_do_not_fit_the_data_block_training(panel, qtbot):
    panel.document.edit("Set units", [SetArg("dense", "units", 4)])
    text = panel.problem_label.text()
    assert panel.problem_label.isVisible() and "Cannot train yet" in text
    assert "10 classes" in text and "4 units" in text and "units=10" in text
    assert not panel.train_button.isEnabled() and not panel.act_train.isEnabled()
    panel.document.undo_stack.undo()
    assert panel.train_button.isEnabled() and not panel.problem_label.isVisible()


def test_an_invalid_design_is_explained_before_training(panel):
    panel.document.edit("Bad kernel", [SetArg("conv2d_1", "kernel_size", 15)])
    assert "fix them before training" in panel.problem_label.text()
    assert not panel.train_button.isEnabled()


def test_settings_survive_save_and_reopen(window, panel, qtbot, tmp_path, monkeypatch):
    type_into(qtbot, panel.form.epochs_spin, "12")
    choose(qtbot, panel.form.optimizer_combo, "RMSprop")
    type_into(qtbot, panel.form.lr_spin, "3e-4")
    assert window.isWindowModified()
    target = tmp_path / "trained.convas"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), PROJECT))
    window.act_save_as.trigger()
    saved = load_project(target).training
    assert saved["epochs"] == 12 and saved["optimizer"] == "rmsprop" and saved["dataset"] == "digits"
    assert math.isclose(saved["learning_rate"], 3e-4)

    monkeypatch.setattr(window, "choose_start_design", seed_design)  # the start dialog's choice
    window.new_file()
    assert panel.form.epochs_spin.value() == 8 and panel.form.optimizer_combo.currentText() == "Adam"
    assert window.open_path(target, ask=False)
    assert panel.form.epochs_spin.value() == 12
    assert panel.form.optimizer_combo.currentText() == "RMSprop"
    assert panel.form.lr_spin.text() == "0.0003"
    assert not window.isWindowModified()


def test_unusable_saved_settings_fall_back_to_defaults_with_a_message(window, panel, tmp_path):
    path = tmp_path / "odd.convas"
    save_project(path, seed_design(), {"epochs": -3, "optimizer": "adam"})
    assert window.open_path(path, ask=False)
    assert panel.form.epochs_spin.value() == 8
    assert "not usable" in window.statusBar().currentMessage()
    assert "epochs" in window.statusBar().currentMessage()


def test_learning_rate_steps_along_one_two_five():
    assert _log_steps(1e-3, 1) == pytest.approx(2e-3)
    assert _log_steps(1e-3, -1) == pytest.approx(5e-4)
    assert _log_steps(3e-4, 1) == pytest.approx(5e-4)
    assert _log_steps(5e-3, 2) == pytest.approx(2e-2)


def test_batch_series_recovers_each_batch_from_keras_running_means():
    values = [2.0, 1.0, 4.0, 3.0]  # three full batches of 10 and a last batch of 5
    sizes = [10, 10, 10, 5]
    series = BatchSeries(samples=35, batch_size=10, smoothing=0.5)
    total = seen = 0.0
    for batch, (value, size) in enumerate(zip(values, sizes)):
        total += value * size
        seen += size
        series.append(0, batch, 4, total / seen)
    assert np.allclose(series.raw.view(), values)
    assert np.allclose(series.x.view(), [0.25, 0.5, 0.75, 1.0])
    assert series.smooth.view()[0] == pytest.approx(2.0)  # unbiased from the first value
    series.append(1, 0, 4, 7.0)  # a new epoch restarts the running mean
    assert series.raw.view()[-1] == pytest.approx(7.0)


# --- training (TensorFlow) ------------------------------------------------------------------------

@pytest.mark.slow
def test_a_short_run_draws_curves_and_hands_on_the_model(panel, qtbot):
    short_run(qtbot, panel)
    assert not panel.curves.legend.isVisible()  # no empty legend box before the first run
    started, finished = [], []
    panel.sigTrainingStarted.connect(lambda: started.append(True))
    panel.sigTrainingFinished.connect(lambda *handed: finished.append(handed))
    with qtbot.waitSignal(panel.sigTrainingFinished, timeout=TRAIN_TIMEOUT_MS):
        click_train(qtbot, panel)
        assert "snapshot of the design from" in panel.snapshot_label.text()
        assert "edits apply to the next run" in panel.snapshot_label.text()
        qtbot.waitUntil(lambda: fits(panel.snapshot_label), timeout=5_000)
        assert not panel.train_button.isEnabled() and panel.stop_button.isEnabled()
    assert started and finished
    model, data, task, noise, loss = finished[0]
    assert model is panel.result_model and data is panel.dataset and panel.result_dataset is data
    assert task is Task.CLASSIFICATION and noise == 0.0 and loss is None  # what evaluating it needs
    run = panel.curves.current
    x, raw = run.curve("loss", "raw").getData()
    assert len(x) == 23 and np.all(np.isfinite(raw)) and x[-1] == pytest.approx(1.0)
    assert len(run.curve("loss", "smooth").getData()[1]) == 23
    assert len(run.curve("metric", "validation").getData()[0]) == 1
    assert panel.progress.value() == panel.progress.maximum() == 23
    assert "Run 1 · training" in panel.curves.legend_names() and panel.curves.legend.isVisible()
    assert panel.state == "idle" and panel.train_button.isEnabled() and not panel.stop_button.isEnabled()
    assert panel.epoch_label.text().startswith("Epoch 1: loss")


@pytest.mark.slow
def test_stop_ends_the_run_within_a_batch_and_keeps_the_model(panel, qtbot):
    short_run(qtbot, panel, epochs=20)
    worker = click_train(qtbot, panel)
    wait_for_a_batch(qtbot, worker)
    with qtbot.waitSignal(panel.sigTrainingFinished, timeout=30_000):
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
        assert panel.state == "stopping" and not panel.stop_button.isEnabled()
    assert worker.batches_after_stop <= 1
    assert panel.state == "idle" and not panel.is_training() and panel.result_model is not None
    assert panel.result.stopped_early and "stopped on request" in panel.message_label.text().lower()
    # Message lines carry the style's icons, not glyphs a font may lack (ⓘ shows as a box on Linux).
    assert "<img src='data:image/png" in panel.message_label.text()
    assert not any(glyph in panel.message_label.text() for glyph in "ⓘ⚠✕")
    assert panel.session.batches_seen < 20 * 23


@pytest.mark.slow
def test_pause_holds_the_run_until_resumed(panel, qtbot):
    short_run(qtbot, panel, epochs=20)
    click_train(qtbot, panel)
    # The panel shows "running" once the first batch's queued signal has reached it.
    qtbot.waitUntil(lambda: panel.state == "running", timeout=TRAIN_TIMEOUT_MS)
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert panel.state == "paused" and panel.pause_button.text() == "Resume"
    qtbot.wait(300)  # a batch that was running ends, then nothing more arrives
    seen = panel.session.batches_seen
    qtbot.wait(400)
    assert panel.session.batches_seen == seen
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.session.batches_seen > seen, timeout=10_000)
    assert panel.stop_and_wait()


@pytest.mark.slow
def test_nan_guard_names_the_batch_and_suggests_a_lower_learning_rate(panel, qtbot):
    short_run(qtbot, panel)
    choose(qtbot, panel.form.optimizer_combo, "SGD (momentum)")
    type_into(qtbot, panel.form.lr_spin, "1e6")
    assert panel.form.config().learning_rate == 1e6
    with qtbot.waitSignal(panel.sigTrainingFinished, timeout=TRAIN_TIMEOUT_MS):
        click_train(qtbot, panel)
    text = panel.message_label.text()
    assert panel.message_label.isVisible() and WARNING_COLOR in text
    assert "epoch 1, batch" in text and ("NaN" in text or "infinite" in text)
    assert "lower the learning rate" in text


@pytest.mark.slow
def test_closing_during_training_stops_it_then_closes(window, panel, qtbot, monkeypatch):
    short_run(qtbot, panel, epochs=20)
    worker = click_train(qtbot, panel)
    task = panel.session.task
    wait_for_a_batch(qtbot, worker)
    asked = []
    monkeypatch.setattr(window, "ask_stop_training", lambda verb: asked.append(verb) or False)
    assert not window.close()  # Cancel: the run goes on
    assert asked == ["close"] and panel.is_training() and task.is_running()
    monkeypatch.setattr(window, "ask_stop_training", lambda verb: True)
    window.document.mark_saved()  # only the training question here, not the unsaved-changes one
    assert window.close()
    assert not task.is_running() and not panel.is_training() and not window.isVisible()
    assert panel.result_model is not None


@pytest.mark.slow
def test_editing_the_canvas_during_training_does_not_touch_the_run(window, panel, qtbot):
    short_run(qtbot, panel, epochs=2)
    with qtbot.waitSignal(panel.sigTrainingFinished, timeout=TRAIN_TIMEOUT_MS):
        worker = click_train(qtbot, panel)
        wait_for_a_batch(qtbot, worker)
        window.document.edit("Delete", plan_delete(window.document.design, ["dense", "flatten"]))
        assert "dense" not in window.document.design.nodes
        # The run goes on: the edited design's problems are about the next run, not blocking this one.
        text = panel.problem_label.text()
        assert "Cannot train yet" not in text and "The next run cannot start yet" in text
        assert panel.stop_button.isEnabled()
    assert not panel.result.stopped_early and panel.result.epochs_run == 2
    assert "dense" in [layer.name for layer in panel.result_model.layers]
    # The edited design no longer fits the data: shown now that the run is over.
    assert panel.problem_label.isVisible() and not panel.train_button.isEnabled()


@pytest.mark.slow
def test_new_file_during_training_asks_first(window, panel, qtbot, monkeypatch):
    short_run(qtbot, panel, epochs=20)
    worker = click_train(qtbot, panel)
    wait_for_a_batch(qtbot, worker)
    monkeypatch.setattr(window, "ask_stop_training", lambda verb: verb == "open another design")
    window.document.mark_saved()
    monkeypatch.setattr(window, "choose_start_design", seed_design)  # the start dialog's choice
    window.new_file()
    assert not panel.is_training() and panel.result_model is None  # a new design starts clean


@pytest.mark.slow
def test_after_training_the_evaluation_dock_shows_the_validation_results(window, panel, qtbot):
    """Train through the window: the Evaluation dock fills with a confusion matrix whose cells
    add up to the validation split, and the accuracy it states matches those counts."""
    short_run(qtbot, panel)
    evaluation = window.evaluation
    with qtbot.waitSignal(evaluation.sigEvaluated, timeout=TRAIN_TIMEOUT_MS):
        click_train(qtbot, panel)
    classes = len(panel.dataset.class_names)
    counts = np.array([[int(evaluation.confusion.cell_text(t, p)) for p in range(classes)]
                       for t in range(classes)])
    assert counts.sum() == len(panel.dataset.validation) > 0
    accuracy = np.trace(counts) / counts.sum()
    assert f"{accuracy * 100:.1f}%" in evaluation.summary.text()
    assert "Validation" in evaluation.summary.text()
    # In the dock as training left it, at the default window size: every class name and axis
    # title of the matrix whole and on screen; Grad-CAM at the last convolution.
    window._docks["Evaluation"].raise_()
    view = evaluation.confusion

    def cut_labels() -> list[str]:
        visible = view.visibleRegion().boundingRect()
        return [label.text for label in view.axis_labels()
                if label.shown != label.text or not visible.contains(label.rect.toAlignedRect())]

    qtbot.waitUntil(lambda: view.isVisible() and not cut_labels())  # once the docks have settled
    assert evaluation.grad_cam.layer_name() == "conv2d_1"


@pytest.mark.slow
def test_an_imported_model_is_fine_tuned_from_its_weights(window, qtbot, tmp_path):
    from pretrained import save_pretrained

    source = tmp_path / "pretrained.keras"
    saved_bias = save_pretrained(source)
    assert window.open_path(source, ask=False)
    window.act_show_training.trigger()
    panel = window.train_panel
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=60_000)
    short_run(qtbot, panel)
    with qtbot.waitSignal(panel.sigTrainingFinished, timeout=TRAIN_TIMEOUT_MS):
        click_train(qtbot, panel)
    assert any(message.kind is MessageKind.INFO and "Starting from the weights of pretrained.keras" in message.text
               for message in panel.session.messages)
    tuned = panel.result_model.get_layer("dense").get_weights()[1]
    assert np.all(np.abs(tuned - saved_bias) < 0.5)  # a few Adam steps from +5, not from 0


# --- weights kept with the project -------------------------------------------------------------

def save_as(window, monkeypatch, target) -> None:
    """File → Save As… with the file dialog answering ``target``."""
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), PROJECT))
    window.act_save_as.trigger()
    assert window.document.path == target and not window.document.modified


def reopened(new_window, path) -> MainWindow:
    """The project opened in a second window, as after restarting Convas."""
    again = new_window(settings="settings2.ini", recovery="recovery2")
    assert again.open_path(path, ask=False)
    return again


@pytest.mark.slow
def test_trained_weights_are_saved_beside_the_project_and_reopened(window, new_window, panel, qtbot, tmp_path,
                                                                   monkeypatch):
    import keras

    short_run(qtbot, panel)
    with qtbot.waitSignal(panel.sigTrainingFinished, timeout=TRAIN_TIMEOUT_MS):
        click_train(qtbot, panel)
    qtbot.waitUntil(lambda: not panel.is_training() and panel.result_model is not None, timeout=30_000)
    assert window.document.modified and window.isWindowModified()  # trained, not saved yet
    trained = panel.result_model.get_layer("dense").get_weights()[1]

    target = tmp_path / "net.convas"
    save_as(window, monkeypatch, target)
    weights_file = tmp_path / "net.weights.keras"
    saved = keras.saving.load_model(weights_file, compile=False).get_layer("dense").get_weights()[1]
    assert np.array_equal(saved, trained)
    assert window.act_forget_weights.isEnabled() and "net.weights.keras" in window.act_forget_weights.text()

    # Saving again does not rewrite the weights file (they are already on disk).
    before = weights_file.stat()
    window.act_save.trigger()
    assert (weights_file.stat().st_ino, weights_file.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    again = reopened(new_window, target)
    assert again.document.weights_file == weights_file
    weights = again.export_weights()
    assert weights.kind is WeightsKind.SAVED and weights.file == weights_file
    assert weights.label() == ("Saved weights — trained on digits for 1 epoch, in net.weights.keras, "
                               "matched by layer name")


@pytest.mark.slow
def test_imported_weights_survive_save_reopen_and_can_be_forgotten(window, new_window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from pretrained import save_pretrained

    source = tmp_path / "pretrained.keras"
    save_pretrained(source)
    assert window.open_path(source, ask=False)
    folder = tmp_path / "project"
    folder.mkdir()
    save_as(window, monkeypatch, folder / "tuned.convas")
    source.unlink()  # the project no longer needs the imported file
    assert (folder / "tuned.weights.keras").is_file()

    again = reopened(new_window, folder / "tuned.convas")
    assert again.document.weights.description == "imported from pretrained.keras"
    assert again.export_weights().label() == ("Saved weights — imported from pretrained.keras, in "
                                         "tuned.weights.keras, matched by layer name")

    # Forgetting them: exports and training start fresh, and the project is modified.
    again.act_forget_weights.trigger()
    assert again.document.weights is None and again.document.modified
    assert not again.act_forget_weights.isEnabled()
    assert again.export_weights().kind is WeightsKind.FRESH
    again.document.mark_saved()

    # A missing weights file: the design opens with fresh weights, and a dialog says why.
    (folder / "tuned.weights.keras").unlink()
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: shown.append((title, text)))
    assert again.open_path(folder / "tuned.convas", ask=False)
    assert list(again.document.design.nodes) == list(seed_design().nodes)
    assert again.document.weights is None
    assert shown and shown[0][0] == "Opened tuned.convas"
    assert "tuned.weights.keras is not beside the project" in shown[0][1]
