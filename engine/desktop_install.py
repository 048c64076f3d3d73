"""Make ``.convas`` files open Convas on double-click: ``convas --install-desktop-entry``
(and ``--uninstall-desktop-entry``, which removes exactly what it installed), for this user only.

What "installed" means differs on each system:

- Linux and other freedesktop desktops: in ``$XDG_DATA_HOME`` (``~/.local/share``), a desktop
  entry ``applications/org.convas.Convas.desktop`` that runs Convas on a file, the MIME type
  ``application/x-convas`` (``mime/packages/org.convas.Convas.xml``, glob ``*.convas``) and the
  icons in the ``hicolor`` theme, for the application and for its files. The desktop's caches
  are then refreshed with the tools it ships (``update-mime-database``, ...), when they exist.
- Windows: a file association in ``HKEY_CURRENT_USER\\Software\\Classes`` (no administrator
  rights needed), then Explorer is told that associations changed.
- macOS: the ``Convas.app`` bundle declares its document types itself (its ``Info.plist``);
  from a bundle this asks Launch Services to read it again, from a source checkout there is
  nothing to install.

The files, the registry values and the command line that starts Convas are plain data built by
pure functions (:func:`freedesktop_files`, :func:`windows_registry_entries`,
:func:`launch_command`), so that tests check them on any system; the writers only write them.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

from .app_identity import (
    APP_ID,
    APP_NAME,
    APP_SUMMARY,
    EXTENSION,
    FILE_DESCRIPTION,
    ICON_ICO,
    ICON_SIZES,
    ICON_SVG,
    MIME_TYPE,
    ROOT,
    WINDOWS_PROG_ID,
    icon_png,
)
from .errors import ConvasError

INSTALL_FLAG = "--install-desktop-entry"
UNINSTALL_FLAG = "--uninstall-desktop-entry"
EXIT_OK, EXIT_USAGE, EXIT_CANNOT_WRITE = 0, 2, 2

MIME_ICON = MIME_TYPE.replace("/", "-")  # the icon name the freedesktop spec derives from the type
MAX_HICOLOR_SIZE = 512                   # the hicolor theme's largest usual size; 1024 is for macOS
TOOL_TIMEOUT_S = 60
# StartupWMClass: Qt on X11 names the window class after the application name.
WM_CLASS = APP_NAME


class System(enum.Enum):
    FREEDESKTOP = "freedesktop"
    WINDOWS = "windows"
    MACOS = "macos"


def current_system() -> System:
    if sys.platform == "win32":
        return System.WINDOWS
    if sys.platform == "darwin":
        return System.MACOS
    return System.FREEDESKTOP


# --- the command that starts Convas -------------------------------------------------------------

def frozen() -> bool:
    """Whether this is a packaged bundle (PyInstaller sets ``sys.frozen``)."""
    return bool(getattr(sys, "frozen", False))


def launch_command(system: System | None = None) -> list[str]:
    """The command line (without the file) that starts the Convas window, as absolute paths:
    the bundle's executable (or its AppImage); in a source install the ``convas`` script of the environment that
    runs this (on Windows ``pythonw.exe main.py``, which opens no console window); failing
    those, this Python running ``main.py``."""
    system = system or current_system()
    if frozen():
        # An AppImage runs from a mount that changes at every start: the AppImage file itself
        # is what to start.
        appimage = os.environ.get("APPIMAGE") if system is System.FREEDESKTOP else None
        return [appimage or sys.executable]  # absolute in a bundle
    interpreter = Path(sys.executable).absolute()
    main = str(ROOT / "main.py")
    if system is System.WINDOWS:
        windowed = interpreter.with_name("pythonw.exe")
        if windowed.is_file():
            return [str(windowed), main]
    script = console_script(system)
    return [str(script)] if script is not None else [str(interpreter), main]


def console_script(system: System) -> Path | None:
    """The ``convas`` console script pyproject's ``[project.scripts]`` installed beside this
    environment's Python, if it is there."""
    names = ["convas.exe"] if system is System.WINDOWS else ["convas"]
    folders = [Path(sysconfig.get_path("scripts")), Path(sys.executable).absolute().parent]
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return (folder / name).absolute()
    return None


# --- freedesktop --------------------------------------------------------------------------------

# Characters that make the Desktop Entry spec require an Exec argument to be quoted.
_EXEC_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")


