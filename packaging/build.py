"""Build the Convas desktop bundle for the system this runs on: ``uv run python packaging/build.py``.

- Linux: ``dist/Convas/`` (run ``dist/Convas/Convas``) and ``dist/Convas-<version>-linux-<arch>.tar.gz``.
- macOS: ``dist/Convas.app`` (document type ``.convas``) and ``dist/Convas-<version>-macos-<arch>.zip``.
- Windows: ``dist/Convas/Convas.exe`` (the window) beside ``Convas.com`` (the same program with a
  console: ``Convas summary …`` in cmd/PowerShell picks it first), a zip of the folder, and
  ``dist/Convas-<version>-setup.exe`` when Inno Setup's ``iscc`` is on PATH.

PyInstaller (the dev dependency group) reads a ``.spec`` generated from packaging/bundle_config.py.
Exit status 0 when the bundle was built; a clear message on stderr otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bundle_config as bc

from engine import app_identity as ident
from engine.atomic import write_bytes_atomically

ROOT = bc.ROOT
DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"


def use_dist(folder: Path) -> None:
    """Build into ``folder`` (with its own work folder: two builds must not share one)."""
    global DIST, WORK
    DIST = folder.resolve()
    if DIST != ROOT / "dist":
        WORK = ROOT / "build" / f"pyinstaller-{DIST.name}"


def write_spec(system: str, trim: bool = True) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    version_file = None
    if system.startswith(bc.WINDOWS):
        version_file = WORK / "version_info.txt"
        write_bytes_atomically(version_file, bc.windows_version_info().encode())
    spec = WORK / "convas.spec"
    write_bytes_atomically(spec, bc.spec_text(system, version_file=version_file, trim=trim).encode())
    return spec


def run_pyinstaller(spec: Path, clean: bool) -> None:
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
               "--distpath", str(DIST), "--workpath", str(WORK), str(spec)]
    if clean:
        command.insert(3, "--clean")
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def add_console_twin(bundle: Path) -> Path:
    """Windows: PyInstaller names every executable ``*.exe``; the console one becomes ``Convas.com``."""
    built = bundle / f"{bc.CONSOLE_BUILD_NAME}.exe"
    twin = bundle / bc.CONSOLE_TWIN
    os.replace(built, twin)
    return twin


def make_archive(system: str) -> Path:
    DIST.mkdir(exist_ok=True)
    target = DIST / bc.archive_name(system)
    target.unlink(missing_ok=True)
    if system.startswith(bc.LINUX):
        with tarfile.open(target, "w:gz", compresslevel=6) as tar:
            tar.add(DIST / bc.BUNDLE_NAME, arcname=bc.BUNDLE_NAME)
    elif system.startswith(bc.MACOS):
        # ditto keeps the framework symbolic links and extended attributes a signed .app needs
        subprocess.run(["ditto", "-c", "-k", "--keepParent", str(DIST / f"{bc.BUNDLE_NAME}.app"), str(target)],
                       check=True)
    else:
        shutil.make_archive(str(target.with_suffix("")), "zip", DIST, bc.BUNDLE_NAME)
    return target


def make_installer() -> Path | None:
    """Windows: compile packaging/convas.iss with Inno Setup when ``iscc`` is installed."""
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    default = Path(os.environ.get("PROGRAMFILES(X86)", r"C:\Program Files (x86)")) / "Inno Setup 6" / "ISCC.exe"
    if iscc is None and default.is_file():
        iscc = str(default)
    if iscc is None:
        print("Inno Setup (iscc) not found: no installer, the zip is the download")
        return None
    defines = [f"/D{name}={value}" for name, value in bc.inno_defines(DIST).items()]
    subprocess.run([iscc, *defines, str(ROOT / "packaging" / "convas.iss")], check=True)
    return DIST / f"{ident.APP_NAME}-{ident.APP_VERSION}-setup.exe"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="empty PyInstaller's cache first")
    parser.add_argument("--spec-only", action="store_true", help="write the .spec and stop")
    parser.add_argument("--no-archive", action="store_true", help="skip the tarball/zip")
    parser.add_argument("--no-trim", action="store_true",
                        help="keep everything PyInstaller finds (to measure what trimming saves)")
    parser.add_argument("--dist", type=Path, default=DIST, help="the output folder (default: dist)")
    args = parser.parse_args(argv)
    use_dist(args.dist)
    system = sys.platform
    spec = write_spec(system, trim=not args.no_trim)
    print(f"spec: {spec}")
    if args.spec_only:
        return 0
    if not ident.ICON_DIR.is_dir():
        print(f"build: warning: {ident.ICON_DIR} is missing: the bundle has no icons", file=sys.stderr)
    start = time.perf_counter()
    try:
        run_pyinstaller(spec, args.clean)
    except subprocess.CalledProcessError as exc:
        print(f"build: PyInstaller failed (exit status {exc.returncode}); see its messages above",
              file=sys.stderr)
        return 1
    bundle = DIST / bc.BUNDLE_NAME
    if system.startswith(bc.WINDOWS):
        add_console_twin(bundle)
    print(f"bundle: {bundle} ({bc.human(bc.folder_size(bundle))}) built in {time.perf_counter() - start:.0f} s")
    if system.startswith(bc.MACOS):
        print(f"app: {DIST / (bc.BUNDLE_NAME + '.app')}")
    if not args.no_archive:
        archive = make_archive(system)
        print(f"archive: {archive} ({bc.human(archive.stat().st_size)})")
    if system.startswith(bc.WINDOWS):
        try:
            installer = make_installer()
        except subprocess.CalledProcessError as exc:
            print(f"build: Inno Setup failed (exit status {exc.returncode})", file=sys.stderr)
            return 1
        if installer is not None:
            print(f"installer: {installer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
