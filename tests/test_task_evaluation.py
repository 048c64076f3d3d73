"""Scores of the multi-label, regression, reconstruction and segmentation evaluations: equal to
Keras's own metrics, the same streamed as all at once, and clear about bad input."""

from __future__ import annotations

import numpy as np
import pytest

from engine.datasets import Dataset, Split
from engine.evaluation import Evaluation, EvaluationError
from engine.task_evaluation import (
    MultiLabelEvaluation, ReconstructionEvaluation, ReconstructionScorer, RegressionEvaluation,
    SegmentationEvaluation, SegmentationScorer, TaskEvaluationError, evaluate_task, masks_from_outputs,
    noisy, predict_samples,
)
from engine.tasks import TargetKind, Task


def _keras_value(metric, y_true, y_pred) -> float:
    metric.update_state(y_true, y_pred)
    return float(metric.result())


# --- multi-label ---------------------------------------------------------------------------------

@pytest.mark.slow  # imports TensorFlow for Keras's metrics
def test_multilabel_scores_equal_keras_binary_accuracy_precision_and_recall():
    import keras

    rng = np.random.default_rng(1)
    y = (rng.random((200, 5)) < 0.3).astype(np.float32)
    p = np.clip(y * 0.4 + rng.random((200, 5)) * 0.6, 0, 1).astype(np.float32)
    ev = MultiLabelEvaluation.from_arrays(y, p, list("abcde"), "test")
    assert ev.label_accuracy == pytest.approx(_keras_value(keras.metrics.BinaryAccuracy(), y, p), abs=1e-6)
    assert ev.precision == pytest.approx(_keras_value(keras.metrics.Precision(), y, p), abs=1e-6)
    assert ev.recall == pytest.approx(_keras_value(keras.metrics.Recall(), y, p), abs=1e-6)
    for k, scores in enumerate(ev.per_label):
        assert scores.precision == pytest.approx(_keras_value(keras.metrics.Precision(), y[:, k], p[:, k]), abs=1e-6)
        assert scores.recall == pytest.approx(_keras_value(keras.metrics.Recall(), y[:, k], p[:, k]), abs=1e-6)
        assert scores.support == int(y[:, k].sum())
    assert ev.loss == pytest.approx(float(keras.losses.binary_crossentropy(y, p).numpy().mean()), rel=1e-4)


def test_multilabel_threshold_changes_the_scores_and_exact_match_counts_whole_rows():
    y = np.array([[1, 0], [1, 1], [0, 0]], np.float32)
    p = np.array([[0.9, 0.2], [0.6, 0.4], [0.1, 0.3]], np.float32)
    ev = MultiLabelEvaluation.from_arrays(y, p, ["cat", "dog"], "test")
    assert ev.exact_match == pytest.approx(2 / 3)      # row 1 misses "dog" at 0.5
    assert ev.per_label[1].recall == 0.0
    low = ev.at_threshold(0.35)
    assert low.per_label[1].recall == 1.0 and low.exact_match == 1.0
    assert ev.threshold == 0.5 and low.threshold == 0.35  # the original is unchanged


def test_multilabel_bad_input_says_what_is_wrong():
    with pytest.raises(TaskEvaluationError, match=r"\(samples, 3\) for 3 labels"):
        MultiLabelEvaluation.from_arrays(np.zeros((4, 2)), np.zeros((4, 2)), ["a", "b", "c"], "test")
    with pytest.raises(TaskEvaluationError, match="must be 0 or 1"):
        MultiLabelEvaluation.from_arrays(np.full((4, 2), 2.0), np.zeros((4, 2)), ["a", "b"], "test")


# --- regression ----------------------------------------------------------------------------------

