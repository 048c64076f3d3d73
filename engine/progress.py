"""A text progress reporter for training in a terminal (``convas train``); no Qt, no TensorFlow.

:class:`ConsoleReporter` satisfies :class:`engine.training.Reporter`. On an interactive stream it
redraws one progress line per batch with ``\\r`` — at most :data:`REDRAWS_PER_S` times a second,
so that printing never slows training — and it always writes one summary line per epoch, which
is all a log file or a pipe receives. :meth:`ConsoleReporter.request_stop` (wired to Ctrl+C by
the CLI) makes ``should_stop`` true, and the trainer stops within one batch.
:class:`JsonLinesReporter` reports the same as one JSON object per line, for a parent process
(``convas train --progress json``).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from enum import Enum
from typing import TYPE_CHECKING, Any, TextIO

from .tasks import Task, spec

if TYPE_CHECKING:
    from .training import MessageKind

REDRAWS_PER_S = 10.0
# Epoch-log keys that are not metrics of the model (shown differently or not at all).
_NOT_METRICS = {"lr", "samples_per_s", "learning_rate"}


def format_duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``: a short duration for people."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_value(value: float) -> str:
    """A metric value with four decimals (``nan``/``inf`` spelled as Python does)."""
    return f"{value:.4f}"


def task_keys(task: Task | None) -> tuple[str, ...]:
    """The log names a run of ``task`` leads with: the loss, then the task's own metrics
    (:attr:`engine.tasks.TaskSpec.metrics`; classification's when the task is not known)."""
    return ("loss", *spec(task or Task.CLASSIFICATION).metrics)


def epoch_line(epoch: int, epochs: int, logs: dict[str, float], seconds: float,
               task: Task | None = None) -> str:
    """``epoch 3/8  loss 0.1230  accuracy 0.9650  val_loss …  val_accuracy …  12.3 s``
    (``epoch`` counts from 0, as the reporter receives it): the loss and ``task``'s metrics,
    then their validation values, then any other metric, sorted."""
    lead = task_keys(task)
    first = [*lead, *(f"val_{k}" for k in lead)]
    keys = [k for k in first if k in logs]
    keys += sorted(k for k in logs if k not in first and k not in _NOT_METRICS)
    parts = [f"epoch {epoch + 1}/{epochs}"]
    parts += [f"{key} {format_value(logs[key])}" for key in keys]
    parts.append(f"{seconds:.1f} s")
    return "  ".join(parts)


class StopRequests:
    """The steering half of a command-line reporter: Ctrl+C (the CLI's handler) asks it to
    stop, and the trainer stops after the batch it is running; a terminal never pauses."""

    stop_requested = False

    def request_stop(self) -> None:
        """Ask the trainer to stop after the batch it is running."""
        self.stop_requested = True

    def should_stop(self) -> bool:
        return self.stop_requested

    def should_pause(self) -> bool:
        return False


class ConsoleReporter(StopRequests):
    """Reports training progress as text on ``stream`` (stderr by default).

    ``epochs``, ``samples`` (training samples per epoch) and ``batch_size`` size the progress
    line; ``interactive`` says whether ``stream`` is a terminal (asked of the stream when None);
    ``task`` chooses the metrics shown first (see :func:`task_keys`).
    """

    def __init__(self, epochs: int, samples: int, batch_size: int, stream: TextIO | None = None,
                 interactive: bool | None = None, clock=time.perf_counter,
                 task: Task | None = None) -> None:
        self.task = task
        self.stream = stream if stream is not None else sys.stderr
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self.epochs, self.samples, self.batch_size = epochs, samples, batch_size
        self.clock = clock
        self.stop_requested = False
        self.epoch_started = clock()
        self._last_draw = -math.inf
        self._line_width = 0  # characters of the progress line now on screen (0: none)

    # -- reporting ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the clock of the first epoch (call just before training)."""
        self.epoch_started = self.clock()

    def on_batch(self, epoch: int, batch: int, batches: int | None, logs: dict[str, float]) -> None:
        if not self.interactive:
            return
        now = self.clock()
        last = batches is not None and batch + 1 >= batches
        if now - self._last_draw < 1.0 / REDRAWS_PER_S and not last:
            return
        self._last_draw = now
        self._draw(self._batch_line(epoch, batch, batches, logs, now - self.epoch_started))

    def _batch_line(self, epoch: int, batch: int, batches: int | None, logs: dict[str, float],
                    elapsed: float) -> str:
        done = min((batch + 1) * self.batch_size, self.samples)
        parts = [f"epoch {epoch + 1}/{self.epochs}",
                 f"batch {batch + 1}/{batches if batches is not None else '?'}"]
        parts += [f"{key} {format_value(logs[key])}" for key in task_keys(self.task) if key in logs]
        if elapsed > 0:
            rate = done / elapsed
            parts.append(f"{rate:,.0f} samples/s")
            if batches is not None and rate > 0:
                left = max(self.samples - done, 0) / rate
                # The epochs still to come take about as long as this one will.
                left += (self.epochs - epoch - 1) * self.samples / rate
                parts.append(f"ETA {format_duration(left)}")
        return "  ".join(parts)

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        now = self.clock()
        seconds = now - self.epoch_started
        self.epoch_started = now
        self._last_draw = -math.inf
        self._print(epoch_line(epoch, self.epochs, logs, seconds, self.task))

    def on_message(self, kind: MessageKind, text: str) -> None:
        """Print ``text`` on its own line; a warning (see :attr:`MessageKind.is_warning`) says so,
        and fine-tuning's second phase is set off as a heading between the epochs."""
        from .training import MessageKind

        if kind is MessageKind.PHASE:
            self._print(f"--- phase 2: {text} ---")
            self.epoch_started = self.clock()  # recompiling is not the next epoch's time
            return
        self._print(f"warning: {text}" if kind.is_warning else text)

    # -- output -------------------------------------------------------------------------------

    def _draw(self, line: str) -> None:
        width = shutil.get_terminal_size((100, 24)).columns - 1  # a wrapped line cannot be redrawn
        line = line[:max(width, 20)]
        pad = " " * max(self._line_width - len(line), 0)
        self.stream.write(f"\r{line}{pad}")
        self.stream.flush()
        self._line_width = len(line)

    def clear_line(self) -> None:
        """Remove the progress line, so that the next text starts on a clean line."""
        if self._line_width:
            self.stream.write("\r" + " " * self._line_width + "\r")
            self._line_width = 0

    def _print(self, text: str) -> None:
        self.clear_line()
        self.stream.write(text + "\n")
        self.stream.flush()


# --------------------------------------------------------------------------------------------
# Machine-readable progress: ``convas train --progress json``

JSON_BATCHES_PER_S = 20.0  # batch events at most this often (the last batch of an epoch always)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float made ``None`` (strict JSON has no NaN), numpy
    scalars made Python numbers, tuples made lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, Enum):
        return json_safe(value.value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"):
        return int(value)
    return number if math.isfinite(number) else None


def write_event(stream: TextIO, name: str, **fields: Any) -> None:
    """Write one JSON line ``{"event": name, **fields}`` on ``stream`` (see
    :class:`JsonLinesReporter`) and flush it."""
    line = json.dumps({"event": name, **json_safe(fields)}, ensure_ascii=False, allow_nan=False)
    stream.write(line + "\n")
    stream.flush()


class JsonLinesReporter(StopRequests):
    """Reports training progress as one JSON object per line on ``stream`` (stdout), for a parent
    process such as the Convas window; the format is documented in the README ("Progress as JSON
    lines") and is stable: later versions only add keys and events.

    Events: ``start``, ``batch`` (at most :data:`JSON_BATCHES_PER_S` a second, the last batch of
    an epoch always), ``epoch``, ``message`` (``kind`` a :class:`engine.training.MessageKind`
    value), ``done`` and ``error`` (sent by the CLI through :meth:`event`). ``epoch`` and ``batch``
    count from 0. NaN and infinite values are ``null``. Stopping works as for
    :class:`ConsoleReporter`: :meth:`request_stop` (SIGINT, or CTRL_BREAK on Windows)."""

    def __init__(self, epochs: int, samples: int, batch_size: int, stream: TextIO | None = None,
                 clock=time.perf_counter, task: Task | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.epochs, self.samples, self.batch_size, self.task = epochs, samples, batch_size, task
        self.clock = clock
        self.stop_requested = False
        self.epoch_started = clock()
        self._last_batch = -math.inf

    # -- reporting ----------------------------------------------------------------------------

    def event(self, name: str, **fields: Any) -> None:
        """Write one ``{"event": name, **fields}`` line and flush it."""
        write_event(self.stream, name, **fields)

    def start(self, placement: Any = None) -> None:
        """Send the ``start`` event (``placement``: an :class:`engine.distribute.Placement`) and
        start the first epoch's clock."""
        batches = math.ceil(self.samples / self.batch_size) if self.batch_size else None
        where = None
        if placement is not None:
            where = {**placement.metadata()["distribute"], "text": placement.describe()}
        self.event("start", epochs=self.epochs, batches=batches, samples=self.samples,
                   batch_size=self.batch_size, task=self.task.value if self.task else None, placement=where)
        self.epoch_started = self.clock()

    def on_batch(self, epoch: int, batch: int, batches: int | None, logs: dict[str, float]) -> None:
        now = self.clock()
        last = batches is not None and batch + 1 >= batches
        if now - self._last_batch < 1.0 / JSON_BATCHES_PER_S and not last:
            return
        self._last_batch = now
        self.event("batch", epoch=epoch, batch=batch, batches=batches, logs=dict(logs))

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        now = self.clock()
        seconds, self.epoch_started = now - self.epoch_started, now
        self._last_batch = -math.inf
        self.event("epoch", epoch=epoch, logs=dict(logs), seconds=seconds)

    def on_message(self, kind: MessageKind, text: str) -> None:
        if kind.name == "PHASE":
            self.epoch_started = self.clock()  # recompiling is not the next epoch's time
        self.event("message", kind=kind.value, text=text)

    def clear_line(self) -> None:
        """Nothing to clear (as :meth:`ConsoleReporter.clear_line`, so callers need not ask)."""
