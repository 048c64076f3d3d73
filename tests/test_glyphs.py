"""No symbol that a default Windows, macOS or Linux font lacks (issue 18).

Every non-ASCII character in the text Convas shows (the string constants of ``gui/``, ``engine/``
and ``main.py``: messages, labels, tooltips, menu texts, CLI output) must be in WGL4, the Windows
Glyph List 4 that Segoe UI, Arial, Helvetica and SF, DejaVu Sans and Noto Sans all cover. A
character outside it ("⋯", "✓", "⚠", superscript digits) shows as an empty box on some system
the developer never sees. Comments and docstrings are read by developers, not users: not checked.
"""

from __future__ import annotations

import ast
import functools
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# WGL4 as Microsoft's OpenType specification lists it (typography/otspec/wgl4.htm): 653 code points
# (U+F001/F002 are its private-use duplicates of the fi and fl ligatures). The four Cyrillic
# letters with grave (U+0400, U+040D, U+0450, U+045D) that later fonts add are left out: WGL4
# proper does not have them.
_WGL4_RANGES = """
0020-007E 00A0-017F 0192 01FA-01FF 02C6-02C7 02C9 02D8-02DD
0384-038A 038C 038E-03A1 03A3-03CE
0401-040C 040E-044F 0451-045C 045E-045F 0490-0491
1E80-1E85 1EF2-1EF3
2013-2015 2017-201E 2020-2022 2026 2030 2032-2033 2039-203A 203C 203E 2044 207F
20A3-20A4 20A7 20AC 2105 2113 2116 2122 2126 212E 215B-215E
2190-2195 21A8
2202 2206 220F 2211-2212 2215 2219-221A 221E-221F 2229 222B 2248 2260-2261 2264-2265
2302 2310 2320-2321
2500 2502 250C 2510 2514 2518 251C 2524 252C 2534 253C 2550-256C
2580 2584 2588 258C 2590-2593
25A0-25A1 25AA-25AC 25B2 25BA 25BC 25C4 25CA-25CB 25CF 25D8-25D9 25E6
263A-263C 2640 2642 2660 2663 2665-2666 266A-266B
F001-F002 FB01-FB02
"""


def _code_points(ranges: str) -> frozenset[str]:
    chars: set[str] = set()
    for item in ranges.split():
        first, _, last = item.partition("-")
        chars.update(chr(c) for c in range(int(first, 16), int(last or first, 16) + 1))
    return frozenset(chars)


WGL4 = _code_points(_WGL4_RANGES)

# Characters no font draws: controls, bidirectional marks, lone surrogates and line separators.
# Code names them to escape or strip them (engine/text.py printable, engine/project_file.py), never
# to show them, so they are not glyphs a font could lack.
_NOT_DRAWN = {"Cc", "Cf", "Cs", "Zl", "Zp"}


@functools.cache
def _found_in_sources() -> dict[str, list[str]]:
    """What :func:`shown_characters` finds in Convas's own code (read once: it parses every file)."""
    return shown_characters(sorted([*(ROOT / "gui").rglob("*.py"), *(ROOT / "engine").rglob("*.py"), ROOT / "main.py"]))


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


# Tables of characters Convas reads and never shows: engine.console's LOOKALIKES maps what a
# console cannot print to ASCII, so its keys are the very characters that are not printed.
READ_NOT_SHOWN = {"LOOKALIKES"}


def _read_not_shown(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        else:
            targets = [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id in READ_NOT_SHOWN for t in targets):
            found |= {id(inner) for inner in ast.walk(node)}
    return found


def shown_characters(paths: list[Path]) -> dict[str, list[str]]:
    """Each non-ASCII character in the string constants (f-string parts included, docstrings and
    :data:`READ_NOT_SHOWN` tables not) of ``paths``, with the ``file:line`` places it occurs."""
    found: dict[str, list[str]] = {}
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = _docstrings(tree) | _read_not_shown(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in skipped:
                continue
            for char in sorted(set(node.value)):
                if ord(char) > 0x7E and unicodedata.category(char) not in _NOT_DRAWN:
                    found.setdefault(char, []).append(f"{_shown_path(path)}:{node.lineno}")
    return found


def _shown_path(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def _describe(found: dict[str, list[str]]) -> str:
    return "\n".join(f"U+{ord(c):04X} {c!r} {unicodedata.name(c, '?')}: {', '.join(places[:6])}"
                     for c, places in sorted(found.items()))


def test_the_wgl4_table_is_the_published_one():
    assert len(WGL4) == 653
    for char in "–—‘’“”•…‰‹›←↑→↓↔↕↨∂∆∏∑−∕∙√∞∟∩∫≈≠≡≤≥■□▪▫▬▲►▼◄◊○●◘◙◦☺☻☼♀♂♠♣♥♦♪♫ⁿ₧€ℓ№™Ω℮⅛⅞ﬁﬂ":
        assert char in WGL4, char
    assert all(chr(c) in WGL4 for c in range(0xA0, 0x180))  # Latin-1 and Latin Extended-A
    assert set("Ωω∆σμπ×·±²³¹µ") <= WGL4
    for char in "⋯✓✗✕⚠▶◀⏵ⓘ⁰⁴⁹⁻₀⌈⌉━┃┏":
        assert char not in WGL4, char


def test_the_walk_finds_shown_text_and_skips_docstrings(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text('"""Module ✓."""\n'
                      'def f(x):\n    """Doc ⚠."""\n    # comment ▶\n'
                      '    label = "Next ▶"\n    return f"{x} ⋯ done", "\\u2713", "plain"\n'
                      'LOOKALIKES = {"⇒": "=>"}\n',
                      encoding="utf-8")
    assert set(shown_characters([source])) == {"▶", "⋯", "✓"}


def test_shown_text_uses_only_wgl4_characters():
    found = _found_in_sources()
    outside = {c: places for c, places in found.items() if c not in WGL4}
    assert not outside, "characters a default font may lack:\n" + _describe(outside)


def test_the_application_font_draws_every_shown_character(qapp):
    from PySide6.QtGui import QFontMetrics

    found = _found_in_sources()
    metrics = QFontMetrics(qapp.font())
    missing = {c: places for c, places in found.items() if not metrics.inFontUcs4(ord(c))}
    assert found  # the walk saw the en dashes, arrows and ellipses the messages use
    assert not missing, f"not in {qapp.font().family()}:\n" + _describe(missing)

