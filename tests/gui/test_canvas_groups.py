"""Groups on the canvas, zoomed-out cards and unsupported layers, driven as a person would.

Each test acts through the window (shortcuts, menus, clicks, double-clicks and drags on the
canvas), then checks what is on screen and in the design, and that one undo step undoes it.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QHelpEvent, QImage, QPainter
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QLineEdit, QMessageBox, QToolTip

from engine import project_file
from engine.design import Design, Group, GroupKind
from engine.editing import SetArg, SetGroup, SetNodeGroup
from gui.canvas import EdgeItem
from gui.canvas.group_item import GroupCardItem
from gui.canvas.node_item import Detail, NodeItem, detail_for
from gui.theme import ERROR_COLOR

from driving import menu_action, select_all_and_type

FEATURES = ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1"]   # the seed CNN's convolutions
CTRL = Qt.KeyboardModifier.ControlModifier
PROJECT_FILTER = "Convas projects (*.convas)"


# --- driving ------------------------------------------------------------------------------------

def when_modal(qtbot, kind: type, act: Callable[[QApplication], None]) -> None:
    """Once a modal dialog of ``kind`` is open, call ``act`` with it (checks every 20 ms)."""
    def poll(tries: int = 100) -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, kind):
            act(dialog)
        elif tries:
            QTimer.singleShot(20, lambda: poll(tries - 1))
    QTimer.singleShot(0, poll)


def answer_name(qtbot, name: str, then: Callable[[], None] | None = None) -> None:
    """Type ``name`` into the name dialog that is about to open and press Enter."""
    def act(dialog) -> None:
        field = dialog.findChild(QLineEdit)
        assert field is not None
        select_all_and_type(qtbot, field, name)
        if then is not None:
            then()
    when_modal(qtbot, QInputDialog, act)


def click(qtbot, view, scene_pos: QPointF, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, view.mapFromScene(scene_pos))
    view.setFocus()  # as a click on the canvas gives it (the offscreen platform does not)


def double_click(qtbot, view, scene_pos: QPointF) -> None:
    """What a mouse delivers for a double-click: press, release, double-click, release."""
    viewport, point = view.viewport(), view.mapFromScene(scene_pos)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=point)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=point)
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=point)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=point)


def drag(qtbot, view, start: QPointF, end: QPointF, steps: int = 6) -> None:
    viewport = view.viewport()
    a, b = view.mapFromScene(start), view.mapFromScene(end)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=a)
    for i in range(1, steps + 1):
        qtbot.mouseMove(viewport, QPoint(a.x() + (b.x() - a.x()) * i // steps, a.y() + (b.y() - a.y()) * i // steps))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=b)


def grip(item: NodeItem | GroupCardItem) -> QPointF:
    """A point on a card away from its ports and chevron: where a person grabs it."""
    return item.pos() + QPointF(20, 0)


def show(window, names: list[str]) -> None:
    """Zoom and centre the canvas on the cards of ``names`` (at a readable zoom)."""
    scene, view = window.scene, window.view
    rect = QRectF()
    for name in names:
        card = scene.card_for(name)
        rect = rect.united(card.sceneBoundingRect())
    view.set_zoom(min(1.0, 0.9 * min(view.viewport().width() / rect.width(), view.viewport().height() / rect.height())))
    view.centerOn(rect.center())


def select_by_clicks(qtbot, window, names: list[str]) -> None:
    show(window, names)
    for i, name in enumerate(names):
        click(qtbot, window.view, grip(window.scene.node_item(name)), CTRL if i else Qt.KeyboardModifier.NoModifier)
    assert window.scene.selected_node_names() == names


def group_features(qtbot, window) -> None:
    """Select the seed's four convolution layers by clicks and group them with Ctrl+G."""
    select_by_clicks(qtbot, window, FEATURES)
    answer_name(qtbot, "features")
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_G, CTRL)
    qtbot.wait_until(lambda: "features" in window.document.design.groups)
    back_to(qtbot, window)


