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
