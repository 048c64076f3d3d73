"""Importing Keras architectures without TensorFlow, checked against real Keras models.

The ``slow`` tests build real models with Keras, save them as ``.keras`` and ``model.to_json()``
files, import those files and compare the design (names, kinds, arguments, connections) and the
analysis (output shapes, parameter counts) with what Keras itself says. The others use configs
written by hand, including the Keras 2 / tf.keras layout.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from engine.analysis import analyse
from engine.design import GroupKind, TensorRef
from engine.errors import FileFormatError, UnsupportedLayerError
from engine.keras_import import design_from_keras_config, import_keras_config, import_keras_file, load_keras_design
from engine.layers import CATALOGUE, canonical_kind

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# --- hand-written configs: Keras 2 / tf.keras -----------------------------------------------

def k2_layer(cls: str, name: str, inbound: list | None = None, **config: Any) -> dict:
    entry = {"class_name": cls, "config": {"name": name, "trainable": True, "dtype": "float32", **config},
             "name": name, "inbound_nodes": []}
    if inbound is not None:
        entry["inbound_nodes"] = [[[src, node, 0, {}] for src, node in call] for call in inbound]
    return entry


KERAS2_FUNCTIONAL = {
    "class_name": "Functional",
    "config": {
        "name": "legacy_net",
        "layers": [
            {"class_name": "InputLayer", "name": "image",
             "config": {"batch_input_shape": [None, 32, 32, 3], "dtype": "float32", "sparse": False,
                        "ragged": False, "name": "image"}, "inbound_nodes": []},
            {"class_name": "InputLayer", "name": "meta",
             "config": {"batch_input_shape": [4, 16], "dtype": "float32", "sparse": False, "name": "meta"},
             "inbound_nodes": []},
            k2_layer("Conv2D", "conv", [[("image", 0)]], filters=16, kernel_size=[3, 3], strides=[1, 1],
                     padding="same", data_format="channels_last", dilation_rate=[1, 1], groups=1,
                     activation="linear", use_bias=False,
                     kernel_initializer={"class_name": "GlorotUniform", "config": {"seed": None}}),
            k2_layer("BatchNormalization", "bn", [[("conv", 0)]], axis=[3], momentum=0.9, epsilon=1e-5,
                     center=True, scale=True),
            k2_layer("LeakyReLU", "leaky", [[("bn", 0)]], alpha=0.1),
            k2_layer("Conv2D", "skip", [[("image", 0)]], filters=16, kernel_size=[1, 1], activation="linear"),
            k2_layer("Add", "add", [[("leaky", 0), ("skip", 0)]]),
            k2_layer("GlobalAveragePooling2D", "gap", [[("add", 0)]], data_format="channels_last"),
            k2_layer("Dense", "shared", [[("gap", 0)], [("meta", 0)]], units=16, activation="relu",
                     use_bias=True),
            k2_layer("Concatenate", "concat", [[("shared", 0), ("shared", 1)]], axis=-1),
            k2_layer("Dense", "out", [[("concat", 0)]], units=5, activation="softmax"),
            k2_layer("Dense", "aux", [[("shared", 1)]], units=1, activation="sigmoid"),
        ],
        "input_layers": [["image", 0, 0], ["meta", 0, 0]],
        "output_layers": [["out", 0, 0], ["aux", 0, 0]],
    },
    "keras_version": "2.11.0",
    "backend": "tensorflow",
}


def test_keras2_functional_json_with_shared_layer_merges_and_two_heads(tmp_path: Path):
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(KERAS2_FUNCTIONAL))
    d = load_keras_design(path)
    assert d.name == "legacy_net"
    assert list(d.nodes) == ["image", "meta", "conv", "bn", "leaky", "skip", "add", "gap", "shared",
                             "concat", "out", "aux"]
    assert d.inputs_order == ["image", "meta"]
    assert d.outputs == [TensorRef("out"), TensorRef("aux")]
    assert d.nodes["image"].args == {"shape": (32, 32, 3)}
    assert d.nodes["meta"].args == {"shape": (16,), "batch_size": 4}
    assert d.nodes["meta"].config == {"dtype": "float32", "sparse": False}
    conv = d.nodes["conv"]
    assert conv.args["kernel_size"] == (3, 3) and conv.args["use_bias"] is False
    assert conv.config["kernel_initializer"] == {"class_name": "GlorotUniform", "config": {"seed": None}}
    assert "name" not in conv.config and "trainable" not in conv.config and conv.trainable  # the flag, not a setting
    assert d.nodes["bn"].args["axis"] == 3  # tf.keras wrote [3]
    assert d.nodes["leaky"].args == {"negative_slope": 0.1}  # Keras 2 called it alpha
    assert d.nodes["add"].inbound == [[TensorRef("leaky"), TensorRef("skip")]]
    assert d.nodes["shared"].inbound == [[TensorRef("gap")], [TensorRef("meta")]]
    assert d.nodes["concat"].inbound == [[TensorRef("shared", 0), TensorRef("shared", 1)]]
    assert d.nodes["aux"].inbound == [[TensorRef("shared", 1)]]

    a = analyse(d)
    assert a.valid, [str(p) for p in a.problems]
    assert a.nodes["add"].output_shape == (None, 32, 32, 16)
    assert sorted(map(str, a.nodes["shared"].output_shapes)) == ["(4, 16)", "(None, 16)"]
    assert a.nodes["concat"].output_shape[1:] == (32,)
    assert a.nodes["conv"].params == 3 * 3 * 3 * 16
    assert (a.nodes["bn"].trainable_params, a.nodes["bn"].non_trainable_params) == (32, 32)
    assert a.nodes["shared"].params == 16 * 16 + 16  # one set of weights for both calls


def test_shared_layer_output_shapes_are_listed_in_call_order():
    d = design_from_keras_config(KERAS2_FUNCTIONAL)
    assert analyse(d).nodes["shared"].output_shapes == [(None, 16), (4, 16)]


def test_keras2_sequential_with_batch_input_shape_on_the_first_layer():
    config = {"class_name": "Sequential", "config": {"name": "old_seq", "layers": [
        {"class_name": "Conv2D", "config": {"name": "c", "batch_input_shape": [None, 28, 28, 1],
                                            "filters": 4, "kernel_size": [3, 3], "activation": "relu"}},
        {"class_name": "Flatten", "config": {"name": "f"}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2}},
    ]}}
    d = design_from_keras_config(config)
    assert [(n.name, n.kind) for n in d] == [("input_layer", "InputLayer"), ("c", "Conv2D"),
                                             ("f", "Flatten"), ("d", "Dense")]
    assert d.nodes["input_layer"].args == {"shape": (28, 28, 1)}
    assert "batch_input_shape" not in d.nodes["c"].config
    assert d.nodes["c"].inputs == [TensorRef("input_layer")]
    a = analyse(d)
    assert a.valid and a.nodes["d"].output_shape == (None, 2)
    assert a.total_params == 40 + 26 * 26 * 4 * 2 + 2


def test_keras_2_2_sequential_config_as_a_bare_list():
    config = {"class_name": "Sequential", "config": [
        {"class_name": "Dense", "config": {"name": "d1", "units": 3, "batch_input_shape": [None, 5]}},
        {"class_name": "Dense", "config": {"name": "d2", "units": 1}}]}
    d = design_from_keras_config(config)
    assert list(d.nodes) == ["input_layer", "d1", "d2"]
    assert analyse(d).total_params == 18 + 4


def test_keras3_sequential_without_input_layer_uses_build_input_shape():
    config = {"module": "keras", "class_name": "Sequential", "config": {
        "name": "built", "layers": [
            {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
             "config": {"name": "dense", "units": 4, "activation": "tanh"}}],
        "build_input_shape": [None, 8]}}
    d = design_from_keras_config(config)
    assert d.nodes["input_layer"].args == {"shape": (8,)}
    assert d.nodes["dense"].inputs == [TensorRef("input_layer")]
    assert analyse(d).total_params == 36


def test_sequential_with_nothing_about_its_input_imports_and_the_analysis_says_so():
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Dense", "config": {"name": "dense", "units": 4}}]}}
    d = design_from_keras_config(config)
    assert list(d.nodes) == ["dense"]
    assert any("no InputLayer" in str(p) for p in analyse(d).problems)


def test_builtin_activation_written_as_an_object_is_read_by_name():
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 3]}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": {
            "module": "keras.activations", "class_name": "function", "config": "gelu",
            "registered_name": "function"}}}]}}
    assert design_from_keras_config(config).nodes["d"].args["activation"] == "gelu"


def test_every_unsupported_layer_is_named_with_its_class_and_reason():
    def layer(cls, name, src, **extra):
        return {"module": "keras.layers", "class_name": cls, "registered_name": None, "name": name,
                "config": {"name": name, **extra.pop("config", {})},
                "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__",
                                             "config": {"shape": [None, 4], "keras_history": [src, 0, 0]}}],
                                   "kwargs": {}}],
                **extra}
    config = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "name": "x",
         "config": {"name": "x", "batch_shape": [None, 4]}, "inbound_nodes": []},
        layer("Lambda", "lam", "x", config={"function": {"class_name": "__lambda__",
                                                         "config": {"code": "4wEAAAA..."}}}),
        layer("Swirl", "swirl", "lam", module=None, registered_name="Custom>Swirl"),
        layer("GRU", "gru", "swirl"),
        layer("Dense", "act", "gru", config={"units": 2, "activation": {
            "module": "builtins", "class_name": "function", "config": "my_act",
            "registered_name": "function"}}),
        layer("Dense", "fine", "act", config={"units": 2}),
    ], "input_layers": [["x", 0, 0]], "output_layers": [["fine", 0, 0]]}}
    # The strict reader refuses the model, naming each layer; the error carries what was read.
    with pytest.raises(UnsupportedLayerError) as info:
        design_from_keras_config(config, source="zoo.keras")
    assert info.value.layers == ["lam", "swirl", "gru", "act"]
    message = str(info.value)
    assert message.startswith("zoo.keras uses 4 layers Convas cannot represent:")
    assert "lam (Lambda): Lambda layers hold Python code, which Convas never runs" in message
    assert "swirl (Swirl): a custom layer class" in message
    assert "gru (GRU): Convas does not know the GRU layer yet" in message
    assert "act (Dense): uses a custom activation function 'my_act'" in message
    assert "fine (" not in message
    assert [u.name for u in info.value.unsupported] == info.value.layers
    assert list(info.value.design.nodes) == ["x", "lam", "swirl", "gru", "act", "fine"]

    # The model still opens: every layer is there, wired, the unknown ones marked.
    result = import_keras_config(config, source="zoo.keras")
    assert [str(u) for u in result.unsupported] == message.split("\n  • ")[1:]
    design = result.design
    assert [n.kind for n in design] == ["InputLayer", "Lambda", "Swirl", "GRU", "keras.layers.Dense", "Dense"]
    assert design.nodes["swirl"].inbound == [[TensorRef("lam")]]
    assert design.nodes["fine"].inbound == [[TensorRef("act")]] and design.nodes["fine"].args == {"units": 2}
    swirl = design.nodes["swirl"]
    assert swirl.args == {}
    assert swirl.config["unsupported"] == {
        "module": None, "class_name": "Swirl", "output_shapes": [[None, 4]],
        "reason": "a custom layer class (defined in Python code); Convas only knows built-in Keras layers "
                  "and never runs code from a file"}
    act = design.nodes["act"]
    assert act.kind not in CATALOGUE and act.config["units"] == 2 and "name" not in act.config
    assert act.config["unsupported"]["module"] == "keras.layers"
    assert act.config["activation"]["config"] == "my_act"  # the layer's own config, verbatim
    # The shape its consumer "fine" recorded receiving.
    assert act.config["unsupported"]["output_shapes"] == [[None, 4]]
    assert design.nodes["gru"].config["unsupported"]["output_shapes"] == [[None, 4]]


# --- hand-written Keras 3 configs: operations, helper layers, nested models, unknown layers ---

def tensor(src: str, shape: list | None = None, node: int = 0, index: int = 0) -> dict:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": "float32", "keras_history": [src, node, index]}}


def k3(cls: str, name: str, *calls: list, module: str = "keras.layers", registered: str | None = None,
       **config: Any) -> dict:
    """A Keras 3 layer entry called once per ``calls`` item (the call's positional arguments)."""
    return {"module": module, "class_name": cls, "registered_name": registered, "name": name,
            "config": {"name": name, **config},
            "inbound_nodes": [{"args": list(args), "kwargs": {}} for args in calls]}


def op(cls: str, name: str, *args: Any) -> dict:
    """An operation stored as a layer, as Keras writes ``keras.ops.add(x, 3.0)``."""
    return k3(cls, name, list(args), module="keras.src.ops.numpy", registered=cls)


def k3_input(name: str, *shape: int | None) -> dict:
    return {"module": "keras.layers", "class_name": "InputLayer", "name": name,
            "config": {"name": name, "batch_shape": [None, *shape]}, "inbound_nodes": []}


def functional(name: str, layers: list, inputs: list[str], outputs: list[str], *calls: list) -> dict:
    """A Functional model config; with ``calls``, the entry of a model nested in another, called
    once per ``calls`` item (the call's positional arguments)."""
    entry = {"module": "keras", "class_name": "Functional",
             "config": {"name": name, "layers": layers, "input_layers": [[i, 0, 0] for i in inputs],
                        "output_layers": [[o, 0, 0] for o in outputs]}}
    if calls:
        entry.update(name=name, inbound_nodes=[{"args": list(args), "kwargs": {}} for args in calls])
    return entry


def test_operations_with_a_number_on_either_side_or_two_tensors():
    conv = k3("Conv2D", "conv", [tensor("x")], filters=3, kernel_size=[1, 1])
    pool = k3("GlobalAveragePooling2D", "pool", [tensor("conv")], keepdims=True)
    config = functional("hard_sigmoid", [
        k3_input("x", 4, 4, 3), conv, pool,
        op("Add", "plus", tensor("conv", [None, 4, 4, 3]), 3.0),
        op("Subtract", "rsub", 3, tensor("plus")),
        op("Multiply", "scale", tensor("rsub"), 0.16666666666666666),
        op("Divide", "half", tensor("scale"), 2.0),
        op("Maximum", "mx", tensor("half"), tensor("plus")),
        op("Minimum", "mn", tensor("mx"), tensor("pool", [None, 1, 1, 3])),
    ], ["x"], ["mn"])
    result = import_keras_config(config)
    assert result.unsupported == []
    design = result.design
    kinds = {n.name: n.kind for n in design}
    assert [kinds[n] for n in ("plus", "rsub", "scale", "half", "mx", "mn")] == [
        "OpsAdd", "OpsSubtract", "OpsMultiply", "OpsDivide", "OpsMaximum", "OpsMinimum"]
    assert design.nodes["plus"].args == {"scalar": 3.0}
    assert design.nodes["rsub"].args == {"scalar": 3, "scalar_first": True}
    assert design.nodes["mn"].args == {} and design.nodes["mn"].config == {}
    assert design.nodes["rsub"].inbound == [[TensorRef("plus")]]
    assert design.nodes["mn"].inbound == [[TensorRef("mx"), TensorRef("pool")]]

    def card(name: str) -> str:
        spec = CATALOGUE[design.nodes[name].kind]
        return spec.describe(spec.normalise(design.nodes[name].args)[0])
    assert [card(n) for n in ("plus", "rsub", "scale", "half", "mx", "mn")] == [
        "+ 3.0", "3.0 − x", "× 0.1667", "÷ 2.0", "max(a, b)", "min(a, b)"]

    a = analyse(design)
    assert a.valid, [str(p) for p in a.problems]
    assert all(a.nodes[n].output_shape == (None, 4, 4, 3) for n in ("plus", "rsub", "scale", "half", "mx", "mn"))
    assert all(a.nodes[n].params == 0 for n in ("plus", "rsub", "scale", "half", "mx", "mn"))
    assert a.total_params == 3 * 3 + 3


@pytest.mark.parametrize("layers,reason", [
    ([op("Cumsum", "cs", tensor("x"))],
     "keras.ops.cumsum is not one of the operations Convas reads (keras.ops.add, keras.ops.subtract, "
     "keras.ops.multiply, keras.ops.divide, keras.ops.maximum, keras.ops.minimum); rebuild what it does with layers"),
    ([op("Add", "cs", tensor("x"), [1.0, 2.0, 3.0])],
     "applies keras.ops.add to operands Convas cannot represent; Convas reads it applied to two tensors or "
     "to a tensor and a number, so rebuild it with layers"),
    ([op("Multiply", "cs", 2.0, 3.0)], "applies keras.ops.multiply to operands Convas cannot represent"),
])
def test_operations_convas_does_not_read_are_unsupported_cards_with_a_true_hint(layers, reason):
    config = functional("m", [k3_input("x", 3), *layers, k3("Dense", "d", [tensor("cs", [None, 3])], units=2)],
                        ["x"], ["d"])
    with pytest.raises(UnsupportedLayerError, match="1 layer Convas cannot represent") as info:
        design_from_keras_config(config)
    assert reason in str(info.value)
    node = import_keras_config(config).design.nodes["cs"]
    assert node.config["unsupported"]["reason"].startswith(reason)
    assert node.config["unsupported"]["module"] == "keras.src.ops.numpy"
    assert node.config["unsupported"]["output_shapes"] == [[None, 3]]
    assert node.kind not in CATALOGUE


def test_keras_helper_layers_are_known_by_module_and_class_only():
    def scale(module: str) -> dict:
        return k3("LayerScale", "ls", [tensor("x")], module=module, registered="LayerScale",
                  init_values=1e-6, projection_dim=8)
    custom = k3("CustomScaleLayer", "cs", [[tensor("x"), tensor("ls")]],
                module="keras.src.applications.inception_resnet_v2", registered="CustomScaleLayer", scale=0.17)
    config = functional("m", [k3_input("x", 4, 4, 8), scale("keras.src.applications.convnext"), custom],
                        ["x"], ["cs"])
    design = design_from_keras_config(config)
    assert design.nodes["ls"].kind == "LayerScale"
    assert design.nodes["ls"].args == {"init_values": 1e-6, "projection_dim": 8}
    assert design.nodes["cs"].kind == "CustomScaleLayer" and design.nodes["cs"].args == {"scale": 0.17}
    assert design.nodes["cs"].inbound == [[TensorRef("x"), TensorRef("ls")]]
    a = analyse(design)
    assert a.valid and a.nodes["cs"].output_shape == (None, 4, 4, 8)
    assert (a.nodes["ls"].trainable_params, a.total_params) == (8, 8)

    # A class of that name anywhere else is not Keras's: it stays unsupported.
    for module, reason in [("my_pkg.layers", "a custom layer class (from my_pkg.layers)"),
                           ("keras.layers", "Convas does not know the LayerScale layer yet")]:
        config["config"]["layers"][1] = scale(module)
        result = import_keras_config(config)
        assert [(u.name, u.reason.split(";")[0]) for u in result.unsupported] == [("ls", reason)]
        assert result.design.nodes["ls"].kind == f"{module}.LayerScale"  # never the catalogue's kind


def _sequential_entry(name: str, layers: list, *calls: list, with_input: str | None = None) -> dict:
    inner = ([{"module": "keras.layers", "class_name": "InputLayer",
               "config": {"name": with_input, "batch_shape": [None, 4, 4, 3]}}] if with_input else [])
    inner += [{"module": "keras.layers", "class_name": cls, "config": {"name": n, **cfg}} for cls, n, cfg in layers]
    return {"module": "keras", "class_name": "Sequential", "name": name,
            "config": {"name": name, "trainable": True, "layers": inner},
            "inbound_nodes": [{"args": list(args), "kwargs": {"mask": None}} for args in calls]}


def nested_config() -> dict:
    """x → stem (Sequential: conv, ln) → conv → block (Functional: dense, then deep (Sequential:
    conv)) → head. "conv" is the name of a layer at every level."""
    stem = _sequential_entry("stem", [("Conv2D", "conv", {"filters": 3, "kernel_size": [1, 1]}),
                                      ("LayerNormalization", "ln", {})], [tensor("x")], with_input="input_layer_1")
    deep = _sequential_entry("deep", [("Dense", "conv", {"units": 5})], [tensor("dense")])
    block = functional("block", [k3_input("inner_in", 4, 4, 6), k3("Dense", "dense", [tensor("inner_in")], units=4),
                                 deep], ["inner_in"], ["deep"], [tensor("conv")])
    return functional("outer", [
        k3_input("x", 4, 4, 3), stem,
        k3("Conv2D", "conv", [tensor("stem", [None, 4, 4, 3])], filters=6, kernel_size=[1, 1]),
        block,
        k3("Dense", "head", [tensor("block", [None, 4, 4, 5])], units=2),
    ], ["x"], ["head"])


def test_nested_models_are_flattened_into_groups_with_exact_wiring():
    result = import_keras_config(nested_config())
    design = result.design
    assert result.unsupported == []
    assert list(design.nodes) == ["x", "stem_conv", "ln", "conv", "dense", "block_conv", "head"]
    assert design.nodes["stem_conv"].inbound == [[TensorRef("x")]]  # the inner InputLayer is dropped
    assert design.nodes["conv"].inbound == [[TensorRef("ln")]]
    assert design.nodes["dense"].inbound == [[TensorRef("conv")]]
    assert design.nodes["block_conv"].inbound == [[TensorRef("dense")]]
    assert design.nodes["head"].inbound == [[TensorRef("block_conv")]]
    assert design.outputs == [TensorRef("head")]
    assert result.paths == {"stem_conv": ("stem", "conv"), "ln": ("stem", "ln"), "dense": ("block", "dense"),
                            "block_conv": ("block", "deep", "conv")}

    groups = design.groups
    assert {g.name: (g.kind, g.parent) for g in groups.values()} == {
        "stem": (GroupKind.MODEL, None), "block": (GroupKind.MODEL, None), "deep": (GroupKind.MODEL, "block")}
    assert {n.name: n.group for n in design} == {"x": None, "stem_conv": "stem", "ln": "stem", "conv": None,
                                                  "dense": "block", "block_conv": "deep", "head": None}
    assert groups["stem"].origin == {"module": "keras", "class_name": "Sequential",
                                     "config": {"name": "stem", "trainable": True}}
    assert "layers" not in groups["block"].origin["config"]

    a = analyse(design)
    assert a.valid, [str(p) for p in a.problems]
    assert a.nodes["block_conv"].output_shape == (None, 4, 4, 5)
    assert a.total_params == (3 * 3 + 3) + 6 + (3 * 6 + 6) + (6 * 4 + 4) + (4 * 5 + 5) + (5 * 2 + 2)


def test_a_nested_model_applied_twice_gives_its_layers_two_calls():
    tower = functional("tower", [k3_input("t_in", 3), k3("Dense", "d", [tensor("t_in")], units=2)], ["t_in"], ["d"],
                       [tensor("a")], [tensor("b")])
    config = functional("siamese", [k3_input("a", 3), k3_input("b", 3), tower,
                                    k3("Subtract", "diff", [[tensor("tower", node=0), tensor("tower", node=1)]])],
                        ["a", "b"], ["diff"])
    design = design_from_keras_config(config)
    assert list(design.nodes) == ["a", "b", "d", "diff"]
    assert design.nodes["d"].inbound == [[TensorRef("a")], [TensorRef("b")]]
    assert design.nodes["diff"].inbound == [[TensorRef("d", 0), TensorRef("d", 1)]]
    assert analyse(design).total_params == 3 * 2 + 2  # one set of weights


@pytest.mark.parametrize("change,expected", [
    (lambda c: c["config"]["layers"][4]["inbound_nodes"][0]["args"][0]["config"].update(keras_history=["block", 1, 0]),
     "refers to application 1 of 'block', which is applied only 1 time"),
    (lambda c: c["config"]["layers"][4]["inbound_nodes"][0]["args"][0]["config"].update(keras_history=["block", 0, 2]),
     "uses output 2 of the nested model 'block', which has 1 output"),
    (lambda c: c["config"]["layers"][3]["config"]["layers"][1]["inbound_nodes"][0]["args"][0]["config"].update(
        keras_history=["ghost", 0, 0]), "layer 'dense' refers to a layer 'ghost' that is not in the model"),
])
def test_broken_nested_models_are_file_format_errors(change, expected):
    config = nested_config()
    change(config)
    with pytest.raises(FileFormatError, match=expected):
        import_keras_config(config)


def test_nested_models_applied_too_often_are_refused_before_they_are_expanded():
    """Two levels of a model applied 1,001 times would flatten to 10⁶ calls of one layer."""
    inner = functional("inner", [k3_input("i", 2), k3("Dense", "d", [tensor("i")], units=2)], ["i"], ["d"],
                       *([[tensor("m")]] * 1001))
    middle = functional("middle", [k3_input("m", 2), inner], ["m"], ["inner"], *([[tensor("x")]] * 1001))
    config = functional("outer", [k3_input("x", 2), middle], ["x"], ["middle"])
    with pytest.raises(FileFormatError, match="'middle' is applied 1,001 times, which would give its layers "
                                              "1,002,001 calls; Convas reads at most 1,000,000"):
        import_keras_config(config)


def test_an_unsupported_layer_ending_a_nested_model_takes_its_shape_from_the_outer_consumer():
    wrap = _sequential_entry("wrap", [("Dense", "d", {"units": 7}), ("Lambda", "lam", {"function": "x"})],
                             [tensor("x")])
    config = functional("m", [k3_input("x", 3), wrap, k3("Dense", "head", [tensor("wrap", [None, 7])], units=1)],
                        ["x"], ["head"])
    result = import_keras_config(config)
    assert [(u.name, u.class_name) for u in result.unsupported] == [("lam", "Lambda")]
    lam = result.design.nodes["lam"]
    assert lam.group == "wrap" and lam.inbound == [[TensorRef("d")]]
    assert lam.config["unsupported"]["output_shapes"] == [[None, 7]]
    assert result.design.nodes["head"].inbound == [[TensorRef("lam")]]
    # Building it names the layer and says why, before Keras is ever asked.
    from engine.keras_build import KerasBuildError, keras_arguments
    with pytest.raises(KerasBuildError, match="^lam: Lambda layers hold Python code"):
        keras_arguments(lam)


def test_a_sequential_model_records_shapes_in_the_next_layers_build_config():
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 3]}},
        {"module": "my_pkg", "class_name": "Twice", "registered_name": "my_pkg>Twice", "config": {"name": "t"}},
        {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2},
         "build_config": {"input_shape": [None, 6]}}]}}
    result = import_keras_config(config)
    card = result.design.nodes["t"]
    assert card.kind == "Twice" and card.inbound == [[TensorRef("x")]]
    assert card.config["unsupported"]["output_shapes"] == [[None, 6]]
    assert card.config["unsupported"]["module"] == "my_pkg"


