"""Starting from a keras.applications architecture: the catalogue, the sizes Keras accepts, which
ImageNet file Keras would download (found without downloading), Keras's cache, and a design
created with a locally built "pretrained" weights file. Nothing here goes over the network."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest

from engine import applications as apps
from engine.applications import ApplicationError
from engine.freezing import backbone_nodes
from engine.weights import WeightsKind

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

SMALL = "MobileNetV3Small"  # the cheapest architecture to build


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _legacy_h5(model, path: Path) -> Path:
    """``model``'s weights in the legacy HDF5 layout of Keras's ImageNet files (their format)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as fh:
        legacy_h5_format.save_weights_to_hdf5_group(fh, model)
    return path


def _randomised(model, seed: int = 1):
    """``model`` with every weight set to distinct random values (not Keras's fresh init)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in weights])
    return model


def test_the_catalogue_is_every_architecture_keras_exports():
    import keras

    exported = sorted(n for n in dir(keras.applications)
                      if n[:1].isupper() and callable(getattr(keras.applications, n)))
    listed = apps.catalogue()
    assert [a.name for a in listed] == exported
    assert len(listed) >= 40
    by_name = {a.name: a for a in listed}
    vgg = by_name["VGG16"]
    assert (vgg.family, vgg.default_size, vgg.min_size) == ("VGG", 224, 32)
    assert vgg.documented is not None and vgg.documented.top1 == pytest.approx(0.713)
    assert by_name["NASNetLarge"].default_size == 331
    assert by_name["Xception"].min_size == 71
    assert by_name["InceptionV3"].min_size == 75
    assert by_name["ConvNeXtTiny"].documented is None  # not in Keras's table: shown as "—"
    with pytest.raises(ApplicationError, match="did you mean MobileNetV2"):
        apps.application("MobileNetV22")


@pytest.mark.parametrize("name", ["Xception", "InceptionV3", SMALL])
def test_minimum_sizes_are_the_ones_keras_enforces(name):
    import keras

    app = apps.application(name)
    build = getattr(keras.applications, name)
    build(include_top=False, weights=None, input_shape=(app.min_size, app.min_size, 3))
    with pytest.raises(ValueError, match="at least"):
        build(include_top=False, weights=None, input_shape=(app.min_size - 1, app.min_size - 1, 3))
    assert f"at least {app.min_size}×{app.min_size}" in app.size_problem(app.min_size - 1, False)


def test_a_size_problem_names_the_fix():
    app = apps.application("NASNetLarge")
    assert app.size_problem(331, True) is None
    assert app.size_problem(224, True) == ("NASNetLarge keeps its ImageNet classifier only at 331×331; set the "
                                           "size to 331 or remove the classifier")
    assert app.size_problem(224, False) is None
    with pytest.raises(ApplicationError, match="at least 32×32"):
        apps.create(SMALL, 16, False, None)


def test_weights_file_is_found_without_downloading(no_network):
    found = apps.weights_file(SMALL, include_top=False, input_size=32)
    assert found.fname == "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    assert found.origin.startswith("https://storage.googleapis.com/") and found.origin.endswith(found.fname)
    assert found.host == "storage.googleapis.com"
    assert found.file_hash and len(found.file_hash) == 32
    assert found.cache_subdir == "models"
    # MobileNet's weights depend on the input size; Keras falls back to 224 for other sizes.
    assert apps.weights_file("MobileNet", False, 128).fname == "mobilenet_1_0_128_tf_no_top.h5"
    assert apps.weights_file("MobileNet", False, 100).fname == "mobilenet_1_0_224_tf_no_top.h5"
    assert apps.weights_file("VGG16", True).fname == "vgg16_weights_tf_dim_ordering_tf_kernels.h5"


@pytest.mark.slow
@pytest.mark.parametrize("include_top", [False, True], ids=["notop", "top"])
def test_every_architecture_names_its_weights_file_offline(no_network, include_top):
    names = {}
    for app in apps.catalogue():
        found = apps.weights_file(app.name, include_top)
        assert found.origin.startswith("https://") and found.fname.endswith(".h5"), app.name
        names[app.name] = found.fname
    assert len(set(names.values())) == len(names)  # one file per architecture
    assert ("notop" in names["ResNet50"]) != include_top


def test_cached_weights_are_found_in_keras_home(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert apps.cached_weights(SMALL, False) is None
    fname = apps.weights_file(SMALL, False).fname
    (tmp_path / "keras" / "models").mkdir(parents=True)
    (tmp_path / "keras" / "models" / fname).write_bytes(b"weights")
    assert apps.cached_weights(SMALL, False) == tmp_path / "keras" / "models" / fname
    assert apps.cached_weights(SMALL, True) is None  # the file with the classifier is another one


def test_describe_counts_what_keras_counts():
    import keras

    info = apps.describe(SMALL, 32, False)
    model = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3))
    assert info.params == model.count_params()
    assert info.macs > 1_000_000 and info.layers > 100
    assert apps.describe(SMALL, 32, False) is info  # cached
    bigger = apps.describe(SMALL, 64, False)
    assert bigger.params == info.params and bigger.macs > 3 * info.macs  # MACs grow with the area


def test_create_loads_the_weights_file_and_freezes_the_backbone(tmp_path, no_network):
    import keras

    from engine.keras_build import build_keras_model
    from engine.weights import transfer_weights

    pretrained = _randomised(keras.applications.MobileNetV3Small(include_top=False, weights=None,
                                                                 input_shape=(32, 32, 3)))
    path = _legacy_h5(pretrained, tmp_path / apps.weights_file(SMALL, False).fname)

    created = apps.create(SMALL, 32, False, path, freeze_backbone=True)
    design = created.design
    assert design.name == "mobilenetv3small_32"
    assert created.weights is not None and created.weights.kind is WeightsKind.IMPORTED
    assert created.weights.file.is_file() and created.weights.file.parent == apps.pretrained_folder()
    assert path.name in created.weights.description
    frozen = {n.name for n in design.nodes.values() if not n.trainable}
    assert frozen == backbone_nodes(design) and len(frozen) > 100
    assert created.message.startswith(f"New {SMALL} at 32×32 without its classifier, weights from {path.name}")

    model = build_keras_model(design)
    assert transfer_weights(model, created.weights.file, strict=True) == []
    conv = next(layer for layer in pretrained.layers if layer.name == "conv")
    np.testing.assert_array_equal(model.get_layer("conv").get_weights()[0], conv.get_weights()[0])

    again = apps.create(SMALL, 32, False, path)  # the same choice reuses the saved model
    assert again.weights.file == created.weights.file
    assert all(n.trainable for n in again.design.nodes.values())


def test_a_file_for_another_architecture_is_refused_by_name(tmp_path, no_network):
    import keras

    other = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = _legacy_h5(other, tmp_path / "mine.h5")
    with pytest.raises(ApplicationError) as caught:
        apps.create("MobileNetV2", 32, False, path)
    message = str(caught.value)
    assert message.startswith("mine.h5 does not hold weights for MobileNetV2 without its classifier at 32×32")
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5" in message
    assert "Keras said: " in message
    with pytest.raises(ApplicationError, match="is not a file"):
        apps.create(SMALL, 32, False, tmp_path / "missing.h5")


def test_random_weights_need_no_file():
    created = apps.create(SMALL, 48, False, None)
    assert created.weights is None
    assert created.design.name == "mobilenetv3small_48"
    assert "random weights" in created.message
    assert not created.unsupported


def test_a_new_classifier_takes_every_other_weight_and_stays_trainable(tmp_path, no_network):
    import keras

    from engine.keras_build import build_keras_model
    from engine.weights import transfer_weights

    imagenet = _randomised(keras.applications.MobileNetV3Small(include_top=True, weights=None))
    path = _legacy_h5(imagenet, tmp_path / apps.weights_file(SMALL, True).fname)
    created = apps.create(SMALL, 224, True, path, classes=10, freeze_backbone=True)
    assert "with a new 10-class classifier" in created.message
    design = created.design
    # MobileNetV3's classifier is a 1×1 Conv2D before its Flatten: new, so left trainable.
    assert design.nodes["logits"].trainable and not design.nodes["conv"].trainable
    model = build_keras_model(design)
    assert transfer_weights(model, created.weights.file, strict=True) == []
    assert model.output_shape == (None, 10)
    np.testing.assert_array_equal(model.get_layer("conv").get_weights()[0],
                                  imagenet.get_layer("conv").get_weights()[0])
