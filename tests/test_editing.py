"""Edits as invertible ops: every plan applied and undone gives back the exact design."""

from __future__ import annotations

import copy
import itertools

import pytest

from engine.analysis import analyse
from engine.design import Design, TensorRef, chain
from engine.editing import (
    AddNode,
    Connect,
    Move,
    Rename,
    SetArg,
    apply_all,
    plan_add,
    plan_append_after,
    plan_delete,
    plan_fix,
    plan_insert_on_edge,
    plan_paste,
)
from engine.layout import layered_positions

SEED = [("InputLayer", {"shape": (28, 28, 1)}), ("Conv2D", {"filters": 32, "kernel_size": 3}),
        ("MaxPooling2D", {}), ("Flatten", {}), ("Dense", {"units": 10})]


def roundtrip(design: Design, ops) -> Design:
    """Apply ops, undo them, and check the design is back exactly; return the edited design."""
    before = copy.deepcopy(design)
    inverses = apply_all(design, ops)
    after = copy.deepcopy(design)
    apply_all(design, inverses)
    assert design.nodes == before.nodes and list(design.nodes) == list(before.nodes)
    assert design.outputs == before.outputs
    apply_all(design, ops)
    assert design.nodes == after.nodes
    return design


def test_insert_on_edge_keeps_chain_and_slot():
    d = chain(*SEED)
    roundtrip(d, plan_insert_on_edge(d, "BatchNormalization", TensorRef("conv2d"), "max_pooling2d"))
    assert d.nodes["batch_normalization"].inputs == [TensorRef("conv2d")]
    assert d.nodes["max_pooling2d"].inputs == [TensorRef("batch_normalization")]
    assert analyse(d).valid


def test_insert_on_second_input_of_a_merge_keeps_input_order():
    d = Design()
    d.add("InputLayer", "x", {"shape": (8, 8, 4)})
    d.add("Conv2D", "a", {"filters": 4, "kernel_size": 1}, inputs=["x"])
    d.add("Conv2D", "b", {"filters": 4, "kernel_size": 1}, inputs=["x"])
    d.add("Subtract", "sub", inputs=["a", "b"])
    roundtrip(d, plan_insert_on_edge(d, "ReLU", TensorRef("a"), "sub"))
    assert d.nodes["sub"].inputs == [TensorRef("re_lu"), TensorRef("b")]


def test_append_after_rewires_followers():
    d = chain(*SEED)
    roundtrip(d, plan_append_after(d, "Dropout", "flatten"))
    assert d.nodes["dropout"].inputs == [TensorRef("flatten")]
    assert d.nodes["dense"].inputs == [TensorRef("dropout")]


def test_delete_middle_of_chain_reconnects_neighbours_and_undo_restores():
    d = chain(*SEED)
    roundtrip(d, plan_delete(d, ["max_pooling2d"]))
    assert "max_pooling2d" not in d.nodes
    assert d.nodes["flatten"].inputs == [TensorRef("conv2d")]
    d = chain(*SEED)
    roundtrip(d, plan_delete(d, ["conv2d", "max_pooling2d"]))
    assert d.nodes["flatten"].inputs == [TensorRef("input_layer")]


def test_delete_edge_only():
    d = chain(*SEED)
    roundtrip(d, plan_delete(d, [], [(TensorRef("flatten"), "dense", 0)]))
    assert d.nodes["dense"].inputs == []


def test_fix_set_padding_and_insert_flatten():
    d = chain(("InputLayer", {"shape": (4, 4, 1)}), ("Conv2D", {"filters": 2, "kernel_size": 5}))
    problem = analyse(d).errors[0]
    roundtrip(d, plan_fix(d, "conv2d", problem.fixes[0]))
    assert analyse(d).valid and d.nodes["conv2d"].args["padding"] == "same"
    d = chain(("InputLayer", {"shape": (4, 4, 1)}), ("Dense", {"units": 3}))
    warning = analyse(d).warnings[0]
    roundtrip(d, plan_fix(d, "dense", warning.fixes[0]))
    assert analyse(d).nodes["dense"].output_shape == (None, 3)


