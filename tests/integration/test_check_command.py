"""The checkpoint: passes on the demo market, fails when candles are not all persisted or
the feed broke."""

from __future__ import annotations

import asyncio

import pytest

from slob_tui.cli import main
from slob_tui.commands.check import checkpoint_report
from slob_tui.core.health import FeedHealth
from slob_tui.engine.engine import LiveTradingEngine


def test_check_passes_on_the_demo_market(tmp_path, capsys):
    code = main(["check", "--minutes", "0.05", "--speed", "600", "--db", str(tmp_path / "c.db")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "candles persisted" in out and out.strip().endswith("PASS")


class BrokenFeed:
    name = "broken"
    mode = "DEMO"
    symbols = ("X",)

    async def run(self, sink):
        sink.put_ticks([("X", 60 * 10**9, 1.0, 1.0, "", None, None)])
        await asyncio.sleep(0.05)
        raise ConnectionError("stream refused")

    async def stop(self):
        return None

    def pause(self):
        return None

    def resume(self):
        return None

    def health(self):
        return FeedHealth(name="broken", state="failed")


async def test_report_fails_on_a_broken_feed_and_unpersisted_candles():
    engine = LiveTradingEngine(BrokenFeed(), store=None, enable_tracker=False)
    with pytest.raises(ConnectionError):
        await engine.run()
    ok, rows = checkpoint_report(engine, persisted=0, minutes=0.01)
    verdict = {name: passed for name, _, passed in rows}
    assert not ok
    assert verdict["connection"] is False
    assert verdict["candles generated"] is True  # the one tick's candle closed at stop
    assert verdict["candles persisted"] is False
