"""The example designs shipped in ``resources/examples`` (``.convas`` files)."""

from __future__ import annotations

from pathlib import Path

from .design import Design
from .errors import FileFormatError
from .project_file import SUFFIX, load_project

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "resources" / "examples"
SEED = "seed_cnn"


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
