"""Designs written to break Convas (issue 13): numbers past any float, names no terminal or Keras
should take, and graphs whose naive report grows with the square of their size. Each class is
generated (Hypothesis where it fits), not only its first example."""

from __future__ import annotations

import json
import re
import tracemalloc
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.analysis import analyse
from engine.cli import main
from engine.design import Design, chain, name_problem, safe_name, valid_name
from engine.editing import EditRefused, apply_all, plan_fix, plan_rename
from engine.export.run import _traceable
from engine.layers import FixAction
from engine.project_file import project_to_dict
from engine.shapes import MAX_COUNT
from engine.summary import human_bytes, human_count, summary_dict, summary_text
from engine.text import power_of_ten, printable

from hostile import HOSTILE, long_cycle, shared_chain, wide_add

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _report_everything(design: Design) -> str:
    """Every text output the CLI makes of ``design`` (the table, the JSON, the problem lines)."""
    analysis = analyse(design)
    lines = [summary_text(design, analysis), json.dumps(summary_dict(design, analysis))]
    lines += [printable(f"{p.node or design.name}: {p.message}") for p in analysis.problems]
    return "\n".join(lines)


# --- 1. numbers past float range -----------------------------------------------------------------

def _upsampling_chain(sizes: list[int]) -> Design:
    return chain(("InputLayer", {"shape": (2, 2, 1)}), *[("UpSampling2D", {"size": s}) for s in sizes],
                 ("Flatten", {}))


@FAST
@given(st.lists(st.integers(1, 4096), min_size=1, max_size=12))
def test_growing_outputs_are_capped_where_computed_and_reported(sizes):
    design = _upsampling_chain(sizes)
    analysis = analyse(design)
    text = _report_everything(design)  # never raises, whatever the sizes
    assert len(text) < 20_000
    values = 4
    for name, size in zip(list(design.nodes)[1:], sizes):
        rep = analysis.nodes[name]
        values *= size * size
        if values > MAX_COUNT:
            (problem,) = rep.errors
            assert "values for one sample" in problem.message and "make it smaller" in problem.message
            break
        assert rep.valid
    else:
        assert analysis.valid
    for rep in analysis.nodes.values():
        assert max(rep.params, rep.macs, rep.activation_bytes // 4) <= MAX_COUNT


@FAST
@given(st.integers(1, MAX_COUNT), st.integers(1, 2**24))  # a wider input is its own problem
def test_weights_and_costs_past_the_cap_are_layer_problems(width, units):
    design = chain(("InputLayer", {"shape": (width,)}), ("Dense", {"units": units}))
    rep = analyse(design).nodes["dense"]
    if (width + 1) * units > MAX_COUNT:
        (problem,) = rep.errors
        assert "parameters" in problem.message and "use fewer units" in problem.message
    else:
        assert rep.valid and rep.params == (width + 1) * units
    _report_everything(design)


@FAST
@given(st.one_of(st.integers(2**63, 10**400), st.integers(-(10**5000), -(2**63))))
def test_huge_whole_number_arguments_are_argument_problems(units):
    design = chain(("InputLayer", {"shape": (4,)}), ("Dense", {"units": units}))
    analysis = analyse(design)
    (problem,) = analysis.errors
    assert problem.arg == "units" and "units must be" in problem.message and len(problem.message) < 200
    _report_everything(design)


@FAST
@given(st.integers(10**309, 10**5000))
def test_huge_numbers_for_float_arguments_are_argument_problems(rate):
    design = chain(("InputLayer", {"shape": (4,)}), ("Dropout", {"rate": rate}))
    (problem,) = analyse(design).errors
    assert problem.arg == "rate" and "below 1e308" in problem.message


def test_thousand_huge_layers_give_json_within_the_integer_digit_limit():
    design = _upsampling_chain([4096] * 1000)
    out = json.dumps(summary_dict(design, analyse(design)))
    assert max(len(d) for d in re.findall(r"\d+", out)) <= 20


@FAST
@given(st.one_of(st.integers(-(10**6000), 10**6000), st.floats(allow_nan=True, allow_infinity=True),
                 st.sampled_from([5e-324, -1e-310, 1.7976931348623157e308, -0.0])))
def test_human_count_and_bytes_are_total_and_short(n):
    for text in (human_count(n), human_bytes(n), power_of_ten(n)):
        assert isinstance(text, str) and len(text) < 40


@FAST
@given(st.integers(10, 99), st.integers(2, 5000))
def test_power_of_ten_is_exact_to_two_digits(head, exponent):
    n = head * 10 ** (exponent - 1) + 7
    mantissa = f"{head // 10}.{head % 10}".removesuffix(".0")
    assert power_of_ten(n) == f"{mantissa}e{exponent}"
    assert power_of_ten(10**exponent - 1) == f"9.9e{exponent - 1}"  # where log10 rounds up
    assert power_of_ten(-n) == f"-{mantissa}e{exponent}"


# --- 2. names no terminal should print raw -----------------------------------------------------

HIDDEN = "\x1b\x07\x00\n\r\x7f\x9b\ud800\udfff\u202e\u2028"


@st.composite
def hostile_names(draw: st.DrawFn) -> str:
    """A name holding at least one character a terminal would obey or no encoding can write."""
    text = st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
    return draw(text) + draw(st.sampled_from(HIDDEN)) + draw(text)


def _no_hidden(text: str) -> None:
    text.encode("utf-8")  # no lone surrogate
    assert not any(c in text for c in HIDDEN if c != "\n")


@FAST
@given(hostile_names(), hostile_names())
def test_names_are_escaped_in_every_text_output(layer, model):
    design = chain(("InputLayer", {"shape": (4,)}), ("Dense", {"units": 2}), name=model)
    design.rename("dense", layer)
    analysis = analyse(design)
    _no_hidden(summary_text(design, analysis))
    for p in analysis.problems:
        _no_hidden(printable(str(p)))


@FAST
@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=20))
def test_printable_keeps_ordinary_text_and_escapes_the_rest(text):
    shown = printable(text)
    shown.encode("utf-8")
    assert not any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in shown)
    if text.isprintable():
        assert shown == text


