"""``convas sweep``: search a project's ranges with Optuna from the command line.

``convas sweep DESIGN.convas --trials N`` runs :func:`engine.sweep.run_sweep` on the project's
design, training settings and saved sweep settings (the flags override them), prints one line
per trial as it ends (the values tried, then the metric, the cost and the time; designs the
engine rejected before training say why and take no visible time), and ends with what the
pre-check saved and a table of the study's Pareto front (a single objective: its best trial).

Exit status, as for ``convas train``: 0 done; 2 unreadable input, bad flags or a storage that
cannot be used (one sentence on stderr); 1 when no trial of the study could be trained; 130 on
Ctrl+C: the running trial is recorded as stopped, the study is kept, and the same command
resumes it (printed). Several processes given the same ``--storage`` share one study.

Nothing here imports TensorFlow or Optuna at module level.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .errors import ConvasError
from .text import printable

if TYPE_CHECKING:
    from .design import Design
    from .distribute import Distribution
    from .sweep import StudyInfo, SweepOutcome
    from .sweep_results import TrialRecord
    from .sweep_settings import SweepSettings
    from .training import TrainingSettings

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE, EXIT_INTERRUPTED = 0, 1, 2, 130
BYTES_PER_MB = 1024 * 1024  # as the summary's sizes (engine.summary.human_bytes)


class SweepCommandError(Exception):
    """Ends ``convas sweep`` with ``status`` after printing ``message`` on stderr."""

    def __init__(self, message: str, status: int = EXIT_UNREADABLE) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------- arguments

def _count(text: str) -> int:
    """A positive whole number, written as people write large ones: ``4000000``, ``4,000,000``,
    ``4_000_000``, ``4e6``, ``4M`` (k, M, G: thousands, millions, billions)."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(cleaned[-1:].lower(), 1)
    if scale != 1:
        cleaned = cleaned[:-1]
    try:
        value = float(cleaned) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not value == value or value in (float("inf"), float("-inf")) or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return int(value)


def _objectives(text: str) -> Any:
    from .sweep_settings import Objectives

    try:
        return Objectives.parse(text)
    except ConvasError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _storage(text: str) -> str:
    if "://" not in text:
        raise argparse.ArgumentTypeError(f"write a database URL such as sqlite:///sweep.db or "
                                         f"postgresql://user@host/db, not {text!r}")
    return text


