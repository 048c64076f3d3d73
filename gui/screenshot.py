"""Render the designer window to a PNG, for the README and for looking at changes.

Run: ``uv run python -m gui.screenshot [OUT.png] [--example NAME | --open FILE] [--dark]
[--scale 2] [--train EPOCHS] [--panel train|evaluation|sweep] [--expand all|GROUP,…] [--find TEXT]
[--no-overview] [--train-task TASK [--epochs N] [--grab window|evaluation|sweep]] [--sweep TRIALS]``.
Works without a display (offscreen) or under Xvfb.

``--panel sweep`` shows the Sweep panel; with ``--open`` a project whose study has trials, it
reattaches to them; ``--sweep TRIALS`` first runs the project's sweep until its study holds
that many trained trials (imports TensorFlow)::

    uv run python -m gui.screenshot sweep.png --open resources/examples/seed_cnn_sweep.convas \
        --panel sweep --sweep 8 --size 1600x1000 --grab sweep

``--train-task`` trains a small network for one task on built-in data (see :func:`task_recipe`),
then shows its evaluation; the README's evaluation pictures are made so::

    Xvfb :99 -screen 0 1600x1000x24 &
    for t in classification multilabel regression reconstruction segmentation; do
        DISPLAY=:99 QT_QPA_PLATFORM=xcb uv run python -m gui.screenshot resources/eval_$t.png \
            --train-task $t --size 1600x1000 --grab evaluation
    done
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", nargs="?", default="resources/screenshot.png")
    parser.add_argument("--example", default="resnet_block")
    parser.add_argument("--select", default=None, help="layer to select (shown in the inspector)")
    parser.add_argument("--dark", action="store_true", help="render with a dark palette")
    parser.add_argument("--scale", type=float, default=1.0, help="device pixel ratio (e.g. 2 for 200 %%)")
    parser.add_argument("--size", default="1440x900")
    parser.add_argument("--train", type=int, default=0, metavar="EPOCHS",
                        help="train the design on its data for EPOCHS first (imports TensorFlow)")
    parser.add_argument("--panel", choices=("train", "evaluation", "sweep"), default=None,
                        help="bring this bottom panel to the front")
    parser.add_argument("--open", default=None, metavar="FILE",
                        help="open this design file (.convas, .keras, .json) instead of an example")
    parser.add_argument("--expand", default=None, metavar="all|GROUP,…",
                        help="expand every group, or the named ones, before the picture")
    parser.add_argument("--find", default=None, metavar="TEXT",
                        help="type TEXT into Find (Ctrl+F) and go to the first match")
    parser.add_argument("--no-overview", action="store_true", help="hide the overview minimap")
    parser.add_argument("--train-task", default=None, metavar="TASK",
                        choices=("classification", "multilabel", "regression", "reconstruction", "segmentation"),
                        help="train a small network for TASK on built-in data, then show its evaluation")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of --train-task (default: the recipe's)")
    parser.add_argument("--grab", choices=("window", "evaluation", "sweep"), default="window",
                        help="picture the whole window, or only the Evaluation or Sweep panel")
    parser.add_argument("--sweep", type=int, default=0, metavar="TRIALS",
                        help="with --panel sweep: run the project's sweep to TRIALS trained trials first")
    args = parser.parse_args(argv)
    trained = None
    if args.train_task:
        trained = task_recipe(args.train_task, args.epochs)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("CONVAS_RECOVERY_DIR", tempfile.mkdtemp())
    if args.scale != 1.0:
        os.environ["QT_SCALE_FACTOR"] = str(args.scale)
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    QApplication.setStyle("Fusion")
    from engine.examples import load_example

    from .document import Document
    from .main_window import MainWindow

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    from .theme import THEME_KEY, Theme

    settings.setValue(THEME_KEY, (Theme.DARK if args.dark else Theme.LIGHT).value)  # the window applies it
    design = trained.design if trained is not None else load_example(args.example)
    window = MainWindow(Document(design), settings=settings)
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    app.processEvents()
    if args.open:
        if not window.open_path(Path(args.open), ask=False):
            return 1
        app.processEvents()
    if args.no_overview:
        window.act_overview.trigger()  # it starts checked (fresh settings)
    if args.expand:
        design = window.document.design
        names = list(design.groups) if args.expand == "all" else args.expand.split(",")
        from engine.grouping import plan_collapse
        window.document.edit("Expand", plan_collapse(design, names, False))
        app.processEvents()
    window.view.fit_to_view()
    selected = args.select or next(iter(n for n in window.document.design.nodes
                                        if window.document.design.nodes[n].kind.startswith("Conv")), None)
    if args.find:
        window.act_find.trigger()
        app.processEvents()
        bar = window.view.find_bar
        bar.field.setText(args.find)
        bar.find_next()
    elif selected:
        window.scene.select_nodes([selected])
    for _ in range(3):
        app.processEvents()
    if args.panel == "sweep":
        _show_sweep(app, window, args.sweep)
    elif args.train or args.panel:
        window.show_training_panel()
        panel = window.train_panel
        _wait(app, lambda: panel.dataset is not None or bool(panel.session.problems), 120)
    if args.train:
        panel.form.epochs_spin.setValue(args.train)
        panel.start()
        _wait(app, lambda: panel.state == "idle" and panel.result is not None, 1800)
        from .workers import running
        _wait(app, lambda: running() == 0, 300)
    if trained is not None:
        from .workers import running
        dock = window._docks["Evaluation"]
        dock.show()
        dock.raise_()
        window.resizeDocks([dock], [height * 62 // 100], Qt.Orientation.Vertical)
        evaluation = window.evaluation
        done: list[bool] = []
        evaluation.sigEvaluated.connect(lambda: done.append(True))
        evaluation.sigFailed.connect(lambda message: print(f"evaluation failed: {message}", file=sys.stderr))
        evaluation.set_result(trained.model, trained.dataset, trained.task, trained.noise_stddev, trained.loss)
        _wait(app, lambda: bool(done) or not evaluation.is_busy(), 600)
        _wait(app, lambda: running() == 0, 120)  # the pictures the view computes
        print(trained.summary)
    if args.panel == "evaluation":
        window._docks["Evaluation"].raise_()
    _wait(app, lambda: False, 0.5)  # let everything paint
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grabbed = {"evaluation": window.evaluation, "sweep": window._docks["Sweep"]}.get(args.grab, window)
    grabbed.grab().save(str(out))
    print(out)
    window.document.mark_saved()
    window.close()
    return 0


@dataclass
class TrainedTask:
    """A network trained for one task by :func:`task_recipe`, with its data and settings."""

    task: Any
    design: Any
    model: Any
    dataset: Any
    noise_stddev: float
    loss: str | None
    summary: str


# Per task: the example design, the data, epochs and noise. Small enough to train in a minute or
# two on a laptop CPU, large enough that the evaluation shows what a trained model does.
RECIPES = {
    "classification": ("seed_cnn", "digits", 4, 0.0),
    "multilabel": ("small_vgg", "shapes", 15, 0.0),  # the seed CNN reaches only 25 % exact match
    "regression": ("seed_cnn", "shapes", 15, 0.0),
    "reconstruction": ("conv_autoencoder", "digits", 10, 0.2),
    "segmentation": ("unet_shapes", "shapes", 25, 0.0),
}


def task_recipe(task_name: str, epochs: int | None = None) -> TrainedTask:
    """Train a small network for ``task_name`` on built-in data (imports TensorFlow): the seed
    CNN on Digits, the small VGG (grey input) with a sigmoid head on multi-label Shapes, the seed
    CNN with a linear head on regression Shapes, the convolutional autoencoder on Digits with
    noise (denoising), the U-Net example on Shapes masks."""
    from engine.datasets import load_digits_dataset, make_shapes_dataset
    from engine.examples import load_example
    from engine.task_evaluation import evaluate_task
    from engine.tasks import Task
    from engine.training import TrainingConfig, train

    task = Task(task_name)
    example, data_name, default_epochs, noise = RECIPES[task.value]
    design = load_example(example)
    first = design.nodes[next(iter(design.nodes))]
    if example == "small_vgg":
        first.args["shape"] = (32, 32, 1)  # the grey Shapes images
    shape = tuple(first.args["shape"])
    if data_name == "digits":
        dataset = load_digits_dataset(shape)
    else:
        dataset = make_shapes_dataset(2000, shape, task=task)
    if task in (Task.MULTILABEL, Task.REGRESSION):  # the seed CNN's head, set for this data
        head = design.nodes[list(design.nodes)[-1]]
        head.args["units"] = len(dataset.class_names)
        head.args["activation"] = "sigmoid" if task is Task.MULTILABEL else "linear"
    config = TrainingConfig(epochs=epochs or default_epochs, task=task, noise_stddev=noise)
    result = train(design, dataset.train, dataset.validation, config, task=task, pixel_range=dataset.pixel_range)
    evaluation = evaluate_task(result.model, dataset, task, noise_stddev=noise)
    numbers = {k: round(float(getattr(evaluation, k)), 4) for k in
               ("accuracy", "exact_match", "label_accuracy", "r2", "mae", "mse", "variance", "mean_iou",
                "pixel_accuracy", "loss") if getattr(evaluation, k, None) is not None}
    summary = f"{task.value}: {example} on {dataset.name}, {config.epochs} epochs: {numbers}"
    return TrainedTask(task, design, result.model, dataset, noise, None, summary)


def _show_sweep(app, window, trials: int) -> None:
    """Show the Sweep panel with the study of the open project, after running the sweep to
    ``trials`` trained trials when that is more than 0; then select the best trial."""
    from .workers import running

    window.show_sweep_panel()
    panel = window.sweep_panel
    _wait(app, lambda: panel.plot is not None, 30)
    _wait(app, lambda: False, 0.3)
    _wait(app, lambda: running() == 0, 60)  # the study is read
    if trials:
        settings = window.document.sweep.with_changes(trials=trials)
        window.document.set_sweep(settings)
        panel.start()
        _wait(app, lambda: not panel.is_running(), 3600)
        _wait(app, lambda: running() == 0, 60)
    front = [r for r in panel.model.records if r.metric is not None]
    if front:
        best = max(front, key=lambda r: r.metric if panel.plot.higher_is_better else -r.metric)
        panel.select_trial(best.number)
    print(panel.status_label.text())


def _wait(app, condition, timeout_s: float) -> None:
    """Process events until ``condition()`` holds, or ``timeout_s`` has passed."""
    import time
    end = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(main())
