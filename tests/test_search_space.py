"""Search ranges, the search space of a project, its file format (version 5) and the sweep's
settings: the plain data a sweep starts from, checked without Optuna or TensorFlow."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest

from engine.design import Group
from engine.errors import ConvasError, FileFormatError
from engine.examples import load_example
from engine.project_file import (
    VERSION, design_to_dict, load_project, project_from_dict, project_to_dict, save_project,
)
from engine.search_range import MAX_CHOICES, RangeKind, SearchRange
from engine.search_space import (
    SearchSpace, SearchTarget, TargetKind, base_values, range_kinds, sample, search_space, space_problems,
)
from engine.sweep_settings import (
    Budget, CostKind, Objectives, PrunerKind, SamplerKind, SweepSettings, default_storage,
    metric_higher_is_better,
)
from engine.training import TrainingConfig, TrainingSettings


def seed():
    return load_example("seed_cnn")


def searched():
    """The seed CNN with ranges on filters, kernel size, a group's repeats and learning rate."""
    design = seed()
    design.set_search("conv2d", "filters", SearchRange.ints(16, 64, 16))
    design.set_search("conv2d_1", "kernel_size", SearchRange.among(3, 5))
    design.set_search("dense", "activation", SearchRange.among("softmax", "sigmoid"))
    design.set_group("block", Group("block", repeats=SearchRange.ints(1, 3)))
    design.set_node_group("conv2d_1", "block")
    design.set_node_group("max_pooling2d_1", "block")
    training = TrainingSettings(search={"learning_rate": SearchRange.floats(1e-4, 1e-2, log=True),
                                        "optimizer": SearchRange.among("adam", "sgd")})
    return design, training


# --- SearchRange ----------------------------------------------------------------------------------

@pytest.mark.parametrize("rng", [
    SearchRange.ints(16, 64, 16),
    SearchRange.ints(1, 1000, log=True),
    SearchRange.floats(1e-5, 1e-2, log=True),
    SearchRange.floats(0.0, 0.5, step=0.1),
    SearchRange.floats(0.1, 0.9),
    SearchRange.among(3, 5, 7),
    SearchRange.among("relu", "gelu", None, True, 0.5),
])
def test_ranges_round_trip_through_the_file(rng: SearchRange):
    data = rng.to_dict()
    assert SearchRange.from_dict(json.loads(json.dumps(data))) == rng


def test_an_int_range_without_a_step_reads_as_step_one():
    assert SearchRange.from_dict({"kind": "int", "low": 1, "high": 4}) == SearchRange.ints(1, 4)


@pytest.mark.parametrize(("data", "message"), [
    ({"kind": "choice", "choices": [3]}, "a list of choices needs at least two values"),
    ({"kind": "choice", "choices": list(range(MAX_CHOICES + 1))},
     f"a list of choices holds at most {MAX_CHOICES} values, not {MAX_CHOICES + 1}"),
    ({"kind": "choice", "choices": [1, [2]]}, "choices must be numbers, text, true/false or null"),
    ({"kind": "choice", "choices": [3, 3]}, "the choices repeat a value; list each once"),
    ({"kind": "int", "low": 1.5, "high": 4}, "the range's low and high must be whole numbers, not 1.5 and 4"),
    ({"kind": "float", "low": "a", "high": 1}, "the range's low and high must be numbers, not 'a' and 1.0"),
    ({"kind": "int", "low": 8, "high": 8}, "the range's low (8) must be below its high (8); for a fixed "
                                           "value, turn the range off"),
    ({"kind": "float", "low": 0, "high": 1, "log": True}, "a log-scale range must start above 0, not at 0"),
    ({"kind": "int", "low": 1, "high": 9, "step": 0}, "the step must be a positive whole number, not 0"),
    ({"kind": "float", "low": 0.1, "high": 1, "log": True, "step": 0.1},
     "a log-scale range cannot have a step; remove the step or the log scale"),
    ({"kind": "int", "low": 1, "high": 9, "step": 2, "log": True},
     "a log-scale range cannot have a step; remove the step or the log scale"),
    ({"kind": "int", "low": 1, "high": 3, "step": 5}, "the step (5) is larger than the range 1–3; use a smaller step"),
    ({"kind": "int", "low": 1, "high": 3, "step": None}, None),  # null step: read as 1
    ("3..5", "a search range must be an object, not '3..5'"),
    ({"kind": "range"}, "a search range's kind must be one of int, float, choice, not 'range'"),
    ({"kind": "int", "low": 1, "high": 3, "choices": [1]}, "unknown search-range entry for a int range: choices"),
    ({"kind": "choice", "choices": "ab"}, "a list of choices must be a list, not 'ab'"),
    ({"kind": "float", "low": 0.1, "high": 1, "log": "yes"}, "a search range's log must be true or false, not 'yes'"),
])
def test_bad_ranges_are_refused_with_a_sentence(data, message):
    if message is None:
        assert SearchRange.from_dict(data) == SearchRange.ints(1, 3)
        return
    with pytest.raises(ConvasError) as caught:
        SearchRange.from_dict(data)
    assert str(caught.value) == message


