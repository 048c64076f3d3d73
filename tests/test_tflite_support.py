"""The TFLite support table against real conversions.

:data:`engine.export.tflite_support.TFLITE_UNSUPPORTED` says which layers the TFLite export
refuses. The slow tests hold it to TensorFlow: every entry's example is refused by a real export
and named by :func:`tflite_problems`; every row of the catalogue table
(``tests/test_catalogue_keras.py``) the table flags is refused for real, and the rows that decide
where a refusal stops (the arguments the table looks at, of the kinds it lists), a few
neighbouring variants and one row of every kind convert and verify. A TensorFlow upgrade that
changes any answer fails here. The fast tests check :func:`tflite_problems` itself.

Run this file as a script to re-measure the whole table (every accepted catalogue row, ~1 min):
``uv run python tests/test_tflite_support.py [--quantize dynamic|float16]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest
from test_catalogue_keras import ROWS, Row

from engine.analysis import analyse
from engine.design import Design
from engine.examples import example_names, load_example
from engine.export.run import ExportError, ExportOptions, export_model
from engine.export.tflite_support import TFLITE_UNSUPPORTED, Refusal, tflite_problems
from engine.layers import CATALOGUE

LAYER = "layer"
# The arguments the table's conditions read: rows setting them mark where a refusal stops.
DECIDING_ARGS = ("data_format", "dilation_rate", "groups", "interpolation")


def one_layer_design(kind: str, args: dict[str, Any], *shapes: tuple) -> Design:
    """A ``kind`` layer named ``layer`` fed by one InputLayer per shape (batch axis left out);
    an InputLayer row becomes the input itself followed by a linear Activation."""
    design = Design(name="tflite_probe")
    if kind == "InputLayer":
        design.add("InputLayer", LAYER, dict(args))
        design.add("Activation", "out", {"activation": "linear"}, inputs=[LAYER])
        return design
    names = [design.add("InputLayer", f"in{i}", {"shape": s}).name for i, s in enumerate(shapes)]
    design.add(kind, LAYER, dict(args), inputs=names)
    return design


def row_design(row: Row) -> Design:
    return one_layer_design(row.kind, row.args, *row.shapes)


def example_design(kind: str, refusal: Refusal) -> Design:
    args, shape = refusal.example
    return one_layer_design(kind, args, shape)


def export_error(design: Design, quantize: str | None = None) -> str | None:
    """None when a real TFLite export converts and verifies ``design``, else the error's first line."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            export_model(design, Path(folder) / "m.tflite", ExportOptions("tflite", quantize))
        except ExportError as exc:
            return str(exc).splitlines()[0]
    return None


ENTRIES = [(kind, refusal) for kind, refusals in TFLITE_UNSUPPORTED.items() for refusal in refusals]
# The catalogue rows Keras builds (on a CPU or not); InputLayer rows test nothing TFLite-specific.
BUILT_ROWS = [row for row in ROWS if row.expect in ("ok", "cpu") and row.kind != "InputLayer"]
FLAGGED_ROWS = [row for row in BUILT_ROWS if tflite_problems(row_design(row))]
CLEAN_ROWS = [row for row in BUILT_ROWS if not tflite_problems(row_design(row))]


def sets_deciding_arg(row: Row) -> bool:
    """Whether ``row`` gives an argument the table reads a value other than its default."""
    spec = CATALOGUE[row.kind]
    given, default = spec.normalise(row.args)[0], spec.normalise({})[0]
    return any(given.get(arg) != default.get(arg) for arg in DECIDING_ARGS)


CLEAN_SAMPLE = (
    # Where a refusal stops: the clean rows of a listed kind that set an argument the table reads ...
    [row for row in CLEAN_ROWS if row.kind in TFLITE_UNSUPPORTED and sets_deciding_arg(row)]
    # ... the largest input PReLU takes ...
    + [max((row for row in CLEAN_ROWS if row.kind == "PReLU"), key=lambda r: len(r.shapes[0]))]
    # ... and one row of every kind.
    + [next(row for row in CLEAN_ROWS if row.kind == kind)
       for kind in sorted(CATALOGUE) if kind != "InputLayer" and any(r.kind == kind for r in CLEAN_ROWS)]
)


