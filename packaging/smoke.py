"""Smoke-test a built Convas bundle: ``uv run python packaging/smoke.py dist/Convas [--quick]``.

Runs the bundle's executable as a user would, from a clean environment (no Python on PATH, a
fresh HOME, no virtual environment), on a copy of an example whose folder and file names have
spaces and non-ASCII letters:

- ``--version``; ``summary``; the window opened offscreen and closed once painted;
- ``-c CODE`` (how Convas starts its own helper processes when it is the bundle);
- unless ``--quick``: ``train --epochs 1`` on the digits, ``export --format onnx`` of the trained
  model and ``export --format python`` (which checks the script in a child process: ``-c`` again).

Each check is printed with its time; the exit status is the number of failed checks (0: all passed).
The bundle folder may be ``dist/Convas`` or, on macOS, ``dist/Convas.app``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import app_identity as ident  # noqa: E402

EXAMPLE = ROOT / "resources" / "examples" / "seed_cnn.convas"
TIMEOUT_S = 900
# Every module of the window imports (the panels import theirs, e.g. pyqtgraph, when first shown).
_GUI_IMPORTS_CODE = ("import importlib, pkgutil, gui; "
                     "names = [m.name for m in pkgutil.walk_packages(gui.__path__, 'gui.')]; "
                     "[importlib.import_module(n) for n in names]; print(len(names), 'modules')")
# What Help → About shows, read from the bundled package metadata.
_VERSIONS_CODE = ("from gui.about_dialog import TENSORFLOW_DISTRIBUTIONS as T, distribution_version as v; "
                  "print('Keras', v('keras'), 'TensorFlow', v(*T))")


@dataclass(frozen=True)
class Executables:
    """The bundle's program for the terminal and the one a double-click starts (the same file
    except on Windows, where the window's ``Convas.exe`` has no console: ``Convas.com`` has)."""

    cli: Path
    window: Path


def executables(bundle: Path, system: str = sys.platform) -> Executables:
    """The programs inside ``bundle`` (a ``Convas`` folder or a ``Convas.app``)."""
    if bundle.suffix == ".app":
        program = bundle / "Contents" / "MacOS" / ident.APP_NAME
        return Executables(program, program)
    if system.startswith("win"):
        return Executables(bundle / f"{ident.APP_NAME}.com", bundle / f"{ident.APP_NAME}.exe")
    program = bundle / ident.APP_NAME
    return Executables(program, program)


def clean_environment(home: Path, system: str = sys.platform) -> dict[str, str]:
    """An environment with no Python: PATH leads nowhere (POSIX) or to the system only (Windows),
    HOME is empty, and neither a virtual environment nor PYTHONPATH/PYTHONHOME leak in."""
    if system.startswith("win"):
        keep = ("SYSTEMROOT", "WINDIR", "COMSPEC", "PATHEXT", "TEMP", "TMP", "SYSTEMDRIVE",
                "PROGRAMDATA", "APPDATA", "LOCALAPPDATA", "USERPROFILE", "NUMBER_OF_PROCESSORS",
                "PROCESSOR_ARCHITECTURE")
        env = {k: v for k, v in os.environ.items() if k.upper() in keep}
        system_root = env.get("SYSTEMROOT", r"C:\Windows")
        env["PATH"] = os.pathsep.join([rf"{system_root}\System32", system_root])
    else:
        env = {"HOME": str(home), "PATH": "/usr/bin/nonexistent", "LANG": "C.UTF-8",
               "TMPDIR": str(home)}
    env.update({
        "QT_QPA_PLATFORM": "offscreen",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CONVAS_RECOVERY_DIR": str(home / "recovery"),
        "CONVAS_CACHE_DIR": str(home / "cache"),
    })
    return env


@dataclass
class Check:
    name: str
    ok: bool
    seconds: float
    detail: str


def run(command: Sequence[str | Path], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], env=env, cwd=cwd, capture_output=True, text=True,
                          encoding="utf-8", errors="replace", timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)


def last_lines(text: str, count: int = 6) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join("    " + line for line in lines[-count:])


def checked(name: str, command: Sequence[str | Path], env: dict[str, str], cwd: Path,
            expect: Callable[[subprocess.CompletedProcess[str]], str | None] = lambda done: None) -> Check:
    """Run ``command``; passed when it exits 0 and ``expect`` finds nothing wrong (it returns
    what is wrong, or None)."""
    start = time.perf_counter()
    try:
        done = run(command, env, cwd)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check(name, False, time.perf_counter() - start, f"could not run: {exc}")
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        return Check(name, False, seconds, f"exit status {done.returncode}\n{last_lines(done.stderr or done.stdout)}")
    problem = expect(done)
    return Check(name, problem is None, seconds, problem or last_lines(done.stdout, 1).strip())


