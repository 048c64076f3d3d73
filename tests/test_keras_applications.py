"""Every architecture in the pinned Keras's ``keras.applications``, read exactly.

Each one is built once (``weights=None``: nothing is downloaded; ``classes=10``; the smallest
input it accepts: 32×32, or 75 for InceptionV3/InceptionResNetV2 and 71 for Xception), and
what Keras says of it is kept: total, trainable and non-trainable parameters, every layer's and
operation's output shape per call (the layers of nested models included, under the names import
gives them), and the model's inputs and outputs. The model is then written as ``to_json()`` and
as a ``.keras`` archive, dropped, and both files are imported and compared with that truth.

The ``.keras`` files: a model of up to :data:`REAL_SAVE_LIMIT` parameters (the four
MobileNets, EfficientNetB0/B1, EfficientNetV2B0/B1 and NASNetMobile: 9 of them, MobileNetV3's
operations among them) is saved with ``model.save()``, and its archive's ``config.json`` is checked to equal
``to_json()`` except for the ``shared_object_id`` keys Keras adds to shared dtype policies when
saving; the ConvNeXtTiny weights test checks the same of its real save (nested models, helper
layers, operations). The other 31 are not saved: writing their fresh weights (up to 1.4 GB
each) costs most of this file's time and proves nothing about import, which reads
``config.json`` only. Their archive is made as ``model.save()`` lays it out, ``config.json`` =
``to_json()`` beside ``metadata.json``, without ``model.weights.h5`` (the real saves above are
what say the two configs agree).

The list of architectures is read (not run) from Keras's own public module
``keras/applications/__init__.py`` at collection, so that collecting this file imports no
TensorFlow; :func:`test_the_list_is_what_keras_applications_exports` checks it against
``dir(keras.applications)`` at run time, so a Keras version that adds one is covered, or fails.
"""

from __future__ import annotations

import ast
import gc
import importlib.util
import json
import os
import zipfile
from math import prod
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from engine.analysis import analyse
from engine.design import GroupKind
from engine.keras_import import KerasImport, import_keras_file

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Keras's own saving code trips NumPy 2's copy-keyword deprecation once per weight.
pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")]

MIN_SIZE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}
REAL_SAVE_LIMIT = 7_000_000


def _application_names() -> list[str]:
    """The model functions ``keras.applications`` exports, read from its source as data."""
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        return []
    source = Path(next(iter(spec.submodule_search_locations))) / "applications" / "__init__.py"
    names = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            names += [alias.asname or alias.name for alias in node.names
                      if (alias.asname or alias.name)[:1].isupper()]
    return sorted(names)


APPLICATIONS = _application_names()


class Truth(NamedTuple):
    """What Keras says of one architecture (the model itself is not kept: some are 1.4 GB)."""

    params: tuple[int, int, int]  # total, trainable, non-trainable
    shapes: dict[tuple[str, ...], list[tuple]]  # Keras path → output shape per call
    inputs: list[str]
    outputs: list[str]
    nested: dict[str, str]  # each nested model's name → its class
    json_path: Path
    keras_path: Path
    real_save: bool


def _weight_count(weights: list[Any]) -> int:
    return sum(int(prod(w.shape)) for w in weights)


def _operations(keras: Any, model: Any) -> list[Any]:
    """A model's layers and operations in order (a Sequential's from the graph it built)."""
    functional = model._functional if isinstance(model, keras.Sequential) else model
    return list(functional.operations)


def _shapes(keras: Any, model: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], list[tuple]]:
    """Output shape per call of every layer and operation, those of nested models (at any
    depth) under their Keras paths; a nested model's InputLayers are left out, as import drops them."""
    found: dict[tuple[str, ...], list[tuple]] = {}
    for op in _operations(keras, model):
        path = prefix + (op.name,)
        if isinstance(op, keras.Model):
            found.update(_shapes(keras, op, path))
        elif not (prefix and type(op).__name__ == "InputLayer"):
            found[path] = [tuple(node.output_tensors[0].shape) for node in op._inbound_nodes]
    return found


def _nested(keras: Any, model: Any) -> dict[str, str]:
    found = {}
    for op in _operations(keras, model):
        if isinstance(op, keras.Model):
            found[op.name] = type(op).__name__
            found.update(_nested(keras, op))
    return found