def test_cli_summary_escapes_names(tmp_path: Path, capsys):
    design = chain(("InputLayer", {"shape": (4,)}), ("Dense", {"units": 2}), name="\x1b[2Jm\ud800")
    design.rename("dense", "bell\x07 \ud800")
    path = tmp_path / "hostile.convas"
    path.write_text(json.dumps(project_to_dict(design)), encoding="ascii")  # \ud800 as an escape
    assert main(["summary", str(path)]) == 1
    out, err = capsys.readouterr()
    for text in (out, err):
        _no_hidden(text)
    assert "bell\\x07 \\ud800" in out and "\\x1b[2Jm\\ud800" in out and "\\x07" in err


# --- 3. graphs whose naive report is quadratic ---------------------------------------------------

@pytest.mark.parametrize("case", list(HOSTILE))
def test_ten_thousand_wide_cycle_or_shared_design_stays_small(case):
    design = HOSTILE[case](10_000)
    tracemalloc.start()
    try:
        text = _report_everything(design)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20, f"{case}: {peak / 2**20:.0f} MB"
    assert len(text) < 5 * 2**20


@FAST
@given(st.integers(1, 400), st.integers(0, 50))
def test_a_cycle_is_named_once_and_briefly(n, tail):
    design = long_cycle(n)
    for i in range(tail):  # layers behind the cycle: blocked, not part of it
        design.add("Dense", f"after_{i}", {"units": 8}, inputs=[f"after_{i - 1}" if i else "dense_0"])
    analysis = analyse(design)
    (cycle,) = [p for p in analysis.problems if "cycle" in p.message]
    assert cycle.node is None and len(cycle.message) < 400
    assert ("dense_0 → " if n > 1 else "dense_0 → dense_0") in cycle.message
    if n > 6:
        assert f"({n:,} layers)" in cycle.message and "…" in cycle.message
    members = [name for name, rep in analysis.nodes.items() if rep.errors]
    assert sorted(members) == sorted(f"dense_{i}" for i in range(n))
    assert all(analysis.nodes[f"after_{i}"].blocked for i in range(tail))


