"""Block groups from layer names (issue 14): the rules on synthetic networks named the way Keras
names its applications (and ways it does not), then on real ``keras.applications`` networks."""

from __future__ import annotations

import json

import pytest

from engine.blocks import (
    NESTED_BLOCK_SIZE, add_block_groups, collapse_for_size, default_stems, is_default_name, name_prefixes,
)
from engine.design import Design, Group, GroupKind


def members(design: Design, group: str, nested: bool = True) -> set[str]:
    return set(design.group_members(group, nested))


def shown_cards(design: Design) -> int:
    return len({design.collapsed_group(n) or ("layer", n) for n in design.nodes})


def assert_convex(design: Design, group: str) -> None:
    """No path leaves ``group`` and comes back into it."""
    inside = members(design, group)
    consumers: dict[str, list[str]] = {n: [] for n in design.nodes}
    for node in design:
        for refs in node.inbound:
            for ref in refs:
                consumers[ref.node].append(node.name)
    outside = [c for n in inside for c in consumers[n] if c not in inside]
    seen = set(outside)
    while outside:
        n = outside.pop()
        assert n not in inside, f"{group}: a path leaves it and comes back through {n}"
        for c in consumers[n]:
            if c not in seen:
                seen.add(c)
                outside.append(c)


# --- builders -----------------------------------------------------------------------------------


def resnet_like(stages: dict[int, int]) -> Design:
    """ResNet names: ``conv{s}_block{b}_{i}_conv|bn|relu``, a shortcut ``_0_conv`` in each first
    block, then ``_add`` and ``_out``."""
    d = Design()
    prev = d.add("InputLayer", "input_layer", args={"shape": (32, 32, 3)}).name
    prev = d.add("Conv2D", "conv1_conv", args={"filters": 4, "kernel_size": 3}, inputs=[prev]).name
    prev = d.add("ReLU", "conv1_relu", inputs=[prev]).name
    for s, blocks in stages.items():
        for b in range(1, blocks + 1):
            p = f"conv{s}_block{b}"
            shortcut = prev
            if b == 1:
                shortcut = d.add("Conv2D", f"{p}_0_conv", args={"filters": 4, "kernel_size": 1}, inputs=[prev]).name
            x = prev
            for i in (1, 2):
                x = d.add("Conv2D", f"{p}_{i}_conv", args={"filters": 4, "kernel_size": 1}, inputs=[x]).name
                x = d.add("BatchNormalization", f"{p}_{i}_bn", inputs=[x]).name
                x = d.add("ReLU", f"{p}_{i}_relu", inputs=[x]).name
            x = d.add("Add", f"{p}_add", inputs=[shortcut, x]).name
            prev = d.add("ReLU", f"{p}_out", inputs=[x]).name
    d.add("GlobalAveragePooling2D", "avg_pool", inputs=[prev])
    return d


def chain_named(names_kinds: list[tuple[str | None, str]]) -> Design:
    """A chain of layers with these names (None: Keras's default name) and kinds."""
    d = Design()
    prev = d.add("InputLayer", "input_layer", args={"shape": (8,)}).name
    for name, kind in names_kinds:
        prev = d.add(kind, name, inputs=[prev]).name
    return d


def inception_like(modules: int) -> Design:
    """Inception names: a default-named stem, then modules whose branches are all default-named
    and whose concatenation is ``mixed{i}``."""
    d = Design()
    x = d.add("InputLayer", args={"shape": (32, 32, 3)}).name
    for _ in range(3):
        x = d.add("Conv2D", args={"filters": 4, "kernel_size": 3}, inputs=[x]).name
        x = d.add("BatchNormalization", inputs=[x]).name
        x = d.add("Activation", inputs=[x]).name
    x = d.add("MaxPooling2D", inputs=[x]).name
    for i in range(modules):
        ends = []
        for depth in (1, 2, 3):
            y = x
            for _ in range(depth):
                y = d.add("Conv2D", args={"filters": 4, "kernel_size": 1}, inputs=[y]).name
                y = d.add("BatchNormalization", inputs=[y]).name
                y = d.add("Activation", inputs=[y]).name
            ends.append(y)
        pool = d.add("AveragePooling2D", inputs=[x]).name
        ends.append(d.add("Conv2D", args={"filters": 4, "kernel_size": 1}, inputs=[pool]).name)
        x = d.add("Concatenate", f"mixed{i}", inputs=ends).name
    d.add("GlobalAveragePooling2D", "avg_pool", inputs=[x])
    return d


