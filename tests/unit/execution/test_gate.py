"""The trading gate: kill switch and halts, persisted and re-read before every order; a kill
during a retry sleep or an in-flight submission lets nothing reach the broker after the
cancel; a kill or reset made by another process (another StateManager on the same file)
reaches a running executor before its next order, with no candle in between."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from slob_tui.brokers.base import OrderRequest, TransientBrokerError
from slob_tui.brokers.paper import PaperBroker
from slob_tui.core.clock import ManualClock
from slob_tui.core.event_payloads import KillSwitchNotice
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Direction, OrderStatus
from slob_tui.core.retry import RetryPolicy
from slob_tui.engine.bus import EventBus
from slob_tui.execution.executor import OrderExecutor
from slob_tui.execution.gate import GateState, TradingGate, decide
from slob_tui.storage.state import StateManager

from .conftest import T0, candle, make_rig, trigger_event, triggered


async def until(cond: Callable[[], bool]) -> None:
    for _ in range(10_000):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


class WatchedPaper(PaperBroker):
    """The paper broker behind a bad network: the first `fail` submits time out (before
    reaching the book); with `hold`, a submit waits for it (a request in flight). Every
    order call is logged, so a test sees what reached the broker after the cancel."""

    def __init__(self, fail: int = 0, hold: asyncio.Event | None = None) -> None:
        super().__init__(1e6)
        self.fail, self.hold = fail, hold
        self.calls: list[str] = []
        self.in_flight = asyncio.Event()

    async def submit(self, req: OrderRequest):  # noqa: ANN201
        self.calls.append(f"submit {req.leg}")
        if self.hold is not None:
            self.in_flight.set()
            await self.hold.wait()
        if self.fail > 0:
            self.fail -= 1
            raise TransientBrokerError("HTTP 504", 504)
        return await super().submit(req)

    async def cancel_all(self) -> None:
        self.calls.append("cancel_all")
        await super().cancel_all()


async def executor_on(db: Path, broker: PaperBroker, events: list[Event]) -> OrderExecutor:
    """A real executor that really sleeps between retries (5 s: a kill must cut it short)."""
    state = await StateManager(db).open()
    bus = EventBus()
    bus.subscribe(None, events.append)
    ex = OrderExecutor(
        broker,
        state,
        bus,
        clock=ManualClock(T0),
        retry=RetryPolicy(base_s=5.0, cap_s=5.0, attempts=5),
        max_signal_age_s=0,
    )
    await ex.load()
    await broker.on_candle(candle(0, 100, 101, 99, 100))
    return ex


def test_what_each_state_lets_through() -> None:
    open_, killed = GateState(), GateState(killed="console", kill_id="k")
    halted, blind = GateState(halted="unknown position"), GateState(store_fault="disk")
    assert [decide(open_, p).allowed for p in ("entry", "exit", "close")] == [True] * 3
    assert [decide(killed, p).allowed for p in ("entry", "exit", "close")] == [
        False,
        False,
        True,
    ]  # the kill flattens: no new exits either, closes always
    assert [decide(halted, p).allowed for p in ("entry", "exit", "close")] == [
        False,
        True,
        True,
    ]  # a halt keeps protecting open positions
    assert [decide(blind, p).allowed for p in ("entry", "exit", "close")] == [False, True, True]
    assert decide(killed, "entry").reason.startswith("kill switch is on")
    assert decide(halted, "entry").reason == "trading halted: unknown position"


async def test_kill_during_a_retry_sleep_sends_nothing_after_the_cancel(tmp_path: Path) -> None:
    events: list[Event] = []
    broker = WatchedPaper(fail=1)
    ex = await executor_on(tmp_path / "s.db", broker, events)
    placing = asyncio.create_task(
        ex.on_setup_event(trigger_event(triggered(0, Direction.LONG, 100, 95, 110)))
    )
    await until(lambda: ex.retries == 1)  # the first try failed: sleeping before the next
    done = await ex.kill_switch("console")
    await placing
    assert broker.calls == ["submit entry", "cancel_all"]
    assert await broker.open_orders() == [] and await broker.positions() == []
    [rec] = await ex.state.orders()
    assert (rec.order.status, rec.info["reason"]) == (OrderStatus.CANCELED, "not sent: kill switch")
    assert done["active"] and [e.type for e in events if e.type is EventType.ORDER_PLACED] == []
    await ex.state.close()


async def test_kill_waits_for_the_submission_in_flight_then_cancels_it(tmp_path: Path) -> None:
    events: list[Event] = []
    hold = asyncio.Event()
    broker = WatchedPaper(hold=hold)
    ex = await executor_on(tmp_path / "s.db", broker, events)
    placing = asyncio.create_task(
        ex.on_setup_event(trigger_event(triggered(0, Direction.LONG, 100, 95, 110)))
    )
    await broker.in_flight.wait()
    killing = asyncio.create_task(ex.kill_switch("console"))
    await until(lambda: ex.killed == "console")
    assert not ex.gate.check("entry").allowed  # closed at once ...
    for _ in range(50):
        await asyncio.sleep(0)
    assert not killing.done() and "cancel_all" not in broker.calls  # ... cancel after the send
    hold.set()
    await asyncio.gather(placing, killing)
    assert broker.calls == ["submit entry", "cancel_all"]
    assert await broker.open_orders() == []
    statuses = {r.order.leg: r.order.status for r in await ex.state.orders()}
    assert statuses == {
        "entry": OrderStatus.CANCELED,
        "target": OrderStatus.CANCELED,
        "stop": OrderStatus.CANCELED,
    }
    await ex.state.close()


async def test_another_process_kill_and_reset_reach_the_next_order(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    rig = await make_rig(db)
    await rig.feed(candle(0, 100, 101, 99, 100))
    await rig.executor.on_setup_event(trigger_event(triggered(0, Direction.LONG, 100, 95, 110)))
    await rig.feed(candle(1, 100, 103, 99, 102))  # in a position, its bracket working
    other = await StateManager(db).open()  # `slob-tui flatten` in a second process
    shell = TradingGate(other)
    kill = await shell.kill("second process")
    # no candle: the next trigger alone makes the executor read the switch
    await rig.executor.on_setup_event(trigger_event(triggered(1, Direction.SHORT, 102, 105, 95)))
    assert rig.of(EventType.ORDER_REJECTED)[-1].reason == (
        "kill switch is on: no new orders until it is reset (second process)"
    )
    await rig.executor.drain()  # the kill it learned of, acted on after the refused order
    [active] = [k for k in rig.of(EventType.KILL_SWITCH) if k.active]
    assert (active.reason, active.flattened) == ("second process", ("NQ",))
    assert await rig.broker.positions() == [] and await rig.broker.open_orders() == []
    assert await shell.acknowledged(kill.kill_id)
    await shell.reset()
    await rig.executor.on_setup_event(trigger_event(triggered(2, Direction.LONG, 102, 98, 110)))
    assert len(rig.of(EventType.ORDER_PLACED)) == 2
    assert rig.of(EventType.KILL_SWITCH)[-1] == KillSwitchNotice(False, "reset")
    assert rig.executor.health().kill_switch == ""
    await other.close()
    await rig.state.close()


class SlowRead(StateManager):
    """A state store whose next read of the switch waits until released."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reading = asyncio.Event()
        self.release = asyncio.Event()
        self.slow = False

    async def get_value(self, key: str):  # noqa: ANN201
        value = await super().get_value(key)
        if self.slow:
            self.slow = False
            self.reading.set()
            await self.release.wait()
        return value


