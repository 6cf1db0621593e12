"""A running node on a database whose disk fills up (a real tmpfs, real ENOSPC) and is freed.

In process, so the test can read what the console and operations read: the health report,
the trading gate, the alerts (through the `AlertRouter` with a transport that keeps the texts)
and every candle the engine closed. Needs root for `mount -t tmpfs`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from slob_tui.config import load_settings
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.node import NodeConfig, TradingNode
from slob_tui.ops.alerts import AlertRouter
from slob_tui.storage.candles import CandleStore
from slob_tui.storage.errors import StoreError, StoreUnavailableError
from tests.polling import until
from tests.servers import fill_disk


def node_on(db: Path, **extra: str) -> TradingNode:
    settings = load_settings({"SLOB_STOP_TIMEOUT_S": "10", **extra}, dotenv=None)
    return TradingNode(NodeConfig(db=str(db), speed=600.0, seed=7, settings=settings))


async def test_a_full_disk_halts_trading_says_why_and_loses_no_candle(disk: Path) -> None:
    node = node_on(disk / "slob.db")
    texts: list[str] = []

    async def send(text: str) -> None:
        texts.append(text)

    router = AlertRouter(send)
    router.attach(node.bus)
    closed: list[int] = []
    node.bus.subscribe(EventType.CANDLE_COMPLETED, lambda e: closed.append(e.data.start))
    router.start()
    await node.start()
    await until(lambda: len(closed) > 20, 30, "candles flowing")
    filler = fill_disk(disk)

    def faulted() -> bool:
        return node.health().status == "store_fault"

    await until(faulted, 30, "health reporting the store fault")
    health = node.health()
    assert not health.healthy and health.storage is not None
    assert "disk is full" in health.storage.fault
    assert "state cannot be persisted" in node.executor.gate.state.halted
    assert node.executor.gate.check("entry").allowed is False
    await until(lambda: any(t.startswith("STORE FAULT") for t in texts), 10, "the alert")
    queued_at = len(closed)
    await until(lambda: node.store.pending > 0 and len(closed) > queued_at + 10, 30,
                "candles closing and queuing while the disk is full")  # fmt: skip
    assert node.engine.stopped is False and node.engine.feed_error is None

    filler.unlink()
    await until(lambda: node.health().storage.ok, 60, "the store writable again")
    assert node.health().status != "store_fault"
    assert node.executor.gate.state.halted == ""
    await until(lambda: any(t.startswith("STORE RECOVERED") for t in texts), 10, "recovery")
    await node.stop("test over")
    await router.stop()
    with sqlite3.connect(disk / "slob.db") as conn:
        stored = [r[0] for r in conn.execute("SELECT ts_ns FROM candles ORDER BY ts_ns")]
    conn.close()
    assert stored == sorted(set(closed)), "a closed candle is missing from the store"
    assert node.unwritten == ""


async def test_a_disk_full_past_the_give_up_time_stops_the_node_for_a_restart(
    disk: Path,
) -> None:
    node = node_on(disk / "slob.db", SLOB_STORE_GIVE_UP_S="1")
    events: list[Event] = []
    node.bus.subscribe(EventType.ERROR, events.append)
    run = asyncio.create_task(node.run(duration=120))
    await until(lambda: node.engine.candles_processed > 20, 30, "candles flowing")
    filler = fill_disk(disk)
    try:
        with pytest.raises(StoreUnavailableError, match="stayed unwritable") as err:
            await asyncio.wait_for(run, 60)
    finally:
        filler.unlink()
    assert err.value.exit_status == 75
    kinds = [e.data.kind for e in events]
    assert "store_fault" in kinds and "store_give_up" in kinds
    assert node.stopped and not node.lock.held


def candles(n: int, start: int = 1_700_000_040_000_000_000) -> list[Candle]:
    return [Candle("NQ", start + i * NS_PER_MINUTE, 1.0, 2.0, 0.5, 1.5, 10.0, 3)
            for i in range(n)]  # fmt: skip


async def test_the_candle_writer_retries_a_full_disk_by_itself_and_loses_nothing(
    disk: Path,
) -> None:
    store = await CandleStore(disk / "c.db", flush_interval=0.05, max_pending=50).open()
    first = candles(500)
    store.enqueue(first[:10])
    await until(lambda: store.pending == 0, 10, "the first candles written")
    filler = fill_disk(disk)
    store.enqueue(first[10:])  # the WAL grows: the disk refuses it
    await until(lambda: store.health.failing, 30, "the write refused")
    assert store.pending == 490 and store.overflowing
    failures = store.health.failures
    await asyncio.sleep(1.5)
    assert 1 <= store.health.failures - failures <= 6  # backoff, not a retry every 50 ms
    filler.unlink()
    await until(lambda: store.pending == 0, 30, "the queue written once the disk is freed")
    assert not store.health.failing and store.health.recoveries == 1
    assert [c.start for c in await store.candles("NQ")] == [c.start for c in first]
    await store.close()


async def test_closing_on_a_full_disk_retries_until_its_timeout_then_says_so(
    disk: Path,
) -> None:
    store = await CandleStore(disk / "c.db", flush_interval=60).open()
    await store.upsert_many(candles(5))
    filler = fill_disk(disk)
    store.enqueue(candles(3_000, start=1_800_000_000_000_000_000))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(StoreError, match="full"):
        await asyncio.wait_for(store.close(timeout_s=2.0), 20)
    assert 1.5 <= loop.time() - t0 < 15  # it retried, then gave up within its bound
    assert store._db is None and not store.database.is_open  # closed anyway
    filler.unlink()
