"""Weights saved beside a project: the CLI exports with them, and says when they are missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.examples import seed_design
from engine.project_file import load_project, save_project
from engine.weights import WeightsSource

pytestmark = pytest.mark.slow


def _project_with_shifted_weights(folder: Path, shift: float) -> tuple[Path, np.ndarray]:
    """A seed-CNN project whose saved weights have the last bias shifted by ``shift``."""
    from engine.keras_build import build_keras_model

    model = build_keras_model(seed_design())
    kernel, bias = model.get_layer("dense").get_weights()
    model.get_layer("dense").set_weights([kernel, bias + shift])
    path = folder / "net.convas"
    weights = WeightsSource.trained(model, seed_design(), "trained on Digits for 1 epoch")
    save_project(path, seed_design(), weights=weights)
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
    _other, other_bias = _project_with_shifted_weights(other_folder, -3.0)
    out = tmp_path / "out.keras"
    code = main(["export", str(path), "--format", "keras", "--out", str(out),
                 "--weights", str(other_folder / "net.weights.keras")])
    assert code == 0 and "the weights of net.weights.keras" in capsys.readouterr().out
    exported = keras.saving.load_model(out, compile=False).get_layer("dense").get_weights()[1]
    assert np.allclose(exported, other_bias)


# --- `convas train` starts from the weights the design brings, as the window does ---------------

TINY_STEP = ["--epochs", "1", "--batch-size", "256", "--optimizer", "sgd", "--learning-rate", "1e-9"]


def _train(capsys, source: Path, out: Path, *extra: str) -> str:
    from engine.cli import main

    code = main(["train", str(source), "--data", "digits", "--out", str(out), *TINY_STEP, *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.err


def _dense_bias(path: Path) -> np.ndarray:
    import keras

    return keras.saving.load_model(path, compile=False).get_layer("dense").get_weights()[1]


def test_cli_train_of_a_keras_model_starts_from_its_weights(tmp_path: Path, capsys) -> None:
    """With a learning rate of 1e-9 one epoch cannot move a weight: the trained model's bias is
    the file's (shifted by 4) exactly when training started from the file."""
    from engine.keras_build import build_keras_model

    model = build_keras_model(seed_design())
    kernel, bias = model.get_layer("dense").get_weights()
    model.get_layer("dense").set_weights([kernel, bias + 4.0])
    source = tmp_path / "pretrained.keras"
    model.save(source)

    err = _train(capsys, source, tmp_path / "tuned.keras")
    assert "starting from the weights of pretrained.keras" in err
    assert np.allclose(_dense_bias(tmp_path / "tuned.keras"), bias + 4.0, atol=1e-4)

    err = _train(capsys, source, tmp_path / "fresh.keras", "--fresh")
    assert "starting from fresh, untrained weights" in err and "pretrained.keras" not in err
    assert np.all(np.abs(_dense_bias(tmp_path / "fresh.keras") - (bias + 4.0)) > 3.0)


def test_cli_train_of_a_project_starts_from_its_saved_weights(tmp_path: Path, capsys) -> None:
    path, bias = _project_with_shifted_weights(tmp_path, -3.0)
    err = _train(capsys, path, tmp_path / "tuned.keras")
    assert ("starting from the saved weights (trained on Digits for 1 epoch, net.weights.keras)"
            in err)
    assert np.allclose(_dense_bias(tmp_path / "tuned.keras"), bias, atol=1e-4)

    (tmp_path / "net.weights.keras").unlink()  # gone: a warning, and fresh weights
    err = _train(capsys, path, tmp_path / "fresh.keras")
    assert "warning: The weights file net.weights.keras is not beside the project" in err
    assert "starting from fresh, untrained weights" in err


def test_cli_train_with_an_unreadable_weights_file_says_so_and_offers_fresh(tmp_path: Path, capsys) -> None:
    from engine.cli import main

    path, _bias = _project_with_shifted_weights(tmp_path, 1.0)
    (tmp_path / "net.weights.keras").write_bytes(b"PK\x03\x04 not a model")
    out = tmp_path / "tuned.keras"
    code = main(["train", str(path), "--data", "digits", "--out", str(out), *TINY_STEP])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "has changed since the project was saved" in err
    assert "cannot load the weights of" in err and "use --fresh to start from new weights" in err
    assert not out.exists()