def test_an_int_range_built_directly_without_a_step_has_a_problem():
    assert SearchRange(RangeKind.INT, 1, 4).problem() == "a whole-number range needs a step (1 for every value)"
    with pytest.raises(ConvasError, match="at least two"):
        SearchRange.among("only")


def test_describe_values_and_contains():
    ints = SearchRange.ints(16, 64, 16)
    assert ints.describe() == "16–64 step 16"
    assert ints.values() == [16, 32, 48, 64]
    assert ints.contains(32) and not ints.contains(40) and not ints.contains(80)
    assert not ints.contains(32.0) and not ints.contains(True)
    logs = SearchRange.floats(1e-5, 1e-2, log=True)
    assert logs.describe() == "1e-05–0.01 log"
    assert logs.values() is None
    assert logs.contains(3e-4) and not logs.contains(0.5) and not logs.contains(float("nan"))
    grid = SearchRange.floats(0.0, 0.5, step=0.1)
    assert grid.describe() == "0–0.5 step 0.1" and len(grid.values() or []) == 6
    assert grid.contains(0.3) and not grid.contains(0.25)
    assert SearchRange.ints(1, 5).describe() == "1–5"
    choice = SearchRange.among(3, "same", None, True)
    assert choice.describe() == "3 | same | none | true"
    assert choice.values() == [3, "same", None, True]
    assert choice.contains(3) and choice.contains(None) and not choice.contains(3.0) and not choice.contains(1)
    assert SearchRange.ints(0, 100_000).values() is None  # too many to list


# --- targets and the space --------------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    SearchTarget(TargetKind.LAYER, "conv2d", "filters"),
    SearchTarget(TargetKind.LAYER, "odd:name", "kernel_size"),
    SearchTarget(TargetKind.GROUP, "block", "repeats"),
    SearchTarget(TargetKind.TRAINING, "", "learning_rate"),
])
def test_target_keys_parse_back(target: SearchTarget):
    assert SearchTarget.parse(target.key) == target


@pytest.mark.parametrize("key", ["nothing", "layer:conv2d", "model:a:b", "layer::filters"])
def test_keys_that_name_no_range_are_refused(key: str):
    with pytest.raises(ConvasError, match="names no search range"):
        SearchTarget.parse(key)


def test_the_space_gathers_ranges_in_order_with_labels():
    design, training = searched()
    space = search_space(design, training)
    assert space.keys() == ["layer:conv2d:filters", "layer:conv2d_1:kernel_size", "layer:dense:activation",
                            "group:block:repeats", "training:learning_rate", "training:optimizer"]
    assert [t.label for t, _ in space] == ["conv2d.filters", "conv2d_1.kernel_size", "dense.activation",
                                           "block repeats", "learning rate", "optimizer"]
    assert space.get("group:block:repeats") == SearchRange.ints(1, 3) and space.get("x") is None
    assert len(space) == 6 and bool(space) and not SearchSpace()
    assert json.loads(json.dumps(space.to_dict()))["layer:conv2d:filters"] == {
        "kind": "int", "low": 16, "high": 64, "step": 16}
    assert space_problems(design, training) == []


