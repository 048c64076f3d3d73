"""The training session behind the Train panel, and what the panel and the Evaluation dock show
when designs are replaced (issue 12): driven through menus and buttons as a user would.

Tests marked slow train (TensorFlow); the others load only the built-in digits.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QRect, Qt
from PySide6.QtWidgets import QWidget
from test_training_panel import TRAIN_TIMEOUT_MS, click_train, short_run

from gui.training.session import RunState, TrainingSession

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def panel(window, qtbot):
    """The Train panel, shown through the Train menu, with the digits loaded."""
    window.act_show_training.trigger()
    panel = window.train_panel
    qtbot.waitUntil(lambda: panel.session.dataset is not None, timeout=60_000)
    return panel


def example_action(window, name: str):
    """The File → Examples menu's action for example ``name``."""
    for action in window.examples_menu.actions():
        if action.data() == name:
            return action
    raise AssertionError(f"no example {name!r} in the menu")


# --- no TensorFlow -------------------------------------------------------------------------------

def test_the_session_holds_the_run_and_no_widgets(window, panel):
    # Neither the session nor the modules it uses (data loading, the worker) touch widgets.
    import gui.training.loading
    import gui.training.session
    import gui.training.worker
    import gui.workers

    for module in (gui.training.session, gui.training.loading, gui.training.worker, gui.workers):
        source = inspect.getsource(module)
        assert "QtWidgets" not in source and "dataset_box" not in source, module.__name__

    session = panel.session
    assert isinstance(session, TrainingSession) and not isinstance(session, QWidget)
    assert not any(isinstance(child, QWidget) for child in session.findChildren(QObject))
    assert session.state is RunState.IDLE and panel.state == "idle"
    assert not session.is_training() and session.can_train()
    assert panel.dataset is session.dataset and panel.result_model is session.result_model is None


def test_importing_the_session_loads_no_widgets():
    # The package itself imports nothing, so the session comes without the panel and its widgets.
    code = "import sys, gui.training.session; print(sorted(m for m in sys.modules if 'QtWidgets' in m))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_opening_an_example_with_the_train_panel_open_raises_nothing(window, panel, qtbot):
    """The Train panel reads the analysis when a design is replaced: it must be the new one's
    (it was the old one's: KeyError 'dense' on stderr)."""
    window.document.mark_saved()
    with qtbot.captureExceptions() as exceptions:
        example_action(window, "lenet5").trigger()
        qtbot.waitUntil(lambda: not panel.session.is_loading(), timeout=60_000)
    assert not exceptions, exceptions
    assert window.document.design.name == "lenet5"  # its output, dense_2, is not in the old analysis
    assert panel.session.io is not None and panel.session.dataset is not None


def test_the_curves_legend_sits_above_the_plots_not_on_them(qtbot):
    from gui.training.curves import TrainingCurves

    curves = TrainingCurves()
    qtbot.addWidget(curves)
    curves.resize(900, 300)
    curves.show()
    qtbot.waitExposed(curves)
    curves.start_run(1000, 50, 4)
    curves.start_run(1000, 50, 4)  # two runs: four legend entries
    for epoch in range(4):
        curves.add_epoch(epoch, {"loss": 1.0 / (1 + epoch), "val_loss": 1.2 / (1 + epoch),
                                 "accuracy": 0.5, "val_accuracy": 0.5})
    curves.flush()
    qtbot.wait(50)

    def on_screen(view, item) -> QRect:
        rect = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
        return QRect(view.mapToGlobal(rect.topLeft()), rect.size())

    legend = on_screen(curves.legend.scene().views()[0], curves.legend)
    assert legend.width() > 0 and len(curves.legend_names()) == 4
    for widget in curves.plots.values():
        box = on_screen(widget, widget.getPlotItem().getViewBox())
        assert not legend.intersects(box), (legend, box)


# --- training (TensorFlow) ------------------------------------------------------------------------

@pytest.mark.slow
def test_a_never_trained_example_shows_nothing_of_the_last_run(window, panel, qtbot):
    short_run(qtbot, panel)
    with qtbot.waitSignal(panel.sigTrainingFinished, timeout=TRAIN_TIMEOUT_MS):
        click_train(qtbot, panel)
    assert panel.stats_label.text().startswith("Finished after 1 epoch")
    assert panel.snapshot_label.text().startswith("Trained a snapshot of the design from")
    assert panel.session.state is RunState.IDLE and panel.session.result_model is not None

    window.document.mark_saved()
    with qtbot.captureExceptions() as exceptions:
        example_action(window, "lenet5").trigger()
    assert not exceptions, exceptions
    assert panel.stats_label.text() == "" and panel.epoch_label.text() == ""
    assert panel.snapshot_label.isHidden() and panel.message_label.isHidden()
    assert panel.progress.format() == "Not started" and panel.progress.value() == 0
    assert panel.result_model is None and panel.session.messages == []


@pytest.mark.slow
def test_a_reopened_project_offers_to_evaluate_its_saved_weights(window, new_window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from pretrained import save_pretrained

    source = tmp_path / "pretrained.keras"
    save_pretrained(source)
    assert window.open_path(source, ask=False)
    target = tmp_path / "net.convas"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "Convas projects (*.convas)"))
    window.act_save_as.trigger()
    assert (tmp_path / "net.weights.keras").is_file()

    again = new_window(settings="settings2.ini", recovery="recovery2")
    again.show()
    qtbot.waitExposed(again)
    assert again.open_path(target, ask=False)
    evaluation = again.evaluation
    button = evaluation.message_page.button
    assert button.isVisibleTo(evaluation) and button.text() == "Evaluate saved weights"
    assert "Train the design" not in evaluation.message_page.title.text()
    assert "saved weights" in evaluation.message_page.title.text()

    again._docks["Evaluation"].show()
    again._docks["Evaluation"].raise_()
    with qtbot.waitSignal(evaluation.sigEvaluated, timeout=TRAIN_TIMEOUT_MS):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert "Validation" in evaluation.summary.text()
    assert evaluation.results is not None
    # The model evaluated holds the saved weights (the pretrained bias was shifted by +5).
    bias = evaluation.results.model.get_layer("dense").get_weights()[1]
    assert bias.min() > 4.0


@pytest.mark.slow
def test_the_first_training_prints_nothing_on_stderr():
    """TensorFlow's INFO lines and its cuInit error must not reach the terminal of a user who
    trains (a fresh interpreter: the test run itself has TensorFlow loaded and quietened)."""
    script = textwrap.dedent("""
        from PySide6.QtCore import QEventLoop
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from engine.datasets import load_digits_dataset
        from engine.examples import seed_design
        from engine.training import TrainingConfig
        from gui.training.worker import TrainingWorker

        worker = TrainingWorker(seed_design(), load_digits_dataset(), TrainingConfig(epochs=1, batch_size=256))
        outcome = []
        worker.sigFinished.connect(outcome.append)
        worker.sigFailed.connect(outcome.append)
        loop = QEventLoop()
        worker.sigEnded.connect(loop.quit)
        worker.start()
        loop.exec()
        print("trained" if outcome and getattr(outcome[0], "epochs_run", 0) == 1 else f"failed {outcome}")
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    env["QT_QPA_PLATFORM"] = "offscreen"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.stdout.strip() == "trained", done.stdout + done.stderr
    assert done.stderr == ""
