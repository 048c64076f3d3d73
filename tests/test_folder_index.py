"""Image folders at scale: the cached folder index (engine.folder_index), the file pipeline's
per-epoch order, its handling of files that do not decode (named after the epoch, remembered for
the next load), GIF files and the sample cache (engine.image_pipeline)."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
from test_datasets import png_claiming, write_png

import engine.datasets as datasets
from engine import folder_index
from engine.datasets import Split, load_image_folder
from engine.image_pipeline import skipped_files, take_skipped


def gif_bytes(image: np.ndarray) -> bytes:
    """A GIF of an (h, w, 3) uint8 image of at most 256 colours (LZW codes kept 9 bits wide by
    a clear code every 200 pixels)."""
    h, w, _ = image.shape
    colours, index = np.unique(image.reshape(-1, 3), axis=0, return_inverse=True)
    palette = np.zeros((256, 3), np.uint8)
    palette[:len(colours)] = colours
    codes: list[int] = []
    for i, value in enumerate(index.ravel().tolist()):
        if i % 200 == 0:
            codes.append(256)
        codes.append(value)
    codes.append(257)
    bits = count = 0
    out = bytearray()
    for code in codes:
        bits |= code << count
        count += 9
        while count >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            count -= 8
    if count:
        out.append(bits & 0xFF)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + bytes(out[i:i + 255]) for i in range(0, len(out), 255))
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF7, 0, 0) + palette.tobytes()
            + b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x08" + blocks + b"\x00\x3b")


def make_classes(root, per_class=6, classes=("cats", "dogs"), size=(8, 8)):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            write_png(root / name / f"{i:02d}.png", rng.integers(0, 256, size=(*size, 3), dtype=np.uint8))
    return root


@pytest.fixture
def fresh_checks(tmp_path, monkeypatch):
    """A cache folder of the test's own, and an image-checks memory that starts empty."""
    monkeypatch.setenv("CONVAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "IMAGE_CHECKS", datasets.ImageChecks())


# ---------------------------------------------------------------- the index


def test_index_lists_like_rglob_and_is_cached_until_a_folder_changes(tmp_path, fresh_checks, monkeypatch):
    root = tmp_path / "data"
    (root / "a-b").mkdir(parents=True)
    (root / "a" / "deep").mkdir(parents=True)
    for name in ("a/1.png", "a/deep/2.JPG", "a-b/3.gif", "a/.hidden.png", "a/notes.txt", "a/4.bmp"):
        (root / name).write_bytes(b"x")
    (root / "a" / "dir.png").mkdir()
    os.symlink(root / "a-b", root / "a" / "link")  # a link to a folder is not followed (as rglob)
    expected = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in datasets.IMAGE_SUFFIXES
                      and not f.name.startswith("."))
    listing = folder_index.scan_images([root])[0]
    assert listing.files == [str(f) for f in expected] and listing.special == {}
    assert [f for f in datasets.image_files(root)] == expected

    scans: list[str] = []
    real = folder_index._scan_one
    monkeypatch.setattr(folder_index, "_scan_one", lambda folder, *a: scans.append(folder) or real(folder, *a))
    assert folder_index.scan_images([root])[0].files == listing.files and scans == []  # from the index
    (root / "a" / "deep" / "5.png").write_bytes(b"x")  # a sub-folder's time changes
    again = folder_index.scan_images([root])[0]
    assert scans and str(root / "a" / "deep" / "5.png") in again.files
    assert folder_index.scan_images([root], recursive=False)[0].files == []  # no images at the top
    (root / "empty").mkdir()
    for _ in range(2):  # listed, then from the index: an empty folder between two others
        a, empty, b = folder_index.scan_images([root / "a", root / "empty", root / "a-b"])
        assert (len(a.files), empty.files, b.files) == (4, [], [str(root / "a-b" / "3.gif")])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_index_names_pipes_and_broken_links_without_opening_them(tmp_path, fresh_checks):
    root = tmp_path / "data"
    root.mkdir()
    os.mkfifo(root / "pipe.png")
    os.symlink(root / "gone.png", root / "link.png")
    listing = folder_index.scan_images([root], use_cache=False)[0]
    assert listing.files == []
    assert listing.special == {str(root / "pipe.png"): "is a named pipe (FIFO), not a regular file",
                               str(root / "link.png"): "cannot be opened (No such file or directory)"}


