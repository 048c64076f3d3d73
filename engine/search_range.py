"""A search range: the values a sweep may try for one number or choice of a design.

A layer argument (``filters``), a training setting (``learning_rate``) or how many times a group
repeats can hold a :class:`SearchRange` beside its current value. Plain training ignores it and
uses the current value; a sweep (:mod:`engine.sweep`) asks Optuna for a value inside it. A range
is plain frozen data, written to the project file as a small object
(``{"kind": "int", "low": 16, "high": 64, "step": 16}``), so an edit replaces it whole and undo
is exact.

Three kinds, the three Optuna suggests:

- ``int``: whole numbers from ``low`` to ``high`` inclusive, every ``step`` (``log``: sampled on a
  log scale, step 1 only, as Optuna requires);
- ``float``: real numbers from ``low`` to ``high``, on a log scale when ``log`` (learning rates),
  optionally on a grid of ``step`` (linear only);
- ``choice``: one of ``choices`` (numbers, text, true/false or null), in the order given.

Nothing here imports Optuna except :meth:`SearchRange.distribution`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import ConvasError

MAX_CHOICES = 64  # more than anyone types; a file claiming thousands is refused


class RangeKind(StrEnum):
    """What a :class:`SearchRange` samples (a ``str`` too, as files store it)."""

    INT = "int"
    FLOAT = "float"
    CHOICE = "choice"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _plain_choice(value: Any) -> bool:
    return value is None or isinstance(value, (bool, str)) or _is_number(value)


def _num(value: float) -> str:
    """A number as people write it: ``16``, ``0.5``, ``0.0001``, ``1e-05``."""
    if _is_int(value):
        return str(value)
    return f"{value:g}"


@dataclass(frozen=True)
class SearchRange:
    """The values one setting may take in a sweep (see the module docstring).

    Build one with :meth:`ints`, :meth:`floats` or :meth:`among`, which check it; a range read
    from a file is checked by :meth:`from_dict`. :meth:`problem` says what is wrong with one
    built directly.
    """

    kind: RangeKind
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def ints(cls, low: int, high: int, step: int = 1, log: bool = False) -> SearchRange:
        return cls._checked(cls(RangeKind.INT, low, high, step, log))

    @classmethod
    def floats(cls, low: float, high: float, log: bool = False, step: float | None = None) -> SearchRange:
        return cls._checked(cls(RangeKind.FLOAT, float(low), float(high), step, log))

    @classmethod
    def among(cls, *choices: Any) -> SearchRange:
        return cls._checked(cls(RangeKind.CHOICE, choices=tuple(choices)))

    @classmethod
    def _checked(cls, made: SearchRange) -> SearchRange:
        problem = made.problem()
        if problem is not None:
            raise ConvasError(problem)
        return made

    def problem(self) -> str | None:
        """Why this range cannot be sampled, as a sentence with the fix; None when it can."""
        if self.kind is RangeKind.CHOICE:
            if len(self.choices) < 2:
                return "a list of choices needs at least two values"
            if len(self.choices) > MAX_CHOICES:
                return f"a list of choices holds at most {MAX_CHOICES} values, not {len(self.choices)}"
            if not all(_plain_choice(c) for c in self.choices):
                return "choices must be numbers, text, true/false or null"
            if len(set(map(repr, self.choices))) != len(self.choices):
                return "the choices repeat a value; list each once"
            return None
        integer = self.kind is RangeKind.INT
        check = _is_int if integer else _is_number
        what = "whole numbers" if integer else "numbers"
        if not check(self.low) or not check(self.high):
            return f"the range's low and high must be {what}, not {self.low!r} and {self.high!r}"
        assert self.low is not None and self.high is not None
        if self.low >= self.high:
            return (f"the range's low ({_num(self.low)}) must be below its high ({_num(self.high)}); "
                    "for a fixed value, turn the range off")
        if self.log and self.low <= 0:
            return f"a log-scale range must start above 0, not at {_num(self.low)}"
        if self.step is not None:
            if not check(self.step) or self.step <= 0:
                return f"the step must be a positive {what[:-1]}, not {self.step!r}"
            if self.log and ((integer and self.step != 1) or not integer):
                return "a log-scale range cannot have a step; remove the step or the log scale"
            if self.step > self.high - self.low:
                return (f"the step ({_num(self.step)}) is larger than the range "
                        f"{_num(self.low)}–{_num(self.high)}; use a smaller step")
        elif integer:
            return "a whole-number range needs a step (1 for every value)"
        return None

    # --- reading ----------------------------------------------------------------------------

    def describe(self) -> str:
        """Short words for a card or a field: ``16–64 step 16``, ``1e-05–0.01 log``, ``3 | 5 | 7``."""
        if self.kind is RangeKind.CHOICE:
            return " | ".join(_choice_text(c) for c in self.choices)
        assert self.low is not None and self.high is not None
        text = f"{_num(self.low)}–{_num(self.high)}"
        if self.log:
            return text + " log"
        if self.step is not None and not (self.kind is RangeKind.INT and self.step == 1):
            text += f" step {_num(self.step)}"
        return text

    def values(self) -> list[Any] | None:
        """Every value the range holds, when there are few enough to list (at most 1,000; a
        continuous range: None)."""
        if self.kind is RangeKind.CHOICE:
            return list(self.choices)
        if self.kind is RangeKind.FLOAT and self.step is None:
            return None
        assert self.low is not None and self.high is not None and self.step is not None
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        if count > 1000:
            return None
        values = [self.low + i * self.step for i in range(count)]
        return [int(v) for v in values] if self.kind is RangeKind.INT else values

    def contains(self, value: Any) -> bool:
        """Whether a sweep could have chosen ``value``."""
        if self.kind is RangeKind.CHOICE:
            return any(type(value) is type(c) and value == c for c in self.choices)
        if not _is_number(value) or (self.kind is RangeKind.INT and not _is_int(value)):
            return False
        assert self.low is not None and self.high is not None
        if not self.low <= value <= self.high:
            return False
        if self.step is None or self.log:
            return True
        steps = (value - self.low) / self.step
        return abs(steps - round(steps)) < 1e-9

    def distribution(self) -> Any:
        """The Optuna distribution of this range (imports Optuna)."""
        from optuna.distributions import (
            CategoricalDistribution, FloatDistribution, IntDistribution,
        )

        if self.kind is RangeKind.CHOICE:
            return CategoricalDistribution(list(self.choices))
        assert self.low is not None and self.high is not None
        if self.kind is RangeKind.INT:
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log,
                                 step=None if self.log else self.step)

    # --- files ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The range as the project file writes it (only what its kind uses)."""
        if self.kind is RangeKind.CHOICE:
            return {"kind": self.kind.value, "choices": list(self.choices)}
        data: dict[str, Any] = {"kind": self.kind.value, "low": self.low, "high": self.high}
        if self.step is not None:
            data["step"] = self.step
        if self.log:
            data["log"] = True
        return data

    @classmethod
    def from_dict(cls, data: Any) -> SearchRange:
        """The range ``data`` describes; :class:`ConvasError` saying what is wrong otherwise."""
        if not isinstance(data, dict):
            raise ConvasError(f"a search range must be an object, not {data!r}")
        try:
            kind = RangeKind(str(data.get("kind")))
        except ValueError:
            kinds = ", ".join(k.value for k in RangeKind)
            raise ConvasError(f"a search range's kind must be one of {kinds}, not {data.get('kind')!r}") from None
        known = {"kind", "choices"} if kind is RangeKind.CHOICE else {"kind", "low", "high", "step", "log"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConvasError(f"unknown search-range entr{'y' if len(unknown) == 1 else 'ies'} for a "
                              f"{kind.value} range: {', '.join(map(str, unknown))}")
        if kind is RangeKind.CHOICE:
            choices = data.get("choices")
            if not isinstance(choices, (list, tuple)):
                raise ConvasError(f"a list of choices must be a list, not {choices!r}")
            made = cls(kind, choices=tuple(choices))
        else:
            log = data.get("log", False)
            if not isinstance(log, bool):
                raise ConvasError(f"a search range's log must be true or false, not {log!r}")
            low: Any = data.get("low")
            high: Any = data.get("high")
            step: Any = data.get("step")
            if kind is RangeKind.INT and step is None:
                step = 1
            if kind is RangeKind.FLOAT:
                low = float(low) if _is_number(low) else low
                high = float(high) if _is_number(high) else high
            made = cls(kind, low, high, step, log)
        return cls._checked(made)


def _choice_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return _num(value)
    return str(value)
