"""`convas summary` on hostile designs of 10,000: an Add of 10,000 inputs, a cycle of 10,000
layers, one layer shared 10,000 times (tests/hostile.py builds them).

Goal (issue 13): each takes ≤ 2 s as a whole process and ≤ 200 MB at its peak (tracemalloc of
the analysis and every text output, in process). Before the fix they took 34 s / 8.6 GB,
4.2 s / 2.6 GB and 15 s / 5.1 GB (whole-process maximum resident memory).
Run: uv run python benchmarks/bench_hostile.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

from engine.analysis import analyse  # noqa: E402
from engine.project_file import save_project  # noqa: E402
from engine.summary import summary_dict, summary_text  # noqa: E402

from _timing import median_process  # noqa: E402
from hostile import HOSTILE  # noqa: E402

SIZE = 10_000
GOAL_SECONDS = 2.0
GOAL_BYTES = 200 * 2**20


def peak_bytes(case: str) -> int:
    """Peak traced memory of analysing the design and writing every text output of it."""
    design = HOSTILE[case](SIZE)
    tracemalloc.start()
    try:
        analysis = analyse(design)
        summary_text(design, analysis)
        json.dumps(summary_dict(design, analysis))
        [str(p) for p in analysis.problems]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'case':8} {'convas summary':>15} {'÷ 2 s':>7} {'peak memory':>12} {'÷ 200 MB':>9}")
        for case, make in HOSTILE.items():
            path = Path(folder) / f"{case}.convas"
            save_project(path, make(SIZE))
            # `convas summary` exits 1 for an invalid design (the cycle), so run it through a
            # shell that always succeeds.
            cmd = ["sh", "-c", f'"{sys.executable}" main.py summary "{path}" >/dev/null 2>&1; true']
            median_process(cmd, repeat=1, env=env, cwd=str(ROOT))
            seconds = median_process(cmd, repeat=3, env=env, cwd=str(ROOT))
            peak = peak_bytes(case)
            print(f"{case:8} {seconds:13.2f} s {seconds / GOAL_SECONDS:7.2f} {peak / 2**20:9.1f} MB "
                  f"{peak / GOAL_BYTES:9.2f}")


if __name__ == "__main__":
    main()
