"""Training on a .npz larger than it used to fit: peak memory and time to the first batch.

Writes .npz files of 64×64×3 uint8 images with 10 classes (20,000 images: 246 MB; 100,000:
1.2 GB; uncompressed, as ``np.savez`` writes them) into a temporary folder, then trains a small
CNN for ``--batches`` batches of 64 in a fresh child process per run, two ways:

(a) Convas: ``engine.data_source.load_dataset`` (20 % validation) and the training pipeline
    (``Split.as_tf_dataset``, shuffled), as ``convas train`` feeds ``model.fit``;
(b) plain: ``np.load(path)`` and ``model.fit(x, y, batch_size=64)`` on the arrays as loaded
    (the model starts with ``Rescaling(1/255)``, the cheapest way to feed bytes).

Each child reports its peak resident memory (``ru_maxrss``, which counts the file's pages it
has mapped and touched), the resident memory after importing TensorFlow (the floor every run
pays), its anonymous and file-backed resident memory at the end (/proc/self/status: file pages
are the page cache, which the system can drop) and the time from the start of loading to the
end of the first training batch (graph tracing included, for both). Printed per size: the
figures, Convas's over plain, and the goal: peak ≤ the array's stored size + 1 GB, and time to
the first batch ≤ plain's.

Run: uv run python benchmarks/bench_npz_memory.py [--sizes 20000,100000] [--batches 50 | 0 for an epoch]
     [--repeat 1] [--ways plain,convas]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIDE, CHANNELS, CLASSES, BATCH = 64, 3, 10, 64
GIB = 1 << 30


def write_npz(path: Path, n: int, seed: int = 0) -> int:
    """An uncompressed .npz of ``n`` random images and labels, written piece by piece (so that
    this process never holds the array); the images' stored size in bytes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (n, SIDE, SIDE, CHANNELS)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_2_0(member, {"descr": "|u1", "fortran_order": False, "shape": shape})
            step = 4096
            for start in range(0, n, step):
                member.write(rng.integers(0, 256, size=(min(step, n - start), *shape[1:]), dtype=np.uint8).tobytes())
        with archive.open("y.npy", "w") as member:
            np.lib.format.write_array(member, (np.arange(n) % CLASSES).astype(np.int64))
    return n * SIDE * SIDE * CHANNELS


def memory_status() -> dict[str, int]:
    """Resident memory of this process by kind, in bytes (Linux's /proc/self/status)."""
    found: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024
    return found


def child(mode: str, path: str, batches: int) -> None:
    """One run in this process: print a JSON line of its figures."""
    import resource

    import keras
    import numpy as np
    import tensorflow as tf

    floor = memory_status()["VmRSS"]
    first: list[float] = []

    class FirstBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if not first:
                first.append(time.perf_counter())

    def model(rescale: bool) -> keras.Model:
        layers = [keras.Input((SIDE, SIDE, CHANNELS))]
        layers += [keras.layers.Rescaling(1 / 255)] if rescale else []
        layers += [keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
                   keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
                   keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(CLASSES, activation="softmax")]
        built = keras.Sequential(layers)
        built.compile("adam", "sparse_categorical_crossentropy")
        return built

    keras.utils.set_random_seed(0)
    tf.constant(0)  # TensorFlow's runtime started before the clock, for both
    start = time.perf_counter()
    if mode == "convas":
        from engine.data_source import load_dataset

        data = load_dataset(path, (SIDE, SIDE, CHANNELS), 0.2, 0)
        net = model(rescale=False)
        net.fit(data.train.as_tf_dataset(BATCH, shuffle=True, seed=0), epochs=1, steps_per_epoch=batches or None,
                verbose=0, shuffle=False, callbacks=[FirstBatch()])
    else:
        with np.load(path) as arrays:
            x, y = arrays["x"], arrays["y"]
        net = model(rescale=True)
        net.fit(x[:len(x) * 4 // 5], y[:len(y) * 4 // 5], batch_size=BATCH, epochs=1, steps_per_epoch=batches or None,
                verbose=0, callbacks=[FirstBatch()])  # the same 80 % Convas trains on
    end = time.perf_counter()
    status = memory_status()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"first": first[0] - start, "total": end - start, "peak": peak, "floor": floor,
                      "anon": status.get("RssAnon", 0), "file": status.get("RssFile", 0)}))


def run(mode: str, path: Path, batches: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path), "--batches", str(batches)],
                         check=True, capture_output=True, text=True, cwd=str(ROOT))
    return json.loads(out.stdout.strip().splitlines()[-1])


def gb(count: float) -> str:
    return f"{count / GIB:5.2f} GB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000", help="numbers of images, comma-separated")
    parser.add_argument("--batches", type=int, default=50, help="training batches per run (0: one whole epoch)")
    parser.add_argument("--ways", default="plain,convas", help="which ways to run, comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="runs per way (medians are printed)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.batches)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    ways = [w.strip() for w in args.ways.split(",") if w.strip() in ("plain", "convas")]
    folder = Path(tempfile.mkdtemp(prefix="convas-npz-bench-"))
    try:
        amount = f"{args.batches} batches" if args.batches else "one whole epoch (80 % of the images)"
        print(f"Training a small CNN for {amount} of {BATCH} on {SIDE}×{SIDE}×{CHANNELS} uint8 "
              f".npz files (uncompressed), one fresh process per run, {args.repeat} run(s) per way")
        print("goal: peak ≤ stored + 1 GB, and time to the first batch ≤ plain np.load + model.fit")
        for n in sizes:
            path = folder / f"images_{n}.npz"
            stored = write_npz(path, n)
            results: dict[str, list[dict[str, float]]] = {way: [] for way in ways}
            for _ in range(args.repeat):
                for mode in ways:  # alternated, so that drift hits both
                    results[mode].append(run(mode, path, args.batches))
            med = {mode: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
                   for mode, runs in results.items()}
            print(f"\n{n:,} images, {gb(stored)} stored ({stored / 1e6:,.0f} MB)")
            print("  way       first batch   total     peak RSS   after import  end: anon / file-backed")
            for mode in ways:
                m = med[mode]
                print(f"  {mode:<8}  {m['first']:8.2f} s  {m['total']:6.2f} s  {gb(m['peak'])}   {gb(m['floor'])}"
                      f"      {gb(m['anon'])} / {gb(m['file'])}")
            limit = stored + GIB
            if "convas" in med:
                peak = med["convas"]["peak"]
                print(f"  convas peak {gb(peak)} vs goal ≤ {gb(limit)}: {'met' if peak <= limit else 'NOT met'}")
            if len(med) == 2:
                c, p = med["convas"], med["plain"]
                print(f"  convas / plain: first batch {c['first'] / p['first']:.2f}× "
                      f"({'met' if c['first'] <= p['first'] else 'NOT met'}), peak {c['peak'] / p['peak']:.2f}×")
            path.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