def test_projection_fix_makes_an_add_valid():
    d = Design()
    d.add("InputLayer", "x", {"shape": (8, 8, 3)})
    d.add("Conv2D", "a", {"filters": 16, "kernel_size": 3, "padding": "same"}, inputs=["x"])
    d.add("Add", "add", inputs=["a", "x"])
    fix = analyse(d).errors[0].fixes[0]
    roundtrip(d, plan_fix(d, "add", fix))
    assert analyse(d).valid


def test_simple_ops_and_paste_roundtrip():
    d = chain(*SEED)
    roundtrip(d, [SetArg("conv2d", "filters", 8), Rename("dense", "logits"), Move("flatten", (5.0, 6.0)),
                  SetArg("conv2d", "padding", None, unset=True)])
    assert d.nodes["logits"].inputs == [TensorRef("flatten")]
    ops, names = plan_paste(d, [copy.deepcopy(d.nodes["conv2d"]), copy.deepcopy(d.nodes["max_pooling2d"])])
    roundtrip(d, ops)
    assert names == ["conv2d_1", "max_pooling2d_1"]
    assert d.nodes["max_pooling2d_1"].inputs == [TensorRef("conv2d_1")]
    assert d.nodes["conv2d_1"].inputs == []


def test_add_and_connect_ops():
    d = chain(*SEED)
    ops = plan_add(d, "Conv2D", (0.0, 0.0))
    assert isinstance(ops[0], AddNode) and ops[0].args["filters"] == 32
    roundtrip(d, ops + [Connect(TensorRef("input_layer"), ops[0].name)])
    assert analyse(d).nodes[ops[0].name].output_shape == (None, 26, 26, 32)


def test_layered_layout_ranks_top_to_bottom_and_spreads_branches():
    d = Design()
    d.add("InputLayer", "x", {"shape": (8, 8, 3)})
    d.add("Conv2D", "a", {"filters": 3, "kernel_size": 1}, inputs=["x"])
    d.add("Conv2D", "b", {"filters": 3, "kernel_size": 1}, inputs=["x"])
    d.add("Add", "add", inputs=["a", "b", "x"])
    pos = layered_positions(d)
    assert pos["x"][1] < pos["a"][1] == pos["b"][1] < pos["add"][1]
    assert pos["a"][0] != pos["b"][0]


# ------------------------------------------------------------------------- one-click merge fixes

def _merge(kind: str, branch: list[tuple[str, dict]], shape=(28, 28, 8)) -> Design:
    """x → branch… → merge(branch end, x): the skip input is x itself."""
    d = Design()
    d.add("InputLayer", "x", {"shape": shape}, position=(0.0, 0.0))
    previous = "x"
    for i, (k, args) in enumerate(branch):
        d.add(k, f"b{i}", args, [previous], position=(0.0, 140.0 * (i + 1)))
        previous = f"b{i}"
    d.add(kind, "merge", {}, [previous, "x"], position=(0.0, 140.0 * (len(branch) + 1)))
    return d


def _apply_each_fix(d: Design) -> list[str]:
    """Apply every fix of the merge's error in turn (each on a fresh copy): the merge becomes valid,
    and undo gives back the original design exactly. Returns the fix labels."""
    (err,) = analyse(d).errors
    assert err.node == "merge" and err.fixes, err.message
    for fix in err.fixes:
        edited = copy.deepcopy(d)
        roundtrip(edited, plan_fix(edited, "merge", fix))
        after = analyse(edited)
        assert after.valid, (fix.label, [str(p) for p in after.errors])
    return [f.label for f in err.fixes]


MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]


@pytest.mark.parametrize("kind", MERGES)
def test_a_branch_shrunk_by_valid_padding_gets_padding_same_upstream(kind):
    d = _merge(kind, [("Conv2D", {"filters": 8, "kernel_size": 3}), ("ReLU", {})])
    labels = _apply_each_fix(d)
    assert labels[0] == "Set padding='same' on b0"
    fix = analyse(d).errors[0].fixes[0]
    assert plan_fix(d, "merge", fix) == [SetArg("b0", "padding", "same")]