def back_to(qtbot, window) -> None:
    """A dialog closed: the window is active again (the offscreen platform needs telling)."""
    window.activateWindow()
    qtbot.wait_until(window.isActiveWindow)
    window.view.setFocus()


def card_rect(item: NodeItem | GroupCardItem) -> QRectF:
    return item.mapRectToScene(item.card_rect())


def visible_edges(scene) -> list[EdgeItem]:
    return [e for e in scene.edge_items() if e.isVisible()]


def settle(qtbot, scene) -> None:
    """Let the canvas finish what it does after an edit (routing edges, fitting frames)."""
    qtbot.wait_until(lambda: not scene._reroute_pending)


def collapse_features(qtbot, window) -> GroupCardItem:
    """Double-click the frame's header: the group collapses into one card."""
    frame = window.scene.group_frame("features")
    show(window, ["input_layer", "dense"])
    # Beside the middle, where the connection into the group crosses the header.
    double_click(qtbot, window.view, QPointF(frame.rect.center().x() + 40, frame.header_rect().center().y()))
    qtbot.wait_until(lambda: window.document.design.groups["features"].collapsed)
    card = window.scene.group_card("features")
    assert card is not None
    return card


# --- grouping -----------------------------------------------------------------------------------

def test_ctrl_g_groups_the_selection_in_a_frame_around_exactly_those_cards(window, qtbot):
    scene, document = window.scene, window.document
    group_features(qtbot, window)
    design = document.design
    assert design.groups["features"] == Group("features", GroupKind.USER)
    assert [n for n in design.nodes if design.nodes[n].group == "features"] == FEATURES
    assert document.undo_stack.count() == 1 and document.undo_stack.text(0) == "Group features"

    settle(qtbot, scene)
    frame = scene.group_frame("features")
    assert frame is not None and frame.isVisible() and frame.isSelected()
    for item in scene.node_items():
        inside = frame.rect.contains(card_rect(item))
        touches = frame.rect.intersects(card_rect(item))
        assert inside == (item.name in FEATURES) and touches == inside, item.name
    assert frame.text.layers == "4 layers" and frame.shown_texts()["name"] == "features"

    # A rubber band over the header and a card picks the card, not the whole group.
    conv = scene.node_item("conv2d")
    drag(qtbot, window.view, QPointF(frame.rect.left() - 30, frame.rect.top() + 16), conv.pos())
    assert scene.selected_node_names() == ["conv2d"] and not frame.isSelected()
    assert scene.selected_group_names() == []
    click(qtbot, window.view, QPointF(frame.rect.center().x() + 40, frame.header_rect().center().y()))
    assert frame.isSelected() and scene.selected_group_names() == ["features"]
    assert scene.selected_layers() == FEATURES

    document.undo_stack.undo()
    assert "features" not in design.groups and scene.group_frames() == []
    document.undo_stack.redo()
    assert scene.group_frame("features") is not None


def test_a_refused_group_name_is_explained_and_asked_again(window, qtbot):
    document = window.document
    document.edit("Group", [SetGroup("taken", Group("taken"))])
    select_by_clicks(qtbot, window, ["flatten", "dense"])
    warnings: list[str] = []

    def close_warning() -> None:
        def act(box: QMessageBox) -> None:
            warnings.append(box.text())
            box.accept()
        when_modal(qtbot, QMessageBox, act)
        answer_name(qtbot, "classifier")   # the dialog comes back: a good name this time

    def first_answer(dialog) -> None:
        field = dialog.findChild(QLineEdit)
        assert field.text() == "group"       # a fresh name is offered
        select_all_and_type(qtbot, field, "taken")
        close_warning()

    when_modal(qtbot, QInputDialog, first_answer)
    menu_action(window, "Edit", "Group Selection").trigger()
    qtbot.wait_until(lambda: "classifier" in document.design.groups)
    assert len(warnings) == 1 and "already exists" in warnings[0]
    assert document.design.nodes["dense"].group == "classifier"


