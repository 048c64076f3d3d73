"""Keras's import leaves scikit-learn alone; everyone else's import of it works."""

import sys

import pytest

from engine import keras_startup
from engine.keras_startup import skip_sklearn_for_keras_wrappers


def _import_as(module_name: str, target: str) -> object:
    """Run ``import target`` from code whose module is ``module_name``."""
    scope = {"__name__": module_name}
    exec(f"import {target} as found", scope)
    return scope["found"]


@pytest.fixture
def hook_only(monkeypatch):
    """The hook on sys.meta_path, and scikit-learn as if nobody had imported it yet."""
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path
                                           if not isinstance(f, keras_startup._NoSklearnForKerasWrappers)])
    for name in [n for n in sys.modules if n == "sklearn" or n.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "keras.src.wrappers.sklearn_wrapper", raising=False)
    skip_sklearn_for_keras_wrappers()
    skip_sklearn_for_keras_wrappers()  # twice: one hook
    assert sum(isinstance(f, keras_startup._NoSklearnForKerasWrappers) for f in sys.meta_path) == 1


def test_keras_wrappers_find_no_sklearn_and_others_do(hook_only):
    for importer in ("keras.src.wrappers.fixes", "keras.src.wrappers.sklearn_wrapper", "keras.src.wrappers"):
        with pytest.raises(ImportError, match="sklearn"):
            _import_as(importer, "sklearn.base")
    assert "sklearn" not in sys.modules
    # Convas's own import (the evaluation's metrics) and a user's, even a module named like Keras's.
    for importer in ("engine.evaluation", "__main__", "keras.src.wrappersmith"):
        assert _import_as(importer, "sklearn.metrics").confusion_matrix([0, 1], [0, 1]).trace() == 2


def test_the_entry_points_install_it(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path
                                           if not isinstance(f, keras_startup._NoSklearnForKerasWrappers)])
    monkeypatch.delitem(sys.modules, "keras.src.wrappers.sklearn_wrapper", raising=False)
    from engine.quiet_tf import quiet_tensorflow

    quiet_tensorflow()
    assert any(isinstance(f, keras_startup._NoSklearnForKerasWrappers) for f in sys.meta_path)
