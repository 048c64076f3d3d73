"""Groups in the design: the ops that change them, their plans, their summaries and their file
format (version 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.analysis import analyse
from engine.design import Design, DesignError, Group, GroupKind, TensorRef
from engine.editing import Arrange, SetGroup, SetNodeGroup, apply_all, apply_op
from engine.errors import FileFormatError
from engine.examples import load_example
from engine.grouping import (
    arrange, common_group, group_summaries, group_summary, plan_collapse, plan_group, plan_reveal, plan_ungroup,
)
from engine.project_file import load_project, project_from_dict, project_to_dict, save_project
from engine.weights import structure_hash


def seed() -> Design:
    return load_example("seed_cnn")


def test_set_group_and_node_group_invert_exactly():
    design = seed()
    before = design.copy()
    inverses = apply_all(design, [SetGroup("stem", Group("stem")), SetNodeGroup("conv2d", "stem")])
    assert design.node("conv2d").group == "stem" and design.groups_of("conv2d") == ["stem"]
    apply_all(design, inverses)
    assert design == before


def test_a_group_cannot_be_removed_while_it_holds_layers_nor_sit_inside_itself():
    design = seed()
    apply_all(design, [SetGroup("a", Group("a")), SetGroup("b", Group("b", parent="a")),
                       SetNodeGroup("conv2d", "b")])
    with pytest.raises(DesignError, match="still holds layers"):
        apply_op(design, SetGroup("b", None))
    with pytest.raises(DesignError, match="still holds layers"):
        apply_op(design, SetGroup("a", None))  # it holds group b
    with pytest.raises(DesignError, match="inside itself"):
        apply_op(design, SetGroup("a", Group("a", parent="b")))
    with pytest.raises(DesignError, match="no group named 'nope'"):
        apply_op(design, SetNodeGroup("conv2d", "nope"))


def test_collapsed_group_is_the_outermost_collapsed_one():
    design = seed()
    apply_all(design, [SetGroup("outer", Group("outer")), SetGroup("inner", Group("inner", parent="outer",
                                                                                    collapsed=True)),
                       SetNodeGroup("conv2d", "inner")])
    assert design.collapsed_group("conv2d") == "inner"
    apply_op(design, SetGroup("outer", Group("outer", collapsed=True)))
    assert design.collapsed_group("conv2d") == "outer"
    assert design.collapsed_group("dense") is None
    assert design.group_members("outer") == ["conv2d"] and design.group_members("outer", nested=False) == []


def test_plan_group_is_one_step_that_undoes_exactly():
    design = seed()
    before = design.copy()
    inverses = apply_all(design, plan_group(design, ["conv2d", "max_pooling2d"], "stage1"))
    assert design.group_members("stage1") == ["conv2d", "max_pooling2d"]
    assert design.groups["stage1"].kind is GroupKind.USER and not design.groups["stage1"].collapsed
    apply_all(design, inverses)
    assert design == before


def test_grouping_layers_of_a_sub_group_moves_the_sub_group_whole():
    design = seed()
    apply_all(design, plan_group(design, ["conv2d", "max_pooling2d"], "inner"))
    apply_all(design, plan_group(design, ["max_pooling2d", "conv2d_1"], "outer"))
    assert design.groups["inner"].parent == "outer"
    assert design.group_members("outer") == ["conv2d", "max_pooling2d", "conv2d_1"]
    assert common_group(design, ["conv2d", "conv2d_1"]) == "outer"


@pytest.mark.parametrize("name, why", [("", "needs a name"), ("two words", "holds ' '")])
def test_bad_group_names_are_refused_with_the_reason(name: str, why: str):
    design = seed()
    with pytest.raises(DesignError, match=why):
        plan_group(design, ["conv2d"], name)
    apply_all(design, plan_group(design, ["conv2d"], "g"))
    with pytest.raises(DesignError, match="already exists"):
        plan_group(design, ["dense"], "g")


def test_collapse_lays_the_design_out_again_in_the_same_step_and_undo_restores_positions():
    design = seed()
    apply_all(design, plan_group(design, ["conv2d", "max_pooling2d", "conv2d_1"], "features"))
    before = design.copy()
    ops = plan_collapse(design, ["features"], True)
    assert isinstance(ops[-1], Arrange)
    inverses = apply_all(design, ops)
    assert design.groups["features"].collapsed and design.groups["features"].position is not None
    assert plan_collapse(design, ["features"], True) == []  # nothing to do
    apply_all(design, inverses)
    assert design == before and [n.position for n in design] == [n.position for n in before]


def test_reveal_expands_every_collapsed_group_around_a_layer():
    design = seed()
    apply_all(design, plan_group(design, ["conv2d"], "inner"))
    apply_all(design, plan_group(design, ["conv2d", "dense"], "outer"))
    apply_all(design, plan_collapse(design, ["inner", "outer"], True))
    apply_all(design, plan_reveal(design, "conv2d"))
    assert design.collapsed_group("conv2d") is None
    assert plan_reveal(design, "conv2d") == []


def test_ungroup_moves_layers_and_sub_groups_to_the_parent():
    design = seed()
    apply_all(design, plan_group(design, ["conv2d"], "inner"))
    apply_all(design, plan_group(design, ["conv2d", "dense"], "outer"))
    apply_all(design, plan_ungroup(design, "outer"))
    assert "outer" not in design.groups and design.groups["inner"].parent is None
    assert design.node("dense").group is None and design.node("conv2d").group == "inner"


def test_group_summary_adds_up_its_layers_and_names_the_shapes_at_its_borders():
    design = seed()
    apply_all(design, plan_group(design, ["conv2d", "max_pooling2d", "conv2d_1"], "features"))
    analysis = analyse(design)
    summary = group_summary(design, analysis, "features")
    reports = [analysis.nodes[n] for n in ("conv2d", "max_pooling2d", "conv2d_1")]
    assert summary.layers == 3
    assert summary.params == sum(r.params for r in reports) and summary.macs == sum(r.macs for r in reports)
    assert summary.inputs == (analysis.nodes["input_layer"].output_shape,)
    assert summary.outputs == (analysis.nodes["conv2d_1"].output_shape,)
    assert summary.errors == 0


def _summary_by_hand(design, analysis, group):
    """What a group adds up to, the long way: its members, then every connection looked at."""
    members = design.group_members(group)
    inside = set(members)
    entering = {ref: None for name in members for refs in design.nodes[name].inbound for ref in refs
                if ref.node not in inside}
    leaving = {ref: None for node in design for refs in node.inbound for ref in refs
               if node.name not in inside and ref.node in inside}
    leaving.update({ref: None for ref in design.output_refs() if ref.node in inside})
    if not entering:
        entering = {TensorRef(n): None for n in design.input_names() if n in inside}
    reports = [analysis.nodes[n] for n in members]
    return (len(members), [analysis.nodes[r.node].output_shapes[r.call] for r in entering],
            [analysis.nodes[r.node].output_shapes[r.call] for r in leaving],
            sum(r.params for r in reports), sum(r.macs for r in reports))


def test_group_summaries_sum_up_every_group_in_one_walk_as_group_summary_does_one():
    design = seed()
    apply_all(design, plan_group(design, ["conv2d", "max_pooling2d"], "inner"))
    apply_all(design, plan_group(design, ["conv2d", "max_pooling2d", "conv2d_1"], "outer"))
    apply_all(design, plan_group(design, ["input_layer"], "entry"))
    apply_all(design, plan_group(design, ["dense"], "head"))
    analysis = analyse(design)
    summaries = group_summaries(design, analysis, [*design.groups, "no such group"])
    assert list(summaries) == list(design.groups)
    for name, summary in summaries.items():
        assert summary == group_summary(design, analysis, name)
        assert (summary.layers, list(summary.inputs), list(summary.outputs), summary.params, summary.macs) \
            == _summary_by_hand(design, analysis, name), name
    assert summaries["entry"].inputs == (analysis.nodes["input_layer"].output_shape,)  # holds the input
    assert group_summaries(design, analysis, []) == {}


def test_planning_a_collapse_leaves_the_design_alone_and_lays_out_the_design_it_makes():
    design = seed()
    apply_all(design, plan_group(design, ["conv2d", "max_pooling2d"], "inner"))
    apply_all(design, plan_group(design, ["conv2d", "max_pooling2d", "conv2d_1"], "outer"))
    before = design.copy()
    for names, collapsed in ((["inner"], True), (["inner", "outer"], True)):
        ops = plan_collapse(design, names, collapsed)
        assert design == before and [n.group for n in design] == [n.group for n in before]
        trial = design.copy()
        apply_all(trial, ops[:-1])
        assert ops[-1] == arrange(trial)
    ops = plan_ungroup(design, "inner")
    assert design == before


def test_groups_do_not_change_the_structure_hash():
    design = seed()
    plain = structure_hash(design)
    apply_all(design, plan_group(design, ["conv2d"], "g", collapsed=True))
    assert structure_hash(design) == plain


def test_groups_survive_a_save_and_a_load(tmp_path: Path):
    design = seed()
    apply_all(design, plan_group(design, ["conv2d", "max_pooling2d"], "inner"))
    apply_all(design, plan_group(design, ["conv2d", "max_pooling2d", "conv2d_1"], "outer"))
    apply_all(design, plan_collapse(design, ["inner"], True))
    apply_op(design, SetGroup("outer", Group("outer", GroupKind.MODEL, origin={"class_name": "Sequential"})))
    path = tmp_path / "g.convas"
    save_project(path, design)
    again = load_project(path).design
    assert again.groups == design.groups and again.groups["outer"].origin == {"class_name": "Sequential"}
    assert [n.group for n in again] == [n.group for n in design]
    assert [n.position for n in again] == [n.position for n in design]


def test_a_version_2_project_reads_without_groups(tmp_path: Path):
    doc = project_to_dict(seed())
    doc["version"] = 2
    doc["design"]["groups"] = [{"name": "x"}]  # meant nothing in version 2
    assert project_from_dict(json.loads(json.dumps(doc))).design.groups == {}


@pytest.mark.parametrize("change, message", [
    (lambda d: d["design"]["nodes"][1].update(group="ghost"), "group 'ghost' that is not in design.groups"),
    (lambda d: d["design"].update(groups=[{"name": "a", "parent": "b"}, {"name": "b"}]),
     "names 'b', which is not a group listed before it"),
    (lambda d: d["design"].update(groups=[{"name": "a"}, {"name": "a"}]), "two groups are named 'a'"),
    (lambda d: d["design"].update(groups=[{"name": "a", "kind": "nested"}]), "kind must be one of"),
    (lambda d: d["design"].update(groups=[{"name": "a", "collapsed": "yes"}]), "collapsed must be true or false"),
    (lambda d: d["design"].update(groups=[{"name": "a", "position": [1, None]}]), r"position must be \[x, y\]"),
    (lambda d: d["design"].update(groups={"a": {}}), "groups must be a list of groups"),
])
def test_broken_groups_in_a_file_are_file_format_errors(change, message):
    doc = json.loads(json.dumps(project_to_dict(seed())))
    change(doc)
    with pytest.raises(FileFormatError, match=message):
        project_from_dict(doc)