def test_subclassed_model_is_unsupported():
    config = {"module": "__main__", "class_name": "MyModel", "config": {"name": "my_model", "units": 3},
              "registered_name": "MyModel"}
    with pytest.raises(UnsupportedLayerError, match="subclassed Model"):
        design_from_keras_config(config)


# --- bad files -----------------------------------------------------------------------------

def test_keras_file_that_is_not_a_zip(tmp_path: Path):
    path = tmp_path / "model.keras"
    path.write_text("this is not a zip archive")
    with pytest.raises(FileFormatError, match="model.keras is not a .keras file: a .keras file is a zip"):
        load_keras_design(path)


def test_zip_without_config_json(tmp_path: Path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{}")
    with pytest.raises(FileFormatError, match="model.keras is a zip archive without config.json"):
        load_keras_design(path)


def test_damaged_zip(tmp_path: Path):
    good = tmp_path / "good.keras"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps(KERAS2_FUNCTIONAL) * 3)
    path = tmp_path / "model.keras"
    path.write_bytes(good.read_bytes()[:200])
    with pytest.raises(FileFormatError, match="model.keras"):
        load_keras_design(path)


def test_truncated_json(tmp_path: Path):
    path = tmp_path / "model.json"
    text = json.dumps(KERAS2_FUNCTIONAL, indent=1)
    path.write_text(text[: len(text) // 3])
    with pytest.raises(FileFormatError, match=r"model.json is not valid JSON: .* line \d+, column \d+"):
        load_keras_design(path)


def test_hdf5_file_gets_a_useful_message(tmp_path: Path):
    path = tmp_path / "old.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(FileFormatError, match=r"legacy HDF5 \(.h5\) model.*model.save\('model.keras'\)"):
        load_keras_design(path)


def test_a_convas_project_is_not_a_keras_model(tmp_path: Path):
    from engine.examples import example_path
    path = tmp_path / "p.json"
    path.write_text(example_path("seed_cnn").read_text())
    with pytest.raises(FileFormatError, match="is a Convas project, not a Keras model"):
        load_keras_design(path)


@pytest.mark.parametrize("change,expected", [
    (lambda c: c["config"].update(layers="x"), "no list of layers"),
    (lambda c: c["config"]["layers"][2]["inbound_nodes"][0][0].__setitem__(0, "ghost"),
     "layer 'conv' refers to a layer 'ghost' that is not in the model"),
    (lambda c: c["config"]["layers"][2]["inbound_nodes"][0][0].__setitem__(1, 3),
     "refers to application 3 of 'image', which is applied only 1 time"),
    (lambda c: c["config"]["layers"][3].update(name="conv"), "two layers are named 'conv'"),
    (lambda c: c["config"]["layers"][0]["config"].pop("batch_input_shape"),
     "input 'image' does not say what shape"),
    (lambda c: c["config"]["layers"][4].update(inbound_nodes=[7]), "neither a Keras 3 nor a Keras 2"),
    (lambda c: c.pop("class_name"), "not a Keras model config"),
])
def test_broken_structure_is_a_file_format_error(tmp_path: Path, change, expected):
    config = json.loads(json.dumps(KERAS2_FUNCTIONAL))
    change(config)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(config))
    with pytest.raises(FileFormatError, match=expected) as info:
        load_keras_design(path)
    assert str(info.value).startswith("broken.json")


# --- real Keras models ---------------------------------------------------------------------

def build_models() -> dict[str, Any]:
    """A zoo of small real models covering every structure the importer handles."""
    import keras
    from keras import layers

    models: dict[str, Any] = {}
    models["seed_cnn"] = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(10, activation="softmax")], name="seed_cnn")

    x = keras.Input((32, 32, 3), name="image")
    a = layers.Conv2D(16, 3, padding="same", activation="relu", name="branch_a")(x)
    b = layers.Conv2D(16, 1, name="branch_b")(x)
    s = layers.Add(name="sum")([a, b])
    c = layers.Concatenate(name="cat")([s, layers.MaxPooling2D(1, name="identity_pool")(x)])
    y = layers.Dense(3, name="head")(layers.GlobalAveragePooling2D(name="gap")(c))
    models["branches"] = keras.Model(x, y, name="branches")

    img = keras.Input((16, 16, 1), name="img")
    meta = keras.Input((5,), name="meta")
    f = layers.Flatten(name="flat")(layers.Conv2D(4, 3, strides=2, name="conv")(img))
    j = layers.Concatenate(name="join")([f, layers.Dense(8, activation="relu", name="meta_dense")(meta)])
    out_class = layers.Dense(4, activation="softmax", name="cls")(j)
    out_reg = layers.Dense(1, name="reg")(j)
    models["multi_io"] = keras.Model([img, meta], [out_class, out_reg], name="multi_io")

    left = keras.Input((20, 20, 3), name="left")
    right = keras.Input((20, 20, 3), name="right")
    shared_conv = layers.Conv2D(6, 3, activation="relu", name="shared_conv")
    shared_dense = layers.Dense(8, name="shared_dense")
    pool = layers.GlobalMaxPooling2D(name="pool")
    embed_l = shared_dense(pool(shared_conv(left)))
    embed_r = shared_dense(pool(shared_conv(right)))
    diff = layers.Subtract(name="diff")([embed_l, embed_r])
    models["siamese"] = keras.Model([left, right], layers.Dense(1, activation="sigmoid", name="same")(diff),
                                    name="siamese")

    models["batchnorm"] = keras.Sequential([
        keras.Input((24, 24, 3)),
        layers.Conv2D(8, 3, use_bias=False), layers.BatchNormalization(), layers.ReLU(),
        layers.DepthwiseConv2D(3, padding="same"), layers.BatchNormalization(momentum=0.9),
        layers.Dropout(0.2), layers.GlobalAveragePooling2D(), layers.Dense(2)], name="batchnorm")
    return models