def test_range_kinds_follow_the_argument():
    design = seed()
    def kinds(owner: str, setting: str, kind: TargetKind = TargetKind.LAYER) -> tuple[RangeKind, ...]:
        return range_kinds(design, SearchTarget(kind, owner, setting))
    assert kinds("conv2d", "filters") == (RangeKind.INT, RangeKind.CHOICE)
    assert kinds("conv2d", "padding") == (RangeKind.CHOICE,)
    assert kinds("conv2d", "nonsense") == ()
    assert kinds("missing", "filters") == ()
    assert kinds("", "learning_rate", TargetKind.TRAINING) == (RangeKind.FLOAT, RangeKind.CHOICE)
    assert kinds("", "epochs", TargetKind.TRAINING) == ()
    assert kinds("nogroup", "repeats", TargetKind.GROUP) == ()


def test_space_problems_say_what_cannot_be_searched():
    design = seed()
    design.set_search("conv2d", "units", SearchRange.ints(8, 64, 8))          # Conv2D has no units
    design.set_search("conv2d_1", "filters", SearchRange.floats(8.0, 64.0))   # filters are whole
    design.set_search("dense", "units", SearchRange(RangeKind.INT, 8, 4, 1))  # a broken range
    design.set_group("empty", Group("empty", repeats=SearchRange.among(1, 2)))
    design.set_group("zero", Group("zero", repeats=SearchRange.among(0, 2)))
    training = TrainingSettings(search={"epochs": SearchRange.ints(1, 3)})
    assert space_problems(design, training) == [
        "conv2d.units cannot be searched; remove its range",
        "conv2d_1.filters takes a int or choice range, not a float one",
        "dense.units: the range's low (8) must be below its high (4); for a fixed value, turn the range off",
        "empty repeats: the group 'empty' holds no layers, so there is nothing to repeat; put layers in it",
        "zero repeats must be whole numbers of at least 1",
        "epochs cannot be searched; remove its range",
    ]


# --- sample and base values -------------------------------------------------------------------------

def test_sample_sets_the_values_and_keeps_the_inputs_untouched():
    design, training = searched()
    before, before_training = design_to_dict(design), copy.deepcopy(training)
    params = {"layer:conv2d:filters": 48, "layer:conv2d_1:kernel_size": 5, "layer:dense:activation": "sigmoid",
              "group:block:repeats": 1, "training:learning_rate": 0.0031, "training:optimizer": "sgd",
              "layer:gone:filters": 3}  # a key the project has no range for is ignored
    trial, trial_training = sample(design, training, params)
    assert trial.nodes["conv2d"].args["filters"] == 48
    assert trial.nodes["conv2d_1"].args["kernel_size"] == 5
    assert trial.nodes["dense"].args["activation"] == "sigmoid"
    assert trial_training.config.learning_rate == 0.0031 and trial_training.config.optimizer == "sgd"
    assert trial.nodes["conv2d"].search == design.nodes["conv2d"].search  # ranges stay
    assert trial_training.search == training.search and trial_training.search is not training.search
    assert design_to_dict(design) == before and training == before_training


def test_sample_refuses_a_value_out_of_its_range():
    design, training = searched()
    with pytest.raises(ConvasError) as caught:
        sample(design, training, {"layer:conv2d:filters": 40})
    assert str(caught.value) == "conv2d.filters = 40 is not a value of its range 16–64 step 16"
    with pytest.raises(ConvasError, match="optimizer = 'rmsprop' is not a value"):
        sample(design, training, {"training:optimizer": "rmsprop"})


def test_base_values_are_what_the_project_uses_now():
    design, training = searched()
    design.set_arg("conv2d_1", "kernel_size", (3, 3))
    design.unset_arg("dense", "activation")
    assert base_values(design, training) == {
        "layer:conv2d:filters": design.nodes["conv2d"].args["filters"],
        "layer:conv2d_1:kernel_size": 3,  # a square kernel is the one number a range samples
        "layer:dense:activation": "linear",  # the catalogue's default
        "group:block:repeats": 1,
        "training:learning_rate": training.config.learning_rate,
        "training:optimizer": "adam",
    }


