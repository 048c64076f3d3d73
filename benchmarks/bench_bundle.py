"""The packaged bundle: its size, and its start-up to a visible window against the source checkout.

Goal (issue 18): start-up of the bundle within 1.5× of ``uv run convas``, both measured in the
same run (after one warm-up each, so that neither pays for a cold file cache alone).
Run (after ``uv run python packaging/build.py``): uv run python benchmarks/bench_bundle.py [dist/Convas]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "packaging"), str(Path(__file__).resolve().parent)]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CONVAS_RECOVERY_DIR", tempfile.mkdtemp())

from bundle_config import archive_name, folder_size, human  # noqa: E402
from smoke import executables  # noqa: E402

from _timing import median_process  # noqa: E402

GOAL = 1.5
REPEAT = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, nargs="?", default=ROOT / "dist" / "Convas")
    args = parser.parse_args()
    window = executables(args.bundle).window
    if not window.is_file():
        print(f"bench_bundle: no bundle at {args.bundle}; build it with `uv run python packaging/build.py`",
              file=sys.stderr)
        return 2
    print(f"bundle folder                  : {human(folder_size(args.bundle)):>12}  ({args.bundle})")
    archive = args.bundle.parent / archive_name()
    if archive.is_file():
        print(f"archive                        : {human(archive.stat().st_size):>12}  ({archive.name})")
    env = dict(os.environ, CONVAS_QUIT_WHEN_SHOWN="1")
    uv = shutil.which("uv")
    commands = {
        "bundle": [str(window)],
        "uv run convas": [uv, "run", "convas"] if uv else None,
        "python main.py (venv)": [sys.executable, str(ROOT / "main.py")],
    }
    times: dict[str, float] = {}
    for command in commands.values():
        if command is None:
            continue
        median_process(command, repeat=1, env=env, cwd=str(ROOT))  # warm-up: file cache, .pyc
    for name, command in commands.items():
        if command is None:
            print(f"{name:<31}: uv not on PATH, skipped")
            continue
        times[name] = median_process(command, repeat=REPEAT, env=env, cwd=str(ROOT))
        print(f"start to visible window, {name:<22}: {times[name] * 1000:8.0f} ms (median of {REPEAT}, "
              f"platform {os.environ['QT_QPA_PLATFORM']})")
    reference = times.get("uv run convas", times["python main.py (venv)"])
    ratio = times["bundle"] / reference
    print(f"ratio bundle / {'uv run convas' if 'uv run convas' in times else 'python main.py'}"
          f"{'':<3}: {ratio:8.2f}  (goal ≤ {GOAL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
