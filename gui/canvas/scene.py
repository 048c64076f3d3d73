"""The canvas scene: a mirror of the document's design.

Items are created, removed and updated only from the document's signals; every gesture on the
canvas (moving cards, drawing a connection, dropping a layer, collapsing a group) becomes one
``document.edit(...)`` of engine ops, so undo, redo and saving never need to ask the canvas
anything.

Groups: a collapsed group (the outermost collapsed one around a layer) is drawn as one
:class:`GroupCardItem`; the cards of its layers are hidden, and connections from or to them are
drawn from or to the group's card (one edge between any two cards, none inside the group). An
expanded group is drawn as a :class:`GroupFrameItem` behind its cards.

Zoomed out (below ``LOD_FULL``), every layer card is drawn by one :class:`CardLayer` and every
connection by one :class:`EdgeLayer` instead of by their own items (see ``_set_batched``): a
1,000-layer overview is then a few dozen drawing calls a frame, not two thousand calls into Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import shiboken6
from PySide6.QtCore import QEvent, QObject, QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QPainter, QPen
from PySide6.QtWidgets import (
    QGraphicsItem, QGraphicsPathItem, QGraphicsScene, QGraphicsSceneContextMenuEvent, QGraphicsSceneHelpEvent,
    QGraphicsSceneMouseEvent,
    QGraphicsView, QStyleOptionGraphicsItem, QToolTip, QWidget,
)

from engine.analysis import Analysis
from engine.design import DesignError, Node, TensorRef
from engine.editing import (
    ROW as PLACE_ROW, Arrange, EditRefused, Move, OnEdge, OnNode, Op, PlaceTarget, attaches, plan_connect,
    plan_place,
)
from engine.grouping import group_summaries, group_summary, plan_collapse, plan_group, plan_reveal, plan_ungroup
from engine.layout import CLEARANCE, X_SPACING, CardIndex, Rect, layered_positions
from engine.shapes import fmt_shape

from ..document import Document
from .edge_item import EdgeItem, EdgeLayer, curve
from .group_item import GroupCardItem, GroupFrameItem, frame_rects, group_text, group_tooltip
from .node_item import HEIGHT, LOD_FULL, WIDTH, CardLayer, CardStyle, NodeItem, card_text, card_tooltip

Card = NodeItem | GroupCardItem   # what the canvas draws for a layer: its own card or its group's

# Vertical distance between a layer and the one it feeds when the canvas places a new layer.
ROW = PLACE_ROW


class GraphScene(QGraphicsScene):
    """One :class:`NodeItem` per layer and one :class:`EdgeItem` per connection of ``document``."""

    sigSelectionChanged = Signal(list)   # names of the selected layers, in design order
    sigMessage = Signal(str)             # why a gesture was refused, or what it did
    sigNodeActivated = Signal(str)       # a card was double-clicked
    sigGroupsSelected = Signal(list)     # names of the groups selected as such (cards, frame headers)
    sigContextMenu = Signal(object)      # a context menu was asked for at this screen point (QPoint)

    def __init__(self, document: Document, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.card_style = CardStyle(self.font())
        self._nodes: dict[str, NodeItem] = {}
        self._incoming: dict[str, list[EdgeItem]] = {}
        self._outgoing: dict[str, set[EdgeItem]] = {}
        self._selection: list[str] = []
        self._group_selection: list[str] = []
        self._quiet = 0
        self._hint: NodeItem | EdgeItem | None = None
        self._connect_from: str | None = None
        self._connect_line: QGraphicsPathItem | None = None
        self._card_rects: CardIndex | None = None   # where the cards are, for edge routing
        self._reroute_pending = False
        self._cards_shown: Analysis | None = None  # the analysis the cards show (refresh_cards)
        # Groups, as last mirrored (see _sync_groups).
        self._group_cards: dict[str, GroupCardItem] = {}
        self._frames: dict[str, GroupFrameItem] = {}
        self._shown_as: dict[str, str] = {}             # hidden layer → the group whose card shows it
        self._card_members: dict[str, list[str]] = {}   # collapsed group → the layers its card shows
        self._frame_order: list[str] = []               # expanded groups, innermost first
        self._frame_cards: dict[str, list[Card]] = {}   # … the cards directly inside each
        self._frame_children: dict[str, list[str]] = {}  # … the expanded groups directly inside each
        self._groups_dirty = False
        self._group_texts_stale = True                  # every group's summary is to be redone
        self._texts_shown: Analysis | None = None       # … else only those the analysis changed
        self._frame_dragged: str | None = None          # the group whose frame is being dragged
        # Zoomed out, one item draws every layer card and one every edge (see _set_batched).
        self._card_layer: CardLayer | None = None
        self._edge_layer: EdgeLayer | None = None
        self._batched = False
        self._watched: list[QWidget] = []                # viewports whose zoom decides _batched
        document.designReset.connect(self.rebuild)
        document.nodeAdded.connect(self._on_node_added)
        document.nodeRemoved.connect(self._on_node_removed)
        document.nodeRenamed.connect(self._on_node_renamed)
        document.nodeMoved.connect(self._on_node_moved)
        document.inputsChanged.connect(self._on_inputs_changed)
        document.arranged.connect(self._on_arranged)
        document.groupsChanged.connect(self._mark_groups_dirty)
        document.searchChanged.connect(self._on_search_changed)
        document.analysed.connect(self.refresh_cards)
        document.analysed.connect(self._refresh_groups)
        # An edit's group changes are mirrored once, when its undo step is complete.
        document.undo_stack.indexChanged.connect(self._on_step)
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

    def group_card(self, name: str) -> GroupCardItem | None:
        """The card of collapsed group ``name``, when it is shown (not inside another collapsed group)."""
        self._flush_groups()
        return self._group_cards.get(name)

    def group_cards(self) -> list[GroupCardItem]:
        self._flush_groups()
        return list(self._group_cards.values())

    def group_frame(self, name: str) -> GroupFrameItem | None:
        """The frame of expanded group ``name``, when it is shown."""
        self._flush_groups()
        return self._frames.get(name)

    def group_frames(self) -> list[GroupFrameItem]:
        """The frames on screen: every expanded group's that no collapsed group hides."""
        self._flush_groups()
        return [f for f in self._frames.values() if f.isVisible()]

    def card_items(self) -> list[Card]:
        """The cards on screen: every shown layer's and every collapsed group's (hidden layers
        are left out). What fitting the view and routing edges go by."""
        self._flush_groups()
        return [*(i for i in self._nodes.values() if i.isVisible()), *self._group_cards.values()]

    def card_for(self, layer: str) -> Card | None:
        """The card that shows ``layer``: its own, or the card of the collapsed group holding it."""
        self._flush_groups()
        return self._card_for(layer)

    def _card_for(self, layer: str) -> Card | None:
        group = self._shown_as.get(layer)
        return self._group_cards.get(group) if group is not None else self._nodes.get(layer)

    def selected_group_names(self) -> list[str]:
        """Groups selected as such (a collapsed card, or a frame's header), in design order."""
        chosen = {i.name for i in self.selectedItems() if isinstance(i, (GroupCardItem, GroupFrameItem))}
        return [g for g in self.document.design.groups if g in chosen]

    def selected_layers(self) -> list[str]:
        """The layers a deletion or grouping takes: selected cards and the layers of selected groups."""
        design = self.document.design
        chosen = set(self.selected_node_names())
        for group in self.selected_group_names():
            chosen.update(design.group_members(group))
        return [n for n in design.nodes if n in chosen]

    def selected_edges(self) -> list[tuple[TensorRef, str, int]]:
        """Selected connections as ``(source, target, call)``, what ``plan_delete`` takes."""
        return [i.key for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def select_nodes(self, names: Sequence[str]) -> None:
        """Select exactly these layers (one selection-changed signal). A layer inside a
        collapsed group selects the group's card, which is what shows it."""
        self._flush_groups()
        self._quiet += 1
        try:
            self.clearSelection()
            for name in names:
                item = self._card_for(name)
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

    def group_tooltip(self, name: str) -> str:
        """Rich text about one group: its layers, shapes in and out, parameters and MACs."""
        group = self.document.design.groups.get(name)
        if group is None:
            return ""
        return group_tooltip(group, group_summary(self.document.design, self.document.analysis, name))

    def helpEvent(self, event: QGraphicsSceneHelpEvent) -> None:
        # Tooltips are written when asked for, so refreshing 300 cards never formats 300 of them.
        item = self._item_at(event.scenePos())
        text = ""
        if isinstance(item, NodeItem):
            text = self.node_tooltip(item.name)
        elif isinstance(item, EdgeItem):
            text = self.edge_tooltip(item)
        else:
            group = self._group_at(event.scenePos())
            if group is not None:
                text = self.group_tooltip(group.name)
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
            # clear() deletes the two layers and may announce a selection change first: nothing
            # may reach them by then.
            self._card_layer = self._edge_layer = None
            self._batched = False
            self.clear()
            self._nodes.clear()
            self._incoming.clear()
            self._outgoing.clear()
            self._group_cards.clear()
            self._frames.clear()
            self._shown_as.clear()
            self._card_members.clear()
            self._card_rects = None
            self._add_layers()
            design = self.document.design
            self._place_unpositioned([n for n in design if n.position is None])
            for node in design:
                self._add_node_item(node)
            for node in design:
                self._rebuild_incoming(node.name, place=False)
            self._sync_groups()
            self._reroute_all()   # every edge routed once, around the cards as they finally show
        finally:
            self._quiet -= 1
        self._refresh_groups()
        self._on_selection_changed()

    def refresh_cards(self) -> int:
        """Show the current analysis; only cards whose text changed repaint. Returns how many.

        After an edit only the cards of the layers whose reports are new are looked at (what
        ``Analysis.changed_since`` says against the analysis the cards last showed), so an edit
        of a 1,000-layer design formats a handful of cards, not 1,000."""
        analysis, design = self.document.analysis, self.document.design
        since = analysis.changed_since(self._cards_shown)
        self._cards_shown = analysis
        names = self._nodes.keys() if since is None else [n for n in since if n in self._nodes]
        changed = 0
        for name in names:
            item = self._nodes[name]
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
        if self._edge_layer is not None:
            self._edge_layer.update()
        for item in self._nodes.values():
            item.restyle()
        for card in self._group_cards.values():
            card.restyle()
        for frame in self._frames.values():
            frame.restyle()
        self.update()

    def _add_node_item(self, node: Node) -> NodeItem:
        item = NodeItem(node.name, node.kind, self.card_style)
        item.layer = self._card_layer
        if self._batched:
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)
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
        self._mark_groups_dirty()
        self._cards_changed()

    def _on_node_removed(self, name: str) -> None:
        item = self._nodes.pop(name, None)
        self._mark_groups_dirty()
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

    def _on_search_changed(self, name: str) -> None:
        """A layer's search ranges changed: its card shows them (a range changes no analysis,
        so the refresh after an analysis does not look at it)."""
        item, node = self._nodes.get(name), self.document.design.nodes.get(name)
        if item is not None and node is not None:
            item.refresh(card_text(node, self.document.analysis.nodes.get(name)))

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
        self._mark_groups_dirty()

    def _put_card(self, item: NodeItem, node: Node) -> None:
        """Put ``item`` where ``node`` says (placing a node that has no position yet)."""
        if node.position is None:
            self._place_one(node)
        assert node.position is not None
        if (item.x(), item.y()) != node.position:
            item.setPos(QPointF(*node.position))

    def _on_node_moved(self, name: str) -> None:
        item = self._nodes.get(name)
        node = self.document.design.nodes.get(name)
        if item is None or node is None:
            return
        self._put_card(item, node)
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
        self._mark_groups_dirty()   # the new edges may start or end inside a collapsed group

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
        if self._edge_layer is not None:
            self._edge_layer.edges_changed()

    def _rebuild_incoming(self, target: str, place: bool = True) -> None:
        """Make the edges into ``target`` again; routed now unless ``place`` is False (the
        caller routes every edge at once: see :meth:`rebuild`)."""
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
                edge.layer = self._edge_layer
                if self._batched:
                    edge.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)
                if place:
                    self._place_edge(edge)
                self.addItem(edge)
                edges.append(edge)
                self._outgoing.setdefault(ref.node, set()).add(edge)
        self._incoming[target] = edges

    def selection_dragged(self, grabbed: Card) -> None:
        """Cards are being dragged (the grabbed one and every selected one): edges follow."""
        for item in {grabbed, *(i for i in self.selectedItems() if isinstance(i, (NodeItem, GroupCardItem)))}:
            self.node_item_moved(item)
        self._update_frames()

    def node_item_moved(self, item: Card) -> None:
        """A card moved or changed height: its edges follow (routed around the other cards)."""
        self._card_rects = None
        if self._card_layer is not None:
            self._card_layer.card_changed(True)
        layers = self._card_members.get(item.name, ()) if isinstance(item, GroupCardItem) else (item.name,)
        for layer in layers:
            for edge in (*self._incoming.get(layer, ()), *self._outgoing.get(layer, ())):
                self._place_edge(edge)

    def _place_edge(self, edge: EdgeItem) -> None:
        """Put ``edge`` between its cards' ports, around any other card in its way."""
        if not edge.isVisible():
            return  # inside a collapsed group, or drawn by another edge between the same cards
        source, target = self._card_for(edge.source.node), self._card_for(edge.target)
        if source is None or target is None:
            return
        start, port = source.output_port_pos(), target.input_port_pos(edge.call, edge.slot)
        # The cards of the rows between its ends: what a connection between those heights may
        # pass (cards above and below them, say the one over the target, are left alone).
        rows = (min(start.y(), port.y()) - CLEARANCE, max(start.y(), port.y()) + CLEARANCE)
        edge.set_ends(start, port, self._card_index(), skip=(source, target), rows=rows)

    def _card_index(self) -> CardIndex:
        """Where the shown cards are, for routing edges around them: built once per arrangement
        of the cards (and again after one moved), so that routing each edge looks only at the
        cards near it. Hidden layers' cards are not there; collapsed groups' cards are."""
        if self._card_rects is None:
            rects: dict[Card, Rect] = {}
            for card in self._shown_cards():
                r = card.mapRectToScene(card.card_rect())
                rects[card] = (r.left(), r.top(), r.right(), r.bottom())
            self._card_rects = CardIndex(rects)
        return self._card_rects

    def _shown_cards(self) -> Iterable[Card]:
        yield from (i for i in self._nodes.values() if i.isVisible())
        yield from self._group_cards.values()

    def _cards_changed(self) -> None:
        """A card came, went or was moved by an edit: once the edit is mirrored, route every edge
        again, since any of them may now pass it (dragging only re-routes the dragged cards')."""
        self._card_rects = None
        if self._card_layer is not None:
            self._card_layer.card_changed(True)
        if not self._reroute_pending:
            self._reroute_pending = True
            QTimer.singleShot(0, self, self._reroute_if_pending)

    def _reroute_if_pending(self) -> None:
        if self._reroute_pending:   # else every edge was routed since (rebuild does it at once)
            self._reroute_all()

    def _reroute_all(self) -> None:
        self._reroute_pending = False
        self._flush_groups()
        self._update_frames()
        for edge in self.edge_items():
            self._place_edge(edge)

    def _on_arranged(self) -> None:
        """Many cards moved at once (a layout, a group dragged): put every card where the design
        says, then route the edges once."""
        self._flush_groups()  # the step may have changed groups first (collapsing lays out again)
        design = self.document.design
        for name, item in self._nodes.items():
            node = design.nodes.get(name)
            if node is not None:
                self._put_card(item, node)
        for group, card in self._group_cards.items():
            where = self._group_position(group)
            if (card.x(), card.y()) != where:
                card.setPos(QPointF(*where))
        self._cards_changed()

    # --- zoomed out: the cards and edges drawn in two layers ------------------------------------

    def _add_layers(self) -> None:
        """The two items that draw every card and every edge when zoomed out (after ``clear``)."""
        self._batched = False
        self._card_layer = CardLayer(self.card_style, self._nodes.values)
        self._edge_layer = EdgeLayer(self.card_style, self.edge_items)
        self.addItem(self._card_layer)
        self.addItem(self._edge_layer)
        for view in self.views():
            self._watch(view.viewport())

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        super().drawForeground(painter, rect)
        device = painter.device()
        if isinstance(device, QWidget):   # a view's viewport: watch its next paints
            self._watch(device)

    def _watch(self, viewport: QWidget) -> None:
        """Look at each paint of a view's ``viewport`` before it happens (see eventFilter)."""
        if not any(viewport is w for w in self._watched):
            self._watched = [w for w in self._watched if shiboken6.isValid(w)]   # views closed since
            self._watched.append(viewport)
            viewport.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Before a view paints, set the items up for its zoom: that is the only moment a zoom
        # step (the view's transform) is known and nothing is being painted yet.
        if event.type() == QEvent.Type.Paint:
            view = watched.parent()
            if isinstance(view, QGraphicsView) and view.scene() is self:
                lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(view.viewportTransform())
                self._set_batched(lod < LOD_FULL)
        return super().eventFilter(watched, event)

    def _set_batched(self, batched: bool) -> None:
        """Zoomed out (``batched``), the cards and edges have no contents of their own and the
        two layers draw them all (a thousand Python ``paint`` calls a frame would cost more than
        drawing); zoomed in, each paints itself. Either way every frame is drawn right: a layer
        painted at a zoom the scene was not set up for paints the items itself."""
        if batched == self._batched or self._card_layer is None or self._edge_layer is None:
            return
        self._batched = batched
        flag = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
        for item in self._nodes.values():
            item.setFlag(flag, batched)
        for edge in self.edge_items():
            edge.setFlag(flag, batched)
        self._card_layer.set_batched(batched)
        self._edge_layer.set_batched(batched)

    # --- groups -------------------------------------------------------------------------------

    def _on_step(self, _index: int) -> None:
        self._flush_groups()
        if self._group_texts_stale:  # the analysis has not been announced yet: show what is known
            self._refresh_groups()

    def _mark_groups_dirty(self) -> None:
        """Groups, or what is in them, may have changed: mirror them once the step is complete
        (collapsing 60 groups is 60 signals, and one mirroring)."""
        if self.document.design.groups or self._group_cards or self._frames:
            self._groups_dirty = True

    def _flush_groups(self) -> None:
        if self._groups_dirty:
            self._sync_groups()

    def _sync_groups(self) -> None:
        """Mirror the design's groups: which layers are hidden behind which group's card, the
        group cards and frames, and which edges are drawn."""
        self._groups_dirty = False
        self._group_texts_stale = True   # members, or what enters and leaves them, may differ
        design = self.document.design
        shown_as: dict[str, str] = {}
        members: dict[str, list[str]] = {}
        if design.groups:
            for name in design.nodes:
                group = design.collapsed_group(name)
                if group is not None:
                    shown_as[name] = group
                    members.setdefault(group, []).append(name)
        self._shown_as, self._card_members = shown_as, members
        deselected = False
        self._quiet += 1
        try:
            for name, item in self._nodes.items():
                visible = name not in shown_as
                if item.isVisible() != visible:
                    if not visible and item.isSelected():
                        item.setSelected(False)
                        deselected = True
                    item.setVisible(visible)
            for group in [g for g in self._group_cards if g not in members]:
                self._remove_group_item(self._group_cards.pop(group))
            for group in members:
                card = self._group_cards.get(group)
                if card is None:
                    card = self._group_cards[group] = GroupCardItem(group, design.groups[group].kind,
                                                                    self.card_style)
                    card.refresh(group_text(design.groups[group], None))  # summed up by _refresh_groups
                    self.addItem(card)
                where = self._group_position(group)
                if (card.x(), card.y()) != where:
                    card.setPos(QPointF(*where))
            self._sync_frames()
        finally:
            self._quiet -= 1
        self._sync_edges()
        self._update_frames()
        self._cards_changed()
        if deselected:
            self._on_selection_changed()

    def _sync_frames(self) -> None:
        design = self.document.design
        framed = [g for g in design.groups
                  if not any(design.groups[c].collapsed for c in design.group_chain(g))]
        depth = {g: len(design.group_chain(g)) for g in framed}
        for group in [g for g in self._frames if g not in depth]:
            self._remove_group_item(self._frames.pop(group))
        for group in framed:
            frame = self._frames.get(group)
            if frame is None or frame.zValue() != -5.0 + 0.1 * depth[group]:
                if frame is not None:
                    self._remove_group_item(frame)
                frame = self._frames[group] = GroupFrameItem(group, depth[group], self.card_style)
                frame.refresh(group_text(design.groups[group], None))
                self.addItem(frame)
        self._frame_order = sorted(framed, key=lambda g: -depth[g])
        cards: dict[str, list[Card]] = {}
        for name, item in self._nodes.items():
            node = design.nodes.get(name)
            if node is not None and node.group in depth and name not in self._shown_as:
                cards.setdefault(node.group, []).append(item)
            item.set_group_prefix(node.group if node is not None else None)
        for group, card in self._group_cards.items():
            parent = design.groups[group].parent
            if parent in depth:
                cards.setdefault(parent, []).append(card)
        children: dict[str, list[str]] = {}
        for group in framed:
            parent = design.groups[group].parent
            if parent in depth:
                children.setdefault(parent, []).append(group)
        self._frame_cards, self._frame_children = cards, children

    def _remove_group_item(self, item: GroupCardItem | GroupFrameItem) -> None:
        if item.isSelected():
            item.setSelected(False)
        self.removeItem(item)

    def _sync_edges(self) -> None:
        """Show each connection once between two cards: hidden inside a collapsed group, and only
        one of several that join the same two cards when a group's card is one of them."""
        shown_as = self._shown_as
        seen: set[tuple[str, bool, str, bool]] = set()
        for edge in self.edge_items():
            source, target = shown_as.get(edge.source.node), shown_as.get(edge.target)
            plain = source is None and target is None
            if plain:
                visible = True
            elif source is not None and source == target:
                visible = False
            else:
                key = (source or edge.source.node, source is not None, target or edge.target, target is not None)
                visible = key not in seen
                seen.add(key)
            if not visible and edge.isSelected():
                edge.setSelected(False)
            if edge.isVisible() != visible:
                edge.setVisible(visible)
                if self._edge_layer is not None:
                    self._edge_layer.edges_changed()
            # Only a connection between two layers' own cards is one connection to select and delete.
            edge.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, plain)

    def _group_position(self, group: str) -> tuple[float, float]:
        """Where the card of ``group`` is drawn: its position, or else above its layers."""
        position = self.document.design.groups[group].position
        if position is not None:
            return position
        nodes = self.document.design.nodes
        points = [p for p in (nodes[n].position for n in self._card_members.get(group, ())) if p is not None]
        if not points:
            return (0.0, 0.0)
        return (sum(p[0] for p in points) / len(points), min(p[1] for p in points))

    def _refresh_groups(self) -> None:
        """Show the new analysis on group cards and frames (their shapes, parameters, errors):
        after an edit of arguments only, just the groups around the layers whose reports are new.
        Every group shown is summed up in one walk of the design (:func:`group_summaries`)."""
        self._flush_groups()
        design, analysis = self.document.design, self.document.analysis
        changed = None if self._group_texts_stale else analysis.changed_since(self._texts_shown)
        self._group_texts_stale, self._texts_shown = False, analysis
        if changed is None:
            wanted: set[str] | None = None
        else:
            wanted = set()
            for layer in changed:
                if layer in design.nodes:
                    wanted.update(design.groups_of(layer))
        shown = [g for g in (*self._group_cards, *self._frames)
                 if g in design.groups and (wanted is None or g in wanted)]
        if not shown:
            return
        summaries = group_summaries(design, analysis, shown)
        for group, card in self._group_cards.items():
            if group in summaries:
                card.refresh(group_text(design.groups[group], summaries[group]))
        for group, frame in self._frames.items():
            if group in summaries:
                frame.refresh(group_text(design.groups[group], summaries[group]))

    def _update_frames(self) -> None:
        """Fit every frame around the cards inside it (as they are drawn right now)."""
        if not self._frames:
            return
        cards: dict[str, list[Rect]] = {}
        for group, items in self._frame_cards.items():
            boxes = []
            for item in items:
                half_w, half_h = item.card_rect().width() / 2, item.card_rect().height() / 2
                boxes.append((item.x() - half_w, item.y() - half_h, item.x() + half_w, item.y() + half_h))
            cards[group] = boxes
        rects = frame_rects(self._frame_order, cards, self._frame_children)
        for group, frame in self._frames.items():
            rect = rects.get(group)
            frame.setVisible(rect is not None)
            if rect is not None:
                frame.set_rect(rect)

    def _frame_contents(self, group: str) -> list[Card]:
        """Every card inside the frame of ``group``, its sub-groups' included."""
        found: list[Card] = []
        stack = [group]
        while stack:
            g = stack.pop()
            found += self._frame_cards.get(g, ())
            stack += self._frame_children.get(g, ())
        return found

    def drag_frame(self, group: str, delta: QPointF) -> None:
        """The header of ``group``'s frame is being dragged by ``delta``: every card inside
        follows, visually (the release makes it one edit, see :meth:`commit_moves`)."""
        self._frame_dragged = group
        for card in self._frame_contents(group):
            card.moveBy(delta.x(), delta.y())
        for card in self._frame_contents(group):
            self.node_item_moved(card)
        self._update_frames()

    def toggle_group(self, name: str) -> None:
        """Collapse an expanded group, or expand a collapsed one: one undo step (laid out again)."""
        group = self.document.design.groups.get(name)
        if group is None:
            return
        self.set_groups_collapsed([name], not group.collapsed)

    def set_groups_collapsed(self, names: Sequence[str], collapsed: bool) -> bool:
        """Collapse (or expand) the groups ``names`` as one undo step; False when none changes."""
        design = self.document.design
        ops = plan_collapse(design, [n for n in names if n in design.groups], collapsed)
        if not ops:
            return False
        changed = [n for n in names if n in design.groups and design.groups[n].collapsed != collapsed]
        verb = "Collapse" if collapsed else "Expand"
        self.document.edit(f"{verb} {changed[0]}" if len(changed) == 1 else f"{verb} {len(changed)} groups", ops)
        return True

    def reveal(self, layer: str) -> NodeItem | None:
        """Expand the collapsed groups around ``layer`` (one undo step, none when it shows) and
        return its card."""
        if layer not in self.document.design.nodes:
            return None
        ops = plan_reveal(self.document.design, layer)
        if ops:
            self.document.edit(f"Show {layer}", ops)
        self._flush_groups()
        return self._nodes.get(layer)

    def group_layers(self, names: Sequence[str], group: str) -> bool:
        """Put the layers ``names`` into a new group ``group``: one undo step, or a message
        (``sigMessage``) saying why not."""
        try:
            ops = plan_group(self.document.design, names, group)
        except DesignError as exc:
            self.sigMessage.emit(str(exc))
            return False
        self.document.edit(f"Group {group}", ops)
        self._flush_groups()
        frame = self._frames.get(group)
        if frame is not None:
            self._select_only([frame])
        return True

    def ungroup(self, group: str) -> bool:
        """Dissolve ``group`` (its layers stay, in the group that held it): one undo step."""
        try:
            ops = plan_ungroup(self.document.design, group)
        except DesignError as exc:
            self.sigMessage.emit(str(exc))
            return False
        self.document.edit(f"Ungroup {group}", ops)
        return True

    def _select_only(self, items: Sequence[QGraphicsItem]) -> None:
        self._quiet += 1
        try:
            self.clearSelection()
            for item in items:
                if isinstance(item, GroupFrameItem):
                    item._clicked = True  # selected on purpose, as by a click on its header
                    item.setSelected(True)
                    item._clicked = False
                else:
                    item.setSelected(True)
        finally:
            self._quiet -= 1
        self._on_selection_changed()

    def select_group(self, name: str) -> None:
        """Select group ``name``'s card or frame (and nothing else)."""
        self._flush_groups()
        item = self._group_cards.get(name) or self._frames.get(name)
        self._select_only([item] if item is not None else [])

    def _on_selection_changed(self) -> None:
        if self._batched:   # the layers draw the selection of what they draw
            for layer in (self._card_layer, self._edge_layer):
                if layer is not None:
                    layer.update()
        if self._quiet:
            return
        names = self.selected_node_names()
        groups = self.selected_group_names()
        if names != self._selection:
            self._selection = names
            self.sigSelectionChanged.emit(names)
        if groups != self._group_selection:
            self._group_selection = groups
            self.sigGroupsSelected.emit(groups)

    def card_at(self, pos: QPointF) -> NodeItem | GroupCardItem | GroupFrameItem | None:
        """The layer card, group card or frame header under scene point ``pos``."""
        item = self._item_at(pos)
        if isinstance(item, NodeItem):
            return item
        return self._group_at(pos)

    def contextMenuEvent(self, event: QGraphicsSceneContextMenuEvent) -> None:
        """A right-click: what is under the pointer becomes the selection unless it is selected
        already (so the menu acts on it), then whoever shows the menu is told where."""
        card = self.card_at(event.scenePos())
        if card is not None and not card.isSelected():
            if isinstance(card, NodeItem):
                self.select_nodes([card.name])
            else:
                self.select_group(card.name)
        elif card is None and self.selectedItems() and not self._under_selection(event.scenePos()):
            self.clearSelection()
        self.sigContextMenu.emit(event.screenPos())
        event.accept()

    def _under_selection(self, pos: QPointF) -> bool:
        return any(item.isSelected() for item in self.items(pos))

    # --- moving -------------------------------------------------------------------------------

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self.commit_moves()

    def commit_moves(self) -> None:
        """Turn cards dragged away from their layer's position into ONE undoable move. A group's
        card or frame carries its hidden layers along: the step is then one :class:`Arrange`."""
        design = self.document.design
        ops: list[Move] = []
        for name, item in self._nodes.items():
            node = design.nodes.get(name)
            if node is None or not item.isVisible():
                continue  # a hidden layer moves with its group's card, below
            x, y = float(round(item.x())), float(round(item.y()))
            if node.position is None or abs(node.position[0] - item.x()) > 0.01 \
                    or abs(node.position[1] - item.y()) > 0.01:
                ops.append(Move(name, (x, y)))
        moved_groups: list[str] = []
        groups: dict[str, tuple[float, float] | None] = {}
        layers: dict[str, tuple[float, float] | None] = {m.name: m.position for m in ops}
        for group, card in self._group_cards.items():
            if group not in design.groups:
                continue
            old = self._group_position(group)
            new = (float(round(card.x())), float(round(card.y())))
            if abs(old[0] - card.x()) <= 0.01 and abs(old[1] - card.y()) <= 0.01:
                continue
            moved_groups.append(group)
            dx, dy = new[0] - old[0], new[1] - old[1]
            for layer in self._card_members.get(group, ()):
                at = design.nodes[layer].position
                if at is not None:
                    layers[layer] = (at[0] + dx, at[1] + dy)
            for sub in design.groups.values():  # groups inside keep their place relative to it
                if sub.name != group and sub.position is not None and group in design.group_chain(sub.name):
                    groups[sub.name] = (sub.position[0] + dx, sub.position[1] + dy)
            groups[group] = new
        dragged, self._frame_dragged = self._frame_dragged, None
        if not moved_groups and not (dragged and len(ops) > 1):
            if ops:
                text = f"Move {ops[0].name}" if len(ops) == 1 else f"Move {len(ops)} layers"
                self.document.edit(text, ops)
            return
        if dragged is not None:
            text = f"Move {dragged}"
        elif len(moved_groups) == 1 and not ops:
            text = f"Move {moved_groups[0]}"
        else:
            text = f"Move {len(moved_groups) + len(ops)} cards"
        step: list[Op] = [Arrange(tuple(layers.items()), tuple(groups.items()))]
        self.document.edit(text, step)

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

    def _group_at(self, pos: QPointF) -> GroupCardItem | GroupFrameItem | None:
        """The group card, or the frame header, under ``pos``."""
        area = QRectF(pos.x() - 1, pos.y() - 1, 2, 2)
        for item in self.items(area, Qt.ItemSelectionMode.IntersectsItemShape, Qt.SortOrder.DescendingOrder):
            if isinstance(item, (GroupCardItem, GroupFrameItem)):
                return item
        return None

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
        if self._batched:
            for layer in (self._card_layer, self._edge_layer):
                if layer is not None:
                    layer.update()

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