def nasnet_like(cells: list[str]) -> Design:
    """NASNet names: the cell id is a suffix (``_stem_1``, ``_3``); each cell reads the two cells
    before it, through default-named activations."""
    d = Design()
    x = d.add("InputLayer", args={"shape": (32, 32, 3)}).name
    x = d.add("Conv2D", "stem_conv1", args={"filters": 4, "kernel_size": 3}, inputs=[x]).name
    prev, cur = x, x
    for cell in cells:
        kind = "reduction" if cell.startswith(("stem", "reduce")) else "normal"
        a = d.add("Activation", inputs=[cur]).name
        p = d.add("Conv2D", f"adjust_conv_projection_{cell}", args={"filters": 4, "kernel_size": 1},
                  inputs=[d.add("Activation", inputs=[prev]).name]).name
        h = d.add("Conv2D", f"{kind}_conv_1_{cell}", args={"filters": 4, "kernel_size": 1}, inputs=[a]).name
        h = d.add("BatchNormalization", f"{kind}_bn_1_{cell}", inputs=[h]).name
        branches = []
        for side, src in (("left1", h), ("right1", p), ("left2", h)):
            y = d.add("Activation", inputs=[src]).name
            y = d.add("SeparableConv2D", f"separable_conv_1_{kind}_{side}_{cell}",
                      args={"filters": 4, "kernel_size": 3, "padding": "same"}, inputs=[y]).name
            y = d.add("BatchNormalization", f"separable_conv_1_bn_{kind}_{side}_{cell}", inputs=[y]).name
            branches.append(y)
        s1 = d.add("Add", f"{kind}_add_1_{cell}", inputs=branches[:2]).name
        s2 = d.add("Add", f"{kind}_add_2_{cell}", inputs=[branches[2], p]).name
        prev, cur = cur, d.add("Concatenate", f"{kind}_concat_{cell}", inputs=[s1, s2]).name
    d.add("GlobalAveragePooling2D", inputs=[cur])
    return d


# --- the name rules -------------------------------------------------------------------------------


@pytest.mark.parametrize("name,prefixes", [
    ("conv2_block1_1_conv", ["conv2", "conv2_block1", "conv2_block1_1"]),
    ("block_3_expand", ["block_3"]),
    ("block2a_se_squeeze", ["block2", "block2a"]),
    ("block35_1", ["block35", "block35_1"]),
    ("mixed5", ["mixed5"]),
    ("convnext_tiny_stage_0_block_1_depthwise_conv", ["convnext_tiny_stage_0", "convnext_tiny_stage_0_block_1"]),
    ("predictions", []),
])
def test_name_prefixes(name, prefixes):
    assert name_prefixes(name) == prefixes


@pytest.mark.parametrize("name,kind,default", [
    ("conv2d_54", "Conv2D", True), ("activation", "Activation", True), ("re_lu_9", "ReLU", True),
    ("add_3", "Add", True), ("custom_scale_layer_17", "CustomScaleLayer", True),
    ("conv2_block1_add", "Add", False), ("mixed5", "Concatenate", False), ("fc1", "Dense", False),
])
def test_default_names_say_nothing_about_blocks(name, kind, default):
    assert is_default_name(name, kind, default_stems()) is default


# --- synthetic networks -----------------------------------------------------------------------------


