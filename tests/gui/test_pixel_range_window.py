"""The data's pixel range in the window: the dataset box shows and switches it, the analysis
follows it (card, Problems, inspector), and the "switch the data" fix changes the setting."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.design import chain
from engine.editing import OnNode, plan_place
from engine.layers import FixAction
from engine.pixel_range import PixelRange

UNIT, RAW = PixelRange.UNIT, PixelRange.RAW


def tutorial():
    """Rescaling(1/255) first, as the Keras tutorials have it for raw 0–255 pixels."""
    return chain(("InputLayer", {"shape": (28, 28, 1)}), ("Rescaling", {"scale": 1 / 255}),
                 ("Conv2D", {"filters": 8, "kernel_size": 3, "activation": "relu"}),
                 ("Flatten", {}), ("Dense", {"units": 10, "activation": "softmax"}), name="tutorial")


@pytest.fixture
def panel(window, qtbot):
    window.document.reset(tutorial())
    window.act_show_training.trigger()
    panel = window.train_panel
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=60_000)
    return panel


def range_warnings(window) -> list[str]:
    return [p.message for p in window.document.analysis.warnings if p.node == "rescaling"]


def problem_rows(window) -> list[str]:
    panel = window.problems
    panel.refresh()
    return [panel.row(i).text(0) for i in range(panel.row_count())]


def pick_range(qtbot, box, pixel_range: PixelRange) -> None:
    combo = box.range_combo
    target = combo.findData(pixel_range.value)
    combo.setFocus()
    key = Qt.Key.Key_Down if target > combo.currentIndex() else Qt.Key.Key_Up
    while combo.currentIndex() != target:
        qtbot.keyClick(combo, key)


def test_the_dataset_box_shows_the_range_and_switching_it_reanalyses(window, panel, qtbot):
    box = panel.dataset_box
    document = window.document
    assert box.range_combo.currentText() == "Pixels [0, 1]"
    assert "pixels [0, 1]" in box.summary_label.text()
    # [0, 1] data into Rescaling(1/255): a warning on the card and in Problems.
    assert range_warnings(window)
    assert window.scene.node_item("rescaling").text.state == "warning"
    assert "rescaling" in problem_rows(window)

    pick_range(qtbot, box, RAW)
    assert document.training.pixel_range is RAW and document.modified
    assert not range_warnings(window)
    assert window.scene.node_item("rescaling").text.state == "ok"
    assert "rescaling" not in problem_rows(window)
    qtbot.waitUntil(lambda: panel.dataset is not None and panel.dataset.pixel_range is RAW, timeout=60_000)
    assert float(panel.dataset.train.images().max()) == 255.0
    assert "pixels 0–255 (raw)" in box.summary_label.text()

    pick_range(qtbot, box, UNIT)
    assert document.training.pixel_range is UNIT and range_warnings(window)
    assert window.scene.node_item("rescaling").text.state == "warning"


def test_the_switch_fix_changes_the_data_and_the_remove_fix_the_design(window, panel, qtbot):
    document = window.document
    window.scene.select_nodes(["rescaling"])
    inspector = window.inspector
    assert inspector.node_name == "rescaling"
    labels = [b.text() for b in inspector.fix_buttons()]
    assert labels == ["Remove rescaling (the data is in [0, 1] already)", "Switch the data to 0–255 (raw)"]

    steps = document.undo_stack.count()
    inspector.fix_buttons()[1].click()
    assert document.training.pixel_range is RAW
    assert document.undo_stack.count() == steps  # the design did not change
    assert panel.dataset_box.range_combo.currentData() == RAW.value
    assert not range_warnings(window) and not inspector.fix_buttons()
    qtbot.waitUntil(lambda: panel.dataset is not None and panel.dataset.pixel_range is RAW, timeout=60_000)

    pick_range(qtbot, panel.dataset_box, UNIT)
    window.scene.select_nodes(["rescaling"])
    remove = inspector.fix_buttons()[0]
    remove.click()
    assert "rescaling" not in document.design.nodes
    assert not document.analysis.warnings
    document.undo_stack.undo()
    assert "rescaling" in document.design.nodes and range_warnings(window)


def test_the_palette_adds_layers_that_fit_the_data(window, panel, qtbot):
    document = window.document
    for pixel_range in (UNIT, RAW):
        pick_range(qtbot, panel.dataset_box, pixel_range)
        for kind in ("RandomBrightness", "Rescaling"):
            window.scene.select_nodes(["input_layer"])
            before = set(document.design.nodes)
            window.add_layer(kind)
            (added,) = set(document.design.nodes) - before
            report = document.analysis.nodes[added]
            assert not [p for p in report.problems if p.fixes and any(
                f.action == FixAction.SET_PIXEL_RANGE for f in p.fixes)], (kind, pixel_range)
            document.undo_stack.undo()
    plan = plan_place(document.design, "Rescaling", OnNode("input_layer"), input_range=RAW)
    assert plan.ops[0].args["scale"] == pytest.approx(1 / 255)


@pytest.mark.slow
def test_an_exported_model_reopens_with_the_range_it_was_trained_on(window, tmp_path):
    from engine.export.run import ExportOptions, export_model
    from engine.project_file import project_to_dict
    from engine.training import TrainingSettings

    design = tutorial()
    out = tmp_path / "tutorial.keras"
    project = project_to_dict(design, TrainingSettings(pixel_range=RAW).to_dict())
    export_model(design, out, ExportOptions("keras"), project=project)
    assert window.open_path(out, ask=False)
    assert window.document.training.pixel_range is RAW
    assert not range_warnings(window)  # Rescaling(1/255) is right for the raw pixels it was trained on
