"""Hostile design files: each class of attack is generated here, and each must end in a prompt,
clear :class:`FileFormatError` (or be read safely), never in a crash, a hang or gigabytes of memory.

- nesting: a layer argument nested hundreds (or a hundred thousand) levels deep, in a ``.convas``
  project, a ``.keras`` archive's ``config.json`` and a Keras ``.json`` file;
- zip bombs: ``.keras`` members whose archive directory lies about their size, or that inflate
  far beyond anything real (``config.json`` and Convas's own ``convas.json``), deflate and bzip2;
- files that are not files: a named pipe called ``.convas``, ``.keras`` or ``.json``;
- a multi-gigabyte weights file beside a project, which a summary must never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine import weights as weights_module
from engine.errors import FileFormatError
from engine.examples import example_path
from engine.files import has_weights, load_design
from engine.keras_import import MAX_CONFIG_BYTES, load_keras_design
from engine.project_file import (
    MAX_ARGUMENT_NESTING, MAX_NESTING, lists_to_tuples, load_project, nesting_depth, save_project,
    weights_path)
from engine.weights import kept_weights

MB = 1 << 20
MEMORY_LIMIT = 200 * MB


# --- nesting -----------------------------------------------------------------------------------

def nested_text(kinds: list[str], leaf: str = "3") -> str:
    """JSON text of a value nested ``len(kinds)`` levels deep: "l" a list, "d" an object."""
    opening = "".join("[" if k == "l" else '{"k": ' for k in kinds)
    return opening + leaf + "".join("]" if k == "l" else "}" for k in reversed(kinds))


def keras_config(kernel_size: Any) -> dict[str, Any]:
    return {"class_name": "Sequential", "module": "keras", "config": {"name": "net", "layers": [
        {"class_name": "InputLayer", "module": "keras.layers", "registered_name": None,
         "config": {"name": "input_layer", "batch_shape": [None, 28, 28, 1], "dtype": "float32"}},
        {"class_name": "Conv2D", "module": "keras.layers", "registered_name": None,
         "config": {"name": "conv2d", "filters": 8, "kernel_size": kernel_size, "strides": [1, 1],
                    "activation": "relu"}},
        {"class_name": "Flatten", "module": "keras.layers", "registered_name": None,
         "config": {"name": "flatten"}},
    ]}}


def write_design(tmp_path: Path, fmt: str, argument_text: str) -> Path:
    """A design file of format ``fmt`` whose layer conv2d has ``argument_text`` as kernel_size."""
    marker = '"@ARGUMENT@"'
    if fmt in ("convas", "convas-as-json"):
        doc = json.loads(example_path("seed_cnn").read_text(encoding="utf-8"))
        conv = next(n for n in doc["design"]["nodes"] if n["name"] == "conv2d")
        conv["args"]["kernel_size"] = "@ARGUMENT@"
        text = json.dumps(doc).replace(marker, argument_text)
        path = tmp_path / ("net.convas" if fmt == "convas" else "net.json")
        path.write_text(text, encoding="utf-8")
        return path
    text = json.dumps(keras_config("@ARGUMENT@")).replace(marker, argument_text)
    if fmt == "keras-json":
        path = tmp_path / "net.json"
        path.write_text(text, encoding="utf-8")
        return path
    path = tmp_path / "net.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", text)
    return path


FORMATS = ["convas", "convas-as-json", "keras-zip", "keras-json"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_files_built_here_load_when_the_argument_is_ordinary(tmp_path: Path, fmt: str):
    assert load_design(write_design(tmp_path, fmt, "[3, 3]")).nodes["conv2d"].args["kernel_size"] == (3, 3)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(FORMATS),
       kinds=st.lists(st.sampled_from("ld"), min_size=MAX_ARGUMENT_NESTING + 1, max_size=600))
def test_an_argument_nested_too_deep_is_refused_naming_file_layer_and_argument(tmp_path: Path, fmt: str,
                                                                                  kinds: list[str]):
    path = write_design(tmp_path, fmt, nested_text(kinds))
    with pytest.raises(FileFormatError) as info:
        load_design(path)
    message = str(info.value)
    assert message.startswith(path.name), message
    assert (f"layer 'conv2d', argument 'kernel_size': nested {len(kinds)} levels deep; Keras arguments "
            f"nest at most {MAX_ARGUMENT_NESTING}") in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_hundred_thousand_levels_are_refused_with_line_and_column(tmp_path: Path, fmt: str):
    path = write_design(tmp_path, fmt, nested_text(["l"] * 100_000))
    with pytest.raises(FileFormatError) as info:
        load_design(path)
    message = str(info.value)
    assert message.startswith(path.name) and "nested too deeply" in message, message
    assert f"more than {MAX_NESTING} levels at line 1, column" in message


def test_deep_nesting_outside_any_argument_names_the_place(tmp_path: Path):
    doc = json.loads(example_path("seed_cnn").read_text(encoding="utf-8"))
    doc["training"] = {"notes": "@DEEP@"}
    path = tmp_path / "net.convas"
    path.write_text(json.dumps(doc).replace('"@DEEP@"', nested_text(["l"] * 300)), encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"net\.convas: training\.notes\[0\]\[0\].*: nested 302 levels "
                                              rf"deep; Convas reads files nested at most {MAX_NESTING}"):
        load_project(path)


@given(depth=st.integers(0, 50_000))
@settings(max_examples=10, deadline=None)
def test_lists_to_tuples_and_nesting_depth_never_recurse(depth: int):
    value: Any = 7
    for i in range(depth):
        value = [value] if i % 3 else {"k": value}
    converted = lists_to_tuples(value)
    assert nesting_depth(converted) == depth == nesting_depth(value)
    inner = converted
    while isinstance(inner, (tuple, dict)):
        inner = inner[0] if isinstance(inner, tuple) else inner["k"]
    assert inner == 7


@pytest.mark.parametrize("suffix", [".convas", ".json"])
def test_an_endless_text_file_is_refused_after_the_cap(tmp_path: Path, suffix: str,
                                                       monkeypatch: pytest.MonkeyPatch):
    import engine.project_file

    monkeypatch.setattr(engine.project_file, "MAX_TEXT_BYTES", MB)
    path = tmp_path / f"huge{suffix}"
    with open(path, "wb") as fh:
        fh.write(b'{"format": "convas", "padding": "')
        fh.truncate(64 * MB)  # sparse: no disk used
    peak, error = peak_memory(lambda: load_design(path))
    assert isinstance(error, FileFormatError) and peak < 8 * MB, (peak, error)
    assert str(error) == (f"{path.name} is larger than 1 MB, the most Convas reads of a design file; no real "
                          "design is that large")


# --- zip bombs ---------------------------------------------------------------------------------

BOMB_BYTES = 256 * MB  # far above MEMORY_LIMIT: reading it whole shows in the peak


def zip_with(path: Path, members: dict[str, bytes | int], method: int) -> Path:
    """A zip archive whose members are bytes (stored, as Keras stores them) or an int: that many
    zero bytes, compressed with ``method`` as they are streamed in."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            if isinstance(content, bytes):
                archive.writestr(name, content)
                continue
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            with archive.open(info, "w") as member:
                block = bytes(MB)
                for _ in range(content // MB):
                    member.write(block)
    return path


def claim_size(path: Path, member: str, claimed: int) -> None:
    """Make the archive's central directory claim that ``member`` inflates to ``claimed`` bytes."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46:at + 46 + name_length]) == name:
            struct.pack_into("<L", data, at + 24, claimed)
            path.write_bytes(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{member} not in {path}")


def peak_memory(action: Callable[[], Any]) -> tuple[int, BaseException | None]:
    """The most memory Python held while ``action`` ran, and what it raised."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    error = None
    try:
        action()
    except BaseException as exc:  # noqa: BLE001 - returned to the test, which judges it
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


CONFIG = json.dumps(keras_config([3, 3])).encode()
METHODS = {"deflate": zipfile.ZIP_DEFLATED, "bzip2": zipfile.ZIP_BZIP2}


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """(member, method) → a .keras archive where that member is 256 MB of zeros."""
    folder = tmp_path_factory.mktemp("bombs")
    out = {}
    for method_name, method in METHODS.items():
        out["config.json", method_name] = zip_with(folder / f"config-{method_name}.keras",
                                                   {"config.json": BOMB_BYTES}, method)
        out["convas.json", method_name] = zip_with(folder / f"convas-{method_name}.keras",
                                                   {"config.json": CONFIG, "convas.json": BOMB_BYTES}, method)
    return out


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("member", ["config.json", "convas.json"])
@pytest.mark.parametrize("claimed", [1000, MAX_CONFIG_BYTES // 2, None], ids=["claims-1000", "claims-32MB", "honest"])
def test_a_zip_bomb_costs_little_memory_and_says_which_member(tmp_path: Path, bombs, member: str, method: str,
                                                               claimed: int | None):
    path = tmp_path / "bomb.keras"
    path.write_bytes(bombs[member, method].read_bytes())
    if claimed is not None:
        claim_size(path, member, claimed)
    peak, error = peak_memory(lambda: load_design(path))
    assert peak < MEMORY_LIMIT, f"{peak / MB:.0f} MB"
    if member == "convas.json" and (method == "bzip2" or claimed is not None):
        # Not too large, but damaged (it does not match its directory) or compressed as Convas
        # never writes it: Convas's own entry is then ignored, unread, and the Keras config is the
        # truth, as for any damaged entry.
        assert error is None and peak < MEMORY_LIMIT // 4
        return
    assert isinstance(error, FileFormatError), repr(error)
    message = str(error)
    assert message.startswith("bomb.keras") and member in message, message
    if method == "bzip2":
        assert "compressed with bzip2" in message
    elif claimed is None:
        assert f"inflates to more than {MAX_CONFIG_BYTES // MB} MB" in message
    else:
        assert "CRC" in message  # what it holds is not what its directory describes


def test_members_of_real_size_still_read(tmp_path: Path):
    path = zip_with(tmp_path / "ok.keras", {"config.json": CONFIG, "model.weights.h5": 3 * MB},
                    zipfile.ZIP_DEFLATED)
    assert list(load_keras_design(path).nodes) == ["input_layer", "conv2d", "flatten"]
    assert has_weights(path)


# --- files that are not files -------------------------------------------------------------------

READERS: dict[str, Callable[[Path], Any]] = {
    "load_design": load_design, "load_project": load_project, "load_keras_design": load_keras_design,
    "has_weights": has_weights, "kept_weights": kept_weights,
}


def outcome_on_a_pipe(reader: Callable[[Path], Any], path: Path) -> Any:
    """What ``reader`` returns or raises for the named pipe ``path``; fails the test if it waits
    (and then opens the pipe's other end, so that the reader lets go)."""
    outcome: list[Any] = []

    def read() -> None:
        try:
            outcome.append(reader(path))
        except BaseException as exc:  # noqa: BLE001 - judged by the caller
            outcome.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail(f"{reader.__name__} waited on a named pipe")
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are a POSIX thing")
@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("suffix", [".convas", ".keras", ".json"])
def test_a_named_pipe_is_refused_at_once(tmp_path: Path, suffix: str, reader: str):
    path = tmp_path / f"pipe{suffix}"
    os.mkfifo(path)
    outcome = outcome_on_a_pipe(READERS[reader], path)
    if reader == "has_weights":
        assert outcome is False
    elif reader == "kept_weights" and suffix != ".convas":
        assert outcome == (None, [])
    else:
        assert isinstance(outcome, FileFormatError), repr(outcome)
        assert "named pipe" in str(outcome) and path.name in str(outcome)


# --- weights beside a project -------------------------------------------------------------------

@pytest.fixture
def hashing(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the SHA-256 objects made (each hashes one weights file), with no file remembered."""
    monkeypatch.setattr(weights_module, "_FILE_HASHES", {})
    made: list[int] = []
    real = hashlib.sha256

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "sha256", counting)
    return made


def project_with_weights(tmp_path: Path, content: bytes | int, sha256: str | None = None,
                         recorded_bytes: int | None = None) -> Path:
    """A project whose weights entry names a file beside it holding ``content`` (bytes, or an
    int: a sparse file of that many bytes, which takes no disk)."""
    path = tmp_path / "net.convas"
    save_project(path, load_project(example_path("seed_cnn")).design)
    weights = weights_path(path)
    if isinstance(content, bytes):
        weights.write_bytes(content)
        size = len(content)
    else:
        with open(weights, "wb") as fh:
            fh.truncate(content)
        size = content
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["weights"] = {"file": weights.name, "sha256": sha256 or "0" * 64,
                      "bytes": size if recorded_bytes is None else recorded_bytes, "origin": "trained"}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_a_summary_never_reads_a_huge_weights_file(tmp_path: Path, hashing: list[int], capsys):
    from engine.cli import main

    path = project_with_weights(tmp_path, 2 << 30)  # 2 GB, sparse
    assert main(["summary", str(path)]) == 0
    assert "conv2d" in capsys.readouterr().out
    project = load_project(path)
    assert project.weights is not None and project.weights.file == weights_path(path)
    assert load_design(path).nodes and hashing == []


def test_weights_are_checked_when_asked_and_hashed_once_per_file_state(tmp_path: Path, hashing: list[int]):
    content = b"weights" * 1000
    path = project_with_weights(tmp_path, content, hashlib.new("sha256", content).hexdigest())
    project = load_project(path)
    assert hashing == []
    assert project.warnings == [] and project.warnings == []
    assert kept_weights(path)[1] == [] and kept_weights(path)[1] == []
    assert len(hashing) == 1  # one file state, hashed once in this process
    changed = weights_path(path)
    changed.write_bytes(content.upper())  # same size, other bytes, a new modification time
    os.utime(changed, ns=(1, 1))
    (warning,) = kept_weights(path)[1]
    assert "has changed since the project was saved" in warning and len(hashing) == 2


def test_weights_of_another_size_are_changed_without_reading_them(tmp_path: Path, hashing: list[int]):
    path = project_with_weights(tmp_path, 2 << 30, recorded_bytes=1234)
    (warning,) = load_project(path).warnings
    assert "has changed since the project was saved" in warning and hashing == []


def test_saving_a_project_remembers_the_hash_it_wrote(tmp_path: Path, hashing: list[int]):
    from engine.weights import WeightsSource

    source = tmp_path / "trained.keras"
    source.write_bytes(b"not really a model, but bytes to keep")
    path = tmp_path / "kept.convas"
    save_project(path, load_project(example_path("seed_cnn")).design, weights=WeightsSource.imported(source))
    assert load_project(path).warnings == [] and len(hashing) == 1
