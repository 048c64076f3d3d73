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
import random
import re
from collections import Counter
from math import prod
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.analysis import analyse
from engine.design import Design, TensorRef
from engine.keras_build import KerasBuildError, build_keras_graph, build_keras_model
from engine.layers import ACTIVATIONS

# Keras warns about odd but legal designs (softmax over a size-1 axis, rms_scaling); they are the point here.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning:keras")]

EXAMPLES = int(os.environ.get("CONVAS_DIFF_EXAMPLES", "500"))
CF, CL = "channels_first", "channels_last"
MERGES = ("Add", "Concatenate", "Multiply", "Subtract", "Average", "Maximum", "Minimum")


# --- random designs -------------------------------------------------------------------------

class Builder:
    """Grows a design one random layer at a time, looking at the shapes Convas infers so that
    most layers get an input of a rank they accept (the sizes are left to chance)."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.design = Design(name="differential")
        self.tensors: list[TensorRef] = []

    def shape(self, ref: TensorRef) -> tuple | None:
        shapes = analyse(self.design).nodes[ref.node].output_shapes
        return shapes[ref.call] if ref.call < len(shapes) else None

    def add(self, kind: str, args: dict[str, Any], inputs: list[TensorRef]) -> None:
        node = self.design.add(kind, args=args, inputs=inputs)
        self.tensors.append(TensorRef(node.name, 0))

    def pick(self) -> TensorRef:
        # Mostly the newest tensor (a stack), sometimes an older one (a branch).
        if self.rnd.random() < 0.6:
            return self.tensors[-1]
        return self.rnd.choice(self.tensors)


def _fmt(r: random.Random) -> str:
    return CF if r.random() < 0.12 else CL


def _window(r: random.Random, rank: int, hi: int = 4) -> tuple[int, ...] | int:
    return r.randint(1, hi) if r.random() < 0.7 else tuple(r.randint(1, hi) for _ in range(rank))


def _conv_args(r: random.Random, rank: int, channels: int | None) -> dict[str, Any]:
    args: dict[str, Any] = {"filters": r.randint(1, 4), "kernel_size": _window(r, rank)}
    strided = r.random() < 0.4
    if strided:
        args["strides"] = _window(r, rank, 3)
    if r.random() < 0.3:
        args["dilation_rate"] = _window(r, rank, 3)
    args["padding"] = r.choice(["valid", "same", "causal"] if rank == 1 else ["valid", "same"])
    if r.random() < 0.15:
        groups = r.choice([2, 3, channels or 2])
        args["groups"] = groups
        args["filters"] = groups * r.randint(1, 2) if r.random() < 0.8 else r.randint(1, 5)
    if r.random() < 0.2:
        args["use_bias"] = False
    args["data_format"] = _fmt(r)
    return args


def _transpose_args(r: random.Random, rank: int) -> dict[str, Any]:
    args: dict[str, Any] = {"filters": r.randint(1, 3), "kernel_size": _window(r, rank),
                            "strides": _window(r, rank, 3), "padding": r.choice(["valid", "same"])}
    if r.random() < 0.4:
        args["output_padding"] = _window(r, rank, 3) if r.random() < 0.5 else r.randint(0, 2)
    if r.random() < 0.15:
        args["dilation_rate"] = r.randint(1, 2)
    if r.random() < 0.2:
        args["data_format"] = _fmt(r)
    return args


def _depthwise_args(r: random.Random, rank: int, separable: bool) -> dict[str, Any]:
    args: dict[str, Any] = {"kernel_size": _window(r, rank), "padding": r.choice(["valid", "same"]),
                            "depth_multiplier": r.randint(1, 2), "data_format": _fmt(r)}
    if separable:
        args["filters"] = r.randint(1, 4)
    if r.random() < 0.4:
        args["strides"] = _window(r, rank, 3)
    if r.random() < 0.3:
        args["dilation_rate"] = _window(r, rank, 2)
    return args


def _pool_args(r: random.Random, rank: int) -> dict[str, Any]:
    args: dict[str, Any] = {"pool_size": _window(r, rank), "padding": r.choice(["valid", "same"]),
                            "data_format": _fmt(r)}
    if r.random() < 0.4:
        args["strides"] = _window(r, rank, 3)
    return args


def _reshape_target(r: random.Random, shape: tuple | None) -> tuple:
    n = prod(d for d in shape[1:] if d is not None) if shape else r.randint(1, 12)
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    d = r.choice(divisors)
    return r.choice([
        (-1,), (n,), (d, -1), (-1, d), (d, n // d), (d, -1, 1), (1, d, n // d), (d, -1, 1, 1),
        (n + 1,), (d + 1, -1), (2, 2, -1),
    ])


def _feature_layer(b: Builder, r: random.Random, shape: tuple, ref: TensorRef) -> None:
    """Layers that accept any rank: dense, normalisation, activations, reshaping, regularisers."""
    rank = len(shape)
    choice = r.choice(["Dense", "BN", "LN", "act", "act", "Reshape", "Permute", "Flatten", "reg"])
    if choice == "Dense":
        args: dict[str, Any] = {"units": r.randint(1, 5)}
        if r.random() < 0.3:
            args["activation"] = r.choice(ACTIVATIONS)
        if r.random() < 0.2:
            args["use_bias"] = False
        b.add("Dense", args, [ref])
    elif choice == "BN":
        args = {"center": r.random() < 0.8, "scale": r.random() < 0.8, "renorm": r.random() < 0.1}
        if r.random() < 0.3:
            args["axis"] = r.choice([1, rank - 1, -2, rank, -rank])
        b.add("BatchNormalization", args, [ref])
    elif choice == "LN":
        args = {"center": r.random() < 0.8, "scale": r.random() < 0.8, "rms_scaling": r.random() < 0.1}
        if r.random() < 0.4:
            axes = r.sample(range(-rank, rank), min(rank, r.randint(1, 2)))
            args["axis"] = tuple(axes) if len(axes) > 1 else axes[0]
        b.add("LayerNormalization", args, [ref])
    elif choice == "act":
        kind = r.choice(["Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax"])
        if kind == "Activation":
            b.add(kind, {"activation": r.choice(ACTIVATIONS)}, [ref])
        elif kind == "PReLU":
            shared = tuple(a for a in range(1, rank) if r.random() < 0.5)
            b.add(kind, {"shared_axes": shared or None}, [ref])
        elif kind == "Softmax":
            b.add(kind, {"axis": r.choice([-1, 1, rank - 1, rank])}, [ref])
        elif kind == "ReLU":
            b.add(kind, {"max_value": r.choice([None, 6.0])}, [ref])
        else:
            b.add(kind, {}, [ref])
    elif choice == "Reshape":
        b.add("Reshape", {"target_shape": _reshape_target(r, shape)}, [ref])
    elif choice == "Permute":
        dims = list(range(1, rank))
        r.shuffle(dims)
        if r.random() < 0.1:
            dims = dims + [rank]
        b.add("Permute", {"dims": tuple(dims)}, [ref])
    elif choice == "Flatten":
        b.add("Flatten", {}, [ref])
    else:
        kind = r.choice(["Dropout", "GaussianNoise", "SpatialDropout2D"])
        if kind == "Dropout":
            b.add(kind, {"rate": r.choice([0.0, 0.3])}, [ref])
        elif kind == "GaussianNoise":
            b.add(kind, {"stddev": 0.1}, [ref])
        else:
            b.add(kind, {"rate": 0.2, "data_format": _fmt(r)}, [ref])


def _spatial_layer(b: Builder, r: random.Random, shape: tuple, ref: TensorRef) -> None:
    """Layers for (batch, *spatial, channels) tensors of spatial rank 1, 2 or 3."""
    rank = len(shape) - 2
    d = rank
    channels = shape[-1]
    family = r.choice(["conv", "conv", "transpose", "depthwise", "separable", "pool", "global", "resize"])
    if family == "depthwise" and rank == 3 or family == "separable" and rank == 3:
        family = "conv"
    if family == "resize" and rank != 2:
        family = "pool"
    if family == "conv":
        b.add(f"Conv{d}D", _conv_args(r, d, channels), [ref])
    elif family == "transpose":
        b.add(f"Conv{d}DTranspose", _transpose_args(r, d), [ref])
    elif family == "depthwise":
        b.add(f"DepthwiseConv{d}D", _depthwise_args(r, d, False), [ref])
    elif family == "separable":
        b.add(f"SeparableConv{d}D", _depthwise_args(r, d, True), [ref])
    elif family == "pool":
        b.add(f"{r.choice(['Max', 'Average'])}Pooling{d}D", _pool_args(r, d), [ref])
    elif family == "global":
        b.add(f"Global{r.choice(['Max', 'Average'])}Pooling{d}D",
              {"keepdims": r.random() < 0.3, "data_format": _fmt(r)}, [ref])
    else:
        kind = r.choice(["ZeroPadding2D", "Cropping2D", "UpSampling2D", "Resizing", "Rescaling"])
        if kind == "ZeroPadding2D":
            b.add(kind, {"padding": r.choice([1, (0, 2), ((1, 0), (0, 2))]), "data_format": _fmt(r)}, [ref])
        elif kind == "Cropping2D":
            b.add(kind, {"cropping": r.choice([1, (2, 0), ((0, 1), (3, 0)), 2]), "data_format": _fmt(r)}, [ref])
        elif kind == "Resizing":
            b.add(kind, {"height": r.randint(1, 6), "width": r.randint(1, 6),
                         "crop_to_aspect_ratio": r.random() < 0.2, "pad_to_aspect_ratio": r.random() < 0.2,
                         "data_format": _fmt(r)}, [ref])
        elif kind == "Rescaling":
            b.add(kind, {"scale": 1 / 255, "offset": r.choice([0.0, -1.0])}, [ref])
        else:
            b.add(kind, {"size": r.choice([2, (1, 3)]), "interpolation": r.choice(["nearest", "bilinear"]),
                         "data_format": _fmt(r)}, [ref])


def _merge(b: Builder, r: random.Random) -> None:
    kind = r.choice(MERGES)
    n = 2 if kind == "Subtract" else r.choice([2, 2, 3])
    refs = [b.tensors[-1]] + [r.choice(b.tensors) for _ in range(n - 1)]
    args: dict[str, Any] = {}
    if kind == "Concatenate" and r.random() < 0.3:
        shape = b.shape(refs[0])
        rank = len(shape) if shape else 3
        args["axis"] = r.choice([a for a in range(-rank + 1, rank) if a != 0])
    b.add(kind, args, refs)


def _share(b: Builder, r: random.Random) -> bool:
    """Apply an existing layer once more, to another tensor of the same rank (a shared layer).

    Same rank because Keras pins some layers' input rank when it builds them (BatchNormalization,
    pooling, ...), which Convas does not model yet: see test_shared_layer_keeps_its_input_rank.
    Same shape for LayerNormalization and PReLU, which Keras does not pin at all: it lets their
    weights, sized by the first call, broadcast over another call's different sizes, which Convas
    refuses on purpose (a shared layer has one set of weights).
    """
    candidates = [n for n in b.design if n.kind not in ("InputLayer", *MERGES)]
    if not candidates:
        return False
    node = r.choice(candidates)
    first = b.shape(node.inbound[0][0])
    exact = node.kind in ("LayerNormalization", "PReLU")
    sources = [t for t in b.tensors if first is not None and (s := b.shape(t)) is not None
               and (s == first if exact else len(s) == len(first))]
    if not sources:
        return False
    b.design.connect(r.choice(sources), node.name, call=node.calls)
    b.tensors.append(TensorRef(node.name, node.calls - 1))
    return True


@st.composite
def designs(draw: Any) -> Design:
    # A Random seeded by Hypothesis: its draws are far more even than Hypothesis's own, which
    # favour "simple" values and would make every rare branch common (derandomize keeps the
    # seeds, so the designs, the same from run to run).
    r = draw(st.randoms(use_true_random=True))
    b = Builder(r)
    for _ in range(2 if r.random() < 0.2 else 1):
        kind = r.choice(["seq", "image", "image", "flat", "volume"] if r.random() < 0.9 else ["image"])
        shape = {
            "seq": lambda: (r.randint(1, 12), r.randint(1, 4)),
            "image": lambda: (r.randint(1, 9), r.randint(1, 9), r.randint(1, 4)),
            "flat": lambda: (r.randint(1, 12),),
            "volume": lambda: (r.randint(1, 5), r.randint(1, 5), r.randint(1, 5), r.randint(1, 3)),
        }[kind]()
        b.add("InputLayer", {"shape": shape}, [])
    for _ in range(r.randint(1, 7)):
        roll = r.random()
        if roll < 0.15 and len(b.tensors) > 1:
            _merge(b, r)
            continue
        if roll < 0.22 and _share(b, r):
            continue
        ref = b.pick()
        shape = b.shape(ref) or (None,) + (4,) * r.randint(1, 4)
        if 3 <= len(shape) <= 5 and r.random() < 0.65:
            _spatial_layer(b, r, shape, ref)
        else:
            _feature_layer(b, r, shape, ref)
    return b.design


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
    except Exception as exc:
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
