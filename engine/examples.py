"""The example designs shipped in ``resources/examples`` (``.convas`` files)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .design import Design, chain
from .errors import FileFormatError
from .layout import apply_layout
from .project_file import SUFFIX, load_project

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "resources" / "examples"
SEED = "seed_cnn"
UNTITLED = "Untitled"  # the name of a new design until it is saved (Save As proposes it)
EXAMPLE_TITLES = {
    "seed_cnn": "Seed CNN", "lenet5": "LeNet-5", "small_vgg": "Small VGG", "resnet_block": "ResNet block",
    "inception_module": "Inception module", "mobilenet_block": "MobileNet-style block",
    "conv_autoencoder": "Convolutional autoencoder", "unet_shapes": "U-Net (Shapes masks)",
    "seed_cnn_sweep": "Seed CNN with a search space",
}


def example_names() -> list[str]:
    """Names of the shipped examples, sorted."""
    return sorted(p.stem for p in EXAMPLES_DIR.glob(f"*{SUFFIX}"))


def example_path(name: str) -> Path:
    """Where example ``name`` (without suffix) lives; :class:`FileFormatError` if it is not shipped."""
    path = EXAMPLES_DIR / f"{name}{SUFFIX}"
    if not path.is_file():
        known = ", ".join(example_names()) or "none"
        raise FileFormatError(f"there is no example named {name!r} (shipped: {known})")
    return path


def load_example(name: str) -> Design:
    """A fresh copy of a shipped example design."""
    return load_project(example_path(name)).design


def seed_design() -> Design:
    """The seed CNN every new document starts from: 28×28×1 → two conv/pool stages → 10 classes."""
    return load_example(SEED)


def example_title(name: str) -> str:
    """How example ``name`` is called in menus ("LeNet-5")."""
    return EXAMPLE_TITLES.get(name, name.replace("_", " ").title())


def empty_design() -> Design:
    """A new, empty design named :data:`UNTITLED`."""
    return Design(name=UNTITLED)


def _classifier_skeleton(shape: tuple[int, ...]) -> Design:
    return chain(("InputLayer", {"shape": shape}), ("Flatten", {}),
                 ("Dense", {"units": 10, "activation": "softmax"}), name=UNTITLED)


# Starting points rather than finished networks: an input and an output to build between.
TEMPLATES: dict[str, tuple[str, str, Callable[[], Design]]] = {
    "grayscale_classifier": (
        "Grayscale classifier skeleton",
        "28×28×1 input → Flatten → Dense(10, softmax): insert convolutions on the first edge.",
        lambda: _classifier_skeleton((28, 28, 1))),
    "colour_classifier": (
        "Colour classifier skeleton",
        "32×32×3 input → Flatten → Dense(10, softmax): insert convolutions on the first edge.",
        lambda: _classifier_skeleton((32, 32, 3))),
}


def load_template(name: str) -> Design:
    """A new design from template ``name``, laid out and named :data:`UNTITLED`."""
    try:
        _title, _doc, build = TEMPLATES[name]
    except KeyError:
        raise FileFormatError(f"there is no template named {name!r} (known: {', '.join(TEMPLATES)})") from None
    design = build()
    apply_layout(design)
    return design
