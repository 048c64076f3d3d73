"""The application icon (issue 18): the files engine.app_identity names exist, hold what each
system reads from them, and packaging/make_icons.py draws exactly the committed bytes.

The ICO and ICNS containers are read here with their own small parsers, not with the writer's
code, so that a writer bug cannot hide behind a matching reader.
"""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import pytest

from engine import app_identity as ident

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _make_icons():
    spec = importlib.util.spec_from_file_location("make_icons", ROOT / "packaging" / "make_icons.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_header(data: bytes) -> tuple[int, int, int, int]:
    """Width, height, bit depth and colour type of a PNG (colour type 6: RGBA)."""
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, colour


def read_ico(data: bytes) -> list[tuple[int, bytes]]:
    """(size, image bytes) of each ICO entry; 0 in the one-byte width field means 256."""
    reserved, kind, count = struct.unpack_from("<HHH", data, 0)
    assert (reserved, kind) == (0, 1), "not an icon file"
    entries = []
    for i in range(count):
        entry = struct.unpack_from("<BBBBHHII", data, 6 + 16 * i)
        width, height, _colours, _reserved, planes, bits, size, offset = entry
        assert width == height and planes == 1 and bits == 32
        assert offset + size <= len(data)
        entries.append((width or 256, data[offset:offset + size]))
    return entries


def read_icns(data: bytes) -> list[tuple[str, bytes]]:
    """(type, data) of each ICNS entry, checking the file and entry lengths add up."""
    assert data[:4] == b"icns" and struct.unpack(">I", data[4:8])[0] == len(data)
    entries, at = [], 8
    while at < len(data):
        kind = data[at:at + 4].decode("ascii")
        (length,) = struct.unpack(">I", data[at + 4:at + 8])
        assert length > 8 and at + length <= len(data)
        entries.append((kind, data[at + 8:at + length]))
        at += length
    return entries


def test_every_icon_file_the_identity_names_exists():
    for path in (ident.ICON_SVG, ident.ICON_ICO, ident.ICON_ICNS, *(ident.icon_png(n) for n in ident.ICON_SIZES)):
        assert path.is_file() and path.stat().st_size > 0, path
    assert ident.ICON_DIR == ROOT / "resources" / "icons"


@pytest.mark.parametrize("size", ident.ICON_SIZES)
def test_each_png_is_square_at_its_size_with_alpha(size):
    data = ident.icon_png(size).read_bytes()
    assert png_header(data) == (size, size, 8, 6)  # 8-bit RGBA


def test_the_pngs_have_transparent_corners_and_an_opaque_middle(qapp):
    from PySide6.QtGui import QImage

    for size in ident.ICON_SIZES:
        image = QImage(str(ident.icon_png(size)))
        assert image.width() == size and image.hasAlphaChannel()
        assert image.pixelColor(0, 0).alpha() == 0, size  # the rounded tile leaves the corner out
        assert image.pixelColor(size // 2, size // 2).alpha() == 255, size


def test_the_ico_holds_the_windows_sizes_as_pngs():
    entries = read_ico(ident.ICON_ICO.read_bytes())
    assert [size for size, _ in entries] == [16, 24, 32, 48, 64, 128, 256]
    for size, image in entries:
        assert png_header(image)[:2] == (size, size)
        assert image == ident.icon_png(size).read_bytes()


def test_the_icns_holds_the_macos_types_at_their_sizes():
    entries = dict(read_icns(ident.ICON_ICNS.read_bytes()))
    expected = {"ic07": 128, "ic08": 256, "ic09": 512, "ic10": 1024, "ic11": 32, "ic12": 64, "ic13": 256,
                "ic14": 512}
    assert set(entries) == set(expected)
    for kind, size in expected.items():
        assert png_header(entries[kind])[:2] == (size, size), kind
        assert entries[kind] == ident.icon_png(size).read_bytes(), kind


def test_the_svgs_render_in_qtsvg(qapp):
    from PySide6.QtSvg import QSvgRenderer

    for svg in (ident.ICON_SVG, ident.ICON_DIR / "convas-small.svg"):
        renderer = QSvgRenderer(str(svg))
        assert renderer.isValid(), svg
        assert (renderer.defaultSize().width(), renderer.defaultSize().height()) == (1024, 1024)
        assert "<text" not in svg.read_text(encoding="utf-8")  # no font needed to draw it


def test_the_script_redraws_the_committed_files_byte_for_byte(qapp, tmp_path):
    make_icons = _make_icons()
    written = make_icons.make_icons(tmp_path)
    names = sorted(path.name for path in written)
    assert names == sorted([*(ident.icon_png(n).name for n in ident.ICON_SIZES), "convas.ico", "convas.icns"])
    for path in written:
        assert path.read_bytes() == (ident.ICON_DIR / path.name).read_bytes(), (
            f"{path.name} differs from resources/icons: run `uv run python packaging/make_icons.py`")


def test_the_script_says_what_it_wrote_and_fails_clearly(qapp, tmp_path, capsys):
    make_icons = _make_icons()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    assert make_icons.main(["--out", str(blocked)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("make_icons: ") and "Traceback" not in err
