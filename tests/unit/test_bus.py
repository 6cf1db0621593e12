import asyncio
from dataclasses import replace

from slob_tui.core.events import Event, EventCategory, EventType
from slob_tui.engine.bus import EventBus
from tests.payloads import CANDLE, EXAMPLES


def ev(t: EventType = EventType.CANDLE_COMPLETED, data=None) -> Event:
    return Event(t, 0, EXAMPLES[t] if data is None else data)


def test_at_least_the_seeds_fourteen_types_across_four_categories():
    assert len(EventType) >= 14
    assert {t.category for t in EventType} == set(EventCategory)
    assert EventType.SETUP_TRIGGERED.category is EventCategory.SETUP
    assert EventType.ORDER_FILLED.category is EventCategory.TRADING
    assert EventType.SAFE_MODE.category is EventCategory.SYSTEM


def test_several_handlers_per_type_and_wildcard_in_order():
    bus = EventBus()
    seen = []
    bus.subscribe(EventType.CANDLE_COMPLETED, lambda e: seen.append("a"))
    bus.subscribe(EventType.CANDLE_COMPLETED, lambda e: seen.append("b"))
    bus.subscribe(None, lambda e: seen.append("*"))
    bus.subscribe(EventType.ORDER_FILLED, lambda e: seen.append("x"))
    bus.emit(ev())
    assert seen == ["a", "b", "*"]


async def test_failing_handler_is_isolated_and_counted():
    bus = EventBus()
    seen = []

    def boom(e):
        raise RuntimeError("bad handler")

    async def aboom(e):
        raise ValueError("bad async handler")

    bus.subscribe(EventType.CANDLE_COMPLETED, boom)
    bus.subscribe(EventType.CANDLE_COMPLETED, aboom)
    bus.subscribe(EventType.CANDLE_COMPLETED, lambda e: seen.append(e.data.start))
    bus.emit(ev(data=replace(CANDLE, start=1)))
    await bus.drain()
    await bus.emit_and_wait(ev(data=replace(CANDLE, start=2)))
    assert seen == [1, 2]
    assert bus.handler_errors == 4
    assert sum(bus.errors_by_handler.values()) == 4


async def test_emit_and_wait_awaits_async_handlers_in_registration_order():
    bus = EventBus()
    order = []

    async def slow(e):
        await asyncio.sleep(0.01)
        order.append("persist")

    bus.subscribe(EventType.SETUP_TRIGGERED, slow)
    bus.subscribe(EventType.SETUP_TRIGGERED, lambda e: order.append("act"))
    await bus.emit_and_wait(ev(EventType.SETUP_TRIGGERED))
    assert order == ["persist", "act"]


async def test_emit_schedules_async_handlers_without_waiting():
    bus = EventBus()
    done = []

    async def handler(e):
        await asyncio.sleep(0)
        done.append(e.data)

    bus.subscribe(EventType.HEALTH, handler)
    report = EXAMPLES[EventType.HEALTH]
    bus.emit(ev(EventType.HEALTH, report))
    assert done == []
    await bus.drain()
    assert done == [report]


def test_history_keeps_the_last_thousand():
    bus = EventBus()
    for i in range(1500):
        bus.emit(ev(data=replace(CANDLE, start=i)))
    assert len(bus.history) == 1000
    assert bus.history[0].payload(type(CANDLE)).start == 500
    starts = [e.payload(type(CANDLE)).start for e in bus.recent(EventType.CANDLE_COMPLETED, 3)]
    assert starts == [1497, 1498, 1499]
    assert EventBus(history_size=0).recent() == []


def test_unsubscribe():
    bus = EventBus()
    seen = []
    h = seen.append
    bus.subscribe(EventType.ERROR, h)
    bus.unsubscribe(EventType.ERROR, h)
    bus.emit(ev(EventType.ERROR))
    assert seen == [] and bus.handler_count(EventType.ERROR) == 0


def test_first_puts_an_observer_before_existing_handlers():
    bus = EventBus()
    seen = []
    bus.subscribe(EventType.SETUP_TRIGGERED, lambda e: seen.append("executor"))
    bus.subscribe(EventType.SETUP_TRIGGERED, lambda e: seen.append("log"), first=True)
    bus.emit(ev(EventType.SETUP_TRIGGERED))
    assert seen == ["log", "executor"]
