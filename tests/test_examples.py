"""The shipped examples: valid, neatly laid out, and what their builders say."""

import pytest

from engine.analysis import analyse
from engine.example_designs import BUILDERS, build
from engine.examples import example_names, load_example, seed_design


def test_every_builder_is_shipped():
    assert sorted(BUILDERS) == example_names()


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_example_is_valid_laid_out_and_matches_its_builder(name):
    shipped = load_example(name)
    assert shipped.nodes == build(name).nodes, "run `python -m engine.example_designs` to refresh"
    a = analyse(shipped)
    assert a.valid and not a.warnings, [str(p) for p in a.problems]
    positions = [n.position for n in shipped.nodes.values()]
    assert all(p is not None for p in positions)
    assert len(set(positions)) == len(positions)  # no two cards on top of each other


def test_seed_is_the_issue_seed_cnn():
    a = analyse(seed_design())
    assert a.total_params == 34826
    assert [a.nodes[n].params for n in a.order if a.nodes[n].params] == [320, 18496, 16010]


# ---------------------------------------------------------------- every example trains as it opens

def _default_data(name):
    """The example, its input/output and the dataset it trains on by default (its saved one, else
    Digits, the Train panel's default), for its saved task (else the inferred one)."""
    from engine.data_source import load_dataset, model_io
    from engine.examples import example_path
    from engine.project_file import load_project
    from engine.training import TrainingSettings

    project = load_project(example_path(name))
    settings = TrainingSettings.from_dict(project.training)
    io = model_io(project.design)
    data = load_dataset(settings.dataset, io.input_shape, seed=0, task=settings.config.task,
                        output_shape=io.output_shape)
    return project.design, io, data, settings


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_example_fits_its_default_dataset(name):
    from engine.data_source import choose_task, dataset_problems

    _design, io, data, settings = _default_data(name)
    task = choose_task(io, data, settings.config.task)
    assert dataset_problems(data, io, settings.config.loss, task=task) == []


@pytest.mark.parametrize("name, task", [("conv_autoencoder", "reconstruction"), ("unet_shapes", "segmentation"),
                                        ("seed_cnn", "classification")])
def test_each_example_knows_its_task(name, task):
    from engine.data_source import choose_task

    _design, io, data, settings = _default_data(name)
    assert choose_task(io, data, settings.config.task).value == task


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_example_trains_one_epoch_on_a_small_subset(name):
    from engine.datasets import Split
    from engine.training import TrainingConfig, train

    design, _io, data, settings = _default_data(name)
    subset = Split(data.train.x[:64], data.train.y[:64])
    result = train(design, subset, None, TrainingConfig(epochs=1, batch_size=32, task=settings.config.task))
    assert result.epochs_run == 1
    assert all(v == v for v in result.history["loss"])  # not NaN
