"""The Sweep panel driven as a user would: settings, Start/Stop, the scatter, the table, Apply, reattach.

The end-to-end test is slow: it imports TensorFlow on the sweep's thread and trains a few one-epoch
trials of a small seed CNN on the built-in digits into a SQLite study under ``tmp_path``. The
others feed the panel trials made here (no training), as a reattach would show them.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt

from engine.design_diff import differences, training_differences
from engine.examples import seed_design
from engine.project_file import design_to_dict, save_project
from engine.search_range import SearchRange
from engine.sweep import StudyInfo, trial_design
from engine.sweep_results import TrialOutcome, TrialRecord
from engine.sweep_settings import CostKind, PrunerKind, SweepSettings
from engine.training import TrainingConfig, TrainingSettings
from gui.sweep.panel import SweepPanel
from tests.gui.driving import menu_action

SWEEP_TIMEOUT_MS = 240_000  # the TensorFlow import, the data, then one-epoch trials
KEYS = ("layer:conv2d:filters", "layer:conv2d_1:filters", "training:learning_rate")


@pytest.fixture(autouse=True)
def no_sweep_left_running(window):
    """Whatever a test did, no sweep runs when its window closes (closing would ask first)."""
    yield
    assert window.sweep_panel.stop_and_wait(120)


def ranged_project(tmp_path: Path, trials: int = 20, epochs: int = 1) -> Path:
    """The seed CNN with three ranges (two filter counts, the learning rate), ``epochs`` per
    trial, saved as ``tmp_path/sweepy.convas`` (its study goes beside it)."""
    design = seed_design()
    design.set_search("conv2d", "filters", SearchRange.among(4, 8))
    design.set_search("conv2d_1", "filters", SearchRange.ints(4, 12, step=4))
    training = TrainingSettings(config=TrainingConfig(epochs=1, batch_size=64),
                                search={"learning_rate": SearchRange.floats(1e-3, 1e-2, log=True)})
    sweep = SweepSettings(trials=trials, epochs=epochs, pruner=PrunerKind.NONE, seed=0)
    path = tmp_path / "sweepy.convas"
    save_project(path, design, training=training.to_dict(), sweep=sweep.to_dict())
    return path


def open_panel(qtbot, window, path: Path | None = None) -> SweepPanel:
    """Open ``path`` (if given) and the Sweep panel through the Train menu; wait for its plot
    and for the project's study to be read."""
    if path is not None:
        assert window.open_path(path, ask=False)
    menu_action(window, "Train", "Sweep Panel").trigger()
    panel = window.sweep_panel
    qtbot.waitUntil(lambda: panel.plot is not None, timeout=20_000)
    wait_read(qtbot, panel)
    return panel


def wait_read(qtbot, panel: SweepPanel) -> None:
    qtbot.waitUntil(lambda: panel._loader is None and not panel._reload_timer.isActive(), timeout=30_000)


def scatter_numbers(panel: SweepPanel) -> set[int]:
    """The trial numbers the scatter draws as points that have a metric."""
    plot = panel.plot
    numbers: set[int] = set()
    for scatter in (plot.points, plot.front_points, plot.faint):
        numbers |= {int(n) for n in scatter.data["data"]}
    return numbers


def click_row(qtbot, panel: SweepPanel, number: int) -> None:
    rect = panel.table.row_rect_of(number)
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def click_header(qtbot, panel: SweepPanel, title: str) -> None:
    header = panel.table.horizontalHeader()
    section = panel.model.column_of(title)
    x = header.sectionViewportPosition(section) + header.sectionSize(section) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))


def column_values(panel: SweepPanel, title: str) -> list[str]:
    proxy, column = panel.table.proxy, panel.model.column_of(title)
    return [proxy.index(row, column).data() for row in range(proxy.rowCount())]


