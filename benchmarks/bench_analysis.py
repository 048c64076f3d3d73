"""Analysis time vs Keras building the same model, for the seed CNN and 100 to 10,000 layers.

Goals (issue 2): seed CNN ≤ 1 ms; 1,000 layers ≤ 50 ms; linear growth; ≥ 100× faster than Keras
building the same model (measured here, in the same run, where Keras can build it at all).
Issue 14 adds the analysis after an edit (incremental: only what is downstream of the edit and
changed is analysed again): one argument of the middle convolution, which changes a few shapes,
and its kernel size, which changes the receptive field of every layer after it.
Run: uv run python benchmarks/bench_analysis.py [--no-keras]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from engine.analysis import analyse  # noqa: E402
from engine.design import Design  # noqa: E402
from engine.examples import seed_design  # noqa: E402

from _timing import best_of  # noqa: E402

KERAS_LIMIT = 1000  # above this Keras takes minutes (or fails); we say so instead of waiting


def conv_stack(layers: int) -> Design:
    """A plain CNN trunk: Input then repeated Conv2D(same) → BatchNormalization → ReLU."""
    d = Design(name=f"stack_{layers}")
    prev = d.add("InputLayer", args={"shape": (32, 32, 8)}).name
    kinds = [("Conv2D", {"filters": 8, "kernel_size": 3, "padding": "same"}),
             ("BatchNormalization", {}), ("ReLU", {})]
    for i in range(layers - 1):
        kind, args = kinds[i % 3]
        prev = d.add(kind, args=args, inputs=[prev]).name
    return d


def keras_build_seconds(design: Design) -> tuple[float | None, str]:
    """Time Keras takes to build the functional model (None and the reason when it cannot)."""
    import keras

    from engine.keras_build import build_keras_model

    keras.backend.clear_session()
    limit = sys.getrecursionlimit()
    try:
        t = time.perf_counter()
        build_keras_model(design)
        return time.perf_counter() - t, ""
    except RecursionError:
        return None, "Keras fails: RecursionError"
    except Exception as exc:  # noqa: BLE001 - Keras's own failure is a result to report, not a crash
        cause = exc.__cause__ or exc.__context__ or exc
        return None, f"Keras fails: {type(cause).__name__}"
    finally:
        sys.setrecursionlimit(limit)


def main() -> None:
    with_keras = "--no-keras" not in sys.argv
    rows = [("seed CNN (7 layers)", seed_design())] + [(f"{n:,} layers", conv_stack(n)) for n in (100, 1000, 10000)]
    # All analysis timings first, so that Keras's garbage does not land in our figures.
    ours = []
    for label, design in rows:
        assert analyse(design).valid, label
        ours.append(best_of(lambda design=design: analyse(design), repeat=3 if len(design) >= 10000 else 7))
    print(f"{'design':<22}{'analysis':>12}{'per layer':>12}  {'Keras build':<34}{'speed-up':>9}")
    for (label, design), t in zip(rows, ours):
        keras_text, ratio_text = "-", "-"
        if with_keras and len(design) <= KERAS_LIMIT:
            k, why = keras_build_seconds(design)
            keras_text = f"{k * 1000:.1f} ms" if k is not None else why
            ratio_text = f"{k / t:.0f}×" if k is not None else "-"
        elif with_keras:
            keras_text = "not attempted (fails at 1,000)"
        print(f"{label:<22}{t * 1000:>9.3f} ms{t / len(design) * 1e6:>9.1f} µs  {keras_text:<34}{ratio_text:>9}")
    print("growth is linear when the per-layer time stays flat from 100 to 10,000 layers")
    incremental()


class _Editing:
    """One design edited again and again, each analysis made from the one before."""

    def __init__(self, design: Design, layer: str) -> None:
        self.design, self.layer = design, layer
        self.analysis = analyse(design)

    def median_edit(self, arg: str, values: tuple, repeat: int) -> float:
        """Median seconds to analyse after setting ``arg`` to each of ``values`` in turn (every
        edit changes the value, so every analysis has work to do)."""
        from engine.editing import SetArg, apply_op

        times = []
        for i in range(repeat):
            apply_op(self.design, SetArg(self.layer, arg, values[i % len(values)]))
            t = time.perf_counter()
            self.analysis = analyse(self.design, previous=self.analysis, touched={self.layer})
            times.append(time.perf_counter() - t)
        return statistics.median(times)


def incremental() -> None:
    print(f"\n{'after an edit (median)':<22}{'filters':>12}{'kernel_size':>14}{'full':>12}")
    for n in (1000, 10000):
        design = conv_stack(n)
        convs = [node.name for node in design if node.kind == "Conv2D"]
        editing = _Editing(design, convs[len(convs) // 2])
        filters = editing.median_edit("filters", (16, 8), 15)
        kernel = editing.median_edit("kernel_size", (5, 3), 7)
        t = time.perf_counter()
        analyse(design)
        full = time.perf_counter() - t
        print(f"{n:,} layers{'':<12}{filters * 1000:>9.3f} ms{kernel * 1000:>11.3f} ms{full * 1000:>9.3f} ms")


if __name__ == "__main__":
    main()
