"""The collector settings an engine applies while it runs, and puts back when it stops."""

from __future__ import annotations

import asyncio
import gc

from slob_tui.core.health import FeedHealth
from slob_tui.engine import gc_policy
from slob_tui.engine.engine import LiveTradingEngine

T0 = 1_700_000_040 * 10**9  # a minute boundary


def _state() -> tuple[tuple[int, int, int], bool, int]:
    return gc.get_threshold(), gc.get_freeze_count() > 0, gc_policy.holders()


def test_first_acquire_applies_last_release_restores():
    before = _state()
    assert before[2] == 0, "an earlier test left an engine holding the settings"
    try:
        gc_policy.acquire()
        assert gc.get_threshold() == gc_policy.RUNNING_THRESHOLDS
        assert gc.get_freeze_count() > 0
        gc_policy.acquire()  # a second engine in the same process
        gc_policy.release()
        assert gc.get_threshold() == gc_policy.RUNNING_THRESHOLDS  # one still runs
        assert gc_policy.holders() == 1
    finally:
        while gc_policy.holders():
            gc_policy.release()
    assert _state() == before
    assert gc.get_freeze_count() == 0
    gc_policy.release()  # an extra release is harmless
    assert _state() == before


def test_cycles_are_still_collected_while_an_engine_runs():
    class Node:
        pass

    try:
        gc_policy.acquire()
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2
    finally:
        gc_policy.release()


class _TicksFeed:
    """Two minutes of ticks for one symbol, then the end of the data."""

    name = "ticks"
    mode = "REPLAY"
    symbols = ("X",)

    async def run(self, sink) -> None:
        ticks = [("X", T0 + k * 10**9, 10.0 + k % 7, 1.0, "", (), k) for k in range(120)]
        sink.set_time(ticks[-1][1])
        await sink.put_ticks_wait(ticks)

    async def stop(self) -> None:
        pass

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def health(self) -> FeedHealth:
        return FeedHealth(name="idle", state="idle")


def test_an_engine_holds_the_settings_while_it_runs_and_puts_them_back():
    before = _state()
    seen: list[tuple[tuple[int, int, int], int]] = []
    engine = LiveTradingEngine(_TicksFeed(), candle_consumers=[
        lambda candle: seen.append((gc.get_threshold(), gc_policy.holders()))])  # fmt: skip
    asyncio.run(engine.run())
    assert engine.candles_processed == 2
    assert seen == [(gc_policy.RUNNING_THRESHOLDS, 1)] * 2
    assert _state() == before
