"""Finding one's way round a large design: Fit shows it all, the overview pans the canvas, Find
steps through layers and groups, and the Summary centres the canvas on the layer picked."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt

from engine.design import Design
from engine.editing import Move
from engine.layout import layered_positions
from gui.canvas.find_bar import Match, find_matches
from gui.canvas.view import READABLE_BELOW

from driving import menu_action

LAYERS = 120  # 120 rows of cards: some 17,000 scene pixels, far beyond the old 0.1 zoom floor


def tall_design(layers: int = LAYERS) -> Design:
    """One long column: an input, then Dense layers with a Dropout every tenth layer."""
    design = Design(name="tall")
    design.add("InputLayer", "in", {"shape": (16,)})
    previous = "in"
    for i in range(1, layers):
        if i % 10 == 0:
            previous = design.add("Dropout", f"drop_{i // 10}", {"rate": 0.1}, [previous]).name
        else:
            previous = design.add("Dense", f"d{i}", {"units": 8}, [previous]).name
    for name, position in layered_positions(design).items():
        design.nodes[name].position = position
    return design


def open_tall(window, qtbot) -> Design:
    """Open the tall design and wait until the canvas has taken it in (overview included), then
    look at its first layers at zoom 1, so that the canvas shows only part of it (the overview
    is shown only then)."""
    design = tall_design()
    with qtbot.waitSignal(window.view.sigContentChanged, timeout=2000):
        window.document.reset(design)
    window.view.set_zoom(1.0)
    window.view.centerOn(window.scene.node_item("in"))
    return design


def viewport_centre(view) -> QPointF:
    return view.mapToScene(view.viewport().rect().center())


def assert_centred_on(view, item) -> None:
    """``item``'s card is in the middle of the canvas (a few pixels of rounding allowed)."""
    gap = view.mapFromScene(item.sceneBoundingRect().center()) - view.viewport().rect().center()
    assert gap.manhattanLength() <= 4, (gap, item.name)


def test_fit_shows_every_card_of_a_tall_design(window, qtbot):
    design = open_tall(window, qtbot)
    view = window.view
    view.reset_zoom()
    menu_action(window, "View", "Fit to Window").trigger()
    assert view.zoom() < 0.1  # the old floor would have cut the column short
    port = view.viewport().rect()
    for name in design.nodes:
        card = view.mapFromScene(window.scene.node_item(name).sceneBoundingRect()).boundingRect()
        assert port.contains(card), (name, card, port)
    fit = view.zoom()
    for _ in range(10):  # the wheel may go a notch beyond Fit, no further
        view.zoom_out()
    assert fit / 1.3 < view.zoom() < fit


def test_the_overview_is_toggled_from_the_view_menu_and_remembered(window, new_window, qtbot):
    open_tall(window, qtbot)
    minimap = window.view.minimap
    assert minimap.is_shown()
    action = menu_action(window, "View", "Show Overview")
    assert action.isChecked()
    corner = minimap.rect()
    shown = window.view.viewport().grab().toImage().copy(corner)

    action.trigger()
    assert not minimap.is_shown()
    assert window.view.viewport().grab().toImage().copy(corner) != shown  # gone from the canvas
    window.settings.sync()
    again = new_window()  # the same settings file: a restart
    assert not again.act_overview.isChecked()

    action.trigger()
    assert minimap.is_shown()


def test_the_overview_hides_while_the_whole_graph_is_in_view(window, qtbot):
    open_tall(window, qtbot)
    minimap = window.view.minimap
    assert minimap.is_shown()
    corner = minimap.rect()
    with_map = window.view.viewport().grab().toImage().copy(corner)
    menu_action(window, "View", "Fit to Window").trigger()
    assert not minimap.is_shown()  # everything is in view: a map would only cover part of it
    assert window.view.viewport().grab().toImage().copy(corner) != with_map
    window.view.set_zoom(1.0)
    assert minimap.is_shown()


def test_clicking_and_dragging_in_the_overview_moves_the_canvas(window, qtbot):
    design = open_tall(window, qtbot)
    view, minimap = window.view, window.view.minimap
    assert minimap.is_shown()
    view.show_layer("in")
    top = viewport_centre(view)
    scene = window.scene
    last = scene.node_item(list(design.nodes)[-1])
    target = minimap.to_overview(last.sceneBoundingRect().center()).toPoint()
    one_pixel = minimap.to_scene(QPointF(1, 0)).x() - minimap.to_scene(QPointF(0, 0)).x()  # in scene units

    port = view.viewport()  # the overview is painted over the canvas, in its corner
    assert minimap.rect().contains(target)
    qtbot.mouseClick(port, Qt.MouseButton.LeftButton, pos=target)
    centre = viewport_centre(view)
    assert (centre - last.sceneBoundingRect().center()).manhattanLength() <= 3 * one_pixel
    assert centre.y() > top.y() + 10_000

    middle = scene.node_item("d65").sceneBoundingRect().center()
    qtbot.mousePress(port, Qt.MouseButton.LeftButton, pos=target)
    qtbot.mouseMove(port, minimap.to_overview(middle).toPoint())
    qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, pos=minimap.to_overview(middle).toPoint())
    assert (viewport_centre(view) - middle).manhattanLength() <= 3 * one_pixel
    # The viewport's rectangle in the overview follows the canvas.
    assert minimap.viewport_rect().contains(minimap.to_overview(middle))


def test_the_overview_follows_the_design(window, qtbot):
    open_tall(window, qtbot)
    minimap = window.view.minimap
    assert minimap.is_shown()
    far = QPointF(6000, 0)
    assert not minimap.rect().contains(minimap.to_overview(far).toPoint())
    window.document.edit("Move", [Move("d5", (far.x(), far.y()))])
    qtbot.waitUntil(lambda: minimap.rect().contains(minimap.to_overview(far).toPoint()), timeout=2000)


