"""Paths with spaces, non-ASCII letters, URL characters and Windows drive letters work in every
command (issue 18, "Portable behaviour"), and Convas's per-user files are in each platform's
standard place. Windows rules are run on Linux through :mod:`ntpath` / ``PureWindowsPath``."""

from __future__ import annotations

import ntpath
import posixpath
import sys
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pytest
from test_cli_train import run

from engine.portable_paths import relative_or_absolute
from engine.sweep_settings import default_storage
from engine.sweep_storage import sqlite_path, sqlite_url

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "resources" / "examples" / "seed_cnn.convas"
# A folder name with what breaks naive code: spaces, an en dash, accents, CJK, a vulgar fraction,
# and the URL characters % and # (a SQLite URL is built from it).
WEIRD = "My Designs – ü 日本 ⅓ 100% #1"


@pytest.fixture
def weird(tmp_path: Path) -> Path:
    folder = tmp_path / WEIRD
    folder.mkdir()
    return folder


def seed_in(folder: Path, name: str = "Netz ⅓ – 日本.convas") -> Path:
    path = folder / name
    path.write_bytes(SEED.read_bytes())
    return path


# --- the command line ----------------------------------------------------------------------------

def test_summary_of_a_design_in_a_weird_folder(weird: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "summary", seed_in(weird))
    assert code == 0, err
    assert "Total params: 34,826" in out and err == ""


def test_summary_json_of_a_design_in_a_weird_folder(weird: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "summary", "--json", seed_in(weird))
    assert code == 0, err
    assert '"total_params": 34826' in out.replace(" ", "").replace('":', '": ')


