"""``convas --install-desktop-entry``: the freedesktop files (read back as the specs read them),
the Windows registry values (written to a stand-in ``winreg``), and the command's messages."""

from __future__ import annotations

import configparser
import shutil
import sys
from pathlib import Path

import pytest

import main
from engine import desktop_install
from engine.app_identity import APP_ID, ICON_SIZES, icon_png
from engine.desktop_install import (
    System,
    ToolOutcome,
    desktop_entry,
    exec_argument,
    freedesktop_files,
    install_freedesktop,
    install_windows,
    uninstall_freedesktop,
    uninstall_windows,
    windows_registry_entries,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    """``$XDG_DATA_HOME`` in a folder whose name has a space and non-ASCII letters."""
    path = tmp_path / "données perso" / "share"
    monkeypatch.setenv("XDG_DATA_HOME", str(path))
    monkeypatch.setattr(desktop_install, "current_system", lambda: System.FREEDESKTOP)
    return path


def unquote_exec(value: str) -> list[str]:
    """The Desktop Entry spec's reading of an ``Exec`` value: string escapes first, then the
    command line's quoting (a reference reader, written from the spec, not from the writer)."""
    text, i = [], 0
    while i < len(value):  # the value is a "string": \s \n \t \r \\
        if value[i] == "\\" and i + 1 < len(value):
            text.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(value[i + 1], "\\" + value[i + 1]))
            i += 2
        else:
            text.append(value[i])
            i += 1
    line, args, current, quoted, started, i = "".join(text), [], [], False, False, 0
    while i < len(line):
        c = line[i]
        if quoted:
            if c == "\\" and i + 1 < len(line) and line[i + 1] in '"`$\\':
                current.append(line[i + 1])
                i += 1
            elif c == '"':
                quoted = False
            else:
                current.append(c)
        elif c == '"':
            quoted = started = True
        elif c == " ":
            if started:
                args.append("".join(current))
            current, started = [], False
        else:
            current.append(c)
            started = True
        i += 1
    if started:
        args.append("".join(current))
    return [a.replace("%%", "%") for a in args]


@pytest.mark.parametrize("argument", [
    "/usr/bin/convas", "/home/ana/my apps/.venv/bin/convas", "/opt/Ünïcode 設計/convas",
    '/odd/"quoted" $HOME `tick` back\\slash/100%/convas', "/tab\there/convas",
])
def test_exec_arguments_read_back_as_written(argument: str) -> None:
    exec_value = exec_argument(argument) + " %f"
    assert unquote_exec(exec_value) == [argument, "%f"]
    if " " not in argument and "\\" not in argument and '"' not in argument and "\t" not in argument:
        assert exec_argument(argument) == argument  # plain paths stay plain


