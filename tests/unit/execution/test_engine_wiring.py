"""Execution inside a real node: persisted before acted on, the console's view, and the kill
switch from the command line reaching a running engine."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from slob_tui.brokers.base import OrderRequest
from slob_tui.brokers.paper import PaperBroker
from slob_tui.config import load_settings
from slob_tui.core.clock import ManualClock
from slob_tui.core.events import EventType
from slob_tui.core.models import Direction
from slob_tui.execution.wiring import BrokerSetup, paper_persist
from slob_tui.node import NodeConfig, TradingNode

from .conftest import T0, candle, triggered

REPO = Path(__file__).resolve().parents[3]
NQ = "nq_1min_20231119_20231204_et.csv"


class JournalFirstPaper(PaperBroker):
    """Fails the run if an order arrives before its TRIGGERED transition is on disk."""

    def __init__(self, state: Any) -> None:
        super().__init__(persist=paper_persist(state))
        self.state = state
        self.checked = 0

    async def submit(self, req: OrderRequest):  # noqa: ANN201
        if req.leg == "entry":
            states = [u.state.value for u in await self.state.setup_history(req.setup_id)]
            assert states[-1] == "TRIGGERED", (req.client_order_id, states)
            self.checked += 1
        return await super().submit(req)


async def test_every_order_follows_its_persisted_trigger(shared_data: Path, tmp_path: Path) -> None:
    from slob_tui.feeds.replay import ReplayFeed

    feed = ReplayFeed(str(shared_data / NQ), tz="America/New_York", speed=None)
    broker: list[JournalFirstPaper] = []

    def factory(state: Any) -> BrokerSetup:
        broker.append(JournalFirstPaper(state))
        return BrokerSetup(broker[0], simulator=broker[0])

    engine2 = TradingNode(config(tmp_path / "t.db"), feed=feed, venue=factory)
    await engine2.run()
    assert broker[0].checked >= 5
    orders, positions = engine2.snapshot().orders, engine2.snapshot().positions
    assert orders and all(o.client_order_id.startswith("slob-NQ-") for o in orders)
    assert isinstance(positions, tuple)
    assert engine2.health()["execution"]["placed"] == broker[0].checked


def config(db: Path, env: dict[str, str] | None = None, live: bool = False) -> NodeConfig:
    return NodeConfig(db=str(db), live=live, settings=load_settings(env=env or {}, dotenv=None))


class IdleFeed:
    name, symbols = "idle", ("NQ",)

    def __init__(self, mode: str = "PAPER") -> None:
        self.mode = mode
        self._stop = asyncio.Event()

    async def run(self, sink: Any) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        self._stop.set()

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def health(self) -> dict[str, Any]:
        return {}


async def test_flatten_command_reaches_the_running_engine(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    node = TradingNode(config(db), feed=IdleFeed(), clock=ManualClock(T0))
    engine, ex = node.engine, node.executor
    kills = []
    engine.bus.subscribe(EventType.KILL_SWITCH, kills.append)
    await node.start()
    try:
        await engine.put_candles([candle(0, 100, 101, 99, 100)])
        await ex.place(triggered(0, Direction.LONG, 100, 95, 110))
        await engine.put_candles([candle(1, 100, 102, 99, 101)])
        assert [p.qty for p in await ex.broker.positions()] == [1.0]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLOB_", "REDIS_"))}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "slob_tui",
            "flatten",
            "--db",
            str(db),
            "--wait",
            "20",
            "--reason",
            "from the shell",
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(REPO)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        i = 2
        while proc.returncode is None:  # candles keep coming; the engine checks each one
            await engine.put_candles([candle(i, 101, 102, 100, 101)])
            i += 1
            try:
                await asyncio.wait_for(proc.wait(), 0.1)
            except TimeoutError:
                pass
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert "executed by the running engine: cancelled" in out.decode()  # its front door
        assert ex.killed == "from the shell"
        assert await ex.broker.positions() == [] and await ex.broker.open_orders() == []
        assert [k.data.flattened for k in kills] == [("NQ",)]
    finally:
        await node.stop("test over")


async def test_flatten_command_on_a_stopped_paper_account(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    db = tmp_path / "s.db"
    node = TradingNode(config(db), feed=IdleFeed(), clock=ManualClock(T0))
    engine, ex = node.engine, node.executor
    await node.start()
    await engine.put_candles([candle(0, 100, 101, 99, 100)])
    await ex.place(triggered(0, Direction.SHORT, 100, 105, 90))
    await engine.put_candles([candle(1, 100, 102, 99, 101)])
    await node.stop("closed for the night")
    monkeypatch.chdir(tmp_path)
    for k in [k for k in os.environ if k.startswith(("SLOB_", "REDIS_", "ALPACA_"))]:
        monkeypatch.delenv(k)
    from slob_tui.cli import main

    assert await asyncio.to_thread(main, ["flatten", "--db", str(db)]) == 0
    assert "cancelled 2 orders, flattened NQ" in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        trade = conn.execute("SELECT exit_leg, exit_price, pnl FROM trades").fetchall()
        kill = conn.execute("SELECT value FROM hot_state WHERE key = 'value:kill_switch'")
        assert trade == [("close", 101.0, -1.0)] and kill.fetchone() is not None
    assert await asyncio.to_thread(main, ["flatten", "--db", str(db), "--reset"]) == 0
    assert "kill switch cleared" in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT COUNT(*) FROM hot_state WHERE key = 'value:kill_switch'"
        ).fetchone() == (0,)
    assert await asyncio.to_thread(main, ["flatten", "--db", str(tmp_path)]) == 2
    assert "state database" in capsys.readouterr().err


def test_the_mode_says_where_orders_go(tmp_path: Path) -> None:
    live_data = TradingNode(config(tmp_path / "a.db"), feed=IdleFeed("LIVE"))
    assert live_data.mode == "PAPER"  # live market data, paper orders
    demo = TradingNode(config(tmp_path / "b.db"), feed=IdleFeed("DEMO"))
    assert demo.mode == "DEMO"
    import pytest

    from slob_tui.errors import UsageError

    with pytest.raises(UsageError, match="ALPACA_API_KEY"):
        TradingNode(config(tmp_path / "c.db", live=True), feed=IdleFeed())
    with pytest.raises(UsageError, match="--live needs the Alpaca broker"):
        TradingNode(config(tmp_path / "c.db", {"SLOB_BROKER": "paper"}, live=True),
                    feed=IdleFeed())  # fmt: skip
    with pytest.raises(UsageError, match="SLOB_BROKER must be paper or alpaca"):
        TradingNode(config(tmp_path / "d.db", {"SLOB_BROKER": "ib"}), feed=IdleFeed())


async def test_unreachable_redis_fails_the_start_in_one_line_and_closes_the_store(
    tmp_path: Path,
) -> None:
    import pytest

    from slob_tui.storage.state import StateError

    engine = TradingNode(config(tmp_path / "s.db", {"REDIS_URL": "redis://127.0.0.1:1/0"}),
                         feed=IdleFeed())  # fmt: skip
    with pytest.raises(StateError, match="REDIS_URL: cannot reach Redis"):
        await engine.start()
    with pytest.raises(Exception, match="not open"):
        await engine.store.count()  # closed: no thread left to keep the process alive


async def test_flatten_refuses_a_path_where_no_database_exists(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """A mistyped --db used to create the folders and an empty account, then report a kill
    switch on it with exit 0; now: one line, exit 2, nothing created."""
    monkeypatch.chdir(tmp_path)
    for k in [k for k in os.environ if k.startswith(("SLOB_", "REDIS_", "ALPACA_"))]:
        monkeypatch.delenv(k)
    from slob_tui.cli import main

    missing = tmp_path / "typo" / "slob.db"
    for extra in ([], ["--reset"]):
        assert await asyncio.to_thread(main, ["flatten", "--db", str(missing), *extra]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and f"state database {missing}" in err
    assert list(tmp_path.iterdir()) == []
