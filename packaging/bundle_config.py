"""What goes into the PyInstaller bundle, and what stays out: plain data, so fast tests can check it.

``packaging/build.py`` writes a ``.spec`` file from :func:`spec_text` and runs PyInstaller on it.
Everything that decides the bundle's content (the modules excluded, the files dropped after
analysis, the data files added, the macOS ``Info.plist``, the Windows version resource) lives here
as functions of the platform, not in the generated spec, because the spec can only be checked by
a build that takes many minutes, and these can be checked in milliseconds.

Why each exclusion is safe: Convas imports TensorFlow/Keras, NumPy, scikit-learn (the digits data
set and metrics), ONNX/onnxruntime/tf2onnx and LiteRT (exports and their verification), Optuna
with SQLAlchemy and Alembic (sweeps in a SQLite file), pyqtgraph and the Qt modules QtCore, QtGui,
QtWidgets and QtNetwork (the single-instance QLocalServer), with QtSvg (icons) and QtOpenGL (pyqtgraph's
curves import it). Test frameworks, type checkers,
linters, notebooks, TensorBoard and the Qt modules for QML, 3D, web pages, multimedia, … are
never imported by it; PyInstaller would still follow optional imports into them.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import platform
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script or from the spec: engine must import
    sys.path.insert(0, str(ROOT))

from engine import app_identity as ident  # noqa: E402

LINUX, MACOS, WINDOWS = "linux", "darwin", "win32"

# The windowed executable and, on Windows, its console twin sharing the same _internal folder:
# cmd and PowerShell find `Convas.com` before `Convas.exe` for a bare `Convas …` (PATHEXT lists
# .COM first: the devenv.com trick), so `Convas summary x.convas` prints in the terminal while a
# double-click (Explorer opens the .exe) shows no console window.
BUNDLE_NAME = ident.APP_NAME
CONSOLE_TWIN = f"{ident.APP_NAME}.com"
CONSOLE_BUILD_NAME = f"{ident.APP_NAME}-console"  # PyInstaller adds .exe; build.py renames it to .com

# Whole packages never imported by Convas (PyInstaller would follow optional imports into them).
EXCLUDED_PACKAGES = (
    # development tools in the same virtual environment
    "pytest", "_pytest", "pytestqt", "xdist", "execnet", "hypothesis", "mypy", "mypyc", "ruff",
    "PyInstaller", "setuptools", "pkg_resources", "wheel", "pip",
    # libclang comes with TensorFlow for its own build tools; notebooks and plots are never shown
    "clang", "IPython", "jupyter", "jupyter_client", "ipykernel", "notebook", "matplotlib",
    "tkinter", "_tkinter", "pandas", "torch", "jax",
    # TensorBoard is an optional extra of TensorFlow; Convas draws its own training plots
    "tensorboard", "tensorboard_data_server", "tensorboard_plugin_profile",
    # Keras's other backends (tensorflow.python.debug, tensorflow.tools and keras.src.utils.jax_utils
    # look like candidates but are imported by TensorFlow and Keras themselves)
    "keras.src.backend.jax", "keras.src.backend.torch", "keras.src.backend.openvino",
    "sklearn.externals.array_api_compat.torch", "sklearn.externals.array_api_compat.cupy",
    "sklearn.externals.array_api_compat.dask",
)

# The Qt for Python modules Convas uses; every other PySide6 module is excluded (with its Qt
# libraries and plugins, which PyInstaller's hooks only collect for a module that is bundled).
# QtSvg: the SVG icon engine's library; QtOpenGL: pyqtgraph's curves import it unconditionally
# (QtOpenGLWidgets and QtTest it tries, and uses when there: kept, so it behaves as from source).
QT_MODULES_USED = ("QtCore", "QtGui", "QtWidgets", "QtNetwork", "QtSvg", "QtOpenGL", "QtOpenGLWidgets", "QtTest")
QT_MODULES_ALL = (
    "Qt3DAnimation", "Qt3DCore", "Qt3DExtras", "Qt3DInput", "Qt3DLogic", "Qt3DRender", "QtAxContainer",
    "QtBluetooth", "QtCharts", "QtConcurrent", "QtDBus", "QtDataVisualization", "QtDesigner", "QtGraphs",
    "QtGraphsWidgets", "QtHelp", "QtHttpServer", "QtLocation", "QtMultimedia", "QtMultimediaWidgets",
    "QtNetworkAuth", "QtNfc", "QtPdf", "QtPdfWidgets", "QtPositioning",
    "QtPrintSupport", "QtQml",
    "QtQuick", "QtQuick3D", "QtQuickControls2", "QtQuickTest", "QtQuickWidgets", "QtRemoteObjects",
    "QtScxml", "QtSensors", "QtSerialBus", "QtSerialPort", "QtSpatialAudio", "QtSql", "QtStateMachine",
    "QtSvgWidgets", "QtTextToSpeech", "QtUiTools", "QtWebChannel", "QtWebEngineCore",
    "QtWebEngineQuick", "QtWebEngineWidgets", "QtWebSockets", "QtWebView", "QtCanvasPainter",
    *QT_MODULES_USED,
)

# Files dropped from the analysed bundle, by their path inside it ('/' separators, fnmatch
# patterns; '*' crosses '/'). Each would otherwise be collected by a library's hook.
DROPPED_FILES = (
    "tensorflow/include/*",                 # C++ headers for building TensorFlow extensions
    "*/tests/*", "*/test/*", "*/testing/*.py*",
    "PySide6/Qt/translations/*",            # Qt's own dialogs in other languages: Convas is English
    "PySide6/Qt/qml/*",
    "PySide6/Qt/plugins/sqldrivers/*",
    "PySide6/Qt/plugins/multimedia/*",
    "PySide6/Qt/plugins/printsupport/*",
    "PySide6/Qt/plugins/designer/*",
    "PySide6/Qt/plugins/qmltooling/*",
    "PySide6/Qt/plugins/position/*",
    "PySide6/Qt/plugins/virtualkeyboard/*",
    # Linux: the window runs on xcb (X11 and XWayland), Wayland or offscreen; not on a bare
    # framebuffer or VNC, it needs no evdev input, network-state or TLS plugins, and it uses Qt's
    # own style rather than the GTK 3 theme plugin, which would drag in the build machine's GTK,
    # cairo and pango (libraries that every desktop has, in its own, matching versions).
    "PySide6/Qt/plugins/platforms/libqeglfs*", "PySide6/Qt/plugins/platforms/libqlinuxfb*",
    "PySide6/Qt/plugins/platforms/libqvnc*", "PySide6/Qt/plugins/platforms/libqvkkhrdisplay*",
    "PySide6/Qt/plugins/platforms/libqminimalegl*",
    "PySide6/Qt/plugins/egldeviceintegrations/*", "PySide6/Qt/lib/libQt6EglFS*",
    "PySide6/Qt/plugins/generic/*", "PySide6/Qt/plugins/networkinformation/*",
    "PySide6/Qt/plugins/tls/*",
    "PySide6/Qt/plugins/platformthemes/libqgtk3*",
    "libgtk-3.so*", "libgdk-3.so*", "libgdk_pixbuf-2.0.so*", "libatk-1.0.so*", "libatk-bridge-2.0.so*",
    "libatspi.so*", "libcairo.so*", "libcairo-gobject.so*", "libpango-1.0.so*", "libpangocairo-1.0.so*",
    "libpangoft2-1.0.so*", "libepoxy.so*", "libthai.so*", "libdatrie.so*", "libpixman-1.so*",
    "libfribidi.so*",
    "PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin*",
    "PySide6/Qt/plugins/imageformats/libqpdf*", "PySide6/Qt/plugins/imageformats/qpdf*",
    "PySide6/Qt/lib/libQt6Pdf*", "PySide6/Qt/lib/libQt6Quick*", "PySide6/Qt/lib/libQt6Qml*",
    "PySide6/Qt/lib/libQt6WebEngine*", "PySide6/Qt/lib/libQt6VirtualKeyboard*",
    "PySide6/Qt6Pdf*", "PySide6/Qt6Quick*", "PySide6/Qt6Qml*", "PySide6/Qt6WebEngine*",
    "PySide6/Qt6VirtualKeyboard*",
    "PySide6/Qt/lib/QtPdf.framework/*", "PySide6/Qt/lib/QtQuick*.framework/*",
    "PySide6/Qt/lib/QtQml*.framework/*", "PySide6/Qt/lib/QtVirtualKeyboard.framework/*",
    "*.pyi", "*/__pycache__/*", "*/include/*.h",
)

# What must survive every filter: the default data set (scikit-learn's digits), the examples, the
# icons and desktop files, the migrations Optuna's SQLite storage checks, Qt's platform plugins.
KEPT_FILES = (
    "sklearn/datasets/data/digits.csv.gz",
    "sklearn/datasets/descr/digits.rst",
    "resources/examples/seed_cnn.convas",
    "resources/icons/convas-256.png",
    "resources/icons/convas.svg",
    "optuna/storages/_rdb/alembic.ini",
    "optuna/storages/_rdb/alembic/env.py",
    "PySide6/Qt/plugins/platforms/libqxcb.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so",
    "PySide6/Qt/plugins/imageformats/libqsvg.so",
    "PySide6/Qt/plugins/iconengines/libqsvgicon.so",
    "tensorflow/libtensorflow_cc.so.2",
    "onnxruntime/capi/libonnxruntime.so.1",
)

# Our own packages are imported lazily (the window and the CLI import most modules inside the
# functions that need them), so PyInstaller's import scan misses some: collect them whole.
# tf2onnx registers its converters by importing every module of tf2onnx.onnx_opset.
COLLECTED_PACKAGES = ("engine", "gui", "tf2onnx")
# Packages whose Python source is bundled beside the compiled modules: TensorFlow's AutoGraph
# reads the source of the functions it converts (Keras's and TensorFlow's own, and Convas's),
# and without it prints "AutoGraph could not transform …" warnings in every export.
WITH_SOURCE = ("keras", "tensorflow", "engine")
HIDDEN_IMPORTS = (
    "keras._tf_keras.keras",          # tf.keras's lazy loader imports it by name
    "tf2onnx", "onnx", "onnxruntime",  # exports import them inside functions
    "optuna.storages._rdb.models",
    "sqlalchemy.dialects.sqlite",
    "sklearn.datasets", "sklearn.metrics",
)


# Distributions whose metadata (version) the bundle must carry: Help → About reads the Keras and
# TensorFlow versions with importlib.metadata, which finds nothing PyInstaller did not copy.
METADATA = ("keras", "tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel",
            "onnx", "onnxruntime", "tf2onnx", "optuna", "scikit-learn", "numpy")


def installed_distributions(names: tuple[str, ...] = METADATA) -> list[str]:
    """Those of ``names`` that are installed (TensorFlow goes by several names)."""
    from importlib import metadata

    found = []
    for name in names:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def excluded_modules() -> list[str]:
    """Module names PyInstaller must not follow imports into (it drops their submodules too)."""
    qt = [f"PySide6.{name}" for name in QT_MODULES_ALL if name not in QT_MODULES_USED]
    return [*EXCLUDED_PACKAGES, *qt]


def is_dropped(dest: str) -> bool:
    """Whether a file that analysis put at ``dest`` (its path inside the bundle) is left out."""
    dest = dest.replace("\\", "/")
    return any(fnmatch.fnmatchcase(dest, pattern) for pattern in DROPPED_FILES)


def data_files(root: Path = ROOT, system: str = sys.platform) -> list[tuple[str, str]]:
    """``(source, folder in the bundle)`` pairs of the data files PyInstaller adds beside the
    modules: Convas's resources at the paths engine.app_identity and engine.examples compute
    (``<bundle>/_internal/resources/…``), and files hooks miss."""
    pairs = [(root / "resources" / "examples", "resources/examples"),
             (root / "resources" / "icons", "resources/icons")]
    return [(str(source), folder) for source, folder in pairs if source.is_dir()]


def package_folder(name: str) -> Path:
    """Where an installed top-level package lives, found without importing it (seconds for these)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{name} is not installed: run `uv sync` first", name=name)
    return Path(next(iter(spec.submodule_search_locations)))


