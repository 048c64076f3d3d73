"""Search ranges in the Inspector, on the cards and in the training settings (issue 17): the "⋯"
toggle starts a range around the field's value, every edit is one undo step, an invalid range
is explained and kept out of the design, and ranges survive save and open."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from engine.editing import SetGroup
from engine.grouping import plan_group
from engine.project_file import load_project
from engine.search_range import RangeKind, SearchRange
from gui import inspector as inspector_module
from gui.search_field import TOGGLE_TIP, default_range
from tests.gui.driving import select_all_and_type

CTRL = Qt.KeyboardModifier.ControlModifier
LEFT = Qt.MouseButton.LeftButton
PROJECT = "Convas project (*.convas)"


def click(qtbot, widget) -> None:
    """A left click on ``widget`` once it is laid out (a form is built when a layer is selected)."""
    qtbot.waitUntil(lambda: widget.isVisible() and widget.height() > 0, timeout=2000)
    qtbot.mouseClick(widget, LEFT)


def focus(qtbot, widget) -> None:
    widget.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(widget.hasFocus, timeout=2000)


def type_into(qtbot, widget, text: str) -> None:
    focus(qtbot, widget)
    select_all_and_type(qtbot, widget, text)


def search(window, layer: str = "conv2d") -> dict[str, SearchRange]:
    return dict(window.document.design.nodes[layer].search)


def card_args(window, layer: str = "conv2d") -> str:
    return window.scene.node_item(layer).text.args


def steps(window) -> list[str]:
    stack = window.document.undo_stack
    return [stack.text(i) for i in range(stack.index())]


def start_filters_range(window, qtbot):
    window.scene.select_nodes(["conv2d"])
    toggle = window.inspector.search_toggle("filters")
    assert toggle.toolTip() == TOGGLE_TIP and toggle.text() == "…" and not toggle.isChecked()
    click(qtbot, toggle)
    return window.inspector.range_editor("filters")


# --- the range a field starts with ----------------------------------------------------------

def test_a_range_starts_around_the_current_value():
    assert default_range((RangeKind.INT, RangeKind.CHOICE), 32, minimum=1) == SearchRange.ints(16, 64, 16)
    assert default_range((RangeKind.INT,), (3, 3), minimum=1) == SearchRange.ints(1, 5)
    assert default_range((RangeKind.FLOAT,), 0.25, minimum=0, maximum=1) == SearchRange.floats(0.0, 0.5)
    assert default_range((RangeKind.FLOAT,), 1e-3, log=True) == SearchRange.floats(1e-4, 1e-2, log=True)
    assert default_range((RangeKind.CHOICE,), True, choices=(False, True)) == SearchRange.among(False, True)
    assert default_range((RangeKind.CHOICE,), "same", choices=("valid", "same")) == SearchRange.among("same", "valid")
    assert default_range((RangeKind.INT,), 1, minimum=1) == SearchRange.ints(1, 3)


# --- a layer's arguments ----------------------------------------------------------------------

def test_the_toggle_creates_a_range_shown_on_the_card_and_ctrl_z_removes_it(window, qtbot):
    assert card_args(window) == "32 × 3×3, relu"
    editor = start_filters_range(window, qtbot)
    assert search(window) == {"filters": SearchRange.ints(16, 64, 16)}
    assert window.inspector.search_toggle("filters").isChecked() and editor.isVisible()
    assert (editor.low.value(), editor.high.value(), editor.step.value()) == (16, 64, 16)
    item = window.scene.node_item("conv2d")
    assert card_args(window) == "filters 16–64 step 16" and item.searched
    assert steps(window) == ["Search conv2d.filters 16–64 step 16"]
    # The value plain training uses is untouched.
    assert window.document.design.nodes["conv2d"].args["filters"] == 32
    qtbot.keyClick(window.inspector.editor("filters").spin, Qt.Key.Key_Z, CTRL)
    assert search(window) == {} and card_args(window) == "32 × 3×3, relu" and not item.searched
    assert not window.inspector.search_toggle("filters").isChecked() and not editor.isVisible()


def test_editing_low_high_and_step_is_one_undo_step_each(window, qtbot):
    editor = start_filters_range(window, qtbot)
    type_into(qtbot, editor.low, "8")
    assert search(window)["filters"] == SearchRange.ints(8, 64, 16)
    type_into(qtbot, editor.high, "128")
    assert search(window)["filters"] == SearchRange.ints(8, 128, 16)
    type_into(qtbot, editor.step, "8")
    assert search(window)["filters"] == SearchRange.ints(8, 128, 8)
    assert card_args(window) == "filters 8–128 step 8"
    assert len(steps(window)) == 4
    focus(qtbot, editor.high)                    # typed, then focus moves on: committed too
    qtbot.keyClick(editor.high, Qt.Key.Key_A, CTRL)
    qtbot.keyClicks(editor.high, "120")
    assert search(window)["filters"].high == 128
    focus(qtbot, editor.low)
    assert search(window)["filters"] == SearchRange.ints(8, 120, 8)
    qtbot.keyClick(editor.low, Qt.Key.Key_Z, CTRL)
    assert search(window)["filters"] == SearchRange.ints(8, 128, 8)
    qtbot.keyClick(editor.step, Qt.Key.Key_Z, CTRL)
    assert search(window)["filters"] == SearchRange.ints(8, 128, 16)
    assert editor.step.value() == 16 and card_args(window) == "filters 8–128 step 16"


def test_quick_arrow_steps_of_a_range_are_one_undo_step(window, qtbot):
    editor = start_filters_range(window, qtbot)
    focus(qtbot, editor.high)
    for _ in range(3):
        qtbot.keyClick(editor.high, Qt.Key.Key_Up)
    assert search(window)["filters"].high == 67
    assert len(steps(window)) == 2
    qtbot.keyClick(editor.high, Qt.Key.Key_Z, CTRL)
    assert search(window)["filters"] == SearchRange.ints(16, 64, 16)


def test_an_invalid_range_is_explained_and_not_applied(window, qtbot):
    editor = start_filters_range(window, qtbot)
    type_into(qtbot, editor.high, "8")
    message = window.inspector.range_error("filters")
    assert message.startswith("The range's low (16) must be below its high (8)")
    assert search(window)["filters"] == SearchRange.ints(16, 64, 16)   # the last good range stays
    assert card_args(window) == "filters 16–64 step 16" and len(steps(window)) == 1
    type_into(qtbot, editor.high, "48")
    assert window.inspector.range_error("filters") == ""
    assert search(window)["filters"] == SearchRange.ints(16, 48, 16)


def test_unchecking_removes_the_range_in_one_undo_step(window, qtbot):
    start_filters_range(window, qtbot)
    toggle = window.inspector.search_toggle("filters")
    click(qtbot, toggle)
    assert search(window) == {} and not toggle.isChecked()
    assert steps(window)[-1] == "Stop searching conv2d.filters" and len(steps(window)) == 2
    window.document.undo_stack.undo()
    assert search(window) == {"filters": SearchRange.ints(16, 64, 16)} and toggle.isChecked()


def test_choices_a_list_of_values_and_a_log_scale(window, qtbot):
    window.scene.select_nodes(["conv2d"])
    ins = window.inspector
    click(qtbot, ins.search_toggle("padding"))
    assert search(window)["padding"] == SearchRange.among("valid", "same")
    boxes = {box.text(): box for box in ins.range_editor("padding").checks}
    click(qtbot, boxes["same"])       # one choice is no range
    assert "at least two values" in ins.range_error("padding")
    assert search(window)["padding"] == SearchRange.among("valid", "same")
    click(qtbot, boxes["same"])
    assert ins.range_error("padding") == ""

    editor = start_filters_range(window, qtbot)
    editor.mode_combo.setCurrentIndex(editor.mode_combo.findData("list"))  # Range → List
    assert editor.list_edit.isVisible() and not editor.low.isVisible()
    assert editor.list_edit.text() == "16, 32, 48, 64"
    assert search(window)["filters"] == SearchRange.among(16, 32, 48, 64)
    type_into(qtbot, editor.list_edit, "16, 32, 96")
    assert search(window)["filters"] == SearchRange.among(16, 32, 96)
    assert card_args(window) == "padding valid | same · filters 16 | 32 | 96"
    type_into(qtbot, editor.list_edit, "16, lots")
    assert "'lots' is not a number" in ins.range_error("filters")
    assert search(window)["filters"] == SearchRange.among(16, 32, 96)
    type_into(qtbot, editor.list_edit, "16, 32, 96")
    assert ins.range_error("filters") == ""

    editor.mode_combo.setCurrentIndex(editor.mode_combo.findData("range"))
    click(qtbot, editor.log_check)
    assert search(window)["filters"] == SearchRange.ints(16, 96, 1, log=True)
    assert not editor.step.isEnabled()


def test_a_searched_card_keeps_its_layout(window, qtbot):
    item = window.scene.node_item("conv2d")
    height = item.height
    start_filters_range(window, qtbot)
    assert item.height == height and item.mark_rect().right() <= item.card_rect().right()
    assert item.mark_rect().top() >= item.card_rect().top()


# --- a group's repeats ------------------------------------------------------------------------

def make_group(window, name: str = "block1") -> None:
    ops = plan_group(window.document.design, ["conv2d", "max_pooling2d"], name)
    window.document.edit(f"Group {name}", ops)
    window.scene.select_group(name)


def test_a_group_repeats_range_is_one_undo_step_and_shown_on_its_frame(window, qtbot):
    make_group(window)
    ins = window.inspector
    assert ins.group_name == "block1"
    toggle = ins.repeats_toggle()
    assert toggle.isVisible() and toggle.isEnabled()
    before = len(steps(window))
    click(qtbot, toggle)
    group = window.document.design.groups["block1"]
    assert group.repeats == SearchRange.ints(1, 3)
    assert len(steps(window)) == before + 1 and steps(window)[-1] == "Repeat block1 × 1–3"
    frame = window.scene._frames["block1"]
    assert "× 1–3" in frame.text.summary
    assert not ins.repeats_editor().log_check.isVisible()   # no log scale for a count of 1–3
    type_into(qtbot, ins.repeats_editor().high, "4")
    assert window.document.design.groups["block1"].repeats == SearchRange.ints(1, 4)
    type_into(qtbot, ins.repeats_editor().low, "0")   # the spin box refuses below 1
    assert window.document.design.groups["block1"].repeats == SearchRange.ints(1, 4)
    # Collapsed, the group's card shows the pill.
    window.document.edit("Collapse", [SetGroup("block1", _collapsed(window, "block1"))])
    card = window.scene.group_card("block1")
    assert card is not None and card.shown_texts()["repeats"] == "× 1–4"
    assert not card.repeats_rect().isEmpty()
    window.document.undo_stack.undo()   # expand
    window.document.undo_stack.undo()   # 1–4 → 1–3
    assert window.document.design.groups["block1"].repeats == SearchRange.ints(1, 3)
    window.scene.select_group("block1")
    click(qtbot, ins.repeats_toggle())
    assert window.document.design.groups["block1"].repeats is None
    assert "× " not in window.scene._frames["block1"].text.summary


def _collapsed(window, name):
    from dataclasses import replace

    return replace(window.document.design.groups[name], collapsed=True)


def test_a_group_that_cannot_repeat_says_why_and_disables_the_toggle(window, qtbot, monkeypatch):
    reason = "the group takes two tensors from outside; a repeated group takes one"
    monkeypatch.setattr(inspector_module, "_repeat_problem", lambda design, group: reason)
    make_group(window)
    ins = window.inspector
    assert not ins.repeats_toggle().isEnabled()
    assert ins.repeats_note() == "The group takes two tensors from outside; a repeated group takes one."
    window.scene.select_nodes(["conv2d"])
    assert not ins.repeats_toggle().isVisible()


# --- training settings, and save / open ------------------------------------------------------

def test_training_ranges_land_in_the_settings_and_survive_save_and_reopen(window, qtbot, tmp_path, monkeypatch):
    window.act_show_training.trigger()
    form = window.train_panel.form
    click(qtbot, form.search_toggle("learning_rate"))
    assert window.document.training.search == {"learning_rate": SearchRange.floats(1e-4, 1e-2, log=True)}
    click(qtbot, form.search_toggle("batch_size"))
    type_into(qtbot, form.range_editor("batch_size").high, "128")
    click(qtbot, form.search_toggle("optimizer"))
    assert window.document.training.search["batch_size"] == SearchRange.ints(16, 128, 16)
    assert window.document.training.search["optimizer"] == SearchRange.among("adam", "adamw", "sgd", "rmsprop")
    type_into(qtbot, form.range_editor("batch_size").low, "200")
    assert form.range_error("batch_size").startswith("The range's low (200)")
    assert window.document.training.search["batch_size"] == SearchRange.ints(16, 128, 16)
    # Plain training trains the values of the fields.
    config = window.train_panel.settings().config
    assert (config.learning_rate, config.batch_size, config.optimizer) == (1e-3, 32, "adam")

    editor = start_filters_range(window, qtbot)
    type_into(qtbot, editor.high, "96")
    make_group(window)
    click(qtbot, window.inspector.repeats_toggle())

    target = tmp_path / "ranges.convas"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), PROJECT))
    window.act_save_as.trigger()
    assert target.is_file() and not window.isWindowModified()
    saved = load_project(target)
    assert saved.design.nodes["conv2d"].search == {"filters": SearchRange.ints(16, 96, 16)}
    assert saved.training["search"]["learning_rate"] == {"kind": "float", "low": 1e-4, "high": 1e-2, "log": True}

    from engine.examples import seed_design

    window.document.reset(seed_design())
    assert window.open_path(target, ask=False)
    assert search(window) == {"filters": SearchRange.ints(16, 96, 16)}
    assert window.document.design.groups["block1"].repeats == SearchRange.ints(1, 3)
    assert window.document.training.search == {
        "learning_rate": SearchRange.floats(1e-4, 1e-2, log=True),
        "batch_size": SearchRange.ints(16, 128, 16),
        "optimizer": SearchRange.among("adam", "adamw", "sgd", "rmsprop")}
    assert form.search_toggle("batch_size").isChecked() and not form.search_toggle("momentum").isChecked()
    assert form.range_editor("batch_size").high.value() == 128 and form.range_error("batch_size") == ""
    assert card_args(window) == "filters 16–96 step 16"
    window.scene.select_nodes(["conv2d"])
    assert window.inspector.search_toggle("filters").isChecked()
    assert window.inspector.range_editor("filters").high.value() == 96


@pytest.mark.parametrize("key", ["learning_rate", "momentum"])
def test_unchecking_a_training_range_drops_it(window, qtbot, key):
    window.act_show_training.trigger()
    form = window.train_panel.form
    click(qtbot, form.search_toggle(key))
    assert key in window.document.training.search and form.range_editor(key).isVisible()
    click(qtbot, form.search_toggle(key))
    assert key not in window.document.training.search and not form.range_editor(key).isVisible()
