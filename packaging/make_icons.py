"""Render Convas's application icon from its SVG drawings: ``uv run python packaging/make_icons.py``.

Writes into ``resources/icons/`` (or ``--out DIR``): ``convas-<N>.png`` for every N in
:data:`engine.app_identity.ICON_SIZES` (the Linux hicolor theme, the window icon), ``convas.ico``
(Windows: the executable, the installer, the file association) and ``convas.icns`` (macOS: the
.app and its document type). The master drawing ``convas.svg`` is used from 48 px up;
``convas-small.svg``, the same mark without the details that blur at small sizes, below.

QtSvg renders (offscreen, no window needed); the ICO and ICNS containers are written here, with
PNG entries, because Pillow is not a dependency. Running it twice writes the same bytes: no
timestamps, entries in a fixed order. Exit status 0 when every file was written.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

from engine import app_identity as ident
from engine.atomic import write_bytes_atomically

SMALL_SVG = ident.ICON_DIR / "convas-small.svg"
SMALL_UP_TO = 32                       # sizes drawn from SMALL_SVG
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# The ICNS entry types that hold PNG data, with the pixel size each holds (ic11..ic14 are the @2x
# Retina entries of 16, 32, 128 and 256 pt; ic10 is 512 pt @2x).
ICNS_TYPES = (("ic07", 128), ("ic08", 256), ("ic09", 512), ("ic10", 1024),
              ("ic11", 32), ("ic12", 64), ("ic13", 256), ("ic14", 512))


def source_for(size: int) -> Path:
    """The drawing the ``size`` px icon is rendered from."""
    return SMALL_SVG if size <= SMALL_UP_TO else ident.ICON_SVG


def render_png(svg: Path, size: int) -> bytes:
    """``svg`` rendered by QtSvg at ``size`` × ``size`` pixels, as PNG bytes with an alpha channel."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QImage, QImageWriter, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _application()
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"QtSvg cannot read {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buffer, QByteArray(b"png"))
    writer.setQuality(0)  # for PNG, quality 0 is zlib's strongest compression: the smallest files
    # Straight (not premultiplied) alpha is what PNG stores.
    if not writer.write(image.convertToFormat(QImage.Format.Format_ARGB32)):
        raise ValueError(f"could not encode the {size}px icon as PNG: {writer.errorString()}")
    buffer.close()
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICO file holding ``pngs`` (size -> PNG bytes), smallest first. Windows Vista and later
    read PNG entries; a size of 256 is written as 0 in the one-byte width and height fields."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, images = [], []
    for size in sizes:
        data = pngs[size]
        side = 0 if size >= 256 else size
        entries.append(struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data), offset))
        images.append(data)
        offset += len(data)
    return header + b"".join(entries) + b"".join(images)


def icns_bytes(entries: list[tuple[str, bytes]]) -> bytes:
    """An ICNS file holding ``entries`` (type such as ``ic07``, PNG bytes), in the order given:
    the magic ``icns``, the file length, then each entry's type, length (header included), data."""
    body = b"".join(kind.encode("ascii") + struct.pack(">I", 8 + len(data)) + data for kind, data in entries)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def make_icons(out: Path, sizes: tuple[int, ...] = ident.ICON_SIZES) -> list[Path]:
    """Write the PNGs for ``sizes``, and the ICO and ICNS when every size they need is among
    them, into ``out``; the paths written, in order."""
    out.mkdir(parents=True, exist_ok=True)
    pngs = {size: render_png(source_for(size), size) for size in sizes}
    written = []
    for size in sizes:
        written.append(_write(out / ident.icon_png(size).name, pngs[size]))
    if all(size in pngs for size in ICO_SIZES):
        written.append(_write(out / ident.ICON_ICO.name, ico_bytes({s: pngs[s] for s in ICO_SIZES})))
    if all(size in pngs for _, size in ICNS_TYPES):
        written.append(_write(out / ident.ICON_ICNS.name, icns_bytes([(k, pngs[s]) for k, s in ICNS_TYPES])))
    return written


def _write(path: Path, data: bytes) -> Path:
    if not (path.is_file() and path.read_bytes() == data):  # unchanged files keep their time stamps
        write_bytes_atomically(path, data)
    return path


def _application() -> object:
    """The QGuiApplication QPainter needs for text and fonts, made once (offscreen when no display
    is set, so that the script runs on a build server)."""
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance()
    if app is None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and sys.platform.startswith("linux"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QGuiApplication([sys.argv[0]])
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make_icons", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ident.ICON_DIR, help="the folder to write (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        written = make_icons(args.out)
    except (OSError, ValueError) as exc:
        print(f"make_icons: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"{path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