def exec_argument(argument: str) -> str:
    """One argument of a desktop entry's ``Exec`` key, quoted as the Desktop Entry spec says:
    ``%`` doubled; an argument with a reserved character (a space, a quote, ...) in double
    quotes, with ``"``, `````, ``$`` and ``\\`` escaped by a backslash; and then, because the
    key's value is itself a string, each backslash doubled once more."""
    argument = argument.replace("%", "%%")
    if any(c in _EXEC_RESERVED for c in argument):
        argument = '"' + re.sub(r'(["`$\\])', r"\\\1", argument) + '"'
    return (argument.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
            .replace("\r", "\\r"))


def desktop_entry(launch: Sequence[str]) -> str:
    """The text of ``org.convas.Convas.desktop``: ``launch`` opens one file (``%f``)."""
    exec_line = " ".join(exec_argument(a) for a in launch) + " %f"
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.5",
        f"Name={APP_NAME}",
        "GenericName=CNN Designer",
        f"Comment={APP_SUMMARY}",
        f"Exec={exec_line}",
        f"Icon={APP_ID}",
        "Terminal=false",
        "Categories=Development;Science;Education;",
        "Keywords=Keras;CNN;neural network;deep learning;model;",
        f"MimeType={MIME_TYPE};",
        "StartupNotify=true",
        f"StartupWMClass={WM_CLASS}",
        "",
    ])


def mime_package() -> str:
    """The shared-mime-info package for ``.convas`` files: a JSON document (so text editors
    and JSON viewers remain offered for it), recognised by its name, and also by its opening
    line when the name lies."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="{MIME_TYPE}">
    <comment>{FILE_DESCRIPTION}</comment>
    <sub-class-of type="application/json"/>
    <icon name="{MIME_ICON}"/>
    <glob pattern="*{EXTENSION}"/>
    <magic priority="50">
      <match type="string" offset="0:64" value="&quot;format&quot;: &quot;convas&quot;"/>
    </magic>
  </mime-type>
</mime-info>
"""


@dataclass(frozen=True)
class DesktopFile:
    """One file the installer writes: where, and either its text or the file it copies."""

    path: Path
    text: str | None = None
    source: Path | None = None

    def data(self) -> bytes:
        if self.text is not None:
            return self.text.encode("utf-8")
        assert self.source is not None
        return self.source.read_bytes()


def freedesktop_files(data_home: Path, launch: Sequence[str]) -> list[DesktopFile]:
    """Every file ``--install-desktop-entry`` writes under ``data_home`` (and
    ``--uninstall-desktop-entry`` removes): the desktop entry, the MIME package, and the icon
    at each size up to 512 px (and the drawing, scalable) for the application and its files."""
    files = [DesktopFile(data_home / "applications" / f"{APP_ID}.desktop", text=desktop_entry(launch)),
             DesktopFile(data_home / "mime" / "packages" / f"{APP_ID}.xml", text=mime_package())]
    hicolor = data_home / "icons" / "hicolor"
    for size in ICON_SIZES:
        if size <= MAX_HICOLOR_SIZE:
            folder = hicolor / f"{size}x{size}"
            files += [DesktopFile(folder / "apps" / f"{APP_ID}.png", source=icon_png(size)),
                      DesktopFile(folder / "mimetypes" / f"{MIME_ICON}.png", source=icon_png(size))]
    files += [DesktopFile(hicolor / "scalable" / "apps" / f"{APP_ID}.svg", source=ICON_SVG),
              DesktopFile(hicolor / "scalable" / "mimetypes" / f"{MIME_ICON}.svg", source=ICON_SVG)]
    return files


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or not absolute."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if value and os.path.isabs(value) else Path.home() / ".local" / "share"


class ToolOutcome(enum.Enum):
    RAN = "ran"
    FAILED = "failed"
    MISSING = "not installed"
    NOT_NEEDED = "not needed"


@dataclass(frozen=True)
class ToolRun:
    name: str
    outcome: ToolOutcome
    detail: str = ""


def refresh_tools(home: Path) -> list[tuple[str, list[str], Path]]:
    """The desktop's cache builders to run after a change under ``home``: each tool's name, its
    arguments, and the folder it needs to exist. The icon cache is refreshed only where one
    already is: without a cache, GTK reads the folders themselves, and a cache made now would
    hide icons other programs install later without refreshing it."""
    hicolor = home / "icons" / "hicolor"
    return [("update-mime-database", [str(home / "mime")], home / "mime"),
            ("update-desktop-database", [str(home / "applications")], home / "applications"),
            ("gtk-update-icon-cache", ["-f", "-t", "-q", str(hicolor)], hicolor / "icon-theme.cache")]