@pytest.mark.slow  # imports TensorFlow for Keras's metrics
def test_regression_r2_equals_keras_r2score_and_worst_is_the_largest_error():
    import keras

    rng = np.random.default_rng(2)
    y = rng.normal(size=(120, 3)).astype(np.float32) * [1.0, 5.0, 0.1]
    pred = (y + rng.normal(size=y.shape) * [0.3, 1.0, 0.2]).astype(np.float32)
    ev = RegressionEvaluation.from_arrays(y, pred, ["x", "y", "z"], "validation")
    assert ev.r2 == pytest.approx(_keras_value(keras.metrics.R2Score(), y, pred), abs=1e-5)
    for k, scores in enumerate(ev.per_target):
        keras_r2 = _keras_value(keras.metrics.R2Score(), y[:, k:k + 1], pred[:, k:k + 1])
        assert scores.r2 == pytest.approx(keras_r2, abs=1e-5)
        assert scores.mae == pytest.approx(np.abs(y[:, k] - pred[:, k]).mean(), rel=1e-5)
    assert ev.mae == pytest.approx(_keras_value(keras.metrics.MeanAbsoluteError(), y, pred), rel=1e-5)
    errors = np.abs(y - pred).sum(axis=1)
    assert ev.worst[0] == errors.argmax() and errors[ev.worst[-1]] == errors.min()


def test_regression_one_target_as_a_vector_and_bad_shapes():
    ev = RegressionEvaluation.from_arrays([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], ["size"], "test")
    assert ev.y_true.shape == (3, 1) and ev.per_target[0].mae == pytest.approx(1 / 3)
    with pytest.raises(TaskEvaluationError, match=r"predictions shaped \(3, 1\).*got \(3, 2\)"):
        RegressionEvaluation.from_arrays([1.0, 2.0, 3.0], np.zeros((3, 2)), ["size"], "test")
    with pytest.raises(TaskEvaluationError, match="test split is empty"):
        RegressionEvaluation.from_arrays(np.zeros((0, 1)), np.zeros((0, 1)), ["size"], "test")


# --- reconstruction ------------------------------------------------------------------------------

def test_reconstruction_streamed_equals_all_at_once():
    rng = np.random.default_rng(3)
    clean = rng.random((50, 6, 6, 1)).astype(np.float32)
    out = (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)
    whole = ReconstructionEvaluation.from_arrays(clean, out, "test")
    scorer = ReconstructionScorer("test")
    for start in range(0, 50, 7):
        scorer.add(clean[start:start + 7], out[start:start + 7])
    streamed = scorer.result()
    assert streamed.mse == pytest.approx(whole.mse) and streamed.mae == pytest.approx(whole.mae)
    np.testing.assert_allclose(streamed.errors, whole.errors, rtol=1e-6)
    assert whole.variance == pytest.approx(float(clean.astype(np.float64).var()), rel=1e-6)
    assert whole.mse == pytest.approx(float(((out - clean) ** 2).mean()), rel=1e-5)
    assert whole.errors[whole.worst[0]] == whole.errors.max() and whole.errors[whole.best[0]] == whole.errors.min()


def test_reconstruction_of_another_shape_says_the_output_must_match_the_input():
    with pytest.raises(TaskEvaluationError, match=r"outputs are \(4, 4, 1\).*inputs are \(6, 6, 1\)"):
        ReconstructionEvaluation.from_arrays(np.zeros((2, 6, 6, 1)), np.zeros((2, 4, 4, 1)), "test")


# --- segmentation --------------------------------------------------------------------------------

@pytest.mark.slow  # imports TensorFlow for Keras's metrics
def test_segmentation_mean_iou_equals_keras_and_streamed_equals_all_at_once():
    import keras

    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, size=(30, 8, 8))
    predicted = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, 4, size=truth.shape))
    truth[truth == 2] = 1  # class 2 is never true, sometimes predicted; class 3 never true
    names = ["background", "circle", "square", "triangle"]
    whole = SegmentationEvaluation.from_arrays(truth, predicted, names, "test")
    keras_iou = _keras_value(keras.metrics.MeanIoU(num_classes=4), truth.ravel(), predicted.ravel())
    assert whole.mean_iou == pytest.approx(keras_iou, abs=1e-6)
    assert whole.pixel_accuracy == pytest.approx(float((truth == predicted).mean()))
    assert whole.per_class_iou[2] == 0.0  # predicted but never true: counted, IoU 0
    scorer = SegmentationScorer(names, "test")
    for start in range(0, 30, 4):
        scorer.add(truth[start:start + 4], predicted[start:start + 4])
    streamed = scorer.result()
    np.testing.assert_array_equal(streamed.confusion, whole.confusion)
    np.testing.assert_allclose(streamed.per_image_iou, whole.per_image_iou)
    assert streamed.mean_iou == whole.mean_iou