def test_resnet_names_make_stages_holding_blocks():
    d = resnet_like({2: 3, 3: 4})
    made = add_block_groups(d)
    assert made == 1 + 2 + 3 + 4                       # conv1, two stages, their blocks
    assert d.groups["conv2"].parent is None and d.groups["conv2"].kind == GroupKind.BLOCK
    assert [g for g in d.groups if d.groups[g].parent == "conv2"] == ["conv2_block1", "conv2_block2", "conv2_block3"]
    assert members(d, "conv2_block1") == {n for n in d.nodes if n.startswith("conv2_block1_")}
    assert members(d, "conv1") == {"conv1_conv", "conv1_relu"}
    assert d.nodes["avg_pool"].group is None and d.nodes["input_layer"].group is None
    for g in d.groups:
        assert_convex(d, g)


def test_mobilenet_v2_names_make_blocks_at_the_top():
    spec = []
    for b in range(1, 5):
        spec += [(f"block_{b}_expand", "Conv2D"), (f"block_{b}_expand_BN", "BatchNormalization"),
                 (f"block_{b}_depthwise", "DepthwiseConv2D"), (f"block_{b}_project", "Conv2D")]
    d = chain_named([(n, k) for n, k in spec])
    assert add_block_groups(d) == 4
    assert all(g.parent is None for g in d.groups.values())
    assert members(d, "block_3") == {"block_3_expand", "block_3_expand_BN", "block_3_depthwise", "block_3_project"}


def test_efficientnet_names_nest_blocks_in_stages_when_they_are_not_tiny():
    spec = []
    for stage, letters in ((1, "a"), (2, "ab")):
        for letter in letters:
            p = f"block{stage}{letter}"
            spec += [(f"{p}_{part}", "ReLU") for part in ("expand", "bn", "dwconv", "se", "project", "add")]
    d = chain_named(spec)
    add_block_groups(d)
    assert "block1" not in d.groups and d.groups["block1a"].parent is None   # one block: no stage
    assert d.groups["block2a"].parent == "block2" and d.groups["block2b"].parent == "block2"
    # Blocks of two layers are finer than a reader needs: the stage stays whole.
    tiny = chain_named([(f"block3{letter}_{part}", "ReLU") for letter in "abcd" for part in ("x", "y")])
    add_block_groups(tiny)
    assert list(tiny.groups) == ["block3"] and NESTED_BLOCK_SIZE > 2


def test_inception_modules_take_their_default_named_branches_but_not_the_stem():
    d = inception_like(3)
    assert add_block_groups(d) == 3
    for i in range(3):
        group = members(d, f"mixed{i}")
        assert len(group) == 1 + 6 * 3 + 2
        assert_convex(d, f"mixed{i}")
    stem = [n for n in d.nodes if d.nodes[n].group is None]
    assert stem[:3] == ["input_layer", "conv2d", "batch_normalization"] and "max_pooling2d" in stem


def test_a_branch_forking_inside_a_module_belongs_to_it():
    """InceptionV3's mixed9: a default-named branch splits into two convolutions, both read by
    the module's concatenations."""
    d = inception_like(1)
    x = "mixed0"
    y = d.add("Conv2D", args={"filters": 4, "kernel_size": 1}, inputs=[x]).name
    fork = d.add("Activation", inputs=[y]).name
    left = d.add("Conv2D", args={"filters": 4, "kernel_size": (1, 3)}, inputs=[fork]).name
    right = d.add("Conv2D", args={"filters": 4, "kernel_size": (3, 1)}, inputs=[fork]).name
    inner = d.add("Concatenate", "mixed1_0", inputs=[left, right]).name
    pool = d.add("AveragePooling2D", inputs=[x]).name
    d.add("Concatenate", "mixed1", inputs=[inner, pool])
    add_block_groups(d)
    assert members(d, "mixed1") == {y, fork, left, right, inner, pool, "mixed1"}
    assert_convex(d, "mixed1")