@pytest.mark.parametrize("kind", MERGES)
def test_a_larger_input_gets_pooling_or_a_strided_projection(kind):
    d = _merge(kind, [("MaxPooling2D", {"pool_size": 2})])
    labels = _apply_each_fix(d)
    assert "Insert MaxPooling2D(pool_size=(2, 2))" in labels
    if kind != "Concatenate":
        assert "Insert Conv2D(filters=8, kernel_size=(1, 1), strides=(2, 2))" in labels


@pytest.mark.parametrize("kind", [k for k in MERGES if k != "Concatenate"])
def test_other_channels_get_a_projection_and_size_with_it(kind):
    d = _merge(kind, [("Conv2D", {"filters": 16, "kernel_size": 1})])
    assert _apply_each_fix(d) == ["Insert Conv2D(filters=16, kernel_size=(1, 1))"]
    d = _merge(kind, [("Conv2D", {"filters": 16, "kernel_size": 3, "strides": 2, "padding": "same"})])
    assert _apply_each_fix(d) == ["Insert Conv2D(filters=16, kernel_size=(1, 1), strides=(2, 2))"]


def test_vectors_of_other_lengths_get_a_dense_layer():
    d = _merge("Add", [("Flatten", {}), ("Dense", {"units": 10})], shape=(4,))
    d.nodes["merge"].inbound[0][1] = TensorRef("b0")   # Add(dense(10), flatten(4))
    assert _apply_each_fix(d) == ["Insert Dense(units=10)"]


def test_sizes_no_fix_can_match_are_explained_without_promises():
    d = Design()
    d.add("InputLayer", "x", {"shape": (28, 28, 8)})
    d.add("InputLayer", "y", {"shape": (27, 27, 8)})
    d.add("Add", "merge", {}, ["x", "y"])
    (err,) = analyse(d).errors
    assert err.fixes == ()
    assert "Cropping2D or ZeroPadding2D" in err.message and "pool" not in err.message


FIXABLE = {
    "kernel too large": [("InputLayer", {"shape": (6, 9, 1)}), ("Conv2D", {"filters": 2, "kernel_size": 8})],
    "dilated kernel too large": [("InputLayer", {"shape": (9, 9, 1)}),
                                 ("Conv2D", {"filters": 2, "kernel_size": 3, "dilation_rate": 5})],
    "pool too large": [("InputLayer", {"shape": (3, 3, 1)}), ("MaxPooling2D", {"pool_size": 4})],
    "missing channel axis": [("InputLayer", {"shape": (28, 28)}), ("Conv2D", {"filters": 2, "kernel_size": 3})],
}


@pytest.mark.parametrize("case", sorted(FIXABLE))
def test_every_offered_fix_repairs_the_layer(case):
    d = chain(*FIXABLE[case])
    (err,) = analyse(d).errors
    assert err.fixes
    for fix in err.fixes:
        edited = copy.deepcopy(d)
        roundtrip(edited, plan_fix(edited, err.node, fix))
        assert analyse(edited).valid, (case, fix.label, [str(p) for p in analyse(edited).errors])


@pytest.mark.parametrize("shape, pooling", [((4, 4, 3), "GlobalAveragePooling2D"),
                                            ((4, 4, 4, 3), "GlobalAveragePooling3D")])
def test_dense_on_images_or_volumes_offers_the_pooling_of_that_rank(shape, pooling):
    d = chain(("InputLayer", {"shape": shape}), ("Dense", {"units": 3}))
    (warning,) = analyse(d).warnings
    assert [f.layer for f in warning.fixes] == ["Flatten", pooling]
    assert f"Flatten or {pooling} first" in warning.message
    for fix in warning.fixes:
        edited = copy.deepcopy(d)
        roundtrip(edited, plan_fix(edited, "dense", fix))
        assert analyse(edited).nodes["dense"].output_shape == (None, 3)


# ------------------------------------------------------------- placement and connection rules

def _laid_out_seed() -> Design:
    from engine.layout import apply_layout

    d = chain(*SEED)
    apply_layout(d)
    return d


