"""Colours and metrics shared by every widget, for light and dark appearance.

Every widget takes its colours from Qt's application palette; :func:`apply_theme` sets that
palette for the chosen :class:`Theme` (System follows the platform's colour scheme). Group,
error, warning and OK colours are chosen to read on both. Nothing here holds state: the
chosen theme lives in the application's QSettings under :data:`THEME_KEY`.
"""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget


class Theme(StrEnum):
    """The appearance the user chose in View → Theme."""

    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"

    @property
    def label(self) -> str:
        return self.value.capitalize()


THEME_KEY = "appearance/theme"

# One hue per palette group, used for card headers, palette icons and edges.
GROUP_COLORS: dict[str, str] = {
    "Input": "#2e86de",
    "Convolution": "#e67e22",
    "Pooling": "#16a085",
    "Reshaping": "#8e44ad",
    "Core": "#c0392b",
    "Normalization": "#d4ac0d",
    "Regularization": "#7f8c8d",
    "Activation": "#27ae60",
    "Preprocessing & Augmentation": "#2980b9",
    "Merge": "#d35400",
}
ERROR_COLOR = "#e5484d"
WARNING_COLOR = "#f5a524"
OK_COLOR = "#30a46c"


def group_color(group: str) -> QColor:
    return QColor(GROUP_COLORS.get(group, "#95a5a6"))


def warning_text_color() -> str:
    """Warning colour for running text: the amber of WARNING_COLOR is too pale to read as
    text on a light window, so light appearance gets a darker amber."""
    return WARNING_COLOR if is_dark() else "#8f5600"


def is_dark() -> bool:
    """True when the application palette is dark (system dark mode)."""
    app = QGuiApplication.instance()
    if app is None:
        return False
    window = QGuiApplication.palette().color(QPalette.ColorRole.Window)
    return window.lightness() < 128


def card_colors() -> dict[str, QColor]:
    """Fill, border, text and muted text of node cards for the current appearance."""
    if is_dark():
        return {"fill": QColor("#2b2d31"), "border": QColor("#4a4d55"), "text": QColor("#ececec"),
                "muted": QColor("#a0a4ab"), "canvas": QColor("#1e1f22"), "grid": QColor("#2a2c30"),
                "edge": QColor("#8a8f98"), "selection": QColor("#4c9aff")}
    return {"fill": QColor("#ffffff"), "border": QColor("#c9ccd1"), "text": QColor("#1f2328"),
            "muted": QColor("#5f6670"), "canvas": QColor("#f4f5f7"), "grid": QColor("#e6e8eb"),
            "edge": QColor("#7a808a"), "selection": QColor("#1f6feb")}


def dark_palette() -> QPalette:
    """A dark Fusion palette, for systems whose Qt build does not switch by itself."""
    # Built from button and window colours so that the bevel roles (Light, Mid, Dark, Shadow)
    # are dark too, not inherited from the current (maybe light) application palette.
    p = QPalette(QColor("#2f3136"), QColor("#25272b"))
    roles = QPalette.ColorRole
    for role, color in ((roles.Window, "#25272b"), (roles.WindowText, "#e6e6e6"), (roles.Base, "#1e1f22"),
                        (roles.AlternateBase, "#2a2c30"), (roles.ToolTipBase, "#2b2d31"),
                        (roles.ToolTipText, "#e6e6e6"), (roles.Text, "#e6e6e6"), (roles.Button, "#2f3136"),
                        (roles.ButtonText, "#e6e6e6"), (roles.BrightText, "#ff6b6b"), (roles.Highlight, "#3574f0"),
                        (roles.HighlightedText, "#ffffff"), (roles.Link, "#6ea8fe"),
                        (roles.PlaceholderText, "#8b8f97")):
        p.setColor(role, QColor(color))
    for role in (roles.Text, roles.ButtonText, roles.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7d818a"))
    return p


def light_palette() -> QPalette:
    """Fusion's own light palette, whatever the system's scheme is."""
    app = QApplication.instance()
    style = app.style() if isinstance(app, QApplication) else None
    p = style.standardPalette() if style is not None else QPalette(QColor("#efefef"))
    # Fusion's light placeholder grey is too faint for the muted text several panels use.
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor("#6b6f76"))
    return p


def saved_theme(settings: QSettings) -> Theme:
    """The theme stored in ``settings`` (System when unset or unknown)."""
    try:
        return Theme(str(settings.value(THEME_KEY, Theme.SYSTEM.value)))
    except ValueError:
        return Theme.SYSTEM


def system_is_dark() -> bool:
    """True when the platform reports a dark colour scheme."""
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(theme: Theme) -> None:
    """Give the application the palette of ``theme``; every widget, card and plot repaints from
    it (they react to the palette change). System picks light or dark from the platform."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    hints = QGuiApplication.styleHints()
    # Tell the platform too, so that title bars and native dialogs match where it can.
    if theme is Theme.SYSTEM:
        hints.unsetColorScheme()
    else:
        hints.setColorScheme(Qt.ColorScheme.Dark if theme is Theme.DARK else Qt.ColorScheme.Light)
    dark = system_is_dark() if theme is Theme.SYSTEM else theme is Theme.DARK
    palette = dark_palette() if dark else light_palette()
    if palette == app.palette():
        return  # a new window in the theme already shown: nothing to repaint
    app.setPalette(palette)
    # A widget with a style sheet keeps the colours it was polished with; set the sheet again
    # so that "palette(...)" references and the unstyled parts take the new palette. Only the
    # live windows' own widgets: QApplication.allWidgets() also lists widgets whose deletion
    # is pending, and touching one of those crashed the process (seen in the GUI tests).
    for window in app.topLevelWidgets():
        for widget in (window, *window.findChildren(QWidget)):
            sheet = widget.styleSheet()
            if sheet:
                widget.setStyleSheet(sheet)
