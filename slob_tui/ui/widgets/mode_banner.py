"""Mode banner: DEMO / REPLAY / PAPER / LIVE across the top; LIVE cannot be missed."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

MODE_TEXT = {
    "DEMO": "DEMO · synthetic market, paper fills",
    "REPLAY": "REPLAY · recorded data, paper fills",
    "PAPER": "PAPER · live data, paper account",
    "LIVE": "▲ LIVE · REAL MONEY · orders go to the market ▲",
}


class ModeBanner(Static):
    """One line; the CSS class `-live` (red, bold) marks real-money trading."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__("", id=id)
        self.mode = ""
        self.detail = ""

    def set_mode(self, mode: str, detail: str = "") -> bool:
        mode = (mode or "DEMO").upper()
        if (mode, detail) == (self.mode, self.detail):
            return False
        self.mode, self.detail = mode, detail
        for m in MODE_TEXT:
            self.set_class(m == mode, f"-{m.lower()}")
        text = Text(f" {MODE_TEXT.get(mode, mode)} ", style="bold")
        if detail:
            text.append(f" {detail}")
        self.update(text)
        return True
