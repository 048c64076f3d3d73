"""Starting from a pretrained network: the architectures of ``keras.applications`` as a catalogue.

:func:`catalogue` lists every model function ``keras.applications`` exports, read from Keras's
own ``keras/applications/__init__.py`` (as data, so listing imports no TensorFlow): a Keras
version that adds an architecture adds an entry. What Keras documents of each one (ImageNet
top-1 and top-5 accuracy, parameters, depth) comes from :data:`DOCUMENTED`, a copy of the table
on keras.io; an architecture missing from it still lists, its figures unknown (None, shown "—").

:func:`describe` gives parameters and multiply-accumulates at a chosen input size, by building
the architecture with ``weights=None``, importing its ``to_json()`` and analysing the design (the
numbers Convas shows for any design); it is slow for big networks, so it is cached and meant to
be called off the GUI thread. :func:`weights_file` says which file Keras would download for the
ImageNet weights, without downloading it (Keras is asked, and stopped at the download);
:func:`cached_weights` finds that file in Keras's own cache. :func:`create` builds the design
with the weights of a file the user has, ready for the window or the command line.

Keras is imported only inside functions.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .design import Design
from .errors import ConvasError, first_line
from .weights import WeightsKind, WeightsSource


class ApplicationError(ConvasError):
    """An architecture, input size or weights file that cannot be used; the message says why
    and what to choose instead."""


class Documented(NamedTuple):
    """What Keras's documentation says of an architecture (with its ImageNet classifier)."""

    top1: float       # ImageNet validation top-1 accuracy, 0–1
    top5: float
    params: int       # approximate, as the table rounds it
    depth: int | None
    size_mb: int      # the weights file with the classifier


# The "Available models" table of https://keras.io/api/applications/ (keras-team/keras-io,
# templates/api/applications/index.md): size (MB), top-1, top-5, parameters, depth. ConvNeXt
# and MobileNetV3 are not in that table; they list with unknown figures.
DOCUMENTED: dict[str, Documented] = {
    "Xception": Documented(0.790, 0.945, 22_900_000, 81, 88),
    "VGG16": Documented(0.713, 0.901, 138_400_000, 16, 528),
    "VGG19": Documented(0.713, 0.900, 143_700_000, 19, 549),
    "ResNet50": Documented(0.749, 0.921, 25_600_000, 107, 98),
    "ResNet50V2": Documented(0.760, 0.930, 25_600_000, 103, 98),
    "ResNet101": Documented(0.764, 0.928, 44_700_000, 209, 171),
    "ResNet101V2": Documented(0.772, 0.938, 44_700_000, 205, 171),
    "ResNet152": Documented(0.766, 0.931, 60_400_000, 311, 232),
    "ResNet152V2": Documented(0.780, 0.942, 60_400_000, 307, 232),
    "InceptionV3": Documented(0.779, 0.937, 23_900_000, 189, 92),
    "InceptionResNetV2": Documented(0.803, 0.953, 55_900_000, 449, 215),
    "MobileNet": Documented(0.704, 0.895, 4_300_000, 55, 16),
    "MobileNetV2": Documented(0.713, 0.901, 3_500_000, 105, 14),
    "DenseNet121": Documented(0.750, 0.923, 8_100_000, 242, 33),
    "DenseNet169": Documented(0.762, 0.932, 14_300_000, 338, 57),
    "DenseNet201": Documented(0.773, 0.936, 20_200_000, 402, 80),
    "NASNetMobile": Documented(0.744, 0.919, 5_300_000, 389, 23),
    "NASNetLarge": Documented(0.825, 0.960, 88_900_000, 533, 343),
    "EfficientNetB0": Documented(0.771, 0.933, 5_300_000, 132, 29),
    "EfficientNetB1": Documented(0.791, 0.944, 7_900_000, 186, 31),
    "EfficientNetB2": Documented(0.801, 0.949, 9_200_000, 186, 36),
    "EfficientNetB3": Documented(0.816, 0.957, 12_300_000, 210, 48),
    "EfficientNetB4": Documented(0.829, 0.964, 19_500_000, 258, 75),
    "EfficientNetB5": Documented(0.836, 0.967, 30_600_000, 312, 118),
    "EfficientNetB6": Documented(0.840, 0.968, 43_300_000, 360, 166),
    "EfficientNetB7": Documented(0.843, 0.970, 66_700_000, 438, 256),
    "EfficientNetV2B0": Documented(0.787, 0.943, 7_200_000, None, 29),
    "EfficientNetV2B1": Documented(0.798, 0.950, 8_200_000, None, 34),
    "EfficientNetV2B2": Documented(0.805, 0.951, 10_200_000, None, 42),
    "EfficientNetV2B3": Documented(0.820, 0.958, 14_500_000, None, 59),
    "EfficientNetV2S": Documented(0.839, 0.967, 21_600_000, None, 88),
    "EfficientNetV2M": Documented(0.853, 0.974, 54_400_000, None, 220),
    "EfficientNetV2L": Documented(0.857, 0.975, 119_000_000, None, 479),
}