# --- collapsing ---------------------------------------------------------------------------------

def test_double_click_collapses_a_group_into_one_card_that_sums_it_up(window, qtbot):
    scene, document = window.scene, window.document
    group_features(qtbot, window)
    steps = document.undo_stack.count()
    card = collapse_features(qtbot, window)
    assert document.undo_stack.count() == steps + 1
    assert document.undo_stack.text(steps) == "Collapse features"

    # One card: name, 4 layers, shapes entering and leaving, parameters and MACs of the four.
    analysis = document.analysis
    params = sum(analysis.nodes[n].params for n in FEATURES)
    macs = sum(analysis.nodes[n].macs for n in FEATURES)
    shown = card.shown_texts()
    assert shown["name"] == "features" and shown["layers"] == "4 layers"
    assert shown["inputs"] == "in  (None, 28, 28, 1)" and shown["outputs"] == "out (None, 5, 5, 64)"
    assert card.text.params == f"{params / 1000:.2f} K params" and f"{macs / 1e6:.2f} M MACs" == card.text.macs
    assert card.isVisible() and scene.group_frame("features") is None
    for name in FEATURES:
        assert not scene.node_item(name).isVisible()
        assert scene.card_for(name) is card
    assert {i.name for i in scene.card_items()} == {"input_layer", "features", "flatten", "dense"}

    # Connections run to and from the card; the three inside it are not drawn.
    settle(qtbot, scene)
    drawn = visible_edges(scene)
    assert sorted((str(e.source), e.target) for e in drawn) == [
        ("flatten", "dense"), ("input_layer", "conv2d"), ("max_pooling2d_1", "flatten")]
    into = next(e for e in drawn if e.target == "conv2d")
    end = into.mapToScene(into.shape()).boundingRect()
    assert abs(end.bottom() - card_rect(card).top()) < 12           # it ends on the card's top
    assert not scene.node_item("conv2d").isVisible()

    document.undo_stack.undo()
    assert scene.group_card("features") is None and scene.group_frame("features") is not None
    assert all(scene.node_item(n).isVisible() for n in FEATURES)
    assert len(visible_edges(scene)) == 6
    document.undo_stack.redo()
    assert scene.group_card("features") is not None and not scene.node_item("conv2d").isVisible()

    # A double-click on the card expands it again; so does a click on its chevron.
    double_click(qtbot, window.view, grip(scene.group_card("features")))
    qtbot.wait_until(lambda: not document.design.groups["features"].collapsed)
    assert scene.node_item("conv2d").isVisible() and scene.group_card("features") is None
    card = collapse_features(qtbot, window)
    show(window, ["input_layer", "flatten"])
    click(qtbot, window.view, card.mapToScene(card.chevron_rect().center()))
    qtbot.wait_until(lambda: not document.design.groups["features"].collapsed)


def test_connections_between_the_same_two_cards_are_drawn_once(qtbot):
    from gui.canvas import GraphScene
    from gui.document import Document

    design = Design()
    design.add("InputLayer", "x", {"shape": (8,)}, position=(0.0, 0.0))
    design.add("Dense", "a", {"units": 8}, ["x"], position=(-120.0, 140.0))
    design.add("Dense", "b", {"units": 8}, ["x"], position=(120.0, 140.0))
    design.add("Add", "sum", {}, ["a", "b"], position=(0.0, 280.0))
    design.groups["pair"] = Group("pair", collapsed=True, position=(0.0, 140.0))
    design.nodes["a"].group = design.nodes["b"].group = "pair"
    scene = GraphScene(Document(design))
    drawn = [(str(e.source), e.target) for e in visible_edges(scene)]
    assert len(drawn) == 2          # x → pair (twice in the design), pair → sum (twice)
    assert {scene.card_for(s).name for s, _t in drawn} == {"x", "pair"}
    assert {scene.card_for(t).name for _s, t in drawn} == {"pair", "sum"}
    assert not any(e.flags() & e.GraphicsItemFlag.ItemIsSelectable for e in visible_edges(scene))


