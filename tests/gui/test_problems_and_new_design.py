"""The Problems panel opened from the status bar, File → New with its start dialog and the
empty-canvas hint (issue 12, points 2 and 3)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from engine.analysis import analyse
from engine.design import Design
from gui.problems_panel import DESIGN_LABEL
from gui.start_dialog import StartDialog

from driving import menu_action


def two_broken_layers_and_no_input() -> Design:
    """Two layers with nothing connected to them, and (a problem of the whole design) no
    InputLayer."""
    design = Design(name="broken")
    design.add("Conv2D", args={"filters": 2, "kernel_size": 3})
    design.add("Dense", args={"units": 3})
    return design


def test_empty_design_reports_no_input_layer_as_a_design_problem():
    analysis = analyse(Design())
    assert [p.node for p in analysis.design_problems] == [None]
    assert "InputLayer" in analysis.design_problems[0].message and not analysis.valid


def test_clicking_the_problem_count_lists_every_problem_and_a_row_selects_its_layer(window, qtbot):
    window.document.reset(two_broken_layers_and_no_input())
    problems = window.document.analysis.problems
    assert sorted(p.node or "" for p in problems) == ["", "conv2d", "dense"], [str(p) for p in problems]
    dock = window._docks["Problems"]
    assert not dock.isVisible()

    qtbot.mouseClick(window._status_text, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dock.isVisible, timeout=2000)
    panel = window.problems
    assert panel.row_count() == 3
    rows = {panel.row(i).text(0): panel.row(i).text(1) for i in range(3)}
    assert set(rows) == {"conv2d", "dense", DESIGN_LABEL}
    assert "InputLayer" in rows[DESIGN_LABEL]

    index = next(i for i in range(3) if panel.row(i).text(0) == "dense")
    tree = panel.tree
    rect = tree.visualItemRect(panel.row(index))
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.scene.selected_node_names() == ["dense"]
    assert window.inspector.node_name == "dense"
    view = window.view
    centre = view.mapToScene(view.viewport().rect().center())
    assert (centre - window.scene.node_item("dense").pos()).manhattanLength() < 20  # centred on it

    design_row = next(i for i in range(3) if panel.row(i).text(0) == DESIGN_LABEL)
    rect = tree.visualItemRect(panel.row(design_row))
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.scene.selected_node_names() == ["dense"]  # a design problem selects no layer


def choose_in_start_dialog(qtbot, title: str | None) -> None:
    """When the start dialog opens: double-click ``title`` (None: press Escape to cancel)."""
    def act() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, StartDialog)
        if title is None:
            qtbot.keyClick(dialog.list, Qt.Key.Key_Escape)
            return
        item = dialog.item_titled(title)
        dialog.list.setCurrentItem(item)
        qtbot.keyClick(dialog.list, Qt.Key.Key_Return)
    QTimer.singleShot(0, act)


def test_file_new_gives_an_empty_untitled_design_with_a_hint(window, qtbot):
    assert window.view.hint_text() == ""
    choose_in_start_dialog(qtbot, "Empty design")
    menu_action(window, "File", "New").trigger()
    design = window.document.design
    assert not design.nodes and design.name == "Untitled"
    assert window.document.path is None and not window.document.modified
    assert "Add an InputLayer" in window.view.hint_text()
    assert "no InputLayer" in window._status_text.text()

    window.palette_widget.sigActivated.emit("InputLayer")  # double-click in Layers
    assert window.view.hint_text() == ""
    menu_action(window, "Edit", "Undo").trigger()
    assert "Add an InputLayer" in window.view.hint_text()


def test_the_hint_is_painted_on_the_empty_canvas(window, qtbot, monkeypatch):
    window.document.reset(Design(name="Untitled"))
    with_hint = window.view.viewport().grab().toImage()
    monkeypatch.setattr(window.view, "hint_text", lambda: "")
    without_hint = window.view.viewport().grab().toImage()
    assert with_hint != without_hint


def test_start_dialog_offers_examples_and_templates_and_can_be_cancelled(window, qtbot):
    seed = dict(window.document.design.nodes)
    choose_in_start_dialog(qtbot, None)
    menu_action(window, "File", "New").trigger()
    assert window.document.design.nodes.keys() == seed.keys()

    choose_in_start_dialog(qtbot, "LeNet-5")
    menu_action(window, "File", "New").trigger()
    assert window.document.design.name == "lenet5" and analyse(window.document.design).valid

    choose_in_start_dialog(qtbot, "Colour classifier skeleton")
    menu_action(window, "File", "New").trigger()
    design = window.document.design
    assert design.name == "Untitled"
    assert [n.kind for n in design.nodes.values()] == ["InputLayer", "Flatten", "Dense"]


def test_save_as_proposes_untitled_for_a_new_design(window, qtbot, monkeypatch):
    from PySide6.QtWidgets import QFileDialog
    proposed = []

    def no_file(_parent, _title, start, _filter):
        proposed.append(start)
        return "", ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(no_file))
    choose_in_start_dialog(qtbot, "Empty design")
    menu_action(window, "File", "New").trigger()
    menu_action(window, "File", "Save As").trigger()
    assert proposed and proposed[0].endswith("Untitled.convas")


def test_ok_button_creates_the_highlighted_choice(qtbot):
    dialog = StartDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.list.setCurrentItem(dialog.item_titled("Grayscale classifier skeleton"))
    qtbot.mouseClick(dialog.findChild(QDialogButtonBox).buttons()[0], Qt.MouseButton.LeftButton)
    assert dialog.result() == StartDialog.DialogCode.Accepted
    assert dialog.design().nodes["input_layer"].args["shape"] == (28, 28, 1)


def test_file_new_pretrained_network_opens_new_from_pretrained(window, qtbot, monkeypatch):
    opened = []
    monkeypatch.setattr(window, "new_from_pretrained", lambda: opened.append(True))
    before = window.document.design
    choose_in_start_dialog(qtbot, "Pretrained network…")
    menu_action(window, "File", "New").trigger()
    assert opened == [True]
    assert window.document.design is before  # the pretrained dialog, not the start dialog, replaces it
