"""The designer window driven as a user would: menus, keys, files, autosave, recovery."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine.analysis import analyse
from engine.design import TensorRef
from engine.examples import seed_design
from engine.project_file import load_project

from driving import menu_action

ROOT = Path(__file__).resolve().parents[2]


def test_title_marks_unsaved_changes_and_undo_clears_it(window):
    assert window.windowTitle() == "Convas — seed_cnn[*]" and not window.isWindowModified()
    window.scene.select_nodes(["flatten"])
    window.palette_widget.sigActivated.emit("Dropout")
    assert window.isWindowModified()
    assert window.document.design.nodes["dense"].inputs == [TensorRef("dropout")]
    menu_action(window, "Edit", "Undo").trigger()
    assert not window.isWindowModified() and "dropout" not in window.document.design.nodes


def test_delete_key_removes_selected_layer_and_reconnects(window, qtbot):
    window.scene.select_nodes(["max_pooling2d"])
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Delete)
    design = window.document.design
    assert "max_pooling2d" not in design.nodes
    assert design.nodes["conv2d_1"].inputs == [TensorRef("conv2d")]
    assert "invalid" not in window._status_text.text().lower()
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert "max_pooling2d" in window.document.design.nodes


def test_copy_paste_and_duplicate(window):
    window.scene.select_nodes(["conv2d", "max_pooling2d"])
    menu_action(window, "Edit", "Copy").trigger()
    menu_action(window, "Edit", "Paste").trigger()
    design = window.document.design
    assert {"conv2d_2", "max_pooling2d_2"} <= set(design.nodes)
    assert design.nodes["max_pooling2d_2"].inputs == [TensorRef("conv2d_2")]
    assert sorted(window.scene.selected_node_names()) == ["conv2d_2", "max_pooling2d_2"]
    menu_action(window, "Edit", "Duplicate").trigger()
    assert len(design.nodes) == 11


def test_save_as_and_reopen_gives_the_same_design(window, tmp_path, monkeypatch):
    window.scene.select_nodes(["conv2d"])
    window.palette_widget.sigActivated.emit("BatchNormalization")
    target = tmp_path / "mine.convas"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), PROJECT))
    menu_action(window, "File", "Save As").trigger()
    assert target.is_file() and not window.isWindowModified()
    assert window.windowTitle() == "Convas — mine.convas[*]"
    saved = window.document.design.copy()
    assert load_project(target).design.nodes == saved.nodes
    window.document.reset(seed_design())
    assert window.open_path(target, ask=False)
    assert window.document.design.nodes == saved.nodes
    assert str(target) in window._recent()


PROJECT = "Convas projects (*.convas)"


def test_corrupt_file_shows_dialog_and_leaves_design_untouched(window, tmp_path, monkeypatch):
    bad = tmp_path / "broken.convas"
    bad.write_text('{"format": "convas", "version": 1, "design": {"nodes": [', encoding="utf-8")
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a: shown.append((title, text)))
    before = window.document.design.copy()
    assert not window.open_path(bad, ask=False)
    assert shown and "broken.convas" in shown[0][1]
    assert window.document.design.nodes == before.nodes


# A window that autosaves unsaved work and then dies without a clean close (os._exit: no
# cleanup runs, as in a crash or a kill).
_CRASHING_WINDOW = """
import os, sys
sys.path.insert(0, sys.argv[2])
from PySide6.QtCore import QCoreApplication
from engine.examples import seed_design
from gui.autosave import Autosaver
from gui.document import Document
app = QCoreApplication([])
document = Document(seed_design())
document.design.name = "crashed_design"
document.mark_unsaved()
assert Autosaver(document, __import__("pathlib").Path(sys.argv[1])).save_now()
os._exit(9)
"""


def crash_a_window(recovery: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _CRASHING_WINDOW, str(recovery), str(ROOT)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr


def test_autosave_then_recovery_in_a_new_window_after_a_crash(new_window, tmp_path, monkeypatch):
    crash_a_window(tmp_path / "recovery")
    left = list((tmp_path / "recovery").glob("recovery-*.convas"))
    assert len(left) == 1
    window = new_window()  # the same recovery folder
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.offer_recovery()
    assert window.document.design.name == "crashed_design" and window.isWindowModified()
    # The work now lives in this window's own recovery file; the dead window's is gone.
    assert not left[0].exists() and window.autosaver.design_path.is_file()
    assert load_project(window.autosaver.design_path).design.name == "crashed_design"


def test_windows_running_together_keep_their_own_recovery_files(window, new_window, monkeypatch):
    window.scene.select_nodes(["flatten"])
    window.palette_widget.sigActivated.emit("Dropout")
    assert window.autosaver.save_now()
    other = new_window(settings="settings2.ini")  # same recovery folder, as two Convas processes have
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes)
    other.offer_recovery()
    assert not asked, "a running window's autosave is not a crash to recover from"
    other.palette_widget.sigActivated.emit("Dense")
    assert other.autosaver.save_now() and other.autosaver.design_path != window.autosaver.design_path
    window.autosaver.discard()  # the first window saves or closes cleanly
    assert other.autosaver.design_path.is_file() and not window.autosaver.design_path.exists()


def test_declining_recovery_deletes_the_left_behind_file(new_window, tmp_path, monkeypatch):
    crash_a_window(tmp_path / "recovery")
    window = new_window()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    window.offer_recovery()
    assert window.document.design.name == "seed_cnn"
    assert not list((tmp_path / "recovery").glob("recovery*"))


def test_closing_with_unsaved_changes_asks_and_cancel_keeps_the_window(window, monkeypatch):
    window.palette_widget.sigActivated.emit("Dense")
    asked = []

    def cancel(*args, **kwargs):
        asked.append(args[1:3])
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "question", cancel)
    window.close()
    assert asked and window.isVisible()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    assert window.close()


def test_examples_menu_opens_each_example_valid(window):
    from engine.examples import example_names

    examples = [a for a in window.examples_menu.actions()]
    assert len(examples) == len(example_names()) == 9
    for action in examples:
        action.trigger()
        assert window.document.analysis.valid, action.text()
        assert not window.isWindowModified()


def test_auto_layout_is_one_undoable_step(window):
    design = window.document.design
    for node in design.nodes.values():
        node.position = (0.0, 0.0)
    window.document.designReset.emit()
    count = window.document.undo_stack.count()
    menu_action(window, "View", "Auto Layout").trigger()
    assert window.document.undo_stack.count() == count + 1
    assert len({n.position for n in design.nodes.values()}) == len(design.nodes)


def test_window_start_does_not_import_tensorflow():
    code = ("import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "from PySide6.QtWidgets import QApplication\n"
            "app = QApplication([])\n"
            "from gui.main_window import MainWindow\n"
            "w = MainWindow(); w.show(); app.processEvents()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**__import__("os").environ, "CONVAS_RECOVERY_DIR": str(ROOT / ".no-such-dir")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_status_bar_reports_problems(window):
    from engine.editing import SetArg

    window.document.edit("bad", [SetArg("conv2d_1", "kernel_size", 15)])
    assert "problem" in window._status_text.text()
    assert not analyse(window.document.design).valid
