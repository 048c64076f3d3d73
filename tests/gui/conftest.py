"""Fixtures for GUI tests."""

import pytest
from PySide6.QtGui import QGuiApplication


@pytest.fixture(autouse=True)
def empty_clipboard_after_test(qapp):
    """The offscreen platform crashes at exit while freeing clipboard data a test left behind."""
    yield
    QGuiApplication.clipboard().clear()

