"""Repeating a group of layers in a chain (engine.group_repeat): what a sweep's
``group:<name>:repeats`` value builds, and the groups it refuses with a sentence."""

from __future__ import annotations

import pytest

from engine.analysis import Severity, analyse
from engine.design import Design, Group, TensorRef
from engine.errors import ConvasError
from engine.group_repeat import repeat_group, repeat_problem
from engine.project_file import design_to_dict
from engine.search_range import SearchRange
from engine.search_space import sample, space_problems
from engine.training import TrainingSettings

BLOCK = ["conv2d", "batch_normalization", "re_lu"]


def grouped(design: Design, group: str, names: list[str], **kw) -> Design:
    design.set_group(group, Group(group, **kw))
    for name in names:
        design.set_node_group(name, group)
    return design


def conv_block(channels: int = 8) -> Design:
    """input → [Conv2D same → BN → ReLU] → Flatten → Dense: a block whose output has as many
    channels as its input, so that copies of it have the same weights as the original."""
    d = Design(name="blocky")
    d.add("InputLayer", args={"shape": (8, 8, channels)})
    d.add("Conv2D", args={"filters": channels, "kernel_size": 3, "padding": "same"}, inputs=["input_layer"])
    d.add("BatchNormalization", inputs=["conv2d"])
    d.add("ReLU", inputs=["batch_normalization"])
    d.add("Flatten", inputs=["re_lu"])
    d.add("Dense", args={"units": 10, "activation": "softmax"}, inputs=["flatten"])
    return grouped(d, "block", BLOCK, repeats=SearchRange.ints(1, 4))


def residual_block() -> Design:
    """input → conv → [conv → BN → Add(conv, BN) → ReLU] → GAP: the entry is read twice."""
    d = Design(name="res")
    d.add("InputLayer", args={"shape": (8, 8, 3)})
    d.add("Conv2D", args={"filters": 4, "kernel_size": 3, "padding": "same"}, inputs=["input_layer"])
    d.add("Conv2D", name="inner", args={"filters": 4, "kernel_size": 3, "padding": "same"}, inputs=["conv2d"])
    d.add("BatchNormalization", inputs=["inner"])
    d.add("Add", inputs=["conv2d", "batch_normalization"])
    d.add("ReLU", inputs=["add"])
    d.add("GlobalAveragePooling2D", inputs=["re_lu"])
    return grouped(d, "res", ["inner", "batch_normalization", "add", "re_lu"])


def errors(design: Design) -> list[str]:
    return [p.message for p in analyse(design).problems if p.severity == Severity.ERROR]


def params(design: Design, names: list[str] | None = None) -> int:
    reports = analyse(design).nodes
    return sum(reports[n].params for n in (names if names is not None else reports))


def test_a_conv_block_repeated_three_times_is_valid_with_three_times_the_params():
    design = conv_block()
    before = design_to_dict(design)
    block = params(design, BLOCK)
    assert repeat_problem(design, "block") is None

    tripled = repeat_group(design, "block", 3)

    assert design_to_dict(design) == before  # the input is untouched
    assert errors(tripled) == []
    copies = [n for n in tripled.nodes if n not in design.nodes]
    assert copies == ["conv2d_r2", "batch_normalization_r2", "re_lu_r2",
                      "conv2d_r3", "batch_normalization_r3", "re_lu_r3"]
    assert params(tripled, BLOCK + copies) == 3 * block
    assert params(tripled) == params(design) + 2 * block
    # The chain: copy 2 reads the original's output, copy 3 copy 2's, and Flatten the last.
    assert tripled.nodes["conv2d_r2"].inputs == [TensorRef("re_lu")]
    assert tripled.nodes["conv2d_r3"].inputs == [TensorRef("re_lu_r2")]
    assert tripled.nodes["flatten"].inputs == [TensorRef("re_lu_r3")]
    # New groups beside the original, which keeps no range; copies keep args, not ranges.
    assert list(tripled.groups) == ["block", "block_2", "block_3"]
    assert tripled.groups["block"].repeats is None
    assert tripled.groups["block_2"].parent is None and tripled.groups["block_2"].repeats is None
    assert tripled.group_members("block_3") == ["conv2d_r3", "batch_normalization_r3", "re_lu_r3"]
    assert tripled.nodes["conv2d_r2"].args == design.nodes["conv2d"].args
    # Laid out: every layer and every group has a place.
    assert all(n.position is not None for n in tripled)
    assert all(g.position is not None for g in tripled.groups.values())