def contains(text: str) -> Callable[[subprocess.CompletedProcess[str]], str | None]:
    def expect(done: subprocess.CompletedProcess[str]) -> str | None:
        return None if text in done.stdout else f"{text!r} not in the output:\n{last_lines(done.stdout)}"
    return expect


def lacks(text: str) -> Callable[[subprocess.CompletedProcess[str]], str | None]:
    def expect(done: subprocess.CompletedProcess[str]) -> str | None:
        return None if text not in done.stdout else f"{text!r} in the output:\n{last_lines(done.stdout)}"
    return expect


def file_made(path: Path) -> Callable[[subprocess.CompletedProcess[str]], str | None]:
    def expect(done: subprocess.CompletedProcess[str]) -> str | None:
        return None if path.exists() else f"{path.name} was not written"
    return expect


def smoke(bundle: Path, quick: bool = False, report: Callable[[Check], None] = lambda c: None) -> list[Check]:
    """Run the checks against ``bundle`` and return them (``report`` sees each as it finishes)."""
    programs = executables(bundle.resolve())  # the checks run in another folder
    work = Path(tempfile.mkdtemp(prefix="convas-smoke-"))
    folder = work / "dossier été 2026"  # spaces and non-ASCII letters in every path handed over
    folder.mkdir()
    design = folder / "seed cnn ü.convas"
    shutil.copyfile(EXAMPLE, design)
    env = clean_environment(work)
    cli = programs.cli
    checks: list[Check] = []

    def add(check: Check) -> bool:
        checks.append(check)
        report(check)
        return check.ok

    try:
        add(checked("--version", [cli, "--version"], env, folder, contains(ident.APP_VERSION)))
        add(checked("summary", [cli, "summary", design], env, folder, contains("Total")))
        add(checked("-c CODE (helper processes)",
                    # ascii(): the check must not depend on the console's code page (Windows pipes)
                    [cli, "-c", "import sys, engine; print('argv', ascii(sys.argv[1:]))", "a b", "ü"],
                    env, folder, contains("argv ['a b', '\\xfc']")))
        if programs.window != cli:
            # Windows: the window's helper processes run the windowed Convas.exe with pipes.
            add(checked("-c CODE via the windowed executable",
                        [programs.window, "-c", "import sys; print('argv', sys.argv[1:])", "x"],
                        env, folder, contains("argv ['x']")))
        add(checked("Keras/TensorFlow versions (for About)",
                    [cli, "-c", _VERSIONS_CODE], env, folder, lacks("not installed")))
        add(checked("every window module imports", [cli, "-c", _GUI_IMPORTS_CODE], env, folder,
                    contains(" modules")))
        add(checked("window (offscreen, closed when shown)", [programs.window],
                    {**env, "CONVAS_QUIT_WHEN_SHOWN": "1"}, folder))
        if not quick:
            model = folder / "trained ü.keras"
            if add(checked("train --epochs 1 (digits)", [cli, "train", design, "--epochs", "1", "--out", model],
                           env, folder, file_made(model))):
                onnx = folder / "model ü.onnx"
                add(checked("export --format onnx", [cli, "export", model, "--format", "onnx", "--out", onnx],
                            env, folder, file_made(onnx)))
            script = folder / "model ü.py"
            add(checked("export --format python (checked by `-c`)",
                        [cli, "export", design, "--format", "python", "--out", script], env, folder, file_made(script)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return checks


def print_check(check: Check) -> None:
    mark = "ok  " if check.ok else "FAIL"
    said = check.detail.strip().splitlines()[:1] if check.ok else []
    print(f"{mark} {check.name:<42} {check.seconds:7.1f} s   {''.join(said)}", flush=True)
    if not check.ok:
        print(check.detail, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Smoke-test a built Convas bundle.")
    parser.add_argument("bundle", type=Path, help="dist/Convas (or dist/Convas.app on macOS)")
    parser.add_argument("--quick", action="store_true", help="skip train and export (minutes on a slow machine)")
    args = parser.parse_args(argv)
    programs = executables(args.bundle)
    if not programs.cli.is_file():
        print(f"smoke: no bundle at {args.bundle} ({programs.cli} is missing); "
              "build it with `uv run python packaging/build.py`", file=sys.stderr)
        return 2
    checks = smoke(args.bundle, quick=args.quick, report=print_check)
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)}/{len(checks)} checks passed")
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())