def build_unsupported_models() -> dict[str, Any]:
    import keras
    from keras import layers

    class Doubler(layers.Layer):
        def call(self, inputs):
            return inputs * 2

    x = keras.Input((8,), name="x")
    lam = keras.Model(x, layers.Dense(2, name="after")(layers.Lambda(lambda t: t * 2, name="times_two")(x)),
                      name="with_lambda")
    custom = keras.Model(x, layers.Dense(2, name="after")(Doubler(name="doubler")(x)), name="with_custom")
    return {"lambda": lam, "custom": custom}


@pytest.fixture(scope="session")
def keras_zoo(tmp_path_factory):
    """Each real model saved as .keras and as model.to_json(): {name: (model, keras path, json path)}."""
    pytest.importorskip("keras")
    folder = tmp_path_factory.mktemp("keras_zoo")
    zoo = {}
    for name, model in {**build_models(), **build_unsupported_models()}.items():
        keras_path = folder / f"{name}.keras"
        json_path = folder / f"{name}.json"
        model.save(keras_path)
        json_path.write_text(model.to_json(), encoding="utf-8")
        zoo[name] = (model, keras_path, json_path)
    return zoo


SUPPORTED = ["seed_cnn", "branches", "multi_io", "siamese", "batchnorm"]


def keras_layers(model) -> list:
    """Every layer in config order; a Sequential hides its InputLayer from ``model.layers``."""
    import keras

    return list(model._layers) if isinstance(model, keras.Sequential) else list(model.layers)


