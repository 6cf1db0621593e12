"""`LocalAlpaca`: Alpaca's market-data streams, trade_updates stream and REST on loopback.

The market is one tape of trades (`trades.Trade`) replayed through a cursor at `speed` (0 = as
fast as the client reads). A streaming connection that ends for any reason lets time pass: the
tape skips to the next minute boundary (or, with `away_s`, that much tape time past the last
trade served, which lands mid-minute), as the live market would go on while the client is
away, and REST bars exist only for minutes closed by the tape's clock (`server.clock`). So a
client that backfills the missed minutes from REST (and repairs the minutes on the edges of
the gap) rebuilds exactly the candles of a run without faults. Faults are methods (`drop`,
`send_garbage`, `stall`, `refuse_auth`, `internal_error`, `slow_client`, `restart`,
`go_down`/`come_up`) or scheduled at a tape position with `schedule(at_trade, kind, **args)`.
With `replay`, orders fill against the minute bars an engine replays from a file instead of
against the tape (`replay_fills.py`).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import random
import struct
from dataclasses import dataclass, field
from typing import Any

import msgpack
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from .replay_fills import ReplayFills
from .rest import RestApp
from .trade_updates import serve_trade_updates
from .trades import NS_MIN, Trade, minute_bars, rfc3339
from .trading import TradingEngine

log = logging.getLogger(__name__)
# Frame dumps (which would hold the client's secret) stay out of the test logs.
WIRE_LOG = logging.getLogger("tests.fakes.alpaca.wire")
WIRE_LOG.setLevel(logging.INFO)
DATA_PATHS = {
    "/v2/iex": "iex",
    "/v2/sip": "sip",
    "/v2/test": "test",
    "/v1beta3/crypto/us": "crypto",
}
CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")


class MarketClock:
    """The tape's time: the last served trade, or the boundary the tape skipped to."""

    def __init__(self) -> None:
        self.ns = 0

    def now_ns(self) -> int:
        return self.ns


@dataclass(eq=False)
class _Conn:
    ws: ServerConnection
    binary: bool
    path: str
    key: str | None = None
    subs: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CHANNELS})
    sender: asyncio.Task[None] | None = None
    streamed: bool = False
    stall_until: float = 0.0


