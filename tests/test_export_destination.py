"""What an export does to its destination: a cancelled export leaves it exactly as it was (and
no temporary file beside it), a folder that cannot take a new file is refused before any
model is built, a destination that refuses the file (full, read-only) exits 2 whatever words
the error uses, what a killed write left behind is cleaned up (or put back) on the next one,
and a symlink's target is written, not the link."""

from __future__ import annotations

import dataclasses
import errno
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine.atomic import STALE_AFTER_S, clean_leftovers
from engine.examples import seed_design
from engine.export.formats import FORMATS
from engine.export.run import ExportCancelled, ExportError, ExportFailure, ExportOptions, export_model

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "resources" / "examples" / "seed_cnn.convas"
DEAD_PID = 4_206_649  # above Linux's largest pid_max (2**22): no process has it


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_cancel_before_the_move_writes_no_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    verified = _cancel_once_verified(monkeypatch, "keras")
    with pytest.raises(ExportCancelled):
        export_model(seed_design(), tmp_path / "m.keras", ExportOptions("keras"), cancelled=verified.is_set)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cancel_keeps_an_existing_savedmodel_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "saved"
    out.mkdir()
    (out / "old.txt").write_text("old")
    verified = _cancel_once_verified(monkeypatch, "savedmodel")
    with pytest.raises(ExportCancelled):
        export_model(seed_design(), out, ExportOptions("savedmodel"), cancelled=verified.is_set)
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]
    assert [p.name for p in out.iterdir()] == ["old.txt"] and (out / "old.txt").read_text() == "old"


@pytest.mark.slow
def test_an_export_cancelled_before_it_starts_builds_nothing(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _no_build(monkeypatch)
    with pytest.raises(ExportCancelled):
        export_model(seed_design(), tmp_path / "m.keras", ExportOptions("keras"), cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_the_system_cannot_write_is_refused_before_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """``/proc`` exists and, for root, passes ``os.access(W_OK)``; creating a file there fails."""
    _no_build(monkeypatch)
    with pytest.raises(ExportError, match=r"cannot write /proc/m\.keras: .*; choose another folder"):
        export_model(seed_design(), "/proc/m.keras", ExportOptions("keras"))


@pytest.mark.slow
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


# --- what a killed write leaves behind (simulated: the files are created directly) --------------

def _leftover(folder: Path, name: str, kind: str, pid: int = DEAD_PID, suffix: str = "",
              directory: bool = False) -> Path:
    path = folder / f".{name}.{pid}-a1b2c3.{kind}{suffix}"
    if directory:
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"graph")
    else:
        path.write_bytes(b"half a zip")
    return path


def test_a_killed_save_leaves_nothing_the_next_write_keeps(tmp_path: Path) -> None:
    (tmp_path / "m.keras").write_bytes(b"the model")
    partial = _leftover(tmp_path, "m.keras", "tmp", suffix=".keras")        # SIGKILL during a train save
    part = _leftover(tmp_path, "m.keras", "part", suffix=".keras")          # ... during an export
    probe = _leftover(tmp_path, "m.keras", "probe")
    legacy = tmp_path / ".m.keras.0badc0de.tmp.keras"                       # named by an older Convas
    legacy.write_bytes(b"half")
    live = _leftover(tmp_path, "m.keras", "tmp", pid=os.getppid(), suffix=".keras")  # a write under way
    other = _leftover(tmp_path, "other.keras", "tmp", suffix=".keras")      # another destination's
    notes = clean_leftovers(tmp_path / "m.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.keras", live.name, other.name])
    assert sorted(notes) == sorted(f"removed {p.name}, a partial copy of m.keras left by an interrupted write"
                                   for p in (partial, part, legacy))
    assert not probe.exists() and (tmp_path / "m.keras").read_bytes() == b"the model"
    assert clean_leftovers(tmp_path / "m.keras") == []


def test_an_old_leftover_goes_even_when_its_process_id_is_in_use(tmp_path: Path) -> None:
    """Process ids are reused (a container's convas is often pid 1): age decides then."""
    stale = _leftover(tmp_path, "m.keras", "tmp", pid=os.getppid(), suffix=".keras")
    hours_ago = time.time() - STALE_AFTER_S - 60
    os.utime(stale, (hours_ago, hours_ago))
    assert len(clean_leftovers(tmp_path / "m.keras")) == 1 and not stale.exists()


def test_a_savedmodel_moved_aside_is_put_back_when_the_destination_is_missing(tmp_path: Path) -> None:
    """Killed between the two renames of a folder swap: the old folder is under ``.sm.*.old``,
    the new (maybe unfinished) under ``.sm.*.part``, nothing at the destination."""
    old = _leftover(tmp_path, "sm", "old", directory=True)
    part = _leftover(tmp_path, "sm", "part", directory=True)
    notes = clean_leftovers(tmp_path / "sm")
    assert notes == [f"restored sm from {old.name}, where an interrupted write had moved it",
                     f"removed {part.name}, a partial copy of sm left by an interrupted write"]
    assert [p.name for p in tmp_path.iterdir()] == ["sm"]
    assert (tmp_path / "sm" / "saved_model.pb").read_bytes() == b"graph"


def test_a_backup_left_after_a_finished_swap_is_removed(tmp_path: Path) -> None:
    (tmp_path / "sm").mkdir()
    old = _leftover(tmp_path, "sm", "old", directory=True)
    assert clean_leftovers(tmp_path / "sm") == [
        f"removed {old.name}, the previous version of sm left by an interrupted write"]
    assert [p.name for p in tmp_path.iterdir()] == ["sm"]


