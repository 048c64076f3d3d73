"""File → New from Pretrained…, driven as a person would: search, pick a row, set the size, choose
a weights file (a locally built "pretrained" file stands in for ImageNet's; the file picker is
monkeypatched), Create, and the window shows the design with its weights. The download path is
driven against a closed local port: the dialog says what to do when offline. No test here
reaches the internet."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog

from engine import applications as apps
from gui.pretrained_dialog import CACHED, NAME, TOP1, PretrainedDialog
from gui.theme import ERROR_COLOR

from driving import menu_action

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

SMALL = "MobileNetV3Small"
# The dialog's first figures import TensorFlow on a worker thread: over a minute on a loaded
# two-core CI machine when this file is the first of its pytest worker to need it.
WAIT_MS = 180_000


@pytest.fixture
def keras_home(tmp_path, monkeypatch) -> Path:
    """An empty Keras home: no weights are cached."""
    home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("a test tried to reach the internet")

    monkeypatch.setattr(socket, "create_connection", refuse)


def _pretrained_file(folder: Path) -> Path:
    """MobileNetV3Small (no classifier, 32×32) weights in Keras's ImageNet file layout, under the
    name Keras gives that file."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    model = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = folder / apps.weights_file(SMALL, False, 32).fname
    with h5py.File(path, "w") as fh:
        legacy_h5_format.save_weights_to_hdf5_group(fh, model)
    return path


def _click_row(qtbot, dialog: PretrainedDialog, name: str) -> None:
    row = dialog.row_of(name)
    assert row >= 0, name
    rect = dialog.table.visualRect(dialog.proxy.index(row, NAME))
    qtbot.mouseClick(dialog.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert dialog.current().name == name


def _set_size(qtbot, dialog: PretrainedDialog, size: int) -> None:
    """Type the size (Enter would press Create, as in any dialog)."""
    spin = dialog.size_spin
    qtbot.keyClick(spin, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(spin, str(size))
    assert dialog.input_size() == size


def test_new_from_pretrained_opens_the_design_with_the_files_weights(window, qtbot, tmp_path, keras_home,
                                                                     no_network, monkeypatch):
    weights = _pretrained_file(tmp_path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_a, **_k: (str(weights), ""))
    seen: dict[str, str] = {}

    def drive() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, PretrainedDialog)
        assert dialog.proxy.rowCount() == len(apps.catalogue())
        qtbot.keyClicks(dialog.search, "mobilenetv3")
        assert dialog.proxy.rowCount() == 2  # MobileNetV3Large and MobileNetV3Small
        _click_row(qtbot, dialog, SMALL)
        assert not dialog.keep_top.isChecked() and dialog.size_spin.isEnabled()
        _set_size(qtbot, dialog, 32)
        qtbot.waitUntil(lambda: not dialog.is_computing(), timeout=WAIT_MS)
        seen["figures"] = dialog.figures.text()
        seen["cache"] = dialog.cache_note.text()
        seen["download"] = dialog.download_note.text()
        assert not dialog.weights_cache.isEnabled() and dialog.weights_random.isChecked()
        qtbot.mouseClick(dialog.weights_file, Qt.MouseButton.LeftButton)  # opens the (patched) picker
        assert dialog.weights_file.isChecked() and dialog.file_label.text() == str(weights)
        qtbot.mouseClick(dialog.freeze, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)

    failures: list[BaseException] = []

    def drive_then_close() -> None:
        try:
            drive()
        except BaseException as exc:  # noqa: BLE001 - reported after the dialog has closed
            failures.append(exc)
            dialog = QApplication.activeModalWidget()
            if isinstance(dialog, PretrainedDialog):
                dialog.reject()

    QTimer.singleShot(0, drive_then_close)
    menu_action(window, "File", "New from Pretrained").trigger()
    if failures:
        raise failures[0]

    assert seen["figures"] == "939,120 parameters · 1.61 M MACs per image · 175 layers"
    assert seen["cache"] == f"Not found in {keras_home / 'models'}"
    assert seen["download"] == (f"≈ 4 MB from storage.googleapis.com, into {keras_home / 'models'}; "
                                "only when you press Create")
    doc = window.document
    assert doc.design.name == "mobilenetv3small_32" and len(doc.design.nodes) == 175
    assert doc.path is None and not doc.modified
    assert doc.weights is not None and doc.weights.file.is_file() and weights.name in doc.weights.description
    assert sum(not n.trainable for n in doc.design.nodes.values()) > 100
    assert window.statusBar().currentMessage().startswith(f"New {SMALL} at 32×32 without its classifier, "
                                                          f"weights from {weights.name}: 175 layers")


def test_sizes_and_the_classifier_follow_what_keras_accepts(qtbot, keras_home, no_network):
    # Keras's cache holds MobileNetV3Small's file: its row says so, and choosing it offers that file.
    fname = apps.weights_file(SMALL, False).fname
    (keras_home / "models").mkdir(parents=True)
    (keras_home / "models" / fname).write_bytes(b"weights")
    dialog = PretrainedDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    row = dialog.row_of(SMALL)
    qtbot.waitUntil(lambda: dialog.proxy.index(row, CACHED).data() == "Yes", timeout=WAIT_MS)
    assert dialog.proxy.index(dialog.row_of("MobileNetV3Large"), CACHED).data() == ""
    _click_row(qtbot, dialog, SMALL)
    qtbot.waitUntil(lambda: dialog.weights_cache.isChecked(), timeout=WAIT_MS)
    assert dialog.cache_note.text() == f"Found {keras_home / 'models' / fname}"

    _click_row(qtbot, dialog, "Xception")
    assert dialog.size_spin.minimum() == 71 and dialog.input_size() == 299
    qtbot.mouseClick(dialog.keep_top, Qt.MouseButton.LeftButton)
    assert not dialog.size_spin.isEnabled() and dialog.input_size() == 299
    assert "the classifier needs 299×299" in dialog.size_note.text()
    qtbot.mouseClick(dialog.keep_top, Qt.MouseButton.LeftButton)
    assert dialog.size_spin.isEnabled()
    # Sorting by top-1 (clicking its header, twice for descending) puts the most accurate first.
    header = dialog.table.horizontalHeader()
    x = header.sectionViewportPosition(TOP1) + header.sectionSize(TOP1) // 2
    for _ in range(2):
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))
        if header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder:
            break
    assert header.sortIndicatorSection() == TOP1
    assert dialog.proxy.index(0, NAME).data() == "EfficientNetV2L"
    dialog.reject()


