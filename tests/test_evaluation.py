"""Evaluating a trained classifier: scores from known predictions, real models, lazy image folders,
feature maps and Grad-CAM.

The first tests need no TensorFlow: they build an :class:`Evaluation` from probabilities chosen by
hand. Tests marked slow build real Keras models; the seed CNN is trained once per module (two
epochs on the built-in digits, a few seconds).
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.datasets import Dataset, Split, load_digits_dataset, load_image_folder
from engine.errors import ConvasError
from engine.evaluation import (
    Evaluation,
    as_probabilities,
    choose_split,
    default_grad_cam_layer,
    evaluate,
    feature_map_layers,
    feature_maps,
    grad_cam,
)

NAMES = ["cat", "dog", "owl"]
# Six samples; the model's most probable class is the column with the largest value.
Y_TRUE = [0, 0, 1, 1, 2, 2]
PROBS = [[0.7, 0.2, 0.1],   # cat -> cat
         [0.1, 0.6, 0.3],   # cat -> dog
         [0.2, 0.7, 0.1],   # dog -> dog
         [0.1, 0.8, 0.1],   # dog -> dog
         [0.1, 0.3, 0.6],   # owl -> owl
         [0.1, 0.9, 0.0]]   # owl -> dog


@pytest.fixture
def known() -> Evaluation:
    return Evaluation.from_probabilities(Y_TRUE, PROBS, NAMES, "test")


# --- scores of known predictions (no TensorFlow) ---------------------------------------------

def test_confusion_counts_true_rows_against_predicted_columns(known):
    assert known.confusion.tolist() == [[1, 1, 0],
                                        [0, 2, 0],
                                        [0, 1, 1]]
    assert known.y_pred.tolist() == [0, 1, 1, 1, 2, 1]
    assert known.accuracy == pytest.approx(4 / 6)
    assert known.split_name == "test" and known.class_names == NAMES


def test_per_class_precision_recall_f1_match_hand_counts(known):
    cat, dog, owl = known.per_class
    # cat: predicted once, right once; 2 true cats. dog: predicted 4 times, 2 right; 2 true dogs.
    assert (cat.name, cat.precision, cat.recall, cat.support) == ("cat", 1.0, 0.5, 2)
    assert cat.f1 == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert (dog.precision, dog.recall, dog.support) == (0.5, 1.0, 2)
    assert dog.f1 == pytest.approx(2 / 3)
    assert (owl.precision, owl.recall, owl.f1) == (1.0, 0.5, pytest.approx(2 / 3))
    assert known.macro_average().recall == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def test_a_class_never_predicted_scores_zero_not_nan():
    ev = Evaluation.from_probabilities([0, 1], [[0.9, 0.1], [0.8, 0.2]], ["a", "b"], "validation")
    b = ev.per_class[1]
    assert (b.precision, b.recall, b.f1, b.support) == (0.0, 0.0, 0.0, 1)


def test_cell_lists_its_samples_most_confident_first(known):
    assert known.cell(1, 1).tolist() == [3, 2]          # dog->dog: 0.8 before 0.7
    assert known.cell(2, 1).tolist() == [5]             # the owl mistaken for a dog
    assert known.cell(0, 2).tolist() == []
    both = Evaluation.from_probabilities([0, 0, 0], [[0.4, 0.6], [0.1, 0.9], [0.3, 0.7]], ["a", "b"], "test")
    assert both.cell(0, 1).tolist() == [1, 2, 0]


def test_ranked_orders_by_the_probability_of_the_true_class(known):
    # true-class probabilities: 0.7, 0.1, 0.7, 0.8, 0.6, 0.0 (ties keep sample order)
    assert known.ranked(best_first=True).tolist() == [3, 0, 2, 4, 1, 5]
    assert known.ranked(best_first=False).tolist() == [5, 1, 4, 0, 2, 3]


def test_loss_defaults_to_the_cross_entropy_of_the_true_class(known):
    expected = -np.mean(np.log([0.7, 0.1, 0.7, 0.8, 0.6, 1e-7]))  # a zero is clipped, not infinite
    assert known.loss == pytest.approx(expected, rel=1e-5)
    given = Evaluation.from_probabilities(Y_TRUE, PROBS, NAMES, "test", loss=0.25)
    assert given.loss == 0.25


def test_outputs_become_probabilities():
    sigmoid = as_probabilities(np.array([[0.8], [0.1]]), classes=2)
    assert np.allclose(sigmoid, [[0.2, 0.8], [0.9, 0.1]])
    logits = as_probabilities(np.array([[2.0, 0.0, -1.0]]), classes=3)
    assert logits.sum() == pytest.approx(1.0) and logits.argmax() == 0
    softmax = np.array([[0.25, 0.75]], dtype=np.float32)
    assert as_probabilities(softmax, classes=2).tolist() == softmax.tolist()


def test_bad_probabilities_and_labels_are_explained():
    with pytest.raises(ConvasError, match=r"shaped \(2, 3\)"):
        Evaluation.from_probabilities([0, 1], [[0.5, 0.5], [0.5, 0.5]], NAMES, "test")
    with pytest.raises(ConvasError, match="between 0 and 2"):
        Evaluation.from_probabilities([0, 3], [[1, 0, 0], [1, 0, 0]], NAMES, "test")
    with pytest.raises(ConvasError, match="empty"):
        Evaluation.from_probabilities([], np.zeros((0, 3)), NAMES, "test")


def test_the_split_evaluated_is_test_else_validation_else_train():
    x, y = np.zeros((4, 2, 2, 1), np.float32), np.array([0, 1, 0, 1])
    part = Split(x, y)
    assert choose_split(Dataset("d", ["a", "b"], part, part, part))[0] == "test"
    assert choose_split(Dataset("d", ["a", "b"], part, part, None))[0] == "validation"
    assert choose_split(Dataset("d", ["a", "b"], part, Split(x[:0], y[:0]), None))[0] == "train"
    assert choose_split(Dataset("d", ["a", "b"], part, part, part), "train")[0] == "train"
    with pytest.raises(ConvasError, match="no test samples"):
        choose_split(Dataset("d", ["a", "b"], part), "test")
    with pytest.raises(ConvasError, match="no samples"):
        choose_split(Dataset("d", ["a", "b"], Split(x[:0], y[:0])))


# --- a trained seed CNN on the digits ----------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset((28, 28, 1), 0.2, seed=0)


@pytest.fixture(scope="module")
def trained(digits):
    from engine.examples import seed_design
    from engine.keras_build import build_keras_model
    from engine.training import TrainingConfig, train

    model = build_keras_model(seed_design())
    train(None, digits.train, digits.validation, TrainingConfig(epochs=2, seed=0), model=model)
    return model


@pytest.mark.slow
def test_evaluating_the_trained_seed_model_on_digits(trained, digits):
    ev = evaluate(trained, digits)
    n = len(digits.validation)
    assert ev.split_name == "validation"
    assert ev.probabilities.shape == (n, 10) and ev.probabilities.dtype == np.float32
    assert ev.y_true.tolist() == digits.validation.y.tolist()
    assert ev.accuracy == pytest.approx(float(np.mean(ev.y_pred == ev.y_true)))
    assert ev.accuracy > 0.7
    assert ev.confusion.sum() == n
    assert np.trace(ev.confusion) == int(np.sum(ev.y_pred == ev.y_true))
    # The model is compiled by train(): the loss is Keras's, which equals the cross-entropy here.
    assert ev.loss == pytest.approx(Evaluation.from_probabilities(
        ev.y_true, ev.probabilities, ev.class_names, "x").loss, rel=1e-3)
    # Predictions agree with Keras's own predict.
    predicted = trained.predict(digits.validation.x, verbose=0)
    assert np.allclose(ev.probabilities, predicted, atol=1e-5)


@pytest.mark.slow
def test_evaluate_explains_a_model_that_does_not_fit_the_dataset(trained, digits):
    three = Dataset("three", ["a", "b", "c"], digits.train, digits.validation)
    with pytest.raises(ConvasError, match="10 units but the dataset 'three' has 3 classes"):
        evaluate(trained, three)
    small = load_digits_dataset((8, 8, 1), 0.2, seed=0)
    with pytest.raises(ConvasError, match=r"\(8, 8, 1\) but the model's input is \(28, 28, 1\)"):
        evaluate(trained, small)


@pytest.mark.slow
def test_feature_maps_have_the_shape_of_each_layer_output(trained, digits):
    from engine import evaluation

    names = feature_map_layers(trained)
    assert names == ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1"]  # no input, flatten, dense
    image = digits.validation.x[0]
    for name in names:
        maps = feature_maps(trained, name, image)
        assert maps.shape == tuple(trained.get_layer(name).output.shape[1:])
        assert maps.dtype == np.float32
    conv = trained.get_layer("conv2d")
    kernel, bias = (np.asarray(w) for w in conv.get_weights())
    patch = image[:3, :3, 0]  # the first output pixel of the 3x3 'valid' convolution
    expected = np.maximum(np.tensordot(patch, kernel[..., 0, :], axes=([0, 1], [0, 1])) + bias, 0)
    assert np.allclose(feature_maps(trained, "conv2d", image)[0, 0], expected, atol=1e-5)
    cached = evaluation._SUBMODELS[id(trained)][("features", "conv2d")]
    feature_maps(trained, "conv2d", digits.validation.x[1])
    assert evaluation._SUBMODELS[id(trained)][("features", "conv2d")] is cached  # built once


@pytest.mark.slow
def test_grad_cam_gives_a_finite_map_in_zero_one_at_the_input_size(trained, digits):
    image = digits.validation.x[3]
    probabilities = trained.predict(image[None], verbose=0)[0]
    cam = grad_cam(trained, image)
    assert cam.layer_name == "conv2d_1"  # the last convolution, not the pooling layer after it
    assert cam.class_index == int(probabilities.argmax())
    assert cam.probability == pytest.approx(float(probabilities.max()), abs=1e-5)
    for layer in ("conv2d", "max_pooling2d_1"):
        for class_index in (0, 5):
            cam = grad_cam(trained, image, class_index, layer)
            assert cam.heatmap.shape == (28, 28) and cam.heatmap.dtype == np.float32
            assert np.all(np.isfinite(cam.heatmap))
            assert cam.heatmap.min() >= 0.0 and cam.heatmap.max() <= 1.0
            peak = float(cam.heatmap.max())
            assert peak == 0.0 or peak == pytest.approx(1.0)  # normalised, or empty
            assert cam.class_index == class_index and cam.layer_name == layer
    blank = grad_cam(trained, np.zeros((28, 28, 1), np.float32), 0, "conv2d")
    assert np.all(np.isfinite(blank.heatmap))


@pytest.mark.slow
def test_grad_cam_of_the_seed_cnn_usually_finds_evidence(trained, digits):
    """Scored after the softmax, the first convolution shows evidence for nearly every digit (scored
    before it, about half the maps came out empty)."""
    found = [grad_cam(trained, image, layer_name="conv2d").heatmap.max() > 0
             for image in digits.validation.x[:20]]
    assert sum(found) >= 17


@pytest.mark.slow
def test_grad_cam_defaults_to_the_last_convolution_not_the_pooling_after_it(trained):
    from engine.design import chain
    from engine.example_designs import resnet_block
    from engine.keras_build import build_keras_model

    assert default_grad_cam_layer(trained) == "conv2d_1"  # seed CNN: conv, pool, conv, pool, flatten, dense
    ending = chain(("InputLayer", {"shape": (16, 16, 1)}),
                   ("Conv2D", {"filters": 4, "kernel_size": (3, 3)}),
                   ("BatchNormalization", {}),
                   ("ReLU", {}),
                   ("Conv2D", {"filters": 8, "kernel_size": (3, 3), "activation": "relu"}),
                   ("MaxPooling2D", {"pool_size": (2, 2)}),
                   ("Flatten", {}),
                   ("Dense", {"units": 3, "activation": "softmax"}), name="ending")
    model = build_keras_model(ending)
    names = [layer.name for layer in model.layers]
    assert default_grad_cam_layer(model) == names[names.index("max_pooling2d") - 1]  # the second Conv2D
    # Normalisation and activation after the last convolution, at its size: the last of them.
    bn_relu = chain(("InputLayer", {"shape": (16, 16, 1)}),
                    ("Conv2D", {"filters": 4, "kernel_size": (3, 3)}),
                    ("BatchNormalization", {}),
                    ("ReLU", {}),
                    ("MaxPooling2D", {"pool_size": (2, 2)}),
                    ("Flatten", {}),
                    ("Dense", {"units": 3, "activation": "softmax"}), name="bn_relu")
    model = build_keras_model(bn_relu)
    relu = next(layer.name for layer in model.layers if type(layer).__name__ == "ReLU")
    assert default_grad_cam_layer(model) == relu
    image = np.random.default_rng(0).random((16, 16, 1), dtype=np.float32)
    assert grad_cam(model, image).layer_name == relu
    # A residual block: through the batch norm, the add and the ReLU, not the global pooling.
    assert default_grad_cam_layer(build_keras_model(resnet_block())) == "relu_out"


def test_grad_cam_without_convolutions_takes_the_last_map_with_more_than_one_position():
    class Output:
        def __init__(self, *shape):
            self.shape = (None, *shape)

    class Layer:
        def __init__(self, name, *shape):
            self.name, self.output = name, Output(*shape)

    class AveragePooling2D(Layer):
        pass

    class Model:
        def __init__(self, *layers):
            self.layers = list(layers)

    model = Model(AveragePooling2D("pool", 4, 4, 1), AveragePooling2D("whole", 1, 1, 1), Layer("flat", 1))
    assert default_grad_cam_layer(model) == "pool"
    assert default_grad_cam_layer(Model(Layer("flat", 16))) is None


@pytest.mark.slow
def test_grad_cam_of_one_sigmoid_unit_reads_two_classes():
    import keras

    inputs = keras.Input((6, 6, 1))
    features = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled))
    image = np.random.default_rng(1).random((6, 6, 1), dtype=np.float32)
    p = float(model.predict(image[None], verbose=0)[0, 0])
    yes, no = grad_cam(model, image, 1), grad_cam(model, image, 0)
    assert yes.probability == pytest.approx(p, abs=1e-6) and no.probability == pytest.approx(1 - p, abs=1e-6)
    assert grad_cam(model, image).class_index == int(p > 0.5)
    assert yes.heatmap.shape == no.heatmap.shape == (6, 6)


@pytest.mark.slow
def test_bad_layer_names_and_images_are_explained(trained, digits):
    image = digits.validation.x[0]
    with pytest.raises(ConvasError, match="no layer named 'nope'.*conv2d, max_pooling2d"):
        feature_maps(trained, "nope", image)
    with pytest.raises(ConvasError, match="'flatten' does not output images"):
        grad_cam(trained, image, layer_name="flatten")
    with pytest.raises(ConvasError, match="no class 10"):
        grad_cam(trained, image, class_index=10)
    with pytest.raises(ConvasError, match=r"image is \(8, 8, 1\)"):
        feature_maps(trained, "conv2d", np.zeros((8, 8, 1), np.float32))


@pytest.mark.slow
def test_branching_models_with_a_softmax_layer():
    import keras

    inputs = keras.Input((12, 12, 1))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="left")(inputs)
    b = keras.layers.Conv2D(4, 1, padding="same", name="right")(inputs)
    added = keras.layers.Add(name="add")([a, b])
    joined = keras.layers.Concatenate(name="join")([added, a])
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(joined)
    logits = keras.layers.Dense(3, name="logits")(pooled)
    outputs = keras.layers.Softmax(name="softmax")(logits)
    model = keras.Model(inputs, outputs)
    assert feature_map_layers(model) == ["left", "right", "add", "join"]
    image = np.random.default_rng(0).random((12, 12, 1), dtype=np.float32)
    assert feature_maps(model, "join", image).shape == (12, 12, 8)
    for layer in ("add", "join"):
        cam = grad_cam(model, image, layer_name=layer)
        assert cam.heatmap.shape == (12, 12) and np.all(np.isfinite(cam.heatmap))
    with pytest.raises(ConvasError, match="'gap' does not output images"):
        feature_maps(model, "gap", image)


@pytest.mark.slow
def test_grad_cam_on_a_model_without_image_layers_is_explained():
    import keras

    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    assert feature_map_layers(model) == []
    with pytest.raises(ConvasError, match="has none"):
        grad_cam(model, np.zeros((4, 4, 1), np.float32))


# --- images that stay on disk ------------------------------------------------------------------

def _brightness_model(compiled: bool):
    """Predicts "bright" (class 1) when an image's mean is above 0.5, with fixed weights."""
    import keras

    inputs = keras.Input((8, 8, 1))
    mean = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(mean)
    model = keras.Model(inputs, outputs)
    model.layers[-1].set_weights([np.array([[-10.0, 10.0]], np.float32), np.array([5.0, -5.0], np.float32)])
    if compiled:
        model.compile(loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.slow
def test_a_lazy_image_folder_is_evaluated_and_its_images_read_back(tmp_path):
    import tensorflow as tf

    def write(folder: str, name: str, level: float) -> None:
        pixels = np.full((8, 8, 1), int(level * 255), np.uint8)
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / f"{name}.png").write_bytes(tf.io.encode_png(pixels).numpy())

    for i in range(4):
        write("a_dark", f"d{i}", 0.1)
        write("b_bright", f"b{i}", 0.9)
    write("a_dark", "odd", 0.9)  # a bright image filed as dark: one mistake
    data = load_image_folder(tmp_path, (8, 8, 1), validation_split=0.0)
    assert data.train.is_lazy and data.validation is None

    ev = evaluate(_brightness_model(compiled=False), data)
    assert ev.split_name == "train"
    assert ev.confusion.tolist() == [[4, 1], [0, 4]]
    odd = ev.cell(0, 1)
    assert [data.train.paths[i].endswith("odd.png") for i in odd] == [True]
    assert ev.loss == pytest.approx(Evaluation.from_probabilities(
        ev.y_true, ev.probabilities, ev.class_names, "train").loss)
    compiled = evaluate(_brightness_model(compiled=True), data)
    assert compiled.loss == pytest.approx(ev.loss, rel=1e-4)

    images = data.train.images(odd)
    assert images.shape == (1, 8, 8, 1) and images.dtype == np.float32
    assert np.allclose(images, 229 / 255)
    batch = next(iter(data.train.as_tf_dataset(64)))[0].numpy()
    assert np.array_equal(data.train.images(np.arange(len(data.train))), batch)
