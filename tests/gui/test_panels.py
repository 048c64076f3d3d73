"""The palette, inspector and summary panels, driven as a user would: typing, clicking, dragging."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon

from engine.design import Design, chain
from engine.layers import CATALOGUE, GROUPS
from gui.canvas import LAYER_MIME
from gui.document import Document
from gui.icons import group_icon, layer_icon
from gui.inspector import InspectorWidget, LiteralEditor, parse_literal
from gui.palette import PaletteWidget
from gui.summary_panel import SummaryWidget

from driving import select_all_and_type

SEED = [("InputLayer", {"shape": (28, 28, 1)}),
        ("Conv2D", {"filters": 32, "kernel_size": 3, "activation": "relu"}),
        ("MaxPooling2D", {}), ("Flatten", {}), ("Dense", {"units": 10, "activation": "softmax"})]


@pytest.fixture
def document(qtbot) -> Document:
    return Document(chain(*SEED))


@pytest.fixture
def inspector(qtbot, document) -> InspectorWidget:
    widget = InspectorWidget(document)
    qtbot.addWidget(widget)
    widget.resize(340, 700)
    widget.show()
    return widget


# --- icons ---------------------------------------------------------------------------------

def test_every_group_has_an_icon_drawn_at_the_device_pixel_ratio(qtbot):
    for group in GROUPS:
        icon = group_icon(group)
        assert not icon.isNull()
        sharp = icon.pixmap(QSize(16, 16), 2.0)
        assert sharp.size() == QSize(32, 32) and sharp.devicePixelRatio() == 2.0
        assert not sharp.toImage().allGray() or group == "Regularization"
    assert layer_icon("Conv2D") is group_icon("Convolution")  # cached
    assert not layer_icon("NoSuchLayer").isNull()
    assert layer_icon("Conv2D").pixmap(QSize(24, 24), QIcon.Mode.Disabled).size() == QSize(24, 24)


# --- palette -------------------------------------------------------------------------------

def test_palette_lists_every_catalogue_layer_with_its_summary(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    assert sorted(palette.visible_kinds()) == sorted(CATALOGUE)
    item = palette.item_for("Conv2D")
    assert item.toolTip(0) == CATALOGUE["Conv2D"].summary
    assert item.parent().text(0) == "Convolution"


def test_typing_in_the_filter_shows_matching_layers_only(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    palette.show()
    palette.tree.collapseAll()
    qtbot.keyClicks(palette.filter_edit, "pool 2d")
    assert palette.visible_kinds() == ["MaxPooling2D", "AveragePooling2D", "GlobalMaxPooling2D",
                                       "GlobalAveragePooling2D"]
    assert palette.item_for("MaxPooling2D").parent().isExpanded()
    assert palette.item_for("Conv2D").parent().isHidden()

    palette.filter_edit.clear()
    qtbot.keyClicks(palette.filter_edit, "overfitting")  # matched in the summary
    assert palette.visible_kinds() == ["Dropout"]

    qtbot.keyClick(palette.filter_edit, Qt.Key.Key_Escape)
    assert palette.filter_edit.text() == ""
    assert sorted(palette.visible_kinds()) == sorted(CATALOGUE)
    assert not palette.item_for("Conv2D").parent().isExpanded()  # expansion state restored

    qtbot.keyClicks(palette.filter_edit, "zzzz")
    assert palette.visible_kinds() == [] and not palette.empty_label.isHidden()


def test_double_click_and_enter_activate_a_layer(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    palette.show()
    item = palette.item_for("Dense")
    palette.tree.scrollToItem(item)
    rect = palette.tree.visualItemRect(item)
    with qtbot.waitSignal(palette.sigActivated) as blocker:
        # A real double-click is press, release, double-click: QTest's mouseDClick sends only
        # the last part, so the first click is sent explicitly.
        qtbot.mouseClick(palette.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(palette.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == ["Dense"]

    # Keyboard only: filter, Down into the list, Enter.
    qtbot.keyClicks(palette.filter_edit, "batchnorm")
    qtbot.keyClick(palette.filter_edit, Qt.Key.Key_Down)
    assert palette.tree.currentItem() is palette.item_for("BatchNormalization")
    with qtbot.waitSignal(palette.sigActivated) as blocker:
        qtbot.keyClick(palette.tree, Qt.Key.Key_Return)
    assert blocker.args == ["BatchNormalization"]


def test_dragging_a_layer_carries_its_kind(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    mime = palette.tree.mimeData([palette.item_for("Conv2D")])
    assert bytes(mime.data(LAYER_MIME).data()).decode("utf-8") == "Conv2D"
    assert mime.text() == "Conv2D"
    assert palette.tree.mimeData([palette.item_for("Conv2D").parent()]) is None  # groups don't drag
    assert bool(palette.item_for("Conv2D").flags() & Qt.ItemFlag.ItemIsDragEnabled)


# --- inspector -----------------------------------------------------------------------------

def test_empty_state_when_nothing_is_selected(inspector):
    assert inspector.node_name is None
    assert inspector.empty_label.isVisible()
    assert "Select a layer" in inspector.empty_label.text()


def test_typing_a_value_in_a_spin_box_is_one_undoable_step(qtbot, inspector, document):
    inspector.show_node("conv2d")
    spin = inspector.editor("filters").spin
    assert spin.value() == 32
    select_all_and_type(qtbot, spin, "64")
    assert document.design.nodes["conv2d"].args["filters"] == 64
    assert document.undo_stack.count() == 1
    assert document.analysis.nodes["conv2d"].output_shape == (None, 26, 26, 64)
    assert "26, 26, 64" in inspector.fact("output")

    select_all_and_type(qtbot, spin, "64")  # the same value again: nothing to push
    spin.editingFinished.emit()
    assert document.undo_stack.count() == 1

    document.undo_stack.undo()
    assert document.design.nodes["conv2d"].args["filters"] == 32
    assert spin.value() == 32


def test_form_is_kept_while_the_analysis_refreshes(qtbot, inspector, document):
    inspector.show_node("conv2d")
    spin = inspector.editor("filters").spin
    select_all_and_type(qtbot, spin, "48")
    assert inspector.editor("filters").spin is spin  # not rebuilt: focus and cursor survive
    document.set_batch_size(8)
    assert inspector.editor("filters").spin is spin


def test_choosing_padding_in_the_combo(qtbot, inspector, document):
    inspector.show_node("conv2d")
    combo = inspector.editor("padding").combo
    assert combo.currentText() == "valid"
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert document.design.nodes["conv2d"].args["padding"] == "same"
    assert document.undo_stack.count() == 1
    assert document.analysis.nodes["conv2d"].output_shape == (None, 28, 28, 32)


def test_kernel_size_axes_locked_and_unlocked(qtbot, inspector, document):
    inspector.show_node("conv2d")
    editor = inspector.editor("kernel_size")
    assert editor.locked and [s.value() for s in editor.spins] == [3, 3]
    select_all_and_type(qtbot, editor.spins[0], "5")
    assert [s.value() for s in editor.spins] == [5, 5]
    assert document.design.nodes["conv2d"].args["kernel_size"] == 5
    editor.lock.click()
    select_all_and_type(qtbot, editor.spins[1], "3")
    assert document.design.nodes["conv2d"].args["kernel_size"] == (5, 3)
    assert document.undo_stack.count() == 2


def test_literal_arguments_parse_safely_and_refuse_bad_text(qtbot, inspector, document):
    inspector.show_node("input_layer")
    edit = inspector.editor("shape").edit
    assert edit.text() == "(28, 28, 1)"
    select_all_and_type(qtbot, edit, "(32, 32, 3)")
    assert document.design.nodes["input_layer"].args["shape"] == (32, 32, 3)
    assert document.undo_stack.count() == 1

    for bad in ("(32, 32", "__import__('os')", "(32, 'x')"):
        select_all_and_type(qtbot, edit, bad)
        assert inspector.arg_error("shape")
        assert document.design.nodes["input_layer"].args["shape"] == (32, 32, 3)
    assert document.undo_stack.count() == 1
    with pytest.raises(ValueError):
        parse_literal("[1] * 10")


def test_invalid_name_is_red_and_leaves_the_design_alone(qtbot, inspector, document):
    inspector.show_node("conv2d")
    before = list(document.design.nodes)
    for bad in ("dense", "a/b", "   "):  # taken, a slash, empty once trimmed
        select_all_and_type(qtbot, inspector.name_edit, bad)
        assert not inspector.name_error.isHidden() and inspector.name_error.text()
        assert list(document.design.nodes) == before
    assert document.undo_stack.count() == 0
    qtbot.keyClick(inspector.name_edit, Qt.Key.Key_Escape)
    assert inspector.name_edit.text() == "conv2d" and inspector.name_error.isHidden()

    select_all_and_type(qtbot, inspector.name_edit, "features")
    assert "features" in document.design.nodes and inspector.node_name == "features"
    document.undo_stack.undo()
    assert inspector.node_name == "conv2d" and inspector.name_edit.text() == "conv2d"


def test_argument_problems_are_shown_under_the_argument(qtbot, inspector):
    document = Document(chain(("InputLayer", {"shape": (8, 8, 3)}), ("Dropout", {"rate": 1.5})))
    widget = InspectorWidget(document)
    qtbot.addWidget(widget)
    widget.show_node("dropout")
    assert "rate must be ≤ 1" in widget.arg_error("rate")
    assert widget.arg_error("seed") == ""


def test_fix_button_repairs_a_kernel_larger_than_its_input(qtbot):
    document = Document(chain(("InputLayer", {"shape": (4, 4, 1)}),
                              ("Conv2D", {"filters": 8, "kernel_size": 7}), ("Flatten", {})))
    widget = InspectorWidget(document)
    qtbot.addWidget(widget)
    widget.show()
    widget.show_node("conv2d")
    assert not document.analysis.valid
    buttons = widget.fix_buttons()
    assert [b.text() for b in buttons] == ["Set padding='same'", "Set kernel_size=(4, 4)"]
    qtbot.mouseClick(buttons[0], Qt.MouseButton.LeftButton)
    assert document.analysis.valid
    assert document.undo_stack.count() == 1
    assert widget.fix_buttons() == []
    assert widget.editor("padding").combo.currentText() == "same"


def test_inspector_follows_removal_and_reset(qtbot, inspector, document):
    from engine.editing import plan_delete
    inspector.show_node("flatten")
    document.edit("Delete", plan_delete(document.design, ["flatten"]))
    assert inspector.node_name is None
    document.undo_stack.undo()
    inspector.show_node("dense")
    document.reset(Design())
    assert inspector.node_name is None


# --- summary -------------------------------------------------------------------------------

@pytest.fixture
def summary(qtbot, document) -> SummaryWidget:
    widget = SummaryWidget(document)
    qtbot.addWidget(widget)
    widget.resize(900, 300)
    widget.show()
    return widget


def test_summary_rows_match_the_cli(summary, document):
    model = summary.model
    assert model.rowCount() == len(SEED)
    assert model.data(model.index(1, 0)) == "conv2d (Conv2D)"
    assert model.data(model.index(1, 1)) == "(None, 26, 26, 32)"
    assert model.data(model.index(1, 2)) == "320"
    align = model.data(model.index(1, 2), Qt.ItemDataRole.TextAlignmentRole)
    assert align & int(Qt.AlignmentFlag.AlignRight)


def test_invalid_rows_are_tinted(qtbot):
    document = Document(chain(("InputLayer", {"shape": (4, 4, 1)}), ("Conv2D", {"filters": 8, "kernel_size": 7})))
    widget = SummaryWidget(document)
    qtbot.addWidget(widget)
    model = widget.model
    assert model.data(model.index(1, 0), Qt.ItemDataRole.BackgroundRole) is not None
    assert model.data(model.index(0, 0), Qt.ItemDataRole.BackgroundRole) is None


def test_clicking_a_row_emits_its_name_and_select_node_does_not(qtbot, summary):
    table = summary.table
    rect = table.visualRect(summary.model.index(2, 0))
    with qtbot.waitSignal(summary.sigNodeClicked) as blocker:
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == ["max_pooling2d"]

    with qtbot.assertNotEmitted(summary.sigNodeClicked):
        summary.select_node("dense")
    assert table.selectionModel().selectedRows()[0].row() == 4


def test_batch_size_updates_totals(qtbot, summary, document):
    assert "batch 32" in summary.totals_text()
    before = document.analysis.activation_bytes
    select_all_and_type(qtbot, summary.batch_spin, "64")
    assert document.batch_size == 64
    assert document.analysis.activation_bytes == 2 * before
    assert "batch 64" in summary.totals_text()


def test_cells_update_in_place_on_edits(qtbot, summary, document):
    from engine.editing import SetArg
    summary.select_node("conv2d")
    with qtbot.assertNotEmitted(summary.model.modelReset):
        document.edit("Set", [SetArg("conv2d", "filters", 16)])
    assert summary.model.data(summary.model.index(1, 2)) == "160"
    assert summary.table.selectionModel().selectedRows()[0].row() == 1


def test_leaving_every_editor_unchanged_pushes_nothing(qtbot):
    """Focus passing through any argument of any layer must not create undo steps."""
    from engine.editing import default_args
    design = Design()
    source = design.add("InputLayer", args={"shape": (32, 32, 3)})
    for kind in CATALOGUE:
        if kind != "InputLayer":
            design.add(kind, args=default_args(kind), inputs=[source.name])
    document = Document(design)
    widget = InspectorWidget(document)
    qtbot.addWidget(widget)
    for name in list(design.nodes):
        widget.show_node(name)
        for arg in widget.args():
            editor = widget.editor(arg)
            if isinstance(editor, LiteralEditor):
                editor.edit.editingFinished.emit()
            else:
                editor.committed.emit(editor.value())
        assert document.undo_stack.count() == 0, name


def test_optional_number_takes_none(qtbot):
    document = Document(chain(("InputLayer", {"shape": (8,)}), ("ReLU", {})))
    widget = InspectorWidget(document)
    qtbot.addWidget(widget)
    widget.show_node("re_lu")
    spin = widget.editor("max_value").spin
    assert spin.text() == "None"
    select_all_and_type(qtbot, spin, "6")
    assert document.design.nodes["re_lu"].args["max_value"] == 6.0
    select_all_and_type(qtbot, spin, "None")
    assert "max_value" not in document.design.nodes["re_lu"].args
    assert document.undo_stack.count() == 2


# --- the mirror after incremental analyses (issue 14) ------------------------------------------

def _stack(layers: int) -> Design:
    design = Design(name="stack")
    prev = design.add("InputLayer", args={"shape": (16, 16, 4)}).name
    kinds = [("Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same"}), ("BatchNormalization", {}),
             ("ReLU", {})]
    for i in range(layers - 1):
        kind, args = kinds[i % 3]
        prev = design.add(kind, args=args, inputs=[prev]).name
    return design


def _full_cells(document: Document) -> tuple[list[str], list[list[str]]]:
    from engine.summary import summary_rows
    rows = summary_rows(document.design, document.analysis)
    for row in rows:
        row[1] = row[1].replace("\n", "; ")
    return list(document.analysis.order), rows


def test_every_edit_leaves_analysis_summary_and_cards_as_a_full_refresh_would(qtbot):
    """Edits are analysed incrementally and mirrored row by row and card by card; after each one
    (and each undo and redo) everything must be what a full analysis and a full refresh give,
    without resetting the table for a layer added, deleted or renamed."""
    from engine.analysis import analyse
    from engine.design import TensorRef
    from engine.editing import SetArg, plan_delete, plan_insert_on_edge, plan_rename
    from gui.canvas.node_item import card_text
    from gui.canvas.scene import GraphScene

    document = Document(_stack(30))
    summary = SummaryWidget(document)
    qtbot.addWidget(summary)
    scene = GraphScene(document)
    resets: list[int] = []
    summary.model.modelReset.connect(lambda: resets.append(1))
    touched_rows: list[tuple[int, int]] = []
    summary.model.dataChanged.connect(lambda a, b, _roles=(): touched_rows.append((a.row(), b.row())))
    design = document.design

    def check() -> None:
        full = analyse(design, document.batch_size, input_range=document.training.pixel_range)
        assert document.analysis == full
        assert document.analysis.total_params == full.total_params
        model = summary.model
        assert (model.names, [model.row_cells(i) for i in range(model.rowCount())]) == _full_cells(document)
        for name, item in ((n, scene.node_item(n)) for n in design.nodes):
            assert item is not None and item.text == card_text(design.nodes[name], document.analysis.nodes[name])

    middle = "conv2d_4"
    row = summary.model.row_of(middle)
    document.edit("filters", [SetArg(middle, "filters", 7)])
    check()
    # The conv, its BatchNormalization and ReLU, and the next conv (its weights): four rows.
    assert touched_rows and all(row <= a <= b <= row + 3 for a, b in touched_rows)
    assert document.analysis.changes is not None and len(document.analysis.changes.nodes) == 4

    inserted = plan_insert_on_edge(design, "Dropout", TensorRef(middle), "batch_normalization_4")
    document.edit("insert", inserted)
    check()
    document.edit("delete", plan_delete(design, ["re_lu_2"]))
    check()
    document.edit("rename", plan_rename(design, "conv2d_1", "first_conv").ops)
    check()
    document.edit("bad", [SetArg("conv2d_2", "kernel_size", 99)])  # too large: everything after waits
    check()
    document.edit("cut", plan_delete(design, [], [(TensorRef("re_lu_3"), "conv2d_4", 0)]))
    check()
    while document.undo_stack.canUndo():
        document.undo_stack.undo()
        check()
    while document.undo_stack.canRedo():
        document.undo_stack.redo()
        check()
    assert resets == []
    document.set_batch_size(8)
    check()


def test_rows_of_an_edit_that_changes_every_layer_are_formatted_when_shown(qtbot):
    from engine.editing import SetArg
    document = Document(_stack(100))
    summary = SummaryWidget(document)
    qtbot.addWidget(summary)
    summary.resize(900, 300)
    summary.show()
    document.edit("shape", [SetArg("input_layer", "shape", (8, 8, 4))])
    model = summary.model
    assert None in model.rows  # not formatted: most rows are out of sight
    qtbot.wait(10)  # the table paints the rows in sight, formatting them
    names, rows = _full_cells(document)
    assert model.names == names
    assert model.data(model.index(99, 1)) == "(None, 8, 8, 4)" == rows[99][1]
    assert [model.row_cells(i) for i in range(100)] == rows


def test_totals_say_the_parameters_of_unsupported_layers_are_unknown(qtbot):
    design = chain(("InputLayer", {"shape": (4,)}), ("Dense", {"units": 2}))
    design.add("Swirl", "swirl", inputs=["dense"],
               config={"unsupported": {"module": None, "class_name": "Swirl", "reason": "a custom layer class",
                                       "output_shapes": [[None, 2]]}})
    design.add("Dense", "head", {"units": 3}, inputs=["swirl"])
    summary = SummaryWidget(Document(design))
    qtbot.addWidget(summary)
    text = summary.totals_text()
    assert "Total params 19 " in text  # 10 + 9: the layer after the unsupported one is counted
    assert "the parameters and MACs of 1 unsupported layer are unknown" in text
    row = summary.model.row_of("head")
    assert summary.model.data(summary.model.index(row, 1)) == "(None, 3)"


def test_opening_a_design_analyses_it_once_and_in_full(qtbot, document, monkeypatch):
    import gui.document
    from engine.editing import SetArg
    document.edit("filters", [SetArg("conv2d", "filters", 8)])  # a history for reset to clear
    calls: list[int] = []
    real = gui.document.analyse

    def counting(*args, **kwargs):
        calls.append(-1)
        return real(*args, **kwargs)

    monkeypatch.setattr(gui.document, "analyse", counting)
    document.analysed.connect(lambda: calls.append(len(document.design)))
    document.reset(_stack(12))
    assert calls == [-1, 12]  # one analysis, of the new design, announced once
    assert document.analysis.changes is None and len(document.analysis.nodes) == 12
