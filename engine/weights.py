"""Which weights a design has, decided in one place.

A design's weights come from one of four sources (:class:`WeightsKind`): the last training run
(a model in memory, valid only for the very design it trained), a ``.keras`` file the design was
imported from, the weights file saved beside a ``.convas`` project, or none: fresh random ones.
:class:`WeightsSource` is that answer as a typed value, with the file that holds the weights
and a description for people; :func:`resolve_weights` is the one rule that chooses among them,
for an export, for the start of a training run and for what a save keeps. The window, its
export dialog, ``convas train`` and ``convas export`` all ask it, so they cannot disagree.

Weights in a file are matched to the design's layers by name (:func:`transfer_weights`), so an
edited design keeps the weights of every layer it still has. Qt-free; Keras is imported only by
the functions that build models.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from .design import Design
from .errors import ConvasError, first_line


class WeightsError(ConvasError):
    """Weights could not be read or do not fit the design; the message names the file and layer."""


class WeightsKind(Enum):
    TRAINED = "trained"    # the last training run's model, in memory; for the design it trained
    IMPORTED = "imported"  # a .keras file the design came from (or that the user named)
    SAVED = "saved"        # the weights file kept beside a .convas project
    FRESH = "fresh"        # new random weights: there are no others, or the user asked for them


class WeightsUse(Enum):
    """What the weights are wanted for; :func:`resolve_weights` answers a little differently."""

    EXPORT = "export"
    TRAINING = "training"   # the starting point of a run
    SAVE = "save"           # what a project save keeps beside the file


@dataclass(frozen=True)
class WeightsSource:
    """Where a design's weights come from.

    ``file`` holds them (IMPORTED, SAVED). ``model`` is the Keras model holding them in memory
    (TRAINED). ``structure_hash`` is :func:`structure_hash` of the design they were trained on
    (TRAINED); weights in a file have none, since they are matched to any design by layer
    name. ``description`` says where they came from ("trained on Digits for 5 epochs",
    "imported from resnet.keras"); for FRESH weights, why there are no others. A project file
    stores it as ``origin``.
    """

    kind: WeightsKind
    description: str = ""
    file: Path | None = None
    structure_hash: str | None = None
    model: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def trained(cls, model: Any, design: Design, description: str = "trained in this session") -> WeightsSource:
        """The weights of ``model``, which a run trained on ``design``."""
        return cls(WeightsKind.TRAINED, description, structure_hash=structure_hash(design), model=model)

    @classmethod
    def imported(cls, path: str | os.PathLike[str]) -> WeightsSource:
        """The weights in the ``.keras`` file ``path`` (a design imported from it, or ``--weights``)."""
        path = Path(path)
        return cls(WeightsKind.IMPORTED, f"imported from {path.name}", file=path)

    @classmethod
    def saved(cls, path: str | os.PathLike[str], description: str = "saved weights") -> WeightsSource:
        """The weights file ``path`` kept beside a project; ``description`` is where they came from."""
        return cls(WeightsKind.SAVED, description or "saved weights", file=Path(path))

    @classmethod
    def fresh(cls, reason: str = "") -> WeightsSource:
        """New random weights; ``reason`` says why there are no others."""
        return cls(WeightsKind.FRESH, reason)

    def summary(self) -> str:
        """A phrase for sentences and export results: "the weights of resnet.keras", "the saved
        weights (trained on Digits for 5 epochs, net.weights.keras)", "fresh, untrained weights"."""
        name = self.file.name if self.file is not None else ""
        if self.kind is WeightsKind.TRAINED:
            return "trained weights" + (f" ({self.description})" if self.description else "")
        if self.kind is WeightsKind.IMPORTED:
            return f"the weights of {name}"
        if self.kind is WeightsKind.SAVED:
            return f"the saved weights ({self.description}, {name})"
        return "fresh, untrained weights"

    def label(self) -> str:
        """The line an export dialog shows: what the weights are — where they come from."""
        name = self.file.name if self.file is not None else ""
        if self.kind is WeightsKind.TRAINED:
            return "Trained weights — from the last training run"
        if self.kind is WeightsKind.IMPORTED:
            return f"Imported weights — from {name}, matched by layer name"
        if self.kind is WeightsKind.SAVED:
            return f"Saved weights — {self.description}, in {name}, matched by layer name"
        return "Fresh, untrained weights" + (f" — {self.description}" if self.description else "")

    def save_to(self, path: Path) -> None:
        """Write these weights as a ``.keras`` model at ``path`` (which must not exist yet)."""
        if self.model is not None:
            self.model.save(path)
        elif self.file is not None:
            shutil.copyfile(self.file, path)
        else:
            raise ConvasError("fresh weights are not kept in a file; there is nothing to save")


