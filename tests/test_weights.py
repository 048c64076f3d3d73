"""engine.weights: which weights apply, decided by kind (never by a description's words), for
exports, training starts and saves; and the helpers around it (first_line, the atomic writer)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from engine.atomic import replace_atomically
from engine.errors import ConvasError, first_line, last_line
from engine.examples import seed_design
from engine.project_file import load_project, save_project
from engine.weights import (
    WeightsKind,
    WeightsSource,
    WeightsUse,
    design_hash,
    kept_weights,
    resolve_weights,
    structure_hash,
)

EXPORT, TRAINING, SAVE = WeightsUse.EXPORT, WeightsUse.TRAINING, WeightsUse.SAVE


class FakeModel:
    """Stands in for a trained Keras model (resolve_weights never calls it)."""

    def save(self, path: Path) -> None:
        Path(path).write_bytes(b"trained")


def edited(design):
    changed = design.copy()
    changed.nodes["dense"].args["units"] = 7
    return changed


@pytest.fixture
def trained():
    return WeightsSource.trained(FakeModel(), seed_design(), "trained on Digits for 2 epochs")


def test_trained_weights_apply_to_the_design_they_trained(trained):
    for use in (EXPORT, SAVE):
        assert resolve_weights(seed_design(), trained=trained, use=use) is trained
    assert trained.structure_hash == structure_hash(seed_design())
    assert trained.label() == "Trained weights — from the last training run"
    assert trained.summary() == "trained weights (trained on Digits for 2 epochs)"


def test_design_changed_since_training_means_not_trained(trained):
    design = edited(seed_design())
    assert structure_hash(design) != trained.structure_hash
    source = resolve_weights(design, trained=trained, use=EXPORT)
    assert source.kind is WeightsKind.FRESH and source.model is None
    assert source.label() == "Fresh, untrained weights — the design changed since the last training run"
    assert resolve_weights(design, trained=trained, use=SAVE).kind is WeightsKind.FRESH


def test_moving_a_layer_changes_the_design_hash():
    design = seed_design()
    moved = design.copy()
    moved.nodes["dense"].position = (999.0, 999.0)
    assert design_hash(design) == design_hash(seed_design().copy())
    assert design_hash(moved) != design_hash(design)


def test_the_structure_hash_ignores_the_layout_and_the_design_name():
    design = seed_design()
    rearranged = design.copy()
    for i, node in enumerate(rearranged):
        node.position = (10.0 * i, -3.5)
    rearranged.nodes["dense"].position = None
    rearranged.name = "renamed"
    assert design_hash(rearranged) != design_hash(design)
    assert structure_hash(rearranged) == structure_hash(design)
    for change in (lambda d: d.nodes["dense"].args.__setitem__("units", 7),
                   lambda d: d.nodes["dense"].config.__setitem__("kernel_initializer", "zeros"),
                   lambda d: d.rename("dense", "head")):
        changed = design.copy()
        change(changed)
        assert structure_hash(changed) != structure_hash(design)


def test_trained_weights_survive_moving_a_layer_but_not_changing_one(trained):
    """Dragging a card after training keeps the trained weights for export and save; editing a
    layer's arguments makes them stale."""
    from engine.editing import Move, SetArg, apply_op

    design = seed_design()
    for name in list(design.nodes):
        apply_op(design, Move(name, (123.0, 456.0)))
    assert design_hash(design) != design_hash(seed_design())
    for use in (EXPORT, SAVE):
        assert resolve_weights(design, trained=trained, use=use) is trained
    apply_op(design, SetArg("dense", "units", 7))
    for use in (EXPORT, SAVE):
        source = resolve_weights(design, trained=trained, use=use)
        assert source.kind is WeightsKind.FRESH
        assert source.description == "the design changed since the last training run"


def test_kept_weights_apply_when_there_are_no_trained_ones(tmp_path, trained):
    imported = WeightsSource.imported(tmp_path / "resnet.keras")
    assert imported.kind is WeightsKind.IMPORTED and imported.description == "imported from resnet.keras"
    for use in (EXPORT, TRAINING, SAVE):
        assert resolve_weights(seed_design(), kept=imported, use=use) is imported
    # The design changed since training: the kept weights (matched by layer name) still apply.
    assert resolve_weights(edited(seed_design()), trained=trained, kept=imported) is imported
    assert imported.label() == "Imported weights — from resnet.keras, matched by layer name"
    assert imported.summary() == "the weights of resnet.keras"


def test_trained_weights_come_before_kept_ones_except_for_training(tmp_path, trained):
    saved = WeightsSource.saved(tmp_path / "net.weights.keras", "imported from resnet.keras")
    assert resolve_weights(seed_design(), trained=trained, kept=saved, use=EXPORT) is trained
    assert resolve_weights(seed_design(), trained=trained, kept=saved, use=SAVE) is trained
    # A run starts from the design's weights, not from the previous run's result in memory.
    assert resolve_weights(seed_design(), trained=trained, kept=saved, use=TRAINING) is saved
    assert resolve_weights(seed_design(), trained=trained, use=TRAINING).kind is WeightsKind.FRESH