# --- end to end ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_sweep_runs_stops_applies_and_reattaches(qtbot, window, tmp_path):
    path = ranged_project(tmp_path)
    panel = open_panel(qtbot, window, path)
    assert "3 ranges: conv2d.filters" in panel.space_label.text()
    assert "No trials yet" in panel.status_label.text()
    assert panel.start_button.isEnabled(), panel.start_button.toolTip()

    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert panel.is_running() and panel.stop_button.isEnabled() and not panel.start_button.isEnabled()
    finished = lambda: [r for r in panel.model.records if r.outcome.finished]  # noqa: E731
    qtbot.waitUntil(lambda: len(finished()) >= 3 or not panel.is_running(), timeout=SWEEP_TIMEOUT_MS)
    assert len(finished()) >= 3, panel.status_label.text()
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert "trained again first" in panel.status_label.text()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=60_000)
    assert "Stopped" in panel.status_label.text()
    assert panel.start_button.isEnabled()

    # Every finished trial is in the table; those with a metric are points on the scatter.
    records = {r.number: r for r in panel.model.records}
    complete = [r for r in records.values() if r.outcome is TrialOutcome.COMPLETE]
    assert len(complete) >= 3
    assert {r.number for r in complete} <= scatter_numbers(panel)
    assert len(panel.plot.front_line.getData()[0]) >= 1  # the Pareto front's staircase
    assert panel.plot.current_line.isVisible()  # the current design's MACs

    # Sorting by the metric column orders the rows by value.
    click_header(qtbot, panel, "val accuracy")
    shown = [float(v) for v in column_values(panel, "val accuracy") if v]
    assert shown == sorted(shown) or shown == sorted(shown, reverse=True)
    click_header(qtbot, panel, "val accuracy")
    again = [float(v) for v in column_values(panel, "val accuracy") if v]
    assert again == list(reversed(shown))

    # Clicking a point selects its row and says what it changes.
    chosen = complete[0]
    qtbot.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=panel.plot.point_at(chosen.number))
    assert panel.table.selected_number() == chosen.number
    assert "conv2d.filters: 32 →" in panel.details_label.text()
    # Clicking a row selects its point.
    other = complete[1]
    click_row(qtbot, panel, other.number)
    assert panel.selected == other.number and panel.plot.selected == other.number
    assert f"Trial {other.number}" in panel.details_label.text()

    # Apply: the design and settings become the trial's, as one undo step.
    before = design_to_dict(window.document.design)
    training_before = window.document.training
    steps = window.document.undo_stack.count()
    window.document.mark_saved()
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert window.document.modified
    design, training = trial_design(panel.info, records[other.number])
    assert differences(window.document.design, design) == []
    assert design_to_dict(window.document.design) == design_to_dict(design)  # positions and ranges too
    assert training_differences(window.document.training, training) == []
    assert window.document.training.config.learning_rate == other.params["training:learning_rate"]
    assert window.document.undo_stack.count() == steps + 1
    assert "Same as the current design" in panel.details_label.text()
    assert panel.model.current_number == other.number  # the applied trial is the current design
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert design_to_dict(window.document.design) == before
    assert window.document.training == training_before
    assert not window.document.modified  # back to the saved project

    # Reopening the project reattaches to its study: the same trials, read from SQLite.
    shown_before = {n: r.outcome for n, r in records.items()}
    window.document.mark_saved()
    assert window.open_path(path, ask=False)
    qtbot.waitUntil(lambda: {r.number: r.outcome for r in panel.model.records} == shown_before, timeout=30_000)
    assert f"{len([r for r in records.values() if r.outcome.trained])} trials trained" in panel.status_label.text()
    assert (tmp_path / "sweepy.sweep.db").is_file()


# --- fed trials ---------------------------------------------------------------------------------

def study(design, training, cost: CostKind | None = CostKind.MACS) -> StudyInfo:
    from engine.search_space import search_space

    return StudyInfo(storage="sqlite:///nowhere.db", study="seed_cnn", metric="val_accuracy",
                     higher_is_better=True, cost=cost, space=search_space(design, training).to_dict(),
                     base_design=design, base_training=training)


def fed_panel(qtbot, window, tmp_path, cost: CostKind | None = CostKind.MACS):
    """The panel on the ranged project, showing trials made here: complete ones, a pruned one,
    an over-budget one (cost, no metric), an invalid one (neither) and a running one."""
    path = ranged_project(tmp_path)
    panel = open_panel(qtbot, window, path)
    document = window.document
    info = study(document.design, document.training, cost)

    def values(a: int, b: int, lr: float = 0.001) -> dict:
        return {KEYS[0]: a, KEYS[1]: b, KEYS[2]: lr}

    records = [
        TrialRecord(0, TrialOutcome.COMPLETE, values(4, 4), metric=0.81, cost=90_000, params_count=4000, macs=90_000),
        TrialRecord(1, TrialOutcome.COMPLETE, values(8, 12), metric=0.95, cost=400_000, params_count=9000,
                    macs=400_000),
        TrialRecord(2, TrialOutcome.COMPLETE, values(8, 4), metric=0.9, cost=150_000, params_count=5000,
                    macs=150_000),
        TrialRecord(3, TrialOutcome.COMPLETE, values(4, 12), metric=0.85, cost=300_000, params_count=8000,
                    macs=300_000),
        TrialRecord(4, TrialOutcome.PRUNED, values(4, 8), metric=0.5, cost=200_000, params_count=6000,
                    macs=200_000, reason="pruned at epoch 1"),
        TrialRecord(5, TrialOutcome.OVER_BUDGET, values(8, 8), params_count=7000, macs=2_000_000,
                    reason="over budget: 2,000,000 MACs (budget 1,000,000)"),
        TrialRecord(6, TrialOutcome.INVALID, values(8, 12, 0.002), reason="conv2d: kernel larger than input"),
        TrialRecord(10, TrialOutcome.COMPLETE, values(4, 4, 0.005), metric=0.83, cost=90_000, params_count=4000,
                    macs=90_000),
    ]
    panel.show_study((info.storage, info.study), info, records)
    return panel, info, records