def _archive_from_json(path: Path, config_text: str, keras_version: str) -> None:
    """A ``.keras`` archive as ``model.save()`` lays it out, without the weights file."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": keras_version}))
        archive.writestr("config.json", config_text)


def _without_shared_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_shared_ids(v) for k, v in value.items() if k != "shared_object_id"}
    if isinstance(value, list):
        return [_without_shared_ids(v) for v in value]
    return value


@pytest.fixture(scope="module")
def truths(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``truths(name)``: the :class:`Truth` of one architecture, built on first use."""
    keras = pytest.importorskip("keras")
    folder = tmp_path_factory.mktemp("applications")
    cache: dict[str, Truth] = {}

    def get(name: str) -> Truth:
        if name not in cache:
            size = MIN_SIZE.get(name, 32)
            # In a StatelessScope Keras creates the variables (shapes, counts) but defers their
            # initialisation, a quarter of the build; only the models that are saved need values.
            with keras.StatelessScope():
                model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=10)
            real = model.count_params() <= REAL_SAVE_LIMIT
            if real:
                from keras.src.backend.common.variables import initialize_all_variables

                initialize_all_variables()
            text = model.to_json()
            json_path, keras_path = folder / f"{name}.json", folder / f"{name}.keras"
            json_path.write_text(text, encoding="utf-8")
            if real:
                model.save(keras_path)
                with zipfile.ZipFile(keras_path) as archive:
                    saved = json.loads(archive.read("config.json"))
                assert _without_shared_ids(saved) == json.loads(text), f"{name}: config.json ≠ to_json()"
            else:
                _archive_from_json(keras_path, text, keras.__version__)
            cache[name] = Truth(
                (model.count_params(), _weight_count(model.trainable_weights),
                 _weight_count(model.non_trainable_weights)),
                _shapes(keras, model),
                [t._keras_history.operation.name for t in model.inputs],
                [t._keras_history.operation.name for t in model.outputs],
                _nested(keras, model), json_path, keras_path, real)
            del model
            keras.backend.clear_session()
            gc.collect()
        return cache[name]

    return get


def test_the_list_is_what_keras_applications_exports() -> None:
    keras = pytest.importorskip("keras")
    exported = sorted(n for n in dir(keras.applications) if n[:1].isupper()
                      and callable(getattr(keras.applications, n)))
    assert exported == APPLICATIONS
    assert len(APPLICATIONS) >= 40  # Keras 3.15.1 ships 40


def _check(result: KerasImport, truth: Truth) -> None:
    design = result.design
    assert result.unsupported == [], [str(u) for u in result.unsupported]
    analysis = analyse(design)
    assert analysis.valid, [str(p) for p in analysis.errors[:5]]
    assert (analysis.total_params, analysis.trainable_params, analysis.non_trainable_params) == truth.params

    # Every layer and operation, nested ones under the names import gave them, with its shapes.
    path_of = {name: result.paths.get(name, (name,)) for name in design.nodes}
    assert sorted(path_of.values()) == sorted(truth.shapes)
    for name, path in path_of.items():
        assert analysis.nodes[name].output_shapes == truth.shapes[path], name
    assert design.input_names() == truth.inputs
    assert [ref.node for ref in design.output_refs()] == truth.outputs

    # Each nested model is a MODEL group named after it, holding its layers.
    groups = {g.name: g for g in design.groups.values() if g.kind is GroupKind.MODEL}
    assert {g: groups[g].origin["class_name"] for g in groups} == truth.nested
    for name, path in result.paths.items():
        assert design.nodes[name].group == path[-2]


@pytest.mark.parametrize("source", ["json", "keras"])
@pytest.mark.parametrize("name", APPLICATIONS)
def test_application_reads_exactly(truths: Any, name: str, source: str) -> None:
    truth = truths(name)
    _check(import_keras_file(truth.json_path if source == "json" else truth.keras_path), truth)


def test_convnext_weights_of_nested_models_transfer_and_predictions_match(tmp_path: Path) -> None:
    """ConvNeXtTiny holds 4 nested Sequential models, 18 LayerScale layers and 18 operations:
    its design, rebuilt flat, takes the saved weights (those of the nested models' layers too)
    and predicts what the original predicts."""
    keras = pytest.importorskip("keras")
    import numpy as np

    from engine.keras_build import build_keras_model
    from engine.weights import transfer_weights

    model = keras.applications.ConvNeXtTiny(weights=None, input_shape=(32, 32, 3), classes=10)
    rng = np.random.default_rng(0)
    # Not the initial values (LayerScale's are all 1e-6): every weight must really move across.
    model.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") for w in model.get_weights()])
    path = tmp_path / "convnext_tiny.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert _without_shared_ids(json.loads(archive.read("config.json"))) == json.loads(model.to_json())
    result = import_keras_file(path)
    assert result.paths["convnext_tiny_stem_conv"] == ("convnext_tiny_stem", "convnext_tiny_stem_conv")
    rebuilt = build_keras_model(result.design)
    assert not any(isinstance(layer, keras.Model) for layer in rebuilt.layers)  # export is flat
    assert transfer_weights(rebuilt, path, strict=True) == []
    images = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    want = model.predict(images, verbose=0)
    got = rebuilt.predict(images, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