def test_find_steps_through_matches_selecting_and_centring_each(window, qtbot):
    open_tall(window, qtbot)
    view, scene = window.view, window.scene
    menu_action(window, "View", "Fit to Window").trigger()
    assert view.zoom() < READABLE_BELOW
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    bar = view.find_bar
    assert bar.isVisible() and bar.field.hasFocus()

    qtbot.keyClicks(bar.field, "DROP")  # names (drop_1…) and the type (Dropout), any case
    assert bar.count.text() == "11 matches"
    qtbot.keyClick(bar.field, Qt.Key.Key_Return)
    assert bar.count.text() == "1 of 11"
    assert scene.selected_node_names() == ["drop_1"]
    assert view.zoom() >= READABLE_BELOW  # readable now
    assert_centred_on(view, scene.node_item("drop_1"))

    qtbot.keyClick(bar.field, Qt.Key.Key_Return)
    assert scene.selected_node_names() == ["drop_2"]
    assert bar.count.text() == "2 of 11"
    assert_centred_on(view, scene.node_item("drop_2"))

    qtbot.keyClick(bar.field, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(bar.field, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)  # wraps round
    assert scene.selected_node_names() == ["drop_11"]
    assert bar.count.text() == "11 of 11"
    assert_centred_on(view, scene.node_item("drop_11"))

    qtbot.keyClick(bar.field, Qt.Key.Key_F3)  # F3 is Find Next, from the field or the canvas
    assert scene.selected_node_names() == ["drop_1"]
    assert window.inspector.node_name == "drop_1"

    qtbot.keyClick(bar.field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(bar.field, "no such layer")
    assert bar.count.text() == "no match"
    qtbot.keyClick(bar.field, Qt.Key.Key_Escape)
    assert not bar.isVisible()
    assert view.hasFocus()


def test_find_matches_names_types_and_groups_in_design_order():
    from engine.editing import apply_all
    from engine.grouping import plan_group

    design = tall_design(30)
    apply_all(design, plan_group(design, ["d11", "d12", "d13"], "d1_block"))
    assert find_matches(design, "  ") == []
    assert find_matches(design, "dropout") == [Match("layer", "drop_1"), Match("layer", "drop_2")]
    assert find_matches(design, "_BLOCK") == [Match("group", "d1_block")]
    # A group comes just before its first layer.
    names = [m.name for m in find_matches(design, "d1")]
    assert names[:4] == ["d1", "d1_block", "d11", "d12"]


def test_find_reveals_a_layer_inside_a_collapsed_group(window, qtbot):
    from engine.grouping import plan_group

    if not hasattr(window.scene, "reveal"):
        pytest.skip("GraphScene.reveal (expanding the groups around a layer) is not there yet")
    design = open_tall(window, qtbot)
    members = ["d21", "d22", "d23", "d24"]
    window.document.edit("Group", plan_group(design, members, "inner_block", collapsed=True))
    assert window.document.design.collapsed_group("d23") == "inner_block"
    view, scene = window.view, window.scene
    qtbot.keyClick(view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    bar = view.find_bar
    qtbot.keyClicks(bar.field, "d23")
    qtbot.keyClick(bar.field, Qt.Key.Key_Return)
    assert window.document.design.collapsed_group("d23") is None  # expanded to show it
    card = scene.node_item("d23")
    assert card is not None and card.isVisible()
    assert scene.selected_node_names() == ["d23"]
    assert_centred_on(view, card)


def test_find_goes_to_a_collapsed_group_by_its_name(window, qtbot):
    from engine.grouping import plan_group

    design = open_tall(window, qtbot)
    window.document.edit("Group", plan_group(design, ["d31", "d32", "d33"], "middle_block", collapsed=True))
    view, scene = window.view, window.scene
    menu_action(window, "View", "Fit to Window").trigger()
    menu_action(window, "Edit", "Find").trigger()
    bar = view.find_bar
    qtbot.keyClicks(bar.field, "Middle")
    qtbot.keyClick(bar.field, Qt.Key.Key_Return)
    assert bar.count.text() == "1 of 1"
    card = scene.group_card("middle_block")
    assert card is not None and card.isSelected()
    assert window.document.design.groups["middle_block"].collapsed  # found, not expanded
    assert view.zoom() >= READABLE_BELOW
    gap = view.mapFromScene(card.sceneBoundingRect().center()) - view.viewport().rect().center()
    assert gap.manhattanLength() <= 4


def test_picking_a_summary_row_centres_the_canvas_on_that_layer(window, qtbot):
    open_tall(window, qtbot)
    view, summary = window.view, window.summary
    menu_action(window, "View", "Fit to Window").trigger()
    table = summary.table
    index = summary.model.index(summary.model.row_of("d95"), 0)
    table.scrollTo(index)
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualRect(index).center())
    card = window.scene.node_item("d95")
    assert window.scene.selected_node_names() == ["d95"]
    assert view.zoom() >= READABLE_BELOW
    assert_centred_on(view, card)
    assert view.viewport().rect().contains(view.mapFromScene(card.sceneBoundingRect()).boundingRect())


def test_opening_another_design_while_zoomed_out_with_a_selection(window, qtbot):
    """Zoomed out, one item draws every card; opening another design then must not reach it
    after it is gone (the GUI suite fails on any exception raised in a slot)."""
    design = open_tall(window, qtbot)
    menu_action(window, "View", "Fit to Window").trigger()
    window.view.viewport().grab()  # paints: the zoomed-out drawing takes over
    window.scene.select_nodes([list(design.nodes)[3]])
    window.view.viewport().grab()
    window.document.reset(tall_design())
    window.view.viewport().grab()
    assert window.scene.selected_node_names() == []