def test_table_sorts_numbers_as_numbers(qtbot, window, tmp_path):
    panel, _info, _records = fed_panel(qtbot, window, tmp_path)
    click_header(qtbot, panel, "#")  # already ascending by number: this click makes it descending
    assert column_values(panel, "#") == ["10", "6", "5", "4", "3", "2", "1", "0"]
    click_header(qtbot, panel, "Parameters")
    params = [v for v in column_values(panel, "Parameters")]
    # 4,000 < 5,000 < … < 9,000 as numbers (the text "9,000" would sort before "10,000" anyway;
    # trial 6 has none and comes last)
    assert params == ["4,000", "4,000", "5,000", "6,000", "7,000", "8,000", "9,000", ""]
    click_header(qtbot, panel, "MACs")
    macs = column_values(panel, "MACs")
    assert macs[0] == "90.00 K" and macs[-2] == "2.00 M" and macs[-1] == ""
    assert "conv2d.filters" in [panel.model.headerData(i, Qt.Orientation.Horizontal)
                                for i in range(panel.model.columnCount())]


def test_scatter_front_faint_and_rejected(qtbot, window, tmp_path):
    panel, _info, _records = fed_panel(qtbot, window, tmp_path)
    plot = panel.plot
    front = sorted(int(n) for n in plot.front_points.data["data"])
    assert front == [1, 2, 10]  # 3 is dominated by 1; 0 by 10 (the same cost, less accurate)
    assert sorted(int(n) for n in plot.points.data["data"]) == [0, 3]
    assert [int(n) for n in plot.faint.data["data"]] == [4]
    # The over-budget trial lies along the bottom, below every metric; the invalid one has no cost.
    rejected = plot.rejected.data
    assert [int(n) for n in rejected["data"]] == [5]
    assert rejected["y"][0] < 0.5
    xs, ys = plot.front_line.getData()
    assert list(ys) == [0.83, 0.83, 0.9, 0.9, 0.95]
    assert plot.log_x  # 90 K … 2.4 M MACs (the current design's): more than a factor of 8
    assert xs[0] == pytest.approx(math.log10(90_000))
    assert plot.bottom_axis.tickStrings([5.0, math.log10(2e6)], 1, 1) == ["100 K", "2 M"]


def test_click_a_point_selects_its_row_and_shows_the_differences(qtbot, window, tmp_path):
    panel, _info, _records = fed_panel(qtbot, window, tmp_path)
    plot = panel.plot
    qtbot.wait(50)
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=plot.point_at(2))
    assert panel.table.selected_number() == 2
    qtbot.mouseMove(plot.viewport(), plot.point_at(1))
    qtbot.waitUntil(lambda: "Trial 1" in panel.hover_label.text())
    assert "val accuracy 0.9500" in panel.hover_label.text() and "conv2d.filters 8" in panel.hover_label.text()
    text = panel.details_label.text()
    assert "Trial 2" in text and "conv2d.filters: 32 → 8" in text and "conv2d_1.filters: 64 → 4" in text
    assert panel.apply_button.isEnabled()
    # A rejected trial can be applied too; the panel says why it was rejected.
    click_row(qtbot, panel, 5)
    assert panel.plot.selected == 5
    assert "Why: over budget: 2,000,000 MACs" in panel.details_label.text() and panel.apply_button.isEnabled()
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert window.document.design.nodes["conv2d"].args["filters"] == 8
    assert "Same as the current design" in panel.details_label.text()
    assert panel.model.current_number == 5


def test_single_objective_plots_metric_by_trial_with_best_so_far(qtbot, window, tmp_path):
    panel, _info, _records = fed_panel(qtbot, window, tmp_path, cost=None)
    plot = panel.plot
    assert plot.getPlotItem().getAxis("bottom").labelText == "trial"
    xs, ys = plot.front_line.getData()
    assert list(xs) == [0.0, 1.0, 1.0] and list(ys) == [0.81, 0.81, 0.95]
    assert not plot.current_line.isVisible()