def _study(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("give the study a name")
    return text.strip()


def add_parser(sub: Any) -> None:
    """Register ``convas sweep`` with the subcommands ``sub``."""
    from .cli import _names, non_negative_int, positive_float, positive_int
    from .sweep_settings import PrunerKind, SamplerKind

    s = sub.add_parser(
        "sweep", help="search a project's ranges for the most accurate designs for their cost (Optuna)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the designs a project's search ranges make and report the best for their\n"
                    "cost. The sweep settings saved in the project are the defaults; the options\n"
                    "below override them. Designs that are invalid or over the budget are rejected\n"
                    "before any training. The trials are kept in an Optuna storage (by default\n"
                    "NAME.sweep.db beside the project), so a sweep can be stopped and resumed, and\n"
                    "several processes given the same --storage share one study.",
        epilog="examples:\n"
               "  convas sweep seed_cnn_sweep.convas --trials 20 --epochs 2\n"
               "  convas sweep seed_cnn_sweep.convas --trials 30 --objectives val_accuracy,params \\\n"
               "      --max-macs 2M --export-best best.convas\n"
               "  on many machines, each running the same command against one database:\n"
               "  convas sweep seed_cnn_sweep.convas --trials 100 --storage postgresql://me@db/sweeps\n\n"
               "Ctrl+C stops the running trial (it is recorded as stopped, and trained first when\n"
               "the sweep resumes) and exits with status 130; the same command resumes the study.")
    s.add_argument("design", metavar="DESIGN", help="a .convas project with search ranges")
    s.add_argument("--trials", type=positive_int, metavar="N",
                   help="stop when the study holds N trained trials (designs rejected before "
                        "training do not count)")
    s.add_argument("--timeout", type=positive_float, metavar="S",
                   help="start no trial after S seconds")
    s.add_argument("--epochs", type=positive_int, metavar="E", help="epochs per trial")
    s.add_argument("--objectives", type=_objectives, metavar="METRIC[,COST]",
                   help="a validation metric to maximise (or minimise, for a loss) and at most one "
                        "cost to minimise: params, macs or latency, e.g. val_accuracy,macs; "
                        "a metric alone searches for the single best trial")
    s.add_argument("--storage", type=_storage, metavar="URL",
                   help="an Optuna storage URL: sqlite:///path/file.db, postgresql://..., "
                        "mysql://... (default: DESIGN's name with .sweep.db, beside it)")
    s.add_argument("--study", type=_study, metavar="NAME",
                   help="the study's name in the storage (default: the design's)")
    s.add_argument("--sampler", type=str.lower, choices=[k.value for k in SamplerKind],
                   help="how the next values are chosen (default tpe)")
    s.add_argument("--pruner", type=str.lower, choices=[k.value for k in PrunerKind],
                   help="how trials are stopped early on their per-epoch metric (default median)")
    budget = s.add_argument_group("budget", "Designs over a limit are rejected before training "
                                            "(the analysis knows their costs exactly).")
    budget.add_argument("--max-params", type=_count, metavar="N", help="at most N parameters (e.g. 100k)")
    budget.add_argument("--max-macs", type=_count, metavar="N",
                        help="at most N multiply-accumulates per image (e.g. 4M)")
    budget.add_argument("--max-activation-mb", type=positive_float, metavar="MB",
                        help="at most MB megabytes of activations at the training batch size")
    s.add_argument("--seed", type=non_negative_int, metavar="N",
                   help="the sampler's seed, to repeat a search (training keeps the project's seed)")
    s.add_argument("--data", metavar="SOURCE",
                   help="digits, shapes, or a dataset path as for convas train (default: the project's)")
    s.add_argument("--export-best", metavar="PATH.convas",
                   help="write the chosen trial's design, with its training and sweep settings, as a "
                        "project: the front's most accurate trial (ties: the cheapest), or --pick")
    s.add_argument("--pick", type=non_negative_int, metavar="TRIAL",
                   help="the trial number --export-best writes")
    s.add_argument("--distribute", choices=("none", "mirrored"), default="none",
                   help="train each trial on one device (default) or mirrored over every local GPU "
                        "(or the --devices named), as convas train does; to spread a sweep over "
                        "machines, run it on each with the same --storage")
    s.add_argument("--devices", type=_names, metavar="DEV,DEV",
                   help="with --distribute mirrored: the devices, e.g. GPU:0,GPU:1 (CPU:0,CPU:1 splits "
                        "the CPU, to try it)")


# --------------------------------------------------------------------------------- the project

@dataclass
class _Plan:
    """What the command line asks for, checked before anything runs."""

    path: Path
    design: Design
    training: TrainingSettings
    settings: SweepSettings
    storage: str
    export: Path | None
    distribution: Distribution | None = None


def _plan(args: argparse.Namespace) -> _Plan:
    from .files import load_design
    from .project_file import load_project
    from .search_space import search_space, space_problems
    from .sweep_settings import Budget, SweepSettings, default_storage
    from .training import TrainingSettings

    path = Path(args.design).expanduser()
    distribution = _distribution(args)
    if args.pick is not None and args.export_best is None:
        raise SweepCommandError("--pick chooses the trial --export-best writes; give --export-best "
                                "PATH.convas too")
    export = None
    if args.export_best is not None:
        from .cli import TrainError, _check_writable

        try:
            export = _check_writable(args.export_best, "--export-best", ".convas")
        except TrainError as exc:
            raise SweepCommandError(str(exc).removeprefix("convas: ")) from None
    try:
        load_design(path)  # a missing, unreadable or unknown file says so first, as for train
        project = load_project(path) if path.suffix.lower() == ".convas" else None
    except ConvasError as exc:
        raise SweepCommandError(str(exc)) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SweepCommandError(f"cannot read {args.design}: {exc}") from None
    if project is None:
        raise SweepCommandError(
            f"{path.name} is a Keras model, which holds no search ranges: open it in Convas, give some "
            f"arguments a range (the … beside a field in the Inspector) and save it as a .convas project "
            f"to sweep")
    design = project.design
    try:
        training = TrainingSettings.from_dict(project.training)
    except ConvasError as exc:
        raise SweepCommandError(f"{path.name}: training settings: {exc}") from None
    try:
        settings = SweepSettings.from_dict(project.sweep)
    except ConvasError as exc:
        raise SweepCommandError(f"{path.name}: sweep settings: {exc}") from None
    if args.data is not None:
        training = replace(training, dataset=args.data)
    changes: dict[str, Any] = {}
    for flag, name in (("trials", "trials"), ("timeout", "timeout_s"), ("epochs", "epochs"),
                       ("objectives", "objectives"), ("storage", "storage"), ("study", "study"),
                       ("seed", "seed")):
        if getattr(args, flag) is not None:
            changes[name] = getattr(args, flag)
    if args.sampler is not None:
        from .sweep_settings import SamplerKind
        changes["sampler"] = SamplerKind(args.sampler)
    if args.pruner is not None:
        from .sweep_settings import PrunerKind
        changes["pruner"] = PrunerKind(args.pruner)
    b = settings.budget
    mb = args.max_activation_mb
    changes["budget"] = Budget(args.max_params if args.max_params is not None else b.max_params,
                               args.max_macs if args.max_macs is not None else b.max_macs,
                               max(1, round(mb * BYTES_PER_MB)) if mb is not None else b.max_activation_bytes)
    try:
        settings = settings.with_changes(**changes)
    except ConvasError as exc:
        raise SweepCommandError(str(exc)) from None
    space = search_space(design, training)
    if not space:
        raise SweepCommandError(
            f"{path.name} has no search ranges: give some layer arguments or training settings a "
            f"range (the … beside a field in the Inspector) and save the project")
    problems = space_problems(design, training)
    if problems:
        raise SweepCommandError(f"{path.name}: its search ranges cannot be searched:\n"
                                + "\n".join(f"  - {printable(p)}" for p in problems))
    storage = settings.storage or default_storage(path)
    if settings.storage is None:
        _check_default_storage(path, storage)
    _check_storage(storage)  # a storage that cannot be used says so before TensorFlow loads
    return _Plan(path, design, training, settings, storage, export, distribution)


def _placement_text(distribution: Distribution | None) -> str:
    if distribution is None:
        return ""
    devices = ", ".join(d.removeprefix("/device:") for d in distribution.devices) or "every local GPU"
    return f"; each trial mirrored over {devices}"


def _distribution(args: argparse.Namespace) -> Distribution | None:
    """Where each trial trains: None for one device; mirrored over the local GPUs or the named
    devices (checked as ``convas train`` checks them)."""
    from .cli import _DEVICE, _device_name
    from .distribute import Distribution, Strategy

    if args.distribute != Strategy.MIRRORED.value:
        if args.devices:
            raise SweepCommandError("--devices names the local devices of mirrored training; add "
                                    "--distribute mirrored")
        return None
    bad = [d for d in args.devices or () if not _DEVICE.match(d)]
    if bad:
        raise SweepCommandError(f"--devices: {bad[0]!r} is not a device; name them as GPU:0,GPU:1 or "
                                "CPU:0,CPU:1")
    return Distribution(Strategy.MIRRORED, devices=tuple(_device_name(d) for d in args.devices or ()))


def _check_storage(url: str) -> None:
    """Open the storage once, so that one that cannot be used (no driver, no such folder, a
    database that refuses) ends the command before anything slow starts."""
    from .sweep_storage import open_storage

    try:
        open_storage(url, heartbeat=False)
    except ConvasError as exc:
        raise SweepCommandError(str(exc)) from None


def _check_default_storage(project: Path, url: str) -> None:
    """The default storage (a SQLite file beside the project) needs a folder it can write to;
    when it cannot, say so and how to put the study elsewhere."""
    from .atomic import check_can_create
    from .sweep_storage import sqlite_path

    db = Path(sqlite_path(url) or url.removeprefix("sqlite:///"))
    try:
        check_can_create(db)
        if db.exists():
            with db.open("r+b"):
                pass
    except OSError as exc:
        raise SweepCommandError(
            f"cannot keep the sweep beside {project.name}: {db} cannot be written ({exc.strerror or exc}); "
            f"give --storage sqlite:///a/writable/folder/{db.name} (or a database URL)") from None


# --------------------------------------------------------------------------------- words

def value_text(value: Any) -> str:
    """A tried value as people read it: ``24``, ``0.002134``, ``relu``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "×".join(value_text(v) for v in value)
    return str(value)


def _labels(space: dict[str, Any]) -> dict[str, str]:
    from .search_space import SearchTarget

    labels = {}
    for key in space:
        try:
            labels[key] = SearchTarget.parse(key).label
        except ConvasError:
            labels[key] = key
    return labels


def _params_text(params: dict[str, Any], labels: dict[str, str]) -> str:
    ordered = [k for k in labels if k in params] + [k for k in params if k not in labels]
    return ", ".join(f"{labels.get(k, k)} {value_text(params[k])}" for k in ordered)


def cost_text(cost: Any, value: float | None) -> str:
    """A cost with its unit: ``1.23 M MACs``, ``34,826 params``, ``2.1 ms``."""
    from .summary import human_count
    from .sweep_settings import CostKind

    if value is None:
        return "-"
    if cost is CostKind.LATENCY:
        return f"{value:.3g} ms"
    unit = "MACs" if cost is CostKind.MACS else "params"
    return f"{human_count(int(value))} {unit}"


def seconds_text(seconds: float | None) -> str:
    from .progress import format_duration

    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds < 60 else format_duration(seconds)


def _reason(record: TrialRecord) -> str:
    text = record.reason or "no reason recorded"
    return printable(text.removeprefix("over budget: "))


# --------------------------------------------------------------------------------- progress

@dataclass
class ConsoleSweepReporter:
    """Prints a sweep's trials as they end, one line each (a :class:`engine.sweep.SweepReporter`).
    On a terminal the running trial's line shows its epochs, redrawn in place."""

    target: int
    epochs: int | None
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    interactive: bool | None = None
    info: StudyInfo | None = None
    labels: dict[str, str] = field(default_factory=dict)
    trained: int = 0                 # trained trials of the study, as far as this process knows
    stop_requested: bool = False
    _running: dict[int, dict[str, Any]] = field(default_factory=dict)
    _messages_after_stop: int = 0

    def __post_init__(self) -> None:
        if self.interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            self.interactive = bool(isatty and isatty())

    # SweepReporter
    def sweep_started(self, info: StudyInfo, records: list[TrialRecord]) -> None:
        self.info = info
        self.labels = _labels(info.space)
        self.trained = sum(1 for r in records if r.outcome.trained and r.outcome.finished)
        if records:
            rejected = sum(1 for r in records if r.outcome.rejected)
            print(f"resuming study {printable(info.study)}: it holds {self.trained} trained trial(s)"
                  f"{f' and {rejected} rejected' if rejected else ''} of {len(records)}",
                  file=sys.stderr, flush=True)

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        self._running[number] = dict(params)
        if self.interactive:
            self._draw(f"trial {number}  {_params_text(params, self.labels)}")

    def trial_epoch(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        if not self.interactive:
            return
        metric = self.info.metric if self.info is not None else "val_loss"
        shown = f"  {metric} {logs[metric]:.4f}" if metric in logs else ""
        of = f"/{self.epochs}" if self.epochs else ""
        self._draw(f"trial {number}  epoch {epoch + 1}{of}{shown}  "
                   f"{_params_text(self._running.get(number, {}), self.labels)}")

    def trial_finished(self, record: TrialRecord) -> None:
        self._running.pop(record.number, None)
        if record.outcome.trained:
            self.trained += 1
        line = self.trial_line(record)
        if self.interactive:
            self.stream.write("\r\033[K")
        print(line, file=self.stream, flush=True)

    def should_stop(self) -> bool:
        return self.stop_requested

    # what engine.cli._CtrlC calls
    def request_stop(self) -> None:
        if not self.stop_requested:
            self.clear_line()
            print("stopping: the running trial is recorded as stopped and trained first when the sweep "
                  "resumes", file=sys.stderr, flush=True)
        self.stop_requested = True

    def on_message(self, kind: Any, text: str) -> None:
        # _CtrlC follows its request_stop() with training's own words for it (said above in a
        # sweep's); what it says after that (no keyboard, no abort) is worth showing.
        self._messages_after_stop += 1
        if self._messages_after_stop > 1:
            print(f"convas: {text}", file=sys.stderr, flush=True)

    def clear_line(self) -> None:
        if self.interactive:
            self.stream.write("\r\033[K")
            self.stream.flush()

    # words
    def trial_line(self, record: TrialRecord) -> str:
        from .sweep_results import TrialOutcome

        tried = _params_text(record.params, self.labels)
        head = f"trial {record.number}"
        if record.outcome.trained:
            head += f" [{self.trained}/{self.target}]"
        outcome = record.outcome
        if outcome is TrialOutcome.INVALID:
            tail = f"rejected (invalid): {_reason(record)}"
        elif outcome is TrialOutcome.OVER_BUDGET:
            tail = f"rejected (over budget): {_reason(record)}"
        elif outcome is TrialOutcome.COMPLETE:
            tail = ", ".join(p for p in (self._metric_text(record.metric), self._cost_text(record),
                                         seconds_text(record.seconds)) if p)
        elif outcome is TrialOutcome.PRUNED:
            tail = (f"pruned after {record.epochs_run} epoch(s): "
                    + ", ".join(p for p in (self._metric_text(record.metric), seconds_text(record.seconds)) if p))
        elif outcome is TrialOutcome.STOPPED:
            tail = f"stopped after {record.epochs_run} epoch(s); it is trained first when the sweep resumes"
        else:
            tail = f"{outcome.value}: {_reason(record)}, {seconds_text(record.seconds)}"
        return printable(f"{head}  {tried}  →  {tail}") if _unicode(self.stream) else \
            printable(f"{head}  {tried}  ->  {tail}")

    def _metric_text(self, value: float | None) -> str:
        if value is None or self.info is None:
            return ""
        return f"{self.info.metric} {value:.4f}"

    def _cost_text(self, record: TrialRecord) -> str:
        if self.info is None or self.info.cost is None:
            return ""
        return cost_text(self.info.cost, record.cost)

    def _draw(self, text: str) -> None:
        width = shutil.get_terminal_size((100, 24)).columns - 1
        self.stream.write("\r\033[K" + printable(text)[:width])
        self.stream.flush()


def _unicode(stream: TextIO) -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"  # none: a str stream (StringIO)
    try:
        "→×…".encode(encoding)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


# --------------------------------------------------------------------------------- the end

def best_of_front(front: list[TrialRecord], higher_is_better: bool) -> TrialRecord | None:
    """The front's trial with the best metric; ties: the lowest cost, then the earliest."""
    if not front:
        return None
    sign = 1.0 if higher_is_better else -1.0
    return min(front, key=lambda r: (-sign * float(r.metric or 0.0),
                                     r.cost if r.cost is not None else 0.0, r.number))


def differences(info: StudyInfo, record: TrialRecord, arrow: str = "→") -> str:
    """The values of ``record`` that differ from the study's design, as ``conv2d.filters 32→24``."""
    from .search_space import base_values

    base = base_values(info.base_design, info.base_training)
    labels = _labels(info.space)
    parts = []
    for key in labels:
        if key not in record.params:
            continue
        value, was = record.params[key], base.get(key)
        if _same(value, was):
            continue
        parts.append(f"{labels[key]} {value_text(was)}{arrow}{value_text(value)}")
    return ", ".join(parts) if parts else "(the design as it is)"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(a)), abs(float(b)))
        except (TypeError, ValueError):
            return False
    return type(a) is type(b) and a == b


