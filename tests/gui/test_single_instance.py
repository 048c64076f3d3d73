"""A second ``convas FILE`` hands FILE to the running window: the local-socket hand-over (two
servers in one process, a stale socket), the window opening what it is sent (after the usual
question about unsaved changes), and macOS's QFileOpenEvent."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray, QDir, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.app_identity import APP_NAME, ORGANIZATION
from gui import single_instance
from gui.single_instance import ForwardResult, InstanceServer, OpenRequests, forward

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "resources" / "examples" / "inception_module.convas"


@pytest.fixture(autouse=True)
def desktop_data(tmp_path: Path, monkeypatch) -> Path:
    """The desktop's recent-documents list goes to ``tmp_path``, not the user's."""
    path = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(path))
    return path


@pytest.fixture
def name(tmp_path: Path):
    """A server name no other test or user shares (its socket file removed afterwards)."""
    name = single_instance.server_name(str(tmp_path / "settings.ini"))
    yield name
    QLocalServer.removeServer(name)


@pytest.fixture
def design(tmp_path: Path) -> Path:
    """A project in a folder whose name has a space and non-ASCII letters."""
    folder = tmp_path / "Mes réseaux 設計"
    folder.mkdir()
    return Path(shutil.copy(EXAMPLE, folder / "réseau un.convas"))


CLIENT = """
import sys
from gui.single_instance import forward
print(forward(sys.argv[1], sys.argv[2:]).name)
"""


def second_start(qtbot, name: str, *paths: Path, token: str = "") -> ForwardResult:
    """What a second ``convas FILE`` does first, in a process of its own: a client in a thread
    of this one would hold Python's lock in its blocking waits, and the server could not answer."""
    env = {k: v for k, v in os.environ.items() if k != "XDG_ACTIVATION_TOKEN"}
    if token:
        env["XDG_ACTIVATION_TOKEN"] = token
    process = subprocess.Popen([sys.executable, "-c", CLIENT, name, *map(str, paths)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        qtbot.waitUntil(lambda: process.poll() is not None, timeout=30_000)
    finally:
        if process.poll() is None:
            process.kill()
    out, err = process.communicate()
    assert process.returncode == 0, err
    return ForwardResult[out.strip()]


def serving(window, name: str) -> tuple[InstanceServer, OpenRequests]:
    server = InstanceServer(name, parent=window)
    requests = OpenRequests(window, parent=window)
    server.sigOpenRequested.connect(requests.request)
    assert server.listen()
    return server, requests


def test_a_second_start_hands_its_file_to_the_running_window(window, qtbot, name: str, design: Path,
                                                             desktop_data: Path, monkeypatch) -> None:
    serving(window, name)
    monkeypatch.setenv("XDG_ACTIVATION_TOKEN", "")  # restored after the test, whatever the server sets
    assert second_start(qtbot, name, design, token="launcher-token_1") is ForwardResult.FORWARDED
    qtbot.waitUntil(lambda: window.document.path == design)
    assert "réseau un" in window.windowTitle()
    assert not window.document.modified
    # Opened: in the window's Open Recent menu, and in the desktop's recent documents.
    assert [a.toolTip() for a in window.recent_menu.actions()][:1] == [str(design)]
    assert design.as_uri() in (desktop_data / "recently-used.xbel").read_text(encoding="utf-8")
    # Wayland lets the running window take the focus with the launcher's token (offscreen keeps it).
    assert os.environ["XDG_ACTIVATION_TOKEN"] == "launcher-token_1"


def test_unsaved_changes_are_asked_about_first(window, qtbot, name: str, design: Path) -> None:
    serving(window, name)
    window.document.mark_unsaved()
    asked: list[str] = []

    def answer(tries: int = 250) -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            asked.append(box.text())
            qtbot.mouseClick(box.button(QMessageBox.StandardButton.Discard), Qt.MouseButton.LeftButton)
        elif tries:
            QTimer.singleShot(20, lambda: answer(tries - 1))
    QTimer.singleShot(0, answer)

    assert second_start(qtbot, name, design) is ForwardResult.FORWARDED
    qtbot.waitUntil(lambda: window.document.path == design)
    assert asked and asked[0].startswith("Save the changes to")


def test_a_file_waits_for_an_open_dialog_and_a_second_one_gets_its_own_window(
        window, qtbot, design: Path, monkeypatch) -> None:
    started: list[str] = []
    monkeypatch.setattr(single_instance, "start_new_window", lambda path: started.append(path) or True)
    requests = OpenRequests(window, parent=window)
    window.about()  # a window-modal dialog is open
    about = window.about_dialog
    qtbot.waitExposed(about)

    requests.request([str(design), "/elsewhere/other.convas"])
    qtbot.wait(400)
    assert window.document.path is None  # not under the user's open dialog
    assert started == ["/elsewhere/other.convas"]

    about.reject()
    qtbot.waitUntil(lambda: window.document.path == design)


def test_no_running_convas_is_known_at_once(qtbot, name: str, design: Path) -> None:
    assert forward(name, [design]) is ForwardResult.NO_INSTANCE


def test_a_second_server_leaves_the_first_one_serving(window, qtbot, name: str, design: Path) -> None:
    first, _ = serving(window, name)
    second = InstanceServer(name, parent=window)
    assert not second.listen()
    assert first.is_listening()
    assert second_start(qtbot, name, design) is ForwardResult.FORWARDED
    qtbot.waitUntil(lambda: window.document.path == design)


@pytest.mark.skipif(sys.platform == "win32", reason="a named pipe leaves nothing behind")
def test_a_socket_left_by_a_crashed_convas_is_taken_over(window, qtbot, name: str, design: Path) -> None:
    path = Path(QDir.tempPath()) / name
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # bound, never listening, closed: what a killed process leaves
    dead.close()
    try:
        assert path.exists()
        serving(window, name)
        assert second_start(qtbot, name, design) is ForwardResult.FORWARDED
        qtbot.waitUntil(lambda: window.document.path == design)
    finally:
        path.unlink(missing_ok=True)


def test_a_garbled_message_is_dropped_without_an_answer(window, qtbot, name: str) -> None:
    server, _ = serving(window, name)
    opened: list[list[str]] = []
    server.sigOpenRequested.connect(opened.append)

    client = QLocalSocket()
    client.connectToServer(name)
    qtbot.waitUntil(lambda: client.state() == QLocalSocket.LocalSocketState.ConnectedState)
    client.write(QByteArray(b'{"open": "not a list"}\n'))
    qtbot.waitUntil(lambda: client.state() == QLocalSocket.LocalSocketState.UnconnectedState)
    assert client.readAll().data() == b""  # no "ok": the sender starts a window of its own
    qtbot.wait(50)
    assert opened == []


def test_finder_asks_through_a_file_open_event(window, qtbot, design: Path) -> None:
    events = single_instance.FileOpenEvents(window)
    requests = OpenRequests(window, parent=window)
    events.sigOpenRequested.connect(requests.request)
    app = QApplication.instance()
    app.installEventFilter(events)
    try:
        QApplication.sendEvent(app, QFileOpenEvent(QUrl.fromLocalFile(str(design))))
        qtbot.waitUntil(lambda: window.document.path == design)
    finally:
        app.removeEventFilter(events)


@pytest.mark.parametrize(("argv", "environ", "expected"), [
    ([], {}, True), (["a.convas"], {"CONVAS_SINGLE_INSTANCE": "0"}, False),
    (["--new-window", "a.convas"], {}, False), ([], {"CONVAS_SINGLE_INSTANCE": "1"}, True),
])
def test_opting_out(argv: list[str], environ: dict[str, str], expected: bool) -> None:
    assert single_instance.wanted(argv, environ) is expected


def test_names_differ_per_settings_file_and_user() -> None:
    names = {single_instance.server_name("/a/settings.ini", "ana"),
             single_instance.server_name("/b/settings.ini", "ana"),
             single_instance.server_name("/a/settings.ini", "bo b/ü")}
    assert len(names) == 3
    assert all(len(n) < 80 and "/" not in n and " " not in n for n in names)
    digest = hashlib.sha256(b"/a/settings.ini").hexdigest()[:16]
    assert single_instance.server_name("/a/settings.ini", "ana") == f"convas-ana-{digest}"


def test_convas_file_forwards_to_the_running_one_and_exits(window, qtbot, tmp_path: Path, design: Path) -> None:
    """The real start (``main.py FILE``, a second process) finds the running Convas under the
    name its own settings file gives, hands the file over and exits 0 without a window."""
    name = single_instance.server_name(QSettings(ORGANIZATION, APP_NAME).fileName())
    server, _ = serving(window, name)
    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), str(design)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        qtbot.waitUntil(lambda: process.poll() is not None, timeout=60_000)
    finally:
        if process.poll() is None:
            process.kill()  # it started a window of its own: the hand-over failed
        server.close()  # removes the socket file
    _, err = process.communicate()
    assert process.returncode == 0, err
    qtbot.waitUntil(lambda: window.document.path == design)
