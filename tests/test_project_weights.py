"""Weights saved beside a project: the CLI exports with them, and says when they are missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.examples import seed_design
from engine.project_file import Weights, load_project, save_project

pytestmark = pytest.mark.slow


def _project_with_shifted_weights(folder: Path, shift: float) -> tuple[Path, np.ndarray]:
    """A seed-CNN project whose saved weights have the last bias shifted by ``shift``."""
    from engine.keras_build import build_keras_model

    model = build_keras_model(seed_design())
    kernel, bias = model.get_layer("dense").get_weights()
    model.get_layer("dense").set_weights([kernel, bias + shift])
    path = folder / "net.convas"
    save_project(path, seed_design(), weights=Weights("trained on Digits for 1 epoch", write=model.save))
    return path, bias + shift


def test_cli_export_of_a_project_uses_its_saved_weights(tmp_path: Path, capsys) -> None:
    import keras

    from engine.cli import main

    path, bias = _project_with_shifted_weights(tmp_path, 4.0)
    out = tmp_path / "out.keras"
    assert main(["export", str(path), "--format", "keras", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "saved weights (trained on Digits for 1 epoch, net.weights.keras)" in captured.out
    exported = keras.saving.load_model(out, compile=False).get_layer("dense").get_weights()[1]
    assert np.allclose(exported, bias)


def test_cli_export_without_the_weights_file_warns_and_uses_fresh_weights(tmp_path: Path, capsys) -> None:
    from engine.cli import main

    path, _bias = _project_with_shifted_weights(tmp_path, 4.0)
    (tmp_path / "net.weights.keras").unlink()
    assert load_project(path).weights is None
    assert main(["export", str(path), "--format", "onnx", "--out", str(tmp_path / "out.onnx")]) == 0
    captured = capsys.readouterr()
    assert "warning: The weights file net.weights.keras is not beside the project" in captured.err
    assert "fresh, untrained weights" in captured.out


def test_cli_weights_option_overrides_the_saved_weights(tmp_path: Path, capsys) -> None:
    import keras

    from engine.cli import main

    path, _bias = _project_with_shifted_weights(tmp_path, 4.0)
    other_folder = tmp_path / "other"
    other_folder.mkdir()
    other, other_bias = _project_with_shifted_weights(other_folder, -3.0)
    out = tmp_path / "out.keras"
    code = main(["export", str(path), "--format", "keras", "--out", str(out),
                 "--weights", str(other_folder / "net.weights.keras")])
    assert code == 0 and "the weights of net.weights.keras" in capsys.readouterr().out
    exported = keras.saving.load_model(out, compile=False).get_layer("dense").get_weights()[1]
    assert np.allclose(exported, other_bias)
