"""Ctrl+Z / Ctrl+Shift+Z reach the design from every panel; a field with uncommitted text
reverts its own text first; quick spin-box steps are one undo step (issue 12, point 1)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from engine.editing import SetArg
from gui import commands
from gui.document import Document

CTRL = Qt.KeyboardModifier.ControlModifier


def focus(qtbot, widget) -> None:
    widget.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(widget.hasFocus, timeout=2000)


def type_value(qtbot, widget, text: str) -> None:
    qtbot.keyClick(widget, Qt.Key.Key_A, CTRL)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


def filters(window) -> int:
    return window.document.design.nodes["conv2d"].args["filters"]


def test_ctrl_z_in_the_field_just_committed_undoes_the_design(window, qtbot):
    window.scene.select_nodes(["conv2d"])
    spin = window.inspector.editor("filters").spin
    focus(qtbot, spin)
    type_value(qtbot, spin, "48")
    assert filters(window) == 48
    qtbot.keyClick(spin, Qt.Key.Key_Z, CTRL)
    assert filters(window) == 32
    assert spin.value() == 32 and spin.hasFocus()
    qtbot.keyClick(spin, Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert filters(window) == 48


def test_ctrl_z_in_a_committed_literal_field_undoes_the_design(window, qtbot):
    window.scene.select_nodes(["input_layer"])
    edit = window.inspector.editor("shape").edit
    focus(qtbot, edit)
    type_value(qtbot, edit, "(32, 32, 1)")
    assert window.document.design.nodes["input_layer"].args["shape"] == (32, 32, 1)
    qtbot.keyClick(edit, Qt.Key.Key_Z, CTRL)
    assert window.document.design.nodes["input_layer"].args["shape"] == (28, 28, 1)
    assert edit.text() == "(28, 28, 1)"


def test_uncommitted_text_reverts_itself_and_leaves_the_design(window, qtbot):
    window.document.edit("Set", [SetArg("conv2d", "filters", 40)])
    window.scene.select_nodes(["conv2d"])
    spin = window.inspector.editor("filters").spin
    focus(qtbot, spin)
    qtbot.keyClick(spin, Qt.Key.Key_A, CTRL)
    qtbot.keyClicks(spin, "99")                 # typed, no Enter: not committed
    assert spin.lineEdit().text() == "99"
    qtbot.keyClick(spin, Qt.Key.Key_Z, CTRL)
    assert spin.lineEdit().text() == "40"       # the field reverted its own text
    assert filters(window) == 40                # and the design kept the committed step
    assert window.document.undo_stack.index() == 1


def test_ctrl_z_in_the_palette_filter_and_the_summary_table_undoes(window, qtbot):
    window.document.edit("Set", [SetArg("conv2d", "filters", 40)])
    window.document.edit("Set", [SetArg("dense", "units", 20)])
    line = window.palette_widget.filter_edit
    qtbot.mouseClick(line, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(line.hasFocus, timeout=2000)
    qtbot.keyClick(line, Qt.Key.Key_Z, CTRL)
    assert window.document.design.nodes["dense"].args["units"] == 10
    assert filters(window) == 40

    table = window.summary.table
    rect = table.visualRect(table.model().index(0, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(table.hasFocus, timeout=2000)
    qtbot.keyClick(table, Qt.Key.Key_Z, CTRL)
    assert filters(window) == 32


def test_quick_up_arrow_steps_are_one_undo_step(window, qtbot):
    window.scene.select_nodes(["conv2d"])
    spin = window.inspector.editor("filters").spin
    focus(qtbot, spin)
    for _ in range(5):
        qtbot.keyClick(spin, Qt.Key.Key_Up)
    assert filters(window) == 37
    stack = window.document.undo_stack
    assert stack.count() == 1 and stack.text(0) == "Set conv2d.filters = 37"
    qtbot.keyClick(spin, Qt.Key.Key_Z, CTRL)
    assert filters(window) == 32 and stack.index() == 0


def test_steps_further_apart_typed_or_on_another_argument_stay_separate(qtbot, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(commands.OpCommand, "clock", staticmethod(lambda: now[0]))
    from engine.examples import seed_design
    document = Document(seed_design())
    document.edit("a", [SetArg("conv2d", "filters", 33)], merge=True)
    now[0] += 0.5
    document.edit("b", [SetArg("conv2d", "filters", 34)], merge=True)   # merged: within the window
    document.edit("c", [SetArg("conv2d_1", "filters", 65)], merge=True)  # another layer
    now[0] += commands.MERGE_WINDOW_S + 0.1
    document.edit("d", [SetArg("conv2d_1", "filters", 66)], merge=True)  # too late
    assert document.undo_stack.count() == 3
    document.edit("typed", [SetArg("conv2d_1", "filters", 70)])  # a typed value: its own step
    document.undo_stack.undo()
    assert document.undo_stack.count() == 4
    document.edit("e", [SetArg("conv2d_1", "filters", 65)], merge=True)  # stepped back: the step vanishes
    assert document.undo_stack.count() == 2
    document.undo_stack.undo()
    document.undo_stack.undo()
    assert document.design.nodes["conv2d"].args["filters"] == 32
