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


# Readers depend on the model core, never on writers: the modules that read design files must not
# import the exporters (engine.export), at module level or inside a function.
READERS = ("engine/files.py", "engine/keras_import.py", "engine/project_file.py",
           "engine/embedded_design.py", "engine/weights.py")


def _imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, anywhere in it, as an absolute dotted name."""
    import ast

    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]  # from engine import export
    return names


def test_readers_do_not_import_the_exporters():
    for reader in READERS:
        imported = _imported_modules(ROOT / reader)
        offending = [n for n in imported if n == "engine.export" or n.startswith("engine.export.")]
        assert not offending, f"{reader} imports {offending}; move what it needs to the reader side"