# Neighbours of the table's entries that convert and verify (the catalogue rows lack them).
CONVERTING_VARIANTS: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
    ("Conv2D", {"filters": 2, "kernel_size": 2, "data_format": "channels_first"}, (3, 6, 7)),
    ("SeparableConv2D", {"filters": 2, "kernel_size": 2, "data_format": "channels_first"}, (3, 7, 6)),
    ("DepthwiseConv1D", {"kernel_size": 2, "data_format": "channels_first", "use_bias": False}, (3, 9)),
    ("SeparableConv1D", {"filters": 4, "kernel_size": 2, "data_format": "channels_first", "use_bias": False}, (3, 9)),
    ("Conv3DTranspose", {"filters": 2, "kernel_size": 3, "dilation_rate": 2}, (3, 3, 3, 2)),
    ("Conv2D", {"filters": 4, "kernel_size": 2, "groups": 2}, (5, 6, 2)),
    ("PReLU", {"shared_axes": (1, 2)}, (3, 4, 2)),
    ("GlobalMaxPooling3D", {"data_format": "channels_first", "keepdims": True}, (2, 4, 4, 4)),
]


def entry_id(entry: tuple[str, Refusal]) -> str:
    kind, refusal = entry
    return f"{kind}[{refusal.when.split('=')[0] or 'always'}]"


# ---------------------------------------------------------------------------- the table (no TF)

def test_table_names_catalogue_kinds_and_valid_examples() -> None:
    assert set(TFLITE_UNSUPPORTED) <= set(CATALOGUE)
    for kind, refusal in ENTRIES:
        analysis = analyse(example_design(kind, refusal))
        assert analysis.valid, (kind, refusal.when, [str(p) for p in analysis.errors])


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_problems_name_the_layer_of_each_entry(entry: tuple[str, Refusal]) -> None:
    kind, refusal = entry
    problems = tflite_problems(example_design(kind, refusal))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"Layer {LAYER!r} ({kind}") and refusal.reason in problems[0]


def test_every_built_kind_outside_the_table_has_a_clean_row() -> None:
    """Every kind the table does not list has rows, and none of them is flagged."""
    kinds = {row.kind for row in BUILT_ROWS} - set(TFLITE_UNSUPPORTED)
    assert kinds == set(CATALOGUE) - set(TFLITE_UNSUPPORTED) - {"InputLayer"}
    assert {row.kind for row in FLAGGED_ROWS} <= set(TFLITE_UNSUPPORTED)


def test_examples_have_no_problems() -> None:
    # test_export exports every example to TFLite.
    assert {name: tflite_problems(load_example(name)) for name in example_names()} == \
        {name: [] for name in example_names()}


def test_variants_that_convert_are_not_flagged() -> None:
    for kind, args, shape in CONVERTING_VARIANTS:
        assert tflite_problems(one_layer_design(kind, args, shape)) == [], (kind, args)


def test_problems_name_each_refused_layer_in_design_order() -> None:
    design = Design(name="mixed")
    design.add("InputLayer", "volume", {"shape": (4, 4, 4, 2)})
    design.add("Conv3D", "dilated volume", {"filters": 4, "kernel_size": 2, "dilation_rate": (1, 1, 2),
                                            "groups": 2}, inputs=["volume"])
    design.add("PReLU", "act", inputs=["dilated volume"])
    design.add("MaxPooling3D", "pool", {"pool_size": 1}, inputs=["act"])
    design.add("Conv3D", "fine", {"filters": 2, "kernel_size": 1}, inputs=["pool"])
    problems = tflite_problems(design)
    assert [p.split(" (")[0] for p in problems] == ["Layer 'dilated volume'"] * 2 + ["Layer 'act'", "Layer 'pool'"]
    assert "dilation_rate=(1, 1, 2)" in problems[0] and "groups=2" in problems[1]
    assert "5 axes" in problems[2] and "ONNX" in problems[3]


def test_an_invalid_design_is_still_checked() -> None:
    design = Design(name="broken")
    design.add("InputLayer", "x", {"shape": (3, 3, 3, 1)})
    design.add("Conv3D", "too_big", {"filters": 2, "kernel_size": 9}, inputs=["x"])
    design.add("PReLU", "after", inputs=["too_big"])                  # rank unknown: not judged
    design.add("AveragePooling3D", "pool", {"pool_size": 2}, inputs=["after"])
    design.add("Resizing", "loose", {"height": 2, "width": 2, "interpolation": "lanczos5"})  # no input
    assert not analyse(design).valid
    assert [p.split(" (")[0] for p in tflite_problems(design)] == ["Layer 'pool'", "Layer 'loose'"]


# ---------------------------------------------------------------------------- real conversions

@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_each_entry_is_refused_by_a_real_export(entry: tuple[str, Refusal]) -> None:
    kind, refusal = entry
    assert export_error(example_design(kind, refusal)) is not None, \
        f"TFLite now exports {kind} ({refusal.when or 'always'}): drop the entry from TFLITE_UNSUPPORTED"


@pytest.mark.slow
@pytest.mark.parametrize("row", FLAGGED_ROWS, ids=str)
def test_flagged_catalogue_rows_are_refused(row: Row) -> None:
    assert export_error(row_design(row)) is not None, \
        f"TFLite now exports {row}: narrow its entry in TFLITE_UNSUPPORTED"


