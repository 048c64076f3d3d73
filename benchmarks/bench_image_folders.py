"""Image folders at scale: Convas's folder loader and file pipeline against Keras's own
``image_dataset_from_directory`` (+ ``prefetch(AUTOTUNE)``) on the same folders (64×64 RGB JPEGs,
10 classes), every figure measured in a fresh child process and printed beside Keras's from the
same run:

1. Index: listing the folder into a dataset (Convas ``load_image_folder``, cold: no index cache,
   and warm; Keras ``image_dataset_from_directory``), at 10,000 and 100,000 files.
2. Time to the first batch (batch 64, shuffled), from the call to the first batch out, warm
   index. Goal: Convas ≤ Keras at 100,000 files.
3. Throughput: the same small CNN trained with ``model.fit`` on each pipeline over the 10,000
   folder, 1 epoch, timed from the 20th batch to the end (graph tracing left out); runs
   alternate Keras, Convas, ... Goal: Convas / Keras ≥ 0.95.
4. Memory: peak RSS (``ru_maxrss``) of a child training N batches on the Convas pipeline of the
   10,000 and of the 100,000 folder (and of Keras's, for reference). Goal: 100k ≤ 1.3 × 10k.
5. ImageNet size: 1,281,167 files in 1,000 class folders (hard links, one JPEG per class: the
   listing never opens a file, so links cost what files cost), indexed cold and warm. Goal:
   < 10 s warm.

The folders are generated once into /tmp/convas-bench-folders (100,000 copies of 1,000
distinct JPEGs; the 1.28 M folder is hard links) and reused by later runs; delete it to
regenerate (generating takes a few minutes).

Run: uv run python benchmarks/bench_image_folders.py [--quick] [--skip-imagenet]
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
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = Path("/tmp/convas-bench-folders")
SIZE, CLASSES, BATCH = 64, 10, 64
IMAGENET_FILES, IMAGENET_CLASSES = 1_281_167, 1000


# ---------------------------------------------------------------------------------------------
# The folders


def make_sources(folder: Path, count: int = 1000) -> list[Path]:
    """``count`` distinct 64×64 RGB JPEGs (smooth colours and a little noise, ~2 KB each)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = sorted(folder.glob("*.jpg"))
    if len(done) == count:
        return done
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, SIZE, dtype=np.float32)
    for i in range(count):
        colour = rng.random(3, dtype=np.float32)
        image = (ramp[:, None, None] * colour + ramp[None, :, None] * (1 - colour)) * 200
        image = image + rng.normal(0, 12, (SIZE, SIZE, 3))
        data = tf.io.encode_jpeg(np.clip(image, 0, 255).astype(np.uint8), quality=90).numpy()
        (folder / f"{i:04d}.jpg").write_bytes(data)
    return sorted(folder.glob("*.jpg"))


def make_folder(count: int) -> Path:
    """A folder of ``count`` JPEGs in 10 class folders (copies of the sources)."""
    root = DATA / f"images-{count}"
    marker = root / ".complete"
    if marker.exists():
        return root
    sources = make_sources(DATA / "sources")
    shutil.rmtree(root, ignore_errors=True)
    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True)
    for i in range(count):
        shutil.copyfile(sources[i % len(sources)], root / f"class{i % CLASSES}" / f"img{i:07d}.jpg")
    marker.write_text("ok")
    return root


def make_imagenet() -> Path:
    """1,281,167 hard links in 1,000 class folders (each class's to one JPEG: a file may have
    at most 65,000 links on ext4)."""
    root = DATA / "imagenet-links"
    marker = root / ".complete"
    if marker.exists():
        return root
    sources = make_sources(DATA / "sources")
    shutil.rmtree(root, ignore_errors=True)
    for c in range(IMAGENET_CLASSES):
        folder = root / f"n{c:08d}"
        folder.mkdir(parents=True)
        for i in range(c, IMAGENET_FILES, IMAGENET_CLASSES):
            os.link(sources[c], folder / f"n{c:08d}_{i}.JPEG")
    marker.write_text("ok")
    return root


