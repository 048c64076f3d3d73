"""The desktop bundle's recipe, checked without building it (a build takes many minutes:
``packaging/smoke.py`` checks a built bundle): what packaging/bundle_config.py keeps and drops,
the generated PyInstaller spec, the macOS Info.plist and Windows installer metadata, main.py's
``-c``/``-m`` dispatch in a frozen bundle, and the GitHub workflow that builds all three."""

from __future__ import annotations

import ast
import plistlib
import re
import shutil
import sys
from pathlib import Path

import pytest

import main
from engine import app_identity as ident, examples

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))

import bundle_config as bc  # noqa: E402
import smoke  # noqa: E402

WORKFLOW = ROOT / ".github" / "workflows" / "bundle.yml"

# Modules Convas imports (some only inside functions): none may be excluded from the bundle.
NEEDED_MODULES = (
    "engine", "gui", "main", "tensorflow", "keras", "numpy", "sklearn.datasets", "sklearn.metrics",
    "onnx", "onnxruntime", "tf2onnx", "ai_edge_litert", "optuna", "sqlalchemy", "alembic", "pyqtgraph",
    "PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets", "PySide6.QtNetwork", "PySide6.QtSvg",
    "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", "PySide6.QtTest",  # pyqtgraph's curves
    "h5py", "scipy",
)


def excluded(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in bc.excluded_modules())


# --- what goes in, what stays out -------------------------------------------------------------

def test_no_module_convas_imports_is_excluded() -> None:
    assert [m for m in NEEDED_MODULES if excluded(m)] == []


def test_tools_tests_and_unused_qt_are_excluded() -> None:
    for module in ("tensorboard", "pytest", "hypothesis", "mypy", "ruff", "clang", "IPython",
                   "PySide6.QtWebEngineCore", "PySide6.QtQml", "PySide6.Qt3DCore", "PySide6.QtMultimedia"):
        assert excluded(module), module


def test_default_data_examples_and_icons_survive_the_file_filter() -> None:
    assert [path for path in bc.KEPT_FILES if bc.is_dropped(path)] == []
    assert "sklearn/datasets/data/digits.csv.gz" in bc.KEPT_FILES


@pytest.mark.parametrize("path", [
    "tensorflow/include/tensorflow/core/framework/tensor.h",
    "PySide6/Qt/translations/qtbase_de.qm",
    "PySide6/Qt/plugins/sqldrivers/libqsqlite.so",
    "sklearn/datasets/tests/data/openml/id_1/data.json.gz",
    "PySide6/Qt/lib/libQt6Quick.so.6",
    r"PySide6\Qt\translations\qtbase_fr.qm",  # Windows separators
])
def test_headers_tests_translations_and_unused_qt_are_dropped(path: str) -> None:
    assert bc.is_dropped(path)


def test_resources_land_where_the_engine_looks_for_them() -> None:
    # Frozen, engine/ sits in the bundle's _internal/, so ROOT there is _internal/ itself.
    folders = dict((Path(source).name, dest) for source, dest in bc.data_files(ROOT))
    assert folders["examples"] == examples.EXAMPLES_DIR.relative_to(ident.ROOT).as_posix()
    if ident.ICON_DIR.is_dir():
        assert folders["icons"] == ident.ICON_DIR.relative_to(ident.ROOT).as_posix()


def test_data_files_skip_a_folder_that_is_not_there(tmp_path: Path) -> None:
    (tmp_path / "resources" / "examples").mkdir(parents=True)
    assert bc.data_files(tmp_path) == [(str(tmp_path / "resources" / "examples"), "resources/examples")]


def test_keras_and_tensorflow_metadata_is_copied_for_about() -> None:
    assert {"keras", "tensorflow"} <= set(bc.installed_distributions())
    assert "copy_metadata(name)" in bc.spec_text("linux")


