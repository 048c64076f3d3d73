"""Exports: each format written, reloaded the way its users load it and compared with the model
in memory; failures leave no file behind; the CLI says what happened."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from engine.embedded_design import read_metadata
from engine.examples import example_names, load_example, seed_design
from engine.export import formats
from engine.export.formats import FORMATS
from engine.export.run import (FLOAT_TOLERANCE, QUANTIZED_TOLERANCE, Comparison, ExportError, ExportOptions,
                               Tolerance, compare_outputs, export_model, tolerance_for)
from engine.project_file import design_from_dict
from engine.weights import WeightsSource, design_hash

SUFFIX = {"keras": ".keras", "savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}


@pytest.mark.slow
@pytest.mark.parametrize("name", example_names())
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_example_exports_and_verifies(tmp_path: Path, name: str, fmt: str) -> None:
    out = tmp_path / f"{name}{SUFFIX[fmt]}"
    result = export_model(load_example(name), out, ExportOptions(fmt))
    assert out.exists() and result.path == out and result.size_bytes > 0
    assert result.comparison is not None and result.comparison.ok
    assert result.comparison.tolerance == FLOAT_TOLERANCE
    assert result.summary().startswith("Verified ") and "fresh, untrained weights" in result.summary()
    assert FLOAT_TOLERANCE.describe() in result.summary()
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


@pytest.mark.slow
@pytest.mark.parametrize("quantize", ["dynamic", "float16"])
def test_quantized_tflite_is_smaller_and_close(tmp_path: Path, quantize: str) -> None:
    design = seed_design()
    plain = export_model(design, tmp_path / "plain.tflite", ExportOptions("tflite"))
    small = export_model(design, tmp_path / f"{quantize}.tflite", ExportOptions("tflite", quantize))
    assert small.size_bytes < 0.75 * plain.size_bytes
    assert small.comparison is not None and small.comparison.ok and small.max_abs_diff > 0
    rule = small.comparison.tolerance
    assert rule == QUANTIZED_TOLERANCE[quantize] == tolerance_for(ExportOptions("tflite", quantize))
    assert rule.rtol > FLOAT_TOLERANCE.rtol  # its own, looser rule


@pytest.mark.slow
def test_onnx_input_and_output_are_named_after_the_design(tmp_path: Path) -> None:
    import onnxruntime

    design = seed_design()
    design.rename(design.input_names()[0], "digit_image")  # ("digit image" is a design problem)
    out = tmp_path / "m.onnx"
    export_model(design, out, ExportOptions("onnx"))
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["digit_image"]
    assert session.get_inputs()[0].shape[1:] == [28, 28, 1]
    assert [o.name for o in session.get_outputs()] == [design.output_refs()[0].node]
    x = np.zeros((3, 28, 28, 1), np.float32)   # any batch size
    assert session.run(None, {"digit_image": x})[0].shape == (3, 10)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_normalization_constants_are_part_of_every_export(tmp_path: Path, fmt: str) -> None:
    """Normalization keeps its mean and variance as constant tensors; a graph export must embed
    them (ONNX used to turn them into extra inputs the user would have to feed)."""
    from engine.design import Design

    design = Design(name="normalised")
    design.add("InputLayer", "image", {"shape": (8, 8, 3)})
    design.add("Normalization", "given", {"axis": -1, "mean": (0.5, 0.2, 0.1), "variance": (2.0, 3.0, 4.0)},
               inputs=["image"])
    design.add("Normalization", "learned", {"axis": -1}, inputs=["given"])
    design.add("Conv2D", "conv", {"filters": 2, "kernel_size": 3}, inputs=["learned"])
    out = tmp_path / f"m{SUFFIX[fmt]}"
    result = export_model(design, out, ExportOptions(fmt))
    assert result.comparison is not None and result.comparison.ok
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["image"]


@pytest.mark.slow
def test_keras_export_carries_the_design(tmp_path: Path) -> None:
    from engine.files import load_design

    design = load_example("resnet_block")
    out = tmp_path / "m.keras"
    export_model(design, out, ExportOptions("keras"))
    meta = read_metadata(out)
    assert meta is not None and meta["design_sha256"] == design_hash(design)
    assert meta["app_version"]
    restored = design_from_dict(meta["project"]["design"])
    assert design_hash(restored) == design_hash(design)
    # The Keras config alone gives the same layers and wiring (in Keras's order) ...
    from engine.keras_import import load_keras_design
    imported = load_keras_design(out)
    assert {n.name: (n.kind, n.inbound) for n in imported} == {n.name: (n.kind, n.inbound) for n in design}
    # ... and importing restores the design itself: its order, layout and arguments as set.
    restored = load_design(out)
    assert design_hash(restored) == design_hash(design)
    assert all(n.position is not None for n in design)
    assert [n.position for n in restored] == [n.position for n in design]


@pytest.mark.slow
def test_export_import_export_keeps_the_design(tmp_path: Path) -> None:
    from engine.files import load_design

    design = load_example("inception_module")
    first = tmp_path / "a.keras"
    export_model(design, first, ExportOptions("keras"))
    again = tmp_path / "b.keras"
    export_model(load_design(first), again, ExportOptions("keras"))
    wiring = [(n.name, n.kind, n.inbound) for n in load_design(again)]
    assert wiring == [(n.name, n.kind, n.inbound) for n in design]


@pytest.mark.slow
def test_savedmodel_replaces_an_existing_folder(tmp_path: Path) -> None:
    out = tmp_path / "saved"
    out.mkdir()
    (out / "old.txt").write_text("old")
    export_model(seed_design(), out, ExportOptions("savedmodel"))
    assert (out / "saved_model.pb").exists() and not (out / "old.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]


@pytest.mark.slow
def test_a_full_disk_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m.tflite"
    out.write_bytes(b"previous export")

    def full(model, path, options):
        path.write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setitem(FORMATS, "tflite", FORMATS["tflite"].__class__(
        **{**FORMATS["tflite"].__dict__, "write": full}))
    with pytest.raises(ExportError, match="No space left on device.*free some disk space"):
        export_model(seed_design(), out, ExportOptions("tflite"))
    assert out.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"]


@pytest.mark.slow
def test_a_failed_verification_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(path, model):
        return lambda xs: [np.ones((len(xs[0]), 10), np.float32)]

    monkeypatch.setitem(FORMATS, "onnx", FORMATS["onnx"].__class__(
        **{**FORMATS["onnx"].__dict__, "reload": wrong}))
    with pytest.raises(ExportError, match=r"verification failed.*differs from the model: dense\[\d, \d\] is 1 where"):
        export_model(seed_design(), tmp_path / "m.onnx", ExportOptions("onnx"))
    assert list(tmp_path.iterdir()) == []


# --- the verification's tolerance ----------------------------------------------------------

def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _untrained_1000_class_outputs() -> np.ndarray:
    """What an untrained 1,000-class classifier outputs: probabilities of ~1e-3 each."""
    return _softmax(np.random.default_rng(0).normal(0.0, 0.1, (8, 1000)))


def test_a_one_percent_error_on_small_outputs_fails() -> None:
    expected = _untrained_1000_class_outputs()
    got = expected.copy()
    got[3, 417] *= 1.01
    assert np.max(np.abs(got - expected)) < 1e-4  # what the absolute 1e-4 used to accept
    comparison = compare_outputs([got], [expected], FLOAT_TOLERANCE, ["predictions"])
    assert not comparison.ok
    assert (comparison.output, comparison.index) == ("predictions", (3, 417))
    assert comparison.value == pytest.approx(got[3, 417]) and comparison.expected == pytest.approx(expected[3, 417])
    assert comparison.allowed < comparison.worst_diff < 1e-4
    words = comparison.worst()
    assert words.startswith("predictions[3, 417] is ") and "where the model gives" in words and "allowed" in words
    # Every element 1 % off fails as well; a 0.05 % error (rtol 1e-3 halved) passes.
    assert not compare_outputs([expected * 1.01], [expected], FLOAT_TOLERANCE).ok
    assert compare_outputs([expected * 1.0005], [expected], FLOAT_TOLERANCE).ok


def test_float_rounding_noise_passes() -> None:
    """The same float32 network computed in another order (as another runtime does): logits of
    both signs, some near zero, and the softmax of them with probabilities down to 1e-30."""
    rng = np.random.default_rng(1)
    features = rng.normal(0.0, 1.0, (8, 2048)).astype(np.float32)
    kernel = rng.normal(0.0, 0.05, (2048, 1000)).astype(np.float32)
    logits = features @ kernel
    reordered = (features[:, ::-1] @ kernel[::-1]).astype(np.float32)  # other summation order
    assert np.max(np.abs(reordered - logits)) > 0  # there is noise
    assert compare_outputs([reordered], [logits], FLOAT_TOLERANCE).ok
    sharp = 30 * logits
    assert _softmax(sharp).min() < 1e-30
    assert compare_outputs([_softmax(30 * reordered)], [_softmax(sharp)], FLOAT_TOLERANCE).ok
    # a few float32 ulps on every element, whatever its size
    noisy = np.nextafter(np.nextafter(logits, np.inf), np.inf)
    assert compare_outputs([noisy], [logits], FLOAT_TOLERANCE).ok


def test_near_zero_elements_are_judged_against_their_output_scale() -> None:
    expected = np.array([[10.0, -7.5, 1e-6, 0.0]], np.float32)
    rounding = expected + np.float32(2e-5)        # 2e-6 of the output's scale (10)
    assert compare_outputs([rounding], [expected], FLOAT_TOLERANCE).ok
    off = expected.copy()
    off[0, 3] = 0.1                               # 1 % of the scale, where the model says 0
    comparison = compare_outputs([off], [expected], FLOAT_TOLERANCE)
    assert not comparison.ok and comparison.index == (0, 3)
    assert comparison.allowed == pytest.approx(FLOAT_TOLERANCE.atol * 10.0)


def test_an_output_of_zeros_must_be_reproduced() -> None:
    zeros = np.zeros((2, 3), np.float32)
    assert compare_outputs([zeros.copy()], [zeros], FLOAT_TOLERANCE).ok
    assert not compare_outputs([zeros + 1e-6], [zeros], FLOAT_TOLERANCE).ok


def test_nan_from_the_file_always_fails() -> None:
    expected = _untrained_1000_class_outputs()
    got = expected.copy()
    got[5, 2] = np.nan
    comparison = compare_outputs([got], [expected], Tolerance(rtol=1.0, atol=1.0))
    assert not comparison.ok and comparison.index == (5, 2) and np.isnan(comparison.max_abs_diff)


def test_the_worst_output_is_named() -> None:
    probabilities, boxes = _untrained_1000_class_outputs(), np.full((8, 4), 50.0, np.float32)
    off = boxes.copy()
    off[6, 1] += 0.5                            # 1 % of a large output
    comparison = compare_outputs([probabilities, off], [probabilities, boxes], FLOAT_TOLERANCE, ["label", "box"])
    assert not comparison.ok and (comparison.output, comparison.index) == ("box", (6, 1))
    assert comparison.max_abs_diff == pytest.approx(0.5)
    assert isinstance(comparison, Comparison)


def test_quantized_tflite_keeps_its_own_looser_rule() -> None:
    assert tolerance_for(ExportOptions("onnx")) == tolerance_for(ExportOptions("tflite")) == FLOAT_TOLERANCE
    expected = _untrained_1000_class_outputs()
    half_percent = expected * 1.005             # what float16 weights can do
    assert not compare_outputs([half_percent], [expected], FLOAT_TOLERANCE).ok
    assert compare_outputs([half_percent], [expected], tolerance_for(ExportOptions("tflite", "float16"))).ok
    three_percent = expected * 1.03             # what int8 (dynamic range) weights can do
    assert not compare_outputs([three_percent], [expected], QUANTIZED_TOLERANCE["float16"]).ok
    assert compare_outputs([three_percent], [expected], tolerance_for(ExportOptions("tflite", "dynamic"))).ok


@pytest.mark.slow
def test_a_real_export_one_percent_off_on_small_outputs_is_refused(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1,000-class classifier (outputs ~1e-3) exported to ONNX verifies; the same file read
    back 1 % off in one probability is refused, naming the element, and nothing is written."""
    from engine.design import Design

    design = Design(name="thousand")
    design.add("InputLayer", "image", {"shape": (8, 8, 3)})
    design.add("Conv2D", "conv", {"filters": 4, "kernel_size": 3}, inputs=["image"])
    design.add("GlobalAveragePooling2D", "pool", {}, inputs=["conv"])
    design.add("Dense", "classes", {"units": 1000, "activation": "softmax"}, inputs=["pool"])
    honest = export_model(design, tmp_path / "ok.onnx", ExportOptions("onnx"))
    assert honest.comparison is not None and honest.comparison.ok
    assert 1e-4 < honest.comparison.expected < 1e-2   # small outputs indeed
    real = FORMATS["onnx"].reload

    def one_percent_off(path, model):
        predict = real(path, model)

        def run(xs):
            outputs = predict(xs)
            outputs[0][2, 123] *= 1.01
            return outputs
        return run

    monkeypatch.setitem(FORMATS, "onnx", FORMATS["onnx"].__class__(
        **{**FORMATS["onnx"].__dict__, "reload": one_percent_off}))
    with pytest.raises(ExportError, match=r"differs from the model: classes\[2, 123\] is .* where the "
                                          r"model gives .* allowed .*\|Δ\| ≤ 1e-03·\|y\|.*nothing was written"):
        export_model(design, tmp_path / "off.onnx", ExportOptions("onnx"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.onnx"]


@pytest.mark.slow
def test_bad_destinations_are_explained(tmp_path: Path) -> None:
    design = seed_design()
    with pytest.raises(ExportError, match="folder .* does not exist"):
        export_model(design, tmp_path / "missing" / "m.keras", ExportOptions("keras"))
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(ExportError, match="it is a folder"):
        export_model(design, tmp_path / "dir.onnx", ExportOptions("onnx"))
    with pytest.raises(ExportError, match="TFLite only"):
        export_model(design, tmp_path / "m.onnx", ExportOptions("onnx", "float16"))


@pytest.mark.slow
def test_trained_weights_are_the_ones_exported(tmp_path: Path) -> None:
    import keras

    from engine.keras_build import build_keras_model

    design = seed_design()
    model = build_keras_model(design)
    dense = model.get_layer("dense")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, bias + 3.0])  # unmistakably not fresh weights
    out = tmp_path / "m.keras"
    weights = WeightsSource.trained(model, design, "trained on Digits for 2 epochs")
    result = export_model(design, out, ExportOptions("keras"), weights=weights)
    assert "trained weights (trained on Digits for 2 epochs)" in result.summary()
    loaded = keras.saving.load_model(out, compile=False)
    assert np.allclose(loaded.get_layer("dense").get_weights()[1], bias + 3.0)


