"""The designer window: palette, canvas, inspector, summary, training, menus, files and autosave."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QEvent, QRect, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import (
    QAction, QActionGroup, QCloseEvent, QGuiApplication, QKeySequence, QResizeEvent, QScreen, QShowEvent,
)
from PySide6.QtWidgets import (
    QApplication, QDockWidget, QFileDialog, QFrame, QInputDialog, QLabel, QMainWindow, QMessageBox,
    QScrollArea, QSizePolicy, QUndoView, QWidget,
)

from engine.design import Design
from engine.editing import (
    Arrange, EditRefused, OnNode, Op, apply_all, plan_delete, plan_paste, plan_place, plan_rename,
)
from engine.errors import ConvasError
from engine.examples import example_names, example_title, load_example, seed_design
from engine.grouping import arrange, group_problem, plan_ungroup
from engine.project_file import load_project, save_project
from engine.summary import human_bytes, human_count
from engine.sweep_settings import SweepSettings
from engine.system_recent import add_recent as add_system_recent
from engine.training import TrainingSettings
from engine.weights import WeightsKind, WeightsSource, WeightsUse, resolve_weights

from .autosave import Autosaver, RecoveryError
from .canvas import GraphScene, GraphView
from .clipboard import nodes_from_mime, nodes_to_mime
from .document import Document
from .evaluation import EvaluationPanel
from .freeze_actions import FreezeActions
from .inspector import InspectorWidget
from .palette import PaletteWidget
from .problems_panel import ProblemCountLabel, ProblemsWidget
from .start_dialog import StartDialog
from .summary_panel import SummaryWidget
from .sweep.panel import SweepPanel
from .theme import ERROR_COLOR, OK_COLOR, THEME_KEY, WARNING_COLOR, Theme, apply_theme, saved_theme
from .training.panel import TrainPanel
from .training.session import STOP_TIMEOUT_S
from .undo_shortcuts import UndoShortcutRouter
from .widgets import ElidedLabel, sentence
from .workers import wait_all as wait_for_workers

if TYPE_CHECKING:  # pragma: no cover - typing only
    from engine.keras_import import UnsupportedLayer

PROJECT_FILTER = "Convas projects (*.convas)"
KERAS_FILTER = "Keras models (*.keras *.json)"
MAX_RECENT = 8
OVERVIEW_KEY = "canvas/overview"  # View → Show Overview, remembered between runs

# Window geometry and dock layout, saved on close and restored on start. Bump LAYOUT_VERSION
# when the docks change so much that an old layout would be worse than the default.
GEOMETRY_KEY = "window/geometry"
FRAME_KEY = "window/frame"  # the normal frame rectangle, to check it against today's screens
STATE_KEY = "window/state"
LAYOUT_VERSION = 1
DEFAULT_SIZE = QSize(1440, 900)
SCREEN_SHARE = 0.9  # a first window takes at most this share of the screen's free area


# How many unsupported layers the "Opened with unsupported layers" message names one by one.
_UNSUPPORTED_SHOWN = 8


def unsupported_warnings(unsupported: Sequence[UnsupportedLayer]) -> list[str]:
    """What the user reads after opening a model with layers Convas does not know: they are on
    the canvas as grey "unsupported" cards, the model cannot be trained or exported until each is
    replaced, and why each one is unsupported."""
    if not unsupported:
        return []
    count = "1 layer" if len(unsupported) == 1 else f"{len(unsupported)} layers"
    shown = "\n".join(f"• {u}" for u in unsupported[:_UNSUPPORTED_SHOWN])
    more = len(unsupported) - _UNSUPPORTED_SHOWN
    if more > 0:
        shown += f"\n… and {more} more (see the Problems panel)"
    return [f"{count} of this model are not layers Convas knows. They are shown as grey "
            "“unsupported” cards, with every other layer analysed around them; replace or delete "
            "each before training or exporting.\n\n" + shown]


def default_geometry(available: QRect) -> QRect:
    """The window's default rectangle on a screen whose free area is ``available``: its
    preferred size, at most 90 % of that area, centred in it."""
    width = min(DEFAULT_SIZE.width(), int(available.width() * SCREEN_SHARE))
    height = min(DEFAULT_SIZE.height(), int(available.height() * SCREEN_SHARE))
    rect = QRect(0, 0, width, height)
    rect.moveCenter(available.center())
    return rect


def _screen_showing(frame: QRect) -> QScreen | None:
    """The screen that shows enough of ``frame`` to grab its title bar, if any."""
    for screen in QGuiApplication.screens():
        shared = screen.availableGeometry().intersected(frame)
        if shared.width() >= 100 and shared.height() >= 50 and shared.top() <= frame.top() + 10:
            return screen
    return None


class _Filler(QWidget):
    """Holds one widget that fills it, and reports that widget's sizes except height-for-width:
    a scroll area around a word-wrapping panel then scrolls only below the panel's minimum,
    not whenever it is shorter than the panel would like."""

    def __init__(self, content: QWidget) -> None:
        super().__init__()
        self.content = content
        content.setParent(self)

    def sizeHint(self) -> QSize:
        return self.content.sizeHint()

    def minimumSizeHint(self) -> QSize:
        hint, explicit = self.content.minimumSizeHint(), self.content.minimumSize()
        return QSize(explicit.width() or hint.width(), explicit.height() or hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.content.setGeometry(self.rect())
        super().resizeEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:  # the panel's sizes changed
            self.updateGeometry()
        return super().event(event)


def shrinkable(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area, so that a dock can be made smaller than the
    widget's minimum size (it scrolls then) and no panel forces the window past the screen."""
    scroll = QScrollArea()
    scroll.setWidget(_Filler(widget))
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.viewport().setAutoFillBackground(False)
    scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # not a stop for Tab, and keys stay with the panel
    return scroll