# The input size each architecture was trained at (its ``default_size`` in Keras's source; the
# size its classifier requires). Every other architecture: 224.
DEFAULT_SIZES = {
    "Xception": 299, "InceptionV3": 299, "InceptionResNetV2": 299, "NASNetLarge": 331,
    "EfficientNetB1": 240, "EfficientNetB2": 260, "EfficientNetB3": 300, "EfficientNetB4": 380,
    "EfficientNetB5": 456, "EfficientNetB6": 528, "EfficientNetB7": 600,
    "EfficientNetV2B1": 240, "EfficientNetV2B2": 260, "EfficientNetV2B3": 300,
    "EfficientNetV2S": 384, "EfficientNetV2M": 480, "EfficientNetV2L": 480,
}
# The smallest input Keras accepts without the classifier (it raises "Input size must be at
# least …" below it), by Keras module: 32 for every other one. Checked by calling Keras
# (tests/test_applications.py).
MIN_SIZES = {"inception_v3": 75, "inception_resnet_v2": 75, "xception": 71}
SMALLEST = 32
LARGEST = 1024  # beyond this an image network only costs memory; a typo more likely than a wish

# Keras module → family shown to people.
FAMILIES = {
    "convnext": "ConvNeXt", "densenet": "DenseNet", "efficientnet": "EfficientNet",
    "efficientnet_v2": "EfficientNetV2", "inception_resnet_v2": "Inception-ResNet",
    "inception_v3": "Inception", "mobilenet": "MobileNet", "mobilenet_v2": "MobileNet",
    "mobilenet_v3": "MobileNet", "nasnet": "NASNet", "resnet": "ResNet", "resnet_v2": "ResNet",
    "vgg16": "VGG", "vgg19": "VGG", "xception": "Xception",
}
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Application:
    """One architecture of ``keras.applications``: its function's ``name``, the Keras ``module``
    that defines it, its ``family``, the input sizes it takes and what Keras documents of it."""

    name: str
    module: str
    family: str
    default_size: int
    min_size: int
    documented: Documented | None

    def size_problem(self, size: int, include_top: bool) -> str | None:
        """Why ``size`` cannot be used (None when it can): below the minimum, above
        :data:`LARGEST`, or not the default size while the ImageNet classifier is kept."""
        if include_top and size != self.default_size:
            return (f"{self.name} keeps its ImageNet classifier only at {self.default_size}×"
                    f"{self.default_size}; set the size to {self.default_size} or remove the classifier")
        if size < self.min_size:
            return (f"{self.name} needs inputs of at least {self.min_size}×{self.min_size}; "
                    f"set the size to {self.min_size} or more")
        if size > LARGEST:
            return f"{size}×{size} is larger than Convas builds ({LARGEST}); set a smaller size"
        return None

    def design_name(self, size: int) -> str:
        """The new design's name: ``mobilenetv2_224``."""
        return f"{self.name.lower()}_{size}"