def test_dragging_a_collapsed_card_moves_its_hidden_layers_in_one_step(window, qtbot):
    scene, document = window.scene, window.document
    group_features(qtbot, window)
    card = collapse_features(qtbot, window)
    design = document.design
    before = {n: design.nodes[n].position for n in FEATURES}
    card_before = (card.x(), card.y())
    steps = document.undo_stack.count()
    show(window, ["input_layer", "dense"])
    drag(qtbot, window.view, grip(card), grip(card) + QPointF(150, 0))

    assert document.undo_stack.count() == steps + 1 and document.undo_stack.text(steps) == "Move features"
    dx = card.x() - card_before[0]
    assert dx == pytest.approx(150, abs=2) and card.y() == card_before[1]
    assert design.groups["features"].position == (card.x(), card.y())
    for name in FEATURES:
        assert design.nodes[name].position == (before[name][0] + dx, before[name][1])
    settle(qtbot, scene)
    into = next(e for e in visible_edges(scene) if e.target == "conv2d")
    assert abs(into.mapToScene(into.shape()).boundingRect().right() - card.x()) < 60  # followed it

    document.undo_stack.undo()
    assert {n: design.nodes[n].position for n in FEATURES} == before
    assert (card.x(), card.y()) == card_before


def test_dragging_a_frame_header_moves_every_layer_in_it(window, qtbot):
    scene, document = window.scene, window.document
    group_features(qtbot, window)
    settle(qtbot, scene)
    design = document.design
    before = {n: design.nodes[n].position for n in design.nodes}
    frame = scene.group_frame("features")
    show(window, ["input_layer", "dense"])
    header = QPointF(frame.rect.center().x() + 40, frame.header_rect().center().y())
    drag(qtbot, window.view, header, header + QPointF(-120, 0))

    assert document.undo_stack.text(document.undo_stack.count() - 1) == "Move features"
    moved = {n for n in design.nodes if design.nodes[n].position != before[n]}
    assert moved == set(FEATURES)
    dx = design.nodes["conv2d"].position[0] - before["conv2d"][0]
    assert dx == pytest.approx(-120, abs=2)
    settle(qtbot, scene)
    assert frame.rect.contains(card_rect(scene.node_item("conv2d")))
    document.undo_stack.undo()
    assert {n: design.nodes[n].position for n in design.nodes} == before


def test_expand_all_and_collapse_all_are_one_step_each(window, qtbot):
    scene, document = window.scene, window.document
    group_features(qtbot, window)
    select_by_clicks(qtbot, window, ["flatten", "dense"])
    answer_name(qtbot, "head")
    qtbot.keyClick(window.view, Qt.Key.Key_G, CTRL)
    qtbot.wait_until(lambda: "head" in document.design.groups)
    back_to(qtbot, window)
    steps = document.undo_stack.count()

    menu_action(window, "View", "Collapse All Groups").trigger()
    assert document.undo_stack.count() == steps + 1
    assert {c.name for c in scene.group_cards()} == {"features", "head"}
    assert [i.name for i in scene.card_items() if isinstance(i, NodeItem)] == ["input_layer"]
    menu_action(window, "View", "Expand All Groups").trigger()
    assert document.undo_stack.count() == steps + 2
    assert scene.group_cards() == [] and len(scene.group_frames()) == 2
    assert all(i.isVisible() for i in scene.node_items())
    document.undo_stack.undo()
    assert {c.name for c in scene.group_cards()} == {"features", "head"}


def test_ungroup_dissolves_the_selected_group_and_keeps_its_layers(window, qtbot):
    scene, document = window.scene, window.document
    group_features(qtbot, window)
    card = collapse_features(qtbot, window)
    show(window, ["input_layer", "dense"])
    click(qtbot, window.view, grip(card))
    assert scene.selected_group_names() == ["features"]
    qtbot.keyClick(window.view, Qt.Key.Key_G, CTRL | Qt.KeyboardModifier.ShiftModifier)
    design = document.design
    assert "features" not in design.groups and all(design.nodes[n].group is None for n in FEATURES)
    assert scene.group_cards() == [] and all(scene.node_item(n).isVisible() for n in FEATURES)
    document.undo_stack.undo()
    assert design.groups["features"].collapsed and scene.group_card("features") is not None


