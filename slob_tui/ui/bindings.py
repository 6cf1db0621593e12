"""Every console key binding, each with an id, and the user's keymap override.

A user remaps keys without touching code: a TOML file maps binding ids to keys, for example

    [keys]
    "feed.pause" = "space"
    "theme.next" = "T,f9"

read from the SLOB_KEYMAP setting (environment or `.env`) when set, else
`~/.config/slob-tui/keymap.toml` when it exists.
Textual applies it with `App.set_keymap`; the footer, the help screen and the command palette
show the keys in force.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from textual.binding import Binding, BindingType

from slob_tui.errors import UsageError

DEFAULT_KEYMAP_PATH = Path("~/.config/slob-tui/keymap.toml")


@dataclass(frozen=True, slots=True)
class BindingSpec:
    """One console action: its id (what a keymap names), default keys, action and text.

    `description` is the footer's short label (the footer must fit 80 columns with every
    shown key); `help` is the help screen's and the command palette's longer text.
    """

    id: str
    keys: str
    action: str
    description: str
    help: str
    show: bool = True
    priority: bool = False


BINDINGS: tuple[BindingSpec, ...] = (
    BindingSpec(
        "app.quit", "ctrl+q", "quit", "Quit", "Quit (stops the engine gracefully)", priority=True
    ),
    BindingSpec("app.help", "question_mark,f1", "help", "Help", "Help: this screen"),
    BindingSpec("feed.pause", "p", "toggle_pause", "Pause", "Pause/resume feed"),
    BindingSpec("symbol.next", "s", "next_symbol", "Symbol", "Next symbol"),
    BindingSpec("theme.next", "t", "next_theme", "Theme", "Next theme"),
    BindingSpec("kill.switch", "K", "kill_switch", "Kill", "Kill switch (asks first)"),
    BindingSpec(
        "kill.reset",
        "R",
        "reset_kill_switch",
        "Reset",
        "Clear the kill switch (asks first)",
        show=False,
    ),
    BindingSpec(
        "panel.setups", "2", "toggle_panel('setups')", "Setups", "Setups panel", show=False
    ),
    BindingSpec(
        "panel.orders",
        "3",
        "toggle_panel('orders')",
        "Orders",
        "Orders & positions panel",
        show=False,
    ),
    BindingSpec(
        "panel.health", "4", "toggle_panel('health')", "Health", "Health panel", show=False
    ),
    BindingSpec("panel.events", "5", "toggle_panel('events')", "Events", "Event log", show=False),
    BindingSpec(
        "chart.older",
        "left_square_bracket",
        "chart_scroll(-10)",
        "Older",
        "Older candles",
        show=False,
    ),
    BindingSpec(
        "chart.newer",
        "right_square_bracket",
        "chart_scroll(10)",
        "Newer",
        "Newer candles",
        show=False,
    ),
    BindingSpec("chart.live", "end", "chart_live", "Live", "Back to live", show=False),
    BindingSpec("events.filter", "f", "cycle_event_filter", "Filter", "Filter events", show=False),
)

KEY_NAMES = {
    "question_mark": "?",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "ctrl+q": "ctrl+q",
    "space": "space",
}


def key_label(keys: str) -> str:
    """Keys as a person types them: `question_mark,f1` -> `?, f1`."""
    return ", ".join(KEY_NAMES.get(k.strip(), k.strip()) for k in keys.split(","))


SPEC_BY_ID = {spec.id: spec for spec in BINDINGS}


def textual_bindings() -> list[BindingType]:
    """The specs as Textual `Binding`s (ids included, so a keymap can remap them)."""
    return [
        Binding(s.keys, s.action, s.description, show=s.show, priority=s.priority, id=s.id)
        for s in BINDINGS
    ]


def keymap_path(setting: str = "") -> Path | None:
    """The keymap file in force: the SLOB_KEYMAP setting, else the default path if it exists."""
    if setting:
        return Path(setting).expanduser()
    default = DEFAULT_KEYMAP_PATH.expanduser()
    return default if default.is_file() else None


def load_keymap(path: Path | None) -> dict[str, str]:
    """Binding id -> keys from a TOML file; a bad file is a one-line `UsageError`."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"keymap {path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"keymap {path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"keymap {path}: not valid TOML: {exc}") from exc
    keys = data.get("keys", data)
    if not isinstance(keys, dict):
        raise UsageError(f'keymap {path}: expected a [keys] table of binding id = "key"')
    out: dict[str, str] = {}
    for binding_id, value in keys.items():
        if binding_id not in SPEC_BY_ID:
            known = ", ".join(sorted(SPEC_BY_ID))
            raise UsageError(f"keymap {path}: unknown binding id {binding_id!r} (known: {known})")
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"keymap {path}: {binding_id} must be a non-empty key string")
        out[binding_id] = value.strip()
    return out
