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
from engine.design import TensorRef
from engine.errors import FileFormatError, UnsupportedLayerError
from engine.keras_import import design_from_keras_config, load_keras_design
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
    assert "name" not in conv.config and conv.config["trainable"] is True
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
                                             "config": {"keras_history": [src, 0, 0]}}], "kwargs": {}}],
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
        if node.kind != "InputLayer":  # every other Keras setting is kept verbatim
            rest = {k: v for k, v in want["config"].items() if k != "name" and k not in node.args}
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