def test_a_layer_named_like_the_prefix_ends_its_block():
    spec = []
    for b in (1, 2, 3):
        spec += [(f"block35_{b}_mixed", "ReLU"), (f"block35_{b}_conv", "ReLU"), (None, "ReLU"), (None, "ReLU"),
                 (f"block35_{b}", "ReLU")]
    d = chain_named(spec)
    add_block_groups(d)
    assert d.groups["block35_2"].parent == "block35"
    assert members(d, "block35_2") == {"block35_2_mixed", "block35_2_conv", "re_lu_2", "re_lu_3", "block35_2"}


def test_nasnet_cells_are_grouped_by_the_suffix_and_named_after_their_last_layer():
    d = nasnet_like(["stem_1", "stem_2", "0", "1", "2", "reduce_3", "4"])
    made = add_block_groups(d)
    assert made == 7
    assert set(d.groups) == {f"{'reduction' if c.startswith(('stem', 'reduce')) else 'normal'}_concat_{c}"
                             for c in ("stem_1", "stem_2", "0", "1", "2", "reduce_3", "4")}
    cell = members(d, "normal_concat_1")
    assert {n for n in d.nodes if n.endswith("_1") and not n.endswith("stem_1")
            and not n.startswith("activation")} <= cell
    assert "normal_conv_1_1" in cell and "separable_conv_1_bn_normal_left2_1" in cell
    assert sum(1 for n in cell if n.startswith("activation")) == 5   # its own activations come with it
    for g in d.groups:
        assert_convex(d, g)


def test_a_default_named_merge_ends_the_block_it_reads_last():
    """Xception: each block's output is added, by a default-named ``add``, to a default-named
    shortcut convolution of the block before's output; both belong to the block."""
    d = Design()
    x = d.add("InputLayer", args={"shape": (32, 32, 3)}).name
    x = d.add("Conv2D", "block1_conv1", args={"filters": 4, "kernel_size": 3}, inputs=[x]).name
    x = d.add("ReLU", "block1_conv1_act", inputs=[x]).name
    for b in (2, 3, 4):
        shortcut = d.add("Conv2D", args={"filters": 4, "kernel_size": 1}, inputs=[x]).name
        shortcut = d.add("BatchNormalization", inputs=[shortcut]).name
        y = d.add("ReLU", f"block{b}_sepconv1_act", inputs=[x]).name
        y = d.add("SeparableConv2D", f"block{b}_sepconv1", args={"filters": 4, "kernel_size": 3}, inputs=[y]).name
        y = d.add("MaxPooling2D", f"block{b}_pool", inputs=[y]).name
        x = d.add("Add", inputs=[y, shortcut]).name
    d.add("GlobalAveragePooling2D", "avg_pool", inputs=[x])
    add_block_groups(d)
    assert members(d, "block3") == {"block3_sepconv1_act", "block3_sepconv1", "block3_pool",
                                    "add_1", "conv2d_1", "batch_normalization_1"}
    assert [n.name for n in d if n.group is None] == ["input_layer", "avg_pool"]
    for g in d.groups:
        assert_convex(d, g)


def test_default_names_alone_make_no_group():
    d = chain_named([(None, "Dense"), (None, "ReLU")] * 20)
    assert add_block_groups(d) == 0 and d.groups == {}


def test_a_block_broken_by_another_named_layer_is_no_block():
    d = chain_named([("part1_a", "ReLU"), ("other", "ReLU"), ("part1_b", "ReLU"), ("x2_a", "ReLU"), ("x2_b", "ReLU")])
    add_block_groups(d)
    assert "part1" not in d.groups           # "other" lies between its two layers
    assert members(d, "x2") == {"x2_a", "x2_b"}


