"""Keep ``import keras`` from loading scikit-learn, which Convas never asks Keras for.

Keras 3 imports ``keras.wrappers`` (its scikit-learn estimators) whenever ``keras`` is imported,
and that module imports scikit-learn if it is installed: about 4.5 s of import time (measured
with ``-X importtime``) in every process that imports Keras (the window's training worker, every
CLI command, every ``--local-workers`` worker and sweep trial process). Convas has scikit-learn installed for
other reasons (the evaluation's metrics) but never uses ``keras.wrappers``.

:func:`skip_sklearn_for_keras_wrappers` installs an import hook that answers "not installed" to
an import of scikit-learn made by Keras's wrappers module only; Keras then defines its estimator
classes without scikit-learn, exactly as on a machine without it. Every other import of
scikit-learn (Convas's own, the user's) is untouched and loads the real package.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

_WRAPPERS = "keras.src.wrappers"


def _imported_by_keras_wrappers() -> bool:
    """True when the import in progress comes from a module of ``keras.src.wrappers``."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name == _WRAPPERS or name.startswith(_WRAPPERS + "."):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


class _NoSklearnForKerasWrappers:
    """A ``sys.meta_path`` finder: scikit-learn is "not installed" for Keras's wrappers only."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if (fullname == "sklearn" or fullname.startswith("sklearn.")) and _imported_by_keras_wrappers():
            raise ModuleNotFoundError(f"No module named {fullname!r} (not loaded for keras.wrappers)",
                                      name=fullname)
        return None  # the next finder looks, as usual

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def skip_sklearn_for_keras_wrappers() -> None:
    """Install the hook (once; a no-op when Keras's wrappers are already imported)."""
    if _WRAPPERS + ".sklearn_wrapper" in sys.modules:
        return
    if not any(isinstance(finder, _NoSklearnForKerasWrappers) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NoSklearnForKerasWrappers())
