"""Behaviour of the analysis that needs no Keras: messages, graphs, costs, receptive fields."""

from __future__ import annotations

import pytest

from engine.analysis import analyse
from engine.design import Design, TensorRef, chain

SEED = [
    ("InputLayer", {"shape": (28, 28, 1)}),
    ("Conv2D", {"filters": 32, "kernel_size": 3, "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": 2}),
    ("Conv2D", {"filters": 64, "kernel_size": 3, "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": 2}),
    ("Flatten", {}),
    ("Dense", {"units": 10, "activation": "softmax"}),
]


def seed() -> Design:
    return chain(*SEED, name="seed_cnn")


def messages(analysis) -> list[str]:
    return [str(p) for p in analysis.problems]


def test_seed_cnn_shapes_params_and_costs():
    a = analyse(seed(), batch_size=32)
    assert a.valid and not a.problems
    shapes = [a.nodes[n].output_shape for n in a.order]
    assert shapes == [(None, 28, 28, 1), (None, 26, 26, 32), (None, 13, 13, 32), (None, 11, 11, 64),
                      (None, 5, 5, 64), (None, 1600), (None, 10)]
    assert [a.nodes[n].params for n in a.order] == [0, 320, 0, 18496, 0, 0, 16010]
    assert a.total_params == 34826 and a.weight_bytes == 4 * 34826
    # MACs: 26·26·32·(3·3·1) + 11·11·64·(3·3·32) + 1600·10
    assert a.macs == 26 * 26 * 32 * 9 + 11 * 11 * 64 * 288 + 16000
    per_sample = 4 * (784 + 26 * 26 * 32 + 13 * 13 * 32 + 11 * 11 * 64 + 5 * 5 * 64 + 1600 + 10)
    assert a.activation_bytes == 32 * per_sample
    # Peak while the first pooling runs: conv2d's output and the pooled output are alive.
    assert a.peak_inference_bytes == 32 * 4 * (26 * 26 * 32 + 13 * 13 * 32)


def test_receptive_field_and_effective_stride_follow_the_textbook_recurrence():
    a = analyse(seed())
    rf = {n: (a.nodes[n].receptive_field(), a.nodes[n].effective_stride()) for n in a.order}
    assert rf["conv2d"] == ([3, 3], [1, 1])
    assert rf["max_pooling2d"] == ([4, 4], [2, 2])
    assert rf["conv2d_1"] == ([8, 8], [2, 2])
    assert rf["max_pooling2d_1"] == ([10, 10], [4, 4])
    assert rf["flatten"] == (None, None) and rf["dense"] == (None, None)


def test_dilation_and_upsampling_receptive_field():
    d = chain(("InputLayer", {"shape": (64, 64, 3)}),
              ("Conv2D", {"filters": 4, "kernel_size": 3, "dilation_rate": 2}),
              ("Conv2D", {"filters": 4, "kernel_size": 3, "strides": 2}),
              ("UpSampling2D", {"size": 2}))
    a = analyse(d)
    assert a.nodes["conv2d"].receptive_field() == [5, 5]
    assert a.nodes["conv2d_1"].effective_stride() == [2, 2]
    assert a.nodes["up_sampling2d"].effective_stride() == [1, 1]
    assert a.nodes["up_sampling2d"].receptive_field() == [7, 7]


def test_kernel_larger_than_input_names_node_numbers_and_fix():
    d = seed()
    d.set_arg("conv2d_1", "kernel_size", 15)
    a = analyse(d)
    assert not a.valid
    assert messages(a) == ["conv2d_1: 15×15 kernel is larger than its 13×13 input; "
                           "use padding='same' or a kernel ≤ 13"]
    fixes = a.nodes["conv2d_1"].problems[0].fixes
    assert fixes[0].action == "set_arg" and (fixes[0].arg, fixes[0].value) == ("padding", "same")
    # Downstream nodes are blocked, not reported as separate errors.
    assert a.nodes["dense"].blocked and not a.nodes["dense"].problems
    d.set_arg("conv2d_1", "padding", "same")
    assert analyse(d).valid


