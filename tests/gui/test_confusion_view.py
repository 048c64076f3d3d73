"""The confusion matrix at the size the window gives it: class names and axis titles readable."""

from __future__ import annotations

import numpy as np
import pytest

from gui.evaluation.confusion import MIN_CELL

DIGITS = [str(d) for d in range(10)]
SHAPES = ["circle", "square", "triangle"]


def confusion_after_training(window, qtbot, names: list[str]):
    """The Evaluation dock as a user finds it at the default window size: the Train panel was
    opened (Train → Training Panel) to train, then the Evaluation tab beside it is raised."""
    window.act_show_training.trigger()
    dock = window._docks["Evaluation"]
    dock.raise_()
    panel = window.evaluation
    k = len(names)
    counts = np.full((k, k), 3, np.int64)
    counts[range(k), range(k)] = 36  # about the digits' validation split per class
    panel.confusion.set_matrix(counts, names)
    panel.stack.setCurrentWidget(panel.content)
    qtbot.waitUntil(lambda: panel.confusion.isVisible() and panel.confusion.height() > 0)
    return panel.confusion


def cut_labels(view) -> list[str]:
    """The axis labels that are elided or not wholly on screen."""
    visible = view.visibleRegion().boundingRect()
    return [label.text for label in view.axis_labels()
            if label.shown != label.text or not visible.contains(label.rect.toAlignedRect())]


@pytest.mark.parametrize("names", [DIGITS, SHAPES], ids=["digits", "shapes"])
def test_axis_labels_are_whole_and_on_screen_at_the_default_window_size(window, qtbot, names):
    view = confusion_after_training(window, qtbot, names)
    labels = view.axis_labels()
    assert [label.text for label in labels] == names + names + ["Predicted", "True"]
    try:
        qtbot.waitUntil(lambda: not cut_labels(view), timeout=2000)  # once the docks have settled
    except AssertionError:
        pytest.fail(f"cut off or elided: {cut_labels(view)}")
    cell = view.cell_rect(0, 0)
    assert cell.width() >= MIN_CELL
    # Fitted to the height, not to a fixed size: the grid and its labels fill the view's height.
    assert labels[-2].rect.bottom() >= 0.8 * view.height()


def test_cells_scale_with_the_height_and_stop_at_the_minimum(qtbot):
    from gui.evaluation.confusion import ConfusionView

    view = ConfusionView()
    qtbot.addWidget(view)
    view.set_matrix(np.eye(10, dtype=np.int64) * 36, DIGITS)
    view.resize(800, 500)
    big = view.cell_rect(0, 0).height()
    view.resize(800, 260)
    fitted = view.cell_rect(0, 0).height()
    assert big > fitted >= MIN_CELL
    view.resize(800, 100)
    assert view.cell_rect(0, 0).height() == MIN_CELL
    assert view.minimumSizeHint().height() > 10 * MIN_CELL  # below that, the scroll area scrolls