def keras_truth(model) -> dict[str, dict[str, Any]]:
    """What Keras says about each layer: kind, catalogue args, calls, shapes, weights."""
    import numpy as np

    truth = {}
    for layer in keras_layers(model):
        kind = canonical_kind(type(layer).__name__)
        config = layer.get_config()
        nodes = layer._inbound_nodes
        calls = [[TensorRef(t._keras_history[0].name, t._keras_history[1]) for t in node.input_tensors]
                 for node in nodes]
        truth[layer.name] = {
            "kind": kind,
            "config": config,
            "calls": calls if kind != "InputLayer" else [[]],
            "shapes": [tuple(node.output_tensors[0].shape) for node in nodes],
            "params": layer.count_params(),
            "trainable": int(sum(np.prod(w.shape) for w in layer.trainable_weights)),
        }
    return truth


def expected_args(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    if kind == "InputLayer":
        return {"shape": tuple(config["batch_shape"][1:])}

    def tup(v):
        return tuple(tup(i) for i in v) if isinstance(v, list) else v
    names = {p.name for p in CATALOGUE[kind].params}
    return {k: tup(v) for k, v in config.items() if k in names}


@pytest.mark.slow
@pytest.mark.parametrize("which", ["keras", "json"])
@pytest.mark.parametrize("name", SUPPORTED)
def test_import_matches_keras(keras_zoo, name: str, which: str):
    model, keras_path, json_path = keras_zoo[name]
    design = load_keras_design(keras_path if which == "keras" else json_path)
    truth = keras_truth(model)

    assert design.name == model.name
    assert list(design.nodes) == [layer.name for layer in keras_layers(model)]
    a = analyse(design)
    assert a.valid, [str(p) for p in a.problems]
    for layer_name, want in truth.items():
        node = design.nodes[layer_name]
        rep = a.nodes[layer_name]
        assert node.kind == want["kind"], layer_name
        assert node.args == expected_args(node.kind, want["config"]), layer_name
        assert node.inbound == want["calls"], layer_name
        assert rep.output_shapes == want["shapes"], layer_name
        assert rep.params == want["params"], layer_name
        assert rep.trainable_params == want["trainable"], layer_name
        assert node.position is not None
        assert node.trainable == want["config"].get("trainable", True), layer_name
        if node.kind != "InputLayer":  # every other Keras setting is kept verbatim (trainable: the flag)
            rest = {k: v for k, v in want["config"].items()
                    if k not in ("name", "trainable") and k not in node.args}
            assert set(node.config) == set(rest), layer_name
    assert a.total_params == model.count_params()
    assert design.input_names() == [t._keras_history[0].name for t in model.inputs]
    assert design.output_refs() == [TensorRef(t._keras_history[0].name, t._keras_history[1])
                                    for t in model.outputs]


@pytest.mark.slow
def test_imported_seed_cnn_is_the_shipped_seed(keras_zoo):
    from engine.examples import seed_design
    design = load_keras_design(keras_zoo["seed_cnn"][1])
    a, b = analyse(design), analyse(seed_design())
    assert a.total_params == b.total_params == 34_826
    assert [r.output_shape for r in a.nodes.values()] == [r.output_shape for r in b.nodes.values()]
    assert [n.position for n in design] == [n.position for n in seed_design()]  # one tidy column


@pytest.mark.slow
def test_siamese_shared_layers_have_two_calls_and_one_set_of_weights(keras_zoo):
    design = load_keras_design(keras_zoo["siamese"][1])
    assert design.nodes["shared_conv"].inbound == [[TensorRef("left")], [TensorRef("right")]]
    assert design.nodes["diff"].inputs == [TensorRef("shared_dense", 0), TensorRef("shared_dense", 1)]
    pos = {n.name: n.position for n in design}
    assert pos["left"][1] == pos["right"][1] == 0 and pos["left"][0] < pos["right"][0]
    assert pos["same"][1] > pos["diff"][1] > pos["shared_dense"][1]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["keras", "json"])
