"""OpsRuntime: each part only when configured, clear errors for half-configured ones."""

from __future__ import annotations

import pytest

from slob_tui.config import load_settings
from slob_tui.core.calendar import us_equity_calendar
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Candle
from slob_tui.engine.engine import LiveTradingEngine
from slob_tui.errors import UsageError
from slob_tui.ops.wiring import OpsRuntime, equity_market_open
from tests.fakes.telegram_api import FakeBotAPI
from tests.ops.conftest import T0, ScriptedFeed

TOKEN = "555555555:AAE-wiring-test-token-abcdefghijklmnop"
HOUR = 3600 * 10**9


def test_nothing_configured_attaches_nothing():
    engine = LiveTradingEngine(ScriptedFeed(), enable_tracker=False)
    handle = OpsRuntime(engine, load_settings(env={}, dotenv=None))
    assert handle.metrics is None and handle.telegram is None
    assert handle.health() == {}


def test_token_without_chat_ids_is_refused():
    engine = LiveTradingEngine(ScriptedFeed(), enable_tracker=False)
    settings = load_settings(env={"TELEGRAM_BOT_TOKEN": TOKEN}, dotenv=None)
    with pytest.raises(UsageError, match="TELEGRAM_CHAT_IDS is empty"):
        OpsRuntime(engine, settings)


@pytest.mark.parametrize("port", [-1, 70000])
def test_bad_metrics_port_is_refused(port):
    engine = LiveTradingEngine(ScriptedFeed(), enable_tracker=False)
    with pytest.raises(UsageError, match="--metrics-port must be a port number"):
        OpsRuntime(engine, load_settings(env={}, dotenv=None), metrics_port=port)


async def test_telegram_from_settings_sends_a_summary_at_stop(clock):
    api = FakeBotAPI(TOKEN)
    await api.start()
    settings = load_settings(
        env={
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_IDS": "111",
            "SLOB_TELEGRAM_BASE_URL": api.base_url,
            "SLOB_METRICS_PORT": "0",
        },
        dotenv=None,
    )
    engine = LiveTradingEngine(ScriptedFeed(), clock=clock, enable_tracker=False)
    handle = OpsRuntime(engine, settings)
    assert handle.telegram is not None and handle.metrics is None
    await engine.start()
    await handle.start()
    engine.bus.emit(Event(EventType.CANDLE_COMPLETED, T0, Candle("NQ", T0, 1, 1, 1, 1, 1)))
    await engine.stop_pipeline("test over")
    await handle.stop()
    await engine.close()
    await api.close()
    assert api.texts_to(111) == [
        "DAILY SUMMARY 2024-03-04: 1 candles, 0 setups (0 triggered, 0 invalidated), 0 fills, "
        "0 trades closed, P&L +0.00 (engine stopping)"
    ]
    assert handle.health()["alerts"] == {"sent": 1, "failed": 0, "dropped": 0}


def test_exchange_hours():
    is_open = us_equity_calendar().is_open
    assert is_open(T0)  # Monday 10:00 New York
    assert not is_open(T0 - 1 * HOUR)  # 09:00
    assert not is_open(T0 + 6 * HOUR)  # 16:00
    assert not is_open(T0 - 48 * HOUR)  # Saturday 10:00


def test_alpaca_stock_feed_judges_staleness_by_exchange_hours():
    market_open = equity_market_open("alpaca", load_settings(env={}, dotenv=None))
    engine = LiveTradingEngine(ScriptedFeed(), enable_tracker=False, market_open=market_open)
    assert engine.health_monitor.market_open(T0) and not engine.health_monitor.market_open(
        T0 - 48 * HOUR
    )
    env = {"SLOB_EXTRA_HOLIDAYS": "2024-03-04"}  # a closure no rule knows
    closed = equity_market_open("alpaca", load_settings(env=env, dotenv=None))
    assert closed is not None and not closed(T0)
    assert equity_market_open("demo", load_settings(env={}, dotenv=None)) is None
