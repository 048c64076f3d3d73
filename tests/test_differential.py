"""Differential test: random designs analysed by Convas and built by real Keras must agree.

Hypothesis draws small stacks and graphs (convolutions of every flavour with random kernels,
strides, padding, dilation and groups; pooling; padding, cropping and up-sampling; flatten,
reshape and permute; dense; normalisation; activations; branches joined by merges; shared
layers) over tiny inputs, so that invalid designs come up often. Ground truth is Keras: a design
is valid when Keras builds every layer and the functional model, a forward pass on a batch of two
zero samples succeeds, and every tensor has the shape Keras declared. Then the validity must
agree, and for valid designs every output shape (of every call) and every trainable and
non-trainable parameter count. For invalid designs, Convas must mark as an error the first layer
Keras refuses or a layer above it.

TensorFlow's CPU kernels cannot run a few settings a GPU runs (channels_first convolutions,
dilated transposed convolutions); for those Convas must accept the design and warn.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from math import prod
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest
from hypothesis import HealthCheck, given, settings

from engine.analysis import analyse
from engine.design import Design, TensorRef
from engine.keras_build import KerasBuildError, build_keras_graph, build_keras_model

from strategies import designs

# Keras warns about odd but legal designs (softmax over a size-1 axis, rms_scaling); they are the point here.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning:keras")]

EXAMPLES = int(os.environ.get("CONVAS_DIFF_EXAMPLES", "500"))


# --- the comparison -------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def cpu_only_failure(exc: BaseException) -> bool:
    text = str(exc)
    return any(marker in text for marker in ("only supports NHWC", "NHWC tensor format",
                                             "only supports NDHWC", "support dilation rates larger than 1",
                                             "equal length strides"))


def weights_of(layer: Any) -> tuple[int, int]:
    return (sum(int(prod(w.shape)) for w in layer.trainable_weights),
            sum(int(prod(w.shape)) for w in layer.non_trainable_weights))


def upstream(design: Design, name: str) -> set[str]:
    """``name`` and every node feeding it, directly or not."""
    seen, todo = {name}, [name]
    while todo:
        for refs in design.nodes[todo.pop()].inbound:
            for ref in refs:
                if ref.node not in seen:
                    seen.add(ref.node)
                    todo.append(ref.node)
    return seen


def describe(design: Design) -> str:
    lines = []
    for node in design:
        calls = " | ".join(", ".join(map(str, refs)) for refs in node.inbound)
        lines.append(f"  {node.name} = {node.kind}({node.args}) <- {calls}")
    return "\n".join(lines)


def compare(keras: Any, design: Design) -> str:
    """Check one design; returns its verdict ("valid", "invalid", "cpu" or "empty") or fails."""
    import numpy as np

    analysis = analyse(design)
    error_nodes = {p.node for p in analysis.errors}
    context = f"\n{describe(design)}\n  convas errors: {[str(p) for p in analysis.errors]}"

    try:
        graph = build_keras_graph(design)
        graph.model(design.output_refs())
    except KerasBuildError as exc:
        assert not analysis.valid, f"Keras refuses the design, Convas accepts it: {exc}{context}"
        if exc.node is not None:
            # Keras checks some arguments only when run (e.g. Softmax's axis), so the layer it
            # refuses first may sit below the one Convas refuses.
            assert error_nodes & upstream(design, exc.node), \
                f"Keras refuses {exc.node} first ({exc}), Convas marks neither it nor a layer above{context}"
        return "invalid"

    refs = list(graph.tensors)
    probe = graph.model(refs)
    zeros = [np.zeros((2,) + tuple(t.shape[1:]), "float32") for t in graph.inputs]
    try:
        values = probe(zeros if len(zeros) > 1 else zeros[0], training=False)
    except Exception as exc:  # noqa: BLE001 (whatever running the model raises is a verdict)
        if cpu_only_failure(exc):
            assert any("on many CPUs it fails" in p.message for p in analysis.warnings), \
                f"TensorFlow's CPU cannot run it, Convas must warn about it{context}"
            if analysis.valid:
                assert_same_numbers(analysis, graph, context)
            # An invalid design is judged as far as Keras got without running it.
            return "cpu"
        message = _ANSI.sub("", str(exc)).strip().splitlines()
        assert not analysis.valid, f"Keras builds the model but running it fails: {message[:3]}{context}"
        return "invalid"

    declared = {ref: tuple(graph.tensors[ref].shape) for ref in refs}
    ran = {ref: tuple(v.shape) for ref, v in zip(refs, values if len(refs) > 1 else [values])}
    broken = [ref for ref in refs
              if len(declared[ref]) != len(ran[ref])
              or any(d is not None and d != n for d, n in zip(declared[ref][1:], ran[ref][1:]))
              or ran[ref][0] != 2]
    if broken:
        assert not analysis.valid, (f"Keras declares {[declared[r] for r in broken]} but produces "
                                    f"{[ran[r] for r in broken]}{context}")
        return "invalid"

    if any(0 in shape[1:] for shape in declared.values()):
        # Keras runs layers on empty tensors (e.g. a transposed convolution of a length-1 input
        # with an even 'same' kernel declares length 0); Convas may refuse such a design.
        return "empty"
    assert analysis.valid, f"Keras builds and runs it, Convas refuses it{context}"
    assert_same_numbers(analysis, graph, context)
    return "valid"


def assert_same_numbers(analysis: Any, graph: Any, context: str) -> None:
    """Every output shape of every call, and every layer's parameter counts, agree."""
    for ref, tensor in graph.tensors.items():
        ours = analysis.nodes[ref.node].output_shapes[ref.call]
        assert ours == tuple(tensor.shape), f"{ref}: Convas says {ours}, Keras {tuple(tensor.shape)}{context}"
    for name, layer in graph.layers.items():
        report = analysis.nodes[name]
        ours_w = (report.trainable_params, report.non_trainable_params)
        assert ours_w == weights_of(layer), f"{name}: Convas counts {ours_w}, Keras {weights_of(layer)}{context}"


