"""The command line: ``convas summary``, ``convas train``, ``convas export``, ``convas sweep``
(:mod:`engine.sweep_cli`), ``convas --version``.

Every failure is a message on stderr and an exit status, never a traceback:

- 0: ``summary``: a valid design; ``train``: trained and saved.
- 1: an invalid design (each problem as ``NAME: message``); for ``train`` also a design Keras
  cannot build or train, and a loss that became NaN (the model is then not saved); and an
  internal error (a bug: "internal error: …; please report it", the traceback in
  :func:`engine.internal_error.cli_log_path`, or on stderr with ``--debug``).
- 2: an unreadable or unsupported file, bad arguments (``summary`` of a Keras model with layers
  Convas does not know first prints the table of what it read, those layers marked, then lists
  them with their reasons); for ``train`` also a dataset that cannot
  be loaded or does not fit the design (listed under "cannot train:") and an output that cannot
  be written (decided by the error's type: :func:`engine.errors.destination_refusal`).
- 3: ``train`` on a cluster lost a worker mid-run (the message names it); the last completed
  epoch is checkpointed and rerunning the same command resumes from it.
- 130: ``train`` interrupted by Ctrl+C (SIGINT): the first one stops training after the current
  batch and the model trained so far is saved; a second one aborts without saving, but only
  when it comes from a keyboard more than :attr:`_CtrlC.window` seconds later (one SIGINT to a
  process group reaches a child of ``uv run`` twice, and a CI system has no keyboard).

``train`` trains the task ``--task`` names, else the project's, else the one the design's output
and the data suggest (:func:`engine.data_source.choose_task`), says which when it starts, shows
that task's metrics, and records it in the saved model's metadata (``task``). ``--freeze``
freezes layers before the model is built; ``--head-epochs`` fine-tunes in two phases
(:func:`engine.training.train`).

``train --distribute mirrored|multiworker`` spreads training with ``tf.distribute``
(:mod:`engine.distribute`: the cluster from TF_CONFIG, Slurm or ``--workers``, checked before
anything is loaded; :mod:`engine.local_workers`: ``--local-workers N``); only the chief (worker 0)
prints, saves the model and writes the log. ``--progress json`` writes one JSON object per line
on stdout for a program to read (:class:`engine.progress.JsonLinesReporter`).

``train`` starts from the weights the design file brings (a ``.keras`` model's own, a project's
saved weights file; :func:`engine.weights.resolve_weights` decides, as in the window), or from
fresh ones with ``--fresh``. TensorFlow is imported only by ``train``, once its arguments and
files have been checked.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .analysis import Severity, analyse
from .distribute import DEFAULT_SLURM_PORT, Strategy
from .errors import ConvasError, destination_refusal, first_line
from .internal_error import describe_error
from .keras_startup import skip_sklearn_for_keras_wrappers
from .local_workers import EXIT_WORKER_LOST
from .progress import StopRequests
from .summary import summary_dict, summary_text
from .text import printable

if TYPE_CHECKING:
    from .design import Design
    from .weights import WeightsSource

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a process ended by Ctrl+C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: stdout's reader went away, as for any Unix tool
DEBUG_HELP = "on an internal error, print the traceback on stderr (else it goes to a log file)"


class _Parser(argparse.ArgumentParser):
    """argparse that exits with status 2 and a one-line reason (its default, made explicit)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNREADABLE, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def fraction(text: str) -> float:
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be from 0 up to (not including) 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="convas", description="Design, analyse, train and export Keras CNNs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="the window:\n"
               "  convas [FILE]                   open the designer (on FILE: a .convas, .keras or Keras JSON file);\n"
               "                                  a running Convas window opens FILE instead\n"
               "  convas --new-window [FILE]      always open a window of its own\n"
               "  convas --install-desktop-entry  open .convas files with Convas from the desktop (this user);\n"
               "                                  --uninstall-desktop-entry undoes it")
    parser.add_argument("--version", action="version", version=f"convas {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    s = sub.add_parser("summary", help="print the layer table of a .convas, .keras or Keras JSON file")
    s.add_argument("path", help="a .convas, .keras or Keras JSON file")
    s.add_argument("--json", action="store_true", help="print machine-readable JSON")
    s.add_argument("--batch-size", type=positive_int, default=1, help="batch size for activation memory")
    _add_train_parser(sub)
    from .export.command import add_parser as add_export_parser
    add_export_parser(sub)
    from .sweep_cli import add_parser as add_sweep_parser
    add_sweep_parser(sub)
    for command in sub.choices.values():  # also after the command; SUPPRESS keeps a flag given before it
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def _add_train_parser(sub: Any) -> None:
    from .training import OPTIMIZERS

    t = sub.add_parser(
        "train", help="train a design on a dataset and save the trained .keras model",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the example commands whole
        description="Train a design and save the trained model. Settings saved in a .convas\n"
                    "project are the defaults; the options below override them.",
        epilog="examples:\n"
               "  convas train unet_shapes.convas --out unet.keras\n"
               "  convas train autoencoder.convas --task reconstruction --noise 0.2 --out denoiser.keras\n"
               "  convas train regressor.convas --data values.csv --targets size,angle --out r.keras\n"
               "  two phases: the head for 4 epochs with the backbone frozen, then the top 20\n"
               "  frozen layers too, at a learning rate of 1e-5, up to epoch 10:\n"
               "  convas train mobilenet.convas --data flowers/ --freeze backbone --epochs 10 \\\n"
               "      --head-epochs 4 --unfreeze-top 20 --fine-tune-lr 1e-5 --out tuned.keras\n"
               "  a cluster of two workers on this computer, then on two machines:\n"
               "  convas train seed_cnn.convas --local-workers 2 --out seed.keras\n"
               "  convas train seed_cnn.convas --workers 10.0.0.1:2222,10.0.0.2:2222 --worker-index 0 \\\n"
               "      --out seed.keras            (and --worker-index 1 on 10.0.0.2)\n\n"
               "Ctrl+C stops after the current batch and saves the model trained so far (exit\n"
               "status 130); a second Ctrl+C aborts without saving. A cluster run that lost a\n"
               "worker exits with status 3; rerunning the same command resumes it.")
    t.add_argument("design", metavar="DESIGN", help="a .convas, .keras or Keras JSON file")
    t.add_argument("--data", metavar="SOURCE",
                   help="digits, shapes, or the path of a .npz file (or a folder of its arrays as "
                        ".npy files: x_train.npy, y_train.npy, ...), a .csv file, or a folder: one "
                        "sub-folder of images per class; images/ and masks/ (segmentation); images "
                        "with a labels.csv (multi-label or regression); images alone "
                        "(reconstruction) (default: the project's, else digits)")
    t.add_argument("--epochs", type=positive_int, metavar="N")
    t.add_argument("--batch-size", type=positive_int, metavar="N")
    t.add_argument("--validation-split", type=fraction, metavar="F",
                   help="fraction of the data held out for validation, e.g. 0.2")
    t.add_argument("--learning-rate", type=positive_float, metavar="F")
    t.add_argument("--optimizer", type=str.lower, choices=OPTIMIZERS)
    t.add_argument("--seed", type=non_negative_int, metavar="N")
    t.add_argument("--pixel-range", choices=("0-1", "0-255"),
                   help="deliver pixels in [0, 1] or raw 0-255 (Keras's image_dataset_from_directory "
                        "convention, for designs that start with Rescaling(1/255)); default: the "
                        "project's, a .keras model's recorded input range, else 0-1")
    t.add_argument("--out", required=True, metavar="MODEL.keras",
                   help="where to save the trained model (a .keras file)")
    t.add_argument("--log", metavar="FILE.csv",
                   help="write one row per epoch, as Keras's CSVLogger does (plus lr and "
                        "samples_per_s columns)")
    t.add_argument("--fresh", action="store_true",
                   help="start from new random weights instead of those the design brings (a "
                        ".keras model's own, or those saved beside a .convas project)")
    what = t.add_argument_group("what the network learns")
    what.add_argument("--task", type=_task_name, metavar="TASK",
                      help="classification, multilabel, regression, reconstruction or segmentation "
                           "(default: the project's, else inferred from the design's output and the "
                           "data, and printed when training starts)")
    what.add_argument("--loss", type=str.lower, metavar="NAME",
                      help=f"the loss: {_losses_help()}; default: the task's first")
    what.add_argument("--noise", type=non_negative_float, metavar="F",
                      help="reconstruction: the standard deviation of Gaussian noise added to the "
                           "inputs (pixels in [0, 1]), to train a denoiser; the target stays clean")
    what.add_argument("--targets", type=_names, metavar="COL,COL",
                      help="a CSV's target columns: regression values, or one 0/1 column per label "
                           "of a multi-label dataset")
    fine = t.add_argument_group(
        "transfer learning",
        "Freeze layers to keep what a pretrained network learned. With --head-epochs,\n"
        "training runs in two phases: the head alone for N epochs with the frozen layers\n"
        "frozen, then also the layers --unfreeze and --unfreeze-top name (default: every\n"
        "frozen layer; BatchNormalization layers stay frozen) at a lower learning rate,\n"
        "up to --epochs (see the example below).")
    fine.add_argument("--freeze", type=_names, metavar="NAMES",
                      help="comma-separated layer names, group names, or backbone (every layer "
                           "before the head) to freeze, besides those the design freezes")
    fine.add_argument("--head-epochs", type=positive_int, metavar="N",
                      help="train the head alone for N epochs (fewer than --epochs), then fine-tune")
    fine.add_argument("--unfreeze", type=_names, metavar="NAMES",
                      help="comma-separated layer or group names the second phase unfreezes")
    fine.add_argument("--unfreeze-top", type=non_negative_int, metavar="K",
                      help="the second phase unfreezes the K frozen layers with weights nearest "
                           "the output")
    fine.add_argument("--fine-tune-lr", type=positive_float, metavar="F",
                      help="the second phase's learning rate (default: a tenth of --learning-rate)")
    _add_distribute_arguments(t)


def _add_distribute_arguments(t: argparse.ArgumentParser) -> None:
    where = t.add_argument_group(
        "where it trains",
        "One device by default. --distribute mirrored trains on every local GPU (or the --devices\n"
        "named; on a machine without GPUs, --devices CPU:0,CPU:1 splits the CPU in two, a way to\n"
        "try mirrored training). --distribute multiworker trains on a cluster of machines, each\n"
        "running the same command: the cluster comes from TF_CONFIG (Keras's convention), from\n"
        "Slurm (--cluster slurm, inside srun), or from --workers with each machine's own\n"
        "--worker-index; worker 0, the chief, saves the model and the log and prints progress.\n"
        "--local-workers N runs N workers on this machine. --batch-size is the global batch,\n"
        "shared among the replicas. Cluster runs keep a checkpoint of every epoch: when a worker\n"
        "is lost, rerunning the same command resumes from the last completed epoch.")
    where.add_argument("--distribute", type=str.lower, choices=[s.value for s in Strategy],
                       help="none (default), mirrored or multiworker (implied by --workers, --cluster "
                            "and --local-workers)")
    where.add_argument("--devices", type=_names, metavar="D,D",
                       help="mirrored: the local devices, e.g. GPU:0,GPU:1 or CPU:0,CPU:1 (default: "
                            "every GPU)")
    where.add_argument("--cluster", type=str.lower, choices=("tf_config", "slurm"),
                       help="multiworker: read the cluster from the TF_CONFIG variable or from Slurm's "
                            "job step (default: TF_CONFIG)")
    where.add_argument("--slurm-port", type=positive_int, default=DEFAULT_SLURM_PORT, metavar="PORT",
                       help=f"--cluster slurm: the first port of a node's workers (default "
                            f"{DEFAULT_SLURM_PORT})")
    where.add_argument("--workers", metavar="HOST:PORT,...",
                       help="multiworker: every worker's address, the chief first, the same on every "
                            "machine; give --worker-index too")
    where.add_argument("--worker-index", type=non_negative_int, metavar="I",
                       help="which of --workers this machine is (0: the chief)")
    where.add_argument("--local-workers", type=positive_int, metavar="N",
                       help="train with N worker processes on this machine (loopback ports): a cluster "
                            "run to try on one computer")
    where.add_argument("--scale-lr", action="store_true",
                       help="multiply the learning rate by the number of replicas (the linear scaling "
                            "rule for a larger global batch)")
    where.add_argument("--checkpoints", metavar="DIR",
                       help="mirrored/multiworker: keep the last completed epoch here (default: "
                            "MODEL.keras.checkpoints beside --out); rerunning the same command resumes "
                            "from it; removed when training completes")
    where.add_argument("--worker-timeout", type=positive_float, metavar="S", default=60.0,
                       help="multiworker: give up when another worker has not answered for S seconds "
                            "(default 60)")
    where.add_argument("--connect-timeout", type=positive_float, metavar="S", default=60.0,
                       help="multiworker: give up when the workers have not all joined within S seconds "
                            "of this one starting (default 60)")
    where.add_argument("--cache", metavar="DIR",
                       help="image folders: keep the decoded, resized images in DIR (or 'memory') for "
                            "the epochs after the first and for later runs on the same files, "
                            "reshuffled every epoch; N×H×W×C bytes, checked before training")
    where.add_argument("--progress", choices=("text", "json"), default="text",
                       help="json: one JSON object per line on stdout for a program to read (start, "
                            "batch, epoch, message, done, error events; see the README); text (default)")
    where.add_argument("--weights-digest", metavar="FILE", help=argparse.SUPPRESS)  # tests: FILE.I per worker


def _task_name(text: str) -> Any:
    from .tasks import Task

    try:
        return Task.parse(text)
    except ConvasError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _losses_help() -> str:
    from .tasks import SPECS

    return "; ".join(f"{task.value}: {', '.join(s.losses)}" for task, s in SPECS.items())


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"give one or more comma-separated names, not {text!r}")
    return names


