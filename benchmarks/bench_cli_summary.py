"""Whole-process time of `convas summary` on the seed CNN vs `python -c "import tensorflow"`.

Goal (issue 2): the summary takes ≤ 0.2 × the TensorFlow import, measured in the same run.
Run: uv run python benchmarks/bench_cli_summary.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_process

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "resources" / "examples" / "seed_cnn.convas"


def main() -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    py = sys.executable
    # One warm-up each so both read from a warm file cache.
    median_process([py, "-c", "import tensorflow"], repeat=1, env=env)
    median_process([py, str(ROOT / "main.py"), "summary", str(SEED)], repeat=1, env=env, cwd=str(ROOT))
    tf = median_process([py, "-c", "import tensorflow"], repeat=5, env=env)
    summary = median_process([py, str(ROOT / "main.py"), "summary", str(SEED)], repeat=9, env=env, cwd=str(ROOT))
    print(f"convas summary seed_cnn.convas : {summary * 1000:8.1f} ms (median of 9 processes)")
    print(f"python -c 'import tensorflow'  : {tf * 1000:8.1f} ms (median of 5 processes)")
    print(f"ratio                          : {summary / tf:8.3f}  (goal ≤ 0.2)")


if __name__ == "__main__":
    main()
