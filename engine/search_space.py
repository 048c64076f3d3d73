"""A design's search space, and the design a sweep's values make of it.

The ranges live where the values they replace live: a layer argument's on its node
(:attr:`engine.design.Node.search`), a group's repeat count on its group
(:attr:`engine.design.Group.repeats`), a training setting's in the training settings
(:attr:`engine.training.TrainingSettings.search`). :func:`search_space` gathers them into one
:class:`SearchSpace` whose keys name Optuna's parameters, and :func:`sample` turns one set of
values (a trial's ``params``) back into a design and training settings, which are then checked
by the analysis like any design, before any training.

Keys: ``layer:<layer>:<argument>``, ``group:<group>:repeats``, ``training:<setting>``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from .design import Design
from .errors import ConvasError
from .group_repeat import repeat_group, repeat_problem
from .layers import CATALOGUE, ParamKind
from .search_range import RangeKind, SearchRange
from .training import SEARCHABLE_SETTINGS, TrainingSettings

REPEATS = "repeats"

# The argument kinds a range can stand for, and the range kinds each takes. A range over an
# ``ints`` argument (a kernel size) gives one number for every axis.
RANGEABLE: dict[ParamKind, tuple[RangeKind, ...]] = {
    ParamKind.INT: (RangeKind.INT, RangeKind.CHOICE),
    ParamKind.OPTIONAL_INT: (RangeKind.INT, RangeKind.CHOICE),
    ParamKind.INTS: (RangeKind.INT, RangeKind.CHOICE),
    ParamKind.FLOAT: (RangeKind.FLOAT, RangeKind.CHOICE),
    ParamKind.OPTIONAL_FLOAT: (RangeKind.FLOAT, RangeKind.CHOICE),
    ParamKind.CHOICE: (RangeKind.CHOICE,),
    ParamKind.BOOL: (RangeKind.CHOICE,),
    ParamKind.STR: (RangeKind.CHOICE,),
}


class TargetKind(StrEnum):
    """What a range stands for."""

    LAYER = "layer"        # an argument of a layer
    GROUP = "group"        # how many times a group repeats
    TRAINING = "training"  # a training setting


@dataclass(frozen=True, order=True)
class SearchTarget:
    """The value one range replaces: ``owner`` is the layer or group name ("" for training),
    ``setting`` the argument, ``repeats`` or the training setting."""

    kind: TargetKind
    owner: str
    setting: str

    @property
    def key(self) -> str:
        """The Optuna parameter name (see the module docstring)."""
        if self.kind is TargetKind.TRAINING:
            return f"training:{self.setting}"
        return f"{self.kind.value}:{self.owner}:{self.setting}"

    @property
    def label(self) -> str:
        """Words for people: ``conv2d.filters``, ``block1 repeats``, ``learning rate``."""
        if self.kind is TargetKind.TRAINING:
            return self.setting.replace("_", " ")
        if self.kind is TargetKind.GROUP:
            return f"{self.owner} repeats"
        return f"{self.owner}.{self.setting}"

    @classmethod
    def parse(cls, key: str) -> SearchTarget:
        kind, _, rest = key.partition(":")
        try:
            target = TargetKind(kind)
        except ValueError:
            raise ConvasError(f"{key!r} names no search range") from None
        if target is TargetKind.TRAINING:
            return cls(target, "", rest)
        owner, _, setting = rest.rpartition(":")
        if not owner or not setting:
            raise ConvasError(f"{key!r} names no search range")
        return cls(target, owner, setting)


@dataclass(frozen=True)
class SearchSpace:
    """Every range of a project, in a stable order (layers in design order, then groups, then
    training settings)."""

    ranges: tuple[tuple[SearchTarget, SearchRange], ...] = ()

    def __len__(self) -> int:
        return len(self.ranges)

    def __iter__(self) -> Iterator[tuple[SearchTarget, SearchRange]]:
        return iter(self.ranges)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def keys(self) -> list[str]:
        return [t.key for t, _ in self.ranges]

    def get(self, key: str) -> SearchRange | None:
        return next((r for t, r in self.ranges if t.key == key), None)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Key → range, as JSON data (kept with a study, so a changed space is noticed)."""
        return {t.key: r.to_dict() for t, r in self.ranges}

    def distributions(self) -> dict[str, Any]:
        """Key → Optuna distribution (imports Optuna)."""
        return {t.key: r.distribution() for t, r in self.ranges}