# --- the command line ----------------------------------------------------------------------

@pytest.mark.slow
def test_cli_exports_a_project_and_a_keras_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main
    from engine.examples import example_path

    source = example_path("seed_cnn")
    assert main(["export", str(source), "--format", "keras", "--out", str(tmp_path / "a.keras")]) == 0
    assert capsys.readouterr().out.startswith("Verified ")
    code = main(["export", str(tmp_path / "a.keras"), "--format", "tflite", "--quantize", "float16",
                 "--out", str(tmp_path / "a.tflite")])
    out = capsys.readouterr()
    assert code == 0 and "LiteRT" in out.out and "weights of a.keras" in out.out
    code = main(["export", str(source), "--format", "onnx", "--weights", str(tmp_path / "a.keras"),
                 "--out", str(tmp_path / "b.onnx")])
    assert code == 0 and "weights of a.keras" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_failures_exit_non_zero_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main
    from engine.examples import example_path

    source = str(example_path("seed_cnn"))
    assert main(["export", source, "--format", "onnx", "--out", str(tmp_path / "no" / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert main(["export", source, "--format", "keras", "--quantize", "dynamic", "--out", "x.keras"]) == 2
    assert "tflite only" in capsys.readouterr().err
    other = tmp_path / "other.keras"
    assert main(["export", str(example_path("resnet_block")), "--format", "keras", "--out", str(other)]) == 0
    capsys.readouterr()
    # weights that do not fit the design are a bad input file (2), not a failed export (1)
    assert main(["export", source, "--format", "onnx", "--weights", str(other),
                 "--out", str(tmp_path / "m.onnx")]) == 2
    assert "has no layer named" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 truncated")
    assert main(["export", str(broken), "--format", "onnx", "--out", str(tmp_path / "n.onnx")]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.slow
def test_weights_come_from_an_imported_file_by_layer_name(tmp_path: Path) -> None:
    import keras

    from engine.keras_build import build_keras_model

    design = seed_design()
    model = build_keras_model(design)
    kernel, bias = model.get_layer("dense").get_weights()
    model.get_layer("dense").set_weights([kernel, bias - 2.0])
    source = tmp_path / "trained.keras"
    export_model(design, source, ExportOptions("keras"), model=model)
    out = tmp_path / "again.keras"
    result = export_model(design, out, ExportOptions("keras"), weights_file=source)
    assert "the weights of trained.keras" in result.summary()
    assert np.allclose(keras.saving.load_model(out, compile=False).get_layer("dense").get_weights()[1], bias - 2.0)
    design.rename("dense", "classifier")
    with pytest.raises(ExportError, match="no layer named 'classifier'"):
        export_model(design, tmp_path / "x.keras", ExportOptions("keras"), weights_file=source)
    assert not (tmp_path / "x.keras").exists()


@pytest.mark.slow
def test_python_export_is_verified_in_a_new_process_and_follows_the_training_settings(tmp_path: Path) -> None:
    """One new Python process (TensorFlow's import is most of the cost) checks both."""
    from engine.training import TrainingConfig

    out = tmp_path / "model.py"
    config = TrainingConfig(optimizer="sgd", learning_rate=0.0125, batch_size=64, epochs=3)
    result = export_model(load_example("resnet_block"), out, ExportOptions("python"), training=config)
    assert result.summary().startswith("Verified ") and "new Python process" in result.summary()
    text = out.read_text(encoding="utf-8")
    assert "def build_model():" in text
    assert "SGD" in text and "0.0125" in text and "batch_size=64" in text and "epochs=3" in text
    assert [p.name for p in tmp_path.iterdir()] == ["model.py"]


@pytest.mark.slow
def test_generated_designs_export_and_verify(tmp_path: Path) -> None:
    """Hypothesis-generated valid designs (tests/strategies.py) survive every
    binary format (Python: test_export_python.py); an export either verifies or says why, never
    a traceback or stray file."""
    from hypothesis import HealthCheck, given, settings

    from engine.analysis import analyse

    from strategies import designs

    seen: list[str] = []
    refused: list[str] = []

    # Draws until five valid designs have been exported (each costs four exports): most drawn
    # designs are invalid on purpose, and which are valid shifts as the catalogue grows.
    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(designs())
    def check(design) -> None:
        if len(seen) >= 5:
            return
        analysis = analyse(design)
        if not analysis.valid or analysis.warnings or not design.output_refs():
            return
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        written = []
        for fmt in ("keras", "savedmodel", "tflite", "onnx"):
            out = folder / (f"m{SUFFIX[fmt]}" if SUFFIX[fmt] else "saved")
            try:
                result = export_model(design, out, ExportOptions(fmt))
            except ExportError as exc:
                # TFLite lacks kernels TensorFlow has (3-D convolutions among them): a clear
                # refusal is the right answer, Keras and ONNX must still work.
                assert fmt == "tflite" and "TensorFlow Lite" in str(exc) and "loc(" not in str(exc), str(exc)
                refused.append(str(exc))
                continue
            assert result.comparison is not None and result.comparison.ok, (fmt, result.summary())
            written.append(out.name)
        assert sorted(p.name for p in folder.iterdir()) == sorted(written)
        seen.append(design.name)

    check()
    assert len(seen) >= 4, f"only {len(seen)} generated designs were valid"
    assert len(refused) < len(seen), refused


@pytest.mark.slow
def test_the_convas_entry_point_runs_export_headless(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import main as entry
    from engine.examples import example_path

    out = tmp_path / "m.keras"
    assert entry.main(["export", str(example_path("lenet5")), "--format", "keras", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("Verified ") and out.exists()


@pytest.mark.slow
def test_a_model_with_code_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    from engine.cli import main

    x = keras.Input((4,), name="x")
    model = keras.Model(x, keras.layers.Dense(2, name="after")(
        keras.layers.Lambda(lambda t: t * 2, name="times_two")(x)))
    source = tmp_path / "lambda.keras"
    model.save(source)
    assert main(["export", str(source), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "times_two" in err and "Lambda" in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()


HOSTILE = "evil'\"\n__import__('os').system('touch pwned') #"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_hostile_layer_names_are_refused_before_export(tmp_path: Path, fmt: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer name Keras or TensorFlow cannot use is a design problem with a rename fix (issue
    13): the export refuses it before anything runs or is written, and says what to rename to."""
    from engine.errors import ConvasError

    monkeypatch.chdir(tmp_path)
    design = seed_design()
    design.rename("dense", HOSTILE)
    design.rename(design.input_names()[0], "in put\"'")
    out = tmp_path / f"m{SUFFIX[fmt]}"
    with pytest.raises(ConvasError, match="rename it to in_put"):
        export_model(design, out, ExportOptions(fmt))
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing run ("pwned" absent)


@pytest.mark.slow
def test_stale_metadata_falls_back_to_the_keras_config(tmp_path: Path) -> None:
    import zipfile

    from engine.files import load_design

    design = seed_design()
    out = tmp_path / "m.keras"
    export_model(design, out, ExportOptions("keras"))
    meta = read_metadata(out)
    meta["project"]["design"]["nodes"][-1]["args"]["units"] = 7  # no longer this network
    stale = tmp_path / "stale.keras"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(stale, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == formats.METADATA_ENTRY:
                import json
                data = json.dumps(meta).encode()
            dst.writestr(item, data)
    imported = load_design(stale)
    assert {n.name for n in imported} == {n.name for n in design}
    assert design_hash(imported) != design_hash(design)  # read from the Keras config, not the metadata


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_a_python_keyword_as_input_name_exports(tmp_path: Path, fmt: str) -> None:
    """The input's name becomes a parameter of the traced function: ``in`` must not stop it."""
    design = seed_design()
    design.rename(design.input_names()[0], "in")
    design.rename("dense", "class")
    result = export_model(design, tmp_path / f"m{SUFFIX[fmt]}", ExportOptions(fmt))
    assert result.comparison is not None and result.comparison.ok
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["in"]
        assert [o.name for o in session.get_outputs()] == ["class"]


@pytest.mark.slow
def test_a_model_that_outputs_nan_is_refused_with_a_reason(tmp_path: Path) -> None:
    from engine.design import Design

    design = Design(name="nan")
    design.add("InputLayer", "x", {"shape": (4,)})
    design.add("Normalization", "norm", {"axis": -1, "mean": 0.0, "variance": -1.0}, inputs=["x"])
    with pytest.raises(ExportError, match="outputs NaN or infinite values.*negative Normalization variance"):
        export_model(design, tmp_path / "m.onnx", ExportOptions("onnx"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_tflite_converter_errors_name_the_operation_not_the_location() -> None:
    from engine.export.run import _export_failure_line

    raw = RuntimeError("loc(callsite(fused[\"MaxPool3D:\", "
                       "callsite(\"model/pool/MaxPool3D@__inference\"(\"/x.py\":1:1) "
                       "at fused[\"a\", \"b\"])])): error: 'tf.MaxPool3D' op is neither a custom op nor a flex op\n"
                       "more lines")
    line = _export_failure_line(raw)
    assert "loc(" not in line and "fused" not in line
    assert "'tf.MaxPool3D' op is neither a custom op nor a flex op" in line


@pytest.mark.slow
def test_tflite_refusal_is_announced_and_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A design with a layer TFLite cannot convert: the CLI warns before converting, and the
    failure names the layer and what to do instead of the converter's diagnostics."""
    from engine.cli import main
    from engine.design import Design
    from engine.project_file import save_project

    design = Design(name="volume")
    design.add("InputLayer", "scan", {"shape": (8, 8, 8, 1)})
    design.add("MaxPooling3D", "pool", {"pool_size": 2}, inputs=["scan"])
    source = tmp_path / "volume.convas"
    save_project(source, design)
    out = tmp_path / "v.tflite"
    assert main(["export", str(source), "--format", "tflite", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "warning: TensorFlow Lite is known to refuse this: Layer 'pool' (MaxPooling3D" in err
    assert "convas: TensorFlow Lite cannot convert this design: Layer 'pool'" in err
    assert "ONNX or SavedModel" in err and "loc(" not in err and not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "activation"), [
    ("Dense", "gelu"), ("Activation", "gelu"), ("Conv2D", "gelu"), ("Dense", "celu")])
def test_activations_tf2onnx_leaves_unconverted_export_to_onnx(tmp_path: Path, kind: str, activation: str) -> None:
    """Keras's exact GELU computes erfc, its CELU expm1; tf2onnx copies both operations into the
    file unconverted, and onnxruntime refused it as an invalid model. They are rewritten as
    standard ONNX operations (1 - Erf, Exp - 1), and the file computes what Keras does."""
    import onnx

    from engine.design import Design

    design = Design(name="act")
    if kind == "Conv2D":
        design.add("InputLayer", "x", {"shape": (6, 6, 2)})
        design.add("Conv2D", "layer", {"filters": 3, "kernel_size": 3, "activation": activation}, inputs=["x"])
    elif kind == "Dense":
        design.add("InputLayer", "x", {"shape": (4,)})
        design.add("Dense", "layer", {"units": 3, "activation": activation}, inputs=["x"])
    else:
        design.add("InputLayer", "x", {"shape": (4,)})
        design.add("Dense", "dense", {"units": 3}, inputs=["x"])
        design.add("Activation", "layer", {"activation": activation}, inputs=["dense"])
    out = tmp_path / "m.onnx"
    result = export_model(design, out, ExportOptions("onnx"))
    assert result.comparison is not None and result.comparison.ok
    ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert not ops & {"Erfc", "Expm1"} and ({"Erf"} if activation == "gelu" else {"Exp"}) <= ops
    onnx.checker.check_model(str(out), full_check=True)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "args", "shape"), [
    ("Conv2D", {"filters": 12, "kernel_size": 3, "groups": 3}, (8, 8, 6)),         # ResNeXt-style
    ("Conv2D", {"filters": 6, "kernel_size": 7, "padding": "same", "groups": 6}, (8, 8, 6)),  # ConvNeXt's
    ("Conv3D", {"filters": 4, "kernel_size": 3, "data_format": "channels_first"}, (2, 6, 6, 6))])
def test_convolutions_keras_compiles_with_xla_export_to_onnx(tmp_path: Path, kind: str, args: dict,
                                                             shape: tuple[int, ...]) -> None:
    """Keras runs grouped and channels-first 3-D convolutions in an XLA-compiled function, whose
    call tf2onnx used to copy into the file unconverted (onnxruntime: "invalid model"). The
    file now holds a standard ONNX Conv (with ``group``) that computes what Keras does, and
    Keras's own convolution is back in place afterwards."""
    import onnx
    from keras.src import backend as keras_backend

    from engine.design import Design

    before = keras_backend.nn.conv
    design = Design(name="conv")
    design.add("InputLayer", "x", {"shape": shape})
    design.add(kind, "conv", args, inputs=["x"])
    result = export_model(design, tmp_path / "m.onnx", ExportOptions("onnx"))
    assert result.comparison is not None and result.comparison.ok
    nodes = onnx.load(str(tmp_path / "m.onnx")).graph.node
    assert "StatefulPartitionedCall" not in {n.op_type for n in nodes}
    groups = [a.i for n in nodes if n.op_type == "Conv" for a in n.attribute if a.name == "group"]
    assert groups == [args.get("groups", 1)] or (groups == [] and "groups" not in args)
    assert keras_backend.nn.conv is before


@pytest.mark.slow
def test_every_activation_of_the_catalogue_exports_to_onnx(tmp_path: Path) -> None:
    """One Dense layer per activation name the designer offers, side by side in one design: the
    ONNX file loads in onnxruntime and computes what Keras does for every one of them."""
    from engine.design import Design
    from engine.layers import ACTIVATIONS

    design = Design(name="activations")
    design.add("InputLayer", "x", {"shape": (4,)})
    for activation in ACTIVATIONS:
        design.add("Dense", f"dense_{activation}", {"units": 3, "activation": activation}, inputs=["x"])
    result = export_model(design, tmp_path / "m.onnx", ExportOptions("onnx"))
    assert result.comparison is not None and result.comparison.ok


@pytest.mark.slow
def test_unconverted_tensorflow_operations_are_rewritten_as_onnx_ones() -> None:
    import math

    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    ops = ("Erfc", "Expm1", "Log1p")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], [op.lower()], name=op) for op in ops], "g", [x],
        [helper.make_tensor_value_info(op.lower(), TensorProto.FLOAT, [None, 4]) for op in ops])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", formats.ONNX_OPSET)])
    assert formats._rewrite_unconverted_ops(model)
    onnx.checker.check_model(model, full_check=True)
    assert not {node.op_type for node in model.graph.node} & set(ops)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    v = np.array([[-3.0, -0.5, 0.0, 1e-3], [0.5, 2.0, 4.0, 10.0]], np.float32)
    erfc, expm1, log1p = session.run(None, {"x": v})
    np.testing.assert_allclose(erfc, np.vectorize(math.erfc)(v), atol=1e-6)
    np.testing.assert_allclose(expm1, np.expm1(v), atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(log1p[v > -1], np.log1p(v[v > -1]), atol=1e-6)
    assert not formats._rewrite_unconverted_ops(model)  # nothing left to rewrite