@pytest.mark.parametrize("arg, value, expected", [
    ("filters", 0, "filters must be ≥ 1, got 0"),
    ("filters", -3, "filters must be ≥ 1, got -3"),
    ("kernel_size", (3, 3, 3), "kernel_size must be one whole number or 2 of them"),
    ("padding", "full", "padding must be one of 'valid', 'same'; got 'full'"),
    ("strides", 0, "strides must be ≥ 1, got 0"),
])
def test_invalid_argument_is_reported_with_its_name_and_range(arg, value, expected):
    d = seed()
    d.set_arg("conv2d", arg, value)
    a = analyse(d)
    errors = a.nodes["conv2d"].errors
    assert errors and errors[0].arg == arg and expected in errors[0].message
    assert d.nodes["conv2d"].args[arg] == value  # the design keeps what the user typed


def test_dense_units_zero_and_reshape_that_does_not_divide():
    d = seed()
    d.set_arg("dense", "units", 0)
    assert "units must be ≥ 1, got 0" in messages(analyse(d))[0]
    d = chain(("InputLayer", {"shape": (10, 10, 3)}), ("Reshape", {"target_shape": (7, -1)}))
    assert messages(analyse(d)) == ["reshape: cannot reshape (None, 10, 10, 3) (300 values) into (7, -1): "
                                    "300 is not divisible by 7"]
    d = chain(("InputLayer", {"shape": (10, 10, 3)}), ("Reshape", {"target_shape": (30, 11)}))
    assert "(330 values); the sizes must multiply to 300" in messages(analyse(d))[0]


def test_dense_after_spatial_tensor_is_a_warning_with_fixes():
    d = chain(("InputLayer", {"shape": (8, 8, 3)}), ("Dense", {"units": 4}))
    a = analyse(d)
    assert a.valid
    assert a.nodes["dense"].output_shape == (None, 8, 8, 4)
    (warning,) = a.warnings
    assert warning.node == "dense" and "Flatten" in warning.message
    assert [f.layer for f in warning.fixes] == ["Flatten", "GlobalAveragePooling2D"]


def test_merge_with_incompatible_shapes_suggests_projection():
    d = Design()
    d.add("InputLayer", "x", {"shape": (16, 16, 8)})
    d.add("Conv2D", "a", {"filters": 16, "kernel_size": 1}, inputs=["x"])
    d.add("Add", "add", inputs=["x", "a"])
    a = analyse(d)
    (err,) = a.errors
    assert err.node == "add" and "8 ≠ 16" in err.message
    fix = err.fixes[0]
    assert (fix.action, fix.layer, fix.input_index, fix.layer_args["filters"]) == ("insert_before", "Conv2D", 1, 8)


def test_concatenate_of_different_spatial_sizes_is_rejected():
    d = Design()
    d.add("InputLayer", "x", {"shape": (28, 28, 1)})
    d.add("MaxPooling2D", "p", inputs=["x"])
    d.add("Concatenate", "cat", inputs=["x", "p"])
    (err,) = analyse(d).errors
    assert err.node == "cat" and "28 vs 14" in err.message.replace("14 vs 28", "28 vs 14")


def test_cycle_is_reported_once_marked_on_each_member_and_nothing_hangs():
    d = Design()
    d.add("InputLayer", "x", {"shape": (4,)})
    d.add("Dense", "a", {"units": 4}, inputs=["x"])
    d.add("Dense", "b", {"units": 4}, inputs=["a"])
    d.connect("b", "a")
    a = analyse(d)
    (cyc,) = [p for p in a.errors if "cycle" in p.message]
    assert cyc.node is None and cyc in a.design_problems
    assert "a → b → a" in cyc.message or "b → a → b" in cyc.message
    assert all("cycle" in a.nodes[n].errors[0].message for n in "ab")


def test_disconnected_nodes_and_missing_input_layer():
    d = seed()
    d.add("Conv2D", "lonely", {"filters": 3, "kernel_size": 3})
    a = analyse(d)
    assert "lonely: has no input; connect an input to it" in messages(a)
    d2 = Design()
    d2.add("Dense", "d", {"units": 3})
    assert any("no InputLayer" in m for m in messages(analyse(d2)))