def run_refresh_tools(home: Path) -> list[ToolRun]:
    runs = []
    for name, arguments, needed in refresh_tools(home):
        program = shutil.which(name)
        if program is None:
            runs.append(ToolRun(name, ToolOutcome.MISSING))
            continue
        if not needed.exists():
            runs.append(ToolRun(name, ToolOutcome.NOT_NEEDED, f"there is no {needed} to refresh"))
            continue
        try:
            done = subprocess.run([program, *arguments], capture_output=True, encoding="utf-8", errors="replace",
                                  timeout=TOOL_TIMEOUT_S, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            runs.append(ToolRun(name, ToolOutcome.FAILED, str(exc)))
            continue
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            runs.append(ToolRun(name, ToolOutcome.FAILED, lines[-1] if lines else f"exit status {done.returncode}"))
        else:
            runs.append(ToolRun(name, ToolOutcome.RAN))
    return runs


@dataclass
class Report:
    """What an install or uninstall did, to print."""

    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)  # icon files the installer did not find
    tools: list[ToolRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def install_freedesktop(home: Path, launch: Sequence[str], refresh: bool = True) -> Report:
    """Write :func:`freedesktop_files` (each atomically), then refresh the desktop's caches.
    Raises :class:`ConvasError` when a file cannot be written."""
    from .atomic import write_bytes_atomically

    report = Report()
    for item in freedesktop_files(home, launch):
        if item.source is not None and not item.source.is_file():
            report.missing.append(item.source)
            continue
        try:
            item.path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomically(item.path, item.data())
        except OSError as exc:
            raise ConvasError(f"could not write {item.path}: {exc.strerror or exc}") from exc
        report.written.append(item.path)
    if refresh:
        report.tools = run_refresh_tools(home)
    return report


def uninstall_freedesktop(home: Path, refresh: bool = True) -> Report:
    """Remove the files :func:`install_freedesktop` writes (and nothing else), then refresh."""
    report = Report()
    for item in freedesktop_files(home, []):
        try:
            item.path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConvasError(f"could not remove {item.path}: {exc.strerror or exc}") from exc
        report.removed.append(item.path)
    if refresh:
        report.tools = run_refresh_tools(home)
    return report


# --- Windows ------------------------------------------------------------------------------------

CLASSES = r"Software\Classes"


@dataclass(frozen=True)
class RegistryValue:
    """A string value under ``HKEY_CURRENT_USER``: its key, its name ("" is the key's default
    value) and its data."""

    key: str
    name: str
    value: str


def windows_command(launch: Sequence[str]) -> str:
    """``launch`` and the file as a Windows command line: every part in double quotes (a
    Windows path cannot contain one), so spaces and non-ASCII letters need nothing more."""
    return " ".join(f'"{a}"' for a in launch) + ' "%1"'


def windows_registry_entries(launch: Sequence[str], icon: str, application: str | None) -> list[RegistryValue]:
    """The registry values that associate ``.convas`` files with Convas for this user.

    ``icon`` is a ``DefaultIcon`` value (``"C:\\...\\Convas.exe",0`` or an ``.ico`` path).
    ``application`` is the executable's file name when Convas is its own executable (a bundle):
    then ``Applications\\<name>`` lists ``.convas`` as a type it opens, for "Open with". A
    source install runs ``pythonw.exe``, which must never be described as Convas."""
    prog = rf"{CLASSES}\{WINDOWS_PROG_ID}"
    command = windows_command(launch)
    entries = [
        RegistryValue(rf"{CLASSES}\{EXTENSION}", "", WINDOWS_PROG_ID),
        RegistryValue(rf"{CLASSES}\{EXTENSION}", "Content Type", MIME_TYPE),
        RegistryValue(rf"{CLASSES}\{EXTENSION}\OpenWithProgids", WINDOWS_PROG_ID, ""),
        RegistryValue(prog, "", FILE_DESCRIPTION),
        RegistryValue(prog, "FriendlyTypeName", FILE_DESCRIPTION),
        RegistryValue(rf"{prog}\DefaultIcon", "", icon),
        RegistryValue(rf"{prog}\shell\open\command", "", command),
    ]
    if application:
        app = rf"{CLASSES}\Applications\{application}"
        entries += [
            RegistryValue(app, "FriendlyAppName", APP_NAME),
            RegistryValue(rf"{app}\SupportedTypes", EXTENSION, ""),
            RegistryValue(rf"{app}\DefaultIcon", "", icon),
            RegistryValue(rf"{app}\shell\open\command", "", command),
        ]
    return entries


def windows_icon(launch: Sequence[str]) -> str:
    """The ``DefaultIcon`` value: the bundle's executable carries the icon; a source install
    points at the ``.ico`` drawing."""
    if frozen() or not ICON_ICO.is_file():
        return f'"{launch[0]}",0'
    return str(ICON_ICO)


def install_windows(winreg: Any, entries: Sequence[RegistryValue]) -> Report:
    """Write ``entries`` with ``winreg`` (the module, or a stand-in in tests)."""
    report = Report()
    try:
        for entry in entries:
            with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, entry.key, 0, winreg.KEY_WRITE) as key:
                winreg.SetValueEx(key, entry.name, 0, winreg.REG_SZ, entry.value)
    except OSError as exc:
        raise ConvasError(f"could not write the registry key HKEY_CURRENT_USER\\{entry.key}: "
                          f"{exc.strerror or exc}") from exc
    report.notes.append(f"wrote {len(entries)} values under HKEY_CURRENT_USER\\{CLASSES}")
    return report


