"""The sweep's scatter: every finished trial's metric against its cost, the Pareto front as a
step line, the current design marked (pyqtgraph; imported when the panel is first shown).

- Complete trials are solid points; pruned, failed and stopped ones that reported a metric are
  faint. Trials rejected before training (invalid, over budget) have no metric: they are drawn
  faint, as crosses along the bottom edge of the plot, under a "rejected" label, so the plot
  still shows which costs the engine refused.
- The front (:func:`engine.sweep_results.pareto_front`) is a staircase
  (:func:`engine.sweep_results.step_line`). A vertical dashed line marks the current design's
  cost (from the document's analysis); the trial equal to the current design is ringed.
- Parameters and MACs use a logarithmic x axis when the costs span more than a factor of
  :data:`LOG_SPAN`.
- A single-objective sweep plots the metric against the trial number, with the best so far as
  a step line.

Hovering over a point says what that trial tried and scored (:attr:`SweepPlot.sigHovered`, and a
tooltip); clicking it selects it (:attr:`SweepPlot.sigClicked`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from engine.sweep_results import TrialOutcome, TrialRecord, pareto_front, step_line
from engine.sweep_settings import CostKind

from ..evaluation.plots import PalettePlot

LOG_SPAN = 8.0  # costs spanning more than this factor get a log x axis
POINT_COLOR = "#3b82f6"
FRONT_COLOR = "#f97316"
SELECTED_COLOR = "#e5484d"
CURRENT_COLOR = "#30a46c"
POINT_SIZE = 9
FAINT_ALPHA = 80
REJECTED_LABEL = "rejected"


def _color(name: str, alpha: int = 255) -> QColor:
    color = QColor(name)
    color.setAlpha(alpha)
    return color


class CountAxis(pg.AxisItem):
    """An axis of counts written as people read them (``250 K``, ``1.2 M``), never with a
    "(×0.001)" scale in its title. With :attr:`log` the values it is given are powers of ten
    (the plot draws log10 of each cost) and its ticks fall on 1, 2 and 5 of each decade."""

    def __init__(self, orientation: str) -> None:
        super().__init__(orientation)
        self.enableAutoSIPrefix(False)
        self.counts = True
        self.log = False

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float | None, list[float]]]:
        if not self.log:
            return super().tickValues(minVal, maxVal, size)
        fits = max(2, int(size / 70))  # labels at least ~70 px apart
        for mantissas in ((1, 2, 5), (1, 3), (1,)):
            values = [k + math.log10(m) for k in range(math.floor(minVal) - 1, math.ceil(maxVal) + 1)
                      for m in mantissas if minVal <= k + math.log10(m) <= maxVal]
            if len(values) <= fits:
                break
        return [(None, values)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if self.log:
            return [_count(10.0 ** v) for v in values]
        if not self.counts:
            return super().tickStrings(values, scale, spacing)
        return [_count(v) for v in values]


def _count(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g}"


def cost_of(record: TrialRecord, cost: CostKind | None) -> float | None:
    """The x a trial is drawn at in a sweep with ``cost`` (its number when there is none)."""
    if cost is None:
        return float(record.number)
    value = {CostKind.PARAMS: record.params_count, CostKind.MACS: record.macs,
             CostKind.LATENCY: record.latency_ms}[cost] if record.cost is None else record.cost
    return float(value) if value is not None else None


class SweepPlot(PalettePlot):
    """The scatter of one study; :meth:`set_records` redraws it (items are made once)."""

    sigClicked = Signal(int)       # a trial's number
    sigHovered = Signal(object)    # a trial's number, or None when the pointer left the points

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(240, 180)
        self.cost: CostKind | None = CostKind.MACS
        self.metric = "val_accuracy"
        self.higher_is_better = True
        self.records: list[TrialRecord] = []
        self.log_x = False
        self.current_cost: float | None = None
        self.current_number: int | None = None
        self.selected: int | None = None
        self._hovered: int | None = None
        self._xy: dict[int, tuple[float, float]] = {}  # trial number -> where it is drawn (view coordinates)
        item = self.getPlotItem()
        self.bottom_axis = CountAxis("bottom")
        item.setAxisItems({"bottom": self.bottom_axis})
        item.getAxis("left").enableAutoSIPrefix(False)
        self.apply_palette()
        item.setMouseEnabled(x=False, y=False)
        item.getViewBox().setDefaultPadding(0.06)
        self.front_line = pg.PlotCurveItem(pen=pg.mkPen(FRONT_COLOR, width=2), name="Pareto front")
        self.faint = pg.ScatterPlotItem(size=POINT_SIZE - 1, pen=pg.mkPen(_color(POINT_COLOR, FAINT_ALPHA + 40)),
                                        brush=pg.mkBrush(_color(POINT_COLOR, FAINT_ALPHA // 2)),
                                        hoverable=True, tip=None)
        self.rejected = pg.ScatterPlotItem(size=POINT_SIZE - 1, symbol="x", pen=None,
                                           brush=pg.mkBrush(_color(SELECTED_COLOR, FAINT_ALPHA + 30)),
                                           hoverable=True, tip=None)
        self.points = pg.ScatterPlotItem(size=POINT_SIZE, pen=pg.mkPen("w", width=0.8),
                                         brush=pg.mkBrush(POINT_COLOR), hoverable=True, tip=None,
                                         hoverSize=POINT_SIZE + 3)
        self.front_points = pg.ScatterPlotItem(size=POINT_SIZE + 1, pen=pg.mkPen("w", width=0.8),
                                               brush=pg.mkBrush(FRONT_COLOR), hoverable=True, tip=None,
                                               hoverSize=POINT_SIZE + 4)
        self.current_ring = pg.ScatterPlotItem(size=POINT_SIZE + 10, pen=pg.mkPen(CURRENT_COLOR, width=2),
                                               brush=None)
        self.selected_ring = pg.ScatterPlotItem(size=POINT_SIZE + 8, pen=pg.mkPen(SELECTED_COLOR, width=2.5),
                                                brush=None)
        self.current_line = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen(CURRENT_COLOR, width=1.2, style=Qt.PenStyle.DashLine),
            label="current design", labelOpts={"position": 0.96, "color": CURRENT_COLOR,
                                               "anchors": [(-0.05, 0), (-0.05, 0)]})
        self.rejected_text = pg.TextItem(REJECTED_LABEL, color=_color(SELECTED_COLOR, 170), anchor=(0, 1))
        for scatter_item in (self.faint, self.rejected, self.front_line, self.points, self.front_points,
                             self.current_ring, self.selected_ring):
            item.addItem(scatter_item)
        item.addItem(self.current_line)  # in the view: where the current design stands among the trials
        item.addItem(self.rejected_text, ignoreBounds=True)
        self.current_line.hide()
        self.rejected_text.hide()
        for scatter in (self.points, self.front_points, self.faint, self.rejected):
            scatter.sigClicked.connect(self._on_points_clicked)
            scatter.sigHovered.connect(self._on_points_hovered)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._placeholder = pg.TextItem("The trials appear here as they finish.", anchor=(0.5, 0.5),
                                        color=self.palette().color(self.palette().ColorRole.PlaceholderText))
        item.addItem(self._placeholder, ignoreBounds=True)
        self._placeholder.setPos(0.5, 0.5)
        self.setXRange(0, 1)
        self.setYRange(0, 1)
        self._set_labels()

    # --- what to draw ----------------------------------------------------------------------------

    def set_study(self, metric: str, cost: CostKind | None, higher_is_better: bool) -> None:
        self.metric, self.cost, self.higher_is_better = metric, cost, higher_is_better
        self.selected = None
        self._set_labels()

    def set_records(self, records: Sequence[TrialRecord]) -> None:
        self.records = list(records)
        self.redraw()

    def set_current(self, cost: float | None, number: int | None) -> None:
        """The current design's cost (None: unknown, or not a cost plot) and the trial equal to
        it (None: none)."""
        self.current_cost, self.current_number = cost, number
        self.redraw()

    def select(self, number: int | None) -> None:
        self.selected = number
        self._draw_rings()

    def point_at(self, number: int) -> QPoint | None:
        """Where trial ``number`` is drawn, in this widget's coordinates (for tests that click it)."""
        if number not in self._xy:
            return None
        x, y = self._xy[number]
        scene = self.getPlotItem().getViewBox().mapViewToScene(QPointF(x, y))
        return self.mapFromScene(scene)

    # --- drawing ---------------------------------------------------------------------------------

    def _set_labels(self) -> None:
        x = "trial" if self.cost is None else self.cost.label
        self.set_labels(x, self.metric.replace("_", " "))
        self.getPlotItem().setTitle(None)

    def _x(self, value: float) -> float:
        return math.log10(value) if self.log_x else value

    def redraw(self) -> None:
        records = self.records
        placed = [(r, cost_of(r, self.cost)) for r in records if r.outcome.finished]
        scored = [(r, c) for r, c in placed if r.metric is not None and math.isfinite(r.metric) and c is not None]
        rejected = [(r, c) for r, c in placed if r.outcome.rejected and c is not None]
        trial_costs = [c for _r, c in scored + rejected if c > 0]
        costs = list(trial_costs)
        if self.current_cost is not None and self.current_cost > 0:
            costs.append(self.current_cost)
        self.log_x = (self.cost in (CostKind.PARAMS, CostKind.MACS) and bool(costs)
                      and max(costs) / min(costs) > LOG_SPAN)
        self.bottom_axis.log = self.log_x  # the plot draws log10 of each cost itself
        self.bottom_axis.counts = self.cost in (CostKind.PARAMS, CostKind.MACS)
        self.bottom_axis.picture = None  # what pyqtgraph's own setLogMode does to redraw the ticks
        self.bottom_axis.update()
        self._xy = {}
        metrics = [r.metric for r, _c in scored if r.metric is not None]
        if metrics:
            lo, hi = min(metrics), max(metrics)
        else:
            lo, hi = 0.0, 1.0
        span = (hi - lo) or max(abs(hi), 1.0) * 0.1
        floor = lo - span * 0.12  # the rejected strip, below the lowest metric

        front = pareto_front([r for r, _c in scored], self.higher_is_better) if self.cost is not None else []
        front_numbers = {r.number for r in front}
        complete = [(r, c) for r, c in scored if r.outcome is TrialOutcome.COMPLETE
                    and r.number not in front_numbers]
        front_pairs = [(r, c) for r, c in scored if r.number in front_numbers]
        faint = [(r, c) for r, c in scored if r.outcome is not TrialOutcome.COMPLETE]
        self._set_points(self.points, complete)
        self._set_points(self.front_points, front_pairs)
        self._set_points(self.faint, faint)
        self._set_points(self.rejected, [(r, c) for r, c in rejected], y=floor)

        if self.cost is not None and len(front) > 0:
            xs, ys = step_line(front, self.higher_is_better)
            self.front_line.setData(np.array([self._x(x) for x in xs]), np.array(ys))
        elif self.cost is None:
            xs, ys = self._best_so_far(scored)
            self.front_line.setData(np.array(xs), np.array(ys))
        else:
            self.front_line.setData([], [])

        if self.cost is not None and self.current_cost is not None and self.current_cost > 0:
            self.current_line.setValue(self._x(self.current_cost))
            # The label reads towards the trials, so it is never cut off at the plot's edge.
            right_of_trials = bool(trial_costs) and self.current_cost >= max(trial_costs)
            anchor = (1.05, 0) if right_of_trials else (-0.05, 0)
            self.current_line.label.anchors = [anchor, anchor]
            self.current_line.label.updatePosition()
            self.current_line.show()
        else:
            self.current_line.hide()
        if rejected:
            # Beside the leftmost cross, reading inwards so the plot's edge never cuts it.
            xs = [self._x(c) for _r, c in scored + rejected]
            left = min(self._x(c) for _r, c in rejected)
            inward_right = left <= (min(xs) + max(xs)) / 2
            self.rejected_text.setAnchor((0, 1) if inward_right else (1, 1))
            self.rejected_text.setPos(left, floor)
            self.rejected_text.show()
        else:
            self.rejected_text.hide()
        empty = not scored and not rejected
        self._placeholder.setVisible(empty)
        item = self.getPlotItem()
        for name in ("left", "bottom"):  # no numbers on an empty plot: only what will be there
            item.getAxis(name).setStyle(showValues=not empty, tickLength=0 if empty else -5)
        item.getAxis("left").setGrid(False if empty else 38)
        item.getAxis("bottom").setGrid(False if empty else 38)
        if not empty:
            item.enableAutoRange()
        self._draw_rings()

    def _best_so_far(self, scored: list[tuple[TrialRecord, float]]) -> tuple[list[float], list[float]]:
        """The staircase of the best metric so far, by trial number (single-objective sweeps)."""
        xs: list[float] = []
        ys: list[float] = []
        best: float | None = None
        for r, _c in sorted(scored, key=lambda rc: rc[0].number):
            if r.outcome is not TrialOutcome.COMPLETE or r.metric is None:
                continue
            better = best is None or (r.metric > best if self.higher_is_better else r.metric < best)
            if better:
                if best is not None:
                    xs.append(float(r.number))
                    ys.append(best)
                best = r.metric
                xs.append(float(r.number))
                ys.append(best)
        return xs, ys

    def _set_points(self, scatter: pg.ScatterPlotItem, pairs: list[tuple[TrialRecord, float]],
                    y: float | None = None) -> None:
        xs = [self._x(c) if c > 0 or not self.log_x else 0.0 for _r, c in pairs]
        ys = [y if y is not None else float(r.metric or 0.0) for r, _c in pairs]
        numbers = [r.number for r, _c in pairs]
        scatter.setData(x=np.array(xs, dtype=float), y=np.array(ys, dtype=float), data=numbers)
        for number, x, yy in zip(numbers, xs, ys, strict=True):
            self._xy[number] = (x, yy)

    def _draw_rings(self) -> None:
        for ring, number in ((self.current_ring, self.current_number), (self.selected_ring, self.selected)):
            if number is not None and number in self._xy:
                x, y = self._xy[number]
                ring.setData(x=[x], y=[y])
            else:
                ring.setData(x=[], y=[])

    # --- pointer ---------------------------------------------------------------------------------

    def _on_points_clicked(self, _item: Any, points: Any, _event: Any = None) -> None:
        if len(points):
            self.sigClicked.emit(int(points[0].data()))

    def _on_points_hovered(self, _item: Any, points: Any, _event: Any = None) -> None:
        number = int(points[0].data()) if len(points) else None
        if number is not None and number != self._hovered:
            self._hovered = number
            self.sigHovered.emit(number)

    def _on_mouse_moved(self, position: QPointF) -> None:
        """Leaving the points (by more than a point's size) ends the hover."""
        if self._hovered is None:
            return
        xy = self._xy.get(self._hovered)
        if xy is None:
            self._hovered = None
            self.sigHovered.emit(None)
            return
        point = self.getPlotItem().getViewBox().mapViewToScene(QPointF(*xy))
        if (point - position).manhattanLength() > POINT_SIZE * 2:
            self._hovered = None
            self.sigHovered.emit(None)
