"""Kill switch confirmation: nothing is cancelled unless the user says yes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmKillScreen(ModalScreen[bool]):
    """Returns True only on an explicit yes (button or `y`); escape and `n` say no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes, kill", id="kill.yes"),
        Binding("n,escape", "answer(False)", "No", id="kill.no"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="kill-box"):
            yield Static("KILL SWITCH", id="kill-title")
            yield Static(
                "Cancel every open order and flatten every position now?\n"
                "Trading stays halted until restarted."
            )
            with Horizontal(id="kill-buttons"):
                yield Button("Yes, kill (y)", variant="error", id="kill-yes")
                yield Button("No (n)", variant="primary", id="kill-no")

    def on_mount(self) -> None:
        self.query_one("#kill-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "kill-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