def test_delete_on_a_group_card_removes_its_layers_in_one_step(window, qtbot):
    scene, document = window.scene, window.document
    group_features(qtbot, window)
    card = collapse_features(qtbot, window)
    show(window, ["input_layer", "dense"])
    click(qtbot, window.view, grip(card))
    steps = document.undo_stack.count()
    qtbot.keyClick(window.view, Qt.Key.Key_Delete)
    design = document.design
    assert document.undo_stack.count() == steps + 1
    assert not set(FEATURES) & set(design.nodes)
    assert scene.group_card("features") is None
    document.undo_stack.undo()
    assert all(n in design.nodes for n in FEATURES)
    assert scene.group_card("features") is not None and not scene.node_item("conv2d").isVisible()


def test_reveal_expands_the_groups_around_a_layer(window, qtbot):
    scene, document = window.scene, window.document
    group_features(qtbot, window)
    card = collapse_features(qtbot, window)
    scene.select_nodes(["conv2d_1", "dense"])        # a hidden layer: its group's card is selected
    assert card.isSelected() and scene.selected_node_names() == ["dense"]
    assert scene.selected_layers() == [*FEATURES, "dense"]
    steps = document.undo_stack.count()
    item = scene.reveal("conv2d_1")
    assert item is scene.node_item("conv2d_1") and item.isVisible()
    assert document.undo_stack.count() == steps + 1
    assert scene.reveal("conv2d_1") is item and document.undo_stack.count() == steps + 1  # shown: no step


def test_hovering_a_group_card_lists_its_summary(window, qtbot):
    group_features(qtbot, window)
    card = collapse_features(qtbot, window)
    view = window.view
    show(window, ["input_layer", "dense"])
    point = view.mapFromScene(grip(card))
    QApplication.sendEvent(view.viewport(), QHelpEvent(QEvent.Type.ToolTip, point, view.viewport().mapToGlobal(point)))
    text = QToolTip.text()
    assert "<b>features</b> — group of 4 layers" in text
    assert "Input: (None, 28, 28, 1)" in text and "Output: (None, 5, 5, 64)" in text
    assert "18,816 parameters" in text and "Double-click" in text


def test_a_member_error_shows_on_the_group_card(window, qtbot):
    group_features(qtbot, window)
    card = collapse_features(qtbot, window)
    assert card.text.errors == 0
    window.document.edit("Kernel", [SetArg("conv2d_1", "kernel_size", 40)])
    assert card.text.errors == 1 and card.shown_texts()["macs"] == "1 error"
    assert card.pen_colour() == QColor(ERROR_COLOR)
    window.document.undo_stack.undo()
    assert card.text.errors == 0 and card.pen_colour() != QColor(ERROR_COLOR)
    # An edit outside the group that changes what enters it shows on the card too.
    window.document.edit("Shape", [SetArg("input_layer", "shape", (32, 32, 1))])
    assert card.text.inputs == "in  (None, 32, 32, 1)" and card.text.outputs == "out (None, 6, 6, 64)"


def test_groups_survive_save_and_reopen(window, qtbot, tmp_path: Path, monkeypatch):
    group_features(qtbot, window)
    collapse_features(qtbot, window)
    path = tmp_path / "grouped.convas"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), PROJECT_FILTER))
    menu_action(window, "File", "Save As").trigger()
    assert f'"version": {project_file.VERSION}' in path.read_text()
    window.document.reset(Design())
    assert window.scene.group_cards() == []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), PROJECT_FILTER))
    menu_action(window, "File", "Open").trigger()
    design = window.document.design
    assert design.groups["features"].collapsed and design.nodes["conv2d"].group == "features"
    card = window.scene.group_card("features")
    assert card is not None and card.text.layers == "4 layers"
    assert not window.scene.node_item("conv2d").isVisible()


