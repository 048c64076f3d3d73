"""Python source export: the script compiles, picks Sequential or functional, stays safe with
hostile names, and (slow) rebuilds exactly the model Convas builds."""

from __future__ import annotations

import ast
import json
import os
import sys

import pytest

from engine.design import Design, TensorRef, chain
from engine.errors import ConvasError
from engine.examples import example_names, load_example, seed_design
from engine.export.python_source import PythonCheck, chain_order, literal, python_source, verify_python_source
from engine.training import TrainingConfig

# Each would run code if it were spliced into the script instead of written as a repr; the
# first creates a file named "pwned" in the working directory.
HOSTILE = [
    "x'); open('pwned', 'w').close() #",
    'x"""); open(\'pwned\', \'w\').close() #',
    "x\nopen('pwned', 'w').close()",
    "x'); __import__('os').system('echo pwned') #",
]


def hostile_design(name: str) -> Design:
    design = chain(("InputLayer", {"shape": (8,)}), ("Dense", {"units": 4}),
                   ("Dense", {"units": 2, "activation": "softmax"}), name=name)
    design.rename("dense", name)
    return design


def calls_outside_keras(source: str) -> list[str]:
    """Every call in ``source`` that is not a keras/layers constructor (or a class imported from
    keras) or build_model()."""
    tree = ast.parse(source)
    # Layer objects (a shared layer is kept in a variable) may be called on tensors.
    layer_vars = {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute)
                  and ast.unparse(node.value.func).startswith("layers.")
                  for target in node.targets if isinstance(target, ast.Name)}
    # Keras's own helper layers (LayerScale, ...) are imported by name from keras modules.
    layer_vars |= {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   and (node.module or "").split(".")[0] == "keras" for alias in node.names}
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in {"build_model", *layer_vars}:
            continue
        if isinstance(func, ast.Call):  # calling a freshly made layer; itself checked by the walk
            continue
        root = func
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(func, ast.Attribute) and isinstance(root, ast.Name) \
                and root.id in ("keras", "layers", "model"):
            continue
        bad.append(ast.unparse(node))
    return bad


# ---------------------------------------------------------------------------- source (no TF)

@pytest.mark.parametrize("name", example_names())
def test_every_example_compiles(name):
    source = python_source(load_example(name), TrainingConfig())
    compile(source, f"{name}.py", "exec")
    assert "def build_model():" in source and "# model.fit(" in source
    assert calls_outside_keras(source) == []


def test_chain_is_sequential_and_branches_are_functional():
    seed = python_source(seed_design())
    assert "keras.Sequential([" in seed and "keras.Model(" not in seed
    resnet = python_source(load_example("resnet_block"))
    assert "keras.Model(inputs=" in resnet and "keras.Sequential" not in resnet
    assert chain_order(load_example("inception_module")) is None


def test_defaults_are_left_out_and_names_kept():
    source = python_source(seed_design())
    assert "layers.MaxPooling2D(name='max_pooling2d')" in source
    assert "strides" not in source and "padding='valid'" not in source
    for node in seed_design():
        assert f"name={node.name!r}" in source


def test_training_settings_reach_compile_and_fit():
    config = TrainingConfig(optimizer="sgd", learning_rate=0.05, momentum=0.5, batch_size=16,
                            epochs=3, loss="categorical_crossentropy", metrics=("accuracy", "auc"),
                            validation_split=0.1)
    source = python_source(seed_design(), config)
    assert "keras.optimizers.SGD(learning_rate=0.05, momentum=0.5)" in source
    assert "loss='categorical_crossentropy'" in source and "metrics=['accuracy', 'auc']" in source
    assert "# model.fit(x_train, y_train, batch_size=16, epochs=3, validation_split=0.1)" in source
    # The loss left automatic is the engine's choice for a softmax output with integer labels.
    assert "loss='sparse_categorical_crossentropy'" in python_source(seed_design())


def test_shared_layer_becomes_one_object_called_twice():
    design = Design(name="siamese")
    design.add("InputLayer", "left", {"shape": (8,)})
    design.add("InputLayer", "right", {"shape": (8,)})
    design.add("Dense", "shared", {"units": 4}, inputs=["left"])
    design.connect("right", "shared", call=1)
    design.add("Concatenate", "joined", inputs=["shared", TensorRef("shared", 1)])
    source = python_source(design)
    tree = ast.parse(source)
    constructors = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                    and ast.unparse(n.func) == "layers.Dense"]
    assert len(constructors) == 1
    assert "inputs=[left, right]" in source


