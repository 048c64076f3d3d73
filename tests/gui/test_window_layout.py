"""The window fits the screen, reopens as it was left, resets its layout, and switches theme."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QAction, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QMenu

from gui.main_window import GEOMETRY_KEY, default_geometry
from gui.theme import THEME_KEY, Theme, apply_theme

SCREEN = QSize(1600, 1000)
SCREEN_AT_200_PERCENT = QSize(800, 500)  # the same screen in logical pixels at QT_SCALE_FACTOR=2


def find_action(menu: QMenu, path: list[str]) -> QAction:
    """The action at ``path`` (menu titles, then the item) below ``menu``, ignoring "&" and "…"."""
    for action in menu.actions():
        if action.text().replace("&", "").rstrip("…") == path[0]:
            if len(path) == 1:
                return action
            return find_action(action.menu(), path[1:])
    raise AssertionError(f"no {' → '.join(path)}")


def menu_action(win, *path: str) -> QAction:
    for top in win.menuBar().actions():
        if top.text().replace("&", "") == path[0]:
            return find_action(top.menu(), list(path[1:]))
    raise AssertionError(f"no menu {path[0]}")


def fits(size: QSize, bound: QSize) -> bool:
    return size.width() <= bound.width() and size.height() <= bound.height()


def assert_fits_small_screens(win) -> None:
    for size in (win.minimumSizeHint(), win.minimumSize()):
        assert fits(size, SCREEN), size
        assert fits(size, SCREEN_AT_200_PERCENT), size


def shown(win, dock: str) -> bool:
    """The dock is part of the layout (maybe as a tab behind another): View menu's tick."""
    return win._docks[dock].toggleViewAction().isChecked()


def inside_screen(win) -> bool:
    return win.screen().availableGeometry().contains(win.frameGeometry())


def test_window_opens_inside_the_screen_and_its_minimum_fits_small_screens(window):
    assert inside_screen(window)
    assert_fits_small_screens(window)
    for dock in window._docks.values():
        assert fits(dock.minimumSizeHint(), QSize(300, 200)), (dock.windowTitle(), dock.minimumSizeHint())


def test_train_and_evaluation_panels_fit(window, qtbot):
    menu_action(window, "Train", "Training Panel").trigger()
    qtbot.wait_until(lambda: window._docks["Train"].isVisible())
    assert_fits_small_screens(window)
    assert inside_screen(window)
    spin = window.train_panel.form.batch_spin  # the example of a field cut off-screen
    # On a small screen the settings column scrolls; the field must be reachable in the window.
    window.train_panel.left_scroll.ensureWidgetVisible(spin)
    qtbot.wait(10)
    corner = spin.mapTo(window, spin.rect().bottomRight())
    assert window.rect().contains(corner) and not spin.visibleRegion().isEmpty()
    window._docks["Evaluation"].raise_()
    qtbot.wait(10)
    assert window._docks["Evaluation"].isVisible()
    assert_fits_small_screens(window)
    assert inside_screen(window)


def test_default_geometry_is_centred_and_at_most_90_percent_of_the_screen():
    small = default_geometry(QRect(0, 0, 800, 500))
    assert small == QRect(40, 25, 720, 450)
    large = default_geometry(QRect(0, 30, 3000, 2000))
    assert large.size() == QSize(1440, 900) and large.center() == QRect(0, 30, 3000, 2000).center()