def test_auto_layout_is_one_step_that_respects_collapsed_groups(window, qtbot):
    document = window.document
    group_features(qtbot, window)
    collapse_features(qtbot, window)
    card = window.scene.group_card("features")
    window.document.edit("Scatter", [SetNodeGroup("dense", None)])   # any step: auto layout follows
    from engine.editing import Move
    document.edit("Move", [Move("dense", (900.0, -400.0))])
    steps = document.undo_stack.count()
    menu_action(window, "View", "Auto Layout").trigger()
    assert document.undo_stack.count() == steps + 1
    flatten, dense = window.scene.node_item("flatten"), window.scene.node_item("dense")
    assert card.y() < flatten.y() < dense.y()                       # top to bottom, the card a card
    assert not card_rect(card).intersects(card_rect(flatten))


# --- zoomed out ---------------------------------------------------------------------------------

def test_zoomed_out_cards_are_named_blocks_then_plain_blocks(window, qtbot):
    scene = window.scene
    assert [detail_for(z) for z in (1.0, 0.5, 0.3, 0.12, 0.1)] == [
        Detail.FULL, Detail.FULL, Detail.NAME, Detail.NAME, Detail.BLOCK]
    conv = scene.node_item("conv2d")
    assert conv.lod_texts(1.0) == ()                 # the full card paints its own texts
    assert conv.lod_texts(0.3) == ("conv2d",)        # readable on screen
    assert conv.lod_texts(0.1) == ()
    group_features(qtbot, window)
    card = collapse_features(qtbot, window)
    assert card.lod_texts(0.45) == ("features", "4 layers")
    one = card.lod_texts(0.2)                        # room for one line only, elided to the card
    assert len(one) == 1 and one[0][0] == "f" and "…" in one[0]
    assert card.style.lod_metrics.horizontalAdvance(one[0]) <= card.card_rect().width() * 0.2

    # Paint the scene at zoom 0.1 and 0.3 as the view does: blocks in the cards' colours.
    source = QRectF(card_rect(scene.node_item("flatten")))
    for zoom in (0.1, 0.3):
        image = QImage(int(source.width() * zoom), int(source.height() * zoom), QImage.Format.Format_ARGB32)
        image.fill(QColor("white"))
        painter = QPainter(image)
        scene.render(painter, QRectF(image.rect()), source)
        painter.end()
        corner = image.pixelColor(1, 1)
        assert corner.name() == scene.node_item("flatten").group_color.name(), zoom
    edge = visible_edges(scene)[0]
    assert edge.isVisible()


# --- unsupported layers -------------------------------------------------------------------------

def test_an_unsupported_layer_is_a_hatched_card_whose_tooltip_tells_its_story(window, qtbot):
    design = Design()
    design.add("InputLayer", "x", {"shape": (8,)})
    design.add("CustomScale", "scale_1", {"scale": 0.17, "note": "<b>not bold</b>" + "x" * 3000}, ["x"],
               config={"unsupported": {"module": "my_package.layers", "class_name": "CustomScale",
                                       "reason": "its code would have to run"}})
    window.document.reset(design)
    item = window.scene.node_item("scale_1")
    assert item.unsupported and item._shown["name"] == "CustomScale" and item._shown["params"] == "unsupported"
    assert item.text.state == "error"
    tip = window.scene.node_tooltip("scale_1")
    assert "Class: CustomScale" in tip and "Module: my_package.layers" in tip
    assert "Reason: its code would have to run" in tip
    assert "&quot;scale&quot;: 0.17" in tip and "&lt;b&gt;not bold&lt;/b&gt;" in tip and "<b>not bold" not in tip
    assert len(tip) < 2500 and "…" in tip                      # the long config is cut
    problem = window.document.analysis.nodes["scale_1"].errors[0].message
    assert html.escape(problem) in tip