def test_variable_names_are_identifiers_and_avoid_keywords():
    design = chain(("InputLayer", {"shape": (4,)}), ("Dense", {"units": 2}),
                   ("Dense", {"units": 2}), ("Dense", {"units": 2}), name="m")
    design.rename("input_layer", "input")
    design.rename("dense", "class")
    design.rename("dense_1", "1 odd-name")
    design.add("Dense", "model", {"units": 2}, inputs=["class"])  # makes it functional
    source = python_source(design)
    compile(source, "m.py", "exec")
    assert "\n    class = " not in source and "\n    input = " not in source
    assert "\n    model = layers" not in source


def test_literal_writes_plain_data_and_refuses_the_rest():
    assert literal((1,)) == "(1,)"
    assert literal(float("nan")) == "float('nan')" and literal(float("-inf")) == "-float('inf')"
    assert eval(literal({"a": [1, 2.5, None, True, "x'\"\n"]})) == {"a": [1, 2.5, None, True, "x'\"\n"]}
    with pytest.raises(ConvasError):
        literal(object())


def test_non_plain_config_value_is_refused():
    design = seed_design()
    design.node("dense").config["kernel_initializer"] = object()
    with pytest.raises(ConvasError, match="cannot write"):
        python_source(design)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_stay_data(name):
    design = hostile_design(name)
    source = python_source(design)
    assert calls_outside_keras(source) == []
    assert "DESIGN_NAME = " + repr(name) in source
    for line in source.splitlines():  # user text never reaches a comment raw
        if line.lstrip().startswith("#"):
            assert "pwned" not in line


# ---------------------------------------------------------------------------- real Keras

@pytest.mark.slow
@pytest.mark.parametrize("name", ["seed_cnn", "resnet_block", "inception_module"])
def test_script_rebuilds_the_model(name, scripts_in_one_process):
    from engine.keras_build import build_keras_model

    design = load_example(name)
    check = verify_python_source(python_source(design), build_keras_model(design))
    assert isinstance(check, PythonCheck)
    assert check.ok, check.detail
    assert check.layers == len([n for n in design if n.kind != "InputLayer"])


@pytest.mark.slow
def test_verify_reports_a_different_model(scripts_in_one_process):
    from engine.keras_build import build_keras_model

    other = seed_design()
    other.set_arg("dense", "units", 5)
    check = verify_python_source(python_source(other), build_keras_model(seed_design()))
    assert not check.ok and "dense" in check.detail


@pytest.mark.slow
def test_verify_reports_a_failing_script():
    """A real new Python process (the other checks here share one: tests/script_server.py)."""
    from engine.keras_build import build_keras_model

    check = verify_python_source("raise RuntimeError('broken on purpose')\n",
                                 build_keras_model(seed_design()))
    assert not check.ok and "broken on purpose" in check.detail


