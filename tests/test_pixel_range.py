"""The data's pixel range ([0, 1] or raw 0–255): a saved setting the datasets deliver, checked by
the analysis against the design's Rescaling and augmentation layers, with one-click fixes."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.analysis import Severity, analyse
from engine.data_source import load_dataset
from engine.datasets import Dataset, Split
from engine.design import Design, chain
from engine.editing import OnNode, apply_all, default_args, plan_fix, plan_place
from engine.errors import ConvasError
from engine.export.python_source import python_source
from engine.layers import Fix, FixAction
from engine.pixel_range import PixelRange, deliver, metadata, of_metadata, of_project, starting_args
from engine.project_file import load_project, save_project
from engine.training import TrainingConfig, TrainingSettings

UNIT, RAW = PixelRange.UNIT, PixelRange.RAW
INPUT = ("InputLayer", {"shape": (28, 28, 1)})
HEAD = (("Conv2D", {"filters": 8, "kernel_size": 3, "activation": "relu"}), ("Flatten", {}),
        ("Dense", {"units": 10, "activation": "softmax"}))


def design(*preprocessing: tuple[str, dict]) -> Design:
    """An input, the given preprocessing layers, then a small classifier."""
    return chain(INPUT, *preprocessing, *HEAD)


def warnings(d: Design, data: PixelRange | None) -> list:
    return [p for p in analyse(d, 1, input_range=data).warnings]


def only_warning(d: Design, data: PixelRange):
    found = warnings(d, data)
    assert len(found) == 1, found
    assert found[0].severity == Severity.WARNING
    return found[0]


def fixed(d: Design, node: str, fix: Fix) -> Design:
    apply_all(d, plan_fix(d, node, fix))
    return d


# ------------------------------------------------------------------ the range itself

def test_the_range_parses_from_its_texts_and_lists():
    for text in ("0-1", "0–1", "[0, 1]", (0, 1), [0.0, 1.0], UNIT):
        assert PixelRange.parse(text) is UNIT
    for text in ("0-255", " 0..255 ", "raw", (0, 255)):
        assert PixelRange.parse(text) is RAW
    for bad in ("0-2", None, 255, (0, 2), True):
        with pytest.raises(ValueError, match="0-1 or 0-255"):
            PixelRange.parse(bad)
    assert UNIT.value_range == (0.0, 1.0) and RAW.value_range == (0.0, 255.0)
    assert UNIT.other is RAW and RAW.other is UNIT


def test_training_settings_keep_the_range_and_old_settings_mean_0_1():
    settings = TrainingSettings("digits", TrainingConfig(epochs=3), RAW)
    saved = settings.to_dict()
    assert saved["pixel_range"] == "0-255"
    assert TrainingSettings.from_dict(json.loads(json.dumps(saved))) == settings
    old = {k: v for k, v in saved.items() if k != "pixel_range"}   # a file written before it existed
    assert TrainingSettings.from_dict(old).pixel_range is UNIT
    assert TrainingSettings().pixel_range is UNIT
    with pytest.raises(ConvasError, match="pixel range must be 0-1 or 0-255"):
        TrainingSettings.from_dict({**saved, "pixel_range": "0-100"})


def test_a_project_saves_and_reopens_its_range(tmp_path: Path):
    path = tmp_path / "raw.convas"
    settings = TrainingSettings("digits", TrainingConfig(), RAW)
    save_project(path, design(("Rescaling", {"scale": 1 / 255})), settings.to_dict())
    project = load_project(path)
    assert TrainingSettings.from_dict(project.training).pixel_range is RAW
    assert of_project({"training": project.training}) is RAW
    assert of_project(None) is UNIT and of_project({"training": {"dataset": "digits"}}) is UNIT


def test_convas_summary_checks_a_project_against_its_saved_range(tmp_path: Path, capsys):
    from engine.cli import main as cli
    from engine.data_source import recorded_pixel_range

    for pixel_range in (UNIT, RAW):
        path = tmp_path / f"{pixel_range.name}.convas"
        save_project(path, design(("Rescaling", {"scale": 1 / 255})),
                     TrainingSettings(pixel_range=pixel_range).to_dict())
        assert recorded_pixel_range(path) is pixel_range
        assert cli(["summary", str(path)]) == 0  # a warning does not make the design invalid
        err = capsys.readouterr().err
        assert ("rescaling: warning: rescales pixels that are already in [0, 1]" in err) is (pixel_range is UNIT)
    assert recorded_pixel_range(tmp_path / "model.json") is None


def test_the_shipped_examples_still_open_with_0_1():
    from engine.examples import example_path, load_example

    project = load_project(example_path("seed_cnn"))
    assert TrainingSettings.from_dict(project.training).pixel_range is UNIT
    assert not warnings(load_example("seed_cnn"), UNIT)


# ------------------------------------------------------------------ the datasets deliver it

def test_datasets_deliver_the_chosen_range():
    unit = load_dataset("digits", (28, 28, 1), 0.2, 0)
    raw = load_dataset("digits", (28, 28, 1), 0.2, 0, RAW)
    assert unit.pixel_range is UNIT and raw.pixel_range is RAW
    assert float(unit.train.images().max()) == 1.0 and float(raw.train.images().max()) == 255.0
    assert raw.train.images().dtype == np.float32
    assert raw.train.x is unit.train.x or np.array_equal(raw.train.x, unit.train.x)  # no copy, no scaling
    assert raw.train.pixel_scale == 255.0 and unit.train.pixel_scale == 1.0
    np.testing.assert_allclose(raw.train.images(), unit.train.images() * 255, rtol=1e-6)
    np.testing.assert_allclose(raw.validation.images(), unit.validation.images() * 255, rtol=1e-6)
    assert deliver(raw, RAW) is raw
    np.testing.assert_allclose(deliver(raw, UNIT).train.images(), unit.train.images(), rtol=1e-6)


def test_file_backed_splits_scale_as_they_decode(monkeypatch):
    import engine.datasets

    # A white image as the decoder gives it ([0, 1]), without TensorFlow.
    monkeypatch.setattr(engine.datasets, "decode_image_file", lambda path, shape: np.ones(shape, np.float32))
    split = Split.from_files(["white.png"], [0], (4, 4, 1))
    dataset = Dataset("files", ["a"], split)
    raw = deliver(dataset, RAW)
    assert raw.train.x is None and raw.train.pixel_scale == 255.0 and dataset.train.pixel_scale == 1.0
    assert float(raw.train.images([0]).max()) == pytest.approx(255.0)
    assert float(dataset.train.images([0]).max()) == pytest.approx(1.0)


# ------------------------------------------------------------------ rule 1: Rescaling on [0, 1] data

def test_rescaling_by_1_255_on_0_1_data_is_a_warning_whose_fix_removes_it():
    d = design(("Rescaling", {"scale": 1 / 255}))
    problem = only_warning(d, UNIT)
    assert problem.node == "rescaling"
    assert "already in [0, 1]" in problem.message and "[0, 0.003922]" in problem.message
    remove, switch = problem.fixes
    assert remove.action == FixAction.REMOVE_LAYER
    assert switch.action == FixAction.SET_PIXEL_RANGE and switch.value is RAW
    fixed(d, "rescaling", remove)
    assert "rescaling" not in d.nodes and analyse(d).valid
    assert d.nodes["conv2d"].inputs[0].node == "input_layer"
    assert not warnings(d, UNIT)


def test_the_same_rescaling_fits_raw_data_and_nothing_is_said_without_a_known_range():
    d = design(("Rescaling", {"scale": 1 / 255}))
    assert not warnings(d, RAW)
    assert not warnings(d, None)
    assert not analyse(d).warnings  # the analysis without a range is as before


def test_rescaling_to_minus_1_1_gets_its_scale_adjusted():
    d = design(("Rescaling", {"scale": 1 / 127.5, "offset": -1.0}))
    problem = only_warning(d, UNIT)
    assert "[-1, 1]" in problem.message
    adjust = problem.fixes[0]
    assert adjust.action == FixAction.SET_ARG and adjust.arg == "scale" and adjust.value == 2.0
    fixed(d, "rescaling", adjust)
    assert not warnings(d, UNIT)


def test_a_plain_rescaling_is_not_questioned():
    assert not warnings(design(("Rescaling", {"scale": 2.0, "offset": -1.0})), UNIT)


def test_switching_the_data_is_not_a_design_edit():
    d = design(("Rescaling", {"scale": 1 / 255}))
    switch = only_warning(d, UNIT).fixes[-1]
    with pytest.raises(ValueError, match="training data's pixel range"):
        plan_fix(d, "rescaling", switch)
    assert not warnings(d, PixelRange.parse(switch.value))


# ------------------------------------------------------------------ rule 2: value_range

@pytest.mark.parametrize("kind", ["RandomBrightness", "RandomContrast"])
def test_an_augmentation_for_0_255_on_0_1_data_gets_its_value_range_set(kind):
    d = design((kind, {"factor": 0.2}))   # Keras's default value_range=(0, 255)
    problem = only_warning(d, UNIT)
    assert "value_range=[0, 255]" in problem.message and "[0, 1]" in problem.message
    set_range, switch = problem.fixes
    assert set_range.action == FixAction.SET_ARG and set_range.value == (0.0, 1.0)
    assert switch.value is RAW
    node = d.nodes[next(n for n in d.nodes if d.nodes[n].kind == kind)].name
    fixed(d, node, set_range)
    assert d.nodes[node].args["value_range"] == (0.0, 1.0)
    assert not warnings(d, UNIT)


def test_random_brightness_says_how_far_it_pushes_the_pixels():
    problem = only_warning(design(("RandomBrightness", {"factor": 0.2})), UNIT)
    assert "±51" in problem.message


def test_value_range_follows_the_rescaling_before_it():
    # Raw data rescaled to [0, 1] first: the augmentation after it must say (0, 1).
    d = design(("Rescaling", {"scale": 1 / 255}), ("RandomFlip", {}), ("RandomBrightness", {"factor": 0.2}))
    problem = only_warning(d, RAW)
    assert problem.node == "random_brightness"
    assert [f.action for f in problem.fixes] == [FixAction.SET_ARG]  # switching the data would not help
    fixed(d, "random_brightness", problem.fixes[0])
    assert not warnings(d, RAW)
    # Augmenting the raw pixels before rescaling them is right as Keras's defaults have it.
    assert not warnings(design(("RandomContrast", {"factor": 0.2}), ("Rescaling", {"scale": 1 / 255})), RAW)


# ------------------------------------------------------------------ rule 3: raw data unscaled

def test_raw_data_into_a_design_without_rescaling_gets_one_inserted():
    d = design(("RandomFlip", {}))
    problem = only_warning(d, RAW)
    assert problem.node == "conv2d" and "raw pixels" in problem.message
    insert, switch = problem.fixes
    assert insert.action == FixAction.INSERT_BEFORE and insert.layer == "Rescaling"
    assert switch.value is UNIT
    fixed(d, "conv2d", insert)
    rescaling = next(n for n in d if n.kind == "Rescaling")
    assert rescaling.args["scale"] == pytest.approx(1 / 255)
    assert not warnings(d, RAW) and not warnings(design(), UNIT)


def test_a_normalising_layer_takes_care_of_raw_data():
    assert not warnings(design(("BatchNormalization", {})), RAW)


# ------------------------------------------------------------------ the palette fits the data

def test_new_layers_start_with_arguments_that_fit_the_data():
    assert starting_args("Rescaling", UNIT) == {"scale": 1.0}
    assert starting_args("Rescaling", RAW) == {"scale": 1 / 255}
    assert starting_args("RandomBrightness", UNIT)["value_range"] == (0.0, 1.0)
    assert starting_args("RandomContrast", RAW)["value_range"] == (0.0, 255.0)
    assert starting_args("Conv2D", UNIT) == {} and starting_args("Nope", UNIT) == {}
    assert default_args("Rescaling")["scale"] == pytest.approx(1 / 255)  # no range known: Keras's
    for data in (UNIT, RAW):
        for kind in ("Rescaling", "RandomBrightness", "RandomContrast"):
            d = design()
            plan = plan_place(d, kind, OnNode("input_layer"), input_range=data)
            apply_all(d, plan.ops)
            assert not [w for w in warnings(d, data) if w.node == plan.name], (kind, data)


# ------------------------------------------------------------------ exports record it

def test_exports_record_the_input_range():
    assert metadata(UNIT) == {"input_range": [0, 1]} and metadata(RAW) == {"input_range": [0, 255]}
    assert of_metadata(metadata(RAW)) is RAW and of_metadata({}) is None and of_metadata(None) is None
    assert of_metadata({"input_range": "nonsense"}) is None
    d = design(("Rescaling", {"scale": 1 / 255}))
    raw_script = python_source(d, input_range=RAW)
    assert "INPUT_RANGE = (0, 255)" in raw_script and "raw 0-255 pixel values" in raw_script
    unit_script = python_source(d)
    assert "INPUT_RANGE = (0, 1)" in unit_script and "[0, 1]" in unit_script
    namespace: dict = {}
    exec(compile(unit_script.split("def build_model")[0], "script", "exec"), namespace)
    assert namespace["INPUT_RANGE"] == (0, 1)


# ------------------------------------------------------------------ the whole story, trained

def _tutorial() -> Design:
    """A design as the Keras tutorials write it: Rescaling(1/255) first, then a small CNN."""
    return chain(("InputLayer", {"shape": (28, 28, 1)}), ("Rescaling", {"scale": 1 / 255}),
                 ("Conv2D", {"filters": 16, "kernel_size": 3, "activation": "relu"}), ("MaxPooling2D", {}),
                 ("Conv2D", {"filters": 32, "kernel_size": 3, "activation": "relu"}), ("MaxPooling2D", {}),
                 ("Flatten", {}), ("Dense", {"units": 10, "activation": "softmax"}), name="tutorial")


def _best_val_accuracy(d: Design, data: PixelRange, epochs: int) -> float:
    from engine.training import train

    dataset = load_dataset("digits", (28, 28, 1), 0.2, 0, data)
    result = train(d, dataset.train, dataset.validation, TrainingConfig(epochs=epochs, seed=0))
    return max(result.history["val_accuracy"])


EPOCHS = 4


@pytest.mark.slow
def test_the_tutorial_design_on_0_1_digits_is_warned_fixed_and_learns():
    broken = _tutorial()
    problem = only_warning(broken, UNIT)
    assert problem.node == "rescaling"
    broken_accuracy = _best_val_accuracy(broken, UNIT, EPOCHS)

    repaired = fixed(_tutorial(), "rescaling", problem.fixes[0])  # through plan_fix: remove it
    assert not warnings(repaired, UNIT)
    repaired_accuracy = _best_val_accuracy(repaired, UNIT, EPOCHS)

    # The other fix: keep the design, deliver raw 0–255 pixels as the tutorial assumes.
    switched = PixelRange.parse(problem.fixes[-1].value)
    assert not warnings(_tutorial(), switched)
    switched_accuracy = _best_val_accuracy(_tutorial(), switched, EPOCHS)

    print(f"val_accuracy after {EPOCHS} epochs: broken {broken_accuracy:.3f}, rescaling removed "
          f"{repaired_accuracy:.3f}, data switched to 0-255 {switched_accuracy:.3f}")
    assert repaired_accuracy >= 0.85 and switched_accuracy >= 0.85
    assert repaired_accuracy >= broken_accuracy + 0.2
    assert switched_accuracy >= broken_accuracy + 0.2


@pytest.mark.slow
def test_convas_train_takes_the_pixel_range_and_records_it(tmp_path: Path):
    from engine.cli import main as cli

    source = tmp_path / "tutorial.convas"
    save_project(source, _tutorial(), TrainingSettings().to_dict())
    out = tmp_path / "model.keras"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli(["train", str(source), "--epochs", "1", "--pixel-range", "0-255", "--out", str(out)])
    assert code == 0, stderr.getvalue()
    assert "; pixels in 0–255 (raw)" in stderr.getvalue()
    assert "warning" not in stderr.getvalue()
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("convas.json"))["input_range"] == [0, 255]

    # Without the flag the project's [0, 1] applies, and the analysis warns before training.
    stderr = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
        code = cli(["train", str(source), "--epochs", "1", "--out", str(out)])
    assert code == 0
    assert "convas: warning: rescaling: rescales pixels that are already in [0, 1]" in stderr.getvalue()
    assert "; pixels in [0, 1]" in stderr.getvalue()
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("convas.json"))["input_range"] == [0, 1]