def uninstall_windows(winreg: Any, application: str | None) -> Report:
    """Remove Convas's association: its ProgID and application keys, and from ``.convas`` only
    what names Convas (another program's claim on the extension stays)."""
    report = Report()
    extension = rf"{CLASSES}\{EXTENSION}"
    try:
        trees = [rf"{CLASSES}\{WINDOWS_PROG_ID}"]
        if application:
            trees.append(rf"{CLASSES}\Applications\{application}")
        for tree in trees:
            if _delete_tree(winreg, tree):
                report.notes.append(f"removed HKEY_CURRENT_USER\\{tree}")
        if _delete_value(winreg, rf"{extension}\OpenWithProgids", WINDOWS_PROG_ID):
            report.notes.append(f"removed {WINDOWS_PROG_ID} from HKEY_CURRENT_USER\\{extension}\\OpenWithProgids")
        if _read_value(winreg, extension, "") == WINDOWS_PROG_ID:
            _delete_value(winreg, extension, "")
            if _read_value(winreg, extension, "Content Type") == MIME_TYPE:
                _delete_value(winreg, extension, "Content Type")
            report.notes.append(f"removed the default opener of {EXTENSION}")
        for key in (rf"{extension}\OpenWithProgids", extension):
            _delete_if_empty(winreg, key)
    except OSError as exc:
        raise ConvasError(f"could not change the registry: {exc.strerror or exc}") from exc
    return report


def _read_value(winreg: Any, key: str, name: str) -> str | None:
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_READ) as handle:
            return str(winreg.QueryValueEx(handle, name)[0])
    except FileNotFoundError:
        return None


def _delete_value(winreg: Any, key: str, name: str) -> bool:
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_ALL_ACCESS) as handle:
            winreg.DeleteValue(handle, name)
    except FileNotFoundError:
        return False
    return True


def _delete_if_empty(winreg: Any, key: str) -> None:
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_READ) as handle:
            subkeys, values, _ = winreg.QueryInfoKey(handle)
    except FileNotFoundError:
        return
    if subkeys == 0 and values == 0:
        winreg.DeleteKey(winreg.HKEY_CURRENT_USER, key)


def _delete_tree(winreg: Any, key: str) -> bool:
    """Delete ``key`` and everything under it (``DeleteKey`` refuses a key with subkeys)."""
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_ALL_ACCESS) as handle:
            children: list[str] = []
            while True:
                try:
                    children.append(winreg.EnumKey(handle, len(children)))
                except OSError:
                    break
    except FileNotFoundError:
        return False
    for child in children:
        _delete_tree(winreg, rf"{key}\{child}")
    winreg.DeleteKey(winreg.HKEY_CURRENT_USER, key)
    return True


