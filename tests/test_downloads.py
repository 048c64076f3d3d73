"""Downloads with progress, cancel and a hash check, against a local HTTP server on 127.0.0.1 in a
thread (never the internet); a closed local port stands in for being offline."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.downloads import DownloadError, DownloadFailure, download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: four chunks


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        if self.path == "/missing.h5":
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *_args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_download_reports_progress_and_checks_the_hash(server, tmp_path):
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "models" / "weights.h5"
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    assert download(f"{server}/weights.h5", dest, md5, lambda d, t: seen.append((d, t)), lambda: False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert seen[0] == (0, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= 4
    assert _leftovers(dest.parent) == ["weights.h5"]
    sha = hashlib.sha256(PAYLOAD).hexdigest()  # 64 digits: checked as SHA-256, as Keras does
    download(f"{server}/weights.h5", tmp_path / "again.h5", sha)
    assert (tmp_path / "again.h5").read_bytes() == PAYLOAD


def test_cancel_stops_within_a_chunk_and_leaves_nothing(server, tmp_path):
    chunks = []

    def progress(done: int, _total: int | None) -> None:
        chunks.append(done)

    with pytest.raises(DownloadError) as caught:
        download(f"{server}/weights.h5", tmp_path / "weights.h5", None, progress, lambda: len(chunks) >= 2)
    assert caught.value.failure is DownloadFailure.CANCELLED
    assert str(caught.value) == "the download of weights.h5 was cancelled"
    assert len(chunks) == 2 and chunks[-1] < len(PAYLOAD)
    assert _leftovers(tmp_path) == []


def test_a_file_with_the_wrong_hash_is_not_kept(server, tmp_path):
    dest = tmp_path / "weights.h5"
    dest.write_bytes(b"the old file")
    with pytest.raises(DownloadError) as caught:
        download(f"{server}/weights.h5", dest, "0" * 32, fallback=" or choose a file you have")
    assert caught.value.failure is DownloadFailure.HASH
    message = str(caught.value)
    assert message.startswith("weights.h5 from 127.0.0.1:") and "is not the published file (its md5 is" in message
    assert message.endswith("it was not kept. Try again later or choose a file you have")
    assert _leftovers(tmp_path) == ["weights.h5"] and dest.read_bytes() == b"the old file"


def test_an_http_error_says_what_the_server_answered(server, tmp_path):
    with pytest.raises(DownloadError) as caught:
        download(f"{server}/missing.h5", tmp_path / "missing.h5")
    assert caught.value.failure is DownloadFailure.HTTP
    assert "answered 404 Not Found for missing.h5; try again later" in str(caught.value)
    assert _leftovers(tmp_path) == []


def test_no_connection_says_what_to_do(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on: connecting is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fallback = " or choose a weights file you already have (Keras keeps them in ~/.keras/models)"
    with pytest.raises(DownloadError) as caught:
        download(f"http://127.0.0.1:{port}/weights.h5", tmp_path / "weights.h5", fallback=fallback)
    assert caught.value.failure is DownloadFailure.OFFLINE
    message = str(caught.value)
    assert message.startswith(f"no connection to 127.0.0.1:{port} (")
    assert message.endswith("; connect to the internet or choose a weights file you already have "
                            "(Keras keeps them in ~/.keras/models)")
    assert _leftovers(tmp_path) == []


def test_a_folder_that_cannot_be_made_is_a_disk_failure(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DownloadError) as caught:
        download("http://127.0.0.1:9/x.h5", blocker / "sub" / "x.h5")
    assert caught.value.failure is DownloadFailure.DISK
    assert "free some space or choose another folder" in str(caught.value)
