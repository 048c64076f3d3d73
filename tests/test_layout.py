"""The compound layout (issue 14): groups as units, columns that fill a landscape screen, hidden
layers where they will be, and connections routed around cards, also up into the next column."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.design import Design, Group, GroupKind
from engine.layout import (
    CARD_HEIGHT,
    CARD_WIDTH,
    CLEARANCE,
    FRAME_PADDING,
    GROUP_CARD_HEIGHT,
    HEADER_HEIGHT,
    WRAP_HEIGHT,
    X_GAP,
    Y_SPACING,
    CardIndex,
    Rect,
    apply_design_layout,
    card_rect,
    design_layout,
    group_card_rect,
    group_frame,
    group_frames,
    layered_positions,
    route,
    segment_crosses,
)

# --- designs --------------------------------------------------------------------------------


def chain_design(layers: int) -> Design:
    d = Design(name=f"chain_{layers}")
    prev = d.add("InputLayer", args={"shape": (8,)}).name
    for _ in range(layers - 1):
        prev = d.add("Dense", args={"units": 8}, inputs=[prev]).name
    return d


def residual_design(blocks: int) -> Design:
    """Input, then ``blocks`` residual blocks (Dense → ReLU → Dense, added to the block input):
    every block has a connection that skips two ranks. 4 layers per block."""
    d = Design(name=f"residual_{blocks}")
    prev = d.add("InputLayer", args={"shape": (8,)}).name
    for _ in range(blocks):
        a = d.add("Dense", args={"units": 8}, inputs=[prev]).name
        b = d.add("ReLU", inputs=[a]).name
        c = d.add("Dense", args={"units": 8}, inputs=[b]).name
        prev = d.add("Add", inputs=[prev, c]).name
    return d


def group_blocks(design: Design, size: int, *, collapsed: bool = False, stage: int = 0) -> list[str]:
    """Put every ``size`` consecutive layers (after the first) into a group; with ``stage``, every
    ``stage`` groups into a stage group around them."""
    names = list(design.nodes)[1:]
    made = []
    for i in range(0, len(names) - size + 1, size):
        g = f"block{i // size}"
        parent = None
        if stage:
            parent = f"stage{i // size // stage}"
            if parent not in design.groups:
                design.set_group(parent, Group(parent, GroupKind.BLOCK))
        design.set_group(g, Group(g, GroupKind.BLOCK, parent, collapsed))
        for n in names[i:i + size]:
            design.set_node_group(n, g)
        made.append(g)
    return made


# --- what the canvas would show ---------------------------------------------------------------


def shown_rects(design: Design, nodes, groups) -> dict[tuple[str, str], Rect]:
    """The cards the canvas draws: ("layer", name) for a shown layer, ("group", name) for the card
    of an outermost collapsed group."""
    rects: dict[tuple[str, str], Rect] = {}
    for name in design.nodes:
        g = design.collapsed_group(name)
        rects[("group", g) if g else ("layer", name)] = group_card_rect(groups[g]) if g else card_rect(nodes[name])
    return rects


def shown_key(design: Design, name: str) -> tuple[str, str]:
    g = design.collapsed_group(name)
    return ("group", g) if g else ("layer", name)


def shown_frames(design: Design, nodes, groups) -> dict[str, Rect]:
    frames = group_frames(design, nodes, groups)
    return {g: r for g, r in frames.items() if not any(design.groups[h].collapsed for h in design.group_chain(g))}


def overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(a: Rect, b: Rect) -> bool:
    return b[0] <= a[0] and b[1] <= a[1] and a[2] <= b[2] and a[3] <= b[3]


def bounding(rects) -> Rect:
    rects = list(rects)
    return (min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects))


def column_starts(rects) -> list[float]:
    """The left edges of the columns the cards ``rects`` stand in: x ranges that no card bridges,
    apart by more than the gap between neighbours in a rank."""
    starts: list[float] = []
    right = -float("inf")
    for r in sorted(rects):
        if r[0] > right + X_GAP:
            starts.append(r[0])
        right = max(right, r[2])
    return starts


def assert_no_overlaps(rects: list[Rect]) -> None:
    """No two of ``rects`` overlap (sweep by left edge: fine for thousands)."""
    ordered = sorted(rects)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b[0] >= a[2]:
                break
            assert not overlap(a, b), (a, b)


def assert_tidy(design: Design) -> tuple[dict, dict]:
    """Lay ``design`` out and check what every layout must be: deterministic, no two shown cards
    overlapping, every shown frame holding exactly its members' cards and no other card, frames
    nested or apart."""
    nodes, groups = design_layout(design)
    assert (nodes, groups) == design_layout(design.copy())
    assert set(nodes) == set(design.nodes)
    rects = shown_rects(design, nodes, groups)
    assert_no_overlaps(list(rects.values()))
    frames = shown_frames(design, nodes, groups)
    for g, frame in frames.items():
        members = {shown_key(design, n) for n in design.group_members(g)}
        for key, rect in rects.items():
            if key in members:
                assert inside(rect, frame), (g, key)
            else:
                assert not overlap(rect, frame), (g, key)
    for (g, a), (h, b) in itertools.combinations(frames.items(), 2):
        nested = g in design.group_chain(h) or h in design.group_chain(g)
        assert nested or not overlap(a, b), (g, h)
    return nodes, groups


# --- plain designs ---------------------------------------------------------------------------


def test_a_short_chain_is_one_column_as_before():
    d = chain_design(8)
    nodes, groups = design_layout(d)
    assert nodes == {n: (0.0, i * Y_SPACING) for i, n in enumerate(d.nodes)} == layered_positions(d)
    assert groups == {}


def test_a_chain_of_a_dozen_cards_wraps_so_that_a_window_shows_them_in_full():
    d = chain_design(15)
    nodes, _ = assert_tidy(d)
    left, top, right, bottom = bounding(card_rect(p) for p in nodes.values())
    assert len({x for x, _ in nodes.values()}) == 3  # three columns of five
    assert 1.0 < (right - left) / (bottom - top) < 2.0


@pytest.mark.parametrize("make", [lambda: chain_design(1000), lambda: residual_design(250)],
                         ids=["chain_1000", "residual_1000"])
def test_a_long_design_wraps_into_landscape_columns(make):
    d = make()
    nodes, _ = assert_tidy(d)
    left, top, right, bottom = bounding(card_rect(p) for p in nodes.values())
    assert bottom - top < 12_000          # not a 140,000-pixel column
    assert 1.0 <= (right - left) / (bottom - top) <= 2.6
    assert len(column_starts(card_rect(p) for p in nodes.values())) >= 10


def test_a_column_is_cut_where_the_network_is_narrow():
    """Forty sections of three parallel branches joined by a concatenation: every cut between
    columns falls after a join, so one tensor (the join's) crosses to the next column."""
    d = Design()
    prev = d.add("InputLayer", args={"shape": (8,)}).name
    for _ in range(40):
        ends = []
        for _ in range(3):
            a = d.add("Dense", args={"units": 8}, inputs=[prev]).name
            ends.append(d.add("ReLU", inputs=[a]).name)
        prev = d.add("Concatenate", inputs=ends).name
    nodes, _ = assert_tidy(d)
    starts = column_starts(card_rect(p) for p in nodes.values())
    column_of = {n: max(i for i, s in enumerate(starts) if s <= card_rect(p)[0]) for n, p in nodes.items()}
    assert len(starts) >= 2
    crossing = {r.node for node in d for r in node.inputs if column_of[r.node] != column_of[node.name]}
    assert len(crossing) == len(starts) - 1
    assert all(d.nodes[s].kind == "Concatenate" for s in crossing)


def test_cycles_and_dangling_references_are_laid_out_without_overlap():
    d = chain_design(5)
    names = list(d.nodes)
    d.connect(names[4], names[1])        # a loop
    d.nodes[names[2]].inbound[0].append(type(d.nodes[names[2]].inputs[0])("ghost"))
    assert_tidy(d)


def test_a_thousand_layers_are_all_placed_without_overlap():
    # How fast is benchmarks/bench_layout.py's question (goal ≤ 100 ms); a test checks behaviour.
    d = residual_design(250)
    nodes, _groups = design_layout(d)
    assert set(nodes) == set(d.nodes)
    r = np.array([card_rect(p) for p in nodes.values()])  # (left, top, right, bottom)
    overlap = ((r[:, None, 0] < r[None, :, 2]) & (r[None, :, 0] < r[:, None, 2])
               & (r[:, None, 1] < r[None, :, 3]) & (r[None, :, 1] < r[:, None, 3]))
    np.fill_diagonal(overlap, False)
    assert not overlap.any()


# --- groups ------------------------------------------------------------------------------------


def test_an_expanded_group_is_a_frame_between_what_feeds_it_and_what_it_feeds():
    d = chain_design(7)
    names = list(d.nodes)
    d.set_group("g", Group("g"))
    for n in names[2:5]:
        d.set_node_group(n, "g")
    nodes, groups = assert_tidy(d)
    frame = group_frame(d, "g", nodes, groups)
    assert card_rect(nodes[names[1]])[3] < frame[1] and frame[3] < card_rect(nodes[names[5]])[1]
    # The frame: the members' cards with padding, and the header band on top.
    cards = bounding(card_rect(nodes[n]) for n in names[2:5])
    assert frame == (cards[0] - FRAME_PADDING, cards[1] - HEADER_HEIGHT - FRAME_PADDING,
                     cards[2] + FRAME_PADDING, cards[3] + FRAME_PADDING)
    # Its card, were it collapsed, sits at the frame's top-left corner.
    assert group_card_rect(groups["g"])[:2] == frame[:2]


def test_a_collapsed_group_is_one_card_in_the_flow():
    d = chain_design(10)
    names = list(d.nodes)
    d.set_group("g", Group("g", collapsed=True))
    for n in names[3:8]:
        d.set_node_group(n, "g")
    nodes, groups = assert_tidy(d)
    tops = [card_rect(nodes[n])[1] for n in names[:3]] + [group_card_rect(groups["g"])[1]]
    tops.append(card_rect(nodes[names[8]])[1])
    # One row each; the group's row is as tall as its card (taller than a layer's).
    gaps = [b - a for a, b in itertools.pairwise(tops)]
    assert gaps == [Y_SPACING] * 3 + [GROUP_CARD_HEIGHT + Y_SPACING - CARD_HEIGHT]


def test_hidden_layers_keep_their_places_relative_to_the_card():
    d = residual_design(30)
    made = group_blocks(d, 4, stage=5)
    expanded_nodes, expanded_groups = design_layout(d)
    for g in made[:3]:
        d.groups[g] = Group(g, GroupKind.BLOCK, d.groups[g].parent, collapsed=True)
    nodes, groups = assert_tidy(d)

    def offsets(ns, gs, g):
        cx, cy = gs[g]
        return {n: (ns[n][0] - cx, ns[n][1] - cy) for n in d.group_members(g)}

    for g in made[:3]:
        assert offsets(nodes, groups, g) == offsets(expanded_nodes, expanded_groups, g)
        # Expanding grows the group from its card's top-left corner.
        frame = group_frame(d, g, nodes)
        assert frame[:2] == group_card_rect(groups[g])[:2]


def test_nested_groups_collapsed_and_expanded_are_tidy():
    d = residual_design(120)
    made = group_blocks(d, 4, stage=6)
    assert_tidy(d)
    for i, g in enumerate(made):  # a mixture: some collapsed blocks in expanded stages
        if i % 3 == 0:
            d.groups[g] = Group(g, GroupKind.BLOCK, d.groups[g].parent, collapsed=True)
    assert_tidy(d)
    for s in [g for g in d.groups if g.startswith("stage")][::2]:  # and some collapsed stages
        d.groups[s] = Group(s, GroupKind.BLOCK, None, collapsed=True)
    _, groups = assert_tidy(d)
    assert set(groups) == set(d.groups)


def test_every_block_collapsed_shows_a_short_design():
    d = residual_design(250)
    group_blocks(d, 4, collapsed=True, stage=10)
    for s in [g for g in d.groups if g.startswith("stage")]:
        d.groups[s] = Group(s, GroupKind.BLOCK, None, collapsed=True)
    nodes, groups = assert_tidy(d)
    shown = shown_rects(d, nodes, groups)
    assert len(shown) == 1 + 25
    _, top, _, bottom = bounding(shown.values())
    assert bottom - top <= WRAP_HEIGHT + CARD_HEIGHT


def test_apply_design_layout_places_layers_and_group_cards():
    d = residual_design(40)
    group_blocks(d, 4, collapsed=True)
    nodes, groups = design_layout(d)
    apply_design_layout(d)
    assert {n.name: n.position for n in d} == nodes
    assert {g: v.position for g, v in d.groups.items()} == groups


def test_an_empty_group_gets_no_position_and_a_loop_of_groups_does_not_hang():
    d = chain_design(6)
    names = list(d.nodes)
    d.set_group("empty", Group("empty"))
    d.groups["a"] = Group("a", parent="b")    # a loop no edit can make, from a hand-edited file
    d.groups["b"] = Group("b", parent="a")
    d.set_node_group(names[2], "a")
    d.set_node_group(names[3], "b")
    nodes, groups = design_layout(d)
    assert "empty" not in groups and set(nodes) == set(names)
    rects = shown_rects(d, nodes, groups)
    assert_no_overlaps(list(rects.values()))


# --- routing -----------------------------------------------------------------------------------


def _cards_at(centres) -> list[Rect]:
    return [card_rect(c) for c in centres]


def _assert_clear(path, rects):
    for a, b in itertools.pairwise(path):
        for r in rects:
            assert not segment_crosses(a, b, r), (a, b, r)


def test_a_connection_to_the_top_of_the_next_column_runs_along_the_gap():
    left = [(0.0, i * Y_SPACING) for i in range(8)]
    right = [(420.0, i * Y_SPACING) for i in range(8)]
    source, target = left[-1], right[0]
    others = _cards_at(left[:-1] + right[1:])
    start = (source[0], source[1] + CARD_HEIGHT / 2)
    end = (target[0], target[1] - CARD_HEIGHT / 2)
    path = route(start, end, others)
    assert path[0] == start and path[-1] == end
    assert path[1][1] > start[1]                 # out below the source
    assert path[-2][1] < end[1]                  # into the top of the target
    assert CARD_WIDTH / 2 < path[2][0] < 420 - CARD_WIDTH / 2   # along the gap between columns
    _assert_clear(path, others)
    # The same with the columns the other way round (the next column on the left).
    path = route((420.0, start[1]), (0.0, end[1]), _cards_at(right[:-1] + left[1:]))
    _assert_clear(path, _cards_at(right[:-1] + left[1:]))


def test_a_connection_down_past_a_wider_card_takes_the_detour():
    """A straight lane beside the source row is blocked by a tall box: the orthogonal detour is
    found instead, clear of every card."""
    box = (-400.0, -48.0, 200.0, 600.0)          # a tall expanded frame right of the source
    blocker = card_rect((0.0, 300.0))
    start, end = (-500.0, 48.0), (0.0, 700.0)
    path = route(start, end, [box, blocker])
    _assert_clear(path, [box, blocker])


def test_downward_routes_are_unchanged():
    column = [(-95.0, y - 48, 95.0, y + 48) for y in (140.0, 280.0, 420.0)]
    path = route((0.0, 48.0), (0.0, 512.0), column)
    assert len(path) == 4 and path[1][0] == path[2][0] and abs(path[1][0]) > 95
    assert route((0.0, 48.0), (0.0, 92.0), column) == [(0.0, 48.0), (0.0, 92.0)]


@pytest.mark.parametrize("grouped", [False, True])
def test_every_connection_of_a_wrapped_design_is_routed_clear_of_cards(grouped):
    d = residual_design(90)                      # 361 layers: several columns
    if grouped:
        made = group_blocks(d, 4, stage=6)
        for g in made[::2]:
            d.groups[g] = Group(g, GroupKind.BLOCK, d.groups[g].parent, collapsed=True)
    nodes, groups = assert_tidy(d)
    rects = shown_rects(d, nodes, groups)
    assert len(column_starts(rects.values())) > 3
    for node in d:
        for ref in node.inputs:
            a, b = shown_key(d, ref.node), shown_key(d, node.name)
            if a == b:
                continue
            ra, rb = rects[a], rects[b]
            start, end = ((ra[0] + ra[2]) / 2, ra[3]), ((rb[0] + rb[2]) / 2, rb[1])
            others = [r for k, r in rects.items() if k not in (a, b)]
            path = route(start, end, others)
            box = bounding([(min(p[0] for p in path), min(p[1] for p in path),
                             max(p[0] for p in path), max(p[1] for p in path))])
            _assert_clear(path, [r for r in others if overlap(r, (box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1))])


def test_routing_through_a_card_index_gives_the_same_paths_as_a_list_of_cards():
    """The canvas routes every connection through one CardIndex, skipping the connection's own
    two cards: the path is the one routing around the list of the other cards gives, also for
    the detours to the next column; ``rows`` leaves out the cards above and below the rows
    between the ends, as a list of the cards in those rows does."""
    d = residual_design(90)
    nodes, groups = design_layout(d)
    rects = shown_rects(d, nodes, groups)
    index = CardIndex(rects)
    assert len(index) == len(rects)
    detours = 0
    for node in d:
        for ref in node.inputs:
            a, b = shown_key(d, ref.node), shown_key(d, node.name)
            if a == b:
                continue
            ra, rb = rects[a], rects[b]
            start, end = ((ra[0] + ra[2]) / 2, ra[3]), ((rb[0] + rb[2]) / 2, rb[1])
            others = [r for k, r in rects.items() if k not in (a, b)]
            path = route(start, end, index, skip=(a, b))
            assert path == route(start, end, others)
            detours += len(path) > 4
            low, high = min(start[1], end[1]) - CLEARANCE, max(start[1], end[1]) + CLEARANCE
            band = [r for r in others if r[3] > low and r[1] <= high]
            assert route(start, end, index, skip=(a, b), rows=(low, high)) == route(start, end, band)
    assert detours > 0                           # the columns' detours were compared too


def test_a_card_index_finds_every_card_overlapping_a_box():
    cards = [(float(x), float(y), x + 190.0, y + 96.0) for x in range(-2000, 2000, 230) for y in range(-900, 900, 140)]
    index = CardIndex(cards)
    for box in [(-50.0, -50.0, 50.0, 50.0), (-3000.0, 10.0, 3000.0, 10.0), (0.0, -5000.0, 0.0, 5000.0),
                (-10_000.0, -10_000.0, 10_000.0, 10_000.0), (5000.0, 5000.0, 6000.0, 6000.0)]:
        near = set(index.near(*box))
        touching = {i for i, r in enumerate(cards)
                    if r[0] <= box[2] and r[2] >= box[0] and r[1] <= box[3] and r[3] >= box[1]}
        assert touching <= near


# --- any design, any groups ----------------------------------------------------------------------


@st.composite
def grouped_designs(draw: st.DrawFn) -> Design:
    """A random DAG (one or two inputs per layer, often from far back) with random nested groups
    of consecutive layers, which may not be convex (a group then feeds itself through a layer
    outside it: the units form a cycle), each collapsed or not."""
    layers = draw(st.integers(2, 70))
    d = Design()
    names = [d.add("InputLayer", args={"shape": (8,)}).name]
    for i in range(1, layers):
        sources = draw(st.lists(st.integers(0, i - 1), min_size=1, max_size=2, unique=True))
        names.append(d.add("Dense", args={"units": 8}, inputs=[names[s] for s in sources]).name)

    def split(lo: int, hi: int, parent: str | None, depth: int) -> None:
        at = lo
        while at < hi and depth < 3:
            size = draw(st.integers(1, max(1, (hi - lo) // 2 + 1)))
            if draw(st.booleans()):
                g = f"g{len(d.groups)}"
                d.set_group(g, Group(g, GroupKind.USER, parent, collapsed=draw(st.booleans())))
                for n in names[at:min(hi, at + size)]:
                    d.set_node_group(n, g)
                split(at, min(hi, at + size), g, depth + 1)
            at += size

    split(1, layers, None, 0)
    return d


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grouped_designs())
def test_any_grouped_design_is_laid_out_tidily(design):
    _, groups = assert_tidy(design)
    assert set(groups) == {g for g in design.groups if design.group_members(g)}