@pytest.mark.slow
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_script_builds_the_named_layer_and_nothing_else(name, tmp_path, script_server):
    script = tmp_path / "model.py"
    script.write_text(python_source(hostile_design(name)), encoding="utf-8")
    probe = ("import json, runpy; ns = runpy.run_path('model.py'); m = ns['build_model']();"
             "print(json.dumps([m.name] + [l.name for l in m.layers]))")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = script_server.run([sys.executable, "-c", probe], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    names = json.loads(done.stdout.strip().splitlines()[-1])
    assert names[0] == name and name in names[1:]
    assert not (tmp_path / "pwned").exists()
    assert "pwned" not in done.stdout.replace(json.dumps(name)[1:-1], "")


@pytest.mark.slow
def test_generated_designs_export_as_python_and_rebuild(tmp_path, scripts_in_one_process):
    """Hypothesis-generated valid designs (tests/strategies.py, as in
    test_export.py) export as scripts whose build_model(), run in a new process, rebuilds the
    same layer types, names, output shapes and parameter counts; each script runs in the module's
    shared script process (as a new one would run it), so a few more examples cost little."""
    from hypothesis import HealthCheck, assume, given, settings

    from engine.analysis import analyse
    from engine.export.run import ExportOptions, export_model

    from strategies import designs

    seen = []
    runs_before = scripts_in_one_process.runs

    # Invalid designs are discarded (assume), so every example counted spawns one script run.
    @settings(max_examples=4, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(designs())
    def check(design):
        analysis = analyse(design)
        assume(analysis.valid and not analysis.warnings and design.output_refs())
        out = tmp_path / f"model_{len(seen)}.py"
        result = export_model(design, out, ExportOptions("python"))  # ExportError if it differs
        assert result.summary().startswith("Verified "), result.summary()
        source = out.read_text(encoding="utf-8")
        compile(source, out.name, "exec")
        assert calls_outside_keras(source) == []
        seen.append(design)

    check()
    assert scripts_in_one_process.runs - runs_before == len(seen)
    assert len(seen) >= 3, f"only {len(seen)} of the generated designs were valid"


# --- operations and Keras's helper layers ------------------------------------------------------

def ops_design() -> Design:
    """Operations with a number on either side and with two tensors, and the keras.applications
    helper layers."""
    d = Design(name="ops_and_helpers")
    d.add("InputLayer", "x", {"shape": (4, 4, 8)})
    d.add("Conv2D", "conv", {"filters": 8, "kernel_size": 1}, inputs=["x"])
    d.add("OpsAdd", "plus", {"scalar": 3.0}, inputs=["conv"])
    d.add("OpsSubtract", "rsub", {"scalar": 1.0, "scalar_first": True}, inputs=["plus"])
    d.add("LayerScale", "ls", {"init_values": 0.5, "projection_dim": 8}, inputs=["rsub"])
    d.add("StochasticDepth", "sd", {"drop_path_rate": 0.1}, inputs=["ls"])
    d.add("CustomScaleLayer", "cs", {"scale": 0.2}, inputs=["conv", "sd"])
    d.add("OpsMaximum", "mx", {}, inputs=["cs", "plus"])
    d.add("OpsMultiply", "scaled", {"scalar": 1 / 6}, inputs=["mx"])
    return d


def test_operations_are_keras_ops_calls_and_helpers_are_imported_from_keras():
    source = python_source(ops_design())
    ast.parse(source)
    lines = [line.strip() for line in source.splitlines()]
    assert "from keras.src.applications.convnext import LayerScale, StochasticDepth" in lines
    assert "from keras.src.applications.inception_resnet_v2 import CustomScaleLayer" in lines
    assert "plus = keras.ops.add(conv, 3.0)" in lines
    assert "rsub = keras.ops.subtract(1.0, plus)" in lines
    assert "mx = keras.ops.maximum(cs, plus)" in lines
    assert "scaled = keras.ops.multiply(mx, 0.16666666666666666)" in lines
    assert "cs = CustomScaleLayer(scale=0.2, name='cs')([conv, sd])" in lines
    assert not any("keras.src.ops" in line for line in lines)


def test_operations_are_created_by_name_when_a_layer_could_take_their_names():
    design = ops_design()
    design.rename("conv", "add")  # what Keras would call the first keras.ops.add
    lines = [line.strip() for line in python_source(design).splitlines()]
    assert "from keras.src.ops.numpy import Add, Maximum, Multiply, Subtract" in lines
    assert "plus = Add(name='plus')(add, 3.0)" in lines
    assert "rsub = Subtract(name='rsub')(1.0, plus)" in lines
    assert not any("keras.ops." in line for line in lines)


@pytest.mark.slow
@pytest.mark.parametrize("clash", [False, True])
def test_script_with_operations_and_helpers_computes_what_the_design_does(clash, scripts_in_one_process):
    import numpy as np

    from engine.keras_build import build_keras_model

    design = ops_design()
    if clash:
        design.rename("conv", "add")
    source = python_source(design)
    model = build_keras_model(design)
    check = verify_python_source(source, model)
    assert check.ok, check.detail
    namespace: dict = {}
    exec(compile(source, "generated.py", "exec"), namespace)  # our own script, written from plain data
    rebuilt = namespace["build_model"]()
    for layer in model.layers:
        rebuilt.get_layer(layer.name).set_weights(layer.get_weights())
    sample = np.random.default_rng(0).normal(size=(2, 4, 4, 8)).astype("float32")
    np.testing.assert_allclose(rebuilt.predict(sample, verbose=0), model.predict(sample, verbose=0), rtol=1e-5)
    # The same operations, in the same order (their names are Keras's own unless they could clash).
    operations = [(entry["class_name"], entry["name"]) for entry in json.loads(rebuilt.to_json())["config"]["layers"]
                  if entry["module"] == "keras.src.ops.numpy"]
    assert [cls for cls, _ in operations] == ["Add", "Subtract", "Maximum", "Multiply"]
    if clash:
        assert [name for _, name in operations] == ["plus", "rsub", "mx", "scaled"]