def read_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def test_install_writes_the_entry_the_mime_type_and_the_icons(home: Path) -> None:
    launch = [str(home.parent / "my venv" / "bin" / "convas")]
    report = install_freedesktop(home, launch, refresh=False)

    assert report.missing == []  # every icon size the hicolor theme wants is drawn
    assert sorted(report.written) == sorted(f.path for f in freedesktop_files(home, launch))
    entry = read_entry(home / "applications" / f"{APP_ID}.desktop")
    assert unquote_exec(entry["Exec"]) == [*launch, "%f"]
    assert entry["Name"] == "Convas" and entry["Icon"] == APP_ID and entry["Terminal"] == "false"
    assert entry["MimeType"] == "application/x-convas;" and entry["Type"] == "Application"
    assert entry["StartupWMClass"] == "Convas"
    assert set(entry["Categories"].rstrip(";").split(";")) == {"Development", "Science", "Education"}
    mime = (home / "mime" / "packages" / f"{APP_ID}.xml").read_text(encoding="utf-8")
    assert '<glob pattern="*.convas"/>' in mime and '<sub-class-of type="application/json"/>' in mime
    for size in (s for s in ICON_SIZES if s <= 512):
        for kind, name in (("apps", APP_ID), ("mimetypes", "application-x-convas")):
            installed = home / "icons" / "hicolor" / f"{size}x{size}" / kind / f"{name}.png"
            assert installed.read_bytes() == icon_png(size).read_bytes()
    assert (home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg").is_file()
    assert not (home / "icons" / "hicolor" / "1024x1024").exists()


def test_uninstall_removes_exactly_what_install_wrote(home: Path) -> None:
    theirs = [home / "applications" / "org.other.App.desktop", home / "mime" / "packages" / "other.xml",
              home / "icons" / "hicolor" / "48x48" / "apps" / "other.png"]
    for path in theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("someone else's", encoding="utf-8")
    written = install_freedesktop(home, ["/usr/bin/convas"], refresh=False).written

    report = uninstall_freedesktop(home, refresh=False)
    assert sorted(report.removed) == sorted(written)
    assert not any(p.exists() for p in written)
    assert all(p.read_text(encoding="utf-8") == "someone else's" for p in theirs)
    assert uninstall_freedesktop(home, refresh=False).removed == []  # twice: nothing left, no error


@pytest.mark.skipif(shutil.which("update-mime-database") is None, reason="shared-mime-info is not installed")
def test_the_mime_database_learns_the_convas_glob(home: Path) -> None:
    report = install_freedesktop(home, ["/usr/bin/convas"])
    runs = {run.name: run.outcome for run in report.tools}
    assert runs["update-mime-database"] is ToolOutcome.RAN
    assert runs["gtk-update-icon-cache"] in (ToolOutcome.NOT_NEEDED, ToolOutcome.MISSING)  # no cache there: none made
    assert "application/x-convas:*.convas" in (home / "mime" / "globs2").read_text(encoding="utf-8")
    assert "application/x-convas application/json" in (home / "mime" / "subclasses").read_text(encoding="utf-8")


def test_missing_tools_are_reported_not_fatal(home: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no tools here"))
    assert main.main(["--install-desktop-entry"]) == 0
    out = capsys.readouterr().out
    assert f"{home / 'applications' / (APP_ID + '.desktop')}" in out
    assert "update-mime-database: not installed" in out and "update-desktop-database: not installed" in out
    assert (home / "applications" / f"{APP_ID}.desktop").is_file()

    assert main.main(["--uninstall-desktop-entry"]) == 0
    assert "no longer opens .convas files" in capsys.readouterr().out
    assert not (home / "applications" / f"{APP_ID}.desktop").exists()


def test_the_command_says_why_it_cannot_write(home: Path, monkeypatch, capsys) -> None:
    home.parent.mkdir(parents=True)
    home.write_text("a file where the folder should be", encoding="utf-8")
    assert main.main(["--install-desktop-entry"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("convas: could not write ") and "Traceback" not in captured.err
    assert captured.out == ""


def test_the_command_refuses_other_arguments(home: Path, capsys) -> None:
    assert main.main(["--install-desktop-entry", "extra"]) == 2
    assert "usage: convas --install-desktop-entry" in capsys.readouterr().err
    assert not home.exists()


def test_a_source_install_starts_its_own_convas_script(monkeypatch) -> None:
    monkeypatch.delenv("APPIMAGE", raising=False)
    monkeypatch.delattr(sys, "frozen", raising=False)
    launch = desktop_install.launch_command(System.FREEDESKTOP)
    assert Path(launch[0]).is_absolute()
    assert Path(launch[0]).name == "convas" or launch[1:] == [str(Path(main.__file__).resolve())]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/Convas 1/convas")
    assert desktop_install.launch_command(System.FREEDESKTOP) == ["/opt/Convas 1/convas"]
    monkeypatch.setenv("APPIMAGE", "/home/ana/Apps/Convas-x86_64.AppImage")
    assert desktop_install.launch_command(System.FREEDESKTOP) == ["/home/ana/Apps/Convas-x86_64.AppImage"]
    assert "Exec=\"/opt/Convas 1/convas\" %f" in desktop_entry(["/opt/Convas 1/convas"])


# --- Windows, with a stand-in for winreg ----------------------------------------------------------

class FakeKey:
    def __init__(self, registry: FakeWinreg, path: str) -> None:
        self.registry, self.path = registry, path

    def __enter__(self) -> FakeKey:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class FakeWinreg:
    """``winreg``'s calls the installer uses, on a dictionary: keys are case-insensitive paths
    under HKEY_CURRENT_USER; ``DeleteKey`` refuses a key with subkeys, as Windows does."""

    HKEY_CURRENT_USER = "HKCU"
    KEY_READ, KEY_WRITE, KEY_ALL_ACCESS, REG_SZ = 1, 2, 3, 1

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, str]] = {}
        self.names: dict[str, str] = {}  # lower-case path → as first written

    @staticmethod
    def _join(root: object, sub: str) -> str:
        base = root.path if isinstance(root, FakeKey) else ""
        return "\\".join(p for p in (base, sub) if p).lower()

    def CreateKeyEx(self, root: object, sub: str, reserved: int = 0, access: int = 0) -> FakeKey:  # noqa: N802
        path, parts = self._join(root, sub), []
        for part in path.split("\\"):
            parts.append(part)
            self.keys.setdefault("\\".join(parts), {})
        return FakeKey(self, path)

    def OpenKey(self, root: object, sub: str, reserved: int = 0, access: int = 0) -> FakeKey:  # noqa: N802
        path = self._join(root, sub)
        if path not in self.keys:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return FakeKey(self, path)

    def SetValueEx(self, key: FakeKey, name: str, reserved: int, kind: int, value: str) -> None:  # noqa: N802
        assert kind == self.REG_SZ and isinstance(value, str)
        self.keys[key.path][name.lower()] = value

    def QueryValueEx(self, key: FakeKey, name: str) -> tuple[str, int]:  # noqa: N802
        try:
            return self.keys[key.path][name.lower()], self.REG_SZ
        except KeyError:
            raise FileNotFoundError(2, "The system cannot find the file specified") from None

    def DeleteValue(self, key: FakeKey, name: str) -> None:  # noqa: N802
        self.keys[key.path].pop(name.lower())

    def _children(self, path: str) -> list[str]:
        prefix = path + "\\"
        return sorted(k[len(prefix):] for k in self.keys if k.startswith(prefix) and "\\" not in k[len(prefix):])

    def EnumKey(self, key: FakeKey, index: int) -> str:  # noqa: N802
        children = self._children(key.path)
        if index >= len(children):
            raise OSError(259, "No more data is available")
        return children[index]

    def QueryInfoKey(self, key: FakeKey) -> tuple[int, int, int]:  # noqa: N802
        return len(self._children(key.path)), len(self.keys[key.path]), 0

    def DeleteKey(self, root: object, sub: str) -> None:  # noqa: N802
        path = self._join(root, sub)
        if path not in self.keys:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        if self._children(path):
            raise PermissionError(5, "Access is denied")
        del self.keys[path]

    def value(self, key: str, name: str = "") -> str | None:
        return self.keys.get(key.lower(), {}).get(name.lower())


EXE = "C:\\Program Files\\Convas ünd 設計\\Convas.exe"


def test_registry_entries_associate_convas_files_with_the_executable() -> None:
    entries = windows_registry_entries([EXE], f'"{EXE}",0', "Convas.exe")
    values = {(e.key, e.name): e.value for e in entries}
    assert values[("Software\\Classes\\.convas", "")] == "Convas.Design.1"
    assert values[("Software\\Classes\\.convas\\OpenWithProgids", "Convas.Design.1")] == ""
    assert values[("Software\\Classes\\Convas.Design.1", "FriendlyTypeName")] == "Convas design"
    assert values[("Software\\Classes\\Convas.Design.1\\DefaultIcon", "")] == f'"{EXE}",0'
    assert values[("Software\\Classes\\Convas.Design.1\\shell\\open\\command", "")] == f'"{EXE}" "%1"'
    assert values[("Software\\Classes\\Applications\\Convas.exe\\SupportedTypes", ".convas")] == ""
    # A source install runs pythonw.exe: it must not claim to be Convas under Applications.
    source = windows_registry_entries(["C:\\py\\pythonw.exe", "C:\\my src\\main.py"], "C:\\x.ico", None)
    assert not any("Applications" in e.key for e in source)
    commands = {e.value for e in source if e.key.endswith("command")}
    assert commands == {'"C:\\py\\pythonw.exe" "C:\\my src\\main.py" "%1"'}


def test_uninstall_leaves_the_registry_as_it_was_and_other_programs_claims(monkeypatch, capsys) -> None:
    winreg = FakeWinreg()
    with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, "Software\\Classes\\.convas\\OpenWithProgids") as key:
        winreg.SetValueEx(key, "Other.Editor", 0, winreg.REG_SZ, "")
    with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, "Software\\Classes\\Applications\\notepad.exe") as key:
        winreg.SetValueEx(key, "FriendlyAppName", 0, winreg.REG_SZ, "Notepad")
    before = {k: dict(v) for k, v in winreg.keys.items()}

    monkeypatch.setattr(desktop_install, "current_system", lambda: System.WINDOWS)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", EXE)
    monkeypatch.setitem(sys.modules, "winreg", winreg)
    assert main.main(["--install-desktop-entry"]) == 0  # SHChangeNotify is missing here: quietly skipped
    assert "values under HKEY_CURRENT_USER" in capsys.readouterr().out
    assert winreg.value("Software\\Classes\\Convas.Design.1\\shell\\open\\command") == f'"{EXE}" "%1"'
    assert winreg.value("Software\\Classes\\.convas") == "Convas.Design.1"
    assert winreg.value("Software\\Classes\\Applications\\Convas.exe\\SupportedTypes", ".convas") == ""

    assert main.main(["--uninstall-desktop-entry"]) == 0
    assert winreg.keys == before


def test_a_registry_that_refuses_is_a_clear_message() -> None:
    class Refusing(FakeWinreg):
        def SetValueEx(self, *args: object) -> None:  # noqa: N802
            raise PermissionError(5, "Access is denied")

    with pytest.raises(desktop_install.ConvasError, match=r"could not write the registry key .*Access is denied"):
        install_windows(Refusing(), windows_registry_entries([EXE], "x", None))
    winreg = FakeWinreg()
    assert uninstall_windows(winreg, "Convas.exe").notes == []  # nothing installed: nothing to remove
    assert winreg.keys == {}


def test_macos_from_source_says_the_bundle_declares_the_types(monkeypatch, capsys) -> None:
    monkeypatch.setattr(desktop_install, "current_system", lambda: System.MACOS)
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert main.main(["--install-desktop-entry"]) == 0
    assert "Convas.app" in capsys.readouterr().out
