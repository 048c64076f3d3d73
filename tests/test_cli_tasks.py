"""`convas train` for every task: the task inferred (or given) and said when training starts, the
task's metrics in the epoch lines, the summary and the test score, the task in the saved model's
metadata, and one clean message with a fix for every option that does not suit the task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.cli import main as cli
from engine.design import chain
from engine.embedded_design import read_metadata
from engine.project_file import save_project

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "resources" / "examples"
SEED = EXAMPLES / "seed_cnn.convas"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _project(tmp_path: Path, name: str, *layers) -> Path:
    path = tmp_path / f"{name}.convas"
    save_project(path, chain(*layers, name=name))
    return path


def _vector_net(tmp_path: Path, name: str, units: int, activation: str, size: int = 32) -> Path:
    return _project(tmp_path, name, ("InputLayer", {"shape": (size, size, 1)}),
                    ("Conv2D", {"filters": 8, "kernel_size": (3, 3), "activation": "relu"}),
                    ("MaxPooling2D", {"pool_size": (2, 2)}), ("Flatten", {}),
                    ("Dense", {"units": units, "activation": activation}))


@pytest.mark.slow
def test_the_autoencoder_example_trains_as_a_denoiser(tmp_path, capsys):
    out = tmp_path / "ae.keras"
    code, stdout, err = run(capsys, "train", EXAMPLES / "conv_autoencoder.convas", "--epochs", "1",
                            "--noise", "0.2", "--out", out)
    assert code == 0, err
    assert "training conv_autoencoder for reconstruction (inferred; --task overrides) on digits" in err
    assert "epoch 1/1  loss " in err and "  mae " in err and "val_mae" in err
    assert "final epoch 1: mae " in stdout and "val_mae" in stdout
    assert read_metadata(out)["task"] == "reconstruction"


@pytest.mark.slow
def test_the_unet_example_trains_on_its_saved_shapes_masks(tmp_path, capsys):
    out = tmp_path / "unet.keras"
    code, stdout, err = run(capsys, "train", EXAMPLES / "unet_shapes.convas", "--epochs", "1",
                            "--batch-size", "64", "--out", out)
    assert code == 0, err
    assert "training unet_shapes for segmentation on shapes" in err  # the project's task: not inferred
    assert "mean_iou" in err and "val_mean_iou" in err
    assert "final epoch 1: accuracy " in stdout and "mean_iou " in stdout
    assert read_metadata(out)["task"] == "segmentation"


@pytest.mark.slow
def test_multilabel_on_shapes(tmp_path, capsys):
    design = _vector_net(tmp_path, "tagger", 4, "sigmoid")
    out = tmp_path / "tagger.keras"
    code, stdout, err = run(capsys, "train", design, "--data", "shapes", "--task", "multilabel",
                            "--epochs", "1", "--batch-size", "64", "--out", out)
    assert code == 0, err
    assert "for multilabel on shapes" in err
    assert all(f"val_{m} " in err for m in ("accuracy", "precision", "recall"))
    assert "precision" in stdout and "recall" in stdout
    assert read_metadata(out)["task"] == "multilabel"


@pytest.mark.slow
def test_regression_with_a_test_split(tmp_path, capsys):
    """A .npz of float targets (inferred regression) with a test split: the epoch lines, the
    summary and the test score show MAE and R². (In-process: the installed entry point in its own
    process is test_cli_train.py's test_one_sigint_delivered_twice_stops_and_saves.)"""
    rng = np.random.default_rng(0)
    x = rng.random((96, 16, 16, 1), dtype=np.float32)
    y = np.stack([x.mean(axis=(1, 2, 3)), x[:, :8].mean(axis=(1, 2, 3))], axis=1).astype(np.float32)
    data = tmp_path / "bright.npz"
    np.savez(data, x_train=x[:64], y_train=y[:64], x_test=x[64:], y_test=y[64:])
    design = _project(tmp_path, "brightness", ("InputLayer", {"shape": (16, 16, 1)}), ("Flatten", {}),
                      ("Dense", {"units": 2}))
    out = tmp_path / "b.keras"
    code, stdout, err = run(capsys, "train", design, "--data", data, "--epochs", "2", "--out", out)
    assert code == 0, err
    assert "training brightness for regression (inferred; --task overrides)" in err
    assert "epoch 2/2  loss " in err and "  r2 " in err and "val_r2" in err
    assert "final epoch 2: mae " in stdout
    assert "test (32 samples): mae " in stdout and " r2 " in stdout
    assert read_metadata(out)["task"] == "regression"


@pytest.mark.slow
def test_csv_target_columns_name_what_a_regressor_learns(tmp_path, capsys):
    rng = np.random.default_rng(1)
    pixels = rng.random((48, 64)).round(3)
    header = ["bright", "half", *(f"p{i}" for i in range(64))]
    rows = [[f"{p.mean():.4f}", f"{p[:32].mean():.4f}", *map(str, p)] for p in pixels]
    data = tmp_path / "values.csv"
    data.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    design = _project(tmp_path, "brightness", ("InputLayer", {"shape": (8, 8, 1)}), ("Flatten", {}),
                      ("Dense", {"units": 2}))
    out = tmp_path / "b.keras"
    code, _stdout, err = run(capsys, "train", design, "--data", data, "--task", "regression",
                             "--targets", "bright,half", "--epochs", "1", "--out", out)
    assert code == 0, err
    assert "training brightness for regression on values" in err and "val_r2" in err
    code, _stdout, err = run(capsys, "train", design, "--data", data, "--task", "regression",
                             "--targets", "bright,shade", "--epochs", "1", "--out", out)
    assert code == 2 and "there is no column named 'shade'" in err


@pytest.mark.parametrize("extra, needle", [
    (["--loss", "dice"], "the loss dice does not suit classification (it suits segmentation); choose "
                         "sparse_categorical_crossentropy or categorical_crossentropy or "
                         "binary_crossentropy (--loss), or another --task"),
    (["--loss", "mean_squared_error"], "(it suits regression or reconstruction)"),
    (["--noise", "0.1"], "--noise trains a denoiser, a reconstruction; the task is classification"),
    (["--freeze", "conv2d_9"], "--freeze: no layer or group is named 'conv2d_9'; did you mean"),
    (["--unfreeze-top", "2"], "give --head-epochs N too"),
    (["--head-epochs", "3", "--epochs", "3"], "head epochs (3) must be fewer than the epochs (3)"),
    (["--head-epochs", "1", "--epochs", "3"], "the design freezes no layer; freeze the backbone "
                                              "(convas train --freeze backbone)"),
    (["--freeze", "dense", "--head-epochs", "1", "--epochs", "3", "--unfreeze", "conv2d"],
     "would unfreeze nothing: conv2d covers no frozen layer"),
    (["--task", "segmentation"], "so it cannot train segmentation; use shapes"),
    (["--task", "regression", "--data", "shapes"], "cannot train seed_cnn on shapes (regression):"),
])
def test_options_that_do_not_suit_the_task_are_explained(tmp_path, capsys, extra, needle):
    out = tmp_path / "m.keras"
    code, _stdout, err = run(capsys, "train", SEED, "--out", out, *extra)
    assert code == 2, err
    assert needle in err, err
    assert "Traceback" not in err and not out.exists()


def test_an_unknown_task_is_refused_with_the_tasks(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(["train", str(SEED), "--out", "m.keras", "--task", "segment"])
    assert exit_.value.code == 2
    assert "unknown task 'segment'; choose one of classification, multilabel" in capsys.readouterr().err


def test_help_documents_tasks_and_the_two_phases(capsys):
    with pytest.raises(SystemExit):
        cli(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--task TASK", "--loss NAME", "--noise F", "--targets COL,COL", "--freeze NAMES",
                 "--head-epochs N", "--unfreeze NAMES", "--unfreeze-top K", "--fine-tune-lr F"):
        assert flag in text
    assert "classification, multilabel, regression, reconstruction or segmentation" in text
    assert ("convas train mobilenet.convas --data flowers/ --freeze backbone --epochs 10 \\ "
            "--head-epochs 4 --unfreeze-top 20 --fine-tune-lr 1e-5 --out tuned.keras") in text


def test_the_console_shows_the_tasks_metrics_and_the_phase_change():
    import io

    from engine.progress import ConsoleReporter
    from engine.tasks import Task
    from engine.training import MessageKind

    stream = io.StringIO()
    reporter = ConsoleReporter(3, 100, 10, stream=stream, interactive=False, clock=lambda: 5.0,
                               task=Task.REGRESSION)
    logs = {"loss": 0.5, "val_loss": 0.6, "r2": 0.91, "val_r2": 0.9, "mae": 0.1, "val_mae": 0.2,
            "extra": 1.0, "lr": 1e-3}
    reporter.on_epoch(0, logs)
    reporter.on_message(MessageKind.PHASE, "fine-tuning from epoch 2: unfroze 3 layer(s)")
    assert stream.getvalue().splitlines() == [
        "epoch 1/3  loss 0.5000  mae 0.1000  r2 0.9100  val_loss 0.6000  val_mae 0.2000  val_r2 0.9000  "
        "extra 1.0000  0.0 s",
        "--- phase 2: fine-tuning from epoch 2: unfroze 3 layer(s) ---"]