def _keras_applications_source() -> Path | None:
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "applications" / "__init__.py"


_CATALOGUE: list[Application] | None = None


def catalogue() -> list[Application]:
    """Every model function ``keras.applications`` exports, sorted by name; read from Keras's
    own module as data (no TensorFlow is imported). Empty when Keras is not installed."""
    global _CATALOGUE
    if _CATALOGUE is not None:
        return list(_CATALOGUE)
    source = _keras_applications_source()
    found: dict[str, str] = {}
    if source is not None and source.is_file():
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    name = alias.asname or alias.name
                    if name[:1].isupper():
                        found[name] = node.module.rsplit(".", 1)[-1]
    _CATALOGUE = [Application(name, module, FAMILIES.get(module, module.replace("_", " ").title()),
                              DEFAULT_SIZES.get(name, 224), MIN_SIZES.get(module, SMALLEST), DOCUMENTED.get(name))
                  for name, module in sorted(found.items())]
    return list(_CATALOGUE)


def application(name: str) -> Application:
    """The catalogue entry ``name``; :class:`ApplicationError` naming the closest one otherwise."""
    import difflib

    apps = {app.name: app for app in catalogue()}
    if name in apps:
        return apps[name]
    close = difflib.get_close_matches(name, list(apps), n=1)
    hint = f"; did you mean {close[0]}?" if close else "; choose one of keras.applications's architectures"
    raise ApplicationError(f"keras.applications has no architecture named {name!r}{hint}")


def _keras_function(name: str) -> Any:
    import keras

    return getattr(keras.applications, name)


def _check_size(app: Application, size: int, include_top: bool) -> None:
    problem = app.size_problem(size, include_top)
    if problem is not None:
        raise ApplicationError(problem)


# --- parameters and MACs at a size -------------------------------------------------------------

@dataclass(frozen=True)
class AppInfo:
    """An architecture built at ``input_size`` (with or without its classifier) as Convas
    analyses it: ``params`` weights in all, ``macs`` multiply-accumulates per image, ``layers``
    in the design."""

    name: str
    input_size: int
    include_top: bool
    params: int
    macs: int
    layers: int


_DESCRIBED: dict[tuple[str, int, bool], AppInfo] = {}
_DESCRIBE_LOCK = threading.Lock()


def describe(name: str, input_size: int, include_top: bool) -> AppInfo:
    """Parameters and MACs of ``name`` at ``input_size`` (built with ``weights=None``, nothing
    downloaded); cached per (name, size, top). Safe to call from a worker thread; seconds for
    the largest networks. :class:`ApplicationError` for a size the architecture refuses."""
    from .analysis import analyse
    from .keras_import import import_keras_config

    app = application(name)
    _check_size(app, input_size, include_top)
    key = (name, input_size, include_top)
    with _DESCRIBE_LOCK:
        if key in _DESCRIBED:
            return _DESCRIBED[key]
    config = json.loads(_build(app, input_size, include_top, None).to_json())
    design = import_keras_config(config, source=name).design
    analysis = analyse(design)
    info = AppInfo(name, input_size, include_top, analysis.total_params, analysis.macs, len(design.nodes))
    with _DESCRIBE_LOCK:
        _DESCRIBED[key] = info
    return info


# One model is built at a time: the dialog asks for figures and weights files on worker threads,
# and Keras's naming of layers and the download interception are process-wide.
_BUILD_LOCK = threading.RLock()


def _build(app: Application, size: int, include_top: bool, weights: str | None, classes: int = IMAGENET_CLASSES) -> Any:
    """The Keras model; Keras's warnings about weights for another size are the caller's to say."""
    fn = _keras_function(app.name)
    with _BUILD_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(include_top=include_top, weights=weights, input_shape=(size, size, 3),
                  classes=classes if include_top else IMAGENET_CLASSES)


