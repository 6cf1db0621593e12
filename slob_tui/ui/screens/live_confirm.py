"""Typed confirmation before LIVE trading: the engine does not start until `LIVE` is typed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

CONFIRM_WORD = "LIVE"


class LiveConfirmScreen(ModalScreen[bool]):
    """Returns True when the exact word is typed and submitted; escape returns False."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="live.cancel")]

    def __init__(self, detail: str = "") -> None:
        super().__init__()
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="live-box"):
            yield Static("▲ LIVE TRADING · REAL MONEY ▲", id="live-title")
            yield Static(
                f"{self.detail}\nOrders will be sent to your broker account.\n"
                f"Type {CONFIRM_WORD} and press Enter to start, or Escape to quit."
            )
            yield Input(placeholder=f"type {CONFIRM_WORD}", id="live-input")
            yield Static("", id="live-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == CONFIRM_WORD:
            self.dismiss(True)
            return
        self.query_one("#live-error", Static).update(
            f"'{event.value.strip()}' is not {CONFIRM_WORD}: nothing started."
        )
        event.input.value = ""

    def action_cancel(self) -> None:
        self.dismiss(False)