async def test_a_read_older_than_a_local_kill_does_not_reopen_the_gate(tmp_path: Path) -> None:
    state = await SlowRead(tmp_path / "s.db").open()
    gate = TradingGate(state)
    state.slow = True
    refreshing = asyncio.create_task(gate.refresh())
    await state.reading.wait()  # it read "no kill" and is about to apply it
    await gate.kill("console")
    state.release.set()
    await refreshing
    assert gate.state.killed == "console" and not gate.check("entry").allowed
    assert (await gate.refresh()).killed == "console"
    await state.close()


async def test_an_unreadable_switch_refuses_entries_until_it_reads_again(tmp_path: Path) -> None:
    state = await StateManager(tmp_path / "s.db").open()
    gate = TradingGate(state)
    await state.close()  # the store stops answering
    assert not (await gate.admit("entry")).allowed
    assert "kill switch unreadable" in gate.check("entry").reason
    assert (await gate.admit("close")).allowed and (await gate.admit("exit")).allowed
    await state.open()
    assert (await gate.admit("entry")).allowed and gate.state.store_fault == ""
    await state.close()


async def test_another_process_kill_between_two_tries_stops_the_next_try(tmp_path: Path) -> None:
    events: list[Event] = []
    broker = WatchedPaper(fail=1)
    ex = await executor_on(tmp_path / "s.db", broker, events)
    ex.submitter.policy = RetryPolicy(base_s=2.0, cap_s=2.0, attempts=5)  # sleeps 1-2 s
    other = await StateManager(tmp_path / "s.db").open()  # `slob-tui flatten`, ready
    placing = asyncio.create_task(
        ex.on_setup_event(trigger_event(triggered(0, Direction.LONG, 100, 95, 110)))
    )
    await until(lambda: ex.retries == 1)
    await TradingGate(other).kill("second process")  # only the database knows
    await placing
    await ex.drain()
    assert broker.calls == ["submit entry", "cancel_all"]  # the retry read the switch first
    assert await broker.open_orders() == []
    [rec] = await ex.state.orders()
    assert rec.order.status is OrderStatus.CANCELED
    await other.close()
    await ex.state.close()


