"""Fitting a network's head to the data: one op list per task, a new head where the classifier
was removed, and a reason (an enum) when there is nothing to do."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from engine.analysis import analyse
from engine.design import Design, TensorRef, chain
from engine.editing import AddNode, SetArg, SetOutputs, SetTrainable, apply_all
from engine.heads import HeadRefusal, HeadRefused, head_problem, plan_fit_head
from engine.keras_build import build_keras_model
from engine.keras_import import import_keras_config
from engine.tasks import Task


def classifier(units: int = 5, activation: str = "softmax") -> Design:
    return chain(("InputLayer", {"shape": (8, 8, 3)}), ("Conv2D", {"filters": 4, "kernel_size": 3}),
                 ("GlobalAveragePooling2D", {}), ("Dense", {"units": units, "activation": activation}))


def fit(design: Design, task: Task, count: int) -> list[Any]:
    """Plan, apply, check undo restores the design exactly and the result is valid; the ops."""
    before = copy.deepcopy(design)
    ops = plan_fit_head(design, analyse(design), task, count)
    inverses = apply_all(design, ops)
    after = copy.deepcopy(design)
    assert analyse(design).valid
    apply_all(design, inverses)
    assert design.nodes == before.nodes and design.outputs == before.outputs
    apply_all(design, ops)
    assert design.nodes == after.nodes
    return ops


def output(design: Design) -> tuple[tuple[int | None, ...], str]:
    """The output shape and the activation of the layer that makes it."""
    a = analyse(design)
    name = design.output_refs()[0].node
    rep = a.nodes[name]
    act = rep.args.get("activation", "softmax" if rep.kind == "Softmax" else "linear")
    return rep.output_shape, act


@pytest.mark.parametrize(("task", "count", "activation"), [
    (Task.CLASSIFICATION, 10, "softmax"), (Task.CLASSIFICATION, 2, "softmax"),
    (Task.MULTILABEL, 4, "sigmoid"), (Task.REGRESSION, 1, "linear"), (Task.REGRESSION, 3, "linear")])
def test_the_last_dense_gets_the_datas_units_and_the_tasks_activation(task: Task, count: int, activation: str):
    d = classifier(5, "softmax")
    d.nodes["dense"].trainable = False  # a pretrained classifier, frozen: its new weights must train
    ops = fit(d, task, count)
    assert ops[0] == SetArg("dense", "units", count)
    assert output(d) == ((None, count), activation)
    assert d.nodes["dense"].trainable and isinstance(ops[-1], SetTrainable)


def test_an_activation_layer_after_the_dense_is_the_one_set():
    d = classifier(1000, "linear")
    d.add("Activation", "predictions", {"activation": "softmax"}, inputs=["dense"])
    fit(d, Task.MULTILABEL, 3)
    assert d.nodes["predictions"].args["activation"] == "sigmoid"
    assert output(d) == ((None, 3), "sigmoid")


def test_a_softmax_layer_goes_when_the_task_needs_another_activation():
    d = classifier(1000, "linear")
    d.add("Softmax", "probabilities", inputs=["dense"])
    fit(d, Task.CLASSIFICATION, 3)
    assert "probabilities" in d and output(d) == ((None, 3), "softmax")
    fit(d, Task.REGRESSION, 2)
    assert "probabilities" not in d and output(d) == ((None, 2), "linear")


def test_a_1x1_convolution_classifier_and_its_reshape_follow_the_classes():
    """MobileNet's head: GAP(keepdims) → Conv2D(classes, 1) → Reshape((classes,)) → softmax."""
    d = chain(("InputLayer", {"shape": (8, 8, 3)}), ("Conv2D", {"filters": 4, "kernel_size": 3}),
              ("GlobalAveragePooling2D", {"keepdims": True}), ("Conv2D", {"filters": 1000, "kernel_size": 1}),
              ("Reshape", {"target_shape": (1000,)}), ("Activation", {"activation": "softmax"}))
    fit(d, Task.CLASSIFICATION, 6)
    assert d.nodes["conv2d_1"].args["filters"] == 6 and d.nodes["reshape"].args["target_shape"] == (6,)
    assert output(d) == ((None, 6), "softmax")


def test_a_hidden_dense_at_the_end_gets_a_head_after_it():
    d = classifier(64, "relu")  # its classifier was cut off: the relu layer is not one
    ops = fit(d, Task.CLASSIFICATION, 3)
    assert [op.kind for op in ops if isinstance(op, AddNode)] == ["Dropout", "Dense"]
    assert d.nodes["dense"].args["units"] == 64
    assert output(d) == ((None, 3), "softmax")