def test_names_never_seen_follow_the_same_rules():
    spec = []
    for layer in range(1, 4):
        spec += [(f"encoder3_layer{layer}_{part}", "ReLU") for part in ("attn", "norm", "mlp", "dropout", "out")]
    d = chain_named(spec + [("decoder_out", "ReLU")])
    add_block_groups(d)
    assert d.groups["encoder3_layer2"].parent == "encoder3"
    assert len(members(d, "encoder3")) == 15


def test_nested_model_groups_are_respected():
    d = resnet_like({2: 3})
    d.set_group("backbone", Group("backbone", GroupKind.MODEL))
    inner = [n for n in d.nodes if n.startswith(("conv2_block2", "conv2_block3"))]
    for n in inner:
        d.set_node_group(n, "backbone")
    add_block_groups(d)
    for g, group in d.groups.items():
        if group.kind != GroupKind.BLOCK:
            continue
        inside = members(d, g)
        assert inside <= set(inner) or not inside & set(inner), g     # never across the model's edge
    assert d.groups["conv2_block2"].parent == "backbone" or \
        d.groups[d.groups["conv2_block2"].parent or ""].parent == "backbone"
    assert "conv2_block1" in d.groups and d.groups["conv2_block1"].parent is None


def test_grouping_twice_makes_nothing_new_and_no_layer_is_in_two_groups():
    d = resnet_like({2: 3, 3: 2})
    add_block_groups(d)
    before = (dict(d.groups), {n.name: n.group for n in d})
    assert add_block_groups(d) == 0
    assert (dict(d.groups), {n.name: n.group for n in d}) == before
    for g in d.groups:
        assert len(members(d, g)) >= 2


def test_a_large_design_opens_with_its_blocks_collapsed():
    d = resnet_like({2: 3, 3: 4, 4: 6, 5: 3})
    add_block_groups(d)
    d.set_group("mine", Group("mine", GroupKind.USER))
    assert collapse_for_size(d, threshold=len(d)) == 0
    assert not any(g.collapsed for g in d.groups.values())
    collapsed = collapse_for_size(d, threshold=100)
    assert collapsed == len(d.groups) - 1 and not d.groups["mine"].collapsed
    assert shown_cards(d) == 1 + 5 + 1   # input, conv1 … conv5, avg_pool
    assert collapse_for_size(d, threshold=100) == 0


# --- real applications ---------------------------------------------------------------------------


APPLICATIONS = {
    # name: (groups made, at most this many cards shown with blocks collapsed)
    "ResNet50": (22, 10),
    "DenseNet121": (66, 16),
    "MobileNetV2": (17, 30),
    "EfficientNetB0": (21, 22),
    "InceptionV3": (11, 32),
    "NASNetMobile": (16, 24),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_real_applications_open_as_a_few_dozen_cards(name):
    keras = pytest.importorskip("keras")
    from engine.keras_import import design_from_keras_config
    from engine.layout import card_rect, design_layout, group_card_rect

    size = (75, 75, 3) if name == "InceptionV3" else (32, 32, 3)
    model = getattr(keras.applications, name)(weights=None, input_shape=size, classes=10)
    design = design_from_keras_config(json.loads(model.to_json()))
    keras.backend.clear_session()
    groups, cards = APPLICATIONS[name]
    # The import made the blocks and collapsed them (more than 150 layers), as the window opens it.
    blocks = [g for g in design.groups.values() if g.kind is GroupKind.BLOCK]
    assert len(blocks) == groups and all(g.collapsed for g in blocks)
    assert add_block_groups(design) == 0 and collapse_for_size(design) == 0  # nothing left to do
    for g in design.groups:
        assert_convex(design, g)
        assert len(members(design, g)) >= 2
    assert shown_cards(design) <= cards
    nodes, positions = design_layout(design)
    def room(n: str) -> tuple[float, float, float, float]:
        g = design.collapsed_group(n)
        return group_card_rect(positions[g]) if g else card_rect(nodes[n])
    shown = {design.collapsed_group(n) or n: room(n) for n in design.nodes}
    rects = sorted(shown.values())
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
