"""Distributed training on one machine: one process vs ``--local-workers 2`` vs mirrored over two
logical CPU devices, the seed CNN on the built-in Digits (1,438 training samples), the same
global batch, seed and epochs.

Each configuration is a real ``convas train … --progress json`` process; its throughput is the
training samples per second the run reports for each epoch (``samples_per_s``, the whole
cluster's: global samples over the epoch's training time), the first epoch left out (graph
tracing, and for a cluster the workers' start-up), median over the rest and over ``--rounds``
rounds, which alternate the three configurations to cancel the drift of a shared machine. Also
printed: each process's wall time, start-up included.

What to expect: on a 2-core machine with no GPU, no speed-up. The one-process run already uses
both cores (TensorFlow's intra-op threads); two workers split the same cores, each at half the
batch, and add an all-reduce of every gradient over loopback gRPC per step; mirrored adds the
replica dispatch. The figures measure that overhead; a speed-up needs more hardware.

Run: uv run python benchmarks/bench_distributed.py [--epochs N] [--rounds N] [--batch-size N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "resources" / "examples" / "seed_cnn.convas"
CONFIGS = {
    "one process": [],
    "--local-workers 2": ["--local-workers", "2"],
    "mirrored, 2 logical CPUs": ["--distribute", "mirrored", "--devices", "CPU:0,CPU:1"],
}


def run(extra: list[str], epochs: int, batch: int, folder: Path) -> tuple[list[float], float]:
    """The per-epoch samples/s (first epoch left out) and the process's wall time."""
    out = folder / "m.keras"
    command = [sys.executable, "-m", "engine.cli", "train", str(SEED), "--epochs", str(epochs),
               "--batch-size", str(batch), "--seed", "0", "--out", str(out), "--progress", "json", *extra]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(extra) or 'one process'} failed ({proc.returncode}):\n{proc.stderr}")
    epochs_seen = [json.loads(line) for line in proc.stdout.splitlines() if '"event": "epoch"' in line]
    rates = [float(e["logs"]["samples_per_s"]) for e in epochs_seen[1:]]
    return rates, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in CONFIGS}
    walls: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, extra in CONFIGS.items():
                got, wall = run(extra, args.epochs, args.batch_size, Path(tmp))
                rates[name] += got
                walls[name].append(wall)
                print(f"  round {round_ + 1}: {name:<26} {statistics.median(got):8.0f} samples/s  "
                      f"(process {wall:.1f} s)", flush=True)
    base = statistics.median(rates["one process"])
    print(f"\nSeed CNN on Digits, global batch {args.batch_size}, {args.epochs} epochs (first left out), "
          f"{args.rounds} round(s); median training samples/s and ratio to one process:")
    for name in CONFIGS:
        median = statistics.median(rates[name])
        print(f"  {name:<26} {median:8.0f} samples/s   ×{median / base:.2f}   "
              f"process wall time {statistics.median(walls[name]):.1f} s")


if __name__ == "__main__":
    main()