# The designs expected to convert are exported a batch at a time (each export costs most of a
# second whatever its size): one design holding every case of the batch side by side, each layer
# on its own inputs. Should the batch fail, each case is exported alone to name the ones TFLite
# refuses, so a case fails exactly when its own one-layer export fails.
BATCH = 20
Case = tuple[str, dict[str, Any], tuple[tuple[int, ...], ...]]


def side_by_side(cases: list[Case]) -> Design:
    """One design with a ``kind`` layer per case (``layer<i>``), each fed by its own InputLayers."""
    design = Design(name="tflite_probe")
    for i, (kind, args, shapes) in enumerate(cases):
        names = [design.add("InputLayer", f"in{i}_{j}", {"shape": s}).name for j, s in enumerate(shapes)]
        design.add(kind, f"{LAYER}{i}", dict(args), inputs=names)
    return design


def refused(labelled: list[tuple[str, Case]]) -> list[str]:
    """'label: error' for each case whose one-layer design does not convert and verify."""
    if export_error(side_by_side([case for _, case in labelled])) is None:
        return []
    return [f"{label}: {error}" for label, (kind, args, shapes) in labelled
            if (error := export_error(one_layer_design(kind, args, *shapes))) is not None]


CLEAN_CASES = [(str(row), (row.kind, row.args, tuple(row.shapes))) for row in CLEAN_SAMPLE]


@pytest.mark.slow
@pytest.mark.parametrize("start", range(0, len(CLEAN_CASES), BATCH),
                         ids=lambda start: f"rows{start}-{min(start + BATCH, len(CLEAN_CASES)) - 1}")
def test_unflagged_catalogue_rows_export(start: int) -> None:
    errors = refused(CLEAN_CASES[start:start + BATCH])
    assert errors == [], f"TFLite refuses {errors}; add them to TFLITE_UNSUPPORTED"


@pytest.mark.slow
def test_neighbouring_variants_export() -> None:
    errors = refused([(f"{kind}({args})", (kind, args, (shape,))) for kind, args, shape in CONVERTING_VARIANTS])
    assert errors == [], f"TFLite refuses {errors}; add them to TFLITE_UNSUPPORTED"


def test_a_batch_names_the_case_that_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batching itself: a refused batch is retried case by case and only the refused case is named."""
    exported: list[list[str]] = []

    def fake_export_error(design: Design, quantize: str | None = None) -> str | None:
        kinds = [node.kind for node in design if node.kind != "InputLayer"]
        exported.append(kinds)
        return "refused" if "Resizing" in kinds else None

    monkeypatch.setattr(sys.modules[__name__], "export_error", fake_export_error)
    cases: list[tuple[str, Case]] = [("dense", ("Dense", {"units": 2}, ((3,),))),
                                     ("resize", ("Resizing", {"height": 2, "width": 2}, ((4, 4, 1),)))]
    assert refused(cases) == ["resize: refused"]
    assert exported == [["Dense", "Resizing"], ["Dense"], ["Resizing"]]
    assert refused(cases[:1]) == [] and exported[-1] == ["Dense"]


# ---------------------------------------------------------------------------- re-measuring

def survey(quantize: str | None = None) -> int:
    """Export every row Keras builds and every table example; print where the table and the
    converter disagree. Returns the number of disagreements."""
    import keras

    cases = [(str(row), row_design(row)) for row in BUILT_ROWS]
    cases += [(f"{kind}({args})", one_layer_design(kind, args, shape)) for kind, args, shape in CONVERTING_VARIANTS]
    cases += [(f"{kind}({refusal.when or 'always'}) example", example_design(kind, refusal))
              for kind, refusal in ENTRIES]
    wrong = skipped = 0
    for i, (label, design) in enumerate(cases):
        if i % 25 == 0:
            keras.backend.clear_session()   # layers pile up in Keras's global state
        flagged, error = bool(tflite_problems(design)), export_error(design, quantize)
        if error is not None and "differs from the model" in error and " nan " in error:
            skipped += 1    # the model itself computes NaN (e.g. a negative variance): every format fails
            print(f"not judged (the model outputs NaN): {label}", flush=True)
            continue
        if flagged != (error is not None):
            wrong += 1
            print(f"{'flagged but exports' if flagged else 'refused but not flagged'}: {label}"
                  + (f"\n    {error}" if error else ""), flush=True)
    print(f"{len(cases)} designs exported to TFLite (quantize={quantize}); {skipped} not judged, "
          f"{wrong} disagree with the table")
    return wrong


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=survey.__doc__)
    parser.add_argument("--quantize", choices=["dynamic", "float16"])
    sys.exit(1 if survey(parser.parse_args().quantize) else 0)
