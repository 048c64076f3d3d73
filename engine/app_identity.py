"""Who Convas is to the operating system: its name, identifiers, file type and icon files.

One owner for these facts, because four places must agree on them: the window (title, About,
window icon), the packaged bundles (``packaging/build.py``: the macOS ``Info.plist``, the Windows
executable's icon), the desktop integration (``convas --install-desktop-entry``: the Linux
``.desktop`` entry and MIME type, the Windows file association) and the tests. A file type that
is registered under one name and opened under another is simply not associated.
"""

from __future__ import annotations

from pathlib import Path

from . import __version__

APP_NAME = "Convas"
APP_VERSION = __version__
ORGANIZATION = "Convas"              # QSettings and QStandardPaths folders are named after both
ORGANIZATION_DOMAIN = "convas.org"   # macOS settings: ~/Library/Preferences/org.convas.Convas.plist
APP_ID = "org.convas.Convas"         # reverse-DNS: macOS bundle identifier, Linux desktop file id
APP_SUMMARY = "A desktop designer for Keras convolutional networks"
EXECUTABLE = "convas"                # the command line name (pyproject's [project.scripts])

# The project file type.
EXTENSION = ".convas"
MIME_TYPE = "application/x-convas"
UTI = "org.convas.project"           # macOS Uniform Type Identifier (exported by the bundle)
FILE_DESCRIPTION = "Convas design"
WINDOWS_PROG_ID = "Convas.Design.1"  # HKCU\Software\Classes\<ProgID>

ROOT = Path(__file__).resolve().parent.parent
ICON_DIR = ROOT / "resources" / "icons"
# The square PNG sizes drawn in ICON_DIR as convas-<N>.png (Linux hicolor, Windows .ico, macOS .icns).
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICON_SVG = ICON_DIR / "convas.svg"   # the master drawing
ICON_ICO = ICON_DIR / "convas.ico"   # Windows: 16–256 in one file
ICON_ICNS = ICON_DIR / "convas.icns"  # macOS: 16–1024 in one file


def icon_png(size: int) -> Path:
    """The PNG of the application icon at ``size`` × ``size`` pixels (one of :data:`ICON_SIZES`)."""
    if size not in ICON_SIZES:
        raise ValueError(f"no {size}px icon; drawn sizes are {', '.join(map(str, ICON_SIZES))}")
    return ICON_DIR / f"convas-{size}.png"