def front_table(info: StudyInfo, front: list[TrialRecord], unicode: bool = True) -> str:
    """The Pareto front (or the best trial) as an aligned text table."""
    from .summary import human_count
    from .sweep_settings import CostKind

    arrow = "→" if unicode else "->"
    header = ["trial", info.metric]
    if info.cost is not None:
        header.append(info.cost.label if info.cost is not CostKind.PARAMS else "params")
    if info.cost is not CostKind.PARAMS:
        header.append("params")
    header.append("differs from the design")
    rows = []
    for r in front:
        row = [str(r.number), f"{r.metric:.4f}" if r.metric is not None else "-"]
        if info.cost is not None:
            row.append(cost_text(info.cost, r.cost).removesuffix(" MACs").removesuffix(" params")
                       .removesuffix(" ms"))
        if info.cost is not CostKind.PARAMS:
            row.append(human_count(r.params_count) if r.params_count is not None else "-")
        row.append(differences(info, r, arrow))
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header[:-1])]

    def line(cells: list[str]) -> str:
        numbers = "  ".join(c.rjust(w) for c, w in zip(cells[:-1], widths))
        return printable(f"  {numbers}  {cells[-1]}").rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def _report(outcome: SweepOutcome, unicode: bool) -> TrialRecord | None:
    """The closing lines: what this run did, what the pre-check saved, the front. Returns the
    front's best trial."""
    from .sweep_results import TrialOutcome, pareto_front

    info = outcome.info
    print(_run_line(outcome))
    study_trained = sum(1 for r in outcome.records if r.outcome.trained and r.outcome.finished)
    complete = sum(1 for r in outcome.records if r.outcome is TrialOutcome.COMPLETE)
    print(f"study {printable(info.study)} holds {study_trained} trained trial(s) ({complete} complete) "
          f"in {_shown_storage(info.storage)}")
    front = pareto_front(outcome.records, info.higher_is_better)
    if not front:
        return None
    which = "Pareto front" if info.cost is not None else "best trial"
    goal = "higher" if info.higher_is_better else "lower"
    print(f"{which} ({info.metric}: {goal} is better"
          + (f"; {info.cost.label}: lower is better)" if info.cost is not None else ")") + ":")
    print(front_table(info, front, unicode))
    return best_of_front(front, info.higher_is_better)


