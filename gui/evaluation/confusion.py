"""The confusion matrix as a heat map: counts in every cell, class names on both axes.

Cells are tinted by the share of their row (the true class): the diagonal in blue (right), the
rest in red (wrong), so the worst confusions stand out whatever the class sizes. Clicking a cell
announces it with ``sigCellClicked(true_class, predicted_class)``.

Cells scale with the room the view has, down to :data:`MIN_CELL`, so that the whole matrix with
its class names and axis titles fits the Evaluation dock as training leaves it (a 10-class matrix
at the default window size); only below that does the view ask its scroll area for more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from ..theme import ERROR_COLOR

RIGHT_COLOR = "#2e86de"
MIN_CELL = 16      # below this a count or a class name no longer fits; the view asks for scrolling
MAX_CELL = 72      # larger cells only spread the numbers apart
MAX_LABEL = 120    # class names longer than this (pixels) are elided
GAP = 6


@dataclass(frozen=True)
class AxisLabel:
    """A class name or axis title as painted: ``shown`` is ``text`` unless it had to be elided."""

    text: str
    shown: str
    rect: QRectF       # where it is drawn, in widget coordinates (before rotation: see below)
    rotated: bool      # drawn upright, reading bottom to top, in the same box turned by 90°


def _mix(base: QColor, tint: QColor, amount: float) -> QColor:
    a = max(0.0, min(1.0, amount))
    return QColor(round(base.red() + (tint.red() - base.red()) * a),
                  round(base.green() + (tint.green() - base.green()) * a),
                  round(base.blue() + (tint.blue() - base.blue()) * a))


class ConfusionView(QWidget):
    """Paints a (K, K) confusion matrix; rows are the true classes, columns the predicted ones."""

    sigCellClicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.confusion = np.zeros((0, 0), dtype=np.int64)
        self.class_names: list[str] = []
        self.selected: tuple[int, int] | None = None
        self._hover: tuple[int, int] | None = None
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(self.minimumSizeHint())

    # --- public -------------------------------------------------------------------------------

    def set_matrix(self, confusion: np.ndarray | Sequence[Sequence[int]], class_names: list[str]) -> None:
        self.confusion = np.asarray(confusion, dtype=np.int64)
        self.class_names = [str(n) for n in class_names]
        self.selected = self._hover = None
        self.setMinimumSize(self.minimumSizeHint())
        self.updateGeometry()
        self.update()

    def select(self, true_class: int | None, predicted_class: int | None = None) -> None:
        """Outline a cell (None clears) without announcing it."""
        self.selected = (None if true_class is None or predicted_class is None
                         else (int(true_class), int(predicted_class)))
        self.update()

    def cell_text(self, true_class: int, predicted_class: int) -> str:
        """The text written in a cell: its count."""
        return str(int(self.confusion[true_class, predicted_class]))

    def cell_rect(self, true_class: int, predicted_class: int) -> QRectF:
        """Where a cell is drawn, in widget coordinates."""
        left, top, cell = self._geometry()[:3]
        return QRectF(left + predicted_class * cell, top + true_class * cell, cell, cell)

    def cell_at(self, point: QPoint) -> tuple[int, int] | None:
        k = len(self.confusion)
        if not k:
            return None
        left, top, cell = self._geometry()[:3]
        col = int((point.x() - left) // cell)
        row = int((point.y() - top) // cell)
        return (row, col) if 0 <= row < k and 0 <= col < k and point.x() >= left and point.y() >= top else None

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        k = max(len(self.confusion), 2)
        fm = self.fontMetrics()
        side = k * MIN_CELL
        labels_h = self._column_label_height(MIN_CELL)[0]
        return QSize(side + fm.height() + 2 * GAP + self._label_width() + 8,
                     GAP + side + 2 + labels_h + GAP // 2 + fm.height() + GAP)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        k = max(len(self.confusion), 2)
        fm = self.fontMetrics()
        side = k * min(MAX_CELL, max(36, MIN_CELL))
        return QSize(side + fm.height() + self._label_width() + 3 * GAP, side + 3 * fm.height() + 4 * GAP)

    # --- geometry -----------------------------------------------------------------------------

    def _label_width(self) -> int:
        # Measured in fractions of a pixel and rounded up: an integer advance can fall short of
        # the text's real width by a fraction, which is enough for eliding to cut the widest name.
        fm = QFontMetricsF(self.font())
        widest = max((fm.horizontalAdvance(n) for n in self.class_names), default=fm.horizontalAdvance("0"))
        return min(math.ceil(widest) + 1, MAX_LABEL) + GAP

    def _column_label_height(self, cell: float) -> tuple[int, bool]:
        """Height of the predicted-class labels under the grid, and whether they stand upright
        (rotated) because they are wider than a cell."""
        fm = QFontMetricsF(self.font())
        widest = math.ceil(max((fm.horizontalAdvance(n) for n in self.class_names), default=0))
        if widest <= cell - 4:
            return math.ceil(fm.height()) + 2, False
        return min(widest + 1, MAX_LABEL) + 4, True

    def _geometry(self) -> tuple[float, float, float, int, bool]:
        """left, top, cell size, column-label height, rotated labels."""
        k = max(len(self.confusion), 1)
        fm = self.fontMetrics()
        left_margin = fm.height() + GAP + self._label_width()   # "True" title, then the row labels
        bottom_fixed = fm.height() + 2 * GAP                      # the "Predicted" title
        top = GAP
        width = self.width() - left_margin - GAP
        cell = 0.0
        labels_h, rotated = fm.height() + 2, False
        for _ in range(2):  # the label height depends on the cell size and vice versa
            height = self.height() - top - bottom_fixed - labels_h - GAP
            cell = max(float(MIN_CELL), min(MAX_CELL, width / k, height / k))
            labels_h, rotated = self._column_label_height(cell)
        grid = cell * k
        spare = max(0.0, width - grid)
        return left_margin + spare / 2, top, cell, labels_h, rotated

    # --- painting -----------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        k = len(self.confusion)
        if not k:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        muted = palette.color(QPalette.ColorRole.PlaceholderText)
        grid_pen = QPen(palette.color(QPalette.ColorRole.Window), 1)
        left, top, cell = self._geometry()[:3]
        totals = self.confusion.sum(axis=1)
        fonts = self._count_fonts()
        right, wrong = QColor(RIGHT_COLOR), QColor(ERROR_COLOR)

        for t in range(k):
            for p in range(k):
                rect = QRectF(left + p * cell, top + t * cell, cell, cell)
                count = int(self.confusion[t, p])
                share = count / totals[t] if totals[t] else 0.0
                fill = _mix(base, right if t == p else wrong, 0.12 + 0.88 * share if count else 0.0)
                painter.fillRect(rect, fill)
                painter.setPen(grid_pen)
                painter.drawRect(rect)
                label = self.cell_text(t, p)
                font = self._count_font(fonts[1] if t == p and count else fonts[0], label, cell)
                if font is None:
                    continue  # too small to read: the tooltip tells
                if count == 0:
                    painter.setPen(muted)
                elif share > 0.5:
                    painter.setPen(QColor("#ffffff"))
                else:
                    painter.setPen(text)
                painter.setFont(font)
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)
        painter.setFont(self.font())
        bold = QFont(self.font())
        bold.setBold(True)

        for cell_pos, color, width in ((self._hover, palette.color(QPalette.ColorRole.Text), 1),
                                       (self.selected, palette.color(QPalette.ColorRole.Highlight), 3)):
            if cell_pos is not None and 0 <= cell_pos[0] < k and 0 <= cell_pos[1] < k:
                rect = self.cell_rect(*cell_pos)
                pen = QPen(color, width)
                pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
                painter.setPen(pen)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                half = width / 2
                painter.drawRect(rect.adjusted(half, half, -half, -half))

        painter.setPen(text)
        for index, axis in enumerate(self.axis_labels()):
            is_title = index >= 2 * k
            painter.setFont(bold if is_title else self.font())
            if axis.rotated:
                painter.save()
                painter.translate(axis.rect.left(), axis.rect.bottom())
                painter.rotate(-90)
                align = (Qt.AlignmentFlag.AlignCenter if is_title
                         else Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                painter.drawText(QRectF(0, 0, axis.rect.height(), axis.rect.width()), align, axis.shown)
                painter.restore()
            else:
                align = (Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter if index < k
                         else Qt.AlignmentFlag.AlignCenter)
                painter.drawText(axis.rect, align, axis.shown)
        painter.end()

    def _count_fonts(self) -> tuple[list[QFont], list[QFont]]:
        """(regular, bold) fonts for the counts, each at full size and then smaller, so that the
        small cells of a matrix fitted to a short dock still show two- or three-digit counts."""
        sizes = []
        for bold in (False, True):
            fonts = []
            for scale in (1.0, 0.8, 0.7):
                font = QFont(self.font())
                font.setBold(bold)
                if scale != 1.0:
                    font.setPointSizeF(font.pointSizeF() * scale)
                fonts.append(font)
            sizes.append(fonts)
        return sizes[0], sizes[1]

    @staticmethod
    def _count_font(fonts: list[QFont], label: str, cell: float) -> QFont | None:
        """The first of ``fonts`` in which ``label`` fits a cell, or None."""
        for font in fonts:
            metrics = QFontMetricsF(font)
            if metrics.horizontalAdvance(label) <= cell - 3 and metrics.height() <= cell + 1:
                return font
        return None

    def axis_labels(self) -> list[AxisLabel]:
        """What the axes show, in painting order: the true classes (rows), the predicted classes
        (columns), then the titles "Predicted" and "True". A rotated label's ``rect`` is the box
        it occupies on screen."""
        k = len(self.confusion)
        if not k:
            return []
        fm = self.fontMetrics()
        left, top, cell, labels_h, rotated = self._geometry()
        label_w = self._label_width() - GAP
        grid = cell * k
        labels = []
        for t, name in enumerate(self.class_names):  # true classes, right-aligned left of the rows
            labels.append(AxisLabel(name, fm.elidedText(name, Qt.TextElideMode.ElideRight, label_w),
                                    QRectF(left - GAP - label_w, top + t * cell, label_w, cell), False))
        below = top + grid + 2
        for p, name in enumerate(self.class_names):  # predicted classes, under the columns
            if rotated:
                shown = fm.elidedText(name, Qt.TextElideMode.ElideRight, int(labels_h - 4))
                labels.append(AxisLabel(name, shown, QRectF(left + p * cell + (cell - fm.height()) / 2, below + 2,
                                                            fm.height(), labels_h - 4), True))
            else:
                shown = fm.elidedText(name, Qt.TextElideMode.ElideRight, int(cell))
                labels.append(AxisLabel(name, shown, QRectF(left + p * cell, below, cell, labels_h), False))
        labels.append(AxisLabel("Predicted", "Predicted", QRectF(left, below + labels_h + GAP / 2, grid, fm.height()),
                                False))
        true_left = left - self._label_width() - GAP / 2 - fm.height()
        labels.append(AxisLabel("True", "True", QRectF(true_left, top, fm.height(), grid), True))
        return labels

    # --- mouse --------------------------------------------------------------------------------

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        hover = self.cell_at(event.position().toPoint())
        if hover != self._hover:
            self._hover = hover
            self.update()
            if hover is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPosition().toPoint(), self.cell_tooltip(*hover), self)
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            cell = self.cell_at(event.position().toPoint())
            if cell is not None:
                self.selected = cell
                self.update()
                self.sigCellClicked.emit(*cell)
                return
        super().mousePressEvent(event)

    def cell_tooltip(self, true_class: int, predicted_class: int) -> str:
        count = int(self.confusion[true_class, predicted_class])
        total = int(self.confusion[true_class].sum())
        share = f" ({count / total:.0%})" if total else ""
        true_name, pred_name = self.class_names[true_class], self.class_names[predicted_class]
        if true_class == predicted_class:
            return f"{count} of {total} samples of {true_name} recognised{share}\nClick to see them"
        return f"{count} of {total} samples of {true_name} predicted as {pred_name}{share}\nClick to see them"