@pytest.mark.parametrize("name,culprit,reason", [
    ("lambda", "times_two (Lambda)", "Lambda layers hold Python code, which Convas never runs"),
    ("custom", "doubler (Doubler)", "a custom layer class"),
])
def test_real_unsupported_models_are_refused_by_name(keras_zoo, name, culprit, reason, which):
    _, keras_path, json_path = keras_zoo[name]
    path = keras_path if which == "keras" else json_path
    with pytest.raises(UnsupportedLayerError) as info:
        load_keras_design(path)
    assert f"{culprit}: {reason}" in str(info.value)
    assert str(info.value).startswith(path.name)
    assert info.value.layers == [culprit.split()[0]]
    # Read leniently, the model opens: the layer is a card wired in place, its output shape the
    # one its consumer recorded, and the layer after it is an ordinary Dense.
    result = import_keras_file(path)
    name, class_name = culprit.split()[0], culprit.split()[1].strip("()")
    assert [(u.name, u.class_name) for u in result.unsupported] == [(name, class_name)]
    card = result.design.nodes[name]
    assert card.kind == class_name and card.inbound == [[TensorRef("x")]]
    assert card.config["unsupported"]["output_shapes"] == [[None, 8]]
    assert card.config["unsupported"]["reason"].startswith(reason)
    assert result.design.nodes["after"].kind == "Dense"