# ---------------------------------------------------------------- the pipeline


@pytest.mark.slow  # alone it pays for importing TensorFlow (~10 s); ~1 s in the suite
def test_order_changes_every_epoch_repeats_by_seed_and_decodes_as_before(tmp_path, fresh_checks):
    root = make_classes(tmp_path / "pets", per_class=8)
    split = load_image_folder(root, (8, 8, 3), validation_split=0).train
    reference = split.images(np.arange(len(split)))  # decode_image_file, as previews see it

    def order(data):
        found = [next(i for i in range(len(split)) if np.array_equal(x.numpy(), reference[i])) for x, _ in data]
        return found

    data = split.tf_samples(shuffle=True, seed=3)
    first, second = order(data), order(data)
    assert sorted(first) == sorted(second) == list(range(16))  # every sample once, pixels identical
    assert first != second  # a new permutation each epoch
    assert order(split.tf_samples(shuffle=True, seed=3)) == first  # the same seed, the same orders
    assert order(split.tf_samples(shuffle=False)) == list(range(16))
    labels = [int(y) for _, y in split.tf_samples(shuffle=False)]
    assert labels == split.y.tolist()


def test_damaged_files_in_a_large_folder_are_skipped_named_and_remembered(tmp_path, fresh_checks, monkeypatch):
    monkeypatch.setattr(datasets, "UP_FRONT_CHECKS", 0)  # every folder counts as large
    root = make_classes(tmp_path / "pets", per_class=5)
    good = (root / "dogs" / "00.png").read_bytes()
    (root / "cats" / "cut.png").write_bytes(good[:len(good) // 2])
    (root / "dogs" / "huge.png").write_bytes(png_claiming(100_000, 100_000))
    (root / "dogs" / "empty.jpg").write_bytes(b"")
    ds = load_image_folder(root, (8, 8, 3), validation_split=0)
    assert len(ds.train) == 13 and ds.warnings == []  # nothing opened up front
    split = ds.train
    data = split.tf_samples(shuffle=True, seed=0)
    assert len(list(data)) == 10
    sentence = take_skipped(split)
    assert sentence is not None and sentence.startswith("Skipped 3 unreadable images: ")
    assert "cats/cut.png cannot be decoded (Invalid PNG data" in sentence
    assert "dogs/huge.png declares 100,000×100,000 pixels, more than the 50,000,000 Convas decodes" in sentence
    assert "dogs/empty.jpg is empty" in sentence
    assert len(list(data)) == 10 and take_skipped(split) is None  # named once; left out after
    assert len(skipped_files(split)) == 3

    monkeypatch.setattr(datasets, "IMAGE_CHECKS", datasets.ImageChecks())  # a new process
    again = load_image_folder(root, (8, 8, 3), validation_split=0)
    assert len(again.train) == 10 and again.warnings[0].startswith("Skipped 3 unreadable images: ")
    assert "cats/cut.png cannot be decoded" in again.warnings[0]
    (root / "cats" / "cut.png").write_bytes(good)  # repaired: fed again
    third = load_image_folder(root, (8, 8, 3), validation_split=0)
    assert len(third.train) == 11


def test_gif_images_are_read_for_grey_and_colour_inputs(tmp_path, fresh_checks):
    root = tmp_path / "gifs"
    picture = np.random.default_rng(1).integers(0, 4, size=(6, 7, 3), dtype=np.uint8) * 80
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        (root / name / "0.gif").write_bytes(gif_bytes(picture))
    assert datasets.image_size(root / "a" / "0.gif") == (7, 6)
    for channels in (3, 1):
        ds = load_image_folder(root, (6, 7, channels), validation_split=0)
        assert ds.warnings == [] and len(ds.train) == 2
        (x, _), = [(x.numpy(), y) for x, y in ds.train.as_tf_dataset(2).unbatch().take(1)]
        if channels == 3:
            np.testing.assert_allclose(x, picture / 255.0, atol=1e-6)
        assert x.shape == (6, 7, channels)


def test_the_sample_cache_reshuffles_every_epoch_and_is_reused(tmp_path, fresh_checks, monkeypatch):
    monkeypatch.setattr(datasets, "UP_FRONT_CHECKS", 0)
    root = make_classes(tmp_path / "pets", per_class=6)
    (root / "cats" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    plain = load_image_folder(root, (8, 8, 3), validation_split=0).train
    bad = plain.paths.index(str(root / "cats" / "bad.png"))
    good = [i for i in range(len(plain)) if i != bad]
    reference = {i: plain.images(i)[0] for i in good}

    def epoch(data):
        pairs = [(x.numpy(), int(y)) for x, y in data]
        return [next(i for i in good if np.array_equal(x, reference[i])) for x, _ in pairs], [y for _, y in pairs]

    for where in ("memory", str(tmp_path / "samples")):
        split = Split.from_files(plain.paths, plain.y, plain.image_shape)
        split.cache = where
        data = split.tf_samples(shuffle=True, seed=1)
        orders = [epoch(data) for _ in range(3)]
        for order, labels in orders:
            assert sorted(order) == good and labels == plain.y[order].tolist()
        assert len({tuple(o) for o, _ in orders}) == 3  # cached epochs are reshuffled too
        assert "bad.png" in take_skipped(split)
    stored = list((tmp_path / "samples").glob("convas-samples-*.u8"))
    assert len(stored) == 1 and stored[0].stat().st_size == 13 * 8 * 8 * 3  # N×H×W×C bytes
    reused = Split.from_files(plain.paths, plain.y, plain.image_shape)
    reused.cache = str(tmp_path / "samples")
    root.rename(tmp_path / "moved")  # a later run reads the cache, not the files
    order, _ = epoch(reused.tf_samples(shuffle=False))
    assert order == good


# ---------------------------------------------------------------- a cluster's shares

def _labels_fed(split, seed):
    return sorted(int(label) for _, label in split.tf_samples(shuffle=True, seed=seed))


def test_cluster_workers_each_read_their_own_share_of_every_epoch(tmp_path, fresh_checks, monkeypatch):
    """Split.shard (set by train() for a multi-worker run): the workers draw the same order and
    each reads every count-th sample of it, so across the cluster each sample is read once per
    epoch, and no worker decodes another's files; a damaged file is named only by the worker
    whose share held it, not missed by the others."""
    from dataclasses import replace

    monkeypatch.setattr(datasets, "UP_FRONT_CHECKS", 0)
    root = make_classes(tmp_path / "pets", per_class=7, classes=("a", "b", "c"))
    (root / "a" / "zz.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 50)
    files = load_image_folder(root, (8, 8, 3), validation_split=0).train
    files = replace(files, y=np.arange(len(files), dtype=np.int64))  # each sample's label: its index
    shares = [replace(files, shard=(i, 3)) for i in range(3)]
    fed = [_labels_fed(share, seed=4) for share in shares]
    everything = sorted(label for share in fed for label in share)
    damaged = next(i for i, path in enumerate(files.paths) if path.endswith("zz.png"))
    assert everything == [i for i in range(len(files)) if i != damaged]  # once each, the damaged one left out
    assert all(6 <= len(f) <= 8 for f in fed)  # 22 files: shares of 8, 7 and 7, less the damaged one
    named = [take_skipped(share) for share in shares]
    assert sum(n is not None for n in named) == 1 and "a/zz.png" in next(n for n in named if n)

    x = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4, 1)
    arrays = Split(x, np.arange(10, dtype=np.int64), rows=np.arange(10), x_full_scale=255.0)
    halves = [sorted(int(label) for _, label in replace(arrays, shard=(i, 2)).tf_samples(True, 1))
              for i in range(2)]
    assert sorted(halves[0] + halves[1]) == list(range(10)) and not set(halves[0]) & set(halves[1])
