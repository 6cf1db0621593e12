"""Remote commands (Telegram): allow-listed chats only, /flatten only after a confirmation.

Kept apart from the Telegram transport so that the rules — who may do what, and that a
flatten needs a fresh one-time code from the same chat — are plain code a test can drive.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

HELP = (
    "/status engine, data and P&L\n/setups live setups\n/orders open orders and positions\n"
    "/pause pause the feed\n/resume resume the feed\n/flatten cancel all orders and flatten "
    "(asks to confirm)"
)


@dataclass
class PendingFlatten:
    code: str
    expires: float


class CommandProcessor:
    """Answers one command text from one chat with one reply text.

    Everything from a chat not on the allow-list is refused and logged, as is any unknown
    command. `/flatten` replies with a one-time code; `/confirm <code>` from the same chat
    within `confirm_window_s` calls the engine's trading controls' `kill_switch("telegram")`.
    """

    def __init__(
        self,
        engine: Any,
        allowed_chat_ids: Iterable[int],
        *,
        confirm_window_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.allowed = frozenset(int(c) for c in allowed_chat_ids)
        self.confirm_window_s = confirm_window_s
        self.monotonic = monotonic
        self.pending: dict[int, PendingFlatten] = {}
        self.refused = 0
        self.flattened = 0

    async def handle(self, chat_id: int, text: str) -> str:
        command, _, arg = (text or "").strip().partition(" ")
        command = command.split("@", 1)[0].lower()  # "/status@my_bot" in group chats
        if chat_id not in self.allowed:
            self.refused += 1
            log.warning("telegram: refused %r from chat %s (not allow-listed)", command, chat_id)
            return "Refused: this chat is not allowed to control the engine."
        handler = {
            "/start": self._help,
            "/help": self._help,
            "/status": self._status,
            "/setups": self._setups,
            "/orders": self._orders,
            "/pause": self._pause,
            "/resume": self._resume,
            "/flatten": self._flatten,
            "/confirm": self._confirm,
        }.get(command)
        if handler is None:
            self.refused += 1
            log.warning("telegram: refused unknown command %r from chat %s", command[:40], chat_id)
            return "Unknown command. " + HELP
        log.info("telegram: %s from chat %s", command, chat_id)
        return await handler(chat_id, arg.strip())

    async def _help(self, chat_id: int, arg: str) -> str:
        return HELP

    async def _status(self, chat_id: int, arg: str) -> str:
        snap = self.engine.snapshot()
        h = snap.health
        age = h.pipeline.last_candle_age_s
        pnl = sum(p.unrealized_pnl for p in snap.positions)
        last = ", ".join(f"{s} {p:g}" for s, p in sorted(snap.last_price.items())) or "-"
        return (
            f"{snap.mode} {snap.feed} — {h.status}"
            f"{' (paused)' if snap.paused else ''}{' SAFE MODE' if h.safe_mode else ''}\n"
            f"candles {h.pipeline.candles} (today {h.pipeline.candles_today}), last candle age "
            f"{'-' if age is None else f'{age:.0f} s'}, reconnects {h.reconnects}\n"
            f"last {last}\npositions {len(snap.positions)}, open orders "
            f"{sum(1 for o in snap.orders if _is_open(o))}, unrealised P&L {pnl:+.2f}"
        )

    async def _setups(self, chat_id: int, arg: str) -> str:
        live = [v for v in self.engine.snapshot().setups if v.is_live]
        if not live:
            return "No live setups."
        lines = []
        for v in live[:10]:
            lv = v.latest.levels
            when = datetime.fromtimestamp(v.latest.time / 1e9, UTC).strftime("%H:%M")
            lines.append(
                f"{v.symbol} {v.direction} {v.state} since {when}Z "
                f"(ref {lv.get('ref_high', '-')}/{lv.get('ref_low', '-')})"
            )
        more = f"\n... and {len(live) - 10} more" if len(live) > 10 else ""
        return "\n".join(lines) + more

    async def _orders(self, chat_id: int, arg: str) -> str:
        snap = self.engine.snapshot()
        open_orders = [o for o in snap.orders if _is_open(o)]
        lines = [
            f"{o.symbol} {getattr(o.side, 'value', o.side)} {o.qty:g} {o.leg} {o.type} "
            f"{getattr(o.status, 'value', o.status)}"
            for o in open_orders[:15]
        ]
        lines += [
            f"position {p.symbol} {p.qty:g} @ {p.avg_price:g} (P&L {p.unrealized_pnl:+.2f})"
            for p in snap.positions
        ]
        return "\n".join(lines) if lines else "No open orders and no positions."

    async def _pause(self, chat_id: int, arg: str) -> str:
        self.engine.pause_feed()
        return "Feed paused. Open orders and positions stay as they are; /resume to continue."

    async def _resume(self, chat_id: int, arg: str) -> str:
        self.engine.resume_feed()
        return "Feed resumed."

    async def _flatten(self, chat_id: int, arg: str) -> str:
        if self.engine.trading_controls() is None:
            return "No order executor is running: nothing to flatten."
        code = f"{secrets.randbelow(10_000):04d}"
        self.pending[chat_id] = PendingFlatten(code, self.monotonic() + self.confirm_window_s)
        return (
            f"This cancels every open order and closes every position. To go ahead send "
            f"/confirm {code} within {self.confirm_window_s:.0f} s."
        )

    async def _confirm(self, chat_id: int, arg: str) -> str:
        pending = self.pending.pop(chat_id, None)
        if pending is None:
            return "Nothing to confirm: send /flatten first."
        if self.monotonic() > pending.expires:
            log.warning("telegram: flatten confirmation from chat %s came too late", chat_id)
            return "Confirmation expired: nothing done. Send /flatten again."
        if not secrets.compare_digest(arg, pending.code):
            log.warning("telegram: wrong flatten confirmation code from chat %s", chat_id)
            return "Wrong code: nothing done. Send /flatten again."
        controls = self.engine.trading_controls()
        if controls is None:
            return "No order executor is running: nothing to flatten."
        log.warning("telegram: FLATTEN confirmed from chat %s", chat_id)
        result = await controls.kill_switch("telegram")
        self.flattened += 1
        if isinstance(result, dict):
            closed = ", ".join(result.get("flattened") or []) or "none"
            return (
                f"Flattened: {len(result.get('cancelled') or [])} orders cancelled, "
                f"positions closed: {closed}. New orders are blocked until reset."
            )
        return f"Flattened: {result}" if result else "Flattened."


def _is_open(order: Any) -> bool:
    status = getattr(order, "status", None)
    return bool(getattr(status, "is_open", False))
