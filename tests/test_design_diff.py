"""Design diffs (engine.design_diff): the plan that makes one design equal to another (the Sweep
panel's Apply), checked on random designs and random edits, and the lines that say what differs."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from engine.design import Design, Group, TensorRef
from engine.design_diff import differences, plan_become, same, training_differences
from engine.editing import (
    AddNode, Arrange, Connect, Disconnect, Op, RemoveNode, RestoreNode, SetArg, apply_all,
)
from engine.examples import load_example
from engine.group_repeat import repeat_group, repeat_problem
from engine.layout import apply_design_layout
from engine.project_file import design_to_dict
from engine.search_range import SearchRange
from engine.training import TrainingConfig, TrainingSettings
from tests.strategies import Draws, designs

# DIFF_EXAMPLES=3000 for a long local hunt; 60 keeps the suite quick.
SETTINGS = settings(max_examples=int(os.environ.get("DIFF_EXAMPLES", "60")), deadline=None, derandomize=True,
                    database=None, suppress_health_check=list(HealthCheck))


def written(design: Design) -> dict[str, Any]:
    data = design_to_dict(design)
    data.pop("name")  # no op renames a design; plan_become leaves the name alone
    return data


def check_becomes(current: Design, target: Design) -> list[Op]:
    """Apply the plan, compare with the target; undo, compare with the current; redo (the same
    ops again, as the undo stack does), compare with the target again."""
    before = design_to_dict(current)
    goal = design_to_dict(target)
    ops = plan_become(current, target)
    assert design_to_dict(current) == before and design_to_dict(target) == goal  # neither changed
    work = current.copy()
    inverses = apply_all(work, ops)
    assert written(work) == written(target)
    apply_all(work, inverses)
    assert design_to_dict(work) == before
    apply_all(work, ops)
    assert written(work) == written(target)
    return ops


def self_reading(design: Design) -> bool:
    """A layer that reads its own output (the strategies' shared layers can make one): a loop,
    which the analysis refuses, and whose RemoveNode does not undo exactly (engine.editing puts
    the self-reading back twice), so the random tests leave it out."""
    return any(ref.node == node.name for node in design for refs in node.inbound for ref in refs)


# --- random edits -------------------------------------------------------------------------------

def edit_args(r: Draws, design: Design) -> None:
    node = r.choice(list(design.nodes.values()))
    key = r.choice(["filters", "units", "rate", "use_bias", "kernel_size", "padding"])
    if key in node.args and r.chance(0.3):
        design.unset_arg(node.name, key)
    else:
        design.set_arg(node.name, key, r.choice([1, 2, 7, 1.5, True, "same", (3, 3), [3, 3], None]))


def add_layer(r: Draws, design: Design) -> None:
    source = r.choice(list(design.nodes))
    name = design.unique_name("Dropout")
    node = design.add("Dropout", name=name, args={"rate": 0.25}, inputs=[source],
                      position=(r.randint(0, 500), r.randint(0, 500)))
    if r.chance(0.5):  # on an edge: what read the source reads the new layer
        for reader, call, slot in design.consumers(source):
            if reader != name and r.chance(0.7):
                design.nodes[reader].inbound[call][slot] = TensorRef(name)
    if r.chance(0.5):  # somewhere in the middle of the order
        del design.nodes[name]
        design.insert_node(node, r.randint(0, len(design.nodes)))


def remove_layer(r: Draws, design: Design) -> None:
    if len(design.nodes) > 1:
        design.remove(r.choice(list(design.nodes)))


def repeat_a_layer(r: Draws, design: Design) -> Design:
    """Group one layer that reads one tensor and repeat it (both designs get the group)."""
    candidates = [n.name for n in design if n.kind != "InputLayer" and n.calls == 1 and n.inputs
                  and len(set(n.inputs)) == 1]
    if not candidates:
        return design
    name = r.choice(candidates)
    group = design.unique_group_name("rep")
    design.set_group(group, Group(group, repeats=SearchRange.ints(1, 3)))
    design.set_node_group(name, group)
    if repeat_problem(design, group) is not None:
        return design
    return repeat_group(design, group, r.randint(2, 3))


def reorder(r: Draws, design: Design) -> None:
    design.nodes = {n: design.nodes[n] for n in r.permutation(design.nodes)}


def misc(r: Draws, design: Design) -> None:
    node = r.choice(list(design.nodes.values()))
    what = r.choice(["move", "freeze", "search", "group", "config", "kind", "outputs", "inputs", "collapse",
                     "shuffle groups", "ungroup"])
    if what == "move":
        node.position = (r.randint(-50, 50), r.randint(-50, 50)) if r.chance(0.8) else None
    elif what == "freeze":
        node.trainable = not node.trainable
    elif what == "search":
        design.set_search(node.name, "units", SearchRange.ints(8, 64, 8) if r.chance(0.7) else None)
    elif what == "group":
        group = r.choice(["a", "b", "c"])
        if group not in design.groups:
            parent = r.choice([None, *design.groups])
            design.set_group(group, Group(group, parent=parent))
        design.set_node_group(node.name, group if r.chance(0.8) else None)
    elif what == "config":
        node.config["kernel_initializer"] = r.choice(["he_normal", "zeros"])
    elif what == "kind":
        node.kind = r.choice(["Dense", "Dropout", "ReLU"])
    elif what == "outputs":
        design.outputs = [TensorRef(node.name)] if r.chance(0.7) else []
    elif what == "inputs":
        design.inputs_order = r.permutation(design.input_names())
    elif what == "shuffle groups":
        design.groups = {g: design.groups[g] for g in r.permutation(design.groups)}
    elif what == "ungroup" and design.groups:
        name = r.choice(list(design.groups))
        parent = design.groups[name].parent
        for other in design:
            if other.group == name:
                other.group = parent
        for child in design.child_groups(name):
            design.groups[child] = replace(design.groups[child], parent=parent)
        del design.groups[name]
    elif what == "collapse" and design.groups:
        name = r.choice(list(design.groups))
        design.groups[name] = replace(design.groups[name], collapsed=not design.groups[name].collapsed,
                                      position=(1.0, 2.0))


def edited(r: Draws, design: Design, steps: int) -> Design:
    target = design.copy()
    for _ in range(steps):
        step = r.weighted({"args": 30, "add": 15, "remove": 12, "misc": 30, "reorder": 3})
        if step == "args":
            edit_args(r, target)
        elif step == "add":
            add_layer(r, target)
        elif step == "remove":
            remove_layer(r, target)
        elif step == "reorder":
            reorder(r, target)
        else:
            misc(r, target)
    return target


@SETTINGS
@given(designs(), st.data())
def test_plan_become_reaches_random_edits_and_undoes_exactly(design: Design, data: st.DataObject) -> None:
    assume(not self_reading(design))
    r = Draws(data.draw)
    current = edited(r, design, r.randint(0, 3))  # start from an already edited design too
    target = edited(r, current, r.randint(0, 6))
    check_becomes(current, target)
    check_becomes(target, current)


@SETTINGS
@given(designs(), st.data())
def test_plan_become_reaches_a_repeated_group_and_back(design: Design, data: st.DataObject) -> None:
    assume(not self_reading(design))
    r = Draws(data.draw)
    current = design.copy()
    apply_design_layout(current)
    target = repeat_a_layer(r, current)  # the group is put on ``current`` too
    check_becomes(current, target)
    check_becomes(target, current)


@SETTINGS
@given(designs(), st.data())
def test_an_args_only_difference_is_only_set_args(design: Design, data: st.DataObject) -> None:
    assume(not self_reading(design))
    r = Draws(data.draw)
    target = design.copy()
    for _ in range(r.randint(1, 4)):
        edit_args(r, target)
    ops = check_becomes(design, target)
    assert all(isinstance(op, SetArg) for op in ops)
    assert len(ops) <= sum(len(n.args) for n in target) + sum(len(n.args) for n in design)


# --- particular cases ---------------------------------------------------------------------------

def seed() -> Design:
    return load_example("seed_cnn")


def test_equal_designs_need_no_ops():
    assert plan_become(seed(), seed()) == []
    assert differences(seed(), seed()) == []


def test_a_new_layer_in_the_middle_of_the_order_is_put_there():
    current = seed()
    target = current.copy()
    first = list(target.nodes)[1]
    reader = target.consumers(first)[0][0]
    node = target.add("Dropout", name="mid", args={"rate": 0.1}, inputs=[first], position=(3.0, 4.0))
    del target.nodes["mid"]
    target.insert_node(node, 2)
    target.nodes[reader].inbound[0] = [TensorRef("mid")]
    ops = check_becomes(current, target)
    restores = [op for op in ops if isinstance(op, RestoreNode)]
    assert [(op.node.name, op.index) for op in restores] == [("mid", 2)]
    assert not any(isinstance(op, (RemoveNode, AddNode)) for op in ops)  # no other layer moves
    assert Disconnect(TensorRef(first), reader) in ops and Connect(TensorRef("mid"), reader, 0, 0) in ops


def test_a_layer_added_at_the_end_is_an_add_node_and_its_place_an_arrange():
    current = seed()
    target = current.copy()
    last = list(target.nodes)[-1]
    target.add("Dropout", name="tail", args={"rate": 0.1}, inputs=[last], position=(0.0, 900.0))
    target.nodes[last].position = (5.0, 5.0)
    ops = check_becomes(current, target)
    assert AddNode("Dropout", "tail", {"rate": 0.1}, (0.0, 900.0)) in ops
    assert Arrange(((last, (5.0, 5.0)),)) in ops


def test_swapped_layers_are_removed_and_added_again_only_as_needed():
    current = seed()
    names = list(current.nodes)
    target = current.copy()
    order = names[:]
    order[2], order[3] = order[3], order[2]
    target.nodes = {n: target.nodes[n] for n in order}
    ops = check_becomes(current, target)
    assert len([op for op in ops if isinstance(op, RemoveNode)]) == 1


def test_a_changed_kind_or_config_replaces_the_layer():
    current = seed()
    target = current.copy()
    name = next(n.name for n in target if n.kind == "MaxPooling2D")
    target.nodes[name].kind = "AveragePooling2D"
    dense = next(n.name for n in target if n.kind == "Dense")
    target.nodes[dense].config["kernel_initializer"] = "zeros"
    ops = check_becomes(current, target)
    assert {op.name for op in ops if isinstance(op, RemoveNode)} == {name, dense}


def test_groups_parents_and_order_are_reached():
    current = seed()
    names = list(current.nodes)
    for g in ("a", "b"):
        current.set_group(g, Group(g))
    current.set_node_group(names[1], "a")
    current.set_node_group(names[2], "b")
    target = current.copy()
    # b moves inside a, a new group c comes first in order, a's card moves.
    target.groups = {"c": Group("c", collapsed=True), "a": replace(current.groups["a"], position=(1.0, 1.0)),
                     "b": Group("b", parent="a")}
    target.set_node_group(names[3], "c")
    check_becomes(current, target)
    # And a group that sits inside its former child (a loop, if set in the wrong order).
    other = current.copy()
    other.groups = {"a": Group("a", parent="b"), "b": Group("b")}
    third = other.copy()
    third.groups = {"a": Group("a"), "b": Group("b", parent="a")}
    check_becomes(other, third)


def test_input_order_and_shared_calls_are_reached():
    current = Design()
    current.add("InputLayer", name="x", args={"shape": (4,)})
    current.add("InputLayer", name="y", args={"shape": (4,)})
    current.add("Dense", name="d", args={"units": 4}, inputs=["x"])
    current.connect("y", "d", call=1)
    current.inputs_order = ["x", "y"]
    target = current.copy()
    target.inputs_order = ["y", "x"]
    target.nodes["d"].inbound = [[TensorRef("x")]]  # no longer shared: fewer calls
    target.add("InputLayer", name="z", args={"shape": (4,)})
    target.inputs_order.insert(1, "z")
    check_becomes(current, target)
    check_becomes(target, current)


def test_a_plan_leaves_the_name_alone():
    current = seed()
    target = current.copy()
    target.name = "other"
    assert plan_become(current, target) == []


def test_same_follows_the_file():
    assert same((3, 3), [3, 3])
    assert not same(1, 1.0) and not same(1, True) and not same({"a": 1}, {"a": 2})
    assert same(float("nan"), float("nan"))


# --- differences in words -----------------------------------------------------------------------

def test_differences_say_what_changed():
    current = seed()
    conv = next(n.name for n in current if n.kind == "Conv2D")
    dropout = "max_pooling2d"
    target = current.copy()
    old = current.nodes[conv].args["filters"]
    target.set_arg(conv, "filters", 48)
    target.set_trainable(conv, False)
    readers = target.consumers(dropout)
    target.remove(dropout)
    reader = readers[0][0]
    target.add("Conv2D", name="conv2d_r2", args={"filters": 8, "kernel_size": 3}, inputs=[conv])
    target.nodes[reader].inbound[0] = [TensorRef("conv2d_r2")]
    lines = differences(current, target)
    assert f"{conv}.filters: {old} → 48" in lines
    assert f"{conv}: frozen" in lines
    assert "− max_pooling2d (MaxPooling2D)" in lines and "+ conv2d_r2 (Conv2D)" in lines
    assert f"conv2d_r2 reads {conv}" in lines and f"{reader} reads conv2d_r2" in lines


def test_differences_stop_after_the_limit():
    current = seed()
    target = current.copy()
    for i in range(40):
        target.add("Dense", name=f"extra{i}", args={"units": 2})
    lines = differences(current, target)
    assert len(lines) == 31 and lines[-1] == "… and 10 more"
    assert differences(current, target, limit=5)[-1] == "… and 35 more"


def test_differences_of_repeats_and_groups():
    current = seed()
    names = list(current.nodes)
    current.set_group("block", Group("block", repeats=SearchRange.ints(1, 3)))
    current.set_node_group(names[1], "block")
    target = repeat_group(current, "block", 2)
    lines = differences(current, target)
    assert "group block repeats: 1–3 → fixed" in lines and "+ group block_2" in lines


@pytest.mark.parametrize(("change", "line"), [
    ({"learning_rate": 0.0031}, "learning rate: 0.001 → 0.0031"),
    ({"batch_size": 64}, "batch size: 32 → 64"),
    ({"optimizer": "sgd"}, "optimizer: adam → sgd"),
])
def test_training_differences(change: dict[str, Any], line: str):
    a = TrainingSettings()
    b = replace(a, config=replace(TrainingConfig(), **change))
    assert training_differences(a, b) == [line]
    assert training_differences(a, a) == []