def design_hash(design: Design) -> str:
    """SHA-256 of the design's canonical JSON (as a ``.convas`` file stores it): equal for two
    designs exactly when they would be saved alike (layer positions included). An exported
    ``.keras`` file records it, to tell whether its embedded design is still the one its Keras
    configuration describes; whether weights fit a design is :func:`structure_hash`'s question."""
    return _sha256(_design_dict(design))


def structure_hash(design: Design) -> str:
    """SHA-256 of what the design computes, without its layout: its layers (names, kinds,
    arguments, Keras settings), their wiring, its inputs and outputs. Moving a card on the
    canvas, grouping layers, freezing them or renaming the design leaves it alone; any change of
    a layer does not.

    Trained weights belong to this structure: they still apply to a design that was only
    rearranged since the run (:func:`resolve_weights`)."""
    data = _design_dict(design)
    del data["name"]  # the design's (the Keras model's) name: no weight depends on it
    data.pop("groups", None)  # groups only change how the design is shown
    for node in data["nodes"]:
        del node["position"]
        node.pop("group", None)
        node.pop("trainable", None)  # freezing changes how weights train, not which weights fit
    return _sha256(data)


def _design_dict(design: Design) -> dict[str, Any]:
    from .project_file import design_to_dict

    return design_to_dict(design)