class LocalAlpaca:
    def __init__(
        self,
        trades: list[Trade],
        api_key: str = "PKLOCALKEY",
        api_secret: str = "local-secret",
        *,
        batch_size: int = 100,
        speed: float = 0.0,
        plan: str = "unlimited",
        auth_timeout_s: float = 10.0,
        symbol_limit: int = 30,
        rate_limit_per_minute: int = 200,
        host: str = "127.0.0.1",
        away_s: float | None = None,
        replay: ReplayFills | None = None,
    ) -> None:
        self.tape = sorted(trades, key=lambda t: t.ts)
        self._ts = [t.ts for t in self.tape]
        self.cursor = 0
        self.clock = MarketClock()
        self.clock.ns = self.tape[0].ts if self.tape else 0
        self.bars = minute_bars(self.tape)
        self.api_key, self.api_secret = api_key, api_secret
        self.batch_size, self.speed, self.plan = batch_size, speed, plan
        self.auth_timeout_s, self.symbol_limit = auth_timeout_s, symbol_limit
        self.rate_limit_per_minute = rate_limit_per_minute
        self.host = host
        self.away_ns = None if away_s is None else int(away_s * 1_000_000_000)
        self.trading = TradingEngine(self.clock.now_ns, replay=replay)
        self.rest = RestApp(self)
        self.port = 0
        self.rest_port = 0
        self._ws_server: Server | None = None
        self._rest_server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._active_keys: set[str] = set()
        self._refuse: list[int] = []
        self._pending_drop = False
        self._restarts: set[asyncio.Task[None]] = set()
        self._scheduled: list[tuple[int, str, dict[str, Any]]] = []
        self.up = asyncio.Event()
        # counters tests read
        self.connections = 0
        self.auth_attempts = 0
        self.trades_sent = 0
        self.frames_sent = 0
        self.garbage_sent = 0
        self.bars_requests = 0
        self.trade_update_listeners = 0
        self.bars_failures = 0  # fault: answer this many bars requests with 500

    # ------------------------------------------------------------------ lifecycle and URLs
    async def start(self, port: int = 0, rest_port: int = 0) -> LocalAlpaca:
        await self.come_up(port, rest_port)
        return self

    async def come_up(self, port: int | None = None, rest_port: int | None = None) -> None:
        self._ws_server = await serve(
            self._handler,
            self.host,
            self.port if port is None else port,
            max_size=2**22,
            logger=WIRE_LOG,
        )
        self.port = self._ws_server.sockets[0].getsockname()[1]
        self._rest_server = await asyncio.start_server(
            self.rest.handle, self.host, self.rest_port if rest_port is None else rest_port
        )
        self.rest_port = self._rest_server.sockets[0].getsockname()[1]
        self.up.set()

    async def go_down(self) -> None:
        """Close every connection and stop listening until `come_up` (ports are kept); a
        restart still pending is called off, so the server stays down."""
        for task in list(self._restarts):
            task.cancel()
        await asyncio.gather(*self._restarts, return_exceptions=True)
        await self._down()

    async def _down(self) -> None:
        self.up.clear()
        for conn in list(self._conns):
            conn.ws.transport.abort()
        if self._ws_server is not None:
            self._ws_server.close(close_connections=False)
            await self._ws_server.wait_closed()
        if self._rest_server is not None:
            self._rest_server.close()
            await self.rest.close_all()
            await self._rest_server.wait_closed()
        self._ws_server = self._rest_server = None

    async def restart(self, downtime_s: float = 0.05) -> None:
        await self._down()
        await asyncio.sleep(downtime_s)
        await self.come_up()

    async def stop(self) -> None:
        await self.go_down()

    async def __aenter__(self) -> LocalAlpaca:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def stream_url(self, feed: str = "iex") -> str:
        path = {v: k for k, v in DATA_PATHS.items()}[feed]
        return f"ws://{self.host}:{self.port}{path}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def trading_stream_url(self) -> str:
        return f"ws://{self.host}:{self.port}/stream"

    @property
    def exhausted(self) -> bool:
        return self.cursor >= len(self.tape)

    # ------------------------------------------------------------------ fault controls
    def drop(self) -> None:
        """Cut the streaming connection in the middle of its next batch frame."""
        self._pending_drop = True

    async def send_garbage(self, count: int = 3, seed: int = 0) -> int:
        """Send undecodable frames and arrays of malformed messages to every connection;
        returns how many bad messages were delivered (a bad frame counts as one)."""
        rng = random.Random(seed)
        bad = 0
        for conn in list(self._conns):
            for _ in range(count):
                kind = rng.randrange(3)
                if kind == 0:
                    frame: bytes | str = bytes(
                        rng.randrange(256) for _ in range(rng.randint(1, 40))
                    )
                    if not conn.binary:
                        frame = frame.hex() + "{"
                elif kind == 1:
                    frame = self._encode(conn, [{"T": "t", "S": 5, "p": "x"}, {"T": "t"}, 7])
                else:
                    frame = self._encode(conn, {"T": "success"})  # an object, not an array
                try:
                    await conn.ws.send(frame)
                    self.garbage_sent += 1
                    bad += 3 if kind == 1 else 1
                except ConnectionClosed:
                    pass
        return bad

    async def send_raw(self, frame: bytes | str) -> None:
        """Send one frame as given to every open market-data connection."""
        for conn in list(self._conns):
            try:
                await conn.ws.send(frame)
            except ConnectionClosed:
                pass

    def stall(self, seconds: float) -> None:
        """The open connections send nothing for `seconds` (they stay open); a new
        connection is served normally."""
        until = asyncio.get_running_loop().time() + seconds
        for conn in self._conns:
            conn.stall_until = until

    def refuse_auth(self, count: int = 1, code: int = 406) -> None:
        """Answer the next `count` auth attempts with error `code`."""
        self._refuse.extend([code] * count)

    async def internal_error(self) -> None:
        await self._error_all(500, "internal error")

    async def slow_client(self) -> None:
        await self._error_all(407, "slow client")

    async def _error_all(self, code: int, msg: str) -> None:
        for conn in list(self._conns):
            try:
                await self._error(conn, code, msg)
                await conn.ws.close()
            except ConnectionClosed:
                pass

    def schedule(self, at_trade: int, kind: str, **args: Any) -> None:
        """Run fault `kind` once the tape cursor reaches `at_trade` (drop, garbage, stall,
        restart, refuse_auth, down: like `go_down`, until the test calls `come_up`)."""
        self._scheduled.append((at_trade, kind, args))
        self._scheduled.sort(key=lambda x: x[0])

    def seek(self, ns: int) -> None:
        """Start serving at the first trade at or after `ns` (earlier minutes have passed)."""
        self.cursor = bisect.bisect_left(self._ts, ns)
        self.clock.ns = ns

    def set_price(self, symbol: str, price: float) -> None:
        """Drive the paper order engine directly (fills, trade_updates)."""
        self.trading.set_price(symbol, price)

    # ------------------------------------------------------------------ connections
    async def _handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        if path == "/stream":
            await serve_trade_updates(self, ws)
            return
        if path not in DATA_PATHS:
            await ws.close(1008, "no such stream")
            return
        ctype = ws.request.headers.get("Content-Type", "") if ws.request else ""
        conn = _Conn(ws, "msgpack" in ctype, path)
        self._conns.add(conn)
        self.connections += 1
        try:
            await self._send(conn, [{"T": "success", "msg": "connected"}])
            await self._serve_conn(conn)
        except ConnectionClosed:
            pass
        finally:
            self._conns.discard(conn)
            if conn.key is not None:
                self._active_keys.discard(conn.key)
            if conn.sender is not None:
                conn.sender.cancel()
            if conn.streamed:
                self._skip_away()

    async def _serve_conn(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.auth_timeout_s
        while True:
            timeout = None if conn.key else max(0.0, deadline - loop.time())
            try:
                raw = await asyncio.wait_for(conn.ws.recv(), timeout)
            except TimeoutError:
                await self._error(conn, 404, "auth timeout")
                await conn.ws.close()
                return
            try:
                msg = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
                action = msg["action"]
            except Exception:  # noqa: BLE001 - any undecodable message is invalid syntax
                await self._error(conn, 400, "invalid syntax")
                continue
            if action == "auth":
                if await self._auth(conn, msg) is False:
                    return
            elif action in ("subscribe", "unsubscribe"):
                await self._subscribe(conn, msg, action == "subscribe")
            else:
                await self._error(conn, 410, "invalid subscribe action")

    async def _auth(self, conn: _Conn, msg: dict[str, Any]) -> bool:
        self.auth_attempts += 1
        if conn.key is not None:
            await self._error(conn, 403, "already authenticated")
            return True
        if self._refuse:
            code = self._refuse.pop(0)
            await self._error(
                conn,
                code,
                {402: "auth failed", 406: "connection limit exceeded", 500: "internal error"}.get(
                    code, "refused"
                ),
            )
            if code in (406, 500):
                await conn.ws.close()
                return False
            return True
        if msg.get("key") != self.api_key or msg.get("secret") != self.api_secret:
            await self._error(conn, 402, "auth failed")
            return True
        if self.plan == "basic" and conn.path == "/v2/sip":
            await self._error(conn, 409, "insufficient subscription")
            return True
        if self.api_key in self._active_keys:
            await self._error(conn, 406, "connection limit exceeded")
            await conn.ws.close()
            return False
        conn.key = self.api_key
        self._active_keys.add(self.api_key)
        await self._send(conn, [{"T": "success", "msg": "authenticated"}])
        return True

    async def _subscribe(self, conn: _Conn, msg: dict[str, Any], add: bool) -> None:
        if conn.key is None:
            await self._error(conn, 401, "not authenticated")
            return
        updates: dict[str, list[str]] = {}
        for ch in CHANNELS:
            v = msg.get(ch)
            if v is None:
                continue
            if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
                await self._error(conn, 400, "invalid syntax")
                return
            updates[ch] = v
        for ch, syms in updates.items():
            if add:
                conn.subs[ch].update(syms)
            else:
                conn.subs[ch].difference_update(syms)
        if len(conn.subs["trades"] - {"*"}) > self.symbol_limit:
            await self._error(conn, 405, "symbol limit exceeded")
            return
        reply: dict[str, Any] = {"T": "subscription"}
        for ch in CHANNELS:
            reply[ch] = sorted(conn.subs[ch])
        reply["corrections"] = sorted(conn.subs["trades"])
        reply["cancelErrors"] = sorted(conn.subs["trades"])
        await self._send(conn, [reply])
        if conn.subs["trades"] and conn.sender is None:
            conn.sender = asyncio.create_task(self._stream_trades(conn))

    async def _error(self, conn: _Conn, code: int, msg: str) -> None:
        await self._send(conn, [{"T": "error", "code": code, "msg": msg}])

    def _encode(self, conn: _Conn, obj: Any) -> bytes | str:
        return msgpack.packb(obj) if conn.binary else json.dumps(obj)

    async def _send(self, conn: _Conn, msgs: Any) -> None:
        await conn.ws.send(self._encode(conn, msgs))

    # ------------------------------------------------------------------ the tape
    def _skip_away(self) -> None:
        """The market goes on while the client is away: to the next minute boundary, or
        `away_s` of tape time past the last trade served."""
        if self.cursor == 0:
            return
        last = self.tape[self.cursor - 1].ts
        if self.away_ns is None:
            resume = last - last % NS_MIN + NS_MIN
        else:
            resume = last + self.away_ns
        self.cursor = bisect.bisect_left(self._ts, resume, lo=self.cursor)
        self.clock.ns = max(self.clock.ns, resume)

    def _trade_msg(self, conn: _Conn, t: Trade) -> dict[str, Any]:
        ts: Any = msgpack.Timestamp.from_unix_nano(t.ts) if conn.binary else rfc3339(t.ts)
        if conn.path == "/v1beta3/crypto/us":
            return {
                "T": "t",
                "S": t.symbol,
                "p": t.price,
                "s": t.size,
                "t": ts,
                "i": t.id,
                "tks": "B",
            }
        return {
            "T": "t",
            "S": t.symbol,
            "i": t.id,
            "x": t.exchange,
            "p": t.price,
            "s": t.size,
            "t": ts,
            "c": list(t.conditions),
            "z": "B",
        }

    async def _run_scheduled(self) -> None:
        while self._scheduled and self._scheduled[0][0] <= self.cursor:
            _, kind, args = self._scheduled.pop(0)
            if kind == "drop":
                self.drop()
            elif kind == "garbage":
                await self.send_garbage(**args)
            elif kind == "stall":
                self.stall(**args)
            elif kind == "refuse_auth":
                self.refuse_auth(**args)
                self.drop()
            elif kind in ("restart", "down"):
                task = asyncio.create_task(
                    self.restart(**args) if kind == "restart" else self._down()
                )
                self._restarts.add(task)
                task.add_done_callback(self._restarts.discard)
                await asyncio.sleep(0)
            else:
                raise ValueError(f"unknown fault {kind!r}")

    async def _stream_trades(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        conn.streamed = True
        while True:
            await self._run_scheduled()
            if conn not in self._conns:
                return
            wait = conn.stall_until - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if self.exhausted:
                await asyncio.sleep(0.02)
                continue
            wanted = conn.subs["trades"]
            end = min(self.cursor + self.batch_size, len(self.tape))
            batch = [t for t in self.tape[self.cursor : end] if "*" in wanted or t.symbol in wanted]
            msgs = [self._trade_msg(conn, t) for t in batch]
            if self._pending_drop:
                self._pending_drop = False
                self._cut_mid_frame(conn, self._encode(conn, msgs))
                self.cursor = end
                return
            if msgs:
                await conn.ws.send(self._encode(conn, msgs))
                self.frames_sent += 1
                self.trades_sent += len(msgs)
            prev = self.clock.ns
            self.cursor = end
            if batch:
                self.clock.ns = max(self.clock.ns, batch[-1].ts)
                last: dict[str, float] = {t.symbol: t.price for t in batch}
                for sym, px in last.items():
                    self.trading.set_price(sym, px)
            if self.speed > 0 and batch:
                await asyncio.sleep(max(0.0, (batch[-1].ts - prev) / 1e9 / self.speed))
            else:
                await asyncio.sleep(0)

    def _cut_mid_frame(self, conn: _Conn, payload: bytes | str) -> None:
        """Write the header and half the payload of a data frame, then reset the TCP link."""
        data = payload.encode() if isinstance(payload, str) else payload
        opcode = 0x81 if isinstance(payload, str) else 0x82
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", opcode, 126, n)
        else:
            head = struct.pack("!BBQ", opcode, 127, n)
        transport = conn.ws.transport
        transport.write(head + data[: n // 2])
        transport.abort()