# --- the project file, version 5 ---------------------------------------------------------------------

def test_version_5_round_trips_ranges_repeats_training_search_and_sweep(tmp_path: Path):
    design, training = searched()
    sweep = SweepSettings(Objectives("val_accuracy", CostKind.PARAMS), SamplerKind.NSGA2, PrunerKind.HYPERBAND,
                          trials=12, timeout_s=60.0, epochs=2, budget=Budget(max_params=50_000),
                          study="s1", storage="sqlite:///x.db", seed=4)
    path = tmp_path / "p.convas"
    save_project(path, design, training.to_dict(), sweep=sweep.to_dict())
    doc = json.loads(path.read_text())
    assert doc["version"] == VERSION == 5
    node = next(n for n in doc["design"]["nodes"] if n["name"] == "conv2d")
    assert node["search"] == {"filters": {"kind": "int", "low": 16, "high": 64, "step": 16}}
    assert "search" not in next(n for n in doc["design"]["nodes"] if n["name"] == "flatten")
    assert doc["design"]["groups"][0]["repeats"] == {"kind": "int", "low": 1, "high": 3, "step": 1}
    assert doc["training"]["search"]["learning_rate"] == {"kind": "float", "low": 1e-4, "high": 1e-2, "log": True}

    project = load_project(path)
    assert design_to_dict(project.design) == design_to_dict(design)
    assert project.design.groups["block"].repeats == SearchRange.ints(1, 3)
    assert TrainingSettings.from_dict(project.training).search == training.search
    assert SweepSettings.from_dict(project.sweep) == sweep


def test_a_project_without_ranges_writes_none():
    doc = project_to_dict(seed(), TrainingSettings().to_dict())
    assert "sweep" not in doc and "search" not in doc["training"]
    assert not any("search" in n for n in doc["design"]["nodes"])


def test_a_version_4_file_upgrades_with_no_ranges():
    design, training = searched()
    doc = json.loads(json.dumps(project_to_dict(design, training.to_dict(), sweep=SweepSettings().to_dict())))
    doc["version"] = 4  # a version-4 file had no such entries: whatever is there meant nothing
    project = project_from_dict(doc)
    assert search_space(project.design, TrainingSettings.from_dict(project.training)).keys() == []
    assert project.sweep is None
    assert project.design.groups["block"].repeats is None
    assert list(project.design.nodes) == list(design.nodes)


@pytest.mark.parametrize(("where", "bad", "message"), [
    ("node", {"kind": "int", "low": 64, "high": 16, "step": 1},
     "design.nodes[1] ('conv2d').search.filters: the range's low (64) must be below its high (16)"),
    ("node", "16..64", "design.nodes[1] ('conv2d').search.filters: a search range must be an object"),
    ("group", {"kind": "float", "low": 1.0, "high": 3.0},
     "design.groups[0] ('block').repeats must be whole numbers of at least 1"),
    ("group", {"kind": "int", "low": 0, "high": 3, "step": 1},
     "design.groups[0] ('block').repeats must be whole numbers of at least 1"),
])
def test_a_damaged_range_names_the_layer_and_argument(where: str, bad, message: str):
    design, training = searched()
    doc = json.loads(json.dumps(project_to_dict(design, training.to_dict())))
    if where == "node":
        doc["design"]["nodes"][1]["search"]["filters"] = bad
    else:
        doc["design"]["groups"][0]["repeats"] = bad
    with pytest.raises(FileFormatError) as caught:
        project_from_dict(doc)
    assert str(caught.value).startswith(message)


def test_a_damaged_training_range_names_the_setting():
    with pytest.raises(ConvasError, match="the search range of learning_rate: a log-scale range must start above 0"):
        TrainingSettings.from_dict({"search": {"learning_rate": {"kind": "float", "low": 0, "high": 1, "log": True}}})
    with pytest.raises(ConvasError, match="a sweep cannot search the training setting 'epochs'"):
        TrainingSettings.from_dict({"search": {"epochs": {"kind": "int", "low": 1, "high": 3}}})
    with pytest.raises(ConvasError, match="the search range of optimizer must be choice, not int"):
        TrainingSettings.from_dict({"search": {"optimizer": {"kind": "int", "low": 1, "high": 3}}})