def _sha256(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_FILE_HASHES: dict[tuple[str, int, int, int, int], str] = {}
_FILE_HASHES_KEPT = 64


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, remembered by the file's state (path, device, inode, size and
    modification time in nanoseconds): asking again about a file that has not changed reads
    nothing, so that saving a project and checking its weights file hash gigabytes once.
    Raises :class:`OSError` when the file cannot be read or is not a regular file."""
    import stat

    before = os.stat(path)
    if not stat.S_ISREG(before.st_mode):
        raise OSError(f"{path} is not a regular file")
    key = (os.path.abspath(path), before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns)
    known = _FILE_HASHES.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    after = os.stat(path)
    if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns):  # not written meanwhile
        if len(_FILE_HASHES) >= _FILE_HASHES_KEPT:
            _FILE_HASHES.pop(next(iter(_FILE_HASHES)))
        _FILE_HASHES[key] = digest.hexdigest()
    return digest.hexdigest()


def resolve_weights(design: Design, *, trained: WeightsSource | None = None,
                    kept: WeightsSource | None = None, use: WeightsUse = WeightsUse.EXPORT,
                    fresh: bool = False) -> WeightsSource:
    """The weights that apply to ``design`` for ``use``.

    ``trained``: the last training run's weights (kind TRAINED), if any; they apply only to a
    design of the very structure they were trained on (:func:`structure_hash`: the layout may
    have changed since, a layer may not). ``kept``: the weights the design
    carries from a file (IMPORTED or SAVED). ``fresh``: the user asked for new weights.

    - EXPORT: trained weights of this design, else the kept ones, else fresh (the description
      says why).
    - SAVE: the same; the caller leaves out trained weights it has saved already, so that an
      unchanged weights file is not written again. FRESH means there is nothing to keep.
    - TRAINING: the kept weights, else fresh. A run never starts from the previous run's result
      in memory: until the design's weights change (a save, an import, Forget Weights), every
      run starts from the same weights, as ``convas train`` does from the same file.
    """
    if fresh:
        return WeightsSource.fresh("new weights were asked for")
    if trained is not None and use is not WeightsUse.TRAINING:
        if trained.kind is not WeightsKind.TRAINED or trained.model is None:
            raise ValueError(f"trained weights must be a TRAINED source with a model, not {trained.kind}")
        if trained.structure_hash == structure_hash(design):
            return trained
    if kept is not None:
        if kept.kind not in (WeightsKind.IMPORTED, WeightsKind.SAVED) or kept.file is None:
            raise ValueError(f"kept weights must be IMPORTED or SAVED with a file, not {kept.kind}")
        return kept
    if use is WeightsUse.TRAINING:
        return WeightsSource.fresh("the design has no weights yet")
    if trained is not None:
        return WeightsSource.fresh("the design changed since the last training run")
    return WeightsSource.fresh("train first to export what the network learned")


def kept_weights(path: str | os.PathLike[str]) -> tuple[WeightsSource | None, list[str]]:
    """The weights a design file brings with it, and warnings for the user: a ``.keras`` model's
    own weights (IMPORTED), a ``.convas`` project's saved weights file (SAVED; a missing or
    changed file is a warning), else none."""
    from .files import has_weights
    from .project_file import SUFFIX, load_project

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".keras", ".zip"):
        return (WeightsSource.imported(path) if has_weights(path) else None), []
    if suffix == SUFFIX:
        project = load_project(path)
        return project.weights, list(project.warnings)
    return None, []


# --- models holding the weights (these import Keras) ------------------------------------------

def load_keras_model(path: str | os.PathLike[str]) -> Any:
    """A ``.keras`` model loaded as users load it, with safe mode on: a Lambda layer or a custom
    class is refused by name, never run. Raises :class:`WeightsError` when it cannot be read."""
    import keras

    if not Path(path).is_file():
        raise WeightsError(f"cannot load the weights of {path}: no such file")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - whatever Keras raises becomes one line
        raise WeightsError(f"cannot load the weights of {path}: {first_line(exc)}") from None


def transfer_weights(model: Any, path: str | os.PathLike[str], *, strict: bool) -> list[str]:
    """Copy into ``model`` the weights of the same-named layers of the ``.keras`` file ``path``.
    Layers of models nested in that file count too, under the names import gave them
    (:func:`source_layers`). Strict (exports): a layer missing there, or with other shapes, is a
    :class:`WeightsError` naming it. Lenient (training an edited design): such layers keep fresh
    weights and are returned."""
    source = source_layers(load_keras_model(path), path)
    name = Path(path).name
    left_fresh = []
    for layer in model.layers:
        mine = layer.get_weights()
        if not mine:
            continue
        theirs = source.get(layer.name)
        shapes = [tuple(w.shape) for w in theirs.get_weights()] if theirs is not None else None
        if theirs is None or shapes != [tuple(w.shape) for w in mine]:
            if not strict:
                left_fresh.append(layer.name)
                continue
            if theirs is None:
                raise WeightsError(f"{name} has no layer named {layer.name!r} to take weights "
                                   "from; rename the layer or use a file trained on this design")
            raise WeightsError(f"{name}: layer {layer.name!r} has weights of shapes {shapes}, "
                               f"the design needs {[tuple(w.shape) for w in mine]}")
        layer.set_weights(theirs.get_weights())
    return left_fresh


def source_layers(source: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    """The layers of the Keras model ``source`` (loaded from ``path``) by the names a design
    imported from ``path`` gives them: its own layers by their names, and the layers of the
    models nested in it (at any depth) by the names import gave them when it flattened them
    (:attr:`engine.keras_import.KerasImport.paths`, read from the file's config: one rule)."""
    import keras

    from .keras_import import keras_layer_paths, read_keras_config

    by_path: dict[tuple[str, ...], Any] = {}
    stack: list[tuple[tuple[str, ...], Any]] = [((), source)]
    while stack:
        prefix, owner = stack.pop()
        for layer in owner.layers:
            key = prefix + (layer.name,)
            if isinstance(layer, keras.Model):
                stack.append((key, layer))
            else:
                by_path[key] = layer
    found = {key[0]: layer for key, layer in by_path.items() if len(key) == 1}
    try:
        paths = keras_layer_paths(read_keras_config(Path(path)))
    except ConvasError:  # a config Convas cannot read: nested layers keep their own names
        paths = {key[-1]: key for key in by_path if len(key) > 1}
    for design_name, keras_path in paths.items():
        if keras_path in by_path:
            found.setdefault(design_name, by_path[keras_path])
    return found


def model_with_weights(design: Design, source: WeightsSource, *, strict: bool,
                       seed: int = 0) -> tuple[Any, list[str]]:
    """``design`` as a Keras model holding ``source``'s weights, and the layers left with fresh
    weights (lenient matching only). Fresh weights, and those of layers a file does not
    have, are drawn with ``seed``. TRAINED weights are their model itself."""
    if source.kind is WeightsKind.TRAINED and source.model is not None:
        return source.model, []
    import keras

    from .keras_build import build_keras_model

    keras.utils.set_random_seed(seed)
    model = build_keras_model(design)
    if source.file is None:
        return model, []
    return model, transfer_weights(model, source.file, strict=strict)


def starting_model(design: Design, source: WeightsSource, seed: int) -> tuple[Any, str]:
    """What a training run starts from: ``(model, message)``. ``model`` is None for fresh
    weights (``engine.training.train`` builds them with ``seed``, as it always has); otherwise
    the design's model holding ``source``'s weights, matched leniently by layer name, so that an
    edited design is fine-tuned wherever it still fits. ``message`` says which weights these are."""
    if source.kind is WeightsKind.FRESH:
        return None, "Starting from fresh, untrained weights"
    model, left_fresh = model_with_weights(design, source, strict=False, seed=seed)
    message = f"Starting from {source.summary()}"
    if left_fresh:
        message += f"; fresh weights for {', '.join(left_fresh)}"
    return model, message
