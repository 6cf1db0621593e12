"""Setups panel: each live candidate's state and transition timeline, then recent endings."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from slob_tui.engine.snapshot import EngineSnapshot, SetupView
from slob_tui.ui.format import decided_at, hhmm, price

STATE_STYLE = {
    "WATCHING_LIQ1": "dim",
    "WATCHING_CONSOL": "cyan",
    "WATCHING_LIQ2": "magenta",
    "WAITING_ENTRY": "bold yellow",
    "TRIGGERED": "bold green",
    "INVALIDATED": "red",
}
KEY_NUMBERS = ("liq1_price", "high", "low", "liq2_price", "entry", "stop", "target", "rr")


def _numbers(levels: dict[str, Any]) -> str:
    parts = []
    for key in KEY_NUMBERS:
        if levels.get(key) is not None:
            value = levels[key]
            parts.append(f"{key} {value:g}" if key == "rr" else f"{key} {price(value)}")
    return "  ".join(parts)


def render_setups(setups: tuple[SetupView, ...], tz: str, max_steps: int = 6) -> Text:
    """Live candidates with their timelines, then recently ended ones with the reason."""
    text = Text()
    live = [v for v in setups if v.is_live]
    ended = [v for v in setups if not v.is_live]
    if not setups:
        text.append("No setup candidates yet.\n", style="dim")
        text.append("The tracker watches for LIQ #1 in the trading window.", style="dim")
        return text
    for view in live:
        q = view.latest.levels.get("quality")
        text.append(f"{view.symbol} {view.direction} ", style="bold")
        text.append(view.state, style=STATE_STYLE.get(view.state, ""))
        if q is not None:
            text.append(f"  q {q:.2f}")
        text.append("\n")
        for step in view.timeline[-max_steps:]:
            reason = f" ({step.reason})" if step.reason else ""
            text.append(f"  {hhmm(decided_at(step), tz)} ", style="dim")
            text.append(f"{step.state.value}{reason}", style=STATE_STYLE.get(step.state.value, ""))
            text.append("\n")
        numbers = _numbers(view.latest.levels)
        if numbers:
            text.append(f"  {numbers}\n", style="dim")
    if ended:
        text.append("Recently ended\n", style="bold underline")
        for view in ended[:8]:
            u = view.latest
            text.append(f"  {hhmm(decided_at(u), tz)} {view.symbol} {view.direction} ")
            text.append(view.state, style=STATE_STYLE.get(view.state, ""))
            if view.reason:
                text.append(f" {view.reason}", style="dim")
            if view.state == "TRIGGERED":
                lv = u.levels
                text.append(
                    f"  entry {price(lv.get('entry'))} stop {price(lv.get('stop'))}"
                    f" target {price(lv.get('target'))}",
                    style="dim",
                )
            text.append("\n")
    text.rstrip()
    return text


class SetupsPanel(Static):
    """Redrawn only when the setups in the snapshot changed."""

    def __init__(self, *, tz: str = "UTC", id: str | None = None) -> None:  # noqa: A002
        super().__init__(render_setups((), tz), id=id)
        self.tz = tz
        self._shown: tuple[tuple[str, int], ...] = ()
        self.border_title = "Setups"

    def show(self, snapshot: EngineSnapshot) -> bool:
        key = tuple((v.setup_id, len(v.timeline)) for v in snapshot.setups)
        if key == self._shown:
            return False
        self._shown = key
        live = sum(1 for v in snapshot.setups if v.is_live)
        self.border_title = f"Setups · {live} live"
        self.update(render_setups(snapshot.setups, self.tz))
        return True