def test_the_cli_says_what_it_cleaned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On the next run for the destination, first thing (here the source is missing, so the run
    stops right after)."""
    from engine.cli import main

    partial = _leftover(tmp_path, "m.keras", "tmp", suffix=".keras")
    code = main(["export", str(tmp_path / "missing.convas"), "--format", "keras", "--out", str(tmp_path / "m.keras")])
    err = capsys.readouterr().err
    assert code == 2 and not partial.exists()
    assert err.startswith(f"convas: removed {partial.name}, a partial copy of m.keras left by an interrupted write\n")


# --- the destination refuses the file: exit 2, whatever words the error uses -------------------

def _writer_raising(monkeypatch: pytest.MonkeyPatch, fmt: str, exc: BaseException) -> None:
    def refuse(model: Any, path: Path, options: Any) -> None:
        path.mkdir(exist_ok=True) if FORMATS[fmt].directory else path.write_bytes(b"half")
        raise exc

    monkeypatch.setitem(FORMATS, fmt, dataclasses.replace(FORMATS[fmt], write=refuse))


SAVEV2_FULL = ("{{function_node __wrapped__SaveV2_dtypes_5_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
               "{folder}/.sm.part/variables/variables_temp/part-00000-of-00001.data-00000-of-00001.tempstate68; "
               "No space left on device [Op:SaveV2]")


def _tf_error(name: str, message: str) -> BaseException:
    import tensorflow as tf

    return getattr(tf.errors, name)(None, None, message)


@pytest.mark.slow
@pytest.mark.parametrize("make_error, code, needle", [
    (lambda folder: _tf_error("ResourceExhaustedError", SAVEV2_FULL.format(folder=folder)), 2,
     "No space left on device; choose another folder or free some disk space"),
    (lambda folder: _tf_error("PermissionDeniedError", f"{folder}/sm; Read-only file system"), 2,
     "Read-only file system; choose another folder"),
    (lambda folder: OSError(getattr(errno, "EDQUOT", errno.ENOSPC), "Disk quota exceeded"), 2,
     "Disk quota exceeded"),
    (lambda folder: _tf_error("InvalidArgumentError", "Graph execution error:\n\nCannot convert a layer"), 1,
     "SavedModel export failed: Cannot convert a layer"),
], ids=["savev2-full-disk", "savev2-read-only", "quota", "not-the-destination"])
def test_an_export_onto_a_refusing_destination_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str],
                                                       make_error: Any, code: int, needle: str) -> None:
    from engine.cli import main

    _writer_raising(monkeypatch, "savedmodel", make_error(tmp_path))
    out = tmp_path / "sm"
    status = main(["export", str(SEED), "--format", "savedmodel", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == code, err
    assert needle in err and "Traceback" not in err and "[Op:SaveV2]" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_failure_kind_is_on_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _writer_raising(monkeypatch, "keras", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    with pytest.raises(ExportError) as info:
        export_model(seed_design(), tmp_path / "m.keras", ExportOptions("keras"))
    assert info.value.failure is ExportFailure.UNWRITABLE
    with pytest.raises(ExportError) as info:
        export_model(seed_design(), tmp_path / "missing" / "m.keras", ExportOptions("keras"))
    assert info.value.failure is ExportFailure.UNWRITABLE


@pytest.mark.slow
def test_a_failed_move_into_place_is_the_destinations_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last rename fails (the folder turned read-only meanwhile): a message, not a traceback."""
    import engine.export.run as run

    real_replace = os.replace

    def refuse(src: Any, dst: Any) -> None:
        if Path(dst) == tmp_path / "m.keras":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        real_replace(src, dst)

    monkeypatch.setattr(run.os, "replace", refuse)
    with pytest.raises(ExportError, match="cannot write .*m.keras: Read-only file system") as info:
        export_model(seed_design(), tmp_path / "m.keras", ExportOptions("keras"))
    assert info.value.failure is ExportFailure.UNWRITABLE and list(tmp_path.iterdir()) == []


# --- flushed before the rename; a symlink's target is written -----------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("fmt, name", [("keras", "m.keras"), ("savedmodel", "sm")])
def test_the_export_is_flushed_to_disk_before_it_is_moved_into_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, name: str) -> None:
    import engine.atomic
    import engine.export.run as run

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}") if Path("/proc/self/fd").is_dir() else "?"))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(engine.atomic.os, "fsync", fsync)
    monkeypatch.setattr(run.os, "replace", replace)
    export_model(seed_design(), tmp_path / name, ExportOptions(fmt))
    moved = [i for i, (what, _) in enumerate(events) if what == "replace"]
    assert moved, events
    part = events[moved[-1]][1]
    flushed = [i for i, (what, path) in enumerate(events) if what == "fsync" and path.startswith(part)]
    assert flushed and max(flushed) < moved[-1], events


@pytest.mark.slow
def test_out_through_a_symlink_writes_the_links_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As editors do: the link stays, the file it points to is replaced, and the temporary file
    is placed beside the target (another folder here), not beside the link."""
    from engine.cli import main

    real_folder, link_folder = tmp_path / "real", tmp_path / "links"
    real_folder.mkdir()
    link_folder.mkdir()
    target = real_folder / "model.keras"
    target.write_bytes(b"old")
    link = link_folder / "m.keras"
    link.symlink_to(target)
    assert main(["export", str(SEED), "--format", "keras", "--out", str(link)]) == 0, capsys.readouterr().err
    assert link.is_symlink() and link.resolve() == target
    assert target.stat().st_size > 1000 and [p.name for p in real_folder.iterdir()] == ["model.keras"]
    assert [p.name for p in link_folder.iterdir()] == ["m.keras"]