def test_unsupported_layer_is_reported_by_name_not_crashing():
    d = seed()
    d.add("MyCustomAttention", "attn", inputs=["dense"])
    a = analyse(d)
    assert "attn: MyCustomAttention is not a layer type Convas supports" in messages(a)[0]


def test_shared_layer_counts_weights_once_and_reports_each_call():
    d = Design()
    d.add("InputLayer", "left", {"shape": (32,)})
    d.add("InputLayer", "right", {"shape": (32,)})
    d.add("Dense", "tower", {"units": 8}, inputs=["left"])
    d.connect("right", "tower", call=1)
    d.add("Subtract", "diff", inputs=[TensorRef("tower", 0), TensorRef("tower", 1)])
    a = analyse(d)
    assert a.valid
    assert a.nodes["tower"].output_shapes == [(None, 8), (None, 8)]
    assert a.nodes["tower"].params == 32 * 8 + 8 and a.total_params == 264
    assert a.nodes["tower"].macs == 2 * 32 * 8
    # Applying it to a differently shaped tensor is refused: one layer has one set of weights.
    d.add("InputLayer", "odd", {"shape": (16,)})
    d.connect("odd", "tower", call=2)
    assert any("different shapes" in str(p) for p in analyse(d).errors)


def test_layer_applied_to_its_own_output_is_not_a_cycle():
    d = Design()
    d.add("InputLayer", "x", {"shape": (8,)})
    d.add("Dense", "f", {"units": 8}, inputs=["x"])
    d.connect(TensorRef("f", 0), "f", call=1)
    a = analyse(d)
    assert a.valid and a.nodes["f"].output_shapes == [(None, 8), (None, 8)]


def test_thousand_and_ten_thousand_layer_chains_need_no_recursion():
    for n in (1000, 10000):
        layers = [("InputLayer", {"shape": (16,)})] + [("Dense", {"units": 16})] * n
        a = analyse(chain(*layers))
        assert a.valid and len(a.order) == n + 1
        assert a.total_params == n * (16 * 16 + 16)


def test_none_dimensions_flow_through():
    d = chain(("InputLayer", {"shape": (None, None, 3)}), ("Conv2D", {"filters": 8, "kernel_size": 3}),
              ("GlobalAveragePooling2D", {}), ("Dense", {"units": 2}))
    a = analyse(d)
    assert a.valid
    assert a.nodes["conv2d"].output_shape == (None, None, None, 8)
    assert a.nodes["conv2d"].macs == 0 and a.nodes["dense"].params == 18


def test_batch_size_of_input_is_kept():
    d = chain(("InputLayer", {"shape": (4,), "batch_size": 8}), ("Dense", {"units": 2}))
    assert analyse(d).nodes["dense"].output_shape == (8, 2)


def test_extra_unknown_argument_is_reported():
    d = seed()
    d.set_arg("conv2d", "kernal_size", 3)
    assert "conv2d: Conv2D has no argument 'kernal_size'" in messages(analyse(d))


def test_severities_fix_actions_and_param_kinds_are_enums():
    from engine.analysis import Severity
    from engine.layers import CATALOGUE, FixAction, Param, ParamKind

    d = chain(("InputLayer", {"shape": (4, 4, 1)}), ("Conv2D", {"filters": 2, "kernel_size": 5}),
              ("Dense", {"units": 3}))
    d.add("InputLayer", "lonely", {"shape": (2,)})
    a = analyse(d)
    assert {type(p.severity) for p in a.problems} == {Severity}
    assert {p.severity for p in a.problems} == {Severity.ERROR, Severity.WARNING}
    assert {type(f.action) for p in a.problems for f in p.fixes} == {FixAction}
    assert all(isinstance(p.kind, ParamKind) for spec in CATALOGUE.values() for p in spec.params)
    with pytest.raises(ValueError):
        Param("x", "integer")  # type: ignore[arg-type]  # a typo in a spec fails at import


# --- layers Convas does not know (imported: see engine/keras_import.py) ------------------------