def non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _stdout_unicode() -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "╒═│".encode(encoding)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def cmd_summary(args: argparse.Namespace) -> int:
    from .files import load_design_report
    from .keras_import import unsupported_message

    try:
        design, unsupported = load_design_report(args.path)
    except ConvasError as exc:
        print(f"convas: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"convas: cannot read {args.path}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    from .data_source import recorded_pixel_range

    analysis = analyse(design, batch_size=args.batch_size, input_range=recorded_pixel_range(args.path))
    if args.json:
        print(json.dumps(summary_dict(design, analysis), indent=2))
    else:
        print(summary_text(design, analysis, unicode=_stdout_unicode()))
    shown_as_cards = {layer.name for layer in unsupported}
    for problem in analysis.problems:
        if problem.node in shown_as_cards:
            continue  # listed below, with the reason import found
        who = problem.node or design.name
        prefix = "" if problem.severity == Severity.ERROR else "warning: "
        print(printable(f"{who}: {prefix}{problem.message}"), file=sys.stderr)
    if unsupported:
        for line in f"convas: {unsupported_message(Path(args.path).name, unsupported)}".splitlines():
            print(printable(line), file=sys.stderr)
        return EXIT_UNREADABLE
    return EXIT_OK if analysis.valid else EXIT_INVALID


class TrainError(Exception):
    """Ends ``convas train`` with ``status`` after printing ``lines`` on stderr."""

    def __init__(self, status: int, *lines: str) -> None:
        super().__init__(lines[0] if lines else "")
        self.status, self.lines = status, lines


def _fail(message: str, status: int = EXIT_UNREADABLE) -> TrainError:
    return TrainError(status, f"convas: {message}")


def _check_writable(path_text: str, what: str, suffix: str | None = None) -> Path:
    """``path_text`` as the path to write (a symlink's target, as editors do) whose folder exists
    and can be written to (checked by creating and removing a file there, so that training does
    not run only to fail at the end). What interrupted writes to it left behind is cleaned up
    first (:func:`engine.atomic.clean_leftovers`), and said on stderr."""
    from .atomic import check_can_create, clean_leftovers, write_target

    path = Path(path_text).expanduser()
    if suffix is not None and path.suffix.lower() != suffix:
        raise _fail(f"{what} {path_text} must end in {suffix}; Keras saves models only as "
                    f"{suffix} files (e.g. --out {path.with_suffix(suffix).name})")
    path = write_target(path)
    if path.is_dir():
        raise _fail(f"{what} {path_text} is a folder; give a file name")
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise _fail(f"cannot write {what} {path_text}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise _fail(f"cannot write {what} {path_text}: the folder {folder} does not exist")
    try:
        check_can_create(path)
    except OSError as exc:
        raise _fail(f"cannot write {what} {path_text}: {exc.strerror or exc}") from None
    for note in clean_leftovers(path):
        print(f"convas: {note}", file=sys.stderr)
    return path


def save_model_atomically(model: Any, path: Path, metadata: dict[str, Any] | None = None) -> None:
    """Save ``model`` to ``path`` so that ``path`` is either untouched or the complete new file
    (:func:`engine.atomic.replace_atomically`; Keras insists on the ``.keras`` suffix), with
    ``metadata`` as the archive's ``convas.json`` when given."""
    from .atomic import replace_atomically
    from .export.formats import FORMATS, WriteOptions

    def fill(tmp: Path) -> None:
        FORMATS["keras"].write(model, tmp, WriteOptions(metadata=metadata))

    replace_atomically(path, fill, path.name, ".keras")


def _save_failure(exc: BaseException, out_text: str) -> TrainError:
    """Why the model could not be saved, with the status its type calls for: 2 when the
    destination refused it (a full disk, a read-only folder, no permission: an OSError, maybe
    wrapped, see :func:`engine.errors.destination_refusal`), 1 when Keras could not save it."""
    from .errors import error_chain, refusal_reason

    oserror = destination_refusal(exc) or next((e for e in error_chain(exc) if isinstance(e, OSError)), None)
    if oserror is not None:
        return _fail(f"could not save the model to {out_text}: {refusal_reason(oserror)}", EXIT_UNREADABLE)
    return _fail(f"could not save the model to {out_text}: {describe_error(exc)}", EXIT_INVALID)


def _training_settings(args: argparse.Namespace) -> Any:
    """The project's saved training settings (defaults for other files) with the flags applied."""
    from dataclasses import replace

    from .project_file import load_project
    from .training import TrainingSettings

    settings = TrainingSettings()
    if Path(args.design).suffix.lower() == ".convas":
        try:
            settings = TrainingSettings.from_dict(load_project(args.design).training)
        except ConvasError as exc:
            raise _fail(f"{Path(args.design).name}: training settings: {exc}") from None
    flags = {"epochs": args.epochs, "batch_size": args.batch_size,
             "validation_split": args.validation_split, "learning_rate": args.learning_rate,
             "optimizer": args.optimizer, "seed": args.seed, "task": args.task, "loss": args.loss,
             "noise_stddev": args.noise, "head_epochs": args.head_epochs, "unfreeze": args.unfreeze,
             "unfreeze_top": args.unfreeze_top, "fine_tune_learning_rate": args.fine_tune_lr}
    try:
        config = replace(settings.config, **{k: v for k, v in flags.items() if v is not None})
    except ConvasError as exc:
        raise _fail(str(exc)) from None
    if not config.two_phases and (args.unfreeze or args.unfreeze_top or args.fine_tune_lr):
        raise _fail("--unfreeze, --unfreeze-top and --fine-tune-lr set fine-tuning's second phase; "
                    "give --head-epochs N too (the epochs that train the head alone first)")
    return replace(settings, dataset=args.data if args.data is not None else settings.dataset,
                   config=config, pixel_range=_pixel_range(args, settings.pixel_range),
                   target_columns=args.targets if args.targets is not None else settings.target_columns)


def _pixel_range(args: argparse.Namespace, saved: Any) -> Any:
    """``--pixel-range``, else a ``.keras`` model's recorded input range, else ``saved``."""
    from .data_source import recorded_pixel_range
    from .pixel_range import PixelRange

    if getattr(args, "pixel_range", None):
        return PixelRange.parse(args.pixel_range)
    if Path(args.design).suffix.lower() == ".keras":
        return recorded_pixel_range(args.design) or saved
    return saved


def _starting_weights(args: argparse.Namespace, design: Design, say: Any = None) -> WeightsSource:
    """The weights a run starts from (:func:`engine.weights.resolve_weights`, as in the window):
    those the design file brings (a ``.keras`` model's own, a project's saved weights file),
    unless ``--fresh``; a missing or changed weights file is a warning."""
    from .weights import WeightsUse, kept_weights, resolve_weights

    kept = None
    if not args.fresh:
        try:
            kept, warnings = kept_weights(args.design)
        except ConvasError as exc:
            raise _fail(str(exc)) from None
        for warning in warnings:
            (say or _say)(f"convas: warning: {warning}")
    return resolve_weights(design, kept=kept, use=WeightsUse.TRAINING, fresh=args.fresh)


def keyboard_attached() -> bool:
    """Whether a SIGINT can be a person's Ctrl+C: this process is in the foreground of a
    controlling terminal (POSIX; elsewhere, whether it reads a console). A CI system or a
    process manager sends its SIGINT with no terminal at all."""
    if os.name != "posix":
        return bool(sys.stdin and sys.stdin.isatty())
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


class _CtrlC:
    """While active, the first SIGINT asks ``reporter`` to stop after the current batch (and the
    model trained so far is saved); a later one raises KeyboardInterrupt (abort, nothing saved)
    only when it can be a person pressing Ctrl+C again: more than :attr:`window` seconds after
    the first, with a keyboard attached (:func:`keyboard_attached`). One SIGINT sent to a
    process group reaches a child of ``uv run`` twice, moments apart (from the sender, then
    forwarded by uv), and a CI system or a process manager that sends SIGINT means "stop"."""

    window = 1.0  # seconds within which a second SIGINT is the first one delivered again

    def __init__(self, reporter: Any, clock: Any = time.monotonic) -> None:
        self.reporter = reporter
        self.clock = clock
        self.first_at: float | None = None
        self.said_no_abort = False
        self.previous: Any = None
        self.previous_break: Any = None
        self.installed = False

    def __enter__(self) -> _CtrlC:
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
            self.installed = True
            if hasattr(signal, "SIGBREAK"):  # Windows: CTRL_BREAK_EVENT, how a parent asks a stop
                self.previous_break = signal.signal(signal.SIGBREAK, self._handle)
        except ValueError:  # not the main thread: Ctrl+C keeps its default meaning
            pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        from .training import MessageKind

        now = self.clock()
        if self.first_at is None:
            self.first_at = now
            self.reporter.request_stop()
            again = " (press Ctrl+C again to abort)" if keyboard_attached() else ""
            self.reporter.on_message(MessageKind.INFO, "stopping after this batch; the model trained so far "
                                     f"will be saved{again}")
            return
        if now - self.first_at <= self.window:
            return  # the first interrupt, delivered again
        if keyboard_attached():
            raise KeyboardInterrupt
        if not self.said_no_abort:
            self.said_no_abort = True
            self.reporter.on_message(MessageKind.INFO, "still stopping: with no terminal attached, a further "
                                     "interrupt does not abort (SIGTERM does, without saving)")

    def __exit__(self, *exc: Any) -> None:
        if not self.installed:
            return
        if hasattr(signal, "SIGBREAK") and self.previous_break is not None:
            signal.signal(signal.SIGBREAK, self.previous_break)
        first_at, previous = self.first_at, self.previous
        if first_at is None:
            signal.signal(signal.SIGINT, previous)
            return

        # The duplicate of the first SIGINT may still be on its way (it was seen arriving after a
        # fast stop-and-save): ignore it within the window, then behave as before.
        def late(signum: int, frame: Any) -> None:
            if self.clock() - first_at <= self.window:
                return
            signal.signal(signal.SIGINT, previous)
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGINT, late)


def _metrics_text(logs: dict[str, float], task: Any, prefix: str = "") -> str:
    """The task's metrics, then the loss, as ``accuracy 0.9650  loss 0.1230`` (``val_``… with
    ``prefix``)."""
    from .tasks import spec

    keys = [k for k in (*spec(task).metrics, "loss") if prefix + k in logs]
    return "  ".join(f"{prefix}{k} {logs[prefix + k]:.4f}" for k in keys)


def _freeze(design: Design, names: Sequence[str]) -> int:
    """Freeze the layers ``names`` cover (:func:`engine.freezing.resolve`); how many were not
    frozen yet. An unknown name ends the command (status 2) naming the closest known one."""
    from .freezing import resolve

    try:
        covered = resolve(design, names)
    except ConvasError as exc:
        raise _fail(f"--freeze: {exc}") from None
    newly = [n for n in covered if design.nodes[n].trainable]
    for name in newly:
        design.nodes[name].trainable = False
    return len(newly)


def _check_task_options(args: argparse.Namespace, config: Any, task: Any) -> None:
    """Options that do not suit ``task`` end the command (status 2), saying what would."""
    from .tasks import Task, spec

    losses = spec(task).losses
    if config.loss is not None and config.loss not in losses:
        fits = [t.value for t in Task if config.loss in spec(t).losses]
        where = f" (it suits {' or '.join(fits)})" if fits else ""
        raise _fail(f"the loss {config.loss} does not suit {task.value}{where}; choose "
                    f"{' or '.join(losses)} (--loss), or another --task")
    if args.noise and task is not Task.RECONSTRUCTION:
        raise _fail(f"--noise trains a denoiser, a reconstruction; the task is {task.value}; drop "
                    f"--noise or give --task reconstruction")


def cmd_train(args: argparse.Namespace) -> int:
    try:
        if args.local_workers is not None:
            return _train_local_workers(args)
        return _train(args)
    except TrainError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        if args.progress == "json" and getattr(args, "is_chief", True):
            from .progress import write_event

            write_event(sys.stdout, "error", status=exc.status, text="\n".join(exc.lines))
        return exc.status
    except KeyboardInterrupt:
        print("\nconvas: interrupted; nothing was saved", file=sys.stderr)
        return EXIT_INTERRUPTED


def _distribution(args: argparse.Namespace) -> Any:
    """The :class:`engine.distribute.Distribution` the flags ask for (None: one device), their
    combinations checked and the cluster resolved (TF_CONFIG, Slurm or --workers), so that every
    mistake ends the command (status 2) before anything is loaded."""
    from .distribute import (
        ClusterError,
        Distribution,
        cluster_from_flags,
        cluster_from_slurm,
        cluster_from_tf_config,
    )

    cluster_flags = [flag for flag, value in (("--workers", args.workers), ("--cluster", args.cluster),
                                              ("--local-workers", args.local_workers)) if value is not None]
    strategy = Strategy(args.distribute) if args.distribute else \
        (Strategy.MULTIWORKER if cluster_flags else Strategy.NONE)
    if cluster_flags and strategy is not Strategy.MULTIWORKER:
        raise _fail(f"{cluster_flags[0]} trains on a cluster of workers: give --distribute multiworker "
                    f"(or drop {cluster_flags[0]})")
    if args.worker_index is not None and args.workers is None:
        raise _fail("--worker-index says which of --workers this machine is; give --workers "
                    "host:port,... (every worker's address, the chief first) too")
    if args.local_workers is not None and (args.workers is not None or args.cluster is not None):
        raise _fail("--local-workers starts its own workers on this machine; drop --workers and "
                    "--cluster (or drop --local-workers to join a cluster of machines)")
    if args.workers is not None and args.cluster is not None:
        raise _fail("give the cluster once: --workers host:port,... or --cluster tf_config|slurm")
    if args.devices and strategy is not Strategy.MIRRORED:
        raise _fail("--devices names the local devices of mirrored training; add --distribute mirrored")
    if strategy is Strategy.MIRRORED:
        bad = [d for d in args.devices or () if not _DEVICE.match(d)]
        if bad:
            raise _fail(f"--devices: {bad[0]!r} is not a device; name them as GPU:0,GPU:1 or CPU:0,CPU:1")
    if strategy is Strategy.NONE:
        for flag, given in (("--scale-lr", args.scale_lr), ("--checkpoints", args.checkpoints)):
            if given:
                raise _fail(f"{flag} is for mirrored or multiworker training; add --distribute "
                            "mirrored or multiworker, or drop it")
        return None
    cluster = None
    if strategy is Strategy.MULTIWORKER and args.local_workers is None:
        try:
            if args.workers is not None:
                cluster = cluster_from_flags(args.workers, args.worker_index)
            elif args.cluster == "slurm":
                cluster = cluster_from_slurm(args.slurm_port)
            elif os.environ.get("TF_CONFIG"):
                cluster = cluster_from_tf_config(os.environ["TF_CONFIG"])
            else:
                what = "TF_CONFIG is not set" if args.cluster == "tf_config" else "no cluster was given"
                raise _fail(f"multiworker training needs its cluster, and {what}: set TF_CONFIG, give "
                            "--workers host:port,... --worker-index I, use --cluster slurm inside srun, or "
                            "try it on this machine with --local-workers 2")
        except ClusterError as exc:
            raise _fail(str(exc)) from None
    checkpoints = Path(args.checkpoints).expanduser() if args.checkpoints \
        else Path(str(Path(args.out).expanduser()) + ".checkpoints")
    devices = tuple(_device_name(d) for d in args.devices or ())
    return Distribution(strategy, devices=devices, cluster=cluster, scale_lr=args.scale_lr,
                        checkpoint_dir=checkpoints, timeout_s=args.worker_timeout)


_DEVICE = re.compile(r"^(?:/?(?:device:)?)(?:cpu|gpu):\d+$", re.I)


def _device_name(text: str) -> str:
    """``gpu:1`` / ``/device:GPU:1`` as ``/device:GPU:1``."""
    kind, _, number = text.strip().lower().removeprefix("/").removeprefix("device:").partition(":")
    return f"/device:{kind.upper()}:{int(number)}"


def _train_local_workers(args: argparse.Namespace) -> int:
    """``--local-workers N``: check what can be checked here, then supervise N worker processes
    (:mod:`engine.local_workers`); the chief's output is this command's."""
    from .local_workers import run_local_workers

    distribution = _distribution(args)
    _check_writable(args.out, "--out", ".keras")
    if args.log is not None:
        _check_writable(args.log, "--log")
    hint = (f"rerun the same command to resume from the last completed epoch (checkpoints in "
            f"{distribution.checkpoint_dir})")
    return run_local_workers(args.argv, args.local_workers, resume_hint=hint, keyboard=keyboard_attached,
                             json_errors=args.progress == "json")


def _create_strategy(distribution: Any) -> Any:
    """The ``tf.distribute`` strategy of ``distribution``, made before any other TensorFlow
    operation (``MultiWorkerMirroredStrategy`` requires it; logical CPU devices can only be
    configured then)."""
    from .distributed_loop import make_strategy

    try:
        return make_strategy(distribution)  # CPU:0,CPU:1 split the CPU (distributed_loop.split_cpu)
    except ConvasError as exc:
        raise _fail(str(exc)) from None


class _WorkerReporter(StopRequests):
    """The reporter of a worker other than the chief: it shows nothing (the chief reports for
    the cluster) but, like the chief's, it can be asked to stop."""

    def on_batch(self, epoch: int, batch: int, batches: int | None, logs: dict[str, float]) -> None:
        pass

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_message(self, kind: Any, text: str) -> None:
        pass

    def start(self, placement: Any = None) -> None:
        pass

    def clear_line(self) -> None:
        pass


def _with_placement(history: dict[str, list[float]], placement: Any) -> dict[str, list[float]]:
    """``history`` with what every epoch trained on: the replicas and each one's batch (1 and
    the batch size on one device), so that one-device and cluster logs have the same columns."""
    epochs = max((len(values) for values in history.values()), default=0)
    return {**history, "replicas": [float(placement.replicas)] * epochs,
            "per_replica_batch": [float(placement.per_replica_batch)] * epochs}


def _weights_digest(model: Any) -> str:
    """A SHA-256 of every weight's bytes, in order: equal on workers that hold equal weights."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight.numpy())).tobytes())
    return digest.hexdigest()


def _train(args: argparse.Namespace) -> int:
    from .data_source import dataset_problems, load_training_data, model_io
    from .datasets import DatasetError
    from .distribute import ClusterError, Placement, check_own_port
    from .files import load_design
    from .pixel_range import metadata as range_metadata

    # TensorFlow's C++ start-up chatter; its real errors still arrive as Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    distribution = _distribution(args)
    cluster = distribution.cluster if distribution is not None else None
    chief = cluster is None or cluster.is_chief
    args.is_chief = chief  # cmd_train: only the chief writes JSON lines, errors included
    as_json = args.progress == "json" and chief
    # Only the chief speaks; another worker shows errors alone. With --progress json, stdout
    # carries only the JSON lines, so the closing lines go to stderr.
    say = _say if chief else _silent
    results = sys.stderr if as_json else sys.stdout
    if cluster is not None:
        from .local_workers import watch_launcher

        watch_launcher()
        try:
            check_own_port(cluster)
        except ClusterError as exc:
            raise _fail(str(exc)) from None
    out = log = None
    if chief:
        out = _check_writable(args.out, "--out", ".keras")
        log = _check_writable(args.log, "--log") if args.log is not None else None
    try:
        design = load_design(args.design)
    except ConvasError as exc:
        raise _fail(str(exc)) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _fail(f"cannot read {args.design}: {exc}") from None
    settings = _training_settings(args)
    config = settings.config
    if args.freeze:
        frozen = _freeze(design, args.freeze)
        say(f"froze {frozen} layer(s) ({', '.join(args.freeze)})")
    analysis = analyse(design, batch_size=config.batch_size, input_range=settings.pixel_range)
    if not analysis.valid:
        raise TrainError(EXIT_INVALID, *(printable(f"{p.node or design.name}: {p.message}")
                                         for p in analysis.errors))
    for problem in analysis.warnings:
        say(printable(f"convas: warning: {problem}"))
    if config.two_phases:
        from .training import phase_two_layers

        weighted = {name for name, report in analysis.nodes.items() if report.params}
        try:
            unfreeze = phase_two_layers(design, config, weighted)
        except ConvasError as exc:
            raise _fail(str(exc)) from None

    from .quiet_tf import importing_tensorflow

    strategy = None
    if cluster is not None:
        from .distribute import rendezvous

        say(f"joining the cluster as {cluster.name(cluster.index)} of {cluster.size} (from "
            f"{cluster.source.value}); waiting up to {args.connect_timeout:g} s for the others...")
        try:
            rendezvous(cluster, args.connect_timeout)
        except ClusterError as exc:
            raise _fail(str(exc)) from None
    if distribution is not None:
        # Before the dataset is loaded: decoding images runs TensorFlow operations, and the
        # strategy must come first (see _create_strategy).
        say("loading TensorFlow...")
        with importing_tensorflow():
            import keras
        strategy = _create_strategy(distribution)
    try:
        io = model_io(design, analysis)
        dataset, task = load_training_data(settings, io)
    except DatasetError as exc:
        raise _fail(str(exc)) from None
    if args.cache is not None:
        dataset = _with_cache(dataset, args.cache)
    _check_task_options(args, config, task)
    problems = dataset_problems(dataset, io, config.loss, task=task)
    if problems:
        raise TrainError(EXIT_UNREADABLE, f"convas: cannot train {printable(design.name)} on {dataset.name} "
                         f"({task.value}):", *(f"  - {p}" for p in problems))
    for warning in dataset.warnings:
        say(f"convas: warning: {warning}")
    weights = _starting_weights(args, design, say)
    validation = dataset.validation
    inferred = "" if config.task is not None else " (inferred; --task overrides)"
    phases = ""
    if config.two_phases:
        phases = (f" ({config.head_epochs} for the head, then {config.epochs - config.head_epochs} "
                  f"fine-tuning {len(unfreeze)} unfrozen layer(s) at {config.phase_two_learning_rate:g})")
    placement = Placement(Strategy.NONE, 1, 1, config.batch_size)
    if distribution is not None:
        from .distributed_loop import placement as placement_of

        placement = placement_of(strategy, distribution, config.batch_size)
    say(f"training {printable(design.name)} for {task.value}{inferred} on {dataset.name}: "
        f"{len(dataset.train)} training and {len(validation) if validation else 0} validation samples, "
        f"{config.epochs} epoch(s){phases}, batch size {config.batch_size}, {config.optimizer} at "
        f"learning rate {config.learning_rate:g}; pixels in {dataset.pixel_range.label}")

    from .keras_build import KerasBuildError
    from .progress import ConsoleReporter, JsonLinesReporter
    from .training import output_channels, task_training_data, train, write_csv_log

    if "keras" not in sys.modules:
        say("loading TensorFlow...")
    with importing_tensorflow():  # TensorFlow's start-up lines are not the user's business
        import keras  # here, so that its import time is not counted as training time

    from .distribute import WorkerLost
    from .weights import WeightsError, starting_model

    reporter: Any
    if not chief:
        reporter = _WorkerReporter()
    elif as_json:
        reporter = JsonLinesReporter(config.epochs, len(dataset.train), config.batch_size, task=task)
    else:
        reporter = ConsoleReporter(config.epochs, len(dataset.train), config.batch_size, task=task)
    extra: dict[str, Any] = {}
    if distribution is not None:
        extra = {"distribution": distribution, "strategy": strategy}
    with _CtrlC(reporter):
        try:
            model, started_from = starting_model(design, weights, config.seed)
            say(started_from[:1].lower() + started_from[1:])
            started = time.perf_counter()
            if as_json:
                reporter.start(placement)
            else:
                reporter.start()
            result = train(design, dataset.train, validation, config, reporter, model=model, task=task,
                           pixel_range=settings.pixel_range, **extra)
        except WeightsError as exc:  # the weights file is unreadable: not the design's fault
            raise _fail(f"{exc}; use --fresh to start from new weights") from None
        except KerasBuildError as exc:
            raise _fail(f"Keras cannot build the design: {exc}", EXIT_INVALID) from None
        except WorkerLost as exc:
            reporter.clear_line()
            raise _fail(_lost_message(str(exc), distribution), EXIT_WORKER_LOST) from None
        except ConvasError as exc:
            raise _fail(str(exc), EXIT_INVALID) from None
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - TensorFlow's errors are many; say it in one line
            raise _fail(f"training failed: {describe_error(exc)}", EXIT_INVALID) from None
        reporter.clear_line()
        seconds = time.perf_counter() - started
        stopped_by_user = reporter.should_stop()
        history = result.history
        placement = getattr(result, "placement", None) or placement
        if args.weights_digest:
            _write_digest(args.weights_digest, cluster.index if cluster is not None else 0, result.model)
        if result.diverged:  # the reporter has printed where, and which learning rate to try
            raise _fail("training diverged, so the model was not saved", EXIT_INVALID)
        if not chief:
            return EXIT_OK  # the chief saves the model and the log
        assert out is not None
        metadata = {"app_version": __version__, "task": task.value, **range_metadata(settings.pixel_range)}
        if distribution is not None:
            metadata.update(placement.metadata())
        try:
            save_model_atomically(result.model, out, metadata)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - OSError, h5py and Keras errors alike
            raise _save_failure(exc, args.out) from None
        if log is not None:
            try:
                write_csv_log(_with_placement(history, placement), log)
            except ConvasError as exc:
                reason = str(exc).removeprefix(f"could not save {log.name}: ")
                raise _fail(f"the model was saved to {out}, but the log could not be written "
                            f"to {args.log}: {reason}") from None

    why = f" ({result.stop_reason})" if result.stop_reason else ""
    print(f"trained {result.epochs_run} full epoch(s) in {seconds:.1f} s{why}", file=results)
    if history:
        index = result.restored_epoch if result.restored_epoch is not None else result.epochs_run - 1
        final = {key: values[index] for key, values in history.items()}
        which = ("best" if result.restored_epoch is not None else "final")
        parts = [_metrics_text(final, task), _metrics_text(final, task, "val_")]
        print(f"{which} epoch {index + 1}: " + "  ".join(p for p in parts if p), file=results)
    saved = f"saved {out}" + (f" and {log}" if log is not None else "")
    status = EXIT_INTERRUPTED if stopped_by_user else EXIT_OK
    done: dict[str, Any] = {"out": str(out), "log": str(log) if log is not None else None,
                            "epochs_run": result.epochs_run, "stop_reason": result.stop_reason,
                            "restored_epoch": result.restored_epoch, "history": history,
                            "seconds": seconds, "test": None}
    if dataset.test is not None and len(dataset.test):
        try:
            tested = result.model
            if distribution is not None:
                # The trained model's variables belong to the strategy: evaluating it would run
                # collectives the other workers, done, no longer answer. Test the saved model.
                tested = keras.saving.load_model(out)
            test = task_training_data(dataset.test, task, config, output_channels(tested),
                                      validation=True, pixel_range=settings.pixel_range)
            scores = tested.evaluate(test.as_tf_dataset(config.batch_size), verbose=0, return_dict=True)
        except KeyboardInterrupt:
            print(saved, file=results)
            print("convas: interrupted while testing", file=sys.stderr)
            if as_json:
                reporter.event("done", status=EXIT_INTERRUPTED, **done)
            return EXIT_INTERRUPTED
        except Exception as exc:  # noqa: BLE001 - the model is saved; say why there is no test score
            print(f"convas: warning: could not evaluate the test split: {first_line(exc)}",
                  file=sys.stderr)
        else:
            logs = {k: float(v) for k, v in scores.items()}
            done["test"] = {"samples": len(dataset.test), "logs": logs}
            print(f"test ({len(dataset.test)} samples): " + _metrics_text(logs, task), file=results)
    print(saved, file=results)
    if as_json:
        reporter.event("done", status=status, **done)
    return status


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _silent(text: str) -> None:
    """What a worker other than the chief says: nothing (the chief says it for the cluster)."""


def _with_cache(dataset: Any, folder: str) -> Any:
    """``dataset`` whose splits cache decoded samples in ``folder`` (``--cache``), created here."""
    from dataclasses import replace

    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(f"--cache {folder}: cannot create the folder: {exc.strerror or exc}") from None
    splits = {name: replace(split, cache=str(path)) for name in ("train", "validation", "test")
              if (split := getattr(dataset, name)) is not None}
    return replace(dataset, **splits)


def _lost_message(text: str, distribution: Any) -> str:
    """WorkerLost's message, ending with how to resume (unless it says so already)."""
    if "rerun" in text or distribution is None:
        return text
    return (f"{text}; rerun the same command to resume from the last completed epoch (checkpoints in "
            f"{distribution.checkpoint_dir})")


def _write_digest(path_text: str, index: int, model: Any) -> None:
    """``--weights-digest FILE`` (for tests): this worker's weights digest in ``FILE.INDEX``."""
    from .atomic import write_bytes_atomically

    write_bytes_atomically(f"{path_text}.{index}", _weights_digest(model).encode())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status. This is the last line: what no command
    expected (a bug) ends as one "internal error: …; please report it" line and status 1, the
    traceback in the log file the line names, or on stderr with ``--debug``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # until the arguments are parsed
    skip_sklearn_for_keras_wrappers()  # 4 s less of every command that imports Keras
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = argv  # --local-workers starts its workers with the same arguments
        debug = bool(getattr(args, "debug", False))
        return _run(parser, args)
    except KeyboardInterrupt:  # outside train's own handling (e.g. while a summary is read)
        print("\nconvas: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout's reader left (`convas summary … | head`): nothing more to say
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # noqa: BLE001 - the guard of last resort, for bugs
        from .internal_error import cli_log_path, report

        print(f"convas: {report(exc, debug=debug, log=cli_log_path())}", file=sys.stderr)
        return EXIT_INVALID


def _silence_stdout() -> None:
    """Point stdout at the null device, so that flushing it at exit does not fail again."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError):  # no real file descriptor (a test's captured stream)
        pass


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "summary":
        return cmd_summary(args)
    if args.command == "train":
        return cmd_train(args)
    if args.command == "export":
        from .export.command import cmd_export
        return cmd_export(args)
    if args.command == "sweep":
        from .sweep_cli import cmd_sweep
        return cmd_sweep(args)
    parser.print_help()
    return EXIT_OK


if __name__ == "__main__":  # `python -m engine.cli`: how --local-workers starts its workers
    sys.exit(main())
