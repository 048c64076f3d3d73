"""A Keras model with a layer Convas does not know opens anyway: the known layers are drawn and
analysed, the unknown one is an "unsupported" card with its problem on it, and the user is told."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from driving import menu_action


def _tensor(src: str, shape: list) -> dict:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": "float32", "keras_history": [src, 0, 0]}}


def _layer(cls: str, name: str, inputs: list, module: str = "keras.layers", **config) -> dict:
    return {"module": module, "class_name": cls, "registered_name": None, "name": name,
            "config": {"name": name, **config}, "inbound_nodes": [{"args": inputs, "kwargs": {}}]}


def model_with_a_custom_layer(path: Path) -> Path:
    """x (8,) → dense (16) → swirl (a custom class, which the file records as giving (16,)) → out (3)."""
    layers = [
        {"module": "keras.layers", "class_name": "InputLayer", "name": "x",
         "config": {"name": "x", "batch_shape": [None, 8]}, "inbound_nodes": []},
        _layer("Dense", "dense", [_tensor("x", [None, 8])], units=16),
        _layer("Swirl", "swirl", [_tensor("dense", [None, 16])], module="my_lab.layers", twist=3),
        _layer("Dense", "out", [_tensor("swirl", [None, 16])], units=3),
    ]
    config = {"module": "keras", "class_name": "Functional",
              "config": {"name": "lab_model", "layers": layers, "input_layers": [["x", 0, 0]],
                         "output_layers": [["out", 0, 0]]}}
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def test_importing_a_model_with_a_custom_layer_shows_it_as_an_unsupported_card(window, tmp_path, monkeypatch):
    path = model_with_a_custom_layer(tmp_path / "lab model.json")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    warned: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: warned.append((title, text)))
    monkeypatch.setattr(QMessageBox, "critical", lambda *a: (_ for _ in ()).throw(AssertionError(a)))

    menu_action(window, "File", "Import Keras Model").trigger()

    design = window.document.design
    assert list(design.nodes) == ["x", "dense", "swirl", "out"]
    (title, text), = warned
    assert title == "Opened lab model.json"
    assert "1 layer of this model" in text and "swirl (Swirl)" in text and "my_lab.layers" in text
    # The card is there, says what it is, and carries the problem.
    card = window.scene.node_item("swirl")
    assert card is not None and card.isVisible()
    tip = window.scene.node_tooltip("swirl")
    assert "Swirl" in tip and "my_lab.layers" in tip and "twist" in tip
    report = window.document.analysis.nodes["swirl"]
    assert report.errors and "replace this card" in report.errors[0].message
    # The layers around it are analysed: the file recorded the shape the custom layer gives.
    out = window.document.analysis.nodes["out"]
    assert out.output_shape == (None, 3) and out.params == 16 * 3 + 3
    assert window.document.analysis.nodes["dense"].params == 8 * 16 + 16
    # The status bar says the totals leave it out; the model cannot be trained as it is.
    assert "+ 1 unsupported layer unknown" in window._status_totals.text()
    assert not window.document.analysis.valid