def test_segmentation_absent_class_is_nan_and_worst_image_first():
    truth = np.zeros((2, 4, 4), np.int64)
    truth[0, :2] = 1
    predicted = truth.copy()
    predicted[1, 0, 0] = 1  # image 1 has a stray pixel of class 1
    ev = SegmentationEvaluation.from_arrays(truth, predicted, ["bg", "fg", "other"], "test")
    assert np.isnan(ev.per_class_iou[2])
    assert ev.worst[0] == 1 and ev.per_image_iou[0] == 1.0 and ev.per_image_iou[1] < 1.0


def test_segmentation_bad_masks_say_what_to_fix():
    with pytest.raises(TaskEvaluationError, match=r"hold class 5.*2 classes \(0 to 1\)"):
        SegmentationEvaluation.from_arrays(np.full((1, 2, 2), 5), np.zeros((1, 2, 2), int), ["a", "b"], "test")
    with pytest.raises(TaskEvaluationError, match="height and width"):
        SegmentationEvaluation.from_arrays(np.zeros((1, 2, 2), int), np.zeros((1, 3, 3), int), ["a", "b"], "test")
    assert masks_from_outputs(np.array([[[[0.2, 0.8], [0.9, 0.1]]]])).tolist() == [[[1, 0]]]


# --- running a model -----------------------------------------------------------------------------

def _images(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1)).astype(np.float32)


def _dataset(x: np.ndarray, y: np.ndarray, names: list[str], target: TargetKind) -> Dataset:
    return Dataset("tiny", names, train=Split(x[:4], y[:4]), test=Split(x, y), target=target)


