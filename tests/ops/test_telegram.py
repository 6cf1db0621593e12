"""Telegram alerts and commands through python-telegram-bot against a local fake Bot API."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import pytest

from slob_tui.core.event_payloads import OrderFilled, TradeClosed
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Direction, SetupState, SetupUpdate, Side
from slob_tui.engine.engine import LiveTradingEngine
from slob_tui.ops.commands import CommandProcessor
from slob_tui.ops.telegram_bot import TelegramOps
from tests.fakes.telegram_api import FakeBotAPI
from tests.ops.conftest import T0, ScriptedFeed, settle
from tests.ui.helpers import ControlledEngine

TOKEN = "424242424:AAE-telegram-token-for-the-fake-api_xyz"
TRADER, PARTNER, STRANGER = 111, 222, 999


class KillSwitchExecutor:
    """Stands in for the node's trading controls where the test is about the conversation:
    records the call and answers as `OrderExecutor.kill_switch` does (see the test with the
    real one)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def kill_switch(self, reason: str) -> dict:
        self.calls.append(reason)
        return {"active": True, "reason": reason, "cancelled": ["a", "b"], "flattened": ["NQ"]}


@pytest.fixture
async def bot(clock, caplog):
    caplog.set_level(logging.DEBUG)
    api = FakeBotAPI(TOKEN)
    await api.start()
    engine = ControlledEngine(
        LiveTradingEngine(ScriptedFeed(), clock=clock, enable_tracker=False), KillSwitchExecutor()
    )
    tg = TelegramOps(
        engine,
        TOKEN,
        [TRADER, PARTNER],
        base_url=api.base_url,
        poll_timeout_s=1,
        retry_delay_s=0.05,
    )
    await engine.start()
    await tg.start()
    yield api, engine, tg
    await tg.stop()
    await engine.stop("test over")
    await api.close()
    assert TOKEN not in caplog.text, "the bot token reached a log"


def triggered() -> SetupUpdate:
    levels = {"entry": 17500.25, "stop": 17510.0, "target": 17480.0, "rr": 2.0}
    return SetupUpdate(
        "NQ-S-1",
        "NQ",
        Direction.SHORT,
        SetupState.TRIGGERED,
        SetupState.WAITING_ENTRY,
        None,
        42,
        T0 + 31 * 60 * 10**9,
        levels,
    )


async def test_alert_reaches_every_allowed_chat_with_the_right_text(bot):
    api, engine, tg = bot
    engine.bus.emit(Event(EventType.SETUP_TRIGGERED, T0, triggered(), "tracker"))
    sent = await api.wait_sent(2)
    expected = (
        "SETUP TRIGGERED NQ SHORT at 10:31: entry 17500.25 stop 17510.00 target 17480.00 rr 2.00"
    )
    assert sorted((m["chat_id"], m["text"]) for m in sent) == [
        (TRADER, expected),
        (PARTNER, expected),
    ]
    assert "getMe" in api.calls and "getUpdates" in api.calls


async def test_fill_and_stop_alerts_survive_a_failing_send(bot):
    api, engine, tg = bot
    api.fail_sends = 1  # the first attempt answers 500; the retry goes through
    # payloads shaped as OrderExecutor emits them
    fill = OrderFilled(
        "NQ-S-1-entry", "o1", "NQ", Side.SELL, 1.0, 17500.25, "entry", "x1", "NQ-S-1", T0
    )
    stop_fill = replace(
        fill, client_order_id="NQ-S-1-stop", side=Side.BUY, price=17510.0, leg="stop"
    )
    trade = TradeClosed(
        "NQ-S-1-entry", "NQ-S-1", "NQ", "SHORT", 1.0, 17500.25, 17510.0, T0, T0, "stop", -9.75
    )
    engine.bus.emit(Event(EventType.ORDER_FILLED, T0, fill))
    engine.bus.emit(Event(EventType.ORDER_FILLED, T0, stop_fill))  # alerts as the trade below
    engine.bus.emit(Event(EventType.TRADE_CLOSED, T0, trade))
    await api.wait_sent(4)
    assert api.texts_to(TRADER) == [
        "ORDER FILLED NQ sell 1.00 @ 17500.25 (NQ-S-1-entry)",
        "STOP HIT NQ SHORT 1.00: entry 17500.25 exit 17510.00, P&L -9.75",
    ]
    assert api.texts_to(PARTNER) == api.texts_to(TRADER)
    await settle(lambda: tg.router.sent == 2)
    assert tg.router.failed == 0


