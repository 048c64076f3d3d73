"""Atomic replace where Windows refuses it: a file another program holds open (a virus scanner,
a sync client, an editor) cannot be replaced for a moment, and ``os.replace`` raises
PermissionError (WinError 5/32). Simulated here on any system: ``os.replace`` refuses the first
N times (or always), and the Windows branch is chosen by ``REPLACE_REFUSED_WHILE_OPEN``."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

import engine.atomic as atomic
from engine.atomic import (
    REPLACE_RETRY_DELAYS_S, HeldOpenError, replace_atomically, replace_file, write_bytes_atomically,
)
from engine.errors import ConvasError
from engine.examples import seed_design

REAL_REPLACE = os.replace
HELD = "The process cannot access the file because it is being used by another process"


class Refusing:
    """``os.replace`` that raises PermissionError for its first ``times`` calls (None: always)."""

    def __init__(self, times: int | None, error: type[OSError] = PermissionError) -> None:
        self.times, self.error, self.calls = times, error, 0

    def __call__(self, src: Any, dst: Any) -> None:
        self.calls += 1
        if self.times is None or self.calls <= self.times:
            code = errno.EACCES if self.error is PermissionError else errno.EIO
            raise self.error(code, HELD, str(dst))
        REAL_REPLACE(src, dst)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between tries, recorded instead of waited."""
    waits: list[float] = []
    monkeypatch.setattr(atomic.time, "sleep", waits.append)
    return waits


def on(monkeypatch: pytest.MonkeyPatch, windows: bool, refusing: Refusing) -> Refusing:
    monkeypatch.setattr(atomic, "REPLACE_REFUSED_WHILE_OPEN", windows)
    monkeypatch.setattr(atomic.os, "replace", refusing)
    return refusing


def old_file(tmp_path: Path) -> Path:
    target = tmp_path / "Mein Entwurf – ü 日本.convas"
    target.write_text("old", encoding="utf-8")
    return target


def test_the_retries_wait_about_two_seconds_in_all() -> None:
    assert 8 <= len(REPLACE_RETRY_DELAYS_S) <= 15
    assert 1.5 <= sum(REPLACE_RETRY_DELAYS_S) <= 3.0
    assert list(REPLACE_RETRY_DELAYS_S) == sorted(REPLACE_RETRY_DELAYS_S)  # backing off


def test_on_windows_a_file_held_open_for_a_moment_is_replaced_after_retries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slept: list[float]) -> None:
    target = old_file(tmp_path)
    refusing = on(monkeypatch, True, Refusing(3))
    write_bytes_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert refusing.calls == 4 and slept == list(REPLACE_RETRY_DELAYS_S[:3])
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary file left


def test_on_windows_a_file_held_open_throughout_gives_a_message_and_keeps_the_old_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slept: list[float]) -> None:
    target = old_file(tmp_path)
    refusing = on(monkeypatch, True, Refusing(None))
    with pytest.raises(ConvasError) as info:
        write_bytes_atomically(target, b"new")
    message = str(info.value)
    assert message.startswith(f"could not save {target.name}: another program")
    assert f"has {target.name} open; close it and save again" in message
    assert "Traceback" not in message and HELD not in message
    assert refusing.calls == len(REPLACE_RETRY_DELAYS_S) + 1 and slept == list(REPLACE_RETRY_DELAYS_S)
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_replace_atomically_names_what_was_being_saved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slept: list[float]) -> None:
    target = old_file(tmp_path)
    on(monkeypatch, True, Refusing(None))
    held = r"^could not save the training log: .* has Mein Entwurf – ü 日本\.convas open"
    with pytest.raises(ConvasError, match=held):
        replace_atomically(target, lambda tmp: tmp.write_text("new", encoding="utf-8"), "the training log")
    assert target.read_text(encoding="utf-8") == "old"
    assert len(list(tmp_path.iterdir())) == 1


def test_elsewhere_permission_denied_is_said_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slept: list[float]) -> None:
    """On POSIX a PermissionError is a real lack of permission: retrying would only delay it."""
    target = old_file(tmp_path)
    refusing = on(monkeypatch, False, Refusing(1))
    with pytest.raises(ConvasError, match=f"^could not save {target.name}: {HELD}$"):
        write_bytes_atomically(target, b"new")
    assert refusing.calls == 1 and slept == []
    assert target.read_text(encoding="utf-8") == "old"
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("windows", [True, False])
def test_only_permission_errors_are_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            slept: list[float], windows: bool) -> None:
    target = old_file(tmp_path)
    refusing = on(monkeypatch, windows, Refusing(1, OSError))
    with pytest.raises(OSError) as info:
        replace_file(tmp_path / "x", target)
    assert not isinstance(info.value, HeldOpenError)
    assert refusing.calls == 1 and slept == []


