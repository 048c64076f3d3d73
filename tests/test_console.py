"""Console text: a Windows console or pipe encodes as a legacy code page (cp1252, cp437); what
Convas prints there must not end a command with UnicodeEncodeError (engine.console)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.console import ERRORS, LOOKALIKES, prepare_streams

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "resources" / "examples" / "seed_cnn.convas"


def legacy_stream(encoding: str) -> io.TextIOWrapper:
    """A text stream like Windows gives a pipe when PYTHONIOENCODING is unset: a code page,
    strict errors."""
    return io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors="strict", write_through=True)


def written(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode(stream.encoding)


def use_streams(monkeypatch: pytest.MonkeyPatch) -> tuple[io.TextIOWrapper, io.TextIOWrapper]:
    """stdout a cp1252 pipe, stderr a cp437 console. (Called in the test itself: pytest puts its
    own capture back in sys.stdout at the start of each test phase.)"""
    out, err = legacy_stream("cp1252"), legacy_stream("cp437")
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    return out, err


def test_a_code_page_stream_raises_without_preparation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The problem itself (so that the tests below can fail)."""
    use_streams(monkeypatch)
    with pytest.raises(UnicodeEncodeError):
        print("→ 日本")


def test_prepared_streams_print_any_text(monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = use_streams(monkeypatch)
    prepare_streams()
    print("conv1 → dense 日本 × 3 ┏━┓ ✓")
    print("error: 日本 → ⅓", file=sys.stderr)
    assert written(out) == "conv1 -> dense ?? × 3 +=+ v\n"  # cp1252 has "×"
    assert written(err) == "error: ?? -> ?\n"
    assert out.errors == ERRORS and err.errors == ERRORS


def test_lookalikes_are_ascii() -> None:
    assert all(replacement.isascii() for replacement in LOOKALIKES.values())
    assert all(not char.isascii() for char in LOOKALIKES)


def test_unicode_streams_are_left_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    out = legacy_stream("utf-8")
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", legacy_stream("UTF_8"))
    prepare_streams()
    print("→ 日本")
    assert out.errors == "strict" and written(out) == "→ 日本\n"


@pytest.mark.parametrize("missing", [None, io.StringIO()])
def test_missing_or_captured_streams_are_left_alone(monkeypatch: pytest.MonkeyPatch, missing: object) -> None:
    """A windowed executable on Windows has no streams (None); a test's capture is no TextIOWrapper."""
    monkeypatch.setattr(sys, "stdout", missing)
    monkeypatch.setattr(sys, "stderr", missing)
    prepare_streams()  # does not raise


def test_the_summary_command_prints_to_a_cp1252_pipe(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The entry point prepares the streams before the command prints: in-process, through
    main.main, with stdout a cp1252 pipe and a design in a folder named in Japanese."""
    import main

    folder = tmp_path / "設計 – ü"
    folder.mkdir()
    design = folder / "seed ⅓.convas"
    design.write_bytes(SEED.read_bytes())
    out, err = use_streams(monkeypatch)
    assert main.main(["summary", str(design)]) == 0
    text = written(out)
    assert "conv" in text and "Total params" in text
    assert written(err) == ""


def test_a_real_process_with_a_cp1252_pipe_prints_the_summary() -> None:
    """The same for a real process whose stdout is a pipe encoded as cp1252 (as on Windows)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUTF8",)}
    env["PYTHONIOENCODING"] = "cp1252"
    proc = subprocess.run([sys.executable, "main.py", "summary", str(SEED)], cwd=ROOT, env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode("cp1252", "replace")
    text = proc.stdout.decode("cp1252")
    assert "Total params" in text and "Traceback" not in proc.stderr.decode("cp1252")