def library_data() -> list[tuple[str, str]]:
    """Library files the hooks miss, as ``(source, folder)`` pairs (needs the libraries installed):
    scikit-learn's digits (the default data set), Optuna's Alembic scripts (its SQLite storage
    reads them to check the schema version)."""
    sk = package_folder("sklearn") / "datasets"
    rdb = package_folder("optuna") / "storages" / "_rdb"
    return [
        (str(sk / "data" / "digits.csv.gz"), "sklearn/datasets/data"),
        (str(sk / "descr" / "digits.rst"), "sklearn/datasets/descr"),
        (str(rdb / "alembic.ini"), "optuna/storages/_rdb"),
        (str(rdb / "alembic"), "optuna/storages/_rdb/alembic"),
    ]


def info_plist() -> dict[str, Any]:
    """The macOS bundle's Info.plist entries, from engine.app_identity: the application, its
    document type (``.convas`` opened by Convas as its owner) and the exported type identifier."""
    return {
        "CFBundleName": ident.APP_NAME,
        "CFBundleDisplayName": ident.APP_NAME,
        "CFBundleIdentifier": ident.APP_ID,
        "CFBundleShortVersionString": ident.APP_VERSION,
        "CFBundleVersion": ident.APP_VERSION,
        "CFBundleExecutable": BUNDLE_NAME,
        "CFBundlePackageType": "APPL",
        "CFBundleIconFile": ident.ICON_ICNS.name,
        "NSHighResolutionCapable": True,
        "NSPrincipalClass": "NSApplication",
        "LSApplicationCategoryType": "public.app-category.developer-tools",
        "LSMinimumSystemVersion": "11.0",
        "CFBundleDocumentTypes": [{
            "CFBundleTypeName": ident.FILE_DESCRIPTION,
            "CFBundleTypeRole": "Editor",
            "LSHandlerRank": "Owner",
            "LSItemContentTypes": [ident.UTI],
            "CFBundleTypeIconFile": ident.ICON_ICNS.name,
        }],
        "UTExportedTypeDeclarations": [{
            "UTTypeIdentifier": ident.UTI,
            "UTTypeDescription": ident.FILE_DESCRIPTION,
            "UTTypeConformsTo": ["public.data"],
            "UTTypeIconFile": ident.ICON_ICNS.name,
            "UTTypeTagSpecification": {
                "public.filename-extension": [ident.EXTENSION.lstrip(".")],
                "public.mime-type": [ident.MIME_TYPE],
            },
        }],
    }


