"""The window's freezing actions: Freeze / Unfreeze the selection (groups included), Freeze
Backbone, Unfreeze All and Fit Head to Data, in the Edit and Model menus and the canvas's
context menu; and what the Inspector shows for a selection of several layers or groups.

Each action is one undo step made by an engine plan (:func:`engine.editing.plan_set_trainable`,
:func:`engine.heads.plan_fit_head` through :func:`gui.head_fit.fit_head`); this module only
decides what is selected and whether an action can run now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QPoint
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from engine.editing import SetTrainable, plan_set_trainable
from engine.freezing import backbone_nodes, frozen_nodes
from engine.tasks import Task

from .head_fit import FIT_HEAD_TEXT, data_task, fit_head

if TYPE_CHECKING:  # pragma: no cover
    from .main_window import MainWindow

NO_DATA_TIP = ("Load a dataset in the Train panel first: the head is fitted to its classes or "
               "targets")
FIT_HEAD_TIP = ("Set the output layer's units and activation for the loaded data's classes or targets, "
                "or add a head (one undo step)")


class FreezeActions(QObject):
    """The actions, made for ``window`` (its document, scene, inspector and Train panel)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.freeze = self._action("Free&ze", lambda: self.set_selection_trainable(False),
                                   "Keep the selected layers' weights as they are in training")
        self.unfreeze = self._action("U&nfreeze", lambda: self.set_selection_trainable(True),
                                     "Let training change the selected layers' weights again")
        self.freeze_backbone = self._action(
            "Freeze &Backbone", self.freeze_the_backbone,
            "Freeze every layer before the head (the layers after the last global pooling or Flatten)")
        self.unfreeze_all = self._action("&Unfreeze All", self.unfreeze_everything,
                                         "Let training change every layer's weights")
        self.fit_head = self._action(FIT_HEAD_TEXT, self.fit_head_to_data, FIT_HEAD_TIP)
        self.context_menu: QMenu | None = None   # the last one shown (tests reach its actions)
        scene, session = window.scene, window.train_panel.session
        # The window calls selection_changed when the selected layers change (it also tells the
        # Summary); a change of the selected groups only is heard here.
        scene.sigGroupsSelected.connect(lambda _groups: self.selection_changed())
        scene.sigContextMenu.connect(self.show_context_menu)
        window.document.analysed.connect(self.update_actions)
        session.sigDataLoaded.connect(lambda _loaded: self.update_actions())
        session.sigDataFailed.connect(lambda _message: self.update_actions())
        self.update_actions()

    def _action(self, text: str, slot: Any, tip: str) -> QAction:
        action = QAction(text, self.window)
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    # --- state --------------------------------------------------------------------------------

    def selected(self) -> list[str]:
        """The layers the selection covers (a group's card or frame: all its layers)."""
        return self.window.scene.selected_layers()

    def dataset(self) -> Any:
        return self.window.train_panel.session.dataset

    def task(self) -> Task | None:
        """The task the Train panel trains (its choice, else the one the data suggests)."""
        dataset = self.dataset()
        if dataset is None:
            return None
        chosen = self.window.document.training.config.task
        try:
            return self.window.train_panel.session.choose_task(chosen)
        except Exception:  # noqa: BLE001 - the design's output is unknown: go by the data
            return chosen or data_task(dataset)

    def update_actions(self) -> None:
        design = self.window.document.design
        chosen = self.selected()
        nodes = design.nodes
        self.freeze.setEnabled(any(nodes[n].trainable for n in chosen))
        self.unfreeze.setEnabled(any(not nodes[n].trainable for n in chosen))
        self.unfreeze_all.setEnabled(bool(frozen_nodes(design)))
        self.freeze_backbone.setEnabled(any(nodes[n].trainable for n in backbone_nodes(design)))
        has_data = self.dataset() is not None
        self.fit_head.setEnabled(has_data)
        tip = FIT_HEAD_TIP if has_data else NO_DATA_TIP  # a disabled action says why
        self.fit_head.setToolTip(tip)
        self.fit_head.setStatusTip(tip)

    def selection_changed(self) -> None:
        """Show the selection in the Inspector: one layer's form, or the sum of a group's (or of
        several layers') with its Trainable switch."""
        scene, inspector = self.window.scene, self.window.inspector
        layers, groups = scene.selected_node_names(), scene.selected_group_names()
        if len(layers) == 1 and not groups:
            inspector.show_node(layers[0])
        elif len(groups) == 1 and not layers:
            inspector.show_layers(scene.selected_layers(), f"Group {groups[0]}", group=groups[0])
        elif layers or groups:
            covered = scene.selected_layers()
            inspector.show_layers(covered, f"{len(covered)} layers selected")
        else:
            inspector.show_node(None)
        self.update_actions()

    # --- the actions --------------------------------------------------------------------------

    def _tell(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 6000)

    def set_selection_trainable(self, trainable: bool) -> None:
        """Edit → Freeze / Unfreeze: the selected layers and groups, one undo step."""
        names = self.selected()
        if not names:
            self._tell(f"Select the layers or groups to {'unfreeze' if trainable else 'freeze'} first")
            return
        self._set(names, trainable)

    def freeze_the_backbone(self) -> None:
        names = sorted(backbone_nodes(self.window.document.design))
        if not names:
            self._tell("This design has no backbone to freeze: no layer comes before its head")
            return
        self._set(names, False, "the backbone")

    def unfreeze_everything(self) -> None:
        self._set(sorted(frozen_nodes(self.window.document.design)), True, "all layers")

    def _set(self, names: list[str], trainable: bool, what: str | None = None) -> None:
        document = self.window.document
        ops = plan_set_trainable(document.design, names, trainable)
        verb = "Unfreeze" if trainable else "Freeze"
        what = what or (names[0] if len(names) == 1 else f"{len(names)} layers")
        if not ops:
            self._tell(f"Nothing to {verb.lower()}: {what} {'train' if trainable else 'are frozen'} already")
            return
        document.edit(f"{verb} {what}", ops)
        count = sum(len(op.names) for op in ops if isinstance(op, SetTrainable))
        self._tell(f"{'Unfroze' if trainable else 'Froze'} {count} layer{'s' if count != 1 else ''}")

    def fit_head_to_data(self) -> None:
        """Model → Fit Head to Data, with the Train panel's loaded dataset: one undo step."""
        why = fit_head(self.window.document, self.dataset(), self.task())
        self._tell(why if why is not None else "Fitted the head to the data (Ctrl+Z undoes it)")

    # --- the context menu -----------------------------------------------------------------------

    def build_context_menu(self) -> QMenu:
        """What a right-click on the canvas offers, for the selection it made."""
        self.update_actions()
        window = self.window
        menu = QMenu(window)
        menu.setToolTipsVisible(True)
        menu.addActions([window.act_cut, window.act_copy, window.act_paste, window.act_delete])
        menu.addSeparator()
        menu.addActions([self.freeze, self.unfreeze])
        menu.addSeparator()
        menu.addActions([self.freeze_backbone, self.fit_head])
        return menu

    def show_context_menu(self, screen: QPoint) -> None:
        if self.context_menu is not None:
            self.context_menu.deleteLater()
        self.context_menu = self.build_context_menu()
        self.context_menu.popup(screen)