@pytest.fixture(scope="module")
def keras() -> Any:
    import keras

    yield keras
    keras.backend.clear_session()


def test_random_designs_agree_with_keras(keras: Any) -> None:
    verdicts: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(designs())
    def check(design: Design) -> None:
        if sum(verdicts.values()) % 25 == 0:
            keras.backend.clear_session()
        verdicts[compare(keras, design)] += 1

    check()
    print(f"\ndifferential verdicts: {dict(verdicts)}")
    assert sum(verdicts.values()) >= EXAMPLES
    assert verdicts["valid"] >= EXAMPLES // 5 and verdicts["invalid"] >= EXAMPLES // 5, dict(verdicts)


def test_built_model_matches_design(keras: Any) -> None:
    """build_keras_model keeps names, shares weights of a shared layer, and refuses an invalid design."""
    from engine.errors import ConvasError

    design = Design(name="siamese")
    design.add("InputLayer", "left", {"shape": (6, 6, 1)})
    design.add("InputLayer", "right", {"shape": (6, 6, 1)})
    design.add("Conv2D", "tower", {"filters": 2, "kernel_size": 3}, inputs=["left"],
               config={"kernel_initializer": "zeros"})
    design.connect("right", "tower", call=1)
    design.add("Concatenate", "join", inputs=[TensorRef("tower", 0), TensorRef("tower", 1)])
    design.add("Flatten", "flat", inputs=["join"])
    design.add("Dense", "out", {"units": 3, "activation": "softmax"}, inputs=["flat"])
    model = build_keras_model(design)
    assert [layer.name for layer in model.layers] == ["left", "right", "tower", "join", "flat", "out"]
    assert [tuple(t.shape) for t in model.inputs] == [(None, 6, 6, 1), (None, 6, 6, 1)]
    assert tuple(model.output.shape) == (None, 3)
    assert model.count_params() == analyse(design).total_params == 2 * 9 + 2 + 4 * 4 * 4 * 3 + 3
    assert model.get_layer("tower").get_config()["kernel_initializer"]["class_name"] == "Zeros"

    design.set_arg("tower", "kernel_size", 7)
    with pytest.raises(ConvasError, match="tower"):
        build_keras_model(design)
    with pytest.raises(KerasBuildError) as raised:
        build_keras_model(design, check=False)
    assert raised.value.node == "tower"


def test_shared_layer_keeps_its_input_rank(keras: Any) -> None:
    """Keras pins BatchNormalization's input rank when it builds it, so a shared one cannot take
    a (None, 3) tensor and then a (None, 1, 3) one, although both give it 3 channels."""
    design = Design()
    design.add("InputLayer", "flat", {"shape": (3,)})
    design.add("InputLayer", "seq", {"shape": (1, 3)})
    design.add("BatchNormalization", "bn", inputs=["flat"])
    design.connect("seq", "bn", call=1)
    with pytest.raises(KerasBuildError):
        build_keras_model(design, check=False)
    assert not analyse(design).valid
