"""An order sent while the broker hangs: the local Alpaca accepts it, but every reply to an
order POST is held past the client's timeout (a proxy on loopback), so all tries time out.
The running executor asks the broker for the client order id in the background, adopts the
bracket with its legs and manages it like any other: its target's fill closes the trade."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from slob_tui.brokers.alpaca import AlpacaBroker
from slob_tui.config import Settings
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Direction, OrderStatus
from slob_tui.core.retry import RetryPolicy
from slob_tui.engine.bus import EventBus
from slob_tui.execution.executor import OrderExecutor
from slob_tui.storage.state import StateManager
from tests.fakes.alpaca import LocalAlpaca
from tests.polling import until
from tests.unit.execution.conftest import trigger_event, triggered

KEY, SECRET = "PKHANGTEST000001", "hang-secret-never-printed"


class SlowOrderReplies:
    """An HTTP/1.1 proxy before the local Alpaca's REST port that holds every reply to an
    order POST for `hold_s` (the request itself goes through at once: the broker has it)."""

    def __init__(self, upstream_port: int, hold_s: float) -> None:
        self.upstream_port = upstream_port
        self.hold_s = hold_s
        self.held = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> SlowOrderReplies:
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    async def _message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return head, await reader.readexactly(length) if length else b""

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_writer}
        try:
            while True:
                head, body = await self._message(reader)
                up_writer.write(head + body)
                await up_writer.drain()
                reply_head, reply_body = await self._message(up_reader)
                if head.startswith(b"POST /v2/orders"):
                    self.held += 1
                    await asyncio.sleep(self.hold_s)
                writer.write(reply_head + reply_body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers -= {writer, up_writer}
            up_writer.close()
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[LocalAlpaca]:
    srv = LocalAlpaca([], KEY, SECRET)
    await srv.start()
    yield srv
    await srv.stop()


async def test_a_timed_out_order_is_found_adopted_and_managed(server, tmp_path: Path) -> None:
    server.set_price("QQQ", 400.0)
    proxy = await SlowOrderReplies(server.rest_port, hold_s=1.5).start()
    settings = Settings(
        alpaca_api_key=KEY,
        alpaca_api_secret=SECRET,
        alpaca_api_base_url=f"http://127.0.0.1:{proxy.port}",
        alpaca_trading_stream_url=server.trading_stream_url,
    )
    broker = AlpacaBroker(settings, paper=True, timeout_s=0.3)
    state = await StateManager(tmp_path / "s.db").open()
    events: list[Event] = []
    bus = EventBus()
    bus.subscribe(None, events.append)

    def of(etype: EventType) -> list[Any]:
        return [e.data for e in events if e.type is etype]

    ex = OrderExecutor(broker, state, bus, retry=RetryPolicy(base_s=0.05, cap_s=0.1, attempts=3))
    ex.resolve_retry = RetryPolicy(base_s=0.2, cap_s=0.4)
    try:
        await broker.connect()
        await asyncio.wait_for(broker.stream_connected.wait(), 5)
        await ex.load()
        u = triggered(0, Direction.LONG, entry=400, stop=395, target=410, symbol="QQQ")
        await ex.on_setup_event(trigger_event(u))
        assert proxy.held == 3 and of(EventType.ORDER_PLACED) == []
        assert "not confirmed" in of(EventType.ERROR)[0].error
        await until(lambda: len(of(EventType.ORDER_PLACED)) == 1)
        cid = "slob-QQQ-L-20231114221100-E"
        [parent] = [o for o in server.trading.orders.values() if o["client_order_id"] == cid]
        assert len([o for o in server.trading.orders.values() if o["_parent"] is None]) == 1
        legs = {r.order.leg: r.order for r in await state.orders()}
        assert legs["entry"].id == parent["id"] and set(legs) == {"entry", "target", "stop"}
        server.set_price("QQQ", 410.5)  # managed like any other: the target closes the trade
        await until(lambda: len(of(EventType.TRADE_CLOSED)) == 1)
        assert of(EventType.TRADE_CLOSED)[0].exit_leg == "target"
        await until(lambda: [c.leg for c in of(EventType.ORDER_CANCELLED)] == ["stop"])
        [stop] = [r for r in await state.orders() if r.order.leg == "stop"]
        assert stop.order.status is OrderStatus.CANCELED
        await ex.drain()
    finally:
        await broker.close()
        await proxy.stop()
        await state.close()