def test_copies_keep_flags_and_config_but_not_ranges_and_names_stay_unique():
    design = conv_block()
    design.set_search("conv2d", "filters", SearchRange.ints(8, 16, 8))
    design.set_trainable("batch_normalization", False)
    design.nodes["conv2d"].config["kernel_initializer"] = "he_normal"
    design.add("Dense", name="conv2d_r2", args={"units": 3}, inputs=["dense"])  # a name in the way
    design.set_group("block_2", Group("block_2"))  # a group name in the way

    doubled = repeat_group(design, "block", 2)

    copy = doubled.nodes["conv2d_r2_1"]
    assert copy.kind == "Conv2D" and copy.search == {}
    assert copy.config == {"kernel_initializer": "he_normal"}
    assert doubled.nodes["conv2d"].search  # the original keeps its range
    assert doubled.nodes["batch_normalization_r2"].trainable is False
    assert copy.group == "block_2_1" and "block_2" in doubled.groups
    assert len(set(doubled.nodes)) == len(doubled.nodes) == len(design.nodes) + 3


def test_a_residual_block_reading_its_entry_twice_repeats():
    design = residual_block()
    assert repeat_problem(design, "res") is None
    tripled = repeat_group(design, "res", 3)
    assert errors(tripled) == []
    # Both readings of the entry move to the previous copy's output.
    assert tripled.nodes["inner_r2"].inputs == [TensorRef("re_lu")]
    assert tripled.nodes["add_r2"].inputs == [TensorRef("re_lu"), TensorRef("batch_normalization_r2")]
    assert tripled.nodes["add_r3"].inputs == [TensorRef("re_lu_r2"), TensorRef("batch_normalization_r3")]
    assert tripled.nodes["global_average_pooling2d"].inputs == [TensorRef("re_lu_r3")]
    block = params(design, ["inner", "batch_normalization", "add", "re_lu"])
    assert params(tripled) == params(design) + 2 * block


def test_nested_groups_are_copied_inside_the_copies():
    design = conv_block()
    design.set_group("inner", Group("inner", parent="block"))
    design.set_node_group("batch_normalization", "inner")
    doubled = repeat_group(design, "block", 2)
    assert doubled.groups["inner_2"].parent == "block_2"
    assert doubled.nodes["batch_normalization_r2"].group == "inner_2"
    assert doubled.group_members("block_2") == ["conv2d_r2", "batch_normalization_r2", "re_lu_r2"]


def test_a_declared_output_moves_to_the_last_copy():
    design = conv_block()
    design.remove("dense")
    design.remove("flatten")
    design.outputs = [TensorRef("re_lu")]
    doubled = repeat_group(design, "block", 2)
    assert doubled.outputs == [TensorRef("re_lu_r2")]
    assert errors(doubled) == []


def test_once_is_an_unchanged_copy_and_less_than_once_is_refused():
    design = conv_block()
    same = repeat_group(design, "block", 1)
    assert same is not design and design_to_dict(same) == design_to_dict(design)
    for times in (0, -2):
        with pytest.raises(ConvasError, match="at least once"):
            repeat_group(design, "block", times)
    with pytest.raises(ConvasError, match="whole number"):
        repeat_group(design, "block", True)  # type: ignore[arg-type]


def two_inputs() -> Design:
    d = Design()
    d.add("InputLayer", args={"shape": (4,)})
    d.add("InputLayer", name="other", args={"shape": (4,)})
    d.add("Add", inputs=["input_layer", "other"])
    d.add("Dense", args={"units": 4}, inputs=["add"])
    return grouped(d, "g", ["add", "dense"])


