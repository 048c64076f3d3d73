"""One Convas per user receives the files the desktop opens: ``convas FILE`` while Convas runs
hands FILE to the running window instead of starting a second one.

Double-clicking a ``.convas`` file on Linux or Windows starts ``convas FILE``. That process
first tries to reach a running Convas through a local socket (a Unix socket, or a named pipe on
Windows) named per user and per settings file (:func:`server_name`), so that two users, or tests
with their own settings, never reach each other's window. If one answers, the process sends
the absolute paths, waits for the acknowledgement and exits without a window. If none answers,
it becomes the one that listens (:class:`InstanceServer`); a socket file a crashed Convas left
behind is removed first. On macOS, Finder instead sends the running application a
``QFileOpenEvent`` (:class:`FileOpenEvents`); both arrive at :class:`OpenRequests`.

``CONVAS_SINGLE_INSTANCE=0`` or ``convas --new-window`` starts an independent window.

The message is one line of JSON, ``{"open": ["/abs/path", ...], "activation_token": "..."}``
(the token only on Wayland), answered by ``ok``.
"""

from __future__ import annotations

import enum
import getpass
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QEvent, QObject, QProcess, QTimer, Signal, Slot
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication

if TYPE_CHECKING:
    from .main_window import MainWindow

ENV_SWITCH = "CONVAS_SINGLE_INSTANCE"  # "0": every start is an independent window
NEW_WINDOW_FLAG = "--new-window"
# No server is the usual case (the first start): a Unix socket that is not there fails at
# once; the timeout only bounds a server that exists but hangs.
CONNECT_TIMEOUT_MS = 300
ACK_TIMEOUT_MS = 5000    # the running window may be busy for a moment (a layout, a save)
ACK = b"ok\n"
MAX_MESSAGE_BYTES = 256 * 1024  # many long paths fit; a stray client cannot fill the memory
MODAL_RETRY_MS = 300     # while a dialog is open, a requested file waits for it to close
# On Wayland a window may take the focus only with a token from whoever launched the program
# (xdg-activation): the second start has it, and passes it on with the paths.
ACTIVATION_TOKEN = "XDG_ACTIVATION_TOKEN"


