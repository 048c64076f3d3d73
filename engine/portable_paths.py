"""Paths as every system writes them: a name shown relative to a folder where it can be, and
absolute where it cannot (on Windows a path on another drive has no relative form:
``os.path.relpath("D:\\data", "C:\\proj")`` raises :class:`ValueError`).

The functions take the path module (``os.path`` by default) so that tests on Linux can run the
Windows rules with :mod:`ntpath`.
"""

from __future__ import annotations

import os
from types import ModuleType


def relative_or_absolute(path: str, start: str, pathmod: ModuleType = os.path) -> str:
    """``path`` relative to the folder ``start`` when it is inside it (``cats/1.png``), else
    ``path`` absolute: outside ``start`` a name full of ``..`` helps nobody, and on another
    drive (Windows) there is no relative name at all."""
    absolute = pathmod.abspath(path)
    try:
        relative = pathmod.relpath(absolute, pathmod.abspath(start))
    except ValueError:  # another drive, or a UNC share beside a drive letter
        return absolute
    outside = relative == pathmod.pardir or relative.startswith(pathmod.pardir + pathmod.sep)
    return absolute if outside else relative