def test_place_on_an_edge_inserts_straight_below_and_makes_room():
    from engine.editing import ROW, OnEdge, plan_place

    d = _laid_out_seed()
    conv, pool = d.nodes["conv2d"].position, d.nodes["max_pooling2d"].position
    plan = plan_place(d, "BatchNormalization", OnEdge(TensorRef("conv2d"), "max_pooling2d"), (conv[0] + 7, conv[1] + 3))
    assert plan.text == "Insert BatchNormalization" and plan.name == "batch_normalization"
    roundtrip(d, plan.ops)
    assert d.nodes["max_pooling2d"].inputs == [TensorRef("batch_normalization")]
    assert d.nodes["batch_normalization"].position == (conv[0], conv[1] + ROW)  # the chain stays straight
    assert d.nodes["max_pooling2d"].position == (pool[0], pool[1] + ROW)     # and moved down a row
    assert d.nodes["dense"].position[1] == d.nodes["flatten"].position[1] + ROW


def test_place_on_a_layer_appends_after_it_one_row_down():
    from engine.editing import ROW, OnNode, plan_place

    d = _laid_out_seed()
    flatten = d.nodes["flatten"].position
    plan = plan_place(d, "Dropout", OnNode("flatten"), (999.0, 999.0))
    assert plan.text == "Add Dropout after flatten"
    roundtrip(d, plan.ops)
    assert d.nodes["dropout"].inputs == [TensorRef("flatten")]
    assert d.nodes["dense"].inputs == [TensorRef("dropout")]
    assert d.nodes["dropout"].position == (flatten[0], flatten[1] + ROW)
    assert d.nodes["dense"].position[1] == flatten[1] + 2 * ROW


def test_place_at_a_point_adds_a_lone_layer_and_inputs_never_attach():
    from engine.editing import EditRefused, OnEdge, OnNode, attaches, plan_place

    d = _laid_out_seed()
    plan = plan_place(d, "Dense", (400.4, 99.6))
    roundtrip(d, plan.ops)
    assert d.nodes[plan.name].inputs == [] and d.nodes[plan.name].position == (400.0, 100.0)
    assert not attaches("InputLayer") and not attaches("NoSuchLayer") and attaches("Conv2D")
    for target in (OnNode("flatten"), OnEdge(TensorRef("flatten"), "dense")):
        plan = plan_place(d, "InputLayer", target, (10.0, 20.0))
        assert len(plan.ops) == 1 and plan.ops[0].position == (10.0, 20.0)
    with pytest.raises(EditRefused, match="does not know the layer type 'NoSuchLayer'"):
        plan_place(d, "NoSuchLayer", (0.0, 0.0))
    with pytest.raises(EditRefused, match="does not feed"):
        plan_place(d, "ReLU", OnEdge(TensorRef("conv2d"), "dense"))


@pytest.mark.parametrize("source, target, why", [
    ("conv2d", "conv2d", "conv2d cannot feed itself"),
    ("dense", "input_layer", "input_layer is an input layer"),
    ("input_layer", "conv2d", "input_layer already feeds conv2d"),
    ("dense", "conv2d", "conv2d already feeds dense; connecting dense → conv2d would make a loop"),
])
def test_connections_the_rules_refuse(source, target, why):
    from engine.editing import EditRefused, connection_refused, plan_connect

    d = chain(*SEED)
    assert connection_refused(d, source, target).startswith(why)
    with pytest.raises(EditRefused, match=why.split(";")[0]):
        plan_connect(d, source, target)


def test_connect_replaces_a_single_input_and_fills_a_merge():
    from engine.editing import EditRefused, plan_connect

    d = chain(*SEED)
    plan = plan_connect(d, "conv2d", "flatten")
    assert plan.note == "flatten now reads conv2d instead of max_pooling2d"
    roundtrip(d, plan.ops)
    assert d.nodes["flatten"].inputs == [TensorRef("conv2d")]
    d.add("Subtract", "sub")
    for source in ("dense", "flatten"):
        plan = plan_connect(d, source, "sub")
        assert plan.note is None
        roundtrip(d, plan.ops)
    assert d.nodes["sub"].inputs == [TensorRef("dense"), TensorRef("flatten")]
    with pytest.raises(EditRefused, match=r"sub \(Subtract\) takes 2 inputs and has them all"):
        plan_connect(d, "conv2d", "sub")


