"""An incremental analysis (``analyse(..., previous=, touched=)``) equals a full one, exactly.

Hypothesis draws a random design (tests/strategies.py), analyses it, then makes a few rounds of
random edits (arguments set to good and bad values, layers inserted, appended, deleted and
renamed, connections added and removed, cycles made, cards moved) as the designer makes them,
as engine ops. After each round the incremental analysis from the previous one must equal a full
analysis of the edited design (every report, every problem in order, outputs and peak memory),
and every report it did not list in ``changes`` must be the previous analysis's own object.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.analysis import Analysis, analyse
from engine.design import Design, DesignError, TensorRef, chain
from engine.editing import (
    AddNode, Connect, Disconnect, Move, Op, RemoveNode, Rename, SetArg, apply_op,
    plan_append_after, plan_delete, plan_insert_on_edge, plan_set_trainable, touched_by as editing_touched_by,
)
from engine.layers import CATALOGUE
from engine.pixel_range import PixelRange

from strategies import designs

_VALUES: tuple[Any, ...] = (1, 2, 3, 5, 0, -1, (2, 2), (3, 1), (1, 1, 1), "same", "valid", None, True, False,
                            0.5, "relu", (4, 4, 3), (6,), (5, 2), 1 / 255)
_KINDS = ("Dense", "Conv2D", "ReLU", "Dropout", "MaxPooling2D", "Flatten", "BatchNormalization", "Add",
          "Rescaling", "Conv1D")


def touched_by(design: Design, op: Op) -> set[str]:
    """:func:`engine.editing.touched_by` (what ``Document.apply`` records), never None here:
    every op these tests make is one it knows."""
    touched = editing_touched_by(design, op)
    assert touched is not None, op
    return touched


def _edges(design: Design) -> list[tuple[TensorRef, str, int]]:
    return [(ref, node.name, c) for node in design for c, refs in enumerate(node.inbound) for ref in refs]


def _random_ops(data: st.DataObject, design: Design) -> list[Op]:
    """One random edit, as the designer would make it (a plan of ops, possibly refused: [])."""
    names = list(design.nodes)
    if not names:
        return []
    what = data.draw(st.sampled_from(["arg", "arg", "arg", "unset", "insert", "append", "delete", "connect",
                                      "disconnect", "rename", "move", "undo-delete", "unsupported", "freeze"]))
    pick = data.draw(st.sampled_from(names))
    node = design.nodes[pick]
    if what in ("arg", "unset"):
        spec = CATALOGUE.get(node.kind)
        args = [p.name for p in spec.params] if spec is not None else []
        arg = data.draw(st.sampled_from(args + ["bogus"]))
        if what == "unset":
            return [SetArg(pick, arg, None, unset=True)]
        return [SetArg(pick, arg, data.draw(st.sampled_from(_VALUES)))]
    if what == "insert":
        edges = _edges(design)
        if not edges:
            return []
        source, target, call = data.draw(st.sampled_from(edges))
        return plan_insert_on_edge(design, data.draw(st.sampled_from(_KINDS)), source, target, call)
    if what == "append":
        return plan_append_after(design, data.draw(st.sampled_from(_KINDS)), pick)
    if what in ("delete", "undo-delete"):
        return plan_delete(design, [pick])
    if what == "unsupported":  # an imported layer Convas does not know, its output maybe recorded
        shape = data.draw(st.sampled_from([[None, 4], [None, 3, 3, 2], [None, 0], "bad", None]))
        name = design.unique_name("Swirl")
        marker = {"module": None, "class_name": "Swirl", "reason": "a custom layer class", "output_shapes": [shape]}
        return [AddNode("Swirl", name, config={"unsupported": marker}), Connect(TensorRef(pick, 0), name)]
    if what == "connect":
        source = data.draw(st.sampled_from(names))
        return [Connect(TensorRef(source, 0), pick)]  # cycles and self-loops included
    if what == "disconnect":
        edges = _edges(design)
        if not edges:
            return []
        source, target, call = data.draw(st.sampled_from(edges))
        return [Disconnect(source, target, call)]
    if what == "rename":
        return [Rename(pick, data.draw(st.sampled_from([f"{pick}_x", "bad name", names[0]])))]
    if what == "freeze":  # a frozen layer's weights count as non-trainable
        chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
        return plan_set_trainable(design, chosen, data.draw(st.booleans()))
    return [Move(pick, (1.0, 2.0))]


def apply_edit(design: Design, ops: list[Op]) -> tuple[set[str], list[Op]]:
    """Apply ``ops`` as one step; the touched names and the inverse ops (in undo order)."""
    touched: set[str] = set()
    inverses: list[Op] = []
    for op in ops:
        touched |= touched_by(design, op)
        try:
            inverses.append(apply_op(design, op))
        except DesignError:  # a refused op (a name taken) changes nothing, as in the designer
            continue
    return touched, inverses[::-1]


def check_same(design: Design, previous: Analysis, touched: set[str], batch: int,
               pixel_range: PixelRange | None) -> Analysis:
    incremental = analyse(design, batch, pixel_range, previous=previous, touched=touched)
    full = analyse(design, batch, pixel_range)
    assert incremental.problems == full.problems
    assert incremental.nodes == full.nodes
    assert incremental == full
    assert list(incremental.nodes) == list(full.nodes)
    for total in ("trainable_params", "non_trainable_params", "macs", "activation_bytes", "peak_inference_bytes"):
        assert getattr(incremental, total) == getattr(full, total)
    assert incremental.changes is not None and incremental.changes.since == previous.serial
    for name, rep in incremental.nodes.items():
        if name not in incremental.changes.nodes:
            assert rep is previous.nodes[name], f"{name} changed but is not listed in changes"
    return incremental


@settings(max_examples=int(os.environ.get("CONVAS_INCREMENTAL_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(design=designs(), data=st.data())
def test_incremental_analysis_equals_a_full_one(design: Design, data: st.DataObject) -> None:
    pixel_range = data.draw(st.sampled_from([None, PixelRange.UNIT, PixelRange.RAW]))
    batch = data.draw(st.sampled_from([1, 32]))
    analysis = analyse(design, batch, pixel_range)
    for _ in range(data.draw(st.integers(1, 4))):
        if data.draw(st.integers(0, 9)) == 0:  # the Train panel switched the data's range
            pixel_range = data.draw(st.sampled_from([None, PixelRange.UNIT, PixelRange.RAW]))
        ops = _random_ops(data, design)
        touched, inverses = apply_edit(design, ops)
        analysis = check_same(design, analysis, touched, batch, pixel_range)
        if data.draw(st.booleans()):  # and undo it, as Ctrl+Z does
            touched, _redo = apply_edit(design, inverses)
            analysis = check_same(design, analysis, touched, batch, pixel_range)


def conv_stack(layers: int) -> Design:
    d = Design(name=f"stack_{layers}")
    prev = d.add("InputLayer", args={"shape": (16, 16, 4)}).name
    kinds = [("Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same"}), ("BatchNormalization", {}),
             ("ReLU", {})]
    for i in range(layers - 1):
        kind, args = kinds[i % 3]
        prev = d.add(kind, args=args, inputs=[prev]).name
    return d


def test_an_edit_that_changes_a_few_shapes_redoes_only_those_layers() -> None:
    design = conv_stack(300)
    before = analyse(design)
    convs = [n.name for n in design if n.kind == "Conv2D"]
    middle = convs[len(convs) // 2]
    apply_op(design, SetArg(middle, "filters", 9))
    after = check_same(design, before, {middle}, 1, None)
    assert after.changes is not None
    # The conv, its BatchNormalization and ReLU (9 channels now) and the next conv (its weights):
    # that one's output is 4 channels again, so nothing further down is analysed again.
    i = list(design.nodes).index(middle)
    assert after.changes.nodes == set(list(design.nodes)[i:i + 4])
    assert after.nodes[middle].output_shape == (None, 16, 16, 9)
    assert after.total_params != before.total_params


def test_an_edit_of_the_receptive_field_redoes_everything_downstream_only() -> None:
    design = conv_stack(30)
    before = analyse(design)
    convs = [n.name for n in design if n.kind == "Conv2D"]
    apply_op(design, SetArg(convs[3], "kernel_size", 5))
    after = check_same(design, before, {convs[3]}, 1, None)
    assert after.changes is not None
    i = list(design.nodes).index(convs[3])
    assert after.changes.nodes == set(list(design.nodes)[i:])


def test_a_move_or_nothing_redoes_nothing_and_changed_since_says_so() -> None:
    design = conv_stack(10)
    before = analyse(design)
    apply_op(design, Move("conv2d", (5.0, 5.0)))
    after = check_same(design, before, set(), 1, None)
    assert after.changes is not None and after.changes.nodes == frozenset()
    assert after.changed_since(before) == frozenset()
    assert after.changed_since(after) == frozenset()
    assert after.changed_since(None) is None
    assert analyse(design).changed_since(before) is None  # a full analysis: anything may differ


def test_an_invalid_merge_keeps_its_padding_fix_after_unrelated_edits() -> None:
    design = chain(("InputLayer", {"shape": (8, 8, 2)}), ("Conv2D", {"filters": 2, "kernel_size": 3}))
    design.add("Add", "add", inputs=["input_layer", "conv2d"])
    design.add("Dense", "head", {"units": 3}, inputs=["add"])
    before = analyse(design)
    assert [f.node for p in before.nodes["add"].errors for f in p.fixes] == ["conv2d"]
    apply_op(design, SetArg("head", "units", 4))
    check_same(design, before, {"head"}, 1, None)


@pytest.mark.parametrize("edit", ["cycle", "dangling"])
def test_cycles_and_missing_inputs_come_and_go(edit: str) -> None:
    design = conv_stack(12)
    analysis = analyse(design)
    names = list(design.nodes)
    if edit == "cycle":
        ops: list[Op] = [Connect(TensorRef(names[8], 0), names[3])]
    else:
        ops = [RemoveNode(names[5])]
        design.nodes[names[6]].inbound[0].append(TensorRef("ghost", 0))
        ops.append(SetArg(names[6], "axis", -1))
    touched, inverses = apply_edit(design, ops)
    analysis = check_same(design, analysis, touched | {names[6]}, 1, None)
    assert not analysis.valid
    touched, _ = apply_edit(design, inverses)
    check_same(design, analysis, touched, 1, None)


def test_a_failing_merge_looks_again_for_padding_fixes_when_its_branch_changes_above() -> None:
    # pad → conv (4×4, stride 2, 'valid') → add ← other. Padding 10×10 to 11×11 leaves the conv's
    # output 4×4 (so nothing reaching the merge changed), but with padding='same' the conv would
    # now give 6×6, what the other branch gives: the fix appears although the merge's inputs did not change.
    design = Design()
    design.add("InputLayer", "image", {"shape": (10, 10, 1)})
    design.add("ZeroPadding2D", "pad", {"padding": ((0, 0), (0, 0))}, inputs=["image"])
    design.add("Conv2D", "conv", {"filters": 1, "kernel_size": 4, "strides": 2}, inputs=["pad"])
    design.add("InputLayer", "other", {"shape": (6, 6, 1)})
    design.add("Add", "add", inputs=["conv", "other"])
    before = analyse(design)
    assert not before.nodes["add"].valid
    assert all(f.node != "conv" for f in before.nodes["add"].errors[0].fixes)
    apply_op(design, SetArg("pad", "padding", ((0, 1), (0, 1))))
    after = check_same(design, before, {"pad"}, 1, None)
    assert after.nodes["conv"].output_shape == before.nodes["conv"].output_shape
    assert after.nodes["add"].errors[0].fixes[0].node == "conv"
