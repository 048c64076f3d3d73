"""Live loss and accuracy curves of training runs (pyqtgraph).

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
from PySide6.QtWidgets import QGraphicsItem, QHBoxLayout, QSizePolicy, QVBoxLayout, QWidget

from .series import PLOTS, BatchSeries, EpochSeries, nice_ceiling

MAX_RUNS = 5
# Room above and below a y range: pyqtgraph hides a tick label (0, 1) that would cross the plot's
# edge, so the ends of the range keep half a label's height inside.
Y_PADDING = 0.09
TRAIN_COLOR = "#3b82f6"
VALIDATION_COLOR = "#f97316"


@dataclass
class RunCurves:
    """The data and the plot items of one run."""

    number: int
    metric: str
    batches: dict[str, BatchSeries]                 # plot -> per-batch series
    train: dict[str, EpochSeries]                   # plot -> per-epoch training values
    validation: dict[str, EpochSeries]              # plot -> per-epoch validation values
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # plot -> kind -> PlotDataItem
    dirty_batches: set[str] = field(default_factory=set)  # plots with per-batch values to draw
    dirty_epochs: set[str] = field(default_factory=set)   # plots with per-epoch values to draw

    def curve(self, plot: str, kind: str) -> Any:
        """The PlotDataItem of ``kind`` ("raw", "smooth", "train", "validation") in ``plot``
        ("loss" or "metric"); None once a run is no longer the newest and its raw line is gone."""
        return self.items.get(plot, {}).get(kind)


def _color(hex_or_color: Any, alpha: int = 255) -> QColor:
    color = QColor(hex_or_color)
    color.setAlpha(alpha)
    return color


class TrainingCurves(QWidget):
    """Two plots side by side: the loss, and the first metric (accuracy), against epochs; their
    legend is a row above them, so that it never hides a curve."""

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
        column.addWidget(self.legend_view)
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
        self.plots["metric"].setYRange(0.0, 1.0, padding=Y_PADDING)
        self._loss_range = (0.0, 1.0)
        self.plots["loss"].setYRange(*self._loss_range, padding=Y_PADDING)
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

    def start_run(self, samples: int, batch_size: int, epochs: int, metric: str = "accuracy") -> RunCurves:
        """New curves for a run over ``samples`` images in batches of ``batch_size``; earlier
        runs fade, and the oldest goes beyond :data:`MAX_RUNS`."""
        previous = self.current
        if previous is not None:
            self._fade(previous)
        while len(self.runs) >= MAX_RUNS:
            self._remove(self.runs.pop(0))
        number = previous.number + 1 if previous is not None else 1
        run = RunCurves(number, metric,
                        batches={p: BatchSeries(samples, batch_size) for p in PLOTS},
                        train={p: EpochSeries() for p in PLOTS},
                        validation={p: EpochSeries() for p in PLOTS})
        for plot in PLOTS:
            run.items[plot] = self._make_items(self.plots[plot].getPlotItem())
        self.runs.append(run)
        self.plots["metric"].getPlotItem().setTitle(metric.replace("_", " ").capitalize(), size="9pt")
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
        self._loss_range = (math.nan, math.nan)
        self._fit_loss_range()

    def add_batch(self, epoch: int, batch: int, batches: int, logs: dict[str, float]) -> None:
        run = self.current
        if run is None:
            return
        loss = logs.get("loss")
        if loss is not None:
            run.batches["loss"].append(epoch, batch, batches, loss)
        value = logs.get(run.metric)
        if value is not None:
            run.batches["metric"].append(epoch, batch, batches, value)
        run.dirty_batches.update(PLOTS)

    def add_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        run = self.current
        if run is None:
            return
        for plot, key in (("loss", "loss"), ("metric", run.metric)):
            if key in logs:
                run.train[plot].append(epoch, logs[key])
            if f"val_{key}" in logs:
                run.validation[plot].append(epoch, logs[f"val_{key}"])
        run.dirty_epochs.update(PLOTS)

    def flush(self, plots: tuple[str, ...] = PLOTS) -> bool:
        """Give ``plots`` what arrived since they were last flushed; False when nothing did.

        The panel flushes one plot per tick, in turn: a redraw of both plots at once (setData,
        then the repaint) held the GUI thread for ~30 ms while training competes for the GIL."""
        run = self.current
        if run is None or not any(p in run.dirty_batches or p in run.dirty_epochs for p in plots):
            return False
        for plot in plots:
            items = run.items[plot]
            if plot in run.dirty_batches:
                series = run.batches[plot]
                x = series.x.view()
                items["raw"].setData(x, series.raw.view())
                items["smooth"].setData(x, series.smooth.view())
            if plot in run.dirty_epochs:
                items["train"].setData(run.train[plot].x.view(), run.train[plot].y.view())
                items["validation"].setData(run.validation[plot].x.view(), run.validation[plot].y.view())
            run.dirty_batches.discard(plot)
            run.dirty_epochs.discard(plot)
        if "loss" in plots:
            self._fit_loss_range()
        return True

    def _fit_loss_range(self) -> None:
        """Widen the loss axis to a round number when a value leaves it (never narrows during a
        run, so the axis stays still while the loss falls)."""
        low = min((s.low for r in self.runs for s in (r.batches["loss"], r.train["loss"],
                                                       r.validation["loss"])), default=0.0)
        high = max((s.high for r in self.runs for s in (r.batches["loss"], r.train["loss"],
                                                         r.validation["loss"])), default=1.0)
        bottom = 0.0 if low >= 0 or not math.isfinite(low) else -nice_ceiling(-low)
        top = nice_ceiling(high) if math.isfinite(high) else 1.0
        if (bottom, top) != self._loss_range:
            self._loss_range = (bottom, top)
            self.plots["loss"].setYRange(bottom, top, padding=Y_PADDING)

    def legend_names(self) -> list[str]:
        return [label.text for _sample, label in self.legend.items]

    # --- look -------------------------------------------------------------------------------

    def apply_palette(self) -> None:
        """Plot colours from the application palette (light or dark)."""
        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        muted = palette.color(QPalette.ColorRole.PlaceholderText)
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