def test_library_data_carries_the_digits_and_optunas_migrations() -> None:
    pairs = bc.library_data()
    assert all(Path(source).exists() for source, _ in pairs)
    assert ("sklearn/datasets/data" in {dest for _, dest in pairs}
            and any(source.endswith("digits.csv.gz") for source, _ in pairs))
    assert any(dest == "optuna/storages/_rdb/alembic" for _, dest in pairs)


# --- the generated spec -----------------------------------------------------------------------

def spec_calls(system: str) -> dict[str, list[ast.Call]]:
    text = bc.spec_text(system, version_file=Path("version_info.txt"))
    calls: dict[str, list[ast.Call]] = {}
    for node in ast.walk(ast.parse(text)):  # the spec is Python: it must at least parse
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            calls.setdefault(node.func.id, []).append(node)
    return calls


def keyword(call: ast.Call, name: str) -> object:
    return next(ast.literal_eval(k.value) for k in call.keywords if k.arg == name)


def test_windows_spec_has_a_window_and_a_console_executable_sharing_one_folder() -> None:
    calls = spec_calls("win32")
    window, console = calls["EXE"]
    assert (keyword(window, "name"), keyword(window, "console")) == ("Convas", False)
    assert (keyword(console, "name"), keyword(console, "console")) == (bc.CONSOLE_BUILD_NAME, True)
    collect, = calls["COLLECT"]
    assert [a.id for a in collect.args[:2] if isinstance(a, ast.Name)] == ["exe", "console_exe"]
    assert keyword(window, "version") == "version_info.txt"
    assert "BUNDLE" not in calls
    assert bc.CONSOLE_TWIN == "Convas.com"


def test_linux_spec_has_one_console_executable_and_no_app() -> None:
    calls = spec_calls("linux")
    exe, = calls["EXE"]
    assert (keyword(exe, "name"), keyword(exe, "console"), keyword(exe, "version")) == ("Convas", True, None)
    assert "BUNDLE" not in calls


def test_macos_spec_makes_an_app_with_the_bundle_identifier() -> None:
    calls = spec_calls("darwin")
    app, = calls["BUNDLE"]
    assert keyword(app, "name") == "Convas.app"
    assert keyword(app, "bundle_identifier") == ident.APP_ID
    assert keyword(calls["EXE"][0], "console") is False


def test_untrimmed_spec_keeps_everything() -> None:
    text = bc.spec_text("linux", trim=False)
    assert "excludes=[]" in text and "is_dropped" not in text
    assert "is_dropped" in bc.spec_text("linux")


# --- what the operating systems read ----------------------------------------------------------

def test_info_plist_declares_the_convas_document_type_from_app_identity() -> None:
    plist = plistlib.loads(plistlib.dumps(bc.info_plist()))  # a dict plistlib can write
    assert (plist["CFBundleIdentifier"], plist["CFBundleName"], plist["CFBundleShortVersionString"]) == (
        ident.APP_ID, ident.APP_NAME, ident.APP_VERSION)
    assert plist["NSHighResolutionCapable"] is True
    assert plist["CFBundleIconFile"] == "convas.icns"
    document, = plist["CFBundleDocumentTypes"]
    assert (document["CFBundleTypeRole"], document["LSHandlerRank"], document["LSItemContentTypes"]) == (
        "Editor", "Owner", [ident.UTI])
    exported, = plist["UTExportedTypeDeclarations"]
    assert exported["UTTypeIdentifier"] == ident.UTI
    assert exported["UTTypeConformsTo"] == ["public.data"]
    assert exported["UTTypeTagSpecification"] == {"public.filename-extension": ["convas"],
                                                  "public.mime-type": [ident.MIME_TYPE]}


@pytest.mark.parametrize(("version", "expected"), [
    ("0.1.0", (0, 1, 0, 0)), ("1.2.3.4.5", (1, 2, 3, 4)), ("2.0rc1", (2, 0, 0, 0)), ("3", (3, 0, 0, 0)),
])
def test_windows_version_has_four_numbers(version: str, expected: tuple[int, ...]) -> None:
    assert bc.version_tuple(version) == expected