@pytest.mark.slow
def test_evaluate_task_runs_models_of_every_task_batch_by_batch():
    import keras

    x = _images(20, 5)
    inputs = keras.Input((8, 8, 1))
    # Regression: the mean brightness, predicted exactly by global average pooling.
    brightness = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
    ev = evaluate_task(brightness, _dataset(x, x.mean(axis=(1, 2)), ["brightness"], TargetKind.VALUES),
                       Task.REGRESSION, batch_size=6)
    assert isinstance(ev, RegressionEvaluation) and ev.r2 == pytest.approx(1.0) and ev.mae < 1e-6

    # Reconstruction: the identity, perfect on clean inputs; with noise its error is the noise's
    # (clipped to the pixel range, so a little below σ²).
    identity = keras.Model(inputs, keras.layers.Activation("linear")(inputs))
    data = _dataset(x, np.zeros(20, np.int64), ["only"], TargetKind.CLASS)
    assert evaluate_task(identity, data, "reconstruction", batch_size=6).mse == pytest.approx(0.0, abs=1e-12)
    denoised = evaluate_task(identity, data, Task.RECONSTRUCTION, batch_size=6, noise_stddev=0.2)
    given = noisy(x, np.arange(20), 0.2)
    assert denoised.mse == pytest.approx(float(((given - x) ** 2).mean()), rel=1e-5)
    assert 0.02 < denoised.mse < 0.04 and given.min() >= 0 and given.max() <= 1
    assert denoised.variance == pytest.approx(x.var(), rel=1e-4)
    shown, outputs = predict_samples(identity, data.test, [3, 7], Task.RECONSTRUCTION, noise_stddev=0.2)
    np.testing.assert_allclose(shown, noisy(x[[3, 7]], [3, 7], 0.2), atol=1e-6)
    np.testing.assert_allclose(outputs, shown, atol=1e-6)

    # Segmentation: a 1×1 convolution whose class-1 score grows with brightness; masks = bright pixels.
    conv = keras.layers.Conv2D(2, 1, activation="softmax")
    segmenter = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.array([[[[0.0, 40.0]]]], np.float32), np.array([0.0, -20.0], np.float32)])
    masks = (x[..., 0] > 0.5).astype(np.int64)
    seg = evaluate_task(segmenter, _dataset(x, masks, ["dark", "bright"], TargetKind.MASK), Task.SEGMENTATION,
                        batch_size=6)
    assert seg.mean_iou == pytest.approx(1.0) and seg.pixel_accuracy == 1.0 and seg.loss < 0.1
    _, predicted = predict_samples(segmenter, _dataset(x, masks, ["dark", "bright"], TargetKind.MASK).test,
                                   [0, 1], Task.SEGMENTATION)
    np.testing.assert_array_equal(predicted, masks[:2])

    # Multi-label: two sigmoid units; the data's labels are (bright, dark).
    dense = keras.layers.Dense(2, activation="sigmoid")
    tagger = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    dense.set_weights([np.array([[60.0, -60.0]], np.float32), np.array([-30.0, 30.0], np.float32)])
    mean = x.mean(axis=(1, 2, 3))
    labels = np.stack([mean > 0.5, mean <= 0.5], axis=1).astype(np.float32)
    multi = evaluate_task(tagger, _dataset(x, labels, ["bright", "dark"], TargetKind.MULTI_HOT), Task.MULTILABEL)
    assert isinstance(multi, MultiLabelEvaluation) and multi.exact_match > 0.9

    # Classification still gives the classifier's evaluation.
    classifier = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))
    classes = _dataset(x, (mean > 0.5).astype(np.int64), ["dark", "bright"], TargetKind.CLASS)
    assert isinstance(evaluate_task(classifier, classes, Task.CLASSIFICATION), Evaluation)

    # A model whose output does not fit the task: the message names the numbers and the fix.
    with pytest.raises(EvaluationError, match=r"outputs \(1,\) per sample but the data has 2 labels.*Dense of 2"):
        evaluate_task(brightness, _dataset(x, labels, ["bright", "dark"], TargetKind.MULTI_HOT), Task.MULTILABEL)
    with pytest.raises(EvaluationError, match=r"masks have 3 classes; set the last layer's filters to 3"):
        evaluate_task(segmenter, _dataset(x, masks, ["a", "b", "c"], TargetKind.MASK), Task.SEGMENTATION)
    with pytest.raises(EvaluationError, match=r"input images are \(8, 8, 1\)"):
        evaluate_task(brightness, data, Task.RECONSTRUCTION)


@pytest.mark.slow
def test_a_file_backed_segmentation_split_is_scored_from_its_mask_files(tmp_path):
    import keras
    import tensorflow as tf

    x = _images(7, 8)
    masks = (x[..., 0] > 0.5).astype(np.uint8)
    paths, mask_paths = [], []
    for i in range(7):
        paths.append(str(tmp_path / f"image_{i}.png"))
        mask_paths.append(str(tmp_path / f"mask_{i}.png"))
        (tmp_path / f"image_{i}.png").write_bytes(tf.io.encode_png(np.round(x[i] * 255).astype(np.uint8)).numpy())
        (tmp_path / f"mask_{i}.png").write_bytes(tf.io.encode_png(masks[i][..., None]).numpy())
    split = Split.from_files(paths, [0] * 7, (8, 8, 1), mask_paths=mask_paths)
    data = Dataset("files", ["dark", "bright"], train=split, test=split, target=TargetKind.MASK)
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(2, 1, activation="softmax")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.array([[[[0.0, 40.0]]]], np.float32), np.array([0.0, -20.0], np.float32)])
    ev = evaluate_task(model, data, Task.SEGMENTATION, batch_size=3)
    assert len(ev) == 7 and ev.confusion.sum() == 7 * 64
    # Pixels a hair from 0.5 may round across it in the PNG; nearly all agree.
    assert ev.pixel_accuracy > 0.97 and ev.mean_iou > 0.94
