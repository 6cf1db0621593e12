"""Kill switch dialogs: nothing is cancelled, and nothing is allowed again, unless the user
says yes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmKillScreen(ModalScreen[bool]):
    """Returns True only on an explicit yes (button or `y`); escape and `n` say no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="kill.yes"),
        Binding("n,escape", "answer(False)", "No", id="kill.no"),
    ]
    heading = "KILL SWITCH"
    question = (
        "Cancel every open order and flatten every position now?\n"
        "New orders stay blocked until the switch is cleared: R here, or "
        "`slob-tui flatten --reset`."
    )
    yes_label = "Yes, kill (y)"

    def compose(self) -> ComposeResult:
        with Vertical(id="kill-box"):
            yield Static(self.heading, id="kill-title")
            yield Static(self.question)
            with Horizontal(id="kill-buttons"):
                yield Button(self.yes_label, variant="error", id="kill-yes")
                yield Button("No (n)", variant="primary", id="kill-no")

    def on_mount(self) -> None:
        self.query_one("#kill-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "kill-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ConfirmResetScreen(ConfirmKillScreen):
    """Clearing the kill switch lets new orders out again: asked like the kill itself."""

    heading = "CLEAR THE KILL SWITCH"
    question = (
        "Allow new orders again?\n"
        "Positions and open orders are not touched; the next triggered setup is placed."
    )
    yes_label = "Yes, allow orders (y)"