def _with_unsupported(shapes, reason: str | None = "a custom layer class; Convas never runs code from a file",
                      calls: int = 1) -> Design:
    """input (8, 8, 3) → Swirl (unsupported, its output recorded as ``shapes``) → Flatten → Dense(4)."""
    d = Design(name="imported")
    d.add("InputLayer", "image", {"shape": (8, 8, 3)})
    marker: dict = {"module": "my_package.layers", "class_name": "Swirl"}
    if reason is not None:
        marker["reason"] = reason
    if shapes is not _ABSENT:
        marker["output_shapes"] = shapes
    d.add("Swirl", "swirl", inputs=["image"], config={"unsupported": marker, "trainable": True})
    for _ in range(calls - 1):
        d.connect("image", "swirl", call=d.nodes["swirl"].calls)
    d.add("Flatten", "flat", inputs=["swirl"])
    d.add("Dense", "head", {"units": 4}, inputs=["flat"])
    return d


_ABSENT = object()


def test_an_unsupported_layer_reports_its_reason_and_the_layers_after_it_are_analysed():
    a = analyse(_with_unsupported([[None, 4, 4, 6]]), batch_size=2)
    swirl = a.nodes["swirl"]
    assert [p.message for p in swirl.errors] == [
        "Swirl (my_package.layers) is not a layer Convas can analyse: a custom layer class; Convas never "
        "runs code from a file; replace this card with catalogue layers or delete it"]
    assert not a.valid  # it cannot be built or trained
    assert swirl.output_shape == (None, 4, 4, 6) and swirl.params == 0 and swirl.macs == 0
    assert swirl.activation_bytes == 4 * 96  # its output's size is known
    assert a.nodes["flat"].output_shape == (None, 96) and a.nodes["flat"].valid
    head = a.nodes["head"]
    assert head.valid and not head.blocked and head.output_shape == (None, 4)
    assert head.params == 96 * 4 + 4 and head.macs == 96 * 4
    assert a.total_params == 388 and a.unsupported == ["swirl"]
    assert a.errors == swirl.errors


def test_without_a_recorded_shape_the_layers_after_an_unsupported_one_wait():
    for shapes in (_ABSENT, [None], [], "(None, 4)", [[None, 0, 4]], [[None, -1]], [["4"]], [[None, True]],
                   [[None, 4.0]], [[]], [[None] + [1] * 40], [[None, 10**9, 10**9]], {"0": [None, 3]}, [[[None]]]):
        a = analyse(_with_unsupported(shapes))
        assert a.nodes["swirl"].output_shape is None, shapes
        assert a.nodes["head"].blocked and a.nodes["head"].output_shape is None, shapes
        assert len(a.errors) == 1, shapes


def test_an_unsupported_layer_called_twice_takes_each_call_s_recorded_shape():
    d = _with_unsupported([[None, 4, 4, 6], [None, 2, 2, 6]], calls=2)
    d.add("Flatten", "flat2", inputs=[TensorRef("swirl", 1)])
    a = analyse(d)
    assert a.nodes["swirl"].output_shapes == [(None, 4, 4, 6), (None, 2, 2, 6)]
    assert a.nodes["flat2"].output_shape == (None, 24)


def test_an_unsupported_layer_behind_an_invalid_one_gives_nothing_and_without_a_reason_says_so():
    d = _with_unsupported([[None, 4, 4, 6]], reason=None)
    d.nodes["swirl"].inbound = [[TensorRef("missing")]]
    a = analyse(d)
    assert a.nodes["swirl"].output_shape is None and a.nodes["head"].blocked
    assert "Swirl is not a layer type Convas supports" in a.nodes["swirl"].errors[0].message


def test_the_summary_says_the_parameters_of_unsupported_layers_are_unknown():
    from engine.summary import summary_text
    d = _with_unsupported([[None, 4, 4, 6]])
    d.add("Swirl", "swirl_2", inputs=["head"], config={"unsupported": {"class_name": "Swirl", "reason": "custom"}})
    text = summary_text(d, analyse(d))
    assert " Total params: 388 (1.52 KB)\n + parameters of 2 unsupported layers, unknown\n" in text
    assert "\n + MACs of 2 unsupported layers, unknown\n" in text
    assert "unsupported" not in summary_text(seed(), analyse(seed()))