def version_tuple(version: str = ident.APP_VERSION) -> tuple[int, int, int, int]:
    """``0.1.0`` → ``(0, 1, 0, 0)``: Windows wants four numbers (a suffix like ``rc1`` is dropped)."""
    numbers = [int(re.match(r"\d{0,5}", part).group() or 0)  # type: ignore[union-attr]
               for part in version.split(".")[:4]]
    return tuple((numbers + [0, 0, 0, 0])[:4])  # type: ignore[return-value]


def windows_version_info() -> str:
    """The text of PyInstaller's Windows version resource (File → Properties → Details)."""
    v = version_tuple()
    strings = {
        "CompanyName": ident.ORGANIZATION,
        "FileDescription": ident.APP_NAME,
        "FileVersion": ident.APP_VERSION,
        "InternalName": ident.EXECUTABLE,
        "OriginalFilename": f"{BUNDLE_NAME}.exe",
        "ProductName": ident.APP_NAME,
        "ProductVersion": ident.APP_VERSION,
    }
    entries = ",\n          ".join(f"StringStruct({k!r}, {s!r})" for k, s in strings.items())
    return f"""VSVersionInfo(
  ffi=FixedFileInfo(filevers={v}, prodvers={v}, mask=0x3f, flags=0x0, OS=0x40004,
                    fileType=0x1, subtype=0x0, date=(0, 0)),
  kids=[
    StringFileInfo([StringTable('040904B0', [
          {entries}])]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])]),
  ]
)
"""