async def test_command_from_a_stranger_is_refused_and_logged(bot, caplog):
    api, engine, tg = bot
    await api.push_message(STRANGER, "/pause")
    await api.wait_sent(1)
    assert api.texts_to(STRANGER) == ["Refused: this chat is not allowed to control the engine."]
    assert engine.paused is False
    assert "refused '/pause' from chat 999" in caplog.text
    await api.push_message(TRADER, "/pause")
    await api.wait_sent(2)
    assert engine.paused is True and api.texts_to(TRADER)[0].startswith("Feed paused")
    await api.push_message(TRADER, "/resume")
    await api.push_message(TRADER, "/rm -rf")
    await api.wait_sent(4)
    assert engine.paused is False
    assert api.texts_to(TRADER)[2].startswith("Unknown command.")


async def test_status_setups_and_orders(bot):
    api, engine, tg = bot
    await api.push_message(TRADER, "/status")
    await api.push_message(TRADER, "/setups")
    await api.push_message(TRADER, "/orders@slob_test_bot")
    texts = [m["text"] for m in await api.wait_sent(3)]
    assert texts[0].startswith("PAPER scripted — ok")
    assert texts[1] == "No live setups."
    assert texts[2] == "No open orders and no positions."


async def test_flatten_asks_then_flattens_through_the_executor(bot):
    api, engine, tg = bot
    await api.push_message(TRADER, "/flatten")
    ask = (await api.wait_sent(1))[-1]["text"]
    code = re.search(r"/confirm (\d{4}) within 60 s", ask).group(1)
    assert engine.controls.calls == []
    await api.push_message(PARTNER, f"/confirm {code}")  # another chat cannot confirm it
    await api.push_message(TRADER, "/confirm " + ("0000" if code != "0000" else "1111"))
    await api.wait_sent(3)
    assert api.texts_to(PARTNER) == ["Nothing to confirm: send /flatten first."]
    assert api.texts_to(TRADER)[-1] == "Wrong code: nothing done. Send /flatten again."
    assert engine.controls.calls == []

    await api.push_message(TRADER, "/flatten")
    ask = (await api.wait_sent(4))[-1]["text"]
    code = re.search(r"/confirm (\d{4})", ask).group(1)
    await api.push_message(TRADER, f"/confirm {code}")
    await api.wait_sent(5)
    assert engine.controls.calls == ["telegram"]
    assert api.texts_to(TRADER)[-1] == (
        "Flattened: 2 orders cancelled, positions closed: NQ. New orders are blocked until reset."
    )
    await api.push_message(TRADER, f"/confirm {code}")  # a code works once
    await api.wait_sent(6)
    assert engine.controls.calls == ["telegram"]


async def test_confirmation_expires():
    now = [1000.0]
    executor = KillSwitchExecutor()
    engine = ControlledEngine(LiveTradingEngine(ScriptedFeed(), enable_tracker=False), executor)
    cp = CommandProcessor(engine, [TRADER], confirm_window_s=60, monotonic=lambda: now[0])
    code = re.search(r"/confirm (\d{4})", await cp.handle(TRADER, "/flatten")).group(1)
    now[0] += 61
    assert (await cp.handle(TRADER, f"/confirm {code}")).startswith("Confirmation expired")
    assert executor.calls == []
    code = re.search(r"/confirm (\d{4})", await cp.handle(TRADER, "/flatten")).group(1)
    now[0] += 59
    assert (await cp.handle(TRADER, f"/confirm {code}")).startswith("Flattened")
    assert executor.calls == ["telegram"]


async def test_flatten_without_executor_says_so():
    engine = LiveTradingEngine(ScriptedFeed(), enable_tracker=False)
    cp = CommandProcessor(engine, [TRADER])
    assert await cp.handle(TRADER, "/flatten") == (
        "No order executor is running: nothing to flatten."
    )


async def test_bad_token_fails_start_with_a_redacted_error(clock, caplog):
    api = FakeBotAPI("the-real-token")
    await api.start()
    engine = LiveTradingEngine(ScriptedFeed(), clock=clock, enable_tracker=False)
    tg = TelegramOps(engine, TOKEN, [TRADER], base_url=api.base_url)
    try:
        with (
            caplog.at_level(logging.DEBUG),
            pytest.raises(Exception, match="(?i)unauthorized|token"),
        ):
            await tg.start()
    finally:
        await tg.stop()
        await api.close()
    assert TOKEN not in caplog.text