# --- which ImageNet weights file ---------------------------------------------------------------

class WeightsFile(NamedTuple):
    """The ImageNet weights Keras would download: ``fname`` in ``<keras home>/<cache_subdir>``,
    from ``origin``; ``file_hash`` is a SHA-256 (64 hex digits) or MD5 (32), or None when Keras
    checks none."""

    fname: str
    origin: str
    file_hash: str | None
    cache_subdir: str

    @property
    def host(self) -> str:
        from urllib.parse import urlparse

        return urlparse(self.origin).netloc or self.origin


class _WouldDownload(Exception):
    """Raised in place of Keras's download, carrying what it would fetch."""

    def __init__(self, found: WeightsFile) -> None:
        super().__init__(found.fname)
        self.found = found


_INTERCEPT = threading.local()
_WEIGHTS_FILES: dict[tuple[str, bool, int], WeightsFile] = {}


@contextmanager
def _intercepting_downloads(skip_layers: bool) -> Iterator[None]:
    """Within this block, this thread's calls of Keras's ``get_file`` raise :class:`_WouldDownload`
    (other threads' calls go through to Keras as usual). With ``skip_layers``, this thread's
    layer calls also return their first input unchanged: the application's code runs to its
    download in a tenth of the time, since which file it fetches depends on its arguments,
    never on its layers' outputs."""
    from keras.src.layers.layer import Layer
    from keras.src.utils import file_utils

    with _BUILD_LOCK:
        original_get_file = file_utils.get_file
        original_call = Layer.__call__

        def get_file(fname: Any = None, origin: Any = None, *args: Any, **kwargs: Any) -> Any:
            if not getattr(_INTERCEPT, "on", False):
                return original_get_file(fname, origin, *args, **kwargs)
            raise _WouldDownload(WeightsFile(str(fname), str(origin), kwargs.get("file_hash"),
                                             str(kwargs.get("cache_subdir", "datasets"))))

        def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
            if not getattr(_INTERCEPT, "skip", False) or type(layer).__name__ == "InputLayer":
                return original_call(layer, *args, **kwargs)
            first = args[0] if args else next(iter(kwargs.values()))
            while isinstance(first, (list, tuple)) and first:
                first = first[0]
            return first

        file_utils.get_file = get_file
        if skip_layers:
            Layer.__call__ = call
        _INTERCEPT.on, _INTERCEPT.skip = True, skip_layers
        try:
            yield
        finally:
            _INTERCEPT.on, _INTERCEPT.skip = False, False
            file_utils.get_file = original_get_file
            if skip_layers:
                Layer.__call__ = original_call


def weights_file(name: str, include_top: bool, input_size: int | None = None) -> WeightsFile:
    """The ImageNet weights file Keras would download for ``name`` (with or without its
    classifier; at ``input_size``, which only the MobileNets' weights depend on), found by
    running Keras's own code for it and stopping it at the download: nothing goes over the
    network. Cached; a fraction of a second."""
    app = application(name)
    size = app.default_size if include_top or input_size is None else input_size
    if not include_top:
        size = max(size, app.min_size)
    key = (name, include_top, size)
    if key in _WEIGHTS_FILES:
        return _WEIGHTS_FILES[key]
    problem = None
    for skip_layers in (True, False):  # the quick way, then (should it trip) the whole build
        try:
            with _intercepting_downloads(skip_layers):
                _build(app, size, include_top, "imagenet")
        except _WouldDownload as would:
            _WEIGHTS_FILES[key] = would.found
            return would.found
        except Exception as exc:  # noqa: BLE001 - the quick way may trip; the whole build says
            problem = exc
    raise ApplicationError(f"Keras names no ImageNet weights file for {name} at {size}×{size}"
                           + (f": {first_line(problem)}" if problem is not None else ""))


