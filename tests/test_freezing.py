"""Freezing layers: the op and its undo, the counts (as Keras counts them), the project file
(version 4 and the migration), Keras import and build, the Python export, and pasting."""

from __future__ import annotations

import copy
import json
from math import prod
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import project_file
from engine.analysis import analyse
from engine.design import Design, Group, GroupKind, chain
from engine.editing import SetTrainable, apply_all, apply_op, plan_paste, plan_set_trainable, touched_by
from engine.errors import FileFormatError
from engine.examples import seed_design
from engine.export.python_source import python_source
from engine.freezing import backbone_nodes, frozen_nodes
from engine.grouping import group_summary
from engine.keras_build import build_keras_model
from engine.keras_import import import_keras_config
from engine.project_file import design_from_dict, design_to_dict, load_project, save_project

SMALL = [("InputLayer", {"shape": (8, 8, 3)}), ("Conv2D", {"filters": 4, "kernel_size": 3}),
         ("BatchNormalization", {}), ("GlobalAveragePooling2D", {}),
         ("Dense", {"units": 5, "activation": "softmax"})]


def small() -> Design:
    return chain(*SMALL)


# --- the op ------------------------------------------------------------------------------------

def test_freezing_many_layers_is_one_op_whose_inverse_restores_each_flag():
    d = small()
    d.nodes["batch_normalization"].trainable = False  # already frozen: stays so on undo
    before = copy.deepcopy(d)
    ops = plan_set_trainable(d, ["conv2d", "batch_normalization", "dense"], False)
    assert ops == [SetTrainable(("conv2d", "dense"), False)]  # only the flags that change, in order
    assert ops[0].describe() == "Freeze 2 layers"
    inverses = apply_all(d, ops)
    assert frozen_nodes(d) == {"conv2d", "batch_normalization", "dense"}
    apply_all(d, inverses)
    assert d.nodes == before.nodes
    # Unfreezing a mixed set and undoing it gives each layer its own flag back.
    inverse = apply_op(d, SetTrainable(("conv2d", "batch_normalization"), True))
    assert frozen_nodes(d) == set()
    apply_op(d, inverse)
    assert frozen_nodes(d) == {"batch_normalization"}
    assert plan_set_trainable(d, ["batch_normalization"], False) == []  # nothing to do


def test_an_unknown_layer_changes_nothing():
    d = small()
    with pytest.raises(Exception, match="no layer named 'nope'"):
        apply_op(d, SetTrainable(("conv2d", "nope"), False))
    assert frozen_nodes(d) == set()
    with pytest.raises(Exception, match="no layer named 'nope'"):
        plan_set_trainable(d, ["nope"], False)


def test_a_frozen_layers_weights_all_count_as_non_trainable_and_the_incremental_analysis_agrees():
    d = small()
    a = analyse(d)
    # conv 3·3·3·4+4 = 112, BN 4·4 = 16 (8 moving statistics), dense 4·5+5 = 25
    assert (a.trainable_params, a.non_trainable_params) == (145, 8)
    op = SetTrainable(("conv2d", "batch_normalization"), False)
    assert touched_by(d, op) == {"conv2d", "batch_normalization"}
    apply_op(d, op)
    b = analyse(d, previous=a, touched=touched_by(d, op))
    assert (b.trainable_params, b.non_trainable_params) == (25, 128)
    assert b == analyse(d)
    assert b.changes is not None and b.changes.nodes == {"conv2d", "batch_normalization"}
    assert (b.nodes["conv2d"].trainable_params, b.nodes["conv2d"].non_trainable_params) == (0, 112)


def test_a_group_summary_counts_its_frozen_layers():
    d = small()
    d.set_group("features", Group("features", GroupKind.USER))
    for name in ("conv2d", "batch_normalization", "global_average_pooling2d"):
        d.set_node_group(name, "features")
    apply_all(d, plan_set_trainable(d, ["conv2d"], False))
    s = group_summary(d, analyse(d), "features")
    assert (s.layers, s.frozen, s.all_frozen) == (3, 1, False)
    assert (s.trainable_params, s.non_trainable_params) == (8, 120)
    apply_all(d, plan_set_trainable(d, d.group_members("features"), False))
    assert group_summary(d, analyse(d), "features").all_frozen


def test_pasting_a_frozen_layer_pastes_it_frozen():
    d = small()
    d.nodes["conv2d"].trainable = False
    copied = design_from_dict(design_to_dict(d))  # what the clipboard carries
    ops, names = plan_paste(d, [copied.nodes["conv2d"], copied.nodes["dense"]])
    apply_all(d, ops)
    assert [d.nodes[n].trainable for n in names] == [False, True]


# --- the project file --------------------------------------------------------------------------

def test_files_write_trainable_false_only_for_frozen_layers(tmp_path: Path):
    d = seed_design()
    apply_all(d, plan_set_trainable(d, ["conv2d", "conv2d_1"], False))
    path = tmp_path / "frozen.convas"
    save_project(path, d)
    doc = json.loads(path.read_text())
    assert doc["version"] == project_file.VERSION >= 4  # the flag came with version 4
    assert {n["name"]: n.get("trainable") for n in doc["design"]["nodes"] if "trainable" in n} == {
        "conv2d": False, "conv2d_1": False}
    again = load_project(path).design
    assert again == d and frozen_nodes(again) == {"conv2d", "conv2d_1"}