# ------------------------------------------------------------------ skip connections after layout

CARD = (190.0, 96.0)   # a canvas card, centred on its position (gui.canvas.node_item WIDTH × HEIGHT)
PORT_SPAN = 190.0 - 2 * 22.0   # input ports spread over the top edge, clear of the corners


def _port_x(design: Design, name: str, slot: int) -> float:
    """Where input ``slot`` meets the card, as the canvas draws it: one port per input, plus a
    free one while the layer takes more."""
    from engine.layers import CATALOGUE

    node = design.nodes[name]
    limit = CATALOGUE[node.kind].max_inputs
    n = len(node.inputs) + (1 if limit is None or len(node.inputs) < limit else 0)
    return 0.0 if n <= 1 else -PORT_SPAN / 2 + PORT_SPAN * slot / (n - 1)


def _crossings(design: Design, pos: dict | None = None) -> list[tuple[str, str, str]]:
    """(source, target, card) for each connection that, placed at ``pos`` (by default the layered
    layout) and routed by :func:`engine.layout.route` as the canvas does, has a straight piece
    through another card."""
    from engine.layout import route, segment_crosses

    pos = pos or layered_positions(design)
    w, h = CARD
    rects = {n: (x - w / 2, y - h / 2, x + w / 2, y + h / 2) for n, (x, y) in pos.items()}
    found = []
    for node in design:
        for slot, ref in enumerate(node.inputs):
            (sx, sy), (tx, ty) = pos[ref.node], pos[node.name]
            others = {n: r for n, r in rects.items() if n not in (ref.node, node.name)}
            path = route((sx, sy + h / 2), (tx + _port_x(design, node.name, slot), ty - h / 2), others.values())
            for a, b in itertools.pairwise(path):
                found += [(ref.node, node.name, n) for n, r in others.items() if segment_crosses(a, b, r)]
    return found


def test_layout_keeps_the_resnet_skip_connection_clear_of_cards():
    from engine.examples import load_example
    from engine.layout import route

    design = load_example("resnet_block")
    pos = layered_positions(design)
    assert pos["add"][1] - pos["stem"][1] > 2 * 140   # a long edge: it spans several ranks
    assert _crossings(design) == []
    # The layout gives the skip connection a lane of its own: it runs straight, no detour needed.
    w, h = CARD
    cards = [(x - w / 2, y - h / 2, x + w / 2, y + h / 2) for n, (x, y) in pos.items() if n not in ("stem", "add")]
    start = (pos["stem"][0], pos["stem"][1] + h / 2)
    end = (pos["add"][0] + _port_x(design, "add", 1), pos["add"][1] - h / 2)
    assert route(start, end, cards) == [start, end]


def test_a_connection_behind_cards_is_routed_beside_them():
    from engine.layout import route, segment_crosses

    column = [(-95.0, y - 48, 95.0, y + 48) for y in (140.0, 280.0, 420.0)]
    path = route((0.0, 48.0), (0.0, 512.0), column)
    assert len(path) == 4 and path[1][0] == path[2][0] and abs(path[1][0]) > 95
    assert not any(segment_crosses(a, b, r) for a, b in itertools.pairwise(path) for r in column)
    assert route((0.0, 48.0), (0.0, 92.0), column) == [(0.0, 48.0), (0.0, 92.0)]   # next rank: straight


@pytest.mark.parametrize("skip", [2, 3, 5])
def test_layout_gives_every_long_edge_a_lane(skip):
    d = chain(("InputLayer", {"shape": (8, 8, 3)}), *[("ReLU", {})] * skip)
    last = list(d.nodes)[-1]
    d.add("Add", "add", inputs=[last, "input_layer"])
    d.add("Concatenate", "cat", inputs=["add", list(d.nodes)[2]])
    assert _crossings(d) == []
    # Moved by hand into one column, the cards are still passed beside, never through.
    assert _crossings(d, {n: (0.0, 140.0 * i) for i, n in enumerate(d.nodes)}) == []
