"""Real ``keras.applications`` networks through Convas (issue 14): saved as ``.keras`` with
``weights=None`` (nothing is downloaded), read exactly, and exported the way ``convas export``
does to ``.keras`` and ONNX, each verified element by element against the model's predictions.

The work is ``benchmarks/check_applications.py``'s (which runs every architecture); these are a
few representative ones at 32×32, within a minute or so: an inverted-residual network with ReLU6
and depthwise convolutions, and MobileNetV3Small, whose hard-sigmoids are Keras operations stored
as layers (``x + 3.0``, ``× 1/6``), built back by the same operations. DenseNet121 (429 layers,
~120 concatenations) was a third case; its ONNX conversion alone cost 75 s of the suite's
15-minute budget, and what it added is covered elsewhere: every architecture is read exactly in
``test_keras_applications.py``, DenseNet121 opens as blocks in ``test_blocks.py``, and
Concatenate exports to ONNX with verified predictions in ``test_export.py``'s examples
(inception_module, unet_shapes). ``benchmarks/check_applications.py`` still exports it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "check_applications.py"


def _check_applications() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_applications", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_applications", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["MobileNetV2", "MobileNetV3Small"])
def test_application_reads_exactly_and_exports_with_verified_predictions(name: str) -> None:
    apps = _check_applications()
    assert name in apps.architectures()
    row = apps.check(name, ("keras", "onnx"))
    assert row.refused is None, row.refused
    assert row.read_exact is None, row.read_exact
    assert row.failures == {}, row.failures
    assert set(row.errors) == {"keras", "onnx"}
    # The predictions vary with the input (not every class at 1/10), so the comparison could
    # have caught a wrong file.
    low, high = row.outputs
    assert high - low > 0.05, row.outputs
