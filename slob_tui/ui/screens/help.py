"""Help screen: every binding with the key in force (after the user's keymap), how to close it,
and the settings a new user may need (keymap file, 16-colour terminals)."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from slob_tui.ui.bindings import BINDINGS, key_label

CLOSE_KEYS = "escape,q,question_mark,f1"


def help_table(keymap: dict[str, str]) -> Table:
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
    table.add_column("key")
    table.add_column("action")
    table.add_column("id", style="dim")
    for spec in BINDINGS:
        table.add_row(key_label(keymap.get(spec.id, spec.keys)), spec.help, spec.id)
    return table


class HelpScreen(ModalScreen[None]):
    """Shows the bindings; any of escape, q or ? closes it."""

    BINDINGS = [
        Binding(CLOSE_KEYS, "dismiss_help", "Close", id="help.close"),
    ]

    def __init__(self, keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self.keymap = keymap or {}

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(f"slob-tui — keys   (close: {key_label(CLOSE_KEYS)})", id="help-title")
            yield Static(help_table(self.keymap))
            yield Static(
                "Remap by id in ~/.config/slob-tui/keymap.toml ($SLOB_KEYMAP)\n"
                "16-colour terminal? TEXTUAL_COLOR_SYSTEM=standard slob-tui (or 256)",
                id="help-foot",
            )

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