def notify_associations_changed() -> None:
    """Tell Explorer to read the file associations again (``SHChangeNotify``); best effort."""
    try:
        import ctypes

        shell32 = ctypes.WinDLL("shell32")  # type: ignore[attr-defined,unused-ignore]
        shell32.SHChangeNotify.argtypes = [ctypes.c_long, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        shell32.SHChangeNotify.restype = None
        shcne_assocchanged, shcnf_idlist = 0x08000000, 0x0000
        shell32.SHChangeNotify(shcne_assocchanged, shcnf_idlist, None, None)
    except Exception:  # noqa: BLE001 - Explorer catches up at the next log-in anyway
        pass


# --- macOS --------------------------------------------------------------------------------------

LSREGISTER = Path("/System/Library/Frameworks/CoreServices.framework/Frameworks/LaunchServices.framework"
                  "/Support/lsregister")


def app_bundle() -> Path | None:
    """The ``.app`` this runs from (``X.app/Contents/MacOS/convas``), if any."""
    if not frozen():
        return None
    parts = Path(sys.executable).absolute().parents
    return next((p for p in parts if p.suffix == ".app"), None)


def macos(install: bool) -> Report:
    report = Report()
    bundle = app_bundle()
    if bundle is None:
        report.notes.append("On macOS the Convas application (Convas.app) declares .convas files itself: "
                            "copy it to Applications and Finder opens them with it. A source checkout "
                            f"has nothing to {'install' if install else 'remove'}; open files with `convas FILE`.")
        return report
    flag = "-f" if install else "-u"
    try:
        done = subprocess.run([str(LSREGISTER), flag, str(bundle)], capture_output=True, encoding="utf-8",
                              errors="replace", timeout=TOOL_TIMEOUT_S, check=False)
        outcome = ToolOutcome.RAN if done.returncode == 0 else ToolOutcome.FAILED
        report.tools.append(ToolRun("lsregister", outcome, done.stderr.strip()))
    except (OSError, subprocess.SubprocessError) as exc:
        report.tools.append(ToolRun("lsregister", ToolOutcome.FAILED, str(exc)))
    report.notes.append(f"{bundle} is {'registered' if install else 'unregistered'} with Launch Services"
                        if report.tools[0].outcome is ToolOutcome.RAN else
                        f"{bundle} declares .convas files; Finder reads it when the app is in Applications")
    return report


# --- the command --------------------------------------------------------------------------------

def command(argv: list[str]) -> int:
    """``convas --install-desktop-entry`` / ``--uninstall-desktop-entry``: do it for this
    user and say what was written or removed. Exit status 0, or 2 with a message on stderr
    when the arguments are wrong or a file or registry key cannot be written."""
    args = [a for a in argv if a != "--debug"]
    if len(args) != 1 or args[0] not in (INSTALL_FLAG, UNINSTALL_FLAG):
        print(f"usage: convas {INSTALL_FLAG} | {UNINSTALL_FLAG}  (nothing else on the line)", file=sys.stderr)
        return EXIT_USAGE
    install = args[0] == INSTALL_FLAG
    system = current_system()
    try:
        if system is System.FREEDESKTOP:
            home = data_home()
            report = install_freedesktop(home, launch_command(system)) if install else uninstall_freedesktop(home)
        elif system is System.WINDOWS:
            import winreg  # type: ignore[import-not-found,unused-ignore]

            launch = launch_command(system)
            application = PureWindowsPath(launch[0]).name if frozen() else None
            report = (install_windows(winreg, windows_registry_entries(launch, windows_icon(launch), application))
                      if install else uninstall_windows(winreg, application))
            notify_associations_changed()
        else:
            report = macos(install)
    except ConvasError as exc:
        print(f"convas: {exc}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    print(describe(report, install, system))
    return EXIT_OK


def describe(report: Report, install: bool, system: System) -> str:
    lines = []
    if report.written:
        lines.append(f"Convas now opens {EXTENSION} files (for this user). Wrote:")
        lines += _listed(report.written)
    if report.removed:
        lines.append(f"Convas no longer opens {EXTENSION} files. Removed:")
        lines += _listed(report.removed)
    if system is System.FREEDESKTOP and not install and not report.removed:
        lines.append("Nothing to remove: no Convas desktop entry is installed for this user.")
    if report.missing:
        lines.append("Icons not found (Convas shows a generic icon instead): "
                     + ", ".join(dict.fromkeys(p.name for p in report.missing)))
    lines += report.notes
    for run in report.tools:
        lines.append(f"{run.name}: {run.outcome.value}" + (f" ({run.detail})" if run.detail else ""))
    if system is System.FREEDESKTOP and install:
        lines.append("If your file manager still offers another application, choose Convas once under "
                     "“Open With” and make it the default.")
    return "\n".join(lines)


def _listed(paths: Sequence[Path]) -> list[str]:
    """One line per file, but the icons (two per size) in one line per theme folder."""
    icons: dict[Path, int] = {}
    lines = []
    for path in paths:
        theme = next((p for p in path.parents if p.name == "hicolor"), None)
        if theme is None:
            lines.append(f"  {path}")
        else:
            icons[theme] = icons.get(theme, 0) + 1
    lines += [f"  {count} icon files (each size, for the application and its files) under {theme}"
              for theme, count in icons.items()]
    return lines