def test_a_bad_file_in_a_weird_folder_is_named_as_it_is(weird: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = weird / "kaputt – ü.convas"
    bad.write_text("{ not json", encoding="utf-8")
    code, _out, err = run(capsys, "summary", bad)
    assert code == 2 and "kaputt – ü.convas" in err and "Traceback" not in err


def test_a_missing_dataset_in_a_weird_folder_is_named_as_it_is(weird: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = weird / "Daten ü.npz"
    code, _out, err = run(capsys, "train", seed_in(weird), "--data", missing, "--out", weird / "m.keras")
    assert code == 2 and f"{missing} does not exist" in err and "Traceback" not in err


def tiny_npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((64, 28, 28, 1), dtype=np.float32), y=rng.integers(0, 10, 64))
    return path


@pytest.mark.slow  # the one training run of these tests, then an ONNX and a Python export
def test_train_and_export_in_weird_folders(weird: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny_npz(weird / "Daten – ü 日本.npz")
    out = weird / "Modell ⅓ – 日本.keras"
    log = weird / "Verlauf ü.csv"
    code, stdout, err = run(capsys, "train", seed_in(weird), "--data", data, "--epochs", "1",
                            "--batch-size", "32", "--out", out, "--log", log)
    assert code == 0, err
    assert zipfile.is_zipfile(out) and log.read_text(encoding="utf-8").startswith("epoch,")
    assert str(out) in stdout
    onnx = weird / "Modell ⅓ – 日本.onnx"
    code, stdout, err = run(capsys, "export", out, "--format", "onnx", "--out", onnx)
    assert code == 0, err
    assert onnx.stat().st_size > 1000 and str(onnx) in stdout
    python = weird / "modell_ü.py"
    code, _stdout, err = run(capsys, "export", out, "--format", "python", "--out", python)
    assert code == 0, err
    assert "keras" in python.read_text(encoding="utf-8")
    leftovers = sorted(p.name for p in weird.iterdir() if p.name.startswith("."))
    assert leftovers == [], leftovers


@pytest.mark.slow  # checking that the images decode imports TensorFlow
def test_an_image_folder_in_a_weird_folder_loads(weird: Path) -> None:
    from test_datasets import write_png

    from engine.data_source import load_dataset

    root = weird / "Bilder – 日本"
    for label, value in (("Katze ü", 30), ("犬 ⅓", 220)):
        (root / label).mkdir(parents=True)
        for i in range(4):
            write_png(root / label / f"Bild {i} – ü.png", np.full((8, 8), value + i, dtype=np.uint8))
    dataset = load_dataset(str(root), (8, 8, 1), validation_split=0.25)
    assert sorted(dataset.class_names) == sorted(["Katze ü", "犬 ⅓"])


# --- SQLite storage URLs of sweeps -------------------------------------------------------------

@pytest.mark.slow  # one trial of one epoch
def test_a_sweep_beside_a_project_in_a_weird_folder(weird: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The sweep's default storage, a SQLite file beside the project, in a folder whose name
    has spaces, non-ASCII letters, '%' and '#'."""
    from test_cli_sweep import tiny_project

    project = tiny_project(weird / "Netz ü.convas", trials=1)
    code, out, err = run(capsys, "sweep", project)
    assert code == 0, err
    assert (weird / "Netz ü.sweep.db").is_file()
    assert not [p for p in weird.iterdir() if p.name.endswith(".sweep.db") and p.name != "Netz ü.sweep.db"]
    assert "1 trained" in out, out

@pytest.mark.parametrize("name", [WEIRD, "a?b=c", "p%20q", "x#y", "semi;colon", "at@host:1"])
def test_the_default_sweep_storage_names_the_file_beside_the_project(tmp_path: Path, name: str) -> None:
    from sqlalchemy.engine import make_url

    project = tmp_path / name / "Netz ü.convas"
    url = default_storage(project)
    expected = str(project.with_name("Netz ü.sweep.db"))
    assert sqlite_path(url) == expected
    assert make_url(url).database == expected  # what Optuna's SQLAlchemy will open
    assert not make_url(url).query


@pytest.mark.parametrize("path, url", [
    (PureWindowsPath(r"C:\Users\Zoë\My Designs\net.sweep.db"), "sqlite:///C:/Users/Zoë/My Designs/net.sweep.db"),
    (PureWindowsPath(r"D:\100% sure\net.sweep.db"), "sqlite:///D:/100%25 sure/net.sweep.db"),
    (PurePosixPath("/home/zoë/日本/net.sweep.db"), "sqlite:////home/zoë/日本/net.sweep.db"),
])
def test_sqlite_urls_of_windows_and_posix_paths(path: PureWindowsPath | PurePosixPath, url: str) -> None:
    assert sqlite_url(path) == url
    assert sqlite_path(url) == path.as_posix()  # sqlite3 on Windows accepts forward slashes


def test_the_sweep_settings_box_and_worker_name_the_file_of_a_quoted_url(tmp_path: Path) -> None:
    from gui.sweep.settings_box import _short_url
    from gui.sweep.worker import sqlite_file

    project = tmp_path / "100% ?" / "net.convas"
    url = default_storage(project)
    assert _short_url(url) == "net.sweep.db"
    assert sqlite_file(url) == project.with_name("net.sweep.db")


# --- names relative to a folder (messages), with Windows drives ---------------------------------

@pytest.mark.parametrize("pathmod, path, start, expected", [
    (posixpath, "/data/Bilder ü/cats/1.png", "/data/Bilder ü", "cats/1.png"),
    (posixpath, "/elsewhere/1.png", "/data/Bilder ü", "/elsewhere/1.png"),
    (ntpath, r"C:\Daten ü\cats\1.png", r"C:\Daten ü", r"cats\1.png"),
    (ntpath, r"D:\data\1.png", r"C:\proj", r"D:\data\1.png"),  # relpath raises ValueError here
    (ntpath, r"\\server\share\1.png", r"C:\proj", r"\\server\share\1.png"),
    (ntpath, r"c:\PROJ\x.png", r"C:\proj", "x.png"),  # Windows names ignore case
])
def test_relative_or_absolute(pathmod: object, path: str, start: str, expected: str) -> None:
    assert relative_or_absolute(path, start, pathmod) == expected  # type: ignore[arg-type]


def test_relpath_across_drives_is_what_relative_or_absolute_guards_against() -> None:
    with pytest.raises(ValueError):
        ntpath.relpath(r"D:\data", r"C:\proj")


# --- standard places ------------------------------------------------------------------------------

@pytest.mark.parametrize("platform, env, expected", [
    ("linux", {}, "HOME/.cache/convas"),
    ("linux", {"XDG_CACHE_HOME": "/xdg cache"}, "/xdg cache/convas"),
    ("linux", {"XDG_CACHE_HOME": "relative"}, "HOME/.cache/convas"),  # the XDG spec: ignore it
    ("darwin", {}, "HOME/Library/Caches/Convas"),
    ("win32", {"LOCALAPPDATA": "LOCAL"}, "LOCAL/Convas/Cache"),
    ("win32", {}, "HOME/AppData/Local/Convas/Cache"),
    ("win32", {"CONVAS_CACHE_DIR": "/override"}, "/override"),
])
def test_the_user_cache_folder_per_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str,
                                            env: dict[str, str], expected: str) -> None:
    """The command line's logs, the image checks, folder index and pretrained models all live in
    the platform's per-user cache folder (the window's log: Qt's CacheLocation)."""
    from engine.datasets import ImageChecks
    from engine.folder_index import index_folder
    from engine.internal_error import cli_log_path, user_cache_folder

    home = tmp_path / "home ü"
    for name in ("CONVAS_CACHE_DIR", "XDG_CACHE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.replace("LOCAL", str(tmp_path / "Local ü")))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(sys, "platform", platform)
    folder = user_cache_folder()
    assert folder == Path(expected.replace("HOME", str(home)).replace("LOCAL", str(tmp_path / "Local ü")))
    assert ImageChecks.cache_file() == folder / "image-checks.json"
    assert index_folder() == folder / "folder-index"
    assert cli_log_path() == folder / "convas.log"