def _run_line(outcome: SweepOutcome) -> str:
    """What this run did: trained and rejected trials, the time rejections took (the engine's
    checks and Optuna's bookkeeping), and the training the over-budget ones did not cost (an
    invalid design would have failed when Keras built it, a fraction of a second later)."""
    from .sweep_results import TrialOutcome

    ran = set(outcome.ran)
    rejected = [r for r in outcome.records if r.number in ran and r.outcome.rejected]
    line = f"{outcome.trained} trained, {outcome.rejected} rejected before training"
    if not outcome.rejected:
        return line + (f"; training took {seconds_text(outcome.trained_seconds)}" if outcome.trained else "")
    invalid = sum(r.outcome is TrialOutcome.INVALID for r in rejected)
    over = sum(r.outcome is TrialOutcome.OVER_BUDGET for r in rejected)
    checks = 1000 * sum(r.seconds or 0.0 for r in rejected)
    line += (f" ({invalid} invalid, {over} over budget: {outcome.rejected_seconds * 1000:.1f} ms total, "
             f"{checks:.1f} ms of it the engine's checks)")
    if outcome.trained:
        per_trial = outcome.trained_seconds / outcome.trained
        if over:
            line += (f"; skipping the over-budget design(s) saved about {seconds_text(per_trial * over)} "
                     f"of training")
        line += f"; training took {seconds_text(outcome.trained_seconds)} ({seconds_text(per_trial)} a trial)"
    return line


