"""File → New from Pretrained…: pick a ``keras.applications`` architecture, its input size, whether
to keep its ImageNet classifier and where its weights come from; Create builds the design.

Everything slow happens on :mod:`gui.workers` workers and the dialog only reacts to their
signals: the parameters and MACs at the chosen size (:func:`engine.applications.describe`), which
weights file Keras would use and whether Keras's cache has it, which architectures' weights are
cached (the table's last column), a download (with a progress bar and Cancel) and the creation
itself. Requests made while a worker runs are kept, the latest only, and run when it ends.

After ``exec()`` accepts, :attr:`PretrainedDialog.created` holds the
:class:`engine.applications.Created` design for the window to open.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QFont, QGuiApplication, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView, QButtonGroup, QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
    QHBoxLayout, QHeaderView, QLabel, QLineEdit, QProgressBar, QPushButton, QRadioButton, QScrollArea,
    QSpinBox, QSplitter, QTableView, QVBoxLayout, QWidget,
)

from engine import applications as apps
from engine.summary import human_count

from .theme import ERROR_COLOR, OK_COLOR
from .widgets import mute, section_title
from .workers import Cancelled, TaskState, Worker, create_worker

COLUMNS = ["Architecture", "Family", "Params", "Top-1", "Top-5", "Input", "Cached"]
NAME, FAMILY, PARAMS, TOP1, TOP5, SIZE, CACHED = range(len(COLUMNS))
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
UNKNOWN = "—"
WEIGHTS_FILTER = "Keras weights (*.h5 *.weights.h5 *.keras);;All files (*)"


class Weights:
    """The weights choices (the radio buttons' ids)."""

    CACHE, FILE, DOWNLOAD, RANDOM = range(4)


class Details(NamedTuple):
    """What a details worker found for one (architecture, size, classifier) choice."""

    key: tuple[str, int, bool]
    weights_file: apps.WeightsFile | None
    cached: Path | None
    info: apps.AppInfo | None
    problem: str | None


def _import_keras() -> None:
    """Import Keras on this worker thread, TensorFlow's start-up lines kept off the terminal."""
    from engine.quiet_tf import importing_tensorflow

    with importing_tensorflow():
        import keras  # noqa: F401  (the one slow import, paid off the GUI thread)


def details_task(state: TaskState, name: str, size: int, top: bool) -> Generator[Details, None, Details]:
    """The weights file and Keras's cached copy first (quick), then parameters and MACs."""
    _import_keras()
    key = (name, size, top)
    try:
        found = apps.weights_file(name, top, size)
        cached = apps.cached_weights(name, top, size)
    except apps.ApplicationError:
        found, cached = None, None
    yield Details(key, found, cached, None, None)
    state.check()
    try:
        info = apps.describe(name, size, top)
    except apps.ApplicationError as exc:
        return Details(key, found, cached, None, str(exc))
    return Details(key, found, cached, info, None)


def cache_scan_task(state: TaskState) -> Iterator[tuple[str, list[str]]]:
    """For each architecture that may have ImageNet files in Keras's cache, the names of those
    it has. Keras names its files after the architecture (``mobilenet_v2_weights…``,
    ``efficientnetv2-b0_notop.h5``), so only architectures whose name, letters and digits only,
    appears in a cached file's name are asked about: a fresh machine costs nothing."""
    files = apps.keras_cache_files()
    if files:
        _import_keras()
    squeezed = ["".join(c for c in name.lower() if c.isalnum()) for name in files]
    for app in apps.catalogue():
        state.check()
        if not any(app.name.lower() in name for name in squeezed):
            continue
        found = []
        for top in (False, True):
            try:
                fname = apps.weights_file(app.name, top).fname
            except apps.ApplicationError:
                continue
            if fname in files:
                found.append(fname)
        yield app.name, found


def download_task(state: TaskState, name: str, top: bool, size: int) -> Path:
    from engine.downloads import DownloadError, DownloadFailure

    _import_keras()
    try:
        return apps.download_weights(name, top, size, lambda done, total: state.progress((done, total)),
                                     state.is_cancelled)
    except DownloadError as exc:
        if exc.failure is DownloadFailure.CANCELLED:
            raise Cancelled from None
        raise


def create_task(state: TaskState, name: str, size: int, top: bool, weights: Path | None,
                freeze: bool) -> apps.Created:
    _import_keras()
    return apps.create(name, size, top, weights, freeze_backbone=freeze)


def _note(parent: QWidget) -> QLabel:
    """A muted, wrapping line under a choice, indented to its text."""
    label = mute(QLabel(parent))
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setContentsMargins(24, 0, 0, 4)
    return label


def _unfinished(known: Details | None) -> bool:
    """Nothing known yet, or the figures still being computed."""
    return known is None or (known.info is None and known.problem is None)


def _item(text: str, sort: Any = None, align_right: bool = False) -> QStandardItem:
    item = QStandardItem(text)
    item.setEditable(False)
    item.setData(text.lower() if sort is None else sort, SORT_ROLE)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _percent(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value * 100:.1f} %"


def _megabytes(count: int) -> str:
    return f"{count / 1e6:,.0f} MB" if count >= 1e6 else f"{count / 1e3:,.0f} kB"


class PretrainedDialog(QDialog):
    """The architecture table, the choices, a live line of figures and Create."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New from Pretrained Network")
        self.setObjectName("pretrained_dialog")
        self.created: apps.Created | None = None
        self._apps = {app.name: app for app in apps.catalogue()}
        self._details: dict[tuple[str, int, bool], Details] = {}
        self._details_worker: Worker | None = None
        self._details_wanted: tuple[str, int, bool] | None = None
        self._scan_worker: Worker | None = None
        self._job: Worker | None = None  # a download or the creation
        self._local_file: Path | None = None
        self._user_chose = False  # the user picked the weights: no longer chosen for them
        self._pending_create: Path | None = None  # a finished download, to create with
        self._closing = False

        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search architectures (name or family)")
        self.search.setClearButtonEnabled(True)
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(COLUMNS)
        for app in self._apps.values():
            self.model.appendRow(self._row(app))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(NAME, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        header.setMinimumSectionSize(48)
        self.model.horizontalHeaderItem(CACHED).setToolTip("Yes: ImageNet weights in Keras's cache")
        self.model.horizontalHeaderItem(SIZE).setToolTip("The input size the ImageNet weights were trained at")
        self.model.horizontalHeaderItem(PARAMS).setToolTip("Parameters with the ImageNet classifier, as Keras "
                                                           "documents them")
        self.table.setMinimumWidth(240)
        self.table.setToolTip("Top-1 and top-5: ImageNet accuracy as Keras documents it; parameters with "
                              "the classifier, at the default size")

        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.search)
        left_layout.addWidget(self.table, 1)
        self.count_label = mute(QLabel(left))
        left_layout.addWidget(self.count_label)

        # --- the choices for the selected architecture ---
        details = QWidget(self)
        self.title = QLabel(details)
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setBold(True)
        self.title.setFont(font)
        self.documented = mute(QLabel(details))
        self.documented.setWordWrap(True)
        self.size_spin = QSpinBox(details)
        self.size_spin.setRange(apps.SMALLEST, apps.LARGEST)
        self.size_spin.setSuffix(" px")
        # Tracking on: each valid size typed asks for figures; requests made while one is being
        # computed collapse to the latest.
        self.size_note = mute(QLabel(details))
        self.size_note.setWordWrap(True)
        size_row = QHBoxLayout()
        size_row.addWidget(self.size_spin)
        size_row.addWidget(self.size_note, 1)
        self.keep_top = QCheckBox("Keep the ImageNet classifier (1000 classes)", details)
        self.keep_top.setToolTip("Without it the network ends in its last feature map: add a head for your "
                                 "classes, or use it as a backbone")
        self.freeze = QCheckBox("Freeze the backbone (train only the head)", details)
        self.freeze.setToolTip("Every layer before the head keeps its weights in training; unfreeze layers "
                               "or groups later from the canvas")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Input size", size_row)

        self.weights_group = QButtonGroup(self)
        self.weights_cache = QRadioButton("ImageNet weights from Keras's cache", details)
        self.weights_file = QRadioButton("A local file…", details)
        self.weights_download = QRadioButton("Download the ImageNet weights", details)
        self.weights_random = QRadioButton("Random (no weights)", details)
        for button, ident in ((self.weights_cache, Weights.CACHE), (self.weights_file, Weights.FILE),
                              (self.weights_download, Weights.DOWNLOAD), (self.weights_random, Weights.RANDOM)):
            self.weights_group.addButton(button, ident)
        # Under each choice, a muted line that wraps: what was found, the file, the size and host.
        self.cache_note, self.file_label, self.download_note = (_note(details) for _ in range(3))
        self.browse = QPushButton("Choose…", details)
        file_row = QHBoxLayout()
        file_row.addWidget(self.weights_file)
        file_row.addWidget(self.browse)
        file_row.addStretch(1)

        self.figures = QLabel(details)
        self.figures.setWordWrap(True)
        self.figures.setObjectName("pretrained_figures")
        self.computing = QProgressBar(details)
        self.computing.setRange(0, 0)
        self.computing.setTextVisible(False)
        self.computing.setMaximumHeight(6)
        self.computing.setMaximumWidth(120)
        figures_row = QHBoxLayout()
        figures_row.addWidget(self.figures, 1)
        figures_row.addWidget(self.computing, 0, Qt.AlignmentFlag.AlignVCenter)

        details_layout = QVBoxLayout(details)
        details_layout.setContentsMargins(12, 0, 4, 0)
        details_layout.addWidget(self.title)
        details_layout.addWidget(self.documented)
        details_layout.addWidget(section_title("Network", details))
        details_layout.addLayout(form)
        details_layout.addWidget(self.keep_top)
        details_layout.addWidget(self.freeze)
        details_layout.addWidget(section_title("Weights", details))
        details_layout.addWidget(self.weights_cache)
        details_layout.addWidget(self.cache_note)
        details_layout.addLayout(file_row)
        details_layout.addWidget(self.file_label)
        details_layout.addWidget(self.weights_download)
        details_layout.addWidget(self.download_note)
        details_layout.addWidget(self.weights_random)
        details_layout.addWidget(section_title("At this size", details))
        details_layout.addLayout(figures_row)
        details_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidget(details)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumWidth(260)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(left)
        splitter.addWidget(scroll)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter

        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.create_button = self.buttons.addButton("Create", QDialogButtonBox.ButtonRole.AcceptRole)
        self.create_button.setDefault(True)
        self.stop_button = self.buttons.addButton("Cancel Download", QDialogButtonBox.ButtonRole.ActionRole)
        self.stop_button.hide()
        self.create_button.clicked.connect(self.start_create)
        self.stop_button.clicked.connect(self.stop_job)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        self.search.textChanged.connect(self._filter)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._on_architecture())
        self.size_spin.valueChanged.connect(lambda _v: self._on_choice())
        self.keep_top.toggled.connect(lambda _on: self._on_architecture(keep_size=True))
        self.weights_group.buttonClicked.connect(self._on_weights_clicked)
        self.browse.clicked.connect(self.choose_file)
        self.weights_file.clicked.connect(lambda: self.choose_file() if self._local_file is None else None)

        self._fit_to_screen()
        self._filter("")
        self.select("MobileNetV2" if "MobileNetV2" in self._apps else next(iter(self._apps), ""))
        self._scan_cache()

    # --- table ----------------------------------------------------------------------------------

    def _row(self, app: apps.Application) -> list[QStandardItem]:
        doc = app.documented
        name = _item(app.name)
        name.setData(app.name, Qt.ItemDataRole.UserRole)
        name.setToolTip(f"keras.applications.{app.name}")
        cached = _item("", 0)
        cached.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        return [name, _item(app.family),
                _item(f"{doc.params / 1e6:.1f} M" if doc else UNKNOWN, doc.params if doc else -1, True),
                _item(_percent(doc.top1 if doc else None), doc.top1 if doc else -1.0, True),
                _item(_percent(doc.top5 if doc else None), doc.top5 if doc else -1.0, True),
                _item(f"{app.default_size}×{app.default_size}", app.default_size, True), cached]

    def _filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        shown = self.proxy.rowCount()
        self.count_label.setText(f"{shown} of {len(self._apps)} architectures from keras.applications"
                                 if text.strip() else f"{len(self._apps)} architectures from keras.applications")
        if shown and not self.table.selectionModel().hasSelection():
            self.table.selectRow(0)

    def select(self, name: str) -> None:
        """Select the row of ``name`` (for the caller and tests)."""
        for row in range(self.proxy.rowCount()):
            if self.proxy.index(row, NAME).data(Qt.ItemDataRole.UserRole) == name:
                self.table.selectRow(row)
                self.table.scrollTo(self.proxy.index(row, NAME))
                return

    def row_of(self, name: str) -> int:
        """The table row showing ``name`` (-1 when filtered out)."""
        for row in range(self.proxy.rowCount()):
            if self.proxy.index(row, NAME).data(Qt.ItemDataRole.UserRole) == name:
                return row
        return -1

    def current(self) -> apps.Application | None:
        index = self.table.selectionModel().currentIndex()
        if not index.isValid():
            return None
        return self._apps.get(self.proxy.index(index.row(), NAME).data(Qt.ItemDataRole.UserRole))

    def _scan_cache(self) -> None:
        worker = create_worker(cache_scan_task, name="convas-weights-cache", failure="Reading Keras's cache failed",
                               start=False)
        worker.sigProgress.connect(self._on_cached)
        self._scan_worker = worker.start()

    def _on_cached(self, found: tuple[str, list[str]]) -> None:
        name, files = found
        for row in range(self.model.rowCount()):
            if self.model.item(row, NAME).data(Qt.ItemDataRole.UserRole) == name:
                item = self.model.item(row, CACHED)
                item.setText("Yes" if files else "")
                item.setData(1 if files else 0, SORT_ROLE)
                item.setToolTip("In Keras's cache: " + ", ".join(files) if files else "")

    # --- choices --------------------------------------------------------------------------------

    def input_size(self) -> int:
        return self.size_spin.value()

    def key(self) -> tuple[str, int, bool] | None:
        app = self.current()
        return (app.name, self.input_size(), self.keep_top.isChecked()) if app is not None else None

    def _on_architecture(self, keep_size: bool = False) -> None:
        app = self.current()
        if app is None:
            return
        doc = app.documented
        self.title.setText(app.name)
        if doc is not None:
            depth = f" · depth {doc.depth}" if doc.depth else ""
            self.documented.setText(f"{app.family} · ImageNet top-1 {_percent(doc.top1)}, top-5 {_percent(doc.top5)}"
                                    f" · {doc.params / 1e6:.1f} M parameters{depth} (as Keras documents it)")
        else:
            self.documented.setText(f"{app.family} · Keras documents no ImageNet accuracy for it")
        top = self.keep_top.isChecked()
        self.size_spin.blockSignals(True)
        self.size_spin.setMinimum(app.default_size if top else app.min_size)
        self.size_spin.setMaximum(app.default_size if top else apps.LARGEST)
        if top or not keep_size:
            self.size_spin.setValue(app.default_size)
        self.size_spin.blockSignals(False)
        self.size_spin.setEnabled(not top)
        self._note_size(app)
        self._on_choice()

    def _note_size(self, app: apps.Application) -> None:
        side = f"× {self.input_size()} × 3"
        self.size_note.setText(f"{side} · the classifier needs {app.default_size}×{app.default_size}"
                               if self.keep_top.isChecked()
                               else f"{side} · at least {app.min_size}, trained at {app.default_size}")

    def _on_choice(self) -> None:
        app = self.current()
        key = self.key()
        if app is None or key is None:
            return
        self._note_size(app)
        self._show_details()
        if _unfinished(self._details.get(key)):
            self._request_details(key)

    def _request_details(self, key: tuple[str, int, bool]) -> None:
        self._details_wanted = key
        if self._details_worker is not None:
            return  # the latest request runs when this one ends
        self._details_wanted = None
        worker = create_worker(details_task, *key, name="convas-pretrained-details",
                               failure="Could not build the architecture", start=False)
        worker.sigProgress.connect(self._on_details)
        worker.sigFinished.connect(self._on_details)
        worker.sigFailed.connect(lambda message, k=key: self._on_details(Details(k, None, None, None, message)))
        worker.sigEnded.connect(self._on_details_ended)
        self._details_worker = worker.start()

    def _on_details(self, details: Details | None) -> None:
        if details is None:
            return
        self._details[details.key] = details
        if details.key == self.key():
            if not self._user_chose and details.cached is not None:
                self.weights_cache.setChecked(True)  # ImageNet weights when Keras has them
            self._show_details()

    def _on_details_ended(self) -> None:
        self._details_worker = None
        wanted = self._details_wanted
        self._details_wanted = None
        if self._closing:
            return
        if wanted is not None and _unfinished(self._details.get(wanted)):
            self._request_details(wanted)
        self._show_details()

    def is_computing(self) -> bool:
        """True while the figures of the current choice are not known yet."""
        key = self.key()
        return key is not None and _unfinished(self._details.get(key))

    def _show_details(self) -> None:
        app = self.current()
        key = self.key()
        if app is None or key is None:
            return
        known = self._details.get(key)
        size, top = key[1], key[2]
        self.computing.setVisible(_unfinished(known))
        problem = app.size_problem(size, top)
        if problem is not None:
            self.figures.setText(problem)
            self.figures.setStyleSheet(f"color: {ERROR_COLOR};")
        elif known is not None and known.problem is not None:
            self.figures.setText(known.problem)
            self.figures.setStyleSheet(f"color: {ERROR_COLOR};")
        elif known is not None and known.info is not None:
            info = known.info
            self.figures.setText(f"{info.params:,} parameters · {human_count(info.macs)} MACs per image · "
                                 f"{info.layers} layers")
            self.figures.setStyleSheet("")
        else:
            self.figures.setText(f"Computing parameters and MACs at {size}×{size}…")
            self.figures.setStyleSheet("")
        # The weights choices, as far as they are known.
        found = known.weights_file if known is not None else None
        cached = known.cached if known is not None else None
        folder = apps.keras_cache_folders()[0]
        if known is None:
            self.cache_note.setText("Looking in Keras's cache…")
        elif cached is not None:
            self.cache_note.setText(f"Found {cached}")
        else:
            self.cache_note.setText(f"Not found in {folder}")
        self.weights_cache.setEnabled(cached is not None)
        host = found.host if found is not None else "storage.googleapis.com"
        size_text = ""
        if top and app.documented is not None:
            size_text = f"{app.documented.size_mb} MB "
        elif known is not None and known.info is not None:
            size_text = f"≈ {_megabytes(known.info.params * 4)} "
        self.download_note.setText(f"{size_text}from {host}, into {folder}; only when you press Create")
        self.download_note.setToolTip(found.origin if found is not None else "")
        self.weights_download.setEnabled(found is not None or known is None)
        self.file_label.setText(str(self._local_file) if self._local_file else "No file chosen")
        checked = self.weights_group.checkedId()
        if checked == -1 or (checked == Weights.CACHE and cached is None and known is not None):
            self.weights_random.setChecked(True)

    def _on_weights_clicked(self, _button: QRadioButton) -> None:
        self._user_chose = True

    def choose_file(self) -> None:
        """Pick a weights file (Keras's ``.h5`` or ``.weights.h5``, or a ``.keras`` model)."""
        start = str(self._local_file.parent if self._local_file else apps.keras_cache_folders()[0])
        path, _ = QFileDialog.getOpenFileName(self, "Choose weights for this architecture", start, WEIGHTS_FILTER)
        if path:
            self._local_file = Path(path)
            self._user_chose = True
            self.weights_file.setChecked(True)
        elif self._local_file is None and self.weights_file.isChecked():
            self.weights_random.setChecked(True)
        self._show_details()

    # --- creating -------------------------------------------------------------------------------

    def _error(self, message: str) -> None:
        self.status.setStyleSheet(f"color: {ERROR_COLOR};")
        self.status.setText(message)

    def _say(self, message: str, color: str = "") -> None:
        self.status.setStyleSheet(f"color: {color};" if color else "")
        self.status.setText(message)

    def start_create(self) -> None:
        """Create with the choices made (downloading first when asked)."""
        app = self.current()
        if app is None or self._job is not None:
            return
        size, top = self.input_size(), self.keep_top.isChecked()
        problem = app.size_problem(size, top)
        if problem is not None:
            self._error(problem)
            return
        choice = self.weights_group.checkedId()
        known = self._details.get((app.name, size, top))
        if choice == Weights.CACHE:
            cached = known.cached if known is not None else apps.cached_weights(app.name, top, size)
            if cached is None:
                self._error("Keras's cache has no ImageNet weights for this choice; download them or choose a file")
                return
            self._create(cached)
        elif choice == Weights.FILE:
            if self._local_file is None:
                self._error("Choose the weights file first (A local file… → Choose…)")
                return
            self._create(self._local_file)
        elif choice == Weights.DOWNLOAD:
            self._download(app.name, top, size)
        else:
            self._create(None)

    def _set_busy(self, busy: bool, downloading: bool = False) -> None:
        for widget in (self.table, self.search, self.size_spin, self.keep_top, self.freeze, self.browse,
                       self.weights_cache, self.weights_file, self.weights_download, self.weights_random,
                       self.create_button):
            widget.setEnabled(not busy)
        if not busy:
            self._on_architecture(keep_size=True)
        self.progress.setVisible(busy)
        self.stop_button.setVisible(busy and downloading)
        self.stop_button.setEnabled(busy and downloading)

    def _download(self, name: str, top: bool, size: int) -> None:
        self.progress.setRange(0, 0)
        self.progress.setFormat("Connecting…")
        self._say("Downloading ImageNet weights into Keras's cache…")
        self._set_busy(True, downloading=True)
        worker = create_worker(download_task, name, top, size, name="convas-download", failure="Download failed",
                               start=False)
        worker.sigProgress.connect(self._on_download_progress)
        worker.sigFinished.connect(self._create_after_download)
        worker.sigCancelled.connect(lambda: self._say("Download cancelled; nothing was kept."))
        worker.sigFailed.connect(self._error)
        worker.sigEnded.connect(self._on_job_ended)
        self._job = worker.start()

    def _on_download_progress(self, value: tuple[int, int | None]) -> None:
        done, total = value
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.progress.setFormat(f"{_megabytes(done)} of {_megabytes(total)}")
        else:
            self.progress.setFormat(f"{_megabytes(done)}")

    def _create_after_download(self, path: Path) -> None:
        self._pending_create = path

    def stop_job(self) -> None:
        """Cancel the running download (it stops within one chunk)."""
        if self._job is not None:
            self._job.cancel()
            self.stop_button.setEnabled(False)
            self._say("Cancelling…")

    def _create(self, weights: Path | None) -> None:
        app = self.current()
        if app is None:
            return
        size, top = self.input_size(), self.keep_top.isChecked()
        self.progress.setRange(0, 0)
        self.progress.setFormat("")
        loaded = f"the weights of {weights.name}" if weights is not None else "random weights"
        self._say(f"Building {app.name} at {size}×{size} with {loaded}…")
        self._set_busy(True)
        worker = create_worker(create_task, app.name, size, top, weights, self.freeze.isChecked(),
                               name="convas-pretrained-create", failure="Could not create the design", start=False)
        worker.sigFinished.connect(self._on_created)
        worker.sigFailed.connect(self._error)
        worker.sigEnded.connect(self._on_job_ended)
        self._job = worker.start()

    def _on_created(self, created: apps.Created) -> None:
        self.created = created
        self._say(created.message, OK_COLOR)

    def _on_job_ended(self) -> None:
        self._job = None
        pending, self._pending_create = self._pending_create, None
        if self._closing:
            return
        if self.created is not None:
            self.accept()
            return
        if pending is not None:
            self._details.clear()  # the cache now holds the file
            self._create(pending)
            return
        self._set_busy(False)

    def is_busy(self) -> bool:
        """A download or the creation is running."""
        return self._job is not None

    def reject(self) -> None:
        """Close; a running download is cancelled (its partial file removed)."""
        self._closing = True
        if self._job is not None:
            self._job.cancel()
        for worker in (self._details_worker, self._scan_worker):
            if worker is not None:
                worker.cancel()
        super().reject()

    def _fit_to_screen(self) -> None:
        screen = self.screen() or QGuiApplication.primaryScreen()
        available = screen.availableGeometry() if screen is not None else None
        width, height = 1080, 640
        if available is not None:
            width = min(width, int(available.width() * 0.92))
            height = min(height, int(available.height() * 0.9))
        self.resize(width, height)
        # A narrow screen (or a large scale factor) gives the choices half: the table scrolls.
        share = 0.6 if width >= 900 else 0.48
        self.table.setColumnHidden(FAMILY, width < 900)  # the name says it; the figures matter more
        self.splitter.setSizes([int(width * share), int(width * (1 - share))])