# ---------------------------------------------------------------------------------------------
# Child processes: each prints one JSON object on its last line


def child(args: list[str], cache: str) -> dict:
    env = dict(os.environ, CONVAS_CACHE_DIR=cache, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def convas_batches(root: str, shuffle: bool = True):
    from engine.datasets import load_image_folder
    from engine.task_data import task_data
    from engine.tasks import Task

    ds = load_image_folder(root, (SIZE, SIZE, 3), validation_split=0)
    return task_data(ds.train, Task.CLASSIFICATION).as_tf_dataset(BATCH, shuffle=shuffle, seed=0), len(ds.train)


def keras_batches(root: str, shuffle: bool = True):
    import keras
    import tensorflow as tf

    data = keras.utils.image_dataset_from_directory(root, image_size=(SIZE, SIZE), batch_size=BATCH,
                                                    shuffle=shuffle, seed=0, verbose=False)
    return data.map(lambda x, y: (x / 255.0, y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def small_cnn():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(CLASSES, activation="softmax")])


def run_child(what: str, root: str, extra: list[str]) -> dict:
    import tensorflow as tf  # imported before the clock starts, for both sides

    tf.constant(0)
    if what == "index":
        start = time.perf_counter()
        if extra[0] == "convas":
            from engine.datasets import load_image_folder

            count = len(load_image_folder(root, (SIZE, SIZE, 3), validation_split=0).train)
        else:
            import keras

            data = keras.utils.image_dataset_from_directory(root, image_size=(SIZE, SIZE), batch_size=BATCH,
                                                            shuffle=True, seed=0, verbose=False)
            count = len(data.file_paths)
        return {"seconds": time.perf_counter() - start, "count": count}
    if what == "first":
        start = time.perf_counter()
        data = convas_batches(root)[0] if extra[0] == "convas" else keras_batches(root)
        next(iter(data))
        return {"seconds": time.perf_counter() - start}
    if what == "train":
        import keras

        batches = int(extra[1])
        data = convas_batches(root)[0] if extra[0] == "convas" else keras_batches(root)
        times: list[float] = []

        class Clock(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                times.append(time.perf_counter())

        model = small_cnn()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(data.repeat().take(batches) if batches else data, epochs=1, verbose=0, callbacks=[Clock()])
        skip = 20
        rate = (len(times) - 1 - skip) * BATCH / (times[-1] - times[skip])
        return {"samples_per_s": rate, "batches": len(times), "peak_mb": peak_rss_mb()}
    if what == "scan":
        from engine import folder_index

        folders = sorted(p for p in Path(root).iterdir() if p.is_dir())
        start = time.perf_counter()
        count = sum(len(f.files) for f in folder_index.scan_images(folders))
        listed = time.perf_counter() - start
        from engine.datasets import load_image_folder

        start = time.perf_counter()
        ds = load_image_folder(root, (224, 224, 3), validation_split=0.2)
        return {"scan_seconds": listed, "load_seconds": time.perf_counter() - start, "count": count,
                "train": len(ds.train), "peak_mb": peak_rss_mb()}
    raise ValueError(what)


# ---------------------------------------------------------------------------------------------
# The figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="one round of each, fewer batches")
    parser.add_argument("--skip-imagenet", action="store_true", help="leave out the 1.28 M-file index")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child[0], args.child[1], args.child[2:])))
        return
    rounds = 1 if args.quick else 3
    small, large = make_folder(10_000), make_folder(100_000)
    cache = tempfile.mkdtemp(prefix="convas-bench-cache-")
    try:
        print(f"Folders: {small} and {large} (64×64 JPEG, {CLASSES} classes); Convas's cache in {cache}")
        print("\n1. Index (seconds from the call to a dataset; fresh child processes; median of "
              f"{rounds})")
        for root in (small, large):
            cold = [child(["index", str(root), "convas"], tempfile.mkdtemp(dir=cache))["seconds"]
                    for _ in range(rounds)]
            warm_cache = tempfile.mkdtemp(dir=cache)
            child(["index", str(root), "convas"], warm_cache)
            warm = [child(["index", str(root), "convas"], warm_cache)["seconds"] for _ in range(rounds)]
            keras = [child(["index", str(root), "keras"], cache)["seconds"] for _ in range(rounds)]
            k = statistics.median(keras)
            print(f"  {root.name:>14}: Keras {k:6.2f}   Convas cold {statistics.median(cold):6.2f} "
                  f"({statistics.median(cold) / k:.2f}×)   warm {statistics.median(warm):6.2f} "
                  f"({statistics.median(warm) / k:.2f}×)")

        print(f"\n2. Time to the first batch (batch {BATCH}, shuffled; warm index; median of {rounds})")
        for root in (small, large):
            warm_cache = tempfile.mkdtemp(dir=cache)
            child(["index", str(root), "convas"], warm_cache)
            ours = statistics.median(child(["first", str(root), "convas"], warm_cache)["seconds"]
                                     for _ in range(rounds))
            cold = child(["first", str(root), "convas"], tempfile.mkdtemp(dir=cache))["seconds"]
            keras = statistics.median(child(["first", str(root), "keras"], cache)["seconds"] for _ in range(rounds))
            print(f"  {root.name:>14}: Keras {keras:6.2f} s   Convas {ours:6.2f} s ({ours / keras:.2f}×; goal ≤ 1 "
                  f"at 100,000); cold index {cold:6.2f} s ({cold / keras:.2f}×)")

        print(f"\n3. Throughput, small CNN, model.fit, 1 epoch of {small.name} (samples/s from batch 20; "
              f"{rounds} alternating rounds)")
        warm_cache = tempfile.mkdtemp(dir=cache)
        rates: dict[str, list[float]] = {"keras": [], "convas": []}
        for r in range(rounds):
            for side in ("keras", "convas"):
                rates[side].append(child(["train", str(small), side, "0"], warm_cache)["samples_per_s"])
            print(f"  round {r + 1}: Keras {rates['keras'][-1]:7.1f}   Convas {rates['convas'][-1]:7.1f}   "
                  f"({rates['convas'][-1] / rates['keras'][-1]:.3f})")
        k, c = statistics.median(rates["keras"]), statistics.median(rates["convas"])
        print(f"  median: Keras {k:.1f}, Convas {c:.1f} samples/s; Convas / Keras {c / k:.3f} (goal ≥ 0.95)")

        batches = 150 if args.quick else 400
        print(f"\n4. Peak RSS of a child training {batches} batches (MB)")
        peaks: dict[tuple[str, str], float] = {}
        for root in (small, large):
            for side in ("convas", "keras"):
                peaks[(root.name, side)] = child(["train", str(root), side, str(batches)], warm_cache)["peak_mb"]
        for side in ("convas", "keras"):
            a, b = peaks[(small.name, side)], peaks[(large.name, side)]
            print(f"  {side:>6}: 10,000 images {a:7.0f}   100,000 images {b:7.0f}   ratio {b / a:.3f}"
                  + ("  (goal ≤ 1.3)" if side == "convas" else ""))

        if not args.skip_imagenet:
            imagenet = make_imagenet()
            print(f"\n5. ImageNet size: {imagenet} ({IMAGENET_FILES:,} hard links, {IMAGENET_CLASSES} classes)")
            big_cache = tempfile.mkdtemp(dir=cache)
            cold = child(["scan", str(imagenet)], big_cache)
            warm = [child(["scan", str(imagenet)], big_cache) for _ in range(rounds)]
            keras = child(["index", str(imagenet), "keras"], cache)["seconds"]
            w = statistics.median(r["load_seconds"] for r in warm)
            print(f"  cold: listing {cold['scan_seconds']:.2f} s; load_image_folder (listing cached) "
                  f"{cold['load_seconds']:.2f} s; {cold['count']:,} files")
            print(f"  warm: listing {statistics.median(r['scan_seconds'] for r in warm):.2f} s; "
                  f"load_image_folder {w:.2f} s (goal < 10 s); peak RSS {warm[0]['peak_mb']:.0f} MB")
            print(f"  Keras image_dataset_from_directory: {keras:.2f} s (Convas warm / Keras {w / keras:.2f})")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