def _shown_storage(url: str) -> str:
    from .sweep_storage import without_password

    return without_password(url)


def _export(plan: _Plan, outcome: SweepOutcome, pick: int | None, best: TrialRecord | None) -> str:
    """Write the chosen trial's project to ``plan.export``; what to say about it."""
    from .project_file import save_project
    from .sweep import trial_design

    assert plan.export is not None
    records = {r.number: r for r in outcome.records}
    if pick is not None:
        chosen = records.get(pick)
        if chosen is None:
            numbers = sorted(records)
            held = f"trials {numbers[0]}–{numbers[-1]}" if numbers else "no trials"
            raise SweepCommandError(f"--pick {pick}: study {outcome.info.study} has no trial {pick} "
                                    f"(it holds {held}); nothing was written")
        if not chosen.params:
            raise SweepCommandError(f"--pick {pick}: trial {pick} has no values yet; nothing was written")
    elif best is None:
        raise SweepCommandError("--export-best: no trial was trained to the end, so there is no best "
                                "design to write")
    else:
        chosen = best
    design, training = trial_design(outcome.info, chosen)
    try:
        save_project(plan.export, design, training.to_dict(), sweep=plan.settings.to_dict())
    except ConvasError as exc:
        raise SweepCommandError(f"--export-best: {exc}") from None
    what = []
    if chosen.metric is not None:
        what.append(f"{outcome.info.metric} {chosen.metric:.4f}")
    if outcome.info.cost is not None and chosen.cost is not None:
        what.append(cost_text(outcome.info.cost, chosen.cost))
    about = f" ({', '.join(what)})" if what else f" ({chosen.outcome.value})"
    return f"wrote trial {chosen.number}{about} to {plan.export}"


