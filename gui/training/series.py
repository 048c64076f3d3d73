"""Growing numpy series for live training curves; no Qt.

Keras reports, after each batch, the *running mean* of the loss and metrics over the epoch so far,
weighted by the samples of each batch. :class:`BatchSeries` turns those back into the value of
each batch (what a faint "raw" line should show) and keeps an exponential moving average of them
(the smoothed line). Every append is O(1) amortised: buffers double when full and the plots are
handed views of the filled part.
"""

from __future__ import annotations

import math

import numpy as np

PLOTS = ("loss", "metric")  # the two live plots, by key
EMA_SMOOTHING = 0.9  # weight of the past in the smoothed line (as TensorBoard's slider)
# Metrics Keras reports per batch as one aggregate of the epoch so far (a confusion matrix, sums of
# squares), not as a mean of per-batch values: their per-batch value cannot be recovered.
AGGREGATE_METRICS = frozenset({"r2", "mean_iou", "precision", "recall"})
# Metrics that live in [0, 1] (R² at most 1): their axis is fixed.
UNIT_METRICS = frozenset({"accuracy", "precision", "recall", "mean_iou", "r2", "auc"})
METRIC_TITLES = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall",
                 "mae": "Mean absolute error", "r2": "R²", "mean_iou": "Mean IoU", "loss": "Loss"}


def metric_title(name: str) -> str:
    """``mean_iou`` → ``Mean IoU``: how a logged metric is named for people."""
    return METRIC_TITLES.get(name, name.replace("_", " ").capitalize())


class GrowingArray:
    """A float64 array that grows by doubling; :meth:`view` is the filled part (no copy)."""

    def __init__(self, capacity: int = 256) -> None:
        self._data = np.empty(max(1, capacity), dtype=np.float64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, value: float) -> None:
        if self._size == len(self._data):
            grown = np.empty(2 * len(self._data), dtype=np.float64)
            grown[:self._size] = self._data[:self._size]
            self._data = grown
        self._data[self._size] = value
        self._size += 1

    def view(self) -> np.ndarray:
        return self._data[:self._size]


class BatchSeries:
    """One metric of one run, per batch: x in epochs, the per-batch value and its smoothed value.

    ``samples`` is the size of the training set and ``batch_size`` the batch size, which say how
    many samples each batch contributes to Keras's running mean.
    """

    def __init__(self, samples: int, batch_size: int, smoothing: float = EMA_SMOOTHING,
                 running_mean: bool = True) -> None:
        self.samples, self.batch_size, self.smoothing = max(1, samples), max(1, batch_size), smoothing
        self.running_mean = running_mean  # False: the reported value is drawn as it is
        self.x, self.raw, self.smooth = GrowingArray(), GrowingArray(), GrowingArray()
        self._epoch = -1
        self._seen = 0          # samples of the current epoch included in the running mean
        self._mean = 0.0
        self._ema = 0.0
        self._ema_weight = 0.0  # 1 - smoothing ** n, to unbias the first values
        self.low, self.high = math.inf, -math.inf  # of the finite per-batch values

    def append(self, epoch: int, batch: int, batches: int, running_mean: float) -> None:
        if epoch != self._epoch:
            self._epoch, self._seen, self._mean = epoch, 0, 0.0
        seen = min((batch + 1) * self.batch_size, self.samples)
        added = seen - self._seen
        if self.running_mean and added > 0 and math.isfinite(running_mean) and math.isfinite(self._mean):
            value = (running_mean * seen - self._mean * self._seen) / added
        else:
            value = running_mean
        self._seen, self._mean = seen, running_mean
        self.x.append(epoch + (batch + 1) / max(1, batches))
        if not math.isfinite(value):
            self.raw.append(math.nan)
            self.smooth.append(math.nan)
            return
        self.raw.append(value)
        self.low, self.high = min(self.low, value), max(self.high, value)
        self._ema = self.smoothing * self._ema + (1 - self.smoothing) * value
        self._ema_weight = self.smoothing * self._ema_weight + (1 - self.smoothing)
        self.smooth.append(self._ema / self._ema_weight)


class EpochSeries:
    """One metric of one run, per completed epoch (x is the epoch's end: 1, 2, …)."""

    def __init__(self) -> None:
        self.x, self.y = GrowingArray(16), GrowingArray(16)
        self.low, self.high = math.inf, -math.inf

    def append(self, epoch: int, value: float) -> None:
        self.x.append(epoch + 1)
        if math.isfinite(value):
            self.y.append(value)
            self.low, self.high = min(self.low, value), max(self.high, value)
        else:
            self.y.append(math.nan)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k that is ≥ ``value`` (> 0)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    scale = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if step * scale >= value * (1 - 1e-12):
            return step * scale
    return 10.0 * scale