def test_window_reopens_with_its_geometry_and_docks(new_window, qtbot):
    first = new_window()
    first.show()
    qtbot.waitExposed(first)
    available = first.screen().availableGeometry()
    least = first.minimumSizeHint()
    moved = QRect(available.left() + 60, available.top() + 80,
                  max(available.width() // 2, least.width()), max(available.height() // 2, least.height()))
    first.setGeometry(moved)
    first._docks["History"].toggleViewAction().trigger()
    assert not shown(first, "History")
    first.close()

    second = new_window()
    second.show()
    qtbot.waitExposed(second)
    assert second.geometry() == moved
    assert not shown(second, "History")
    assert shown(second, "Inspector") and shown(second, "Layers")

    menu_action(second, "View", "Reset Layout").trigger()
    qtbot.wait(10)
    assert second.geometry() == default_geometry(available)
    assert shown(second, "History")  # back as a tab beside the Inspector
    assert second.tabifiedDockWidgets(second._docks["Inspector"]) == [second._docks["History"]]


def test_a_saved_geometry_off_every_screen_falls_back_to_the_default(new_window, qtbot):
    first = new_window()
    first.show()
    qtbot.waitExposed(first)
    first.setGeometry(QRect(-9000, -9000, 700, 500))
    first.close()
    second = new_window()
    second.show()
    qtbot.waitExposed(second)
    assert inside_screen(second)
    assert second.settings.value(GEOMETRY_KEY) is not None  # it was saved, and judged off-screen
    assert second.geometry() == default_geometry(second.screen().availableGeometry())


def test_a_saved_geometry_larger_than_the_screen_is_made_to_fit(new_window, qtbot):
    first = new_window()
    first.show()
    qtbot.waitExposed(first)
    available = first.screen().availableGeometry()
    first.setGeometry(QRect(available.left() + 50, available.top() + 60, 3000, 2000))
    first.close()
    second = new_window()
    second.show()
    qtbot.waitExposed(second)
    assert available.contains(second.geometry())


def _card_background(win) -> QColor:
    """Colour of the canvas pixel at the middle of the first card's body."""
    win.view.resetCachedContent()
    win.view.viewport().repaint()
    item = win.scene.node_item("conv2d")
    win.view.centerOn(item)
    rect = item.sceneBoundingRect()
    # a point in the card's body, below the coloured header and left of the texts' baseline
    point = win.view.mapFromScene(rect.left() + 6, rect.bottom() - 6)
    image = win.view.viewport().grab().toImage()
    ratio = image.devicePixelRatio()
    return image.pixelColor(int(point.x() * ratio), int(point.y() * ratio))


def test_view_theme_dark_reaches_palette_cards_and_settings(window, qtbot):
    try:
        menu_action(window, "View", "Theme", "Dark").trigger()
        qtbot.wait(20)
        assert QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 80
        assert window.inspector.palette().color(QPalette.ColorRole.Window).lightness() < 80
        assert _card_background(window).lightness() < 80
        assert window.settings.value(THEME_KEY) == "dark"
        assert menu_action(window, "View", "Theme", "Dark").isChecked()

        menu_action(window, "View", "Theme", "Light").trigger()
        qtbot.wait(20)
        assert QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() > 180
        assert _card_background(window).lightness() > 180
        assert window.settings.value(THEME_KEY) == "light"
    finally:
        apply_theme(Theme.SYSTEM)


def test_saved_theme_is_applied_to_a_new_window(new_window, qtbot):
    try:
        first = new_window()
        first.set_theme(Theme.DARK)
        first.close()
        apply_theme(Theme.LIGHT)
        second = new_window()
        assert second.theme is Theme.DARK
        assert QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 80
        assert menu_action(second, "View", "Theme", "Dark").isChecked()
    finally:
        apply_theme(Theme.SYSTEM)


def test_every_theme_has_a_menu_item(window):
    for theme in Theme:
        assert menu_action(window, "View", "Theme", theme.label).isCheckable()


def _contrast(a: QColor, b: QColor) -> float:
    def luminance(c: QColor) -> float:
        channels = [v / 255 for v in (c.red(), c.green(), c.blue())]
        r, g, bl = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * bl
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_rich_text_colours_read_on_the_dark_palette():
    from gui.theme import ERROR_COLOR, OK_COLOR, WARNING_COLOR, dark_palette

    palette = dark_palette()
    for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base):
        for color in (ERROR_COLOR, WARNING_COLOR, OK_COLOR):
            assert _contrast(QColor(color), palette.color(role)) >= 3.5, (color, role)
        assert _contrast(palette.color(QPalette.ColorRole.PlaceholderText), palette.color(role)) >= 4.5