@pytest.mark.slow
def test_nested_layer_renamed_on_a_name_clash_still_takes_its_weights(tmp_path: Path):
    """Layers named "dense" outside and inside a nested model: the inner one becomes
    "inner_dense", the flat rebuilt model takes both sets of weights and predicts the same."""
    keras = pytest.importorskip("keras")
    import numpy as np

    from engine.keras_build import build_keras_model
    from engine.weights import transfer_weights

    inner_in = keras.Input((6,), name="inner_in")
    inner = keras.Model(inner_in, keras.layers.Dense(3, name="dense")(inner_in), name="inner")
    x = keras.Input((4,), name="x")
    y = keras.layers.Dense(6, activation="relu", name="dense")(x)
    model = keras.Model(x, keras.layers.Dense(2, name="head")(inner(y)), name="outer")
    path = tmp_path / "clash.keras"
    model.save(path)

    result = import_keras_file(path)
    assert list(result.design.nodes) == ["x", "dense", "inner_dense", "head"]
    assert result.paths == {"inner_dense": ("inner", "dense")}
    rebuilt = build_keras_model(result.design)
    assert transfer_weights(rebuilt, path, strict=True) == []
    sample = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    np.testing.assert_allclose(rebuilt.predict(sample, verbose=0), model.predict(sample, verbose=0), rtol=1e-5)