def test_segmentation_sets_the_final_convolution_or_adds_one():
    d = chain(("InputLayer", {"shape": (16, 16, 3)}), ("Conv2D", {"filters": 8, "kernel_size": 3, "padding": "same",
                                                                  "activation": "relu"}),
              ("Conv2D", {"filters": 2, "kernel_size": 1, "activation": "softmax"}))
    fit(d, Task.SEGMENTATION, 4)
    assert output(d) == ((None, 16, 16, 4), "softmax")
    d.remove("conv2d_1")  # now it ends in a 3×3 relu convolution: a new 1×1 softmax one is added
    ops = fit(d, Task.SEGMENTATION, 3)
    assert [op.kind for op in ops if isinstance(op, AddNode)] == ["Conv2D"]
    assert output(d) == ((None, 16, 16, 3), "softmax")
    with pytest.raises(HeadRefused) as refused:
        plan_fit_head(classifier(), analyse(classifier()), Task.SEGMENTATION, 3)
    assert refused.value.reason is HeadRefusal.NOT_A_MAP


@pytest.mark.parametrize(("make", "task", "count", "reason"), [
    (lambda: classifier(5), Task.CLASSIFICATION, 5, HeadRefusal.ALREADY_FITS),
    (lambda: classifier(5), Task.RECONSTRUCTION, 5, HeadRefusal.RECONSTRUCTION),
    (lambda: classifier(5), Task.CLASSIFICATION, 0, HeadRefusal.NO_COUNT),
    (lambda: chain(("InputLayer", {"shape": (4,)}), ("Dense", {"units": 0})), Task.CLASSIFICATION, 3,
     HeadRefusal.INVALID),
])
def test_nothing_to_do_is_a_reason_and_a_message(make, task: Task, count: int, reason: HeadRefusal):
    d = make()
    with pytest.raises(HeadRefused) as refused:
        plan_fit_head(d, analyse(d), task, count)
    assert refused.value.reason is reason and str(refused.value)
    assert head_problem(d, analyse(d), task, count) is None


def test_two_outputs_are_refused():
    d = classifier()
    d.add("Dense", "other", {"units": 2}, inputs=["global_average_pooling2d"])
    with pytest.raises(HeadRefused, match="2 outputs") as refused:
        plan_fit_head(d, analyse(d), Task.CLASSIFICATION, 3)
    assert refused.value.reason is HeadRefusal.OUTPUTS


def test_head_problem_says_what_does_not_fit():
    d = classifier(1000)
    assert head_problem(d, analyse(d), Task.CLASSIFICATION, 10, [f"c{i}" for i in range(10)]) == (
        "dense gives 1000 units, but the data has 10 classes (c0, c1, c2, c3, …); Fit Head to Data "
        "sets units=10")
    d = classifier(64, "relu")
    assert "Fit Head to Data adds a head" in (head_problem(d, analyse(d), Task.REGRESSION, 2) or "")


@pytest.fixture(scope="module")
def mobilenet_doc() -> dict[str, Any]:
    """A MobileNetV2 without its classifier, built locally (no weights, nothing downloaded)."""
    import keras

    model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False,
                                           weights=None)
    return json.loads(model.to_json())


def test_a_backbone_without_its_classifier_gets_pooling_dropout_and_dense_below_its_output(mobilenet_doc):
    d = import_keras_config(mobilenet_doc).design
    old_output = d.output_refs()[0].node
    assert d.outputs  # an imported model declares its output
    ops = fit(d, Task.CLASSIFICATION, 10)
    added = [op for op in ops if isinstance(op, AddNode)]
    assert [(op.kind, op.name) for op in added] == [
        ("GlobalAveragePooling2D", "head_pooling"), ("Dropout", "head_dropout"), ("Dense", "predictions")]
    assert added[1].args == {"rate": 0.2} and added[2].args == {"units": 10, "activation": "softmax"}
    assert ops[-1] == SetOutputs((TensorRef("predictions"),))
    assert d.nodes["head_pooling"].inputs == [TensorRef(old_output)]
    # Laid out in a column under the card that shows the old output.
    group = d.collapsed_group(old_output)
    top = (d.groups[group].position if group and d.groups[group].position else d.nodes[old_output].position)
    assert top is not None
    placed = [d.nodes[n].position for n in ("head_pooling", "head_dropout", "predictions")]
    assert all(p is not None and p[0] == top[0] for p in placed)
    assert top[1] < placed[0][1] < placed[1][1] < placed[2][1]  # type: ignore[index]
    model = build_keras_model(d)
    assert tuple(model.output.shape) == (None, 10)
    # Fitted once, it fits: a second click has nothing to do.
    with pytest.raises(HeadRefused) as refused:
        plan_fit_head(d, analyse(d), Task.CLASSIFICATION, 10)
    assert refused.value.reason is HeadRefusal.ALREADY_FITS
