"""Live loss and metric curves of training runs (pyqtgraph).

The left plot is the loss; the right one a metric of the run's task (its quality metric first:
accuracy, R², mean IoU, …), with a selector for the other metrics it logs. A fine-tuning run has
its phase boundary drawn as a dashed vertical line labelled "fine-tuning" in both plots.

Each run gets its curves once, when it starts; per-batch and per-epoch values go into growing
numpy buffers (:mod:`.series`) at O(1) per batch, and :meth:`TrainingCurves.flush` — called by the
panel's redraw timer (up to 20 Hz) — hands the plots the new data only when some arrived. Per-batch lines clip
to the view, downsample by peaks and draw without antialiasing, so 100,000 points stay smooth.
Earlier runs stay drawn in muted colours (up to :data:`MAX_RUNS`).

This module imports pyqtgraph (about a second); the panel imports it when it is first shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QComboBox, QGraphicsItem, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget,
)

from ..widgets import NoWheelMixin, mute
from .series import (AGGREGATE_METRICS, PLOTS, UNIT_METRICS, BatchSeries, EpochSeries, metric_title,
                     nice_ceiling)

MAX_RUNS = 5
# Room above and below a y range: pyqtgraph hides a tick label (0, 1) that would cross the plot's
# edge, so the ends of the range keep half a label's height inside.
Y_PADDING = 0.09
TRAIN_COLOR = "#3b82f6"
VALIDATION_COLOR = "#f97316"
PHASE_LABEL = "fine-tuning"
NOT_METRICS = frozenset({"loss", "lr", "samples_per_s"})  # logged, but not metrics to choose


@dataclass
class MetricSeries:
    """One logged value of a run: per batch, per epoch in training and in validation."""

    batches: BatchSeries
    train: EpochSeries = field(default_factory=EpochSeries)
    validation: EpochSeries = field(default_factory=EpochSeries)


@dataclass
class RunCurves:
    """The data and the plot items of one run. ``series`` holds every value the run logs (the
    loss and each metric); the "metric" plot shows ``series[metric]``."""

    number: int
    metric: str
    samples: int
    batch_size: int
    series: dict[str, MetricSeries] = field(default_factory=dict)   # log name -> its values
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # plot -> kind -> PlotDataItem
    dirty_batches: set[str] = field(default_factory=set)  # plots with per-batch values to draw
    dirty_epochs: set[str] = field(default_factory=set)   # plots with per-epoch values to draw
    phase_epoch: int | None = None                        # where fine-tuning's phase two began

    def values(self, name: str) -> MetricSeries:
        """The series of log ``name``, made on first use."""
        if name not in self.series:
            self.series[name] = MetricSeries(BatchSeries(self.samples, self.batch_size,
                                                         running_mean=name not in AGGREGATE_METRICS))
        return self.series[name]

    def shown(self, plot: str) -> MetricSeries:
        """What ``plot`` ("loss" or "metric") shows."""
        return self.values("loss" if plot == "loss" else self.metric)

    @property
    def batches(self) -> dict[str, BatchSeries]:
        return {plot: self.shown(plot).batches for plot in PLOTS}

    @property
    def train(self) -> dict[str, EpochSeries]:
        return {plot: self.shown(plot).train for plot in PLOTS}

    @property
    def validation(self) -> dict[str, EpochSeries]:
        return {plot: self.shown(plot).validation for plot in PLOTS}

    def metrics(self) -> list[str]:
        """The metrics this run logs (without the loss), as far as known."""
        return [name for name in self.series if name not in NOT_METRICS]

    def curve(self, plot: str, kind: str) -> Any:
        """The item of ``kind`` ("raw", "smooth", "train", "validation", "phase") in ``plot``
        ("loss" or "metric"); None once a run is no longer the newest and its raw line is gone,
        or when there is no such item."""
        return self.items.get(plot, {}).get(kind)


class _Combo(NoWheelMixin, QComboBox):
    pass


def _color(hex_or_color: Any, alpha: int = 255) -> QColor:
    color = QColor(hex_or_color)
    color.setAlpha(alpha)
    return color


class TrainingCurves(QWidget):
    """Two plots side by side: the loss, and a metric of the task (``metric_combo`` chooses
    which), against epochs; their legend is a row above them, so that it never hides a curve."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs: list[RunCurves] = []
        self.plots: dict[str, pg.PlotWidget] = {}
        self._x_end = 1.0
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        self.legend_view = pg.GraphicsLayoutWidget(self)
        self.legend_view.ci.setContentsMargins(0, 0, 0, 0)
        self.legend_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.legend_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.legend_view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 4, 2)
        header.setSpacing(6)
        header.addWidget(self.legend_view, 1)
        self.metric_label = mute(QLabel("Metric", self))
        self.metric_combo = _Combo(self)
        self.metric_combo.setAccessibleName("Metric")
        self.metric_combo.setToolTip("The metric the right-hand plot shows")
        self.metric_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.metric_combo.currentIndexChanged.connect(self._on_metric_chosen)
        self.metric_label.setBuddy(self.metric_combo)
        header.addWidget(self.metric_label)
        header.addWidget(self.metric_combo)
        self.metric_label.hide()
        self.metric_combo.hide()
        column.addLayout(header)
        layout = QHBoxLayout()
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        column.addLayout(layout, 1)
        for key, title in (("loss", "Loss"), ("metric", "Accuracy")):
            widget = pg.PlotWidget(self)
            widget.setMinimumSize(160, 120)
            item = widget.getPlotItem()
            item.setTitle(title, size="9pt")
            item.showGrid(x=True, y=True, alpha=0.15)
            item.setLabel("bottom", "epoch")
            item.setMouseEnabled(x=True, y=False)
            item.hideButtons()
            item.getViewBox().setDefaultPadding(0.02)
            self.plots[key] = widget
            layout.addWidget(widget, 1)
        # Fixed ranges: the loss axis only moves when a value leaves it (see _fit_loss_range), so
        # a redraw repaints the curves, not the axes; the axes are cached as pixmaps.
        for widget in self.plots.values():
            item = widget.getPlotItem()
            item.enableAutoRange(x=False, y=False)
            for name in ("left", "bottom"):
                item.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._ranges: dict[str, tuple[float, float]] = {plot: (0.0, 1.0) for plot in PLOTS}
        for plot in PLOTS:
            self.plots[plot].setYRange(0.0, 1.0, padding=Y_PADDING)
        self.legend = pg.LegendItem(labelTextSize="8pt", verSpacing=-6, colCount=MAX_RUNS + 3)
        self.legend.layout.setContentsMargins(4, 0, 4, 0)
        self.legend_view.addItem(self.legend)
        self.legend_view.ci.layout.setColumnStretchFactor(0, 0)
        self.legend_view.ci.addItem(pg.GraphicsWidget(), 0, 1)  # takes the rest: the legend stays compact
        self.legend_view.ci.layout.setColumnStretchFactor(1, 1)
        self._rebuild_legend()
        self.apply_palette()

    # --- runs -------------------------------------------------------------------------------

    @property
    def current(self) -> RunCurves | None:
        return self.runs[-1] if self.runs else None

    def start_run(self, samples: int, batch_size: int, epochs: int, metric: str = "accuracy",
                  metrics: tuple[str, ...] = ()) -> RunCurves:
        """New curves for a run over ``samples`` images in batches of ``batch_size`` that logs
        ``metrics`` (more join when they arrive), ``metric`` shown first; earlier runs fade, and
        the oldest goes beyond :data:`MAX_RUNS`."""
        previous = self.current
        if previous is not None:
            self._fade(previous)
        while len(self.runs) >= MAX_RUNS:
            self._remove(self.runs.pop(0))
        number = previous.number + 1 if previous is not None else 1
        run = RunCurves(number, metric, samples, batch_size)
        for name in ("loss", metric, *metrics):
            run.values(name)
        for plot in PLOTS:
            run.items[plot] = self._make_items(self.plots[plot].getPlotItem())
        self.runs.append(run)
        self._fill_metric_combo()
        self._show_metric_title()
        self._x_end = max([epochs] + [float(r.train["loss"].x.view()[-1]) for r in self.runs
                                      if len(r.train["loss"].x)])
        for widget in self.plots.values():
            widget.setXRange(0.0, self._x_end, padding=0.01)
        self._rebuild_legend()
        return run

    def clear_runs(self, keep_current: bool = False) -> None:
        """Remove the runs from the plots; all but the newest with ``keep_current`` (a run
        still training)."""
        keep = self.runs[-1:] if keep_current else []
        for run in self.runs[:len(self.runs) - len(keep)]:
            self._remove(run)
        self.runs[:] = keep
        self._rebuild_legend()
        self._ranges = {plot: (math.nan, math.nan) for plot in PLOTS}
        self._fit_ranges(PLOTS)
        self._fill_metric_combo()

    def add_batch(self, epoch: int, batch: int, batches: int, logs: dict[str, float]) -> None:
        run = self.current
        if run is None:
            return
        known = len(run.series)
        for name, value in logs.items():
            if name not in ("lr", "samples_per_s") and not name.startswith("val_"):
                run.values(name).batches.append(epoch, batch, batches, value)
        if len(run.series) != known:
            self._fill_metric_combo()
        run.dirty_batches.update(PLOTS)

    def add_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        run = self.current
        if run is None:
            return
        for name, value in logs.items():
            if name in ("lr", "samples_per_s"):
                continue
            if name.startswith("val_"):
                run.values(name[4:]).validation.append(epoch, value)
            else:
                run.values(name).train.append(epoch, value)
        run.dirty_epochs.update(PLOTS)

    def mark_phase(self, epoch: int) -> None:
        """Draw fine-tuning's phase boundary after ``epoch`` epochs on the current run (moved
        there if drawn already)."""
        run = self.current
        if run is None:
            return
        run.phase_epoch = epoch
        for plot in PLOTS:
            line = run.items[plot].get("phase")
            if line is None:
                line = pg.InfiniteLine(
                    pos=float(epoch), angle=90, movable=False,
                    pen=pg.mkPen(self._muted(200), width=1.2, style=Qt.PenStyle.DashLine),
                    label=PHASE_LABEL,
                    labelOpts={"position": 0.95, "color": self._muted(230), "anchors": [(-0.05, 0), (-0.05, 0)]})
                run.items[plot]["phase"] = line
                self.plots[plot].getPlotItem().addItem(line)
            line.setValue(float(epoch))
        if epoch > self._x_end:
            self._x_end = float(epoch)
            for widget in self.plots.values():
                widget.setXRange(0.0, self._x_end, padding=0.01)

    def select_metric(self, name: str) -> None:
        """Show metric ``name`` in the right-hand plot (for every run that logs it)."""
        index = self.metric_combo.findData(name)
        if index >= 0:
            self.metric_combo.setCurrentIndex(index)

    def flush(self, plots: tuple[str, ...] = PLOTS) -> bool:
        """Give ``plots`` what arrived since they were last flushed; False when nothing did.

        The panel flushes one plot per tick, in turn: a redraw of both plots at once (setData,
        then the repaint) held the GUI thread for ~30 ms while training competes for the GIL."""
        run = self.current
        if run is None or not any(p in run.dirty_batches or p in run.dirty_epochs for p in plots):
            return False
        for plot in plots:
            self._draw(run, plot, batches=plot in run.dirty_batches, epochs=plot in run.dirty_epochs)
            run.dirty_batches.discard(plot)
            run.dirty_epochs.discard(plot)
        self._fit_ranges(plots)
        return True

    def _draw(self, run: RunCurves, plot: str, batches: bool = True, epochs: bool = True) -> None:
        items, shown = run.items[plot], run.shown(plot)
        if batches:
            x = shown.batches.x.view()
            if "raw" in items:
                items["raw"].setData(x, shown.batches.raw.view())
            items["smooth"].setData(x, shown.batches.smooth.view())
        if epochs:
            items["train"].setData(shown.train.x.view(), shown.train.y.view())
            items["validation"].setData(shown.validation.x.view(), shown.validation.y.view())

    def _fit_ranges(self, plots: tuple[str, ...]) -> None:
        """Widen an axis to a round number when a value leaves it (never narrows during a run,
        so the axis stays still while the loss falls). A metric in [0, 1] keeps that axis (R²
        down to -1 when it is negative)."""
        for plot in plots:
            shown = [r.shown(plot) for r in self.runs]
            parts = [s for m in shown for s in (m.batches, m.train, m.validation)]
            low = min((s.low for s in parts), default=0.0)
            high = max((s.high for s in parts), default=1.0)
            metric = self.current.metric if plot == "metric" and self.current is not None else "loss"
            if metric in UNIT_METRICS:
                bottom = -1.0 if math.isfinite(low) and low < 0 else 0.0
                top = 1.0
            else:
                bottom = 0.0 if low >= 0 or not math.isfinite(low) else -nice_ceiling(-low)
                top = nice_ceiling(high) if math.isfinite(high) else 1.0
            if (bottom, top) != self._ranges[plot]:
                self._ranges[plot] = (bottom, top)
                self.plots[plot].setYRange(bottom, top, padding=Y_PADDING)

    def _fill_metric_combo(self) -> None:
        """The metrics of the current run in the selector (shown when there is a choice)."""
        run = self.current
        names = run.metrics() if run is not None else []
        combo = self.metric_combo
        blocked = combo.blockSignals(True)
        try:
            combo.clear()
            for name in names:
                combo.addItem(metric_title(name), name)
            if run is not None:
                combo.setCurrentIndex(max(0, combo.findData(run.metric)))
        finally:
            combo.blockSignals(blocked)
        combo.setVisible(len(names) > 1)
        self.metric_label.setVisible(len(names) > 1)

    def _on_metric_chosen(self, index: int) -> None:
        name = self.metric_combo.itemData(index)
        if not name:
            return
        for run in self.runs:
            run.metric = name
            if run.items:
                self._draw(run, "metric")
        self._ranges["metric"] = (math.nan, math.nan)
        self._fit_ranges(("metric",))
        self._show_metric_title()

    def title_next_run(self, metric: str) -> None:
        """Before any run, title the metric plot with what the next run draws first (the task's
        quality metric), so an empty plot does not say "Accuracy" for a segmentation network."""
        if self.current is None:
            self.plots["metric"].getPlotItem().setTitle(metric_title(metric), size="9pt")

    def _show_metric_title(self) -> None:
        run = self.current
        if run is not None:
            self.plots["metric"].getPlotItem().setTitle(metric_title(run.metric), size="9pt")

    def legend_names(self) -> list[str]:
        return [label.text for _sample, label in self.legend.items]

    # --- look -------------------------------------------------------------------------------

    def apply_palette(self) -> None:
        """Plot colours from the application palette (light or dark)."""
        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        muted = palette.color(QPalette.ColorRole.PlaceholderText)
        for run in self.runs:
            for plot in PLOTS:
                line = run.items.get(plot, {}).get("phase")
                if line is not None:
                    line.setPen(pg.mkPen(self._muted(200), width=1.2, style=Qt.PenStyle.DashLine))
        for widget in self.plots.values():
            widget.setBackground(background)
            item = widget.getPlotItem()
            for name in ("left", "bottom"):
                axis = item.getAxis(name)
                axis.setPen(pg.mkPen(muted))
                axis.setTextPen(pg.mkPen(text))
            item.titleLabel.setAttr("color", text.name())
            item.titleLabel.setText(item.titleLabel.text)
        self.legend_view.setBackground(self.palette().color(QPalette.ColorRole.Window))
        self.legend.setLabelTextColor(text)
        self.legend.setBrush(pg.mkBrush(None))  # a row of its own: no box to tell it from the data
        self.legend.setPen(pg.mkPen(None))
        self._restyle_faded()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.apply_palette()

    def _muted(self, alpha: int) -> QColor:
        return _color(self.palette().color(QPalette.ColorRole.Text), alpha)

    def _make_items(self, plot: Any) -> dict[str, Any]:
        fast = dict(antialias=False, clipToView=True, autoDownsample=True, downsampleMethod="peak",
                    connect="finite")
        items = {
            "raw": pg.PlotDataItem(pen=pg.mkPen(_color(TRAIN_COLOR, 70), width=1), **fast),
            "smooth": pg.PlotDataItem(pen=pg.mkPen(TRAIN_COLOR, width=1.5), **fast),
            "train": pg.PlotDataItem(pen=pg.mkPen(TRAIN_COLOR, width=2), symbol="o", symbolSize=6,
                                     symbolBrush=TRAIN_COLOR, symbolPen=None, connect="finite"),
            "validation": pg.PlotDataItem(pen=pg.mkPen(VALIDATION_COLOR, width=2), symbol="o",
                                          symbolSize=6, symbolBrush=VALIDATION_COLOR, symbolPen=None,
                                          connect="finite"),
        }
        for kind in ("train", "validation"):
            # Redrawn once an epoch: a cached pixmap spares painting their symbols at every tick.
            items[kind].setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        for item in items.values():
            plot.addItem(item)
        return items

    def _fade(self, run: RunCurves) -> None:
        """An earlier run: no raw line, the rest in muted colours behind the new run."""
        for plot in PLOTS:
            raw = run.items[plot].pop("raw", None)
            if raw is not None:
                self.plots[plot].getPlotItem().removeItem(raw)
        self._restyle_run(run)

    def _restyle_faded(self) -> None:
        for run in self.runs[:-1]:
            self._restyle_run(run)

    def _restyle_run(self, run: RunCurves) -> None:
        line, points = self._muted(90), self._muted(110)
        for plot in PLOTS:
            items = run.items[plot]
            items["smooth"].setPen(pg.mkPen(line, width=1.2))
            items["smooth"].setZValue(-1)
            items["smooth"].setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)  # finished
            for kind, style in (("train", Qt.PenStyle.SolidLine), ("validation", Qt.PenStyle.DashLine)):
                items[kind].setPen(pg.mkPen(line, width=1.2, style=style))
                items[kind].setSymbolBrush(points)
                items[kind].setSymbolSize(4)
                items[kind].setZValue(-1)

    def _remove(self, run: RunCurves) -> None:
        for plot in PLOTS:
            target = self.plots[plot].getPlotItem()
            for item in run.items[plot].values():
                target.removeItem(item)
        run.items.clear()

    def _rebuild_legend(self) -> None:
        self.legend.clear()
        run = self.current
        self.legend.setVisible(run is not None)  # no empty box before the first run
        self.legend_view.setVisible(run is not None)
        if run is None:
            return
        items = run.items["loss"]
        self.legend.addItem(items["train"], f"Run {run.number} · training")
        self.legend.addItem(items["validation"], f"Run {run.number} · validation")
        self.legend.addItem(items["smooth"], f"Run {run.number} · per batch")
        for earlier in reversed(self.runs[:-1]):
            self.legend.addItem(earlier.items["loss"]["smooth"], f"Run {earlier.number}")
        self.legend.updateSize()
        self.legend_view.setFixedHeight(math.ceil(self.legend.boundingRect().height()) + 2)