def test_held_open_error_is_a_permission_error_naming_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slept: list[float]) -> None:
    """Callers that catch OSError or PermissionError keep working; the file stays known."""
    on(monkeypatch, True, Refusing(None))
    with pytest.raises(HeldOpenError) as info:
        replace_file(tmp_path / "a", tmp_path / "b")
    assert isinstance(info.value, PermissionError) and info.value.filename == str(tmp_path / "b")


def test_a_project_saved_while_held_open_keeps_its_old_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slept: list[float]) -> None:
    from engine.project_file import load_project, save_project

    folder = tmp_path / "Projekte – ü 日本 ⅓"
    folder.mkdir()
    target = folder / "net.convas"
    save_project(target, seed_design())
    before = target.read_bytes()
    changed = seed_design()
    changed.rename([n.name for n in changed][-1], "renamed_output")
    on(monkeypatch, True, Refusing(None))
    with pytest.raises(ConvasError, match="has net.convas open; close it and save again"):
        save_project(target, changed)
    assert target.read_bytes() == before and [p.name for p in folder.iterdir()] == ["net.convas"]
    on(monkeypatch, True, Refusing(2))  # the program lets go: the next save goes through
    save_project(target, changed)
    assert "renamed_output" in [n.name for n in load_project(target).design]


# --- the SavedModel folder swap (engine.export.run._move_into_place) ----------------------------

def saved_model(folder: Path, text: str) -> Path:
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_text(text, encoding="utf-8")
    (folder / "variables" / "variables.index").write_text(text, encoding="utf-8")
    return folder


def test_a_saved_model_folder_held_open_for_a_moment_is_swapped_after_retries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slept: list[float]) -> None:
    from engine.export.run import _move_into_place

    target = saved_model(tmp_path / "Modell – 日本", "old")
    tmp = saved_model(tmp_path / ".Modell – 日本.1-abc.part", "new")
    on(monkeypatch, True, Refusing(2))
    _move_into_place(tmp, target)
    assert (target / "saved_model.pb").read_text(encoding="utf-8") == "new"
    assert [p.name for p in tmp_path.iterdir()] == [target.name] and len(slept) == 2


@pytest.mark.parametrize("refused", ["the old folder", "the new folder"])
def test_a_saved_model_folder_held_open_throughout_keeps_the_old_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slept: list[float], refused: str) -> None:
    """Refused on the first rename (old folder → backup: a program has a file inside it open)
    or on the second (new folder → destination, after the old one moved aside: it is put back)."""
    from engine.export.run import _move_into_place

    target = saved_model(tmp_path / "Modell – 日本", "old")
    tmp = saved_model(tmp_path / ".Modell – 日本.1-abc.part", "new")

    def replace(src: Any, dst: Any) -> None:
        if (refused == "the old folder" and Path(src) == target) or (refused == "the new folder" and Path(src) == tmp):
            raise PermissionError(errno.EACCES, HELD, str(src))
        REAL_REPLACE(src, dst)

    on(monkeypatch, True, Refusing(0))
    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(HeldOpenError):
        _move_into_place(tmp, target)
    assert (target / "saved_model.pb").read_text(encoding="utf-8") == "old"
    assert (target / "variables" / "variables.index").read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, tmp.name])  # the caller removes tmp
    assert slept == list(REPLACE_RETRY_DELAYS_S)


@pytest.mark.slow  # builds a model and writes a .keras file (~3 s)
def test_an_export_over_a_file_held_open_says_to_close_the_program(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slept: list[float]) -> None:
    from engine.export.run import ExportError, ExportFailure, ExportOptions, export_model

    target = tmp_path / "Export – ü 日本.keras"
    target.write_bytes(b"old")

    def replace(src: Any, dst: Any) -> None:
        if Path(dst) == target:
            raise PermissionError(errno.EACCES, HELD, str(dst))
        REAL_REPLACE(src, dst)

    on(monkeypatch, True, Refusing(0))
    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(ExportError) as info:
        export_model(seed_design(), target, ExportOptions("keras"))
    assert info.value.failure is ExportFailure.UNWRITABLE
    assert f"has {target.name} open; close it and export again" in str(info.value)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == [target.name]
