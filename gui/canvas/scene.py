"""The canvas scene: a mirror of the document's design.

Items are created, removed and updated only from the document's signals; every gesture on the
canvas (moving cards, drawing a connection, dropping a layer) becomes one ``document.edit(...)``
of engine ops, so undo, redo and saving never need to ask the canvas anything.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QPen
from PySide6.QtWidgets import (
    QGraphicsPathItem, QGraphicsScene, QGraphicsSceneHelpEvent, QGraphicsSceneMouseEvent, QToolTip,
)

from engine.design import Node, TensorRef
from engine.editing import (
    ROW as PLACE_ROW, EditRefused, Move, OnEdge, OnNode, PlaceTarget, attaches, plan_connect, plan_place,
)
from engine.layout import CLEARANCE, X_SPACING, Rect, layered_positions
from engine.shapes import fmt_shape

from ..document import Document
from .edge_item import EdgeItem, curve
from .node_item import HEIGHT, WIDTH, CardStyle, NodeItem, card_text, card_tooltip

# Vertical distance between a layer and the one it feeds when the canvas places a new layer.
ROW = PLACE_ROW


class GraphScene(QGraphicsScene):
    """One :class:`NodeItem` per layer and one :class:`EdgeItem` per connection of ``document``."""

    sigSelectionChanged = Signal(list)   # names of the selected layers, in design order
    sigMessage = Signal(str)             # why a gesture was refused, or what it did
    sigNodeActivated = Signal(str)       # a card was double-clicked

    def __init__(self, document: Document, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.card_style = CardStyle(self.font())
        self._nodes: dict[str, NodeItem] = {}
        self._incoming: dict[str, list[EdgeItem]] = {}
        self._outgoing: dict[str, set[EdgeItem]] = {}
        self._selection: list[str] = []
        self._quiet = 0
        self._hint: NodeItem | EdgeItem | None = None
        self._connect_from: str | None = None
        self._connect_line: QGraphicsPathItem | None = None
        self._card_rects: dict[str, Rect] | None = None   # where the cards are, for edge routing
        self._card_tops: list[float] = []                  # … sorted by their tops (_cards_between)
        self._card_order: list[tuple[str, Rect]] = []
        self._tallest = 0.0
        self._reroute_pending = False
        document.designReset.connect(self.rebuild)
        document.nodeAdded.connect(self._on_node_added)
        document.nodeRemoved.connect(self._on_node_removed)
        document.nodeRenamed.connect(self._on_node_renamed)
        document.nodeMoved.connect(self._on_node_moved)
        document.inputsChanged.connect(self._on_inputs_changed)
        document.analysed.connect(self.refresh_cards)
        self.selectionChanged.connect(self._on_selection_changed)
        self.rebuild()

    # --- queries ----------------------------------------------------------------------------

    def node_item(self, name: str) -> NodeItem | None:
        return self._nodes.get(name)

    def node_items(self) -> list[NodeItem]:
        return list(self._nodes.values())

    def edge_items(self) -> list[EdgeItem]:
        return [e for edges in self._incoming.values() for e in edges]

    def selected_node_names(self) -> list[str]:
        chosen = {i.name for i in self.selectedItems() if isinstance(i, NodeItem)}
        return [n for n in self.document.design.nodes if n in chosen]

    def selected_edges(self) -> list[tuple[TensorRef, str, int]]:
        """Selected connections as ``(source, target, call)``, what ``plan_delete`` takes."""
        return [i.key for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def select_nodes(self, names: Sequence[str]) -> None:
        """Select exactly these layers (one selection-changed signal)."""
        self._quiet += 1
        try:
            self.clearSelection()
            for name in names:
                item = self._nodes.get(name)
                if item is not None:
                    item.setSelected(True)
        finally:
            self._quiet -= 1
        self._on_selection_changed()

    def edge_tooltip(self, edge: EdgeItem) -> str:
        """``conv2d → max_pooling2d: (None, 26, 26, 32)``"""
        report = self.document.analysis.nodes.get(edge.source.node)
        shape = None
        if report is not None and edge.source.call < len(report.output_shapes):
            shape = report.output_shapes[edge.source.call]
        call = f" (call {edge.call})" if edge.call else ""
        return f"{edge.source} → {edge.target}{call}: {fmt_shape(shape)}"

    def node_tooltip(self, name: str) -> str:
        """Rich text about one layer: arguments, shapes, parameters, problems and their fixes."""
        node = self.document.design.nodes.get(name)
        if node is None:
            return ""
        return card_tooltip(node, self.document.analysis.nodes.get(name))

    def helpEvent(self, event: QGraphicsSceneHelpEvent) -> None:
        # Tooltips are written when asked for, so refreshing 300 cards never formats 300 of them.
        item = self._item_at(event.scenePos())
        text = ""
        if isinstance(item, NodeItem):
            text = self.node_tooltip(item.name)
        elif isinstance(item, EdgeItem):
            text = self.edge_tooltip(item)
        if text:
            QToolTip.showText(event.screenPos(), text, event.widget())
            event.accept()
        else:
            QToolTip.hideText()
            event.ignore()

    # --- mirroring the document ---------------------------------------------------------------

    def rebuild(self) -> None:
        """Throw every item away and mirror the whole design again."""
        self._quiet += 1
        try:
            self._end_connect()
            self._hint = None
            self.clear()
            self._nodes.clear()
            self._incoming.clear()
            self._outgoing.clear()
            self._card_rects = None
            design = self.document.design
            self._place_unpositioned([n for n in design if n.position is None])
            for node in design:
                self._add_node_item(node)
            for node in design:
                self._rebuild_incoming(node.name)
        finally:
            self._quiet -= 1
        self._on_selection_changed()

    def refresh_cards(self) -> int:
        """Show the current analysis; only cards whose text changed repaint. Returns how many."""
        analysis, design = self.document.analysis, self.document.design
        changed = 0
        for name, item in self._nodes.items():
            node = design.nodes.get(name)
            if node is None:
                continue
            height = item.height
            if item.refresh(card_text(node, analysis.nodes.get(name))):
                changed += 1
                if item.height != height:
                    self.node_item_moved(item)
        return changed

    def apply_theme(self) -> None:
        """The system switched between light and dark: take the new colours."""
        self.card_style.refresh(self.font())
        for item in self._nodes.values():
            item.restyle()
        self.update()

    def _add_node_item(self, node: Node) -> NodeItem:
        item = NodeItem(node.name, node.kind, self.card_style)
        assert node.position is not None
        item.setPos(QPointF(*node.position))
        item.sync_ports(node)
        item.refresh(card_text(node, self.document.analysis.nodes.get(node.name)))
        self.addItem(item)
        self._nodes[node.name] = item
        return item

    def _place_unpositioned(self, nodes: list[Node]) -> None:
        """Give layers without a position one. Not an edit: a file without a layout is shown laid
        out, and saving it keeps that layout."""
        if not nodes:
            return
        design = self.document.design
        layout = layered_positions(design)
        placed = [n.position for n in design if n.position is not None]
        dx = 0.0
        if placed:  # lay the newcomers out beside what the user arranged
            right = max(p[0] for p in placed)
            dx = right + X_SPACING - min(layout[n.name][0] for n in nodes)
        for node in nodes:
            x, y = layout[node.name]
            node.position = (x + dx, y)

    def _place_one(self, node: Node) -> None:
        """A position for one added layer without one: under its first input, else beside all."""
        design = self.document.design
        source = next((r.node for refs in node.inbound for r in refs if r.node in self._nodes), None)
        below = design.nodes[source].position if source is not None else None
        if below is not None:
            x, y = below[0], below[1] + ROW
        elif self._nodes:
            rect = self.itemsBoundingRect()
            x, y = rect.right() + X_SPACING / 2, rect.top() + HEIGHT / 2
        else:
            x, y = 0.0, 0.0
        while any(abs(i.x() - x) < WIDTH and abs(i.y() - y) < HEIGHT for i in self._nodes.values()):
            x += X_SPACING
        node.position = (x, y)

    def _on_node_added(self, name: str) -> None:
        node = self.document.design.nodes[name]
        if node.position is None:
            self._place_one(node)
        self._add_node_item(node)
        self._rebuild_incoming(name)
        self._cards_changed()

    def _on_node_removed(self, name: str) -> None:
        item = self._nodes.pop(name, None)
        self._cards_changed()
        if self._connect_from == name:
            self._end_connect()
        for edge in self._incoming.pop(name, []):
            self._drop_edge(edge, from_target=False)
        for edge in self._outgoing.pop(name, set()):
            self._drop_edge(edge, from_target=True)
        if item is not None:
            if self._hint is item:
                self._hint = None
            self.removeItem(item)

    def _on_node_renamed(self, old: str, new: str) -> None:
        item = self._nodes.pop(old, None)
        if item is None:
            return
        item.rename(new)
        self._nodes[new] = item
        incoming = self._incoming.pop(old, [])
        for edge in incoming:
            edge.target = new
        self._incoming[new] = incoming
        outgoing = self._outgoing.pop(old, set())
        for edge in outgoing:
            edge.source = TensorRef(new, edge.source.call)
        self._outgoing[new] = outgoing
        if self._connect_from == old:
            self._connect_from = new

    def _on_node_moved(self, name: str) -> None:
        item = self._nodes.get(name)
        node = self.document.design.nodes.get(name)
        if item is None or node is None:
            return
        if node.position is None:
            self._place_one(node)
        assert node.position is not None
        if (item.x(), item.y()) != node.position:
            item.setPos(QPointF(*node.position))
        # Its edges are placed by the one re-route after the edit: an edit that moves 900 cards
        # (an insert shifts everything below) must not route edges 900 times.
        self._cards_changed()

    def _on_inputs_changed(self, name: str) -> None:
        item = self._nodes.get(name)
        node = self.document.design.nodes.get(name)
        if item is None or node is None:
            return
        item.sync_ports(node)
        self._rebuild_incoming(name)

    def _drop_edge(self, edge: EdgeItem, from_target: bool) -> None:
        if from_target:
            edges = self._incoming.get(edge.target)
            if edges is not None and edge in edges:
                edges.remove(edge)
        else:
            self._outgoing.get(edge.source.node, set()).discard(edge)
        if self._hint is edge:
            self._hint = None
        self.removeItem(edge)

    def _rebuild_incoming(self, target: str) -> None:
        for edge in self._incoming.pop(target, []):
            self._drop_edge(edge, from_target=False)
        item = self._nodes.get(target)
        node = self.document.design.nodes.get(target)
        if item is None or node is None:
            return
        edges = []
        for call, refs in enumerate(node.inbound):
            for slot, ref in enumerate(refs):
                source = self._nodes.get(ref.node)
                if source is None:
                    continue  # a dangling reference: the analysis reports it
                edge = EdgeItem(ref, target, call, slot, self.card_style)
                self._place_edge(edge)
                self.addItem(edge)
                edges.append(edge)
                self._outgoing.setdefault(ref.node, set()).add(edge)
        self._incoming[target] = edges

    def selection_dragged(self, grabbed: NodeItem) -> None:
        """Cards are being dragged (the grabbed one and every selected one): edges follow."""
        for item in {grabbed, *(i for i in self.selectedItems() if isinstance(i, NodeItem))}:
            self.node_item_moved(item)

    def node_item_moved(self, item: NodeItem) -> None:
        """A card moved or changed height: its edges follow (routed around the other cards)."""
        self._card_rects = None
        for edge in (*self._incoming.get(item.name, ()), *self._outgoing.get(item.name, ())):
            self._place_edge(edge)

    def _place_edge(self, edge: EdgeItem) -> None:
        """Put ``edge`` between its cards' ports, around any other card in its way."""
        source, target = self._nodes.get(edge.source.node), self._nodes.get(edge.target)
        if source is None or target is None:
            return
        start, port = source.output_port_pos(), target.input_port_pos(edge.call, edge.slot)
        ends = (edge.source.node, edge.target)
        band = self._cards_between(min(start.y(), port.y()), max(start.y(), port.y()))
        edge.set_ends(start, port, (r for name, r in band if name not in ends))

    def _cards_between(self, top: float, bottom: float) -> list[tuple[str, Rect]]:
        """The cards whose rectangles reach into the rows from ``top`` to ``bottom``: the only
        ones an edge between those heights can cross. Cards are kept sorted by their top, so
        that routing every edge of a 1,000-layer design stays near-linear."""
        if self._card_rects is None:
            rects = []
            for name, card in self._nodes.items():
                r = card.mapRectToScene(card.card_rect())
                rects.append((r.top(), name, (r.left(), r.top(), r.right(), r.bottom())))
            rects.sort(key=lambda entry: entry[0])
            self._card_rects = {name: rect for _top, name, rect in rects}
            self._card_tops = [t for t, _name, _rect in rects]
            self._card_order = [(name, rect) for _t, name, rect in rects]
            self._tallest = max((rect[3] - rect[1] for _n, rect in self._card_order), default=0.0)
        lo = bisect.bisect_left(self._card_tops, top - self._tallest - CLEARANCE)
        hi = bisect.bisect_right(self._card_tops, bottom + CLEARANCE)
        return [entry for entry in self._card_order[lo:hi] if entry[1][3] > top - CLEARANCE]

    def _cards_changed(self) -> None:
        """A card came, went or was moved by an edit: once the edit is mirrored, route every edge
        again, since any of them may now pass it (dragging only re-routes the dragged cards')."""
        self._card_rects = None
        if not self._reroute_pending:
            self._reroute_pending = True
            QTimer.singleShot(0, self, self._reroute_all)

    def _reroute_all(self) -> None:
        self._reroute_pending = False
        for edge in self.edge_items():
            self._place_edge(edge)

    def _on_selection_changed(self) -> None:
        if self._quiet:
            return
        names = self.selected_node_names()
        if names != self._selection:
            self._selection = names
            self.sigSelectionChanged.emit(names)

    # --- moving -------------------------------------------------------------------------------

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self.commit_moves()

    def commit_moves(self) -> None:
        """Turn cards dragged away from their layer's position into ONE undoable move."""
        design = self.document.design
        ops: list[Move] = []
        for name, item in self._nodes.items():
            node = design.nodes.get(name)
            if node is None:
                continue
            x, y = float(round(item.x())), float(round(item.y()))
            if node.position is None or abs(node.position[0] - item.x()) > 0.01 \
                    or abs(node.position[1] - item.y()) > 0.01:
                ops.append(Move(name, (x, y)))
        if ops:
            text = f"Move {ops[0].name}" if len(ops) == 1 else f"Move {len(ops)} layers"
            self.document.edit(text, ops)

    # --- connecting ---------------------------------------------------------------------------

    def connecting_from(self) -> str | None:
        """The layer a connection is being drawn from, if any."""
        return self._connect_from

    def begin_connect(self, source: str, pos: QPointF) -> None:
        self._end_connect()
        self._connect_from = source
        line = QGraphicsPathItem()
        pen = QPen(self.card_style.colors["selection"], 2.0, Qt.PenStyle.DashLine)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        line.setPen(pen)
        line.setZValue(3.0)
        self.addItem(line)
        self._connect_line = line
        self.update_connect(pos)

    def update_connect(self, pos: QPointF) -> None:
        source = self._nodes.get(self._connect_from or "")
        if source is None or self._connect_line is None:
            self._end_connect()
            return
        target = self._node_at(pos)
        target = None if target is source else target
        self._set_hint(target)
        end = target.next_input_pos() if target is not None and target.ports else pos
        self._connect_line.setPath(curve(source.output_port_pos(), end))

    def finish_connect(self, pos: QPointF) -> bool:
        """Release: connect to the layer under ``pos`` (True when an edit was made)."""
        source = self._connect_from
        self._end_connect()
        if source is None or source not in self._nodes:
            return False
        target = self._node_at(pos)
        if target is None:
            return False
        if target.name == source and target.is_on_output_port(target.mapFromScene(pos)):
            return False  # a click on the port, not a gesture
        return self.connect_nodes(source, target.name)

    def cancel_connect(self) -> None:
        """Drop the connection being drawn (Escape)."""
        self._end_connect()

    def _end_connect(self) -> None:
        self._connect_from = None
        if self._connect_line is not None:
            self.removeItem(self._connect_line)
            self._connect_line = None
        self._set_hint(None)

    def connect_nodes(self, source: str, target: str) -> bool:
        """Feed ``source`` into ``target`` as one edit, or say (``sigMessage``) why not.

        A layer that takes one input has it replaced, in the same edit (see
        :func:`engine.editing.plan_connect`, which holds the rules)."""
        try:
            plan = plan_connect(self.document.design, source, target)
        except EditRefused as exc:
            self.sigMessage.emit(str(exc))
            return False
        self.document.edit(plan.text, plan.ops)
        if plan.note:
            self.sigMessage.emit(plan.note)
        return True

    def _node_at(self, pos: QPointF) -> NodeItem | None:
        item = self._item_at(pos)
        return item if isinstance(item, NodeItem) else None

    def _item_at(self, pos: QPointF) -> NodeItem | EdgeItem | None:
        """The card (preferred) or edge under ``pos``."""
        area = QRectF(pos.x() - 3, pos.y() - 3, 6, 6)
        found = [i for i in self.items(area, Qt.ItemSelectionMode.IntersectsItemShape,
                                       Qt.SortOrder.DescendingOrder)
                 if isinstance(i, (NodeItem, EdgeItem))]
        for item in found:
            if isinstance(item, NodeItem):
                return item
        return found[0] if found else None

    def _set_hint(self, item: NodeItem | EdgeItem | None) -> None:
        if item is self._hint:
            return
        if self._hint is not None:
            self._hint.highlighted = False
            self._hint.update()
        self._hint = item
        if item is not None:
            item.highlighted = True
            item.update()

    # --- dropping layers from the palette -------------------------------------------------------

    def show_drop_hint(self, kind: str, pos: QPointF) -> None:
        """Highlight what a layer dropped at ``pos`` would attach to."""
        self._set_hint(self._item_at(pos) if attaches(kind) else None)

    def clear_drop_hint(self) -> None:
        self._set_hint(None)

    def drop_layer(self, kind: str, pos: QPointF) -> str | None:
        """Add a ``kind`` layer dropped at ``pos``: on an edge it is inserted into it; on a card it
        is appended after that layer; elsewhere it stands alone (the rule is
        :func:`engine.editing.plan_place`). One edit; returns the new name."""
        self.clear_drop_hint()
        under = self._item_at(pos)
        near = (pos.x(), pos.y())
        target: PlaceTarget = near
        if isinstance(under, EdgeItem):
            target = OnEdge(under.source, under.target, under.call)
        elif isinstance(under, NodeItem):
            target = OnNode(under.name)
        try:
            plan = plan_place(self.document.design, kind, target, near,
                              input_range=self.document.training.pixel_range)
        except EditRefused as exc:
            self.sigMessage.emit(str(exc))
            return None
        self.document.edit(plan.text, plan.ops)
        self.select_nodes([plan.name] if plan.name else [])
        return plan.name


__all__ = ["ROW", "GraphScene"]