# --- sweep settings --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("val_accuracy,macs", Objectives("val_accuracy", CostKind.MACS)),
    ("val_accuracy", Objectives("val_accuracy", None)),
    ("params", Objectives(None, CostKind.PARAMS)),
    (" metric , LATENCY ", Objectives(None, CostKind.LATENCY)),
    ("macs,val_loss", Objectives("val_loss", CostKind.MACS)),
])
def test_objectives_parse(text: str, expected: Objectives):
    assert Objectives.parse(text) == expected
    assert Objectives.parse(expected.text()) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "--objectives takes a validation metric and at most one cost"),
    ("val_accuracy,macs,params", "--objectives takes a validation metric and at most one cost"),
    ("macs,params", "--objectives takes one cost"),
    ("val_accuracy,val_loss", "--objectives takes one validation metric, not two"),
    ("accuracy", "unknown objective 'accuracy'"),
])
def test_bad_objectives_are_refused(text: str, message: str):
    with pytest.raises(ConvasError, match=message):
        Objectives.parse(text)


def test_metric_direction():
    assert metric_higher_is_better("val_accuracy") and metric_higher_is_better("val_r2")
    assert not metric_higher_is_better("val_loss") and not metric_higher_is_better("val_mae")


def test_sweep_settings_round_trip_and_defaults():
    assert SweepSettings.from_dict(None) == SweepSettings()
    settings = SweepSettings(trials=3, epochs=None, seed=0)
    assert SweepSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    assert SweepSettings.from_dict({"trials": 7}).trials == 7


@pytest.mark.parametrize(("data", "message"), [
    ([1], "the sweep settings must be a mapping, not list"),
    ({"trails": 3}, "unknown sweep setting(s): trails"),
    ({"metric": "accuracy"}, "the sweep's metric must be a validation metric such as val_accuracy"),
    ({"cost": "flops"}, "the sweep's cost must be one of params, macs, latency, not 'flops'"),
    ({"sampler": "grid"}, "the sweep's sampler must be one of tpe, nsga2, random, not 'grid'"),
    ({"pruner": "early"}, "the sweep's pruner must be one of none, median, hyperband, not 'early'"),
    ({"trials": 0}, "a sweep needs at least 1 trial, not 0"),
    ({"trials": 2.5}, "a sweep needs at least 1 trial, not 2.5"),
    ({"timeout_s": -1}, "the sweep's timeout must be a positive number of seconds, not -1"),
    ({"epochs": 0}, "a sweep trains each trial for at least 1 epoch, not 0"),
    ({"max_macs": 0}, "the budget's maximum MACs must be a whole number of at least 1, not 0"),
    ({"study": " "}, "the study name must be text"),
    ({"storage": "sweep.db"}, "the storage must be a database URL such as sqlite:///sweep.db"),
    ({"seed": -3}, "the sweep's seed must be a whole number (0 or more), not -3"),
])
def test_bad_sweep_settings_are_refused(data, message: str):
    with pytest.raises(ConvasError) as caught:
        SweepSettings.from_dict(data)
    assert str(caught.value).startswith(message)
    settings, why = SweepSettings.from_saved(data)
    assert settings == SweepSettings() and why == str(caught.value)


def test_budget_and_default_storage(tmp_path: Path):
    budget = Budget(max_params=1000, max_macs=None, max_activation_bytes=10)
    assert budget.exceeded(999, 10**9, 10) is None
    assert budget.exceeded(1500, 0, 11) == ("over budget: 1,500 parameters (budget 1,000); "
                                            "11 bytes of activations (budget 10)")
    assert Budget().empty and not budget.empty
    url = default_storage(tmp_path / "net.convas")
    assert url == "sqlite:///" + (tmp_path / "net.sweep.db").resolve().as_posix()


def test_training_values_sampled_are_validated():
    design, training = searched()
    training = replace(training, search={"batch_size": SearchRange.ints(0, 4)},
                       config=TrainingConfig())
    with pytest.raises(ConvasError):
        sample(design, training, {"training:batch_size": 0})