def two_outputs() -> Design:
    d = Design()
    d.add("InputLayer", args={"shape": (4,)})
    d.add("Dense", args={"units": 4}, inputs=["input_layer"])
    d.add("Dense", name="b", args={"units": 4}, inputs=["dense"])
    d.add("Concatenate", inputs=["dense", "b"])
    return grouped(d, "g", ["dense", "b"])


def with_input() -> Design:
    d = Design()
    d.add("InputLayer", args={"shape": (4,)})
    d.add("Dense", args={"units": 4}, inputs=["input_layer"])
    return grouped(d, "g", ["input_layer", "dense"])


def shared() -> Design:
    d = Design()
    d.add("InputLayer", args={"shape": (4,)})
    d.add("Dense", args={"units": 4}, inputs=["input_layer"])
    d.add("Dense", name="twice", args={"units": 4}, inputs=["dense"])
    d.connect("input_layer", "twice", call=1)
    d.add("Add", inputs=[TensorRef("twice", 0), TensorRef("twice", 1)])
    return grouped(d, "g", ["twice"])


@pytest.mark.parametrize(("build", "expected"), [
    (two_inputs, "the group 'g' reads 2 tensors from outside it (input_layer, other); a repeated "
                 "group must read exactly one, so group those layers too or leave the group unrepeated"),
    (two_outputs, "the group 'g' gives 2 tensors to the rest of the design (dense, b); a repeated "
                  "group must give exactly one, so group the layers that read them too or leave "
                  "the group unrepeated"),
    (with_input, "the group 'g' holds the input layer 'input_layer'; a repeated group must take its "
                 "input from a layer outside it, so move 'input_layer' out of the group"),
    (shared, "the group 'g' holds 'twice', a shared layer applied 2 times; a repeated group cannot "
             "hold a shared layer, so move it out or unshare it"),
])
def test_unrepeatable_groups_are_refused_with_the_sentence(build, expected):
    design = build()
    assert repeat_problem(design, "g") == expected
    with pytest.raises(ConvasError) as caught:
        repeat_group(design, "g", 2)
    assert str(caught.value) == expected
    # The search space says so too, before any sweep starts.
    design.set_group("g", Group("g", repeats=SearchRange.ints(1, 3)))
    assert space_problems(design, TrainingSettings()) == [f"g repeats: {expected}"]


def test_empty_unknown_and_unread_groups_are_refused():
    design = conv_block()
    design.set_group("empty", Group("empty"))
    assert "holds no layers" in (repeat_problem(design, "empty") or "")
    assert repeat_problem(design, "nope") == "there is no group named 'nope' to repeat"
    design.remove("flatten")
    design.remove("dense")
    design.outputs = [TensorRef("input_layer")]  # nothing reads the block any more
    assert "nothing outside the group 'block' reads its layers" in (repeat_problem(design, "block") or "")


def test_sample_repeats_a_group_by_its_value():
    design = conv_block()
    training = TrainingSettings()
    assert space_problems(design, training) == []
    before = design_to_dict(design)

    deeper, _ = sample(design, training, {"group:block:repeats": 3})
    same, _ = sample(design, training, {"group:block:repeats": 1})

    assert design_to_dict(design) == before
    assert [n for n in deeper.nodes if n.startswith("conv2d")] == ["conv2d", "conv2d_r2", "conv2d_r3"]
    assert deeper.groups["block"].repeats is None
    assert list(same.nodes) == list(design.nodes)
    assert same.groups["block"].repeats == SearchRange.ints(1, 4)  # once: the design as it is
    with pytest.raises(ConvasError, match="block repeats = 5 is not a value of its range 1–4"):
        sample(design, training, {"group:block:repeats": 5})


def test_a_sampled_argument_inside_a_repeated_group_holds_in_every_copy():
    design = conv_block()
    design.set_search("conv2d", "filters", SearchRange.ints(8, 16, 8))
    deeper, _ = sample(design, TrainingSettings(), {"group:block:repeats": 2, "layer:conv2d:filters": 16})
    assert deeper.nodes["conv2d"].args["filters"] == deeper.nodes["conv2d_r2"].args["filters"] == 16
    assert deeper.nodes["conv2d"].search and not deeper.nodes["conv2d_r2"].search
    assert errors(deeper) == []  # copy 2 takes 16 channels from the original's 16