@FAST
@given(st.integers(1, 300))
def test_wide_and_shared_cells_are_bounded(n):
    for design in (wide_add(n), shared_chain(n)):
        table = summary_text(design, analyse(design))
        assert max(len(line) for line in table.splitlines()) < 400
        assert len(table.splitlines()) < 30 + 3 * len(design.nodes) + 8
        if n > 5:
            assert f"… and {n - 5:,} more" in table


# --- 4. names Keras and the exports cannot use ---------------------------------------------------

BAD_CHARACTERS = " '\"é:;\n\x00\\/\t→"
KERAS_OP_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*")  # TensorFlow's rule (ops.py)


@st.composite
def unusable_names(draw: st.DrawFn) -> str:
    part = st.text(st.characters(codec=None, exclude_categories=()), max_size=6)
    return draw(part) + draw(st.sampled_from(BAD_CHARACTERS)) + draw(part)


@FAST
@given(st.lists(unusable_names(), min_size=1, max_size=4, unique=True))
def test_unusable_names_get_a_problem_whose_fix_makes_them_traceable(names):
    design = chain(("InputLayer", {"shape": (4,)}), *[("Dense", {"units": 2})] * len(names))
    for old, new in zip(list(design.nodes)[1:], names):
        design.rename(old, new)
    before = analyse(design)
    assert before.nodes[names[0]].output_shape == (None, 2)  # the problem does not block shapes
    for name in names:
        (problem,) = [p for p in before.nodes[name].errors]
        (fix,) = problem.fixes
        assert fix.action == FixAction.RENAME and f"rename it to {fix.value}" in problem.message
        apply_all(design, plan_fix(design, name, fix))
    after = analyse(design)
    assert after.valid, [str(p) for p in after.problems]
    for name in list(design.nodes):
        assert valid_name(name) and _traceable(name) and KERAS_OP_NAME.fullmatch(name) and "/" not in name


@FAST
@given(unusable_names())
def test_typing_an_unusable_name_is_refused_with_the_name_to_use(name):
    design = chain(("InputLayer", {"shape": (4,)}), ("Dense", {"units": 2}))
    with pytest.raises(EditRefused, match=re.escape(f"rename it to {safe_name(name)}")):
        plan_rename(design, "dense", name)
    assert list(design.nodes) == ["input_layer", "dense"]
    assert name_problem(safe_name(name)) is None


def test_project_file_with_unusable_names_opens_with_a_fix(tmp_path: Path):
    from engine.files import load_design

    design = chain(("InputLayer", {"shape": (4,)}), ("Dense", {"units": 2}))
    doc = project_to_dict(design)
    for node in doc["design"]["nodes"]:
        node["name"] = {"input_layer": "in put", "dense": "a/b"}[node["name"]]
        for refs in node.get("inbound", []):
            for ref in refs:
                ref[0] = "in put"
    path = tmp_path / "imported.convas"
    path.write_text(json.dumps(doc), encoding="utf-8")
    loaded = load_design(path)
    analysis = analyse(loaded)
    assert {p.node: p.fixes[0].value for p in analysis.errors} == {"in put": "in_put", "a/b": "a_b"}


def test_receptive_fields_past_the_cap_become_unknown():
    # 1,200 stride-4096 'same' convolutions: sizes stay 1, the effective stride would reach
    # 4096¹²⁰⁰, past the float range and past the 4,300 digits json may write.
    design = chain(("InputLayer", {"shape": (4, 4, 1)}),
                   *[("Conv2D", {"filters": 1, "kernel_size": 3, "strides": 4096, "padding": "same"})] * 1200)
    analysis = analyse(design)
    assert analysis.valid
    for rep in analysis.nodes.values():
        rf = rep.receptive_field()
        assert rf is None or max(rf) <= MAX_COUNT
    json.dumps(summary_dict(design, analysis))