@pytest.mark.slow
def test_operations_round_trip_through_keras_under_their_names(tmp_path: Path):
    """keras.ops calls on symbolic tensors are read as operation nodes and built back as the same
    operations, named as in the file, computing the same values."""
    keras = pytest.importorskip("keras")
    import numpy as np

    from engine.keras_build import build_keras_model

    x = keras.Input((4, 4, 3), name="x")
    conv = keras.layers.Conv2D(3, 1, name="conv")(x)
    hard = keras.ops.multiply(keras.ops.minimum(keras.ops.maximum(keras.ops.add(conv, 3.0), 0.0), 6.0), 1 / 6)
    y = keras.ops.divide(keras.ops.subtract(1.0, hard), keras.layers.Dense(3, name="gate")(x))
    model = keras.Model(x, y, name="ops")
    design = design_from_keras_config(json.loads(model.to_json()))
    assert [n.kind for n in design][2:] == ["OpsAdd", "OpsMaximum", "OpsMinimum", "OpsMultiply", "OpsSubtract",
                                            "Dense", "OpsDivide"]
    rebuilt = build_keras_model(design)
    names = [layer["name"] for layer in json.loads(rebuilt.to_json())["config"]["layers"]]
    assert names == list(design.nodes)
    rebuilt.set_weights(model.get_weights())
    sample = np.random.default_rng(2).normal(size=(2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(rebuilt.predict(sample, verbose=0), model.predict(sample, verbose=0), rtol=1e-5)
    # Keras numbers automatic names per process ("add", "add_3", …): look the operation up by kind.
    plus = next(n.name for n in design if n.kind == "OpsAdd")
    assert design_from_keras_config(json.loads(rebuilt.to_json())).nodes[plus].args == {"scalar": 3.0}


# --- Normalization (a preprocessing layer with adapted or given statistics) ------------------

def _normalization_model(statistics: str) -> Any:
    """Input → Rescaling → Normalization(axis=-1) → Conv2D → GlobalAveragePooling2D → Dense, with
    the normalisation's mean and variance learned by adapt(), or given as numbers or lists."""
    import keras
    import numpy as np
    from keras import layers

    given = {"adapted": {}, "scalar": {"mean": 0.5, "variance": 0.25},
             "list": {"mean": [0.1, 0.2, 0.3], "variance": [1.0, 2.0, 3.0]}}[statistics]
    norm = layers.Normalization(axis=-1, name="norm", **given)
    x = keras.Input((16, 16, 3), name="image")
    y = layers.Conv2D(4, 3, name="conv")(norm(layers.Rescaling(1 / 255, name="scale")(x)))
    model = keras.Model(x, layers.Dense(2, name="head")(layers.GlobalAveragePooling2D(name="gap")(y)),
                        name=f"normalized_{statistics}")
    if statistics == "adapted":
        norm.adapt(np.random.default_rng(0).random((8, 16, 16, 3), dtype="float32"))
    return model


def _weight_counts(layers_or_model: Any) -> tuple[int, int]:
    from math import prod

    return (sum(int(prod(w.shape)) for w in layers_or_model.trainable_weights),
            sum(int(prod(w.shape)) for w in layers_or_model.non_trainable_weights))


@pytest.mark.slow
@pytest.mark.parametrize("statistics", ["adapted", "scalar", "list"])
def test_normalization_model_imports_and_round_trips(tmp_path: Path, statistics: str):
    pytest.importorskip("keras")
    from engine.files import load_design
    from engine.keras_build import build_keras_model
    from engine.project_file import load_project, save_project

    model = _normalization_model(statistics)
    path = tmp_path / "normalized.keras"
    model.save(path)
    design = load_design(path)

    assert [n.kind for n in design] == ["InputLayer", "Rescaling", "Normalization", "Conv2D",
                                        "GlobalAveragePooling2D", "Dense"]
    a = analyse(design)
    assert a.valid, [str(p) for p in a.problems]
    for layer in model.layers:
        rep = a.nodes[layer.name]
        assert rep.output_shape == tuple(layer.output.shape), layer.name
        assert (rep.trainable_params, rep.non_trainable_params) == _weight_counts(layer), layer.name
    norm = a.nodes["norm"]
    assert (norm.trainable_params, norm.non_trainable_params) == ((0, 7) if statistics == "adapted" else (0, 0))
    assert (a.trainable_params, a.non_trainable_params) == _weight_counts(model)
    assert a.total_params == model.count_params()

    # Through the project file (JSON) and back into Keras: the same layer configuration.
    save_project(tmp_path / "normalized.convas", design)
    reloaded = load_project(tmp_path / "normalized.convas").design
    assert reloaded.nodes["norm"].args == design.nodes["norm"].args
    rebuilt = build_keras_model(reloaded)
    for layer in model.layers:
        want, got = layer.get_config(), rebuilt.get_layer(layer.name).get_config()
        assert {k: v for k, v in got.items() if k != "dtype"} == \
               {k: v for k, v in want.items() if k != "dtype"}, layer.name
    assert _weight_counts(rebuilt) == _weight_counts(model)
    assert rebuilt.count_params() == model.count_params()


@pytest.mark.slow
def test_efficientnet_b0_imports_with_keras_parameter_counts(tmp_path: Path):
    keras = pytest.importorskip("keras")
    from engine.files import load_design

    # weights=None builds the architecture with fresh weights: nothing is downloaded.
    model = keras.applications.EfficientNetB0(weights=None, input_shape=(64, 64, 3), classes=3)
    path = tmp_path / "effb0.keras"
    model.save(path)
    design = load_design(path)

    assert design.nodes["normalization"].kind == "Normalization"
    a = analyse(design)
    assert a.valid, [str(p) for p in a.errors]
    assert a.total_params == model.count_params()
    assert (a.trainable_params, a.non_trainable_params) == _weight_counts(model)
    assert a.nodes["normalization"].non_trainable_params == 2 * 3 + 1  # mean, variance, count
    assert a.nodes[model.layers[-1].name].output_shape == (None, 3)
