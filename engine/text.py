"""Text for people: names made safe to print, and numbers of any size written briefly.

Layer and design names come from files anyone can write, so they may hold terminal escapes,
lone surrogates (which no encoding can write) or line breaks; every text output passes them
through :func:`printable`. Counts may be astronomically large in a hostile design, so
:func:`power_of_ten` writes any integer without converting it to a float or to all its digits.
"""

from __future__ import annotations

import math
import unicodedata

# Characters that would change what a terminal shows rather than show themselves: control
# characters (ESC, BEL, line breaks), lone surrogates, line/paragraph separators and the
# bidirectional overrides that reorder a line.
_HIDDEN_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}
_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """``text`` with every character that a terminal would not show as itself written as a
    Python escape (``\\x1b``, ``\\ud800``, ``\\n``); ordinary text, accents included, is kept."""
    if text.isprintable():
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _HIDDEN_CATEGORIES or c in _BIDI else c
                   for c in text)


def _escape(c: str) -> str:
    code = ord(c)
    if code < 0x100:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def power_of_ten(n: int | float) -> str:
    """``n`` as ``1.2e90``: exact to two significant digits for an integer of any size (no float
    conversion, no decimal expansion); ``inf`` and ``nan`` as themselves.

    E-notation rather than ``1.2 × 10⁹⁰``: superscript digits other than ¹²³ are missing from
    default Windows fonts (they are outside WGL4), and ``1e308`` is what a field accepts."""
    if isinstance(n, float) and not math.isfinite(n):
        return str(n)
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n == 0:
        return "0"
    if isinstance(n, int):
        # Two significant digits by integer division (math.log10 takes ints of any size, but may
        # be off by one next to an exact power).
        exponent = math.floor(math.log10(n))
        head = _leading_two(n, exponent)
        if head >= 100 or head < 10:
            exponent += 1 if head >= 100 else -1
            head = _leading_two(n, exponent)
        mantissa = f"{head // 10}.{head % 10}"  # truncated: "at least"
    else:
        mantissa, _, power = f"{n:.1e}".partition("e")  # subnormals and rounding up included
        exponent = int(power)
    return f"{sign}{mantissa.removesuffix('.0')}e{exponent}"


def _leading_two(n: int, exponent: int) -> int:
    """The first two digits of ``n`` if it has ``exponent + 1`` digits."""
    return n // 10 ** (exponent - 1) if exponent >= 1 else n * 10 ** (1 - exponent)
