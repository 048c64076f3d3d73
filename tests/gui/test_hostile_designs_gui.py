"""Hostile designs in the window (issue 13): renaming a layer refuses names Keras cannot train or
export, saying which name to use, and a file's such names are repaired by the problem's one-click
fix; numbers past any float and lone surrogates leave every panel whole."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QInputDialog, QMessageBox

from engine.design import chain
from gui.document import Document
from gui.inspector import InspectorWidget
from gui.summary_panel import SummaryWidget

from driving import select_all_and_type


@pytest.fixture
def document(qtbot) -> Document:
    return Document(chain(("InputLayer", {"shape": (8, 8, 1)}), ("Conv2D", {"filters": 4, "kernel_size": 3})))


@pytest.fixture
def inspector(qtbot, document) -> InspectorWidget:
    widget = InspectorWidget(document)
    qtbot.addWidget(widget)
    widget.show()
    return widget


@pytest.mark.parametrize("typed, suggested", [("my conv", "my_conv"), ("a:b;c", "a_b_c"),
                                              ("a\\b", "a_b"), ("_x", "x_x")])
def test_inspector_refuses_an_unusable_name_with_the_name_to_use(qtbot, inspector, document, typed, suggested):
    inspector.show_node("conv2d")
    select_all_and_type(qtbot, inspector.name_edit, typed)
    assert not inspector.name_error.isHidden()
    assert f"rename it to {suggested}" in inspector.name_error.text()
    assert list(document.design.nodes) == ["input_layer", "conv2d"]
    assert document.undo_stack.count() == 0


def test_f2_dialog_refuses_an_unusable_name_with_the_name_to_use(window, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("my conv", True))
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: shown.append(text))
    before = list(window.document.design.nodes)
    window.scene.select_nodes([before[1]])
    window.rename_selected()
    assert shown and "rename it to my_conv" in shown[0]
    assert list(window.document.design.nodes) == before


def test_the_fix_of_an_imported_name_renames_it_in_one_undoable_step(qtbot):
    design = chain(("InputLayer", {"shape": (8, 8, 1)}), ("Conv2D", {"filters": 4, "kernel_size": 3}))
    design.rename("conv2d", "my conv")  # as a file may bring it
    document = Document(design)
    inspector = InspectorWidget(document)
    qtbot.addWidget(inspector)
    inspector.show_node("my conv")
    (problem,) = [p for p in document.analysis.errors if p.node == "my conv"]
    inspector._apply_fix(problem.fixes[0])
    assert list(document.design.nodes) == ["input_layer", "my_conv"] and document.analysis.valid
    document.undo_stack.undo()
    assert list(document.design.nodes) == ["input_layer", "my conv"]


def test_panels_show_a_design_with_numbers_past_float_range_and_unprintable_names(qtbot):
    design = chain(("InputLayer", {"shape": (2, 2, 1)}), *[("UpSampling2D", {"size": 4096})] * 6,
                   ("Flatten", {}), ("Dense", {"units": 10**400}), name="\x1b\ud800")
    design.rename("dense", "out\ud800\x07")
    document = Document(design)
    summary, inspector = SummaryWidget(document), InspectorWidget(document)
    qtbot.addWidget(summary)
    qtbot.addWidget(inspector)
    model = summary.model
    assert model.rowCount() == len(design.nodes)
    cells = [str(model.data(model.index(r, c))) for r in range(model.rowCount()) for c in range(model.columnCount())]
    assert all(len(cell) < 200 and "\x07" not in cell and "\ud800" not in cell for cell in cells)
    for name in design.nodes:
        inspector.show_node(name)
    assert not document.analysis.valid