def keras_home() -> Path:
    """Keras's own folder: ``$KERAS_HOME``, else ``~/.keras`` (read when asked, as a test or a
    user may set it after Keras was imported)."""
    return Path(os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")))


def keras_cache_folders(subdir: str = "models") -> list[Path]:
    """Where Keras keeps downloads: ``<keras home>/models``, and ``/tmp/.keras/models``, which
    Keras falls back to when its home cannot be written."""
    return [keras_home() / subdir, Path(tempfile.gettempdir()) / ".keras" / subdir]


def keras_cache_files(subdir: str = "models") -> set[str]:
    """The names of the files in Keras's cache folders (empty when there are none)."""
    names: set[str] = set()
    for folder in keras_cache_folders(subdir):
        try:
            names |= {entry.name for entry in os.scandir(folder) if entry.is_file()}
        except OSError:
            continue
    return names


def cached_weights(name: str, include_top: bool, input_size: int | None = None) -> Path | None:
    """The ImageNet weights file of ``name`` in Keras's cache, if Keras (or Convas) downloaded it."""
    found = weights_file(name, include_top, input_size)
    for folder in keras_cache_folders(found.cache_subdir):
        path = folder / found.fname
        if path.is_file() and path.stat().st_size > 0:
            return path
    return None


# --- making the design -------------------------------------------------------------------------

class Created(NamedTuple):
    """A new design from an architecture: ``design``, ``weights`` (None for random ones), the
    layers Convas shows as unsupported (none for the pinned Keras's applications) and a
    sentence for the status bar."""

    design: Design
    weights: WeightsSource | None
    unsupported: list[Any]
    message: str


def pretrained_folder() -> Path:
    """Where Convas keeps the ``.keras`` models it builds from applications and weights files."""
    from .internal_error import user_cache_folder

    return user_cache_folder() / "pretrained"


def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def create(name: str, input_size: int, include_top: bool, weights: Path | None, classes: int | None = None,
           freeze_backbone: bool = False) -> Created:
    """A design of ``name`` at ``input_size``×``input_size``×3, with its ImageNet classifier
    (``classes`` outputs, 1000 by default: other counts get a fresh classifier) or without it;
    ``weights`` a file of Keras weights for it (the ImageNet file Keras downloads, or one saved by
    ``save_weights``), or None for random weights. The model is saved in
    :func:`pretrained_folder` (atomically; kept, so that the same choice is quick next time) and
    imported as a ``.keras`` file is: groups, layout, collapsed blocks. ``freeze_backbone``
    freezes every layer before the head (:func:`engine.freezing.backbone_nodes`).

    :class:`ApplicationError` for a size the architecture refuses, or a file that is not weights
    for this architecture (naming the file and what Keras said)."""
    from .atomic import replace_atomically
    from .freezing import backbone_nodes
    from .keras_import import import_keras_config, import_keras_file

    app = application(name)
    _check_size(app, input_size, include_top)
    classes = IMAGENET_CLASSES if classes is None or not include_top else int(classes)
    if classes < 1:
        raise ApplicationError(f"a classifier needs at least one class, not {classes}")
    design_name = app.design_name(input_size)
    if weights is None:
        config = json.loads(_build(app, input_size, include_top, None, classes).to_json())
        result = import_keras_config(config, source=name)
        source = None
    else:
        weights = Path(weights)
        if not weights.is_file():
            raise ApplicationError(f"{weights} is not a file; choose the weights file again")
        choice = f"{name}|{input_size}|{include_top}|{classes}|{_file_key(weights)}"
        key = hashlib.sha256(choice.encode()).hexdigest()[:10]
        top = "top" if include_top else "notop"
        target = pretrained_folder() / f"{design_name}_{top}_{key}.keras"
        if not target.is_file():
            model = _with_weights(app, input_size, include_top, weights, classes)
            target.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(target, lambda tmp: model.save(tmp), target.name, suffix=".keras")
        result = import_keras_file(target)
        source = WeightsSource(WeightsKind.IMPORTED, f"{name} weights from {weights.name}", file=target)
    design = result.design
    design.name = design_name
    frozen = 0
    if freeze_backbone:
        # A new classifier (another class count) learns from scratch: never frozen, wherever
        # the backbone is said to end (MobileNetV3's classifier is a Conv2D before its Flatten).
        new_classifier = set(_new_classifier_layers(app, input_size, classes)) if include_top else set()
        for node_name in backbone_nodes(design) - new_classifier:
            design.nodes[node_name].trainable = False
            frozen += 1
    what = "with its ImageNet classifier" if include_top and classes == IMAGENET_CLASSES else (
        f"with a new {classes}-class classifier" if include_top else "without its classifier")
    loaded = f"weights from {weights.name}" if weights is not None else "random weights"
    message = f"New {name} at {input_size}×{input_size} {what}, {loaded}: {len(design.nodes)} layers"
    if frozen:
        message += f", {frozen} frozen"
    return Created(design, source, list(result.unsupported), message)


def _new_classifier_layers(app: Application, size: int, classes: int) -> list[str]:
    """The layers whose weights differ in shape between the architecture with ImageNet's 1000
    classes and with ``classes``: those a new classifier trains from scratch."""
    if classes == IMAGENET_CLASSES:
        return []
    imagenet = {layer.name: layer for layer in _build(app, size, True, None).layers}
    mine = _build(app, size, True, None, classes)
    return [layer.name for layer in mine.layers if layer.name in imagenet
            and [tuple(w.shape) for w in layer.weights] != [tuple(w.shape) for w in imagenet[layer.name].weights]]


def _with_weights(app: Application, size: int, include_top: bool, path: Path, classes: int) -> Any:
    """The Keras model with the weights of ``path``; a classifier of another class count than
    ImageNet's takes every weight but its own from the file."""
    try:
        model = _build(app, size, include_top, str(path), IMAGENET_CLASSES if include_top else classes)
    except Exception as exc:  # noqa: BLE001 - whatever Keras says of the file becomes the message
        top = "with its classifier" if include_top else "without its classifier"
        expected = _expected_name(app.name, include_top, size)
        hint = f" (Keras's ImageNet file for it is {expected})" if expected else ""
        raise ApplicationError(f"{path.name} does not hold weights for {app.name} {top} at {size}×{size}"
                               f"{hint}: Keras said: {first_line(exc)}") from None
    if not include_top or classes == IMAGENET_CLASSES:
        return model
    fresh = _build(app, size, include_top, None, classes)
    theirs = {layer.name: layer for layer in model.layers}
    for layer in fresh.layers:
        source = theirs.get(layer.name)
        if source is None:
            continue
        mine, other = layer.get_weights(), source.get_weights()
        if [w.shape for w in mine] == [w.shape for w in other]:
            layer.set_weights(other)
    return fresh


def _expected_name(name: str, include_top: bool, size: int) -> str | None:
    try:
        return weights_file(name, include_top, size).fname
    except ConvasError:
        return None


def download_weights(name: str, include_top: bool, input_size: int | None = None, progress: Any = None,
                     cancelled: Any = None) -> Path:
    """Download the ImageNet weights of ``name`` into Keras's cache (where Keras itself and
    :func:`cached_weights` find them), checked against the hash Keras publishes. Only when the
    user asks: :class:`engine.downloads.DownloadError` says what went wrong and what to do."""
    from .downloads import download

    found = weights_file(name, include_top, input_size)
    folder = keras_cache_folders(found.cache_subdir)[0]
    fallback = f" or choose a weights file you already have (Keras keeps them in {folder})"
    return download(found.origin, folder / found.fname, found.file_hash, progress, cancelled, fallback=fallback)