def test_offline_download_says_what_to_do(qtbot, keras_home, monkeypatch):
    with socket.socket() as probe:  # a local port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    real = apps.weights_file

    def local(name, include_top, input_size=None):
        found = real(name, include_top, input_size)
        return found._replace(origin=f"http://127.0.0.1:{port}/{found.fname}")

    monkeypatch.setattr(apps, "weights_file", local)
    dialog = PretrainedDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    _click_row(qtbot, dialog, SMALL)
    _set_size(qtbot, dialog, 32)
    qtbot.waitUntil(lambda: not dialog.is_computing(), timeout=WAIT_MS)
    qtbot.mouseClick(dialog.weights_download, Qt.MouseButton.LeftButton)
    assert dialog.weights_download.isChecked()
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=WAIT_MS)
    text = dialog.status.text()
    assert text.startswith(f"no connection to 127.0.0.1:{port} (")
    assert ERROR_COLOR in dialog.status.styleSheet()
    assert text.endswith(f"connect to the internet or choose a weights file you already have (Keras keeps "
                         f"them in {keras_home / 'models'})")
    assert dialog.created is None and dialog.create_button.isEnabled() and dialog.isVisible()
    assert not list((keras_home / "models").glob("*"))  # no partial file left
    dialog.reject()


def test_a_download_shows_progress_then_creates_the_design(qtbot, tmp_path, keras_home, monkeypatch):
    """A local HTTP server on 127.0.0.1 stands in for storage.googleapis.com."""
    import hashlib
    import http.server
    import threading

    body = _pretrained_file(tmp_path).read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    real = apps.weights_file

    def local(name, include_top, input_size=None):
        found = real(name, include_top, input_size)
        return found._replace(origin=f"http://127.0.0.1:{httpd.server_address[1]}/{found.fname}",
                              file_hash=hashlib.md5(body).hexdigest())

    monkeypatch.setattr(apps, "weights_file", local)
    try:
        dialog = PretrainedDialog()
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        _click_row(qtbot, dialog, SMALL)
        _set_size(qtbot, dialog, 32)
        qtbot.waitUntil(lambda: not dialog.is_computing(), timeout=WAIT_MS)
        qtbot.mouseClick(dialog.weights_download, Qt.MouseButton.LeftButton)
        formats: list[str] = []
        dialog.progress.valueChanged.connect(lambda _v: formats.append(dialog.progress.format()))
        with qtbot.waitSignal(dialog.accepted, timeout=WAIT_MS):
            qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    total = f"{len(body) / 1e6:,.0f} MB"
    assert formats and formats[-1] == f"{total} of {total}"
    cached = keras_home / "models" / real(SMALL, False, 32).fname
    assert cached.read_bytes() == body  # in Keras's cache, where Keras itself finds it
    assert dialog.created is not None and dialog.created.design.name == "mobilenetv3small_32"
    assert cached.name in dialog.created.weights.description
