"""/flatten over Telegram reaches the real order executor (paper broker, SQLite state)."""

from __future__ import annotations

import re

from slob_tui.config import load_settings
from slob_tui.core.events import EventType
from slob_tui.node import NodeConfig, TradingNode
from tests.fakes.telegram_api import FakeBotAPI
from tests.ops.conftest import ScriptedFeed

TOKEN = "616161616:AAE-flatten-test-token-abcdefghijklmnop"
TRADER = 111


async def test_flatten_confirmed_runs_the_executors_kill_switch(clock, tmp_path):
    api = FakeBotAPI(TOKEN)
    await api.start()
    settings = load_settings(
        env={
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_IDS": "111",
            "SLOB_TELEGRAM_BASE_URL": api.base_url,
        },
        dotenv=None,
    )
    engine = TradingNode(NodeConfig(db=str(tmp_path / "slob.db"), settings=settings),
                         feed=ScriptedFeed(), clock=clock)  # fmt: skip
    executor, handle = engine.executor, engine.ops
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
        assert [k.data.reason for k in kills if k.data.active] == ["telegram"]
        assert handle.telegram.commands.flattened == 1
    finally:
        await engine.stop("test over")
        await api.close()
