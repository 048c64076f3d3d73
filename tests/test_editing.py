"""Edits as invertible ops: every plan applied and undone gives back the exact design."""

from __future__ import annotations

import copy

from engine.analysis import analyse
from engine.design import Design, TensorRef, chain
from engine.editing import (
    AddNode, Connect, Move, Rename, SetArg, apply_all, plan_add, plan_append_after, plan_delete,
    plan_fix, plan_insert_on_edge, plan_paste,
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