def test_a_version_3_file_opens_with_its_layers_trainable_unless_keras_froze_them(tmp_path: Path):
    path = tmp_path / "old.convas"
    save_project(path, seed_design())
    doc = json.loads(path.read_text())
    doc["version"] = 3
    nodes = doc["design"]["nodes"]
    nodes[1]["config"]["trainable"] = False  # an imported frozen layer, as version 3 kept it
    nodes[3]["config"]["trainable"] = True
    nodes[5]["trainable"] = False  # meant nothing in version 3
    path.write_text(json.dumps(doc))
    d = load_project(path).design
    assert frozen_nodes(d) == {nodes[1]["name"]}
    assert all("trainable" not in n.config for n in d)


@pytest.mark.parametrize("value", ["no", 0, None, [False]])
def test_a_trainable_flag_that_is_not_true_or_false_is_a_clear_error(tmp_path: Path, value: Any):
    path = tmp_path / "bad.convas"
    save_project(path, seed_design())
    doc = json.loads(path.read_text())
    doc["design"]["nodes"][1]["trainable"] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError, match=r"design\.nodes\[1\] \('conv2d'\)\.trainable must be "
                                              r"true or false \(false: the layer is frozen\)"):
        load_project(path)


# --- Keras: build, import, export, and the counts Keras reports -------------------------------

def keras_split(model: Any) -> tuple[int, int]:
    trainable = sum(int(prod(w.shape)) for w in model.trainable_weights)
    return trainable, model.count_params() - trainable


def _conv_net() -> Design:
    d = chain(("InputLayer", {"shape": (12, 12, 3)}), ("Conv2D", {"filters": 6, "kernel_size": 3}),
              ("BatchNormalization", {}), ("DepthwiseConv2D", {"kernel_size": 3}),
              ("SeparableConv2D", {"filters": 8, "kernel_size": 3}), ("BatchNormalization", {}),
              ("Flatten", {}), ("Dense", {"units": 7}), ("Dense", {"units": 3}))
    return d


DESIGNS = {
    "nothing frozen": (_conv_net, []),
    "conv and batch norm": (_conv_net, ["conv2d", "batch_normalization"]),
    "depthwise, separable and the second batch norm": (
        _conv_net, ["depthwise_conv2d", "separable_conv2d", "batch_normalization_1"]),
    "the backbone": (_conv_net, ["backbone"]),
    "everything": (_conv_net, ["conv2d", "batch_normalization", "depthwise_conv2d", "separable_conv2d",
                               "batch_normalization_1", "dense", "dense_1"]),
}


@pytest.mark.parametrize("case", DESIGNS)
def test_trainable_counts_match_keras(case: str):
    make, frozen = DESIGNS[case]
    d = make()
    names = backbone_nodes(d) if frozen == ["backbone"] else frozen
    apply_all(d, plan_set_trainable(d, sorted(names), False))
    model = build_keras_model(d)
    a = analyse(d)
    assert (a.trainable_params, a.non_trainable_params) == keras_split(model)
    assert {layer.name for layer in model.layers if not layer.trainable} == set(names)


def test_a_frozen_batch_normalization_runs_in_inference_mode():
    d = chain(("InputLayer", {"shape": (4,)}), ("BatchNormalization", {}))
    apply_all(d, plan_set_trainable(d, ["batch_normalization"], False))
    model = build_keras_model(d)
    x = np.random.default_rng(0).normal(3.0, 2.0, (8, 4)).astype("float32")
    # Training mode would normalise by the batch's statistics; a frozen one uses its moving ones.
    np.testing.assert_allclose(np.asarray(model(x, training=True)), np.asarray(model(x, training=False)),
                               rtol=1e-6)


def test_import_reads_frozen_layers_and_a_frozen_nested_model():
    import keras

    inner_in = keras.Input((10, 10, 3))
    inner_out = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3, name="conv")(inner_in))
    backbone = keras.Model(inner_in, inner_out, name="backbone")
    backbone.trainable = False
    x = keras.Input((10, 10, 3), name="image")
    y = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(x))
    hidden = keras.layers.Dense(6, name="hidden")
    hidden.trainable = False
    model = keras.Model(x, keras.layers.Dense(2, name="out")(hidden(y)))
    doc = json.loads(model.to_json())
    result = import_keras_config(doc)
    d = result.design
    assert frozen_nodes(d) == {"conv", "bn", "hidden"}
    assert all("trainable" not in n.config for n in d)
    assert d.groups["backbone"].kind == GroupKind.MODEL
    a = analyse(d)
    assert (a.trainable_params, a.non_trainable_params) == keras_split(model)
    rebuilt = build_keras_model(d)
    assert keras_split(rebuilt) == keras_split(model)
    # Also when the file says so only on the nested model (the layers' own configs trainable).
    for entry in doc["config"]["layers"]:
        if entry["class_name"] == "Functional":
            for layer in entry["config"]["layers"]:
                layer["config"]["trainable"] = True
    assert frozen_nodes(import_keras_config(doc).design) == {"conv", "bn", "hidden"}


def test_the_python_export_freezes_what_the_design_freezes():
    d = small()
    apply_all(d, plan_set_trainable(d, ["conv2d"], False))
    source = python_source(d)
    assert "layers.Conv2D(filters=4, kernel_size=(3, 3), trainable=False, name='conv2d')" in source
    assert source.count("trainable=False") == 1
    scope: dict[str, Any] = {}
    exec(compile(source, "model.py", "exec"), scope)  # our own generated script
    model = scope["build_model"]()
    assert [layer.name for layer in model.layers if not layer.trainable] == ["conv2d"]
    assert keras_split(model) == (analyse(d).trainable_params, analyse(d).non_trainable_params)
