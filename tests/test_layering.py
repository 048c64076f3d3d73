"""The engine must stay light: no Qt, and no TensorFlow/Keras until a function needs them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HEAVY = ("tensorflow", "keras", "PySide6", "shiboken6", "pyqtgraph")


def test_engine_imports_pull_in_neither_qt_nor_tensorflow():
    code = (
        "import sys, pkgutil, importlib, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "from engine.analysis import analyse\n"
        "from engine.examples import seed_design\n"
        "analyse(seed_design())\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_layering_checker_finds_nothing():
    checker = ROOT.parent / "shared" / "tools" / "check_layering.py"
    if not checker.exists():  # the shared tools sit beside the checkout; run the same check inline
        import ast
        for path in (ROOT / "engine").rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                    assert not any(n.split(".")[0] in HEAVY for n in names), path
        return
    out = subprocess.run([sys.executable, str(checker), str(ROOT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