def search_space(design: Design, training: TrainingSettings) -> SearchSpace:
    """The ranges the design and its training settings hold."""
    ranges: list[tuple[SearchTarget, SearchRange]] = []
    for node in design.nodes.values():
        for arg, rng in node.search.items():
            ranges.append((SearchTarget(TargetKind.LAYER, node.name, arg), rng))
    for group in design.groups.values():
        if group.repeats is not None:
            ranges.append((SearchTarget(TargetKind.GROUP, group.name, REPEATS), group.repeats))
    for key, rng in training.search.items():
        ranges.append((SearchTarget(TargetKind.TRAINING, "", key), rng))
    return SearchSpace(tuple(ranges))


def range_kinds(design: Design, target: SearchTarget) -> tuple[RangeKind, ...]:
    """The range kinds ``target`` can take (empty: it cannot be searched)."""
    if target.kind is TargetKind.TRAINING:
        return SEARCHABLE_SETTINGS.get(target.setting, ())
    if target.kind is TargetKind.GROUP:
        return (RangeKind.INT, RangeKind.CHOICE) if target.owner in design.groups else ()
    node = design.nodes.get(target.owner)
    spec = CATALOGUE.get(node.kind) if node is not None else None
    if spec is None:
        return ()
    try:
        param = spec.param(target.setting)
    except KeyError:
        return ()
    return RANGEABLE.get(param.kind, ())


def space_problems(design: Design, training: TrainingSettings) -> list[str]:
    """Why the project's ranges cannot be searched, one sentence each (empty: they can): a
    range on an argument its layer does not have or cannot vary, of a kind the argument does
    not take, a repeat count below 1, or a group that cannot repeat in a chain
    (:func:`engine.group_repeat.repeat_problem`)."""
    problems = []
    for target, rng in search_space(design, training):
        kinds = range_kinds(design, target)
        if not kinds:
            problems.append(f"{target.label} cannot be searched; remove its range")
        elif rng.kind not in kinds:
            allowed = " or ".join(k.value for k in kinds)
            problems.append(f"{target.label} takes a {allowed} range, not a {rng.kind.value} one")
        elif target.kind is TargetKind.GROUP and not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in rng.values() or [0]):
            problems.append(f"{target.label} must be whole numbers of at least 1")
        elif (problem := rng.problem() or (repeat_problem(design, target.owner)
                                             if target.kind is TargetKind.GROUP else None)) is not None:
            problems.append(f"{target.label}: {problem}")
    return problems


def sample(design: Design, training: TrainingSettings, params: Mapping[str, Any]) -> tuple[Design, TrainingSettings]:
    """The design and training settings that ``params`` (key → value, as a trial holds them)
    make: each layer argument and training setting takes its value, and each group repeats as
    many times as its value says (:func:`engine.group_repeat.repeat_group`). Ranges stay on the
    result, so that it can be searched again, except on a group that was repeated: its copies
    are plain layers. Keys the project has no range for are ignored; a value the range cannot
    hold is a :class:`ConvasError`. The inputs are not changed."""
    space = {t.key: (t, r) for t, r in search_space(design, training)}
    result = design.copy()
    config_changes: dict[str, Any] = {}
    repeats: list[tuple[str, int]] = []
    for key, value in params.items():
        if key not in space:
            continue
        target, rng = space[key]
        if not rng.contains(value):
            raise ConvasError(f"{target.label} = {value!r} is not a value of its range {rng.describe()}")
        if target.kind is TargetKind.LAYER:
            result.set_arg(target.owner, target.setting, copy.deepcopy(value))
        elif target.kind is TargetKind.TRAINING:
            config_changes[target.setting] = value
        else:
            repeats.append((target.owner, int(value)))
    for group, times in repeats:
        if times != 1:
            result = repeat_group(result, group, times)
    config = replace(training.config, **config_changes) if config_changes else training.config
    if config_changes:
        config.validate()
    return result, replace(training, config=config, search=dict(training.search))


def base_values(design: Design, training: TrainingSettings) -> dict[str, Any]:
    """Key → the value the project uses now for each range (a group: 1 repeat), so that the
    current design can be compared with, or enqueued as, a trial. A layer argument left at its
    default gives the catalogue's default."""
    values: dict[str, Any] = {}
    for target, _rng in search_space(design, training):
        if target.kind is TargetKind.TRAINING:
            values[target.key] = getattr(training.config, target.setting)
        elif target.kind is TargetKind.GROUP:
            values[target.key] = 1
        else:
            node = design.nodes[target.owner]
            if target.setting in node.args:
                value = node.args[target.setting]
            else:
                spec = CATALOGUE.get(node.kind)
                value = spec.param(target.setting).default if spec is not None else None
            if isinstance(value, tuple) and value and all(v == value[0] for v in value):
                value = value[0]  # a square kernel (3, 3) is the 3 a range samples
            values[target.key] = value
    return values