def wanted(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this start takes part in the one-window-per-user scheme."""
    return environ.get(ENV_SWITCH, "1").strip() != "0" and NEW_WINDOW_FLAG not in argv


def server_name(settings_file: str, user: str | None = None) -> str:
    """The local socket's name: the user's name (for a readable ``/tmp`` listing) and a hash
    of the settings file (which already differs per user, and per test)."""
    if user is None:
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name (a container without passwd): the hash suffices
            user = "user"
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", user)[:32] or "user"
    digest = hashlib.sha256(os.path.abspath(settings_file).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"convas-{safe}-{digest}"


class ForwardResult(enum.Enum):
    FORWARDED = "forwarded"      # a running Convas took the files
    NO_INSTANCE = "no instance"  # nobody listens: start a window
    NO_ANSWER = "no answer"      # someone listens but did not acknowledge in time: start a window


def forward(name: str, paths: Sequence[str | os.PathLike[str]], connect_timeout_ms: int = CONNECT_TIMEOUT_MS,
            ack_timeout_ms: int = ACK_TIMEOUT_MS) -> ForwardResult:
    """Send ``paths`` (made absolute: the running Convas has another working folder) to the
    Convas listening as ``name`` and wait for its acknowledgement. Blocking; no event loop needed."""
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(connect_timeout_ms):
        return ForwardResult.NO_INSTANCE
    request: dict[str, object] = {"open": [os.path.abspath(p) for p in paths]}
    token = os.environ.get(ACTIVATION_TOKEN, "")
    if token:  # the launcher's permission to take the focus on Wayland: the running window needs it
        request["activation_token"] = token
    message = json.dumps(request).encode("utf-8") + b"\n"
    socket.write(QByteArray(message))
    answer = b""
    try:
        if not socket.waitForBytesWritten(ack_timeout_ms):
            return ForwardResult.NO_ANSWER
        while not answer.endswith(b"\n") and socket.waitForReadyRead(ack_timeout_ms):
            answer += socket.readAll().data()
    finally:
        socket.abort()
    return ForwardResult.FORWARDED if answer == ACK else ForwardResult.NO_ANSWER


class InstanceServer(QObject):
    """The running Convas's end: listens as ``name`` and emits :attr:`sigOpenRequested` with the
    paths each well-formed message names, after acknowledging it."""

    sigOpenRequested = Signal(list)  # list[str] of absolute paths

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._accept)
        self._buffers: dict[QLocalSocket, bytes] = {}

    def listen(self) -> bool:
        """Start listening; False when another live Convas already does (then this window is an
        independent one). A socket left by a Convas that crashed is removed and taken over.

        The live one is found by connecting, not by a failing ``listen``: with
        ``UserAccessOption``, Qt on Unix binds in a private folder and renames the socket into
        place, which would silently take the name from a running Convas."""
        probe = QLocalSocket()
        probe.connectToServer(self.name)
        if probe.waitForConnected(CONNECT_TIMEOUT_MS):
            probe.abort()
            return False
        QLocalServer.removeServer(self.name)  # a dead one's socket file, if any
        return self.server.listen(self.name)

    def close(self) -> None:
        self.server.close()

    def is_listening(self) -> bool:
        return self.server.isListening()

    @Slot()
    def _accept(self) -> None:
        while (socket := self.server.nextPendingConnection()) is not None:
            self._buffers[socket] = b""
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(lambda s=socket: self._forget(s))
            self._read(socket)

    def _read(self, socket: QLocalSocket) -> None:
        if socket not in self._buffers:
            return
        data = self._buffers[socket] + socket.readAll().data()
        if len(data) > MAX_MESSAGE_BYTES:
            socket.abort()
            return
        self._buffers[socket] = data
        if not data.endswith(b"\n"):
            return
        paths, token = self._parse(data)
        if paths is None:
            socket.abort()
            return
        if token:
            # Qt's Wayland plugin takes the token from here at the next activateWindow().
            os.environ[ACTIVATION_TOKEN] = token
        socket.write(QByteArray(ACK))
        socket.flush()
        socket.disconnectFromServer()
        self._buffers.pop(socket, None)
        # After this slot: opening may ask about unsaved changes in a nested event loop.
        QTimer.singleShot(0, self, lambda: self.sigOpenRequested.emit(paths))

    @staticmethod
    def _parse(data: bytes) -> tuple[list[str] | None, str]:
        """The paths a message asks to open (None: not a message) and its activation token."""
        try:
            message = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None, ""
        paths = message.get("open") if isinstance(message, dict) else None
        if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
            return None, ""
        token = message.get("activation_token")
        return paths, token if isinstance(token, str) and token.isprintable() else ""

    def _forget(self, socket: QLocalSocket) -> None:
        self._buffers.pop(socket, None)
        socket.deleteLater()


class FileOpenEvents(QObject):
    """An event filter for the QApplication: macOS's Finder asks a running application to open
    a document with a ``QFileOpenEvent`` (also at start, instead of an argument)."""

    sigOpenRequested = Signal(list)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent):
            path = event.file() or event.url().toLocalFile()
            if path:
                self.sigOpenRequested.emit([path])
                return True
        return super().eventFilter(watched, event)


def start_new_window(path: str) -> bool:
    """Start an independent Convas on ``path`` (the same command the desktop entry runs)."""
    from engine.desktop_install import launch_command

    program, *arguments = launch_command()
    return bool(QProcess.startDetached(program, [*arguments, NEW_WINDOW_FLAG, path])[0])


class OpenRequests(QObject):
    """Files the desktop asked the running Convas to open, delivered to its window one at a
    time: the first opens in the window (after the usual question about unsaved changes), once
    no dialog is open; a file that arrives while one is still waiting or being opened (several
    files opened at once) starts a window of its own, so that none replaces another."""

    def __init__(self, window: MainWindow, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.window = window
        self.waiting: Path | None = None
        self.opening = False
        self.started: list[str] = []  # the files handed to new windows (for tests and --debug)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self._deliver)

    @Slot(list)
    def request(self, paths: list[str]) -> None:
        for path in paths:
            if self.waiting is None and not self.opening:
                self.waiting = Path(path)
                self.timer.start(0)
            elif start_new_window(path):
                self.started.append(path)

    def _deliver(self) -> None:
        if self.waiting is None:
            return
        if QApplication.activeModalWidget() is not None:
            self.window.bring_forward()  # the dialog the user must answer first
            self.timer.start(MODAL_RETRY_MS)
            return
        path, self.waiting = self.waiting, None
        self.opening = True
        try:
            self.window.open_requested(path)
        finally:
            self.opening = False