def test_imported_is_told_by_kind_not_by_the_description(tmp_path):
    """A saved file whose description reads like an import is SAVED; the words do not matter."""
    path = tmp_path / "resnet.keras"
    saved = WeightsSource.saved(path, f"imported from {path.name}")
    assert saved.kind is WeightsKind.SAVED
    assert saved.label() == "Saved weights — imported from resnet.keras, in resnet.keras, matched by layer name"
    odd = WeightsSource(WeightsKind.IMPORTED, "came by carrier pigeon", file=path)
    assert odd.label().startswith("Imported weights — from resnet.keras")


def test_no_weights_at_all_are_fresh_with_the_reason():
    source = resolve_weights(seed_design())
    assert source.kind is WeightsKind.FRESH and source.file is None
    assert source.label() == "Fresh, untrained weights — train first to export what the network learned"
    assert source.summary() == "fresh, untrained weights"
    assert resolve_weights(seed_design(), use=SAVE).kind is WeightsKind.FRESH


def test_asking_for_fresh_weights_wins(tmp_path, trained):
    kept = WeightsSource.imported(tmp_path / "m.keras")
    for use in (EXPORT, TRAINING, SAVE):
        assert resolve_weights(seed_design(), trained=trained, kept=kept, use=use, fresh=True).kind is WeightsKind.FRESH


def test_wrong_kinds_are_refused(tmp_path):
    with pytest.raises(ValueError):
        resolve_weights(seed_design(), trained=WeightsSource.imported(tmp_path / "m.keras"))
    with pytest.raises(ValueError):
        resolve_weights(seed_design(), kept=WeightsSource.fresh())


def _fake_keras(path: Path, with_weights: bool) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
        if with_weights:
            archive.writestr("model.weights.h5", b"")
    return path


def test_kept_weights_of_design_files(tmp_path):
    keras_file = _fake_keras(tmp_path / "model.keras", with_weights=True)
    kept, warnings = kept_weights(keras_file)
    assert kept == WeightsSource.imported(keras_file) and warnings == []
    assert kept_weights(_fake_keras(tmp_path / "bare.keras", with_weights=False)) == (None, [])

    project = tmp_path / "net.convas"
    weights = WeightsSource.trained(FakeModel(), seed_design(), "trained on Shapes for 1 epoch")
    save_project(project, seed_design(), weights=weights)
    kept, warnings = kept_weights(project)
    assert kept.kind is WeightsKind.SAVED and kept.file == tmp_path / "net.weights.keras" and warnings == []
    assert kept.description == "trained on Shapes for 1 epoch"
    assert load_project(project).weights == kept

    (tmp_path / "net.weights.keras").unlink()
    kept, warnings = kept_weights(project)
    assert kept is None and "is not beside the project" in warnings[0]
    assert kept_weights(tmp_path / "design.json") == (None, [])


def test_saving_imported_weights_then_loading_gives_saved_ones(tmp_path):
    source = _fake_keras(tmp_path / "resnet.keras", with_weights=True)
    project = tmp_path / "work" / "tuned.convas"
    project.parent.mkdir()
    save_project(project, seed_design(), weights=WeightsSource.imported(source))
    loaded = load_project(project).weights
    assert loaded.kind is WeightsKind.SAVED and loaded.description == "imported from resnet.keras"
    assert loaded.file == project.parent / "tuned.weights.keras"


# --- one first line of an error --------------------------------------------------------------

def test_first_line_of_an_error():
    assert first_line(ValueError("\n  \n  bad shape  \nTraceback...")) == "bad shape"
    assert first_line(ValueError()) == "ValueError"
    assert first_line("") == "" and first_line(None) == ""
    keras_style = "\x1b[1mException encountered when calling Dense.call().\x1b[0m\n\n\x1b[1mNo.\x1b[0m"
    assert first_line(RuntimeError(keras_style)) == "No."
    long = first_line("x" * 1000)
    assert len(long) == 300 and long.endswith("…")
    assert len(first_line("x" * 1000, limit=None)) == 1000
    assert last_line("Traceback\n  File x\nKeyError: 'a'\n\n") == "KeyError: 'a'"


# --- the one atomic writer --------------------------------------------------------------------

def test_replace_atomically_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "m.keras"
    target.write_bytes(b"old")

    def fail(tmp: Path) -> None:
        assert tmp.name.endswith(".keras") and tmp.parent == tmp_path
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(ConvasError, match="could not save the model: No space left on device"):
        replace_atomically(target, fail, "the model", ".keras")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["m.keras"]
    replace_atomically(target, lambda tmp: tmp.write_bytes(b"new"), "the model", ".keras")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["m.keras"]
