"""Help screen: every binding with the key in force (after the user's keymap)."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from slob_tui.ui.bindings import BINDINGS


def help_table(keymap: dict[str, str]) -> Table:
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
    table.add_column("key")
    table.add_column("action")
    table.add_column("id", style="dim")
    for spec in BINDINGS:
        keys = keymap.get(spec.id, spec.keys)
        shown = keys.replace("question_mark", "?").replace("left_square_bracket", "[")
        shown = shown.replace("right_square_bracket", "]")
        table.add_row(shown, spec.description, spec.id)
    return table


class HelpScreen(ModalScreen[None]):
    """Shows the bindings; any of escape, q or ? closes it."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss_help", "Close", id="help.close"),
    ]

    def __init__(self, keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self.keymap = keymap or {}

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static("slob-tui — keys", id="help-title")
            yield Static(help_table(self.keymap))
            yield Static(
                "Remap in $SLOB_KEYMAP or ~/.config/slob-tui/keymap.toml:  [keys] \"id\" = \"key\"",
                id="help-foot",
            )

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