def test_another_process_running_the_study_is_said_and_refreshed(qtbot, window, tmp_path):
    panel, info, records = fed_panel(qtbot, window, tmp_path)
    running = [*records, TrialRecord(11, TrialOutcome.RUNNING, {KEYS[0]: 4, KEYS[1]: 8, KEYS[2]: 0.001})]
    key = (panel.settings_box.storage(), panel.settings_box.study())
    panel._on_loaded(key, (info, running))  # what the periodic read of the storage delivers
    assert "Running in another process" in panel.status_label.text()
    assert panel._refresh_timer.isActive()
    assert panel.model.record(11).outcome is TrialOutcome.RUNNING
    panel._on_loaded(key, (info, records))
    assert "Running in another process" not in panel.status_label.text()
    assert not panel._refresh_timer.isActive()


def test_start_says_why_it_cannot_run(qtbot, window, tmp_path):
    panel = open_panel(qtbot, window)  # the seed CNN: no ranges, no file
    assert not panel.start_button.isEnabled()
    assert "no search ranges" in panel.start_button.toolTip()
    assert "No ranges yet" in panel.space_label.text()
    design = seed_design()
    design.set_search("conv2d", "filters", SearchRange.ints(8, 32, step=8))
    window.document.reset(design)
    wait_read(qtbot, panel)
    assert "1 range: conv2d.filters 8–32 step 8" in panel.space_label.text()
    assert "Save the project first" in panel.start_button.toolTip()
    assert panel.settings_box.save_button.isVisible()
    assert "Save the project first" in panel.settings_box.storage_label.text()
    # A range its layer cannot take: the problem is listed and Start stays off.
    design.set_search("flatten", "units", SearchRange.ints(1, 4))
    window.document.reset(design, path=tmp_path / "p.convas")
    wait_read(qtbot, panel)
    assert "flatten.units cannot be searched" in panel.space_label.text()
    assert "Fix the search ranges" in panel.start_button.toolTip()


def test_settings_edits_are_saved_with_the_project(qtbot, window, tmp_path):
    path = ranged_project(tmp_path)
    panel = open_panel(qtbot, window, path)
    box = panel.settings_box
    box.trials_spin.setFocus()
    box.trials_spin.lineEdit().selectAll()
    qtbot.keyClicks(box.trials_spin.lineEdit(), "7")
    qtbot.keyClick(box.trials_spin.lineEdit(), Qt.Key.Key_Return)
    assert window.document.sweep.trials == 7 and window.document.modified
    box.cost_combo.setFocus()
    while box.cost_combo.currentText() != "Parameters":
        qtbot.keyClick(box.cost_combo, Qt.Key.Key_Up)
    assert window.document.sweep.objectives.cost is CostKind.PARAMS
    assert window.document.project_parts()["sweep"]["trials"] == 7
    box.storage_edit.setFocus()
    qtbot.keyClicks(box.storage_edit, "not a url")
    qtbot.keyClick(box.storage_edit, Qt.Key.Key_Return)
    assert box.error_label.isVisible() and "database URL" in box.error_label.text()
    assert window.document.sweep.storage is None


@pytest.mark.slow
def test_closing_during_a_sweep_stops_it_and_a_resume_trains_that_trial_first(qtbot, window, new_window,
                                                                             tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from engine.sweep import load_records

    path = ranged_project(tmp_path, epochs=4)  # closed after the first epoch: the trial is mid-training
    panel = open_panel(qtbot, window, path)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "epoch 1/4" in panel.trial_label.text() or not panel.is_running(),
                    timeout=SWEEP_TIMEOUT_MS)
    assert panel.is_running()

    asked: list[str] = []

    def answer(box: QMessageBox) -> int:  # the user picks "Stop and close"
        asked.append(box.text())
        next(b for b in box.buttons() if b.text() == "Stop and close").click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", answer)
    window.document.mark_saved()
    window.close()
    assert asked and "A sweep is running" in asked[0]
    assert not panel.is_running() and not window.isVisible()
    _info, records = load_records(panel.info.storage, panel.info.study)
    stopped = [r for r in records if r.outcome is TrialOutcome.STOPPED]
    assert len(stopped) == 1

    # Opened again, the study resumes with the stopped trial's values.
    again = new_window(settings="again.ini", recovery="again")
    again.show()
    qtbot.waitExposed(again)
    resumed = open_panel(qtbot, again, path)
    assert resumed.model.record(stopped[0].number).outcome is TrialOutcome.STOPPED
    first: list[dict] = []
    try:
        qtbot.mouseClick(resumed.start_button, Qt.MouseButton.LeftButton)
        resumed.worker.sigTrialStarted.connect(lambda _number, params: first.append(params))
        qtbot.waitUntil(lambda: bool(first) or not resumed.is_running(), timeout=SWEEP_TIMEOUT_MS)
        assert first and first[0] == stopped[0].params
    finally:
        assert resumed.stop_and_wait(120)
