"""Mode banner: DEMO / REPLAY / PAPER / LIVE across the top; LIVE cannot be missed.

The line is laid out for the width it has: the mode's explanation is the first thing to go
(the mode word itself never does), so that the detail (feed, symbol, PAUSED, why the engine
stopped, the zone of every time on screen) still fits at 80 columns.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

MODE_TEXT = {
    "DEMO": "DEMO · synthetic market, paper fills",
    "REPLAY": "REPLAY · recorded data, paper fills",
    "PAPER": "PAPER · live data, paper account",
    "LIVE": "▲ LIVE · REAL MONEY · orders go to the market ▲",
}
MODE_SHORT = {"LIVE": "▲ LIVE · REAL MONEY ▲"}


def banner_text(mode: str, detail: str, width: int) -> Text:
    """The banner's line for `width` columns: the long mode text if everything fits."""
    for label in (MODE_TEXT.get(mode, mode), MODE_SHORT.get(mode, mode)):
        if len(label) + len(detail) + 3 <= width:
            break
    text = Text(f" {label} ", style="bold")
    if detail:
        text.append(f" {detail}")
    return text


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
        self.refresh()
        return True

    def render(self) -> Text:
        return banner_text(self.mode, self.detail, self.size.width or 80)