def _resume_command(args: argparse.Namespace) -> str:
    argv = getattr(args, "argv", None) or ["sweep", args.design]
    return "convas " + shlex.join(a for a in argv if a != "--debug")


# --------------------------------------------------------------------------------- the command

def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``convas sweep``; its exit status (see the module docstring)."""
    try:
        return _sweep(args)
    except SweepCommandError as exc:
        for text in str(exc).splitlines():
            print(f"convas: {text}" if not text.startswith("  ") else text, file=sys.stderr)
        return exc.status


def _sweep(args: argparse.Namespace) -> int:
    from .cli import _CtrlC
    from .search_space import search_space
    from .sweep import SweepError, SweepProject, run_sweep

    plan = _plan(args)
    settings = plan.settings
    space = search_space(plan.design, plan.training)
    epochs = settings.epochs or plan.training.config.epochs
    objectives = settings.objectives.text("the task's metric")
    budget = settings.budget
    activations = budget.max_activation_bytes
    limits = [f"{budget.max_params:,} parameters" if budget.max_params else "",
              f"{budget.max_macs:,} MACs" if budget.max_macs else "",
              f"{activations / BYTES_PER_MB:g} MB of activations" if activations else ""]
    limit = ", ".join(p for p in limits if p)
    say = _stderr
    say(printable(f"sweeping {plan.design.name}: {len(space)} range(s), until the study holds {settings.trials} "
                  f"trained trial(s){f' or after {settings.timeout_s:g} s' if settings.timeout_s else ''}, "
                  f"{epochs} epoch(s) each on {plan.training.dataset}; objectives {objectives}; "
                  f"{settings.sampler.value} sampler, {settings.pruner.value} pruner"
                  f"{f'; budget at most {limit}' if limit else ''}"
                  f"{_placement_text(plan.distribution)}"))
    for target, rng in space:
        say(printable(f"  {target.label}: {rng.describe()}"))
    say(f"storage {_shown_storage(plan.storage)}")
    say("loading TensorFlow...")
    from .quiet_tf import importing_tensorflow

    with importing_tensorflow():  # its start-up lines are not the user's business, nor trial 1's time
        import keras  # noqa: F401

    project = SweepProject(plan.design, plan.training, replace(settings, storage=plan.storage), plan.path,
                           plan.distribution)
    reporter = ConsoleSweepReporter(settings.trials, epochs)
    unicode = _unicode(sys.stdout)
    try:
        with _CtrlC(reporter):
            outcome = run_sweep(project, reporter)
    except SweepError as exc:
        reporter.clear_line()
        raise SweepCommandError(str(exc)) from None
    except ConvasError as exc:
        reporter.clear_line()
        raise SweepCommandError(str(exc)) from None
    except KeyboardInterrupt:
        reporter.clear_line()
        print(f"convas: aborted; the trial that was running is recorded as stopped and trained first "
              f"when the sweep resumes. Resume with:\n  {_resume_command(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    best = _report(outcome, unicode)
    if plan.export is not None and (best is not None or args.pick is not None):
        print(_export(plan, outcome, args.pick, best))
    user_stop = reporter.stop_requested
    if user_stop:
        print(f"convas: stopped; the study is kept in {_shown_storage(plan.storage)}. Resume with:\n"
              f"  {_resume_command(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if outcome.stop_reason:
        say(f"stopped: {outcome.stop_reason}")
    if not outcome.ran and best is not None:
        say(f"the study already held {settings.trials} trained trial(s); give a larger --trials to "
            f"run more")
    if best is None:
        trained_any = any(r.outcome.trained and r.outcome.finished for r in outcome.records)
        counts = _outcome_counts(outcome.records)
        why = "none finished its training" if trained_any else "every design was rejected or failed"
        print(f"convas: no trial could be trained to the end ({why}: {counts})", file=sys.stderr)
        if plan.export is not None:
            print("convas: --export-best: nothing was written", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _outcome_counts(records: list[TrialRecord]) -> str:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.outcome.value.replace("_", " ")] = counts.get(r.outcome.value.replace("_", " "), 0) + 1
    return ", ".join(f"{n} {what}" for what, n in counts.items()) or "no trials"


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
