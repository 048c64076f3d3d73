"""The Train panel's "Run on" setting (issue 16): this computer, all local GPUs, or a cluster.

Driven through the panel's widgets. The GPU count is the engine probe's answer, monkeypatched
here (the real one imports TensorFlow in a child process). Cluster runs start ``convas train`` as
a child process: a fake chief that prints the JSON progress format checks the error, stop and
clean-up paths without TensorFlow; the slow test trains with two real local workers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from test_training_panel import TRAIN_TIMEOUT_MS, choose, short_run, type_into

from engine.distribute import Strategy
from engine.errors import ConvasError
from engine.project_file import load_project, save_project
from engine.training import ClusterKind, MessageKind, RunOn, TrainingSettings
from gui.training import cluster_run, run_on
from gui.training.cluster_run import ClusterRun, parse_address, remote_commands
from gui.training.run_on import GpuProbe


@pytest.fixture
def gpus(monkeypatch):
    """Set how many GPUs the probe finds (the session's answer is forgotten first)."""
    monkeypatch.setattr(GpuProbe, "found", None)
    monkeypatch.setattr(GpuProbe, "error", None)

    def found(count: int) -> None:
        monkeypatch.setattr(run_on, "count_gpus", lambda: count)

    return found


def open_list(qtbot, panel) -> None:
    """Open and close the Run on list, as a user looking at it (that looks for GPUs)."""
    box = panel.form.run_on_box
    box.combo.showPopup()
    qtbot.waitUntil(lambda: not box.probe.looking(), timeout=10_000)
    box.combo.hidePopup()


def gpu_item(panel):
    combo = panel.form.run_on_box.combo
    index = combo.findData(Strategy.MIRRORED.value)
    return combo.model().item(index), combo.itemText(index), combo.itemData(index, Qt.ItemDataRole.ToolTipRole)


def click_radio(qtbot, radio) -> None:
    """Click a radio button on its circle (a click beside its text does not choose it)."""
    qtbot.mouseClick(radio, Qt.MouseButton.LeftButton, pos=QPoint(radio.height() // 2, radio.height() // 2))


def set_text(qtbot, line, text: str) -> None:
    line.setFocus()
    line.selectAll()
    qtbot.keyClicks(line, text)
    qtbot.keyClick(line, Qt.Key.Key_Return)


# --- the setting ---------------------------------------------------------------------------------

def test_each_run_on_choice_is_kept_in_the_settings_and_survives_save_and_open(window, panel, qtbot, gpus,
                                                                                tmp_path):
    gpus(2)
    box = panel.form.run_on_box
    assert box.combo.currentText() == "This computer" and not box.isVisible()
    assert window.document.training.distribution == RunOn()
    open_list(qtbot, panel)
    item, text, _tip = gpu_item(panel)
    assert item.isEnabled() and text == "All local GPUs (2 GPUs)"

    choose(qtbot, box.combo, "All local GPUs (2 GPUs)")
    assert window.document.training.distribution.strategy is Strategy.MIRRORED
    assert window.document.modified and panel.train_button.isEnabled()

    choose(qtbot, box.combo, "Cluster…")
    assert box.isVisible() and box.local_radio.isChecked() and not box.this_edit.isEnabled()
    type_into(qtbot, box.workers_spin, "3")
    assert window.document.training.distribution == RunOn(Strategy.MULTIWORKER, ClusterKind.LOCAL, 3)
    assert not panel.pause_button.isEnabled()

    click_radio(qtbot, box.machines_radio)
    assert box.this_edit.isEnabled() and box.this_edit.text().endswith(":2222")  # this computer's name
    set_text(qtbot, box.this_edit, "chief.lan:2222")
    set_text(qtbot, box.others_edit, "10.0.0.2:2222, 10.0.0.3:2223")
    chosen = RunOn(Strategy.MULTIWORKER, ClusterKind.MACHINES, 3,
                   ("chief.lan:2222", "10.0.0.2:2222", "10.0.0.3:2223"))
    assert window.document.training.distribution == chosen and panel.train_button.isEnabled()

    # Saved with the project's training settings; opening the file shows it again.
    path = tmp_path / "cluster.convas"
    save_project(path, window.document.design, window.document.training.to_dict())
    saved = json.loads(path.read_text())["training"]["distribution"]
    assert saved == {"strategy": "multiworker", "cluster": "machines", "local_workers": 3,
                     "workers": ["chief.lan:2222", "10.0.0.2:2222", "10.0.0.3:2223"]}
    assert TrainingSettings.from_dict(load_project(path).training).distribution == chosen
    choose(qtbot, box.combo, "This computer")
    window.document.mark_saved()
    assert window.open_path(path, ask=False)
    assert box.combo.currentText() == "Cluster…" and box.machines_radio.isChecked()
    assert box.others_edit.text() == "10.0.0.2:2222, 10.0.0.3:2223" and box.workers_spin.value() == 3
    assert panel.settings().distribution == chosen

    # The default is not written, so files that never chose stay as they were; old files load.
    assert "distribution" not in TrainingSettings().to_dict()
    assert TrainingSettings.from_dict({"dataset": "digits", "epochs": 2}).distribution == RunOn()
    with pytest.raises(ConvasError, match="strategy must be one of none, mirrored, multiworker"):
        TrainingSettings.from_dict({"distribution": {"strategy": "everywhere"}})


def test_without_gpus_the_gpu_choice_is_disabled_and_says_why(window, panel, qtbot, gpus, tmp_path):
    gpus(0)
    box = panel.form.run_on_box
    item, text, _tip = gpu_item(panel)
    assert text == "All local GPUs" and item.isEnabled()  # not asked yet: TensorFlow is not loaded for it
    open_list(qtbot, panel)
    item, text, tip = gpu_item(panel)
    assert not item.isEnabled() and text == "All local GPUs (none found)"
    assert "No GPU was found on this computer" in tip

    # A project saved on a machine with GPUs opens here with the reason, and Train waits.
    path = tmp_path / "gpus.convas"
    save_project(path, window.document.design,
                 TrainingSettings(distribution=RunOn(Strategy.MIRRORED)).to_dict())
    window.document.mark_saved()
    assert window.open_path(path, ask=False)
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=60_000)
    assert box.combo.currentText() == "All local GPUs (none found)"
    assert box.message.isVisible() and "No GPU was found" in box.message.text()
    assert not panel.train_button.isEnabled()
    choose(qtbot, box.combo, "This computer")
    assert not box.isVisible() and panel.train_button.isEnabled()


def test_a_cluster_of_machines_shows_the_command_for_each_other_machine(window, panel, qtbot):
    box = panel.form.run_on_box
    choose(qtbot, box.combo, "Cluster…")
    click_radio(qtbot, box.machines_radio)
    set_text(qtbot, box.this_edit, "chief.lan:2222")
    set_text(qtbot, box.others_edit, "10.0.0.2")
    assert box.message.isVisible() and "'10.0.0.2' is not host:port" in box.message.text()
    assert not box.command_box.isVisible() and not panel.train_button.isEnabled()

    set_text(qtbot, box.others_edit, "10.0.0.2:2222, gpu-3:2222")
    assert not box.message.isVisible() and box.command_box.isVisible() and panel.train_button.isEnabled()
    workers = "chief.lan:2222,10.0.0.2:2222,gpu-3:2222"
    assert box.command_text.toPlainText() == (
        "# on 10.0.0.2 (worker 1)\n"
        "convas train seed_cnn.convas \\\n    --out seed_cnn.keras \\\n"
        f"    --workers {workers} \\\n    --worker-index 1\n"
        "# on gpu-3 (worker 2)\n"
        "convas train seed_cnn.convas \\\n    --out seed_cnn.keras \\\n"
        f"    --workers {workers} \\\n    --worker-index 2")
    assert "seed_cnn.convas" in box.command_intro.text() and "copied to each other machine" in box.command_intro.text()
    panel.left_scroll.ensureWidgetVisible(box.copy_button)
    qtbot.waitUntil(lambda: box.copy_button.height() > 10, timeout=5_000)  # laid out
    qtbot.mouseClick(box.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == box.command_text.toPlainText() + "\n"
    # Unsaved edits would not be on the other machines: the box says to save first.
    assert box.command_warning.isVisible() == window.document.modified

    set_text(qtbot, box.others_edit, "chief.lan:2222")
    assert box.message.text() == "The address chief.lan:2222 is listed twice; each worker needs its own host:port."


def test_addresses_and_commands_are_checked_and_quoted():
    assert parse_address(" host:080 ") == "host:80" and parse_address("[::1]:2222") == "[::1]:2222"
    for bad, why in (("host", "not host:port"), ("host:0", "from 1 to 65535"), ("host:http", "from 1 to 65535"),
                     ("my host:1", "spaces")):
        with pytest.raises(ConvasError, match=why):
            parse_address(bad)
    machines = RunOn(Strategy.MULTIWORKER, ClusterKind.MACHINES, 2, ("a:1", "b:2"))
    assert remote_commands(machines, "my net.convas", "my net.keras") == [
        "convas train 'my net.convas' --out 'my net.keras' --workers a:1,b:2 --worker-index 1"]
    assert remote_commands(RunOn(Strategy.MULTIWORKER), "n.convas", "n.keras") == []
    chief = cluster_run.chief_command(Path("/t/d.convas"), Path("/t/m.keras"), RunOn(Strategy.MULTIWORKER))
    assert chief[3:] == ["train", "/t/d.convas", "--out", "/t/m.keras", "--progress", "json",
                         "--local-workers", "2"]


# --- cluster runs with a fake chief (no TensorFlow) ------------------------------------------------

FAKE_CHIEF = textwrap.dedent('''
    import json, signal, sys, time
    mode = sys.argv[1]
    def say(**event):
        print(json.dumps(event), flush=True)
    print("loading TensorFlow...", file=sys.stderr, flush=True)
    if mode == "port":
        say(event="error", status=2, text="convas: port 2222 of worker 0 (127.0.0.1:2222) is in use")
        sys.exit(2)
    if mode == "lost":
        say(event="start", epochs=2, batches=3, samples=90, batch_size=32, task="classification",
            placement={"text": "multiworker over 2 replicas (2 workers)"})
        for batch in range(3):
            say(event="batch", epoch=0, batch=batch, batches=3, logs={"loss": 2.0 - batch, "accuracy": None})
        print("convas: worker 1 (127.0.0.1:5001) stopped answering; rerun the same command to resume",
              file=sys.stderr, flush=True)
        sys.exit(3)
    if mode == "stop":
        stopped = []
        signal.signal(signal.SIGINT, lambda *a: stopped.append(1))
        say(event="message", kind="info", text="joining")
        while not stopped:
            time.sleep(0.02)
        sys.exit(130)
    if mode == "stubborn":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(600)
''')


@pytest.fixture
def fake_chief(monkeypatch, tmp_path):
    """Replace the chief's command by a script acting as ``mode`` says."""
    script = tmp_path / "fake_chief.py"
    script.write_text(FAKE_CHIEF)

    def use(mode: str) -> None:
        monkeypatch.setattr(cluster_run, "chief_command", lambda project, out, run_on: [
            sys.executable, str(script), mode])

    return use


def start_cluster_run(qtbot, panel):
    box = panel.form.run_on_box
    choose(qtbot, box.combo, "Cluster…")
    qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    assert panel.is_training() and isinstance(panel.session.worker, ClusterRun)
    return panel.session.worker


def test_cluster_errors_show_in_the_panel_messages(panel, qtbot, fake_chief):
    fake_chief("port")
    with qtbot.waitSignal(panel.session.sigEnded, timeout=30_000):
        start_cluster_run(qtbot, panel)
    assert panel.session.run_error == "port 2222 of worker 0 (127.0.0.1:2222) is in use"
    assert panel.message_label.isVisible() and "is in use" in panel.message_label.text()
    assert panel.progress.format() == "Failed" and panel.train_button.isEnabled()

    fake_chief("lost")
    with qtbot.waitSignal(panel.session.sigEnded, timeout=30_000):
        run = start_cluster_run(qtbot, panel)
    assert panel.session.batches_seen == 3 and run.process.poll() == 3
    assert panel.session.run_error == ("Cluster training failed: worker 1 (127.0.0.1:5001) stopped answering; "
                                       "rerun the same command to resume")
    assert "stopped answering" in panel.message_label.text()
    assert [m.kind for m in panel.session.messages] == [MessageKind.ERROR]


def test_stop_asks_the_chief_to_stop_and_pause_is_not_offered(panel, qtbot, fake_chief):
    fake_chief("stop")
    run = start_cluster_run(qtbot, panel)
    qtbot.waitUntil(lambda: [m.text for m in panel.session.messages] == ["joining"], timeout=30_000)
    assert not panel.pause_button.isEnabled() and "cannot pause" in panel.pause_button.toolTip()
    assert panel.stop_button.isEnabled()
    with qtbot.waitSignal(panel.session.sigEnded, timeout=30_000):
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert run.process.poll() == 130  # the chief got SIGINT: its "stop after this batch"
    assert panel.session.run_error is None and panel.stats_label.text() == "Stopped before training began"


def test_a_chief_never_outlives_the_window():
    process = subprocess.Popen([sys.executable, "-c", FAKE_CHIEF, "stubborn"], **cluster_run._detached())
    cluster_run._CHILDREN.add(process)
    try:
        time.sleep(0.5)  # its handlers are set
        cluster_run.end_children(grace_s=0.5)  # what quitting the window runs (atexit)
        assert process.wait(10) == -9  # SIGTERM ignored: killed after the grace period
    finally:
        cluster_run._CHILDREN.discard(process)
        if process.poll() is None:
            process.kill()


# --- a real cluster run ----------------------------------------------------------------------------

@pytest.mark.slow
def test_two_local_workers_train_digits_and_the_model_is_evaluated(window, panel, qtbot):
    """Two workers on this computer train the seed CNN on Digits for one epoch through
    ``convas train --local-workers 2``: the curves fill, the chief's saved model is loaded, and the
    Evaluation dock evaluates it as after a run in the window."""
    short_run(qtbot, panel, epochs=1, batch=64)
    finished = []
    panel.sigTrainingFinished.connect(lambda *handed: finished.append(handed))
    evaluation = window.evaluation
    with qtbot.waitSignal(evaluation.sigEvaluated, timeout=TRAIN_TIMEOUT_MS):
        run = start_cluster_run(qtbot, panel)
        assert run.run_on == RunOn(Strategy.MULTIWORKER, ClusterKind.LOCAL, 2)
        assert not panel.pause_button.isEnabled()
    assert run.process.poll() == 0 and panel.session.run_error is None
    model, data, _task, _noise, _loss = finished[0]
    assert model is panel.result_model and data is panel.dataset
    assert panel.result.epochs_run == 1 and set(panel.result.history) >= {"loss", "val_loss", "accuracy"}
    curves = panel.curves.current
    x, raw = curves.curve("loss", "raw").getData()
    assert len(x) >= 2 and np.all(np.isfinite(raw))
    assert len(curves.curve("metric", "validation").getData()[0]) == 1
    assert any("multiworker over 2 replicas (2 workers)" in m.text for m in panel.session.messages)
    predictions = model.predict(panel.dataset.validation.images(range(4)), verbose=0)
    assert predictions.shape == (4, 10)
    classes = len(panel.dataset.class_names)
    counts = sum(int(evaluation.confusion.cell_text(t, p)) for t in range(classes) for p in range(classes))
    assert counts == len(panel.dataset.validation)


def test_closing_during_a_cluster_run_stops_the_chief_and_ends_one_that_hangs(panel, qtbot, fake_chief,
                                                                               monkeypatch):
    fake_chief("stop")
    run = start_cluster_run(qtbot, panel)
    qtbot.waitUntil(lambda: bool(panel.session.messages), timeout=30_000)  # its handler is set
    assert panel.stop_and_wait(30)  # what closing the window does first
    assert run.process.poll() == 130 and not run.load_model and not panel.is_training()

    monkeypatch.setattr(cluster_run, "KILL_AFTER_TERM_S", 0.5)
    fake_chief("stubborn")  # ignores SIGINT and SIGTERM: a worker that hangs
    run = start_cluster_run(qtbot, panel)
    qtbot.waitUntil(lambda: run.process is not None, timeout=30_000)
    time.sleep(0.5)  # its handlers are set
    assert panel.stop_and_wait(4)  # asks, waits 2 s, SIGTERM, 0.5 s, SIGKILL
    assert run.process.poll() == -9 and not panel.is_training() and panel.session.run_error is None


def test_all_local_gpus_trains_in_the_window_with_a_mirrored_distribution(panel, qtbot, gpus, monkeypatch):
    from engine.distribute import Distribution
    from engine.training import TrainingResult
    from gui.training.worker import TrainingWorker

    gpus(2)
    seen = []

    def fake_train(worker, state):  # instead of importing TensorFlow: what would train() be given?
        seen.append(worker.distribution)
        return TrainingResult(model=None, stopped_early=True, stop_reason="stopped before training began")

    monkeypatch.setattr(TrainingWorker, "_train", fake_train)
    open_list(qtbot, panel)
    choose(qtbot, panel.form.run_on_box.combo, "All local GPUs (2 GPUs)")
    with qtbot.waitSignal(panel.session.sigEnded, timeout=30_000):
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
        assert isinstance(panel.session.worker, TrainingWorker) and panel.session.can_pause()
    assert seen == [Distribution(Strategy.MIRRORED)]
    choose(qtbot, panel.form.run_on_box.combo, "This computer")
    with qtbot.waitSignal(panel.session.sigEnded, timeout=30_000):
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    assert seen[-1] is None  # today's behaviour: train() decides the device
