"""Issue 12, points 4 and 5: shared widgets, the History text of a fix, palette ranking, the
Summary highlight following the canvas selection, and error text wrapped on cards."""

from __future__ import annotations

import ast
import html
from pathlib import Path

from PySide6.QtCore import QPointF, Qt

from engine.design import chain
from gui.canvas.node_item import ERROR_LINES
from gui.document import Document
from gui.inspector import InspectorWidget
from gui.palette import PaletteWidget
from gui.training.settings_form import LearningRateSpin
from gui.widgets import NumberSpinBox

GUI = Path(__file__).resolve().parents[2] / "gui"


def test_no_module_imports_private_helpers_of_another():
    offenders = []
    for path in GUI.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                offenders += [f"{path.relative_to(GUI)}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert offenders == []


def test_learning_rate_and_inspector_floats_share_one_number_spin_box(qtbot):
    spin = LearningRateSpin()
    qtbot.addWidget(spin)
    assert isinstance(spin, NumberSpinBox)
    spin.show()
    spin.setFocus()
    qtbot.keyClick(spin, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(spin, "3e-4")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert spin.value() == 3e-4 and spin.text() == "0.0003"


def test_history_names_the_layer_a_fix_repairs(qtbot):
    document = Document(chain(("InputLayer", {"shape": (8, 8, 1)}),
                              ("Conv2D", {"filters": 4, "kernel_size": 3}),
                              ("Conv2D", {"filters": 4, "kernel_size": 9})))
    inspector = InspectorWidget(document)
    qtbot.addWidget(inspector)
    inspector.show()
    inspector.show_node("conv2d_1")
    button = next(b for b in inspector.fix_buttons() if "padding" in b.text())
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert document.undo_stack.text(0) == "Fix conv2d_1: padding='same'"


def test_filter_ranks_names_above_descriptions(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    palette.show()
    qtbot.keyClicks(palette.filter_edit, "add")
    kinds = palette.visible_kinds()
    assert kinds[0] == "Add"
    assert "ZeroPadding2D" not in kinds or kinds.index("ZeroPadding2D") > kinds.index("Add")
    assert palette.tree.currentItem() is palette.item_for("Add")  # Enter adds the best match

    palette.filter_edit.clear()
    qtbot.keyClicks(palette.filter_edit, "dense")
    assert palette.visible_kinds()[0] == "Dense"
    palette.filter_edit.clear()
    qtbot.keyClicks(palette.filter_edit, "conv")  # prefix before contains
    kinds = palette.visible_kinds()
    assert kinds.index("Conv2D") < kinds.index("DepthwiseConv2D")
    qtbot.keyClick(palette.filter_edit, Qt.Key.Key_Escape)
    assert palette.visible_kinds()[0] == "InputLayer"  # the catalogue order is back


def test_summary_highlight_follows_a_cleared_canvas_selection(window, qtbot):
    view = window.view
    item = window.scene.node_item("conv2d")
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(item.pos()))
    table = window.summary.table
    assert table.selectionModel().selectedRows()
    empty = view.mapFromScene(item.pos() + QPointF(600, 600))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=empty)
    assert window.scene.selected_node_names() == []
    assert table.selectionModel().selectedRows() == []


def test_card_error_wraps_to_two_lines_with_the_whole_message_in_the_tooltip(window):
    from engine.editing import SetArg

    window.document.edit("bad", [SetArg("conv2d_1", "kernel_size", 15)])
    message = window.document.analysis.nodes["conv2d_1"].errors[0].message
    item = window.scene.node_item("conv2d_1")
    lines = item.shape_lines()
    assert len(lines) == ERROR_LINES
    assert lines[0].startswith("Error: ") and lines[1].endswith("…")
    shown = " ".join(lines).rstrip("…")
    assert f"Error: {message}".startswith(shown)
    assert len(shown) > 40  # more than one line's worth of the message
    assert html.escape(message) in window.scene.node_tooltip("conv2d_1")
    window.document.undo_stack.undo()
    assert len(item.shape_lines()) == 1