class MainWindow(QMainWindow):
    def __init__(self, document: Document | None = None, settings: QSettings | None = None,
                 autosave_dir: Path | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("Convas", "Convas")
        self.theme = saved_theme(self.settings)
        apply_theme(self.theme)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_system_scheme_changed)
        self.document = document or Document(seed_design())
        self.setWindowIcon(QApplication.windowIcon())

        self.scene = GraphScene(self.document, self)
        self.view = GraphView(self.scene)
        self.setCentralWidget(self.view)
        self.palette_widget = PaletteWidget()
        self.inspector = InspectorWidget(self.document)
        self.summary = SummaryWidget(self.document)
        self.train_panel = TrainPanel(self.document, self.settings)
        self._saved_model: Any = None  # the trained model whose weights the project file holds
        self.evaluation = EvaluationPanel()
        self.sweep_panel = SweepPanel(self.document)
        self.problems = ProblemsWidget(self.document)
        self.undo_view = QUndoView(self.document.undo_stack)
        self.undo_view.setEmptyLabel("Opened")
        self._docks: dict[str, QDockWidget] = {}
        self._dock("Layers", self.palette_widget, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Inspector", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("History", self.undo_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Summary", self.summary, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Train", self.train_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Evaluation", self.evaluation, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Sweep", self.sweep_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Problems", self.problems, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._docks["Problems"].hide()  # opened from the status bar's problem count
        self.tabifyDockWidget(self._docks["Inspector"], self._docks["History"])
        self._docks["Inspector"].raise_()
        self._train_tabified = False  # see showEvent
        self._default_state: QByteArray | None = None  # the dock layout before any restore

        self._status_dot = QLabel()
        self._status_text = ProblemCountLabel()
        self._status_totals = ElidedLabel()  # long; shortens with "…" rather than widen the window
        self._status_totals.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._status_totals.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self._status_text.setMinimumWidth(1)  # an explicit minimum lets both lines shrink
        self._status_totals.setMinimumWidth(1)
        self.statusBar().addWidget(self._status_dot)
        self.statusBar().addWidget(self._status_text, 1)
        self.statusBar().addPermanentWidget(self._status_totals)

        self._build_actions()
        self._build_menus()
        self._connect()
        self.autosaver = Autosaver(self.document, autosave_dir, parent=self)
        self._update_title()
        self._update_status()
        self._restore_geometry()
        QTimer.singleShot(0, self.view.fit_to_view)

    # --- construction ---------------------------------------------------------------------

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(shrinkable(widget))
        self.addDockWidget(area, dock)
        self._docks[title] = dock

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.act_new = self._action("&New", self.new_file, K.New,
                                    "Start a new design: empty, from an example or from a template")
        self.act_open = self._action("&Open…", self.open_dialog, K.Open)
        self.act_import = self._action("&Import Keras Model…", self.import_dialog, "Ctrl+I",
                                       "Read a .keras or Keras JSON architecture (no code is run)")
        self.act_export = self._action("&Export…", self.export_dialog, "Ctrl+E",
                                       "Write a verified .keras, SavedModel, TFLite, ONNX or Python file")
        self.act_save = self._action("&Save", self.save, K.Save)
        self.act_save_as = self._action("Save &As…", self.save_as, K.SaveAs)
        self.act_revert = self._action("&Revert", self.revert, None, "Reload the file from disk")
        self.act_quit = self._action("&Quit", self.close, K.Quit)
        self.act_undo = self.document.undo_stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcuts(K.Undo)
        self.act_redo = self.document.undo_stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts(K.Redo)
        self.act_cut = self._action("Cu&t", self.cut, K.Cut)
        self.act_copy = self._action("&Copy", self.copy, K.Copy)
        self.act_paste = self._action("&Paste", self.paste, K.Paste)
        self.act_duplicate = self._action("&Duplicate", self.duplicate, "Ctrl+D")
        self.act_delete = self._action("&Delete", self.delete_selection,
                                       [QKeySequence(K.Delete), QKeySequence("Backspace")])
        self.act_rename = self._action("Re&name…", self.rename_selected, "F2")
        self.act_select_all = self._action("Select &All", self.select_all, K.SelectAll)
        self.act_zoom_in = self._action("Zoom &In", self.view.zoom_in, [QKeySequence(K.ZoomIn), QKeySequence("Ctrl+=")])
        self.act_zoom_out = self._action("Zoom &Out", self.view.zoom_out, K.ZoomOut)
        self.act_zoom_reset = self._action("&Actual Size", self.view.reset_zoom, "Ctrl+0")
        self.act_fit = self._action("&Fit to Window", self.view.fit_to_view, "Ctrl+Shift+F")
        self.act_layout = self._action("Auto &Layout", self.auto_layout, "Ctrl+L",
                                       "Arrange the layers top to bottom")
        self._build_group_actions()
        self.freezing = FreezeActions(self)  # Freeze, Unfreeze, Freeze Backbone, Fit Head to Data
        find = self.view.find_bar
        self.act_find = self._action("&Find…", find.open_bar, K.Find,
                                     "Find a layer or group on the canvas by name or layer type")
        self.act_find_next = self._action("Find &Next", find.find_next, [QKeySequence("F3")])
        self.act_find_previous = self._action("Find Pre&vious", find.find_previous, [QKeySequence("Shift+F3")])
        self.act_overview = self._action("Show &Overview", self.set_overview_shown,
                                         tip="A map of the whole design in the canvas's corner")
        self.act_overview.setCheckable(True)
        self.act_overview.setChecked(str(self.settings.value(OVERVIEW_KEY, "true")).lower() == "true")
        self.view.minimap.set_wanted(self.act_overview.isChecked())
        self.act_reset_layout = self._action("&Reset Layout", self.reset_layout,
                                             tip="Put every panel back where it started and resize the window")
        self.act_show_training = self._action("Training &Panel", self.show_training_panel, "Ctrl+Shift+T",
                                              "Show the data, settings and curves of training")
        self.act_show_sweep = self._action("S&weep Panel", self.show_sweep_panel, "Ctrl+Shift+W",
                                           "Search the design's ranges for the most accurate design for its cost")
        self.act_forget_weights = self._action(
            "&Forget Saved Weights", self.forget_weights,
            tip="Train and export from fresh weights instead of the imported or saved ones")
        panel = self.train_panel
        panel.act_train.setShortcut(QKeySequence("F5"))
        panel.act_train.triggered.connect(self.show_training_panel)
        panel.act_stop.setShortcut(QKeySequence("Shift+F5"))
        for action in (self.act_cut, self.act_copy, self.act_paste, self.act_duplicate, self.act_delete,
                       self.act_rename, self.act_select_all, self.act_zoom_in, self.act_zoom_out,
                       self.act_zoom_reset, self.act_fit, self.act_layout):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.view.addAction(action)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        file.addAction(self.act_new)
        self.act_new_pretrained = file.addAction("New from &Pretrained…", self.new_from_pretrained)
        self.act_new_pretrained.setStatusTip("Start from a keras.applications network, with ImageNet weights "
                                             "or your own")
        file.addAction(self.act_open)
        self.recent_menu = file.addMenu("Open &Recent")
        self.examples_menu = file.addMenu("&Examples")
        for name in example_names():
            act = self.examples_menu.addAction(example_title(name))
            act.setData(name)
            act.triggered.connect(lambda _=False, n=name: self.open_example(n))
        file.addSeparator()
        file.addActions([self.act_save, self.act_save_as, self.act_revert])
        file.addSeparator()
        file.addAction(self.act_import)
        file.addAction(self.act_export)
        file.addSeparator()
        file.addAction(self.act_quit)
        self._rebuild_recent()

        edit = bar.addMenu("&Edit")
        edit.addActions([self.act_undo, self.act_redo])
        edit.addSeparator()
        edit.addActions([self.act_cut, self.act_copy, self.act_paste, self.act_duplicate, self.act_delete])
        edit.addSeparator()
        edit.addActions([self.act_rename, self.act_select_all])
        edit.addSeparator()
        edit.addActions([self.act_group, self.act_ungroup])
        edit.addSeparator()
        edit.addActions([self.freezing.freeze, self.freezing.unfreeze])
        edit.addSeparator()
        edit.addActions([self.act_find, self.act_find_next, self.act_find_previous])

        model = bar.addMenu("&Model")
        model.setToolTipsVisible(True)  # a disabled Fit Head to Data says why
        model.addActions([self.freezing.freeze, self.freezing.unfreeze, self.freezing.freeze_backbone,
                          self.freezing.unfreeze_all])
        model.addSeparator()
        model.addAction(self.freezing.fit_head)

        view = bar.addMenu("&View")
        view.addActions([self.act_zoom_in, self.act_zoom_out, self.act_zoom_reset, self.act_fit])
        view.addAction(self.act_overview)
        view.addSeparator()
        view.addAction(self.act_layout)
        view.addActions([self.act_expand_groups, self.act_collapse_groups])
        view.addSeparator()
        for dock in self._docks.values():
            view.addAction(dock.toggleViewAction())
        view.addAction(self.act_reset_layout)
        view.addSeparator()
        theme_menu = view.addMenu("&Theme")
        self.theme_group = QActionGroup(self)
        self.theme_actions: dict[Theme, QAction] = {}
        for theme in Theme:
            act = theme_menu.addAction(theme.label)
            act.setCheckable(True)
            act.setChecked(theme is self.theme)
            act.setData(theme.value)
            act.triggered.connect(lambda _=False, t=theme: self.set_theme(t))
            self.theme_group.addAction(act)
            self.theme_actions[theme] = act

        train = bar.addMenu("&Train")
        train.addAction(self.act_show_training)
        train.addAction(self.act_show_sweep)
        train.addSeparator()
        train.addActions([self.train_panel.act_train, self.train_panel.act_pause, self.train_panel.act_stop])
        train.addSeparator()
        train.addAction(self.act_forget_weights)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("&About Convas", self.about))

    def _connect(self) -> None:
        doc = self.document
        doc.analysed.connect(self._update_status)
        doc.modifiedChanged.connect(lambda _m: self._update_title())
        doc.pathChanged.connect(self._update_title)
        doc.designReset.connect(lambda: QTimer.singleShot(0, self.view.fit_to_view))
        self.scene.sigSelectionChanged.connect(self._on_selection)
        self.scene.sigMessage.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.summary.sigNodeClicked.connect(self._select_from_summary)
        self.problems.sigNodeClicked.connect(self._select_and_centre)
        self._status_text.sigClicked.connect(self.show_problems)
        # Ctrl+Z / Ctrl+Shift+Z undo the design from every panel (see gui/undo_shortcuts.py).
        self._undo_router = UndoShortcutRouter(self)
        app = QApplication.instance()
        assert app is not None, "the window is made by a running application"
        app.installEventFilter(self._undo_router)
        self.palette_widget.sigActivated.connect(self.add_layer)
        self.train_panel.sigStatusMessage.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.train_panel.sigTrainingStarted.connect(self.show_training_panel)
        self.train_panel.sigTrainingStarted.connect(self.evaluation.clear)
        self.train_panel.sigTrainingFinished.connect(self.evaluation.set_result)
        self.document.weightsChanged.connect(self._update_weights_action)
        self._update_weights_action()
        # Trained weights are unsaved work: closing asks first, and Save keeps them beside it.
        self.train_panel.sigTrainingFinished.connect(lambda *_: self.document.mark_unsaved())
        self.document.designReset.connect(self.evaluation.clear)
        # Imported or saved weights can be evaluated without training first.
        self._evaluate_weights_pending = False
        self.document.weightsChanged.connect(lambda: self.evaluation.offer_weights(self.document.weights))
        self.evaluation.sigEvaluateWeights.connect(self.evaluate_kept_weights)
        self.train_panel.session.sigDataLoaded.connect(self._evaluate_when_data_loaded)
        self.train_panel.session.sigDataFailed.connect(self._evaluate_when_data_loaded)
        self.evaluation.offer_weights(self.document.weights)
        self._docks["Train"].visibilityChanged.connect(self._on_train_dock_visibility)
        self.sweep_panel.sigStatusMessage.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.sweep_panel.sigSaveRequested.connect(self.save)
        self.sweep_panel.sigSweepStarted.connect(self.show_sweep_panel)
        self._docks["Sweep"].visibilityChanged.connect(
            lambda visible: self.sweep_panel.activate_when_seen() if visible else None)

    def _on_train_dock_visibility(self, visible: bool) -> None:
        if visible:
            self.train_panel.activate_when_seen()

    # --- status ---------------------------------------------------------------------------

    def _update_title(self) -> None:
        self.setWindowTitle(f"Convas — {self.document.title()}[*]")
        self.setWindowModified(self.document.modified)

    def _update_status(self) -> None:
        a = self.document.analysis
        errors, warnings = len(a.errors), len(a.warnings)
        if errors:
            hint = a.design_problems[0].message if a.design_problems else "click to list them"
            color, text = ERROR_COLOR, f"{errors} problem{'s' if errors != 1 else ''} — {hint}"
        elif warnings:
            color, text = WARNING_COLOR, f"Valid, {warnings} warning{'s' if warnings != 1 else ''}"
        else:
            color, text = OK_COLOR, "Valid"
        self._status_dot.setText(f"<span style='color:{color}; font-size:14px'>●</span>")
        self._status_text.setText(text)
        unknown = len(a.unsupported)
        plus = f" + {unknown} unsupported layer{'s' if unknown != 1 else ''} unknown" if unknown else ""
        self._status_totals.setText(
            f"{a.total_params:,} parameters{plus} · {human_bytes(a.weight_bytes)} weights · "
            f"{human_count(a.macs)} MACs · {human_bytes(a.activation_bytes)} activations (batch {a.batch_size})")

    def _on_selection(self, names: list[str]) -> None:
        self.freezing.selection_changed()  # the Inspector: one layer, or a group's sum
        self.summary.select_node(names[0] if len(names) == 1 else None)

    def show_problems(self) -> None:
        """Open the Problems panel (beside the Summary the first time)."""
        dock = self._docks["Problems"]
        if dock.isHidden() and not dock.isFloating():
            self.tabifyDockWidget(self._docks["Summary"], dock)
        dock.show()
        dock.raise_()

    def _select_and_centre(self, name: str) -> None:
        """A problem was clicked: reveal, select and centre its layer at a readable zoom."""
        self.view.show_layer(name)

    def _select_from_summary(self, name: str) -> None:
        """A Summary row was picked: the canvas shows that layer the same way."""
        self.view.show_layer(name)

    def set_overview_shown(self, shown: bool) -> None:
        """View → Show Overview: the minimap in the canvas's corner, remembered."""
        self.view.minimap.set_wanted(shown)
        self.settings.setValue(OVERVIEW_KEY, "true" if shown else "false")

    # --- editing --------------------------------------------------------------------------

    def _view_centre(self) -> tuple[float, float]:
        centre = self.view.mapToScene(self.view.viewport().rect().center())
        return (centre.x(), centre.y())

    def add_layer(self, kind: str) -> None:
        """Palette double-click/Enter: append after the selected layer, else add at the centre
        (the same rule as a drop: :func:`engine.editing.plan_place`)."""
        selected = self.scene.selected_node_names()
        centre = self._view_centre()
        target = OnNode(selected[0]) if len(selected) == 1 else centre
        try:
            plan = plan_place(self.document.design, kind, target, centre,
                              input_range=self.document.training.pixel_range)
        except EditRefused as exc:
            self.statusBar().showMessage(str(exc), 5000)
            return
        self.document.edit(plan.text, plan.ops)
        self.scene.select_nodes([plan.name] if plan.name else [])

    def delete_selection(self) -> None:
        names = self.scene.selected_layers()  # a selected group's card or frame takes its layers
        edges = self.scene.selected_edges()
        if not names and not edges:
            return
        what = f"Delete {names[0]}" if len(names) == 1 and not edges else "Delete selection"
        self.document.edit(what, plan_delete(self.document.design, names, edges))

    def copy(self) -> None:
        names = self.scene.selected_layers()
        if names:
            QGuiApplication.clipboard().setMimeData(nodes_to_mime(self.document.design, names))

    def cut(self) -> None:
        names = self.scene.selected_layers()
        if names:
            self.copy()
            self.document.edit("Cut", plan_delete(self.document.design, names))

    def paste(self) -> None:
        nodes = nodes_from_mime(QGuiApplication.clipboard().mimeData())
        if not nodes:
            self.statusBar().showMessage("The clipboard holds no layers", 3000)
            return
        ops, names = plan_paste(self.document.design, nodes)
        self.document.edit(f"Paste {len(names)} layer{'s' if len(names) != 1 else ''}", ops)
        self.scene.select_nodes(names)

    def duplicate(self) -> None:
        names = self.scene.selected_layers()
        if not names:
            return
        nodes = nodes_from_mime(nodes_to_mime(self.document.design, names))
        ops, new = plan_paste(self.document.design, nodes)
        self.document.edit("Duplicate", ops)
        self.scene.select_nodes(new)

    def rename_selected(self) -> None:
        names = self.scene.selected_node_names()
        if len(names) != 1:
            return
        old = names[0]
        new, ok = QInputDialog.getText(self, "Rename layer", "New name:", text=old)
        new = new.strip()
        if not ok or not new or new == old:
            return
        try:  # the design's one rule for names: valid characters, not taken
            plan = plan_rename(self.document.design, old, new)
        except EditRefused as exc:
            QMessageBox.warning(self, "Rename layer", sentence(str(exc)))
            return
        self.document.edit(plan.text, plan.ops)

    def select_all(self) -> None:
        self.scene.select_nodes(list(self.document.design.nodes))

    def auto_layout(self) -> None:
        """Lay the design out as it is shown (collapsed groups as one card): one Arrange step."""
        design = self.document.design
        op = arrange(design)
        positions = tuple((n, p) for n, p in op.positions if design.nodes[n].position != p)
        groups = tuple((g, p) for g, p in op.group_positions if design.groups[g].position != p)
        if positions or groups:
            self.document.edit("Auto layout", [Arrange(positions, groups)])
        QTimer.singleShot(0, self.view.fit_to_view)

    # --- groups -----------------------------------------------------------------------------

    def _build_group_actions(self) -> None:
        self.act_group = self._action("&Group Selection…", self.group_selection, "Ctrl+G",
                                      "Put the selected layers in a named group that can be collapsed")
        self.act_ungroup = self._action("&Ungroup", self.ungroup_selection, "Ctrl+Shift+G",
                                        "Dissolve the selected group; its layers stay")
        self.act_expand_groups = self._action("&Expand All Groups", lambda: self.set_all_groups_collapsed(False),
                                              tip="Show every layer of every group")
        self.act_collapse_groups = self._action("&Collapse All Groups", lambda: self.set_all_groups_collapsed(True),
                                                tip="Show each group as one card")
        for action in (self.act_group, self.act_ungroup):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.view.addAction(action)

    def group_selection(self) -> None:
        """Edit → Group Selection: ask for a name (a fresh one offered), then one undo step."""
        names = self.scene.selected_layers()
        if not names:
            self.statusBar().showMessage("Select the layers to group first", 5000)
            return
        design = self.document.design
        name = design.unique_group_name("group")
        while True:
            name, ok = QInputDialog.getText(self, "Group layers", f"Name of the group of {len(names)} "
                                            f"layer{'s' if len(names) != 1 else ''}:", text=name)
            name = name.strip()
            if not ok:
                return
            problem = group_problem(design, name)
            if problem is None:
                break
            QMessageBox.warning(self, "Group layers", sentence(problem))
        self.scene.group_layers(names, name)

    def ungroup_selection(self) -> None:
        """Edit → Ungroup: dissolve the selected groups (or the innermost group of the one
        selected layer) in one undo step."""
        groups = self.scene.selected_group_names()
        if not groups:
            layers = self.scene.selected_node_names()
            inner = self.document.design.nodes[layers[0]].group if len(layers) == 1 else None
            groups = [inner] if inner is not None else []
        if not groups:
            self.statusBar().showMessage("Select a group to ungroup: its card, or its frame's header", 5000)
            return
        ops: list[Op] = []
        trial = self.document.design.copy()
        for group in groups:  # each plan on the design the previous ones leave
            step = plan_ungroup(trial, group)
            apply_all(trial, step)
            ops += step
        self.document.edit(f"Ungroup {groups[0]}" if len(groups) == 1 else f"Ungroup {len(groups)} groups", ops)

    def set_all_groups_collapsed(self, collapsed: bool) -> None:
        """View → Expand All Groups / Collapse All Groups: one undo step."""
        groups = list(self.document.design.groups)
        if not self.scene.set_groups_collapsed(groups, collapsed):
            self.statusBar().showMessage("There are no groups to " + ("collapse" if collapsed else "expand")
                                         if not groups else "Nothing to change", 3000)
            return
        QTimer.singleShot(0, self.view.fit_to_view)

    # --- files ----------------------------------------------------------------------------

    def maybe_save(self) -> bool:
        """Stop a running training and ask about unsaved changes; False when the user cancels."""
        if not self.stop_training_first("open another design"):
            return False
        if not self.document.modified:
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes", f"Save the changes to “{self.document.title()}” before closing it?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def choose_start_design(self) -> Design | None:
        """The start dialog: a new design (empty, an example, a template), or None if cancelled
        or when the choice was a pretrained network (then New from Pretrained… takes over)."""
        dialog = StartDialog(self)
        if dialog.exec() != StartDialog.DialogCode.Accepted:
            return None
        if dialog.wants_pretrained():
            self.new_from_pretrained()
            return None
        return dialog.design()

    def new_file(self) -> None:
        """Ask what to start from, then replace the design (after asking about unsaved work)."""
        design = self.choose_start_design()
        if design is None or not self.maybe_save():
            return
        self.document.reset(design)
        self.autosaver.discard()

    def new_from_pretrained(self) -> None:
        """File → New from Pretrained…: open the design the dialog creates, with its weights, as
        a new untitled document (after asking about unsaved work)."""
        from .pretrained_dialog import PretrainedDialog

        dialog = PretrainedDialog(self)
        created = dialog.created if dialog.exec() == PretrainedDialog.DialogCode.Accepted else None
        if created is None or not self.maybe_save():
            return
        self.document.reset(created.design, None, None, created.weights)
        self.autosaver.discard()
        self.statusBar().showMessage(created.message, 10000)
        if created.unsupported:
            QMessageBox.warning(self, f"Created {created.design.name}",
                                "\n\n".join(unsupported_warnings(created.unsupported)))

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open design", self._last_dir(),
                                              f"{PROJECT_FILTER};;{KERAS_FILTER};;All files (*)")
        if path:
            self.open_path(Path(path), ask=False)

    def open_path(self, path: Path, ask: bool = True) -> bool:
        """Open a .convas project (or import a Keras file). A bad file leaves the design untouched."""
        if ask and not self.maybe_save():
            return False
        path = Path(path)
        try:
            if path.suffix.lower() in (".keras", ".json", ".zip"):
                from engine.embedded_design import read_metadata
                from engine.files import has_weights, load_design_report
                from engine.pixel_range import of_metadata

                design, unsupported = load_design_report(path)
                training, doc_path, warnings = None, None, unsupported_warnings(unsupported)
                sweep = None
                weights = WeightsSource.imported(path) if has_weights(path) else None
                trained_on = of_metadata(read_metadata(path))  # the pixels the model expects
                if trained_on is not None:
                    training = {"pixel_range": trained_on.value}
            else:
                project = load_project(path)
                design, training, doc_path = project.design, project.training, path
                weights, warnings, sweep = project.weights, project.warnings, project.sweep
        except ConvasError as exc:
            self._error("Cannot open file", str(exc))
            return False
        except OSError as exc:
            self._error("Cannot open file", f"{path.name}: {exc.strerror or exc}")
            return False
        settings, unusable = TrainingSettings.from_saved(training)  # the file's dict, typed here
        sweep_settings, sweep_unusable = SweepSettings.from_saved(sweep)
        self.document.reset(design, doc_path, settings, weights, training_error=unusable,
                            sweep=sweep_settings, sweep_error=sweep_unusable)
        self.autosaver.discard()
        self._add_recent(path)
        if warnings:
            QMessageBox.warning(self, f"Opened {path.name}", "\n\n".join(warnings))
        return True

    def _trained_weights(self) -> WeightsSource | None:
        """The last training run's weights, for the design it trained, if there was a run."""
        session = self.train_panel.session
        if session.result_model is None or session.result_design is None:
            return None
        epochs = session.result.epochs_run if session.result is not None else 0
        data = session.result_dataset.name if session.result_dataset is not None else "the data"
        return WeightsSource.trained(session.result_model, session.result_design,
                                     f"trained on {data} for {epochs} epoch{'s' if epochs != 1 else ''}")

    def export_weights(self) -> WeightsSource:
        """The weights an export takes (:func:`engine.weights.resolve_weights`): the last run's
        when it trained this very design, else the document's (imported or saved, matched by
        layer name), else fresh ones."""
        return resolve_weights(self.document.design, trained=self._trained_weights(),
                               kept=self.document.weights, use=WeightsUse.EXPORT)

    def _update_weights_action(self) -> None:
        kept = self.document.weights
        self.act_forget_weights.setEnabled(kept is not None)
        self.act_forget_weights.setText(f"&Forget Weights of {kept.file.name.replace('&', '&&')}" if kept and kept.file
                                        else "&Forget Saved Weights")

    def forget_weights(self) -> None:
        """Train and export from fresh weights (a save then drops them from the project)."""
        kept = self.document.weights
        if kept is None:
            return
        self.document.set_weights(None)
        design = self.document.design
        start = resolve_weights(design, kept=None, use=WeightsUse.TRAINING)
        self.statusBar().showMessage(f"Forgot {kept.summary()}: training starts from {start.summary()}, "
                                     f"exports take {self.export_weights().summary()}", 8000)

    def export_dialog(self) -> None:
        from engine.project_file import project_to_dict

        from .export_dialog import ExportDialog

        if not self.document.analysis.valid:
            self._error("Cannot export", "The design has problems; fix the layers marked in red first.")
            return
        weights = self.export_weights()
        folder = str(self.document.path.parent) if self.document.path else self._last_dir()
        training = self.document.training.config  # a script's compile() and fit() follow it
        dialog = ExportDialog(self.document.design, weights=weights, folder=folder, training=training,
                              project=project_to_dict(self.document.design, self.document.training.to_dict()),
                              parent=self)
        dialog.exec()

    def import_dialog(self) -> None:
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Import Keras model", self._last_dir(), KERAS_FILTER)
        if path:
            self.open_path(Path(path), ask=False)

    def open_example(self, name: str) -> None:
        if self.maybe_save():
            self.document.reset(load_example(name))

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self._write(self.document.path)

    def save_as(self) -> bool:
        start = str(self.document.path or Path(self._last_dir()) / f"{self.document.design.name}.convas")
        path, _ = QFileDialog.getSaveFileName(self, "Save design", start, PROJECT_FILTER)
        if not path:
            return False
        target = Path(path)
        if target.suffix.lower() != ".convas":
            target = target.with_suffix(".convas")
        return self._write(target)

    def weights_to_save(self) -> WeightsSource | None:
        """The weights a save keeps beside the project (:func:`engine.weights.resolve_weights`):
        the last run's when it trained this very design (written from memory once, then kept as
        a file), else those the document has; None for none."""
        trained = self._trained_weights()
        if trained is not None and trained.model is self._saved_model:
            trained = None  # already the weights file beside the project
        source = resolve_weights(self.document.design, trained=trained, kept=self.document.weights,
                                 use=WeightsUse.SAVE)
        return None if source.kind is WeightsKind.FRESH else source

    def _write(self, path: Path) -> bool:
        weights = self.weights_to_save()
        try:
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                saved = save_project(path, self.document.design, weights=weights, **self.document.project_parts())
            finally:
                QApplication.restoreOverrideCursor()
        except ConvasError as exc:
            self._error("Cannot save", str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 (Keras failing to write the trained model raises many types)
            self._error("Cannot save", f"could not save the trained weights: {exc}")
            return False
        if weights is not None and saved is not None:
            if weights.kind is WeightsKind.TRAINED:
                self._saved_model = weights.model
            self.document.set_weights(WeightsSource.saved(saved, weights.description), saved=True)
        self.document.set_path(path)
        self.document.mark_saved()
        self.autosaver.discard()
        self._add_recent(path)
        self.statusBar().showMessage(f"Saved {path.name}", 3000)
        return True

    def revert(self) -> None:
        path = self.document.path
        if path is None or not self.stop_training_first("revert"):
            return
        if self.document.modified:
            answer = QMessageBox.question(self, "Revert", f"Discard your changes and reload “{path.name}”?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.open_path(path, ask=False)

    def offer_recovery(self) -> None:
        """At start: if a window that is gone left autosaved work, offer to restore it."""
        left = self.autosaver.left_behind()
        if left is None:
            return
        answer = QMessageBox.question(
            self, "Recover unsaved work",
            "Convas did not close normally last time. Restore the unsaved design it autosaved?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        if answer == QMessageBox.StandardButton.Yes:
            self.restore_recovery()
        else:
            self.autosaver.forget(left)

    def restore_recovery(self) -> bool:
        try:
            project, source, left = self.autosaver.recover()
        except RecoveryError as exc:
            self._error("Cannot recover", f"The autosaved design is unreadable: {exc}")
            self.autosaver.forget(exc.path)
            return False
        except ConvasError:
            return False  # nothing left behind (another window recovered it meanwhile)
        settings, unusable = TrainingSettings.from_saved(project.training)
        sweep_settings, sweep_unusable = SweepSettings.from_saved(project.sweep)
        self.document.reset(project.design, source, settings, training_error=unusable,
                            sweep=sweep_settings, sweep_error=sweep_unusable)
        self.document.mark_unsaved()
        if self.autosaver.save_now():  # this window's own recovery file holds it now
            self.autosaver.forget(left)
        return True

    def _add_recent(self, path: Path) -> None:
        recent = [p for p in self._recent() if p != str(path)]
        recent.insert(0, str(path))
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self.settings.setValue("last_dir", str(path.parent))
        self._rebuild_recent()
        add_system_recent(path)  # the desktop's own list too (file choosers, the Dock, jump lists)

    def _recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):  # QSettings gives one stored item as a plain string
            value = [value]
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else []

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        recent = self._recent()
        for p in recent:
            act = self.recent_menu.addAction(Path(p).name.replace("&", "&&"))  # "&" marks a mnemonic
            act.setToolTip(p)
            act.setStatusTip(p)
            act.triggered.connect(lambda _=False, path=p: self.open_path(Path(path)))
        self.recent_menu.setEnabled(bool(recent))

    def _last_dir(self) -> str:
        return str(self.settings.value("last_dir", str(Path.home())))

    def _error(self, title: str, message: str) -> None:
        QMessageBox.critical(self, title, message)

    def about(self) -> None:
        """Help → About Convas: the icon, name and version, the versions underneath, and where
        settings, autosave and the log live. Window-modal, without a nested event loop."""
        from .about_dialog import AboutDialog
        from .app import log_path

        log = log_path()
        locations = [("Settings", self.settings.fileName()),
                     ("Autosave and recovery", str(self.autosaver.folder)),
                     ("Log of internal errors", str(log) if log is not None else "none (no cache folder)")]
        dialog = AboutDialog(locations, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.about_dialog = dialog
        dialog.open()

    def bring_forward(self) -> None:
        """Show this window above the others and give it the focus (as far as the window
        system lets an application take it)."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    def open_requested(self, path: Path) -> bool:
        """A file the desktop asked this running Convas to open (a second ``convas FILE``, a
        double-click, Finder): the window comes forward and opens it as File → Open does,
        asking first about unsaved changes."""
        self.bring_forward()
        return self.open_path(path, ask=True)

    # --- training -------------------------------------------------------------------------

    def show_training_panel(self) -> None:
        dock = self._docks["Train"]
        dock.show()
        dock.raise_()
        wanted = min(340, self.height() // 2)  # room for the curves, but the canvas stays usable
        if dock.height() < wanted - 10:
            self.resizeDocks([dock], [wanted], Qt.Orientation.Vertical)

    def show_sweep_panel(self) -> None:
        dock = self._docks["Sweep"]
        dock.show()
        dock.raise_()
        wanted = min(380, self.height() // 2)  # room for the scatter and the table
        if dock.height() < wanted - 10:
            self.resizeDocks([dock], [wanted], Qt.Orientation.Vertical)

    def stop_sweep_first(self, verb: str) -> bool:
        """Before closing: ask to stop a running sweep and wait for it; False when the user
        cancels or it does not stop in time. The trial it was training is trained again first
        when the study resumes."""
        panel = self.sweep_panel
        if not panel.is_running():
            return True
        box = QMessageBox(QMessageBox.Icon.Question, "A sweep is running",
                          f"A sweep is running. Stop it and {verb}? The trial it is training is trained "
                          "again first when you resume the sweep.", QMessageBox.StandardButton.Cancel, self)
        stop = box.addButton(f"Stop and {verb.split()[0]}", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is not stop:
            return False
        self.statusBar().showMessage("Stopping the sweep…")
        if panel.stop_and_wait(STOP_TIMEOUT_S):
            self.statusBar().clearMessage()
            return True
        QMessageBox.warning(self, "The sweep is still running",
                            f"The sweep did not stop within {STOP_TIMEOUT_S:.0f} s. Try again in a moment.")
        return False

    def evaluate_kept_weights(self) -> None:
        """Evaluate the design's imported or saved weights on the Train panel's data (loaded
        first when it is not there yet)."""
        weights = self.document.weights
        if weights is None:
            return
        session = self.train_panel.session
        self.train_panel.activate()  # loads the data for the design, off the GUI thread
        if session.is_loading():
            self._evaluate_weights_pending = True
            return
        if session.dataset is None:
            self.show_training_panel()
            self.statusBar().showMessage("Choose data that fits the design in the Train panel first", 8000)
            return
        self.evaluation.evaluate_weights(weights, self.document.design, session.dataset)

    def _evaluate_when_data_loaded(self, _loaded_or_error: Any) -> None:
        if self._evaluate_weights_pending and not self.train_panel.session.is_loading():
            self._evaluate_weights_pending = False
            self.evaluate_kept_weights()

    def stop_training_first(self, verb: str) -> bool:
        """Before closing or replacing the design: ask to stop a running training and wait for it
        (events keep flowing); False when the user cancels or it does not stop in time."""
        session = self.train_panel.session
        if not session.is_training():
            return True
        if not self.ask_stop_training(verb):
            return False
        self.statusBar().showMessage("Stopping training…")
        if session.stop_and_wait(STOP_TIMEOUT_S):
            self.statusBar().clearMessage()
            return True
        QMessageBox.warning(self, "Training is still running",
                            f"Training did not stop within {STOP_TIMEOUT_S:.0f} s. Try again in a moment.")
        return False

    def ask_stop_training(self, verb: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, "Training is running",
                          f"Training is running. Stop it and {verb}?", QMessageBox.StandardButton.Cancel, self)
        stop = box.addButton(f"Stop and {verb.split()[0]}", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is stop

    # --- window ---------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._train_tabified:
            # Qt 6.11 leaves a second, orphaned tab bar on screen when a second group of docks is
            # tabified before the window is first shown; once shown, tabifying is clean.
            self._train_tabified = True
            self.tabifyDockWidget(self._docks["Summary"], self._docks["Train"])
            self.tabifyDockWidget(self._docks["Train"], self._docks["Evaluation"])
            self.tabifyDockWidget(self._docks["Evaluation"], self._docks["Sweep"])
            self._docks["Summary"].raise_()
            self._default_dock_sizes()
            self._default_state = self.saveState(LAYOUT_VERSION)
            state = self.settings.value(STATE_KEY)
            if isinstance(state, QByteArray) and not state.isEmpty():
                self.restoreState(state, LAYOUT_VERSION)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.stop_training_first("close") or not self.stop_sweep_first("close") or not self.maybe_save():
            event.ignore()
            return
        wait_for_workers()  # a QThread destroyed while it runs would abort the process
        self.autosaver.discard()
        self.save_layout()
        event.accept()

    # --- layout and theme -----------------------------------------------------------------

    def save_layout(self) -> None:
        """Remember the window's geometry and dock layout for the next start."""
        self.settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self.settings.setValue(FRAME_KEY, self.normalGeometry() if self.isMaximized() else self.frameGeometry())
        if self._default_state is not None:  # never shown: the docks are not arranged yet
            self.settings.setValue(STATE_KEY, self.saveState(LAYOUT_VERSION))

    def reset_layout(self) -> None:
        """View → Reset Layout: the default docks, sizes and window rectangle."""
        if self.isMaximized() or self.isFullScreen():
            self.showNormal()
        self._apply_default_geometry()
        if self._default_state is not None:
            self.restoreState(self._default_state, LAYOUT_VERSION)
            self._default_dock_sizes()

    def _available(self) -> QRect:
        screen = self.screen() or QGuiApplication.primaryScreen()
        return screen.availableGeometry()

    def _apply_default_geometry(self) -> None:
        self.setGeometry(default_geometry(self._available()))

    def _default_dock_sizes(self) -> None:
        """Side and bottom docks in proportion to the window, so a small screen keeps a canvas."""
        width, height = self.width(), self.height()
        self.resizeDocks([self._docks["Layers"], self._docks["Inspector"]],
                         [min(230, max(150, width * 17 // 100)), min(330, max(220, width * 24 // 100))],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self._docks["Summary"]], [min(230, height * 28 // 100)], Qt.Orientation.Vertical)

    def _restore_geometry(self) -> None:
        """The saved window rectangle when it is still on a screen (monitors change), made to fit
        that screen; else the default."""
        saved, frame = self.settings.value(GEOMETRY_KEY), self.settings.value(FRAME_KEY)
        screen = _screen_showing(frame) if isinstance(frame, QRect) else None
        if screen is None or not isinstance(saved, QByteArray) or not self.restoreGeometry(saved):
            self._apply_default_geometry()
            return
        available = screen.availableGeometry()
        if not self.isMaximized() and not available.contains(self.geometry()):
            rect = self.geometry()
            if rect.width() > available.width() or rect.height() > available.height():
                rect.setSize(default_geometry(available).size())  # saved on a larger screen
            rect.moveLeft(max(available.left(), min(rect.left(), available.right() - rect.width())))
            rect.moveTop(max(available.top(), min(rect.top(), available.bottom() - rect.height())))
            self.setGeometry(rect)

    def set_theme(self, theme: Theme) -> None:
        """View → Theme: apply ``theme`` to every widget, card and plot, and remember it."""
        self.theme = theme
        self.settings.setValue(THEME_KEY, theme.value)
        self.theme_actions[theme].setChecked(True)
        apply_theme(theme)

    def _on_system_scheme_changed(self, _scheme: Qt.ColorScheme) -> None:
        if self.theme is Theme.SYSTEM:
            apply_theme(Theme.SYSTEM)


