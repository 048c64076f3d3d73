"""The canvas mirrors the document and turns real gestures into single undoable edits.

Every test drives the canvas the way a person does (drag-and-drop events, mouse presses on the
viewport), then checks both the design and what is on screen, then undoes and redoes.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import pytest
from PySide6.QtCore import QByteArray, QEvent, QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from engine.design import TensorRef, chain
from engine.editing import SetArg
from gui.canvas import LAYER_MIME, EdgeItem, GraphScene, GraphView
from gui.document import Document


def small_chain():
    return chain(("InputLayer", {"shape": (28, 28, 1)}),
                 ("Conv2D", {"filters": 8, "kernel_size": 3}),
                 ("MaxPooling2D", {"pool_size": 2}),
                 ("Flatten", {}),
                 ("Dense", {"units": 10}))


@pytest.fixture
def canvas(qtbot):
    document = Document(small_chain())
    scene = GraphScene(document)
    view = GraphView(scene)
    qtbot.addWidget(view)
    view.resize(900, 900)
    view.show()
    qtbot.waitExposed(view)
    view.reset_zoom()
    view.centerOn(0, 280)
    return document, scene, view


def shape_text(scene: GraphScene, name: str) -> str:
    item = scene.node_item(name)
    assert item is not None and item.text is not None
    return item.text.shapes[0]


def edges(scene: GraphScene) -> list[tuple[str, str]]:
    return sorted((str(e.source), e.target) for e in scene.items() if isinstance(e, EdgeItem))


class LayerDrag(NamedTuple):
    enter: QDragEnterEvent
    move: QDragMoveEvent
    drop: QDropEvent
    mime: QMimeData   # the events point at it: keep it alive as long as they are


def drag_layer(view: GraphView, kind: str, scene_pos: QPointF) -> LayerDrag:
    """What a drag from the palette delivers to the viewport: enter and move (sent), drop (to send)."""
    mime = QMimeData()
    mime.setData(LAYER_MIME, QByteArray(kind.encode("utf-8")))
    point = view.mapFromScene(scene_pos)
    enter = QDragEnterEvent(point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), enter)
    move = QDragMoveEvent(point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                          Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), move)
    drop = QDropEvent(point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    return LayerDrag(enter, move, drop, mime)


def drag_mouse(qtbot, view: GraphView, start: QPointF, end: QPointF, steps: int = 6) -> None:
    viewport = view.viewport()
    a, b = view.mapFromScene(start), view.mapFromScene(end)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=a)
    for i in range(1, steps + 1):
        qtbot.mouseMove(viewport, QPoint(a.x() + (b.x() - a.x()) * i // steps,
                                         a.y() + (b.y() - a.y()) * i // steps))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=b)


def test_scene_mirrors_design_and_lays_it_out(canvas):
    document, scene, _view = canvas
    assert [i.name for i in scene.node_items()] == list(document.design.nodes)
    assert edges(scene) == [("conv2d", "max_pooling2d"), ("flatten", "dense"),
                            ("input_layer", "conv2d"), ("max_pooling2d", "flatten")]
    # A design without positions is shown laid out, top to bottom, without an undo step.
    ys = [n.position[1] for n in document.design]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)
    assert document.undo_stack.count() == 0 and not document.modified
    item = scene.node_item("conv2d")
    assert (item.x(), item.y()) == document.design.nodes["conv2d"].position
    assert item.text.params == "80 params"
    assert item.text.args == "8 × 3×3"
    assert shape_text(scene, "conv2d") == "(None, 26, 26, 8)"
    assert scene.node_item("input_layer").ports == []          # nothing feeds an input layer
    assert scene.node_item("conv2d").ports == [(0, 0)]


def test_drop_on_edge_inserts_layer_into_it(canvas):
    document, scene, view = canvas
    design = document.design
    conv, pool = scene.node_item("conv2d"), scene.node_item("max_pooling2d")
    middle = (conv.output_port_pos() + pool.input_port_pos(0, 0)) / 2
    drag = drag_layer(view, "BatchNormalization", middle)
    assert drag.enter.isAccepted() and drag.move.isAccepted()
    edge = next(e for e in scene.edge_items() if e.target == "max_pooling2d")
    assert edge.highlighted                                     # the user sees where it goes
    QApplication.sendEvent(view.viewport(), drag.drop)

    assert design.nodes["batch_normalization"].inputs == [TensorRef("conv2d")]
    assert design.nodes["max_pooling2d"].inputs == [TensorRef("batch_normalization")]
    assert document.undo_stack.count() == 1
    assert ("batch_normalization", "max_pooling2d") in edges(scene) and len(edges(scene)) == 5
    assert shape_text(scene, "batch_normalization") == "(None, 26, 26, 8)"
    assert scene.selected_node_names() == ["batch_normalization"]
    assert not edge.highlighted if edge.scene() else True
    # Room was made: the new card does not overlap its neighbours.
    new = scene.node_item("batch_normalization")
    for other in ("conv2d", "max_pooling2d"):
        assert not new.sceneBoundingRect().intersects(scene.node_item(other).mapRectToScene(
            scene.node_item(other).card_rect())), other

    document.undo_stack.undo()
    assert "batch_normalization" not in design.nodes and scene.node_item("batch_normalization") is None
    assert design.nodes["max_pooling2d"].inputs == [TensorRef("conv2d")]
    assert len(edges(scene)) == 4 and ("conv2d", "max_pooling2d") in edges(scene)
    assert scene.node_item("max_pooling2d").y() == pool.y()

    document.undo_stack.redo()
    assert design.nodes["max_pooling2d"].inputs == [TensorRef("batch_normalization")]
    assert shape_text(scene, "batch_normalization") == "(None, 26, 26, 8)"
    assert len(edges(scene)) == 5


def test_drop_on_empty_canvas_adds_a_lone_layer(canvas):
    document, scene, view = canvas
    where = QPointF(400, 100)
    drag = drag_layer(view, "Dense", where)
    QApplication.sendEvent(view.viewport(), drag.drop)
    node = document.design.nodes["dense_1"]
    assert node.inputs == [] and node.position == (400.0, 100.0)
    item = scene.node_item("dense_1")
    assert (item.x(), item.y()) == (400.0, 100.0)
    assert item.text.state == "error" and "no input" in shape_text(scene, "dense_1")
    assert len(edges(scene)) == 4

    document.undo_stack.undo()
    assert "dense_1" not in document.design.nodes and scene.node_item("dense_1") is None
    document.undo_stack.redo()
    assert scene.node_item("dense_1").pos() == QPointF(400, 100)


def test_drop_on_card_appends_after_it(canvas):
    document, scene, view = canvas
    flatten = scene.node_item("flatten")
    drag = drag_layer(view, "Dropout", flatten.pos())
    assert flatten.highlighted
    QApplication.sendEvent(view.viewport(), drag.drop)
    design = document.design
    assert design.nodes["dropout"].inputs == [TensorRef("flatten")]
    assert design.nodes["dense"].inputs == [TensorRef("dropout")]
    assert not flatten.highlighted
    assert document.undo_stack.count() == 1
    document.undo_stack.undo()
    assert design.nodes["dense"].inputs == [TensorRef("flatten")]


def test_unknown_payload_is_refused(canvas):
    document, scene, view = canvas
    messages = []
    scene.sigMessage.connect(messages.append)
    mime = QMimeData()
    mime.setText("Conv2D")   # not our MIME type: ignored
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), enter)
    assert not enter.isAccepted()
    drag = drag_layer(view, "NoSuchLayer", QPointF(500, 500))
    QApplication.sendEvent(view.viewport(), drag.drop)
    assert document.undo_stack.count() == 0 and messages


def test_drag_from_output_port_connects_replacing_single_input(canvas, qtbot):
    document, scene, view = canvas
    design = document.design
    before = shape_text(scene, "flatten")
    assert before == "(None, 1352)"
    conv, flatten = scene.node_item("conv2d"), scene.node_item("flatten")
    drag_mouse(qtbot, view, conv.output_port_pos(), flatten.pos())

    assert design.nodes["flatten"].inputs == [TensorRef("conv2d")]
    assert document.undo_stack.count() == 1
    assert shape_text(scene, "flatten") == "(None, 5408)"
    assert ("conv2d", "flatten") in edges(scene) and ("max_pooling2d", "flatten") not in edges(scene)
    assert conv.pos() == QPointF(*design.nodes["conv2d"].position)   # connecting never moves
    assert not [i for i in scene.items() if type(i).__name__ == "QGraphicsPathItem"]

    document.undo_stack.undo()
    assert design.nodes["flatten"].inputs == [TensorRef("max_pooling2d")]
    assert shape_text(scene, "flatten") == before
    assert ("max_pooling2d", "flatten") in edges(scene)
    document.undo_stack.redo()
    assert shape_text(scene, "flatten") == "(None, 5408)"


def test_merge_connection_adds_an_input_port(canvas, qtbot):
    document, scene, view = canvas
    drag = drag_layer(view, "Concatenate", QPointF(350, 420))
    QApplication.sendEvent(view.viewport(), drag.drop)
    merge = scene.node_item("concatenate")
    assert merge.ports == [None]
    drag_mouse(qtbot, view, scene.node_item("flatten").output_port_pos(), merge.pos())
    drag_mouse(qtbot, view, scene.node_item("dense").output_port_pos(), merge.pos() + QPointF(60, -40))
    assert document.design.nodes["concatenate"].inputs == [TensorRef("flatten"), TensorRef("dense")]
    assert merge.ports == [(0, 0), (0, 1), None]
    assert shape_text(scene, "concatenate") == "(None, 1362)"


def test_refused_connections_say_why(canvas, qtbot):
    document, scene, view = canvas
    messages = []
    scene.sigMessage.connect(messages.append)
    dense, inp, conv = (scene.node_item(n) for n in ("dense", "input_layer", "conv2d"))
    drag_mouse(qtbot, view, dense.output_port_pos(), inp.pos())
    assert "input layer" in messages[-1]
    drag_mouse(qtbot, view, inp.output_port_pos(), conv.pos())
    assert "already feeds" in messages[-1]
    drag_mouse(qtbot, view, dense.output_port_pos(), conv.pos())
    assert "loop" in messages[-1]
    drag_mouse(qtbot, view, conv.output_port_pos(), conv.pos() + QPointF(0, -20))
    assert "itself" in messages[-1]
    assert document.undo_stack.count() == 0


def test_dragging_cards_is_one_move_command(canvas, qtbot):
    document, scene, view = canvas
    design = document.design
    conv, pool = scene.node_item("conv2d"), scene.node_item("max_pooling2d")
    scene.select_nodes(["conv2d", "max_pooling2d"])
    old_conv, old_pool = design.nodes["conv2d"].position, design.nodes["max_pooling2d"].position
    grip = conv.pos() + QPointF(0, -30)                    # on the card, away from the ports
    drag_mouse(qtbot, view, grip, grip + QPointF(150, 40))

    assert document.undo_stack.count() == 1
    assert document.undo_stack.text(0) == "Move 2 layers"
    assert design.nodes["conv2d"].position == (old_conv[0] + 150, old_conv[1] + 40)
    assert design.nodes["max_pooling2d"].position == (old_pool[0] + 150, old_pool[1] + 40)
    edge = next(e for e in scene.edge_items() if e.target == "conv2d")
    end = edge.mapToScene(edge.shape().boundingRect()).boundingRect()
    assert end.right() >= conv.input_port_pos(0, 0).x()    # the edge followed the card

    document.undo_stack.undo()
    assert design.nodes["conv2d"].position == old_conv
    assert conv.pos() == QPointF(*old_conv) and pool.pos() == QPointF(*old_pool)
    document.undo_stack.redo()
    assert conv.pos() == QPointF(old_conv[0] + 150, old_conv[1] + 40)


def test_selection_signal_and_edges(canvas, qtbot):
    _document, scene, _view = canvas
    with qtbot.waitSignal(scene.sigSelectionChanged) as blocker:
        scene.select_nodes(["dense", "conv2d"])
    assert blocker.args == [["conv2d", "dense"]]
    edge = next(e for e in scene.edge_items() if e.target == "flatten")
    edge.setSelected(True)
    assert scene.selected_edges() == [(TensorRef("max_pooling2d"), "flatten", 0)]
    assert scene.edge_tooltip(edge) == "max_pooling2d → flatten: (None, 13, 13, 8)"


def test_hovering_shows_tooltips(canvas):
    _document, scene, view = canvas
    conv = scene.node_item("conv2d")
    pool = scene.node_item("max_pooling2d")
    for where, expected in ((conv.pos(), "conv2d</b> — Conv2D"),
                            ((conv.output_port_pos() + pool.input_port_pos(0, 0)) / 2,
                             "conv2d → max_pooling2d: (None, 26, 26, 8)")):
        point = view.mapFromScene(where)
        QApplication.sendEvent(view.viewport(), QHelpEvent(QEvent.Type.ToolTip, point,
                                                           view.viewport().mapToGlobal(point)))
        assert expected in QToolTip.text()


def test_invalid_and_blocked_cards(canvas):
    document, scene, _view = canvas
    document.edit("Set kernel", [SetArg("conv2d", "kernel_size", 40)])
    conv, pool = scene.node_item("conv2d"), scene.node_item("max_pooling2d")
    assert conv.text.state == "error" and "Error" in scene.node_tooltip("conv2d")
    assert pool.text.state == "blocked" and pool.opacity() < 1
    document.undo_stack.undo()
    assert conv.text.state == "ok" and pool.opacity() == 1


def test_rename_and_reset_keep_the_mirror(canvas):
    from engine.editing import Rename
    document, scene, _view = canvas
    document.edit("Rename", [Rename("flatten", "to_vector")])
    assert scene.node_item("flatten") is None and scene.node_item("to_vector").text.name == "to_vector"
    assert ("to_vector", "dense") in edges(scene) and ("max_pooling2d", "to_vector") in edges(scene)
    document.undo_stack.undo()
    assert ("flatten", "dense") in edges(scene) and len(edges(scene)) == 4
    document.reset(chain(("InputLayer", {"shape": (4,)}), ("Dense", {"units": 2})))
    assert [i.name for i in scene.node_items()] == ["input_layer", "dense"]
    assert edges(scene) == [("input_layer", "dense")]


def test_long_names_are_elided_not_clipped(canvas):
    from engine.editing import Rename
    document, scene, _view = canvas
    long = "a_remarkably_long_layer_name_that_cannot_fit_on_a_card"
    document.edit("Rename", [Rename("flatten", long)])
    item = scene.node_item(long)
    shown = item._shown["name"]
    assert "…" in shown and long in scene.node_tooltip(long)
    assert item.style.name_metrics.horizontalAdvance(shown) <= item.card_rect().width() - 20


def test_zoom_is_clamped_and_fit_shows_everything(canvas):
    _document, scene, view = canvas
    for _ in range(30):
        view.zoom_in()
    assert view.zoom() == pytest.approx(4.0)
    for _ in range(40):
        view.zoom_out()
    assert view.zoom() == pytest.approx(0.1)
    view.fit_to_view()
    assert view.zoom() <= 1.5
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    for item in scene.node_items():
        assert visible.contains(item.sceneBoundingRect())


def test_300_layer_chain_builds_and_refreshes_quickly(qtbot):
    design = chain(("InputLayer", {"shape": (16,)}),
                   *[("Activation", {"activation": "relu"})] * 299)
    document = Document(design)
    started: list[float] = []
    document.analysed.connect(lambda: started.append(time.perf_counter()))
    t0 = time.perf_counter()
    scene = GraphScene(document)
    build = time.perf_counter() - t0
    finished: list[float] = []
    document.analysed.connect(lambda: finished.append(time.perf_counter()))
    view = GraphView(scene)
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    view.fit_to_view()
    assert len(scene.node_items()) == 300 and len(scene.edge_items()) == 299
    assert build < 2.0

    # Every card's shape changes: the scene's share of the update is its refresh. (The best of
    # three, so a busy machine does not fail the test; a typical refresh takes under 10 ms.)
    refreshes = []
    for width in (32, 33, 34):
        document.edit("Set shape", [SetArg("input_layer", "shape", (width,))])
        refreshes.append(finished[-1] - started[-1])
        assert shape_text(scene, "activation_298") == f"(None, {width})"
    assert min(refreshes) < 0.05, f"refreshing 300 cards took {min(refreshes) * 1000:.1f} ms"
    # Nothing changed since: nothing repaints.
    assert scene.refresh_cards() == 0
    document.undo_stack.undo()
    assert shape_text(scene, "activation_298") == "(None, 33)"


def _edges_through_cards(scene: GraphScene) -> list[tuple[str, str, str]]:
    """(source, target, card) for every edge whose drawn path runs through another card."""
    from PySide6.QtGui import QPainterPath, QPainterPathStroker

    stroker = QPainterPathStroker()
    stroker.setWidth(1.0)
    found = []
    for edge in scene.edge_items():
        line = edge.mapToScene(stroker.createStroke(edge._path))  # the curve as drawn, not its fill
        for card in scene.node_items():
            if card.name in (edge.source.node, edge.target):
                continue
            box = QPainterPath()
            box.addRect(card.mapRectToScene(card.card_rect()))
            if line.intersects(box):
                found.append((edge.source.node, edge.target, card.name))
    return found


def test_edges_run_around_cards_not_behind_them(qtbot):
    from engine.design import Design
    from engine.editing import Move

    design = Design()
    design.add("InputLayer", "x", {"shape": (8, 8, 4)}, position=(0.0, 0.0))
    previous = "x"
    for i in range(3):
        design.add("ReLU", f"r{i}", {}, [previous], position=(0.0, 140.0 * (i + 1)))
        previous = f"r{i}"
    design.add("Add", "add", {}, [previous, "x"], position=(0.0, 560.0))   # a skip behind r0…r2
    document = Document(design)
    scene = GraphScene(document)
    assert _edges_through_cards(scene) == []
    # A card moved into an edge's way by an edit: the edge goes around it once the edit is shown.
    document.edit("Move", [Move("r1", (60.0, 280.0))])
    qtbot.wait_until(lambda: not scene._reroute_pending)
    assert _edges_through_cards(scene) == []


def test_opening_a_design_routes_each_edge_once(qtbot, monkeypatch):
    routed: list[EdgeItem] = []
    original = EdgeItem.set_ends

    def counting(self, *args, **kwargs):
        routed.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(EdgeItem, "set_ends", counting)
    document = Document()
    scene = GraphScene(document)
    document.reset(small_chain())
    assert len(routed) == len(scene.edge_items()) == 4 and len(set(routed)) == 4
    qtbot.wait(10)   # the re-route queued while mirroring finds nothing left to do
    assert len(routed) == 4 and not scene._reroute_pending
    assert all(not e.boundingRect().isEmpty() for e in scene.edge_items())


def _pixel(view: GraphView, scene_point: QPointF):
    view.viewport().repaint()
    image = view.viewport().grab().toImage()
    return image.pixelColor(view.mapFromScene(scene_point))


def test_zoomed_out_one_layer_draws_every_card_and_one_every_edge(canvas):
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtWidgets import QGraphicsItem

    _document, scene, view = canvas
    no_contents = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
    conv = scene.node_item("conv2d")
    assert conv is not None
    centre = conv.scenePos()
    header = centre + QPointF(conv.card_rect().width() / 2 - 12, -conv.card_rect().height() / 2 + 6)
    for zoom, batched in ((1.0, False), (0.3, True), (0.1, True), (1.0, False)):
        view.set_zoom(zoom, centre)
        view.centerOn(centre)
        colour = _pixel(view, header if zoom >= 0.5 else centre + QPointF(-80, -40))
        assert scene._batched is batched, zoom
        assert all(bool(i.flags() & no_contents) is batched for i in [*scene.node_items(), *scene.edge_items()])
        assert colour.name() == conv.group_color.name(), zoom
    # A selected card, zoomed out, is outlined in the selection colour by the layer.
    view.set_zoom(0.1, centre)
    view.centerOn(centre)
    scene.select_nodes(["conv2d"])
    outline = _pixel(view, centre + QPointF(-conv.card_rect().width() / 2, 0))
    assert outline.name() == scene.card_style.colors["selection"].name()
    # Rendered close up while the scene is set up for the zoomed-out view: still full cards.
    assert scene._batched
    source = conv.mapRectToScene(conv.card_rect())
    image = QImage(int(source.width()), int(source.height()), QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    scene.render(painter, QRectF(image.rect()), source)
    painter.end()
    assert image.pixelColor(int(source.width()) - 12, 6).name() == conv.group_color.name()
    assert image.pixelColor(int(source.width()) // 2, int(source.height()) - 12).name() \
        != conv.group_color.name()   # the card's body, not a block
