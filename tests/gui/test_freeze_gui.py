"""Freezing in the designer: the Inspector's Trainable switch, the padlock on cards and group
cards, the counts, the context menu, the Model menu, and Fit Head to Data."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRectF, Qt
from PySide6.QtGui import QContextMenuEvent, QImage, QPainter
from PySide6.QtWidgets import QApplication, QStyleOptionGraphicsItem
from test_canvas_groups import FEATURES, click, grip, show

from engine.editing import SetArg, plan_set_trainable
from engine.grouping import plan_collapse, plan_group
from gui.canvas.node_item import FROZEN_OPACITY

from driving import menu_action

CTRL = Qt.KeyboardModifier.ControlModifier


def render(item, rect: QRectF) -> QImage:
    """``rect`` (item coordinates) of ``item`` painted at full detail, as the canvas paints it."""
    image = QImage(int(rect.width()) * 2, int(rect.height()) * 2, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    painter.scale(2, 2)
    painter.translate(-rect.topLeft())
    item.paint(painter, QStyleOptionGraphicsItem(), None)
    painter.end()
    return image


def tick(qtbot, box) -> None:
    """Click a check box where a person does: on its box (a click right of its text misses)."""
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))


def ink(image: QImage) -> int:
    """How many pixels of ``image`` are not the header's colour (the padlock's strokes)."""
    background = image.pixel(1, image.height() // 2)
    return sum(1 for x in range(image.width()) for y in range(image.height()) if image.pixel(x, y) != background)


def test_the_inspector_switch_freezes_a_layer_shows_a_lock_and_undoes(window, qtbot):
    scene, document, inspector = window.scene, window.document, window.inspector
    card = scene.node_item("conv2d")
    show(window, ["conv2d"])
    click(qtbot, window.view, grip(card))
    assert inspector.node_name == "conv2d" and inspector.trainable_box.isChecked()
    assert inspector.fact("params") == "320 trainable"
    lock_before = ink(render(card, card.lock_rect()))

    tick(qtbot, inspector.trainable_box)
    assert not document.design.nodes["conv2d"].trainable
    assert card.frozen and card.opacity() == FROZEN_OPACITY
    assert ink(render(card, card.lock_rect())) > lock_before + 20  # the padlock is painted
    assert inspector.fact("params") == "320 = 0 trainable + 320 non-trainable"
    assert "Trainable 34,506 · Non-trainable 320" in window.summary.totals_text()
    assert document.undo_stack.count() == 1 and document.undo_stack.undoText() == "Freeze conv2d"
    assert "Frozen" in scene.node_tooltip("conv2d")

    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Z, CTRL)
    assert document.design.nodes["conv2d"].trainable and not card.frozen and card.opacity() == 1.0
    assert inspector.trainable_box.isChecked() and inspector.fact("params") == "320 trainable"
    assert "Non-trainable 0" in window.summary.totals_text()


def test_right_click_freeze_on_a_group_card_freezes_all_its_layers(window, qtbot):
    scene, document, inspector = window.scene, window.document, window.inspector
    design = document.design
    document.edit("Group", plan_group(design, FEATURES, "features"))
    document.edit("Collapse", plan_collapse(document.design, ["features"], True))
    group = scene.group_card("features")
    assert group is not None and group.text.lock == ""
    show(window, ["input_layer", "dense"])
    steps = document.undo_stack.count()

    point = window.view.mapFromScene(grip(group))
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, point, window.view.viewport().mapToGlobal(point))
    QApplication.sendEvent(window.view.viewport(), event)
    assert scene.selected_group_names() == ["features"]
    # A selected group shows in the Inspector as its sum, with its own switch.
    assert inspector.many_layers == FEATURES and inspector.many_fact("frozen") == "none frozen"
    menu = window.freezing.context_menu
    assert menu is not None and menu.isVisible()
    freeze = next(a for a in menu.actions() if a.text().replace("&", "") == "Freeze")
    assert freeze.isEnabled()
    freeze.trigger()
    menu.close()

    assert all(not document.design.nodes[n].trainable for n in FEATURES)
    assert document.undo_stack.count() == steps + 1
    assert group.text.lock == "all" and group.text.frozen_text == "all frozen"
    assert "all its layers are frozen" in scene.group_tooltip("features")
    assert inspector.many_fact("frozen") == "all 4 frozen" and not inspector.many_trainable_box.isChecked()
    assert inspector.many_fact("params") == "18,816 = 0 trainable + 18,816 non-trainable"

    # One undo step brings them all back; with one of them frozen the group is partly frozen.
    document.undo_stack.undo()
    assert group.text.lock == "" and inspector.many_trainable_box.isChecked()
    document.edit("Freeze conv2d", plan_set_trainable(document.design, ["conv2d"], False))
    assert group.text.lock == "some" and group.text.frozen_text == "1 of 4 frozen"
    assert inspector.many_trainable_box.checkState() == Qt.CheckState.PartiallyChecked
    tick(qtbot, inspector.many_trainable_box)  # mixed → all train
    assert all(document.design.nodes[n].trainable for n in FEATURES) and group.text.lock == ""


def test_freeze_backbone_from_the_model_menu(window):
    document = window.document
    menu_action(window, "Model", "Freeze Backbone").trigger()
    frozen = {n.name for n in document.design if not n.trainable}
    assert frozen == {"conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "flatten"}  # the head: dense
    assert window.scene.node_item("conv2d").frozen and not window.scene.node_item("dense").frozen
    assert document.analysis.trainable_params == 16_010  # only the head's Dense trains
    menu_action(window, "Model", "Unfreeze All").trigger()
    assert document.analysis.non_trainable_params == 0


def test_fit_head_to_data_needs_loaded_data_then_fits_the_output_in_one_step(window, qtbot):
    fit = menu_action(window, "Model", "Fit Head to Data")
    assert not fit.isEnabled() and "Load a dataset in the Train panel first" in fit.toolTip()
    document = window.document
    document.edit("Set dense.units = 7", [SetArg("dense", "units", 7)])
    window.act_show_training.trigger()
    qtbot.waitUntil(lambda: window.train_panel.session.dataset is not None, timeout=60_000)
    assert fit.isEnabled()
    steps = document.undo_stack.count()
    fit.trigger()
    assert document.design.nodes["dense"].args["units"] == 10  # the digits' ten classes
    assert document.undo_stack.count() == steps + 1
    assert document.analysis.nodes["dense"].output_shape == (None, 10)
    fit.trigger()  # fitted already: nothing happens, and the status bar says why
    assert document.undo_stack.count() == steps + 1
    assert "the head fits the data" in window.statusBar().currentMessage()


def test_copy_and_paste_keep_a_layer_frozen(window, qtbot):
    document, scene = window.document, window.scene
    document.edit("Freeze conv2d", plan_set_trainable(document.design, ["conv2d"], False))
    show(window, ["conv2d"])
    click(qtbot, window.view, grip(scene.node_item("conv2d")))
    qtbot.keyClick(window.view, Qt.Key.Key_C, CTRL)
    qtbot.keyClick(window.view, Qt.Key.Key_V, CTRL)
    pasted = [n for n in document.design.nodes if n not in ("conv2d",) and n.startswith("conv2d_") and n != "conv2d_1"]
    assert len(pasted) == 1 and not document.design.nodes[pasted[0]].trainable
    assert scene.node_item(pasted[0]).frozen


def test_zoomed_out_a_frozen_card_keeps_its_padlock(window, qtbot):
    from gui.canvas.node_item import LOD_NAME, Detail, detail_for

    view, scene = window.view, window.scene
    view.set_zoom(0.3)
    assert detail_for(view.zoom()) is Detail.NAME and view.zoom() > LOD_NAME
    card = scene.node_item("conv2d")
    view.centerOn(card)

    def corner() -> QImage:
        """The card's top-right corner on screen, where a zoomed-out padlock goes."""
        QApplication.processEvents()
        top_right = view.mapFromScene(card.sceneBoundingRect().topRight())
        return view.viewport().grab().toImage().copy(top_right.x() - 16, top_right.y() + 1, 14, 14)

    before = ink(corner())
    click(qtbot, view, grip(card))
    menu_action(window, "Model", "Freeze").trigger()
    assert not window.document.design.nodes["conv2d"].trainable
    scene.clearSelection()  # the selection outline is not the padlock
    after = ink(corner())
    assert after > before + 10, (before, after)  # the padlock's strokes