def inno_defines(dist: Path) -> dict[str, str]:
    """The ``/D`` definitions build.py hands Inno Setup for packaging/convas.iss: the installer's
    file association uses the same ProgID, extension and MIME type as ``--install-desktop-entry``."""
    return {
        "AppName": ident.APP_NAME,
        "AppVersion": ident.APP_VERSION,
        "AppPublisher": ident.ORGANIZATION,
        "AppId": ident.APP_ID,
        "ProgId": ident.WINDOWS_PROG_ID,
        "Extension": ident.EXTENSION,
        "MimeType": ident.MIME_TYPE,
        "FileDescription": ident.FILE_DESCRIPTION,
        "DistDir": str(dist),
        "IconFile": str(ident.ICON_ICO),
    }


def icon_for(system: str) -> Path | None:
    """The icon file the executable (Windows) or the .app (macOS) carries; None on Linux, where
    the window sets its own icon and the desktop entry names the PNGs."""
    if system.startswith(WINDOWS):
        return ident.ICON_ICO
    if system.startswith(MACOS):
        return ident.ICON_ICNS
    return None


def folder_size(path: Path) -> int:
    """Bytes of all regular files under ``path`` (symbolic links counted once, as links)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def human(size: int) -> str:
    return f"{size / 1024 ** 2:,.0f} MiB"


def arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def archive_name(system: str = sys.platform) -> str:
    """``Convas-0.1.0-linux-x86_64.tar.gz`` and its macOS/Windows zip twins."""
    if system.startswith(LINUX):
        return f"{ident.APP_NAME}-{ident.APP_VERSION}-linux-{arch()}.tar.gz"
    kind = "macos" if system.startswith(MACOS) else "windows"
    return f"{ident.APP_NAME}-{ident.APP_VERSION}-{kind}-{arch()}.zip"


def spec_text(system: str = sys.platform, root: Path = ROOT, version_file: Path | None = None,
              trim: bool = True) -> str:
    """The PyInstaller ``.spec`` for ``system``: one-folder bundle ``dist/Convas`` of ``main.py``,
    plus on Windows a console twin in the same folder, and on macOS ``dist/Convas.app``.
    ``trim=False`` keeps everything PyInstaller finds (to measure what trimming saves)."""
    windows, macos = system.startswith(WINDOWS), system.startswith(MACOS)
    icon = icon_for(system)
    icon_arg = repr([str(icon)]) if icon is not None and icon.is_file() else "None"
    version_arg = repr(str(version_file)) if windows and version_file is not None else "None"
    lines = [
        "# Generated by packaging/build.py from packaging/bundle_config.py: edit those, not this file.",
        "import sys",
        f"sys.path.insert(0, {str(root / 'packaging')!r})",
        f"sys.path.insert(0, {str(root)!r})",
        "from PyInstaller.utils.hooks import collect_submodules, copy_metadata",
        "import bundle_config as bc",
        "",
        "hidden = list(bc.HIDDEN_IMPORTS)",
        "for package in bc.COLLECTED_PACKAGES:",
        "    hidden += collect_submodules(package)",
        "metadata = [pair for name in bc.installed_distributions() for pair in copy_metadata(name)]",
        "a = Analysis(",
        f"    [{str(root / 'main.py')!r}],",
        f"    pathex=[{str(root)!r}],",
        f"    datas=bc.data_files(system={system!r}) + bc.library_data() + metadata,",
        "    hiddenimports=hidden,",
        "    module_collection_mode={name: 'pyz+py' for name in bc.WITH_SOURCE},",
        f"    excludes={'bc.excluded_modules()' if trim else '[]'},",
        "    noarchive=False,",
        ")",
    ]
    if trim:
        lines += [
            "a.binaries = [entry for entry in a.binaries if not bc.is_dropped(entry[0])]",
            "a.datas = [entry for entry in a.datas if not bc.is_dropped(entry[0])]",
        ]
    lines += [
        "pyz = PYZ(a.pure)",
        "",
        "exe = EXE(",
        "    pyz, a.scripts, [],",
        "    exclude_binaries=True,",
        f"    name={BUNDLE_NAME!r},",
        "    debug=False, strip=False, upx=False,",
        f"    console={not (windows or macos)!r},  # Linux: one executable for the window and the terminal",
        f"    icon={icon_arg},",
        f"    version={version_arg},",
        ")",
    ]
    executables = ["exe"]
    if windows:
        lines += [
            "console_exe = EXE(",
            "    pyz, a.scripts, [],",
            "    exclude_binaries=True,",
            f"    name={CONSOLE_BUILD_NAME!r},  # renamed to {CONSOLE_TWIN} by build.py",
            "    debug=False, strip=False, upx=False,",
            "    console=True,",
            f"    icon={icon_arg},",
            f"    version={version_arg},",
            ")",
        ]
        executables.append("console_exe")
    lines += [
        f"coll = COLLECT({', '.join(executables)}, a.binaries, a.datas, strip=False, upx=False,",
        f"               name={BUNDLE_NAME!r})",
    ]
    if macos:
        lines += [
            "app = BUNDLE(",
            "    coll,",
            f"    name={BUNDLE_NAME + '.app'!r},",
            f"    icon={str(icon) if icon is not None and icon.is_file() else None!r},",
            f"    bundle_identifier={ident.APP_ID!r},",
            f"    version={ident.APP_VERSION!r},",
            "    info_plist=bc.info_plist(),",
            ")",
        ]
    return "\n".join(lines) + "\n"
