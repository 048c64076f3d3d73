"""What an export does to its destination: a cancelled export leaves it exactly as it was (and
no temporary file beside it), and a folder that cannot take a new file is refused before any
model is built."""

from __future__ import annotations

import dataclasses
import errno
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from engine.examples import seed_design
from engine.export.formats import FORMATS
from engine.export.run import ExportCancelled, ExportError, ExportOptions, export_model

pytestmark = pytest.mark.slow


def _cancel_once_verified(monkeypatch: pytest.MonkeyPatch, fmt: str) -> threading.Event:
    """An event that is set as soon as ``fmt``'s reload (the verification) has run: cancelling
    then reaches the export at its last step boundary, after the file is written and verified,
    just before it would be moved into place."""
    verified = threading.Event()
    real = FORMATS[fmt].reload

    def reload_then_cancel(path: Path, model: Any) -> Any:
        runner = real(path, model)
        verified.set()
        return runner

    monkeypatch.setitem(FORMATS, fmt, dataclasses.replace(FORMATS[fmt], reload=reload_then_cancel))
    return verified


def _no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make building a model fail the test: the checks under test must come first."""
    def build(*_args: Any, **_kwargs: Any) -> Any:
        pytest.fail("the model was built although the export had to stop before building")

    monkeypatch.setattr("engine.keras_build.build_keras_model", build)


def test_cancel_before_the_move_keeps_the_existing_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m.keras"
    out.write_bytes(b"previous export \x00\x01")
    verified = _cancel_once_verified(monkeypatch, "keras")
    with pytest.raises(ExportCancelled, match="export cancelled; nothing was written"):
        export_model(seed_design(), out, ExportOptions("keras"), cancelled=verified.is_set)
    assert verified.is_set(), "the export stopped before it verified the file"
    assert out.read_bytes() == b"previous export \x00\x01"
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]  # no .part or .probe file left


def test_cancel_before_the_move_writes_no_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    verified = _cancel_once_verified(monkeypatch, "keras")
    with pytest.raises(ExportCancelled):
        export_model(seed_design(), tmp_path / "m.keras", ExportOptions("keras"), cancelled=verified.is_set)
    assert list(tmp_path.iterdir()) == []


def test_cancel_keeps_an_existing_savedmodel_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "saved"
    out.mkdir()
    (out / "old.txt").write_text("old")
    verified = _cancel_once_verified(monkeypatch, "savedmodel")
    with pytest.raises(ExportCancelled):
        export_model(seed_design(), out, ExportOptions("savedmodel"), cancelled=verified.is_set)
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]
    assert [p.name for p in out.iterdir()] == ["old.txt"] and (out / "old.txt").read_text() == "old"


def test_an_export_cancelled_before_it_starts_builds_nothing(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _no_build(monkeypatch)
    with pytest.raises(ExportCancelled):
        export_model(seed_design(), tmp_path / "m.keras", ExportOptions("keras"), cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == []


def test_a_python_export_honours_cancel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled once its model is built, the script is neither verified nor written."""
    import engine.export.python_source
    import engine.keras_build

    built = threading.Event()
    real_build = engine.keras_build.build_keras_model

    def build_then_cancel(*args: Any, **kwargs: Any) -> Any:
        model = real_build(*args, **kwargs)
        built.set()
        return model

    def verify(*_args: Any, **_kwargs: Any) -> Any:
        pytest.fail("a cancelled Python export still ran its verification")

    monkeypatch.setattr(engine.keras_build, "build_keras_model", build_then_cancel)
    monkeypatch.setattr(engine.export.python_source, "verify_python_source", verify)
    with pytest.raises(ExportCancelled):
        export_model(seed_design(), tmp_path / "m.py", ExportOptions("python"), cancelled=built.is_set)
    assert built.is_set() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt, name", [("keras", "m.keras"), ("savedmodel", "saved"), ("python", "m.py")])
def test_a_folder_that_refuses_new_files_is_refused_before_building(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, name: str) -> None:
    """A read-only mount (simulated: creating the probe file fails with EROFS, as it does for
    root too) is reported with the system's reason, before any model is built."""
    real_open = os.open
    probes = []

    def read_only(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith(".probe"):
            probes.append(Path(path))
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    _no_build(monkeypatch)
    out = tmp_path / name
    with pytest.raises(ExportError, match=r"cannot write .*: Read-only file system; choose another folder"):
        export_model(seed_design(), out, ExportOptions(fmt))
    assert [p.parent for p in probes] == [tmp_path] and probes[0].name.startswith(f".{name}.")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_the_system_cannot_write_is_refused_before_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """``/proc`` exists and, for root, passes ``os.access(W_OK)``; creating a file there fails."""
    _no_build(monkeypatch)
    with pytest.raises(ExportError, match=r"cannot write /proc/m\.keras: .*; choose another folder"):
        export_model(seed_design(), "/proc/m.keras", ExportOptions("keras"))


def test_the_probe_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writable folder passes the check, and the probe file is gone before building starts."""
    seen: list[list[str]] = []

    def build(*_args: Any, **_kwargs: Any) -> Any:
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        raise ExportError("stop here")

    monkeypatch.setattr("engine.keras_build.build_keras_model", build)
    with pytest.raises(ExportError, match="stop here"):
        export_model(seed_design(), tmp_path / "m.keras", ExportOptions("keras"))
    assert seen == [[]]
