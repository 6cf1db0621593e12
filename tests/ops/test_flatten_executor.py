"""/flatten over Telegram reaches the real order executor (paper broker, SQLite state)."""

from __future__ import annotations

import re

from slob_tui.config import load_settings
from slob_tui.core.events import EventType
from slob_tui.engine.engine import LiveTradingEngine
from slob_tui.execution.wiring import attach_execution
from slob_tui.ops.wiring import attach_ops
from slob_tui.wiring import RunOptions
from tests.fakes.telegram_api import FakeBotAPI
from tests.ops.conftest import ScriptedFeed

TOKEN = "616161616:AAE-flatten-test-token-abcdefghijklmnop"
TRADER = 111


async def test_flatten_confirmed_runs_the_executors_kill_switch(clock, tmp_path):
    api = FakeBotAPI(TOKEN)
    await api.start()
    settings = load_settings(env={"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_IDS": "111",
                                  "SLOB_TELEGRAM_BASE_URL": api.base_url}, dotenv=None)
    opts = RunOptions(db=str(tmp_path / "slob.db"))
    engine = LiveTradingEngine(ScriptedFeed(), clock=clock, enable_tracker=False)
    executor = attach_execution(engine, opts, settings)
    handle = attach_ops(engine, opts, settings)
    kills = []
    engine.bus.subscribe(EventType.KILL_SWITCH, kills.append)
    await engine.start()
    try:
        await api.push_message(TRADER, "/flatten")
        code = re.search(r"/confirm (\d{4})", (await api.wait_sent(1))[-1]["text"]).group(1)
        assert executor.killed == ""
        await api.push_message(TRADER, f"/confirm {code}")
        await api.wait_sent(3)  # the reply and the kill-switch alert, in either order
        assert sorted(api.texts_to(TRADER)[1:]) == [
            "Flattened: 0 orders cancelled, positions closed: none. New orders are blocked "
            "until reset.",
            "KILL SWITCH (telegram): 0 orders cancelled, positions closed: none",
        ]
        assert executor.killed == "telegram"
        assert [k.data["reason"] for k in kills if k.data.get("active")] == ["telegram"]
        assert handle.telegram.commands.flattened == 1
    finally:
        await engine.stop("test over")
        await api.close()
