"""Guard against Qt binding builds that corrupt Python's reference counts.

PySide6 6.12.0 on Python 3.11 drops a reference to ``None`` on every call that returns nothing;
after a few thousand canvas updates the interpreter aborts ("deallocating None"). pyproject.toml
keeps PySide6 below 6.12; this test fails if a lock update lets such a build back in.
"""

import sys

from PySide6.QtWidgets import QGraphicsRectItem, QGraphicsScene


def test_void_calls_keep_none_alive(qapp):
    scene = QGraphicsScene()
    item = QGraphicsRectItem(0, 0, 10, 10)
    scene.addItem(item)
    before = sys.getrefcount(None)
    for i in range(5000):
        item.setPos(i, i)
        item.update()
    assert before - sys.getrefcount(None) < 100