def test_windows_version_resource_names_convas() -> None:
    text = bc.windows_version_info()
    ast.parse(text, mode="eval")
    strings = dict(re.findall(r"StringStruct\('(\w+)', '([^']*)'\)", text))
    assert strings["ProductName"] == ident.APP_NAME
    assert strings["ProductVersion"] == ident.APP_VERSION
    assert strings["OriginalFilename"] == "Convas.exe"


def test_installer_script_defines_come_from_app_identity() -> None:
    script = (ROOT / "packaging" / "convas.iss").read_text(encoding="utf-8")
    defines = bc.inno_defines(Path("dist"))
    assert set(re.findall(r"^#ifndef (\w+)", script, re.MULTILINE)) == set(defines)
    assert defines["ProgId"] == ident.WINDOWS_PROG_ID
    assert defines["Extension"] == ".convas"
    assert r'Subkey: "Software\Classes\{#ProgId}\shell\open\command"' in script


def test_archive_names_say_system_and_version() -> None:
    assert re.fullmatch(rf"Convas-{re.escape(ident.APP_VERSION)}-linux-\w+\.tar\.gz", bc.archive_name("linux"))
    assert bc.archive_name("win32").endswith(".zip") and "-windows-" in bc.archive_name("win32")
    assert "-macos-" in bc.archive_name("darwin")


# --- main.py in a frozen bundle ---------------------------------------------------------------

@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def test_frozen_bundle_runs_c_code_with_pythons_argv(frozen: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["-c", "import sys; print(sys.argv)", "train", "a b.convas"]) == 0
    assert capsys.readouterr().out.strip() == "['-c', 'train', 'a b.convas']"


def test_frozen_c_code_exit_status_is_the_process_status(frozen: None) -> None:
    with pytest.raises(SystemExit) as stopped:
        main.main(["-c", "import sys; sys.exit(3)"])
    assert stopped.value.code == 3


def test_frozen_bundle_runs_a_module_as_main(frozen: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "convas_probe_module.py").write_text(
        "import sys\nif __name__ == '__main__':\n    print('main', sys.argv[1:])\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main.main(["-m", "convas_probe_module", "--workers", "2"]) == 0
    assert capsys.readouterr().out.strip() == "main ['--workers', '2']"


def test_outside_a_bundle_c_is_not_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert main.run_as_python(["-c", "raise SystemExit(9)"]) is None


# --- the smoke test's environment and the workflow --------------------------------------------

def test_smoke_environment_has_no_python(tmp_path: Path) -> None:
    env = smoke.clean_environment(tmp_path)
    assert shutil.which("python3", path=env["PATH"]) is None or sys.platform.startswith("win")
    assert not {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"} & set(env)
    assert env["QT_QPA_PLATFORM"] == "offscreen"


def test_smoke_uses_the_console_twin_on_windows_only() -> None:
    windows = smoke.executables(Path("dist/Convas"), "win32")
    assert (windows.cli.name, windows.window.name) == ("Convas.com", "Convas.exe")
    linux = smoke.executables(Path("dist/Convas"), "linux")
    assert linux.cli == linux.window == Path("dist/Convas/Convas")
    assert smoke.executables(Path("dist/Convas.app")).cli == Path("dist/Convas.app/Contents/MacOS/Convas")


def test_smoke_reports_a_missing_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert smoke.main([str(tmp_path / "nothing")]) == 2
    assert "build it with" in capsys.readouterr().err


def test_workflow_builds_and_smoke_tests_on_the_three_systems() -> None:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    job = workflow["jobs"]["bundle"]
    assert set(job["strategy"]["matrix"]["os"]) == {"ubuntu-latest", "macos-latest", "windows-latest"}
    runs = [step.get("run", "") for step in job["steps"]]
    uses = [step.get("uses", "") for step in job["steps"]]
    assert any("packaging/build.py" in run for run in runs)
    assert any("packaging/smoke.py" in run for run in runs)
    assert any(use.startswith("astral-sh/setup-uv") for use in uses)
    assert any(use.startswith("actions/upload-artifact") for use in uses)
    assert any("uv sync" in run for run in runs)
