"""Colours and metrics shared by every widget, for light and dark appearance.

The palette follows the system (Qt's application palette); group colours are chosen to read on
both. Nothing here holds state.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QGuiApplication, QPalette

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
    p = QPalette()
    roles = QPalette.ColorRole
    for role, color in ((roles.Window, "#25272b"), (roles.WindowText, "#e6e6e6"), (roles.Base, "#1e1f22"),
                        (roles.AlternateBase, "#2a2c30"), (roles.ToolTipBase, "#2b2d31"),
                        (roles.ToolTipText, "#e6e6e6"), (roles.Text, "#e6e6e6"), (roles.Button, "#2f3136"),
                        (roles.ButtonText, "#e6e6e6"), (roles.BrightText, "#ff6b6b"), (roles.Highlight, "#3574f0"),
                        (roles.HighlightedText, "#ffffff"), (roles.Link, "#6ea8fe"),
                        (roles.PlaceholderText, "#8b8f97")):
        p.setColor(role, QColor(color))
    p.setColor(QPalette.ColorGroup.Disabled, roles.Text, QColor("#6b6f76"))
    p.setColor(QPalette.ColorGroup.Disabled, roles.ButtonText, QColor("#6b6f76"))
    return p
