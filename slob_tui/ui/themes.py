"""Theme files: TOML in `themes/` (and the user's folder) become Textual `Theme`s.

Textual has no theme file format; a file's top-level keys are `Theme`'s arguments and its
`[variables]` table the console's own variables (candle colours and shapes).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.theme import Theme

from slob_tui.errors import UsageError

THEMES_DIR = Path(__file__).resolve().parents[2] / "themes"
USER_THEMES_DIR = Path("~/.config/slob-tui/themes")
DEFAULT_THEME = "slob-dark"

# Variables every theme gets unless it sets them (also under Textual's built-in themes).
VARIABLE_DEFAULTS: dict[str, str] = {
    "candle-up": "#26A69A",
    "candle-down": "#EF5350",
    "candle-body-up": "filled",
    "candle-body-down": "filled",
    "chart-ref": "#8B949E",
    "chart-box": "#B39DDB",
    "chart-entry": "#4F9DFF",
    "chart-stop": "#FF5252",
    "chart-target": "#66BB6A",
    "chart-liq": "#FFB300",
    "live-banner": "#D50000",
}

_THEME_KEYS = frozenset(
    {
        "name",
        "primary",
        "secondary",
        "warning",
        "error",
        "success",
        "accent",
        "foreground",
        "background",
        "surface",
        "panel",
        "boost",
        "dark",
        "luminosity_spread",
        "text_alpha",
        "variables",
    }
)


def load_theme_file(path: Path) -> Theme:
    """One theme from one TOML file; anything wrong is a one-line `UsageError` naming it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"theme {path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"theme {path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - _THEME_KEYS)
    if unknown:
        raise UsageError(f"theme {path}: unknown key(s) {', '.join(unknown)}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise UsageError(f'theme {path}: needs a name = "..."')
    if not isinstance(data.get("primary"), str):
        raise UsageError(f"theme {path}: needs a primary colour")
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise UsageError(f"theme {path}: [variables] must be a table")
    data["variables"] = {str(k): str(v) for k, v in variables.items()}
    try:
        theme = Theme(**data)
        from textual.color import Color

        for key in (
            "primary",
            "secondary",
            "accent",
            "warning",
            "error",
            "success",
            "foreground",
            "background",
            "surface",
            "panel",
        ):
            if data.get(key) is not None:
                Color.parse(data[key])
    except Exception as exc:  # noqa: BLE001 - any bad value is the user's to fix
        raise UsageError(f"theme {path}: {exc}") from exc
    return theme


def load_themes(*folders: Path) -> list[Theme]:
    """Every `*.toml` theme in the folders, in name order; later folders override earlier."""
    found: dict[str, Theme] = {}
    for folder in folders or (THEMES_DIR, USER_THEMES_DIR.expanduser()):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            theme = load_theme_file(path)
            found[theme.name] = theme
    return list(found.values())