class RefusesWrites(StateManager):
    """A state store whose disk is full while `full` is set: writes fail, reads work."""

    full = False

    async def set_value(self, key: str, value: object) -> None:
        if self.full:
            raise OSError(28, "No space left on device")
        await super().set_value(key, value)


async def test_a_kill_the_store_refuses_still_holds_and_is_saved_later(tmp_path: Path) -> None:
    state = await RefusesWrites(tmp_path / "s.db").open()
    gate = TradingGate(state)
    state.full = True
    await gate.kill("console")  # the kill goes on: cancel and flatten need no disk
    assert (await gate.refresh()).killed == "console"  # the store says "no kill": not believed
    assert not (await gate.admit("entry")).allowed
    state.full = False
    await gate.refresh()  # saved now: other processes and a restart see it
    other = await StateManager(tmp_path / "s.db").open()
    assert (await TradingGate(other).load()).killed == "console"
    await other.close()
    await state.close()


class Stopwatch:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_per_candle_poll_reads_the_switch_once_per_interval(tmp_path: Path) -> None:
    """A kill or reset from another process reaches `poll` once the interval has passed since
    the last read; polls within it answer from memory; an order's `admit` always reads."""
    state = await StateManager(tmp_path / "s.db").open()
    watch = Stopwatch()
    gate = TradingGate(state, poll_every_s=5.0, monotonic=watch)
    await gate.load()
    other = await StateManager(tmp_path / "s.db").open()  # `slob-tui flatten`
    reads = gate.refreshes
    kill = await TradingGate(other).kill("second process")
    watch.now += 4.0
    assert (await gate.poll()).killed == "" and gate.refreshes == reads  # within the interval
    watch.now += 2.0
    assert (await gate.poll()).kill_id == kill.kill_id
    assert gate.pending_kill() is not None and not gate.check("entry").allowed
    await TradingGate(other).reset()
    assert not (await gate.poll()).killed == ""  # just read: not yet
    assert (await gate.admit("entry")).allowed  # an order reads it whatever the interval
    await TradingGate(other).kill("again")
    watch.now += 5.0
    assert (await gate.poll()).killed == "again"
    await other.close()
    await state.close()


async def test_a_poll_after_a_failed_read_reads_again_at_once(tmp_path: Path) -> None:
    """An unreadable switch keeps entries refused, and the next poll tries again without
    waiting for the interval."""
    state = await StateManager(tmp_path / "s.db").open()
    gate = TradingGate(state, poll_every_s=3600.0, monotonic=Stopwatch())
    await gate.poll()
    await state.close()
    await gate.admit("entry")
    assert "kill switch unreadable" in gate.check("entry").reason
    await state.open()
    await gate.poll()
    assert gate.check("entry").allowed
    await state.close()
