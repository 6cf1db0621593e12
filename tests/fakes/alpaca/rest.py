"""The local Alpaca's REST side: a small HTTP/1.1 server on asyncio streams.

websockets' `process_request` only sees GET requests, and the trading API needs POST and
DELETE, so REST has its own listener. Routes: historical bars (stocks and crypto, paged with
`next_page_token`), account, clock, positions, orders (submit, list, by id, by client id,
cancel one, cancel all). Every route checks the key headers and a per-minute rate limit (429).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from . import history
from .trades import parse_time, rfc3339
from .trading import OrderRejected

if TYPE_CHECKING:
    from .server import LocalAlpaca

REASONS = {
    200: "OK",
    204: "No Content",
    207: "Multi-Status",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
Reply = tuple[int, Any]


class RateLimiter:
    """At most `per_minute` requests in any sliding 60 s window."""

    def __init__(self, per_minute: int, now: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.now = now
        self.hits: deque[float] = deque()

    def allow(self) -> bool:
        t = self.now()
        while self.hits and self.hits[0] <= t - 60:
            self.hits.popleft()
        if len(self.hits) >= self.per_minute:
            return False
        self.hits.append(t)
        return True


class RestApp:
    def __init__(self, server: LocalAlpaca) -> None:
        self.srv = server
        self.limiter = RateLimiter(server.rate_limit_per_minute)
        self.requests = 0
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def close_all(self) -> None:
        """Drop every open keep-alive connection (the server is going down)."""
        for writer in list(self.writers):
            writer.transport.abort()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = b""
                if int(headers.get("content-length", "0") or 0):
                    body = await reader.readexactly(int(headers["content-length"]))
                status, payload = self.route(method, target, headers, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                head = (
                    f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                    "Connection: keep-alive\r\n\r\n"
                )
                writer.write(head.encode() + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def route(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        self.requests += 1
        if (
            headers.get("apca-api-key-id") != self.srv.api_key
            or headers.get("apca-api-secret-key") != self.srv.api_secret
        ):
            return 401, {"code": 40110000, "message": "request is not authorized"}
        if not self.limiter.allow():
            return 429, {"code": 42910000, "message": "rate limit exceeded"}
        url = urlsplit(target)
        path = unquote(url.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        eng = self.srv.trading
        try:
            if method == "GET" and path in ("/v2/stocks/bars", "/v1beta3/crypto/us/bars"):
                return self.bars(q)
            if method == "GET" and path in history.TRADE_PATHS:
                return history.trades(self.srv, q)
            if method == "GET" and path == "/v2/account":
                return 200, eng.account()
            if method == "GET" and path == "/v2/clock":
                return 200, self.clock()
            if method == "GET" and path == "/v2/positions":
                return 200, eng.position_views()
            if path == "/v2/orders" and method == "POST":
                try:
                    req = json.loads(body or b"{}")
                except ValueError:
                    return 400, {"code": 40010000, "message": "request body format is invalid"}
                return 200, eng.submit(req)
            if path == "/v2/orders" and method == "GET":
                return 200, eng.list_orders(
                    q.get("status", "open"), q.get("nested", "").lower() == "true"
                )
            if path == "/v2/orders" and method == "DELETE":
                return 207, eng.cancel_all()
            if path == "/v2/orders:by_client_order_id" and method == "GET":
                found = eng.get_by_client_id(q.get("client_order_id", ""))
                return (
                    (200, found)
                    if found
                    else (404, {"code": 40410000, "message": "order not found"})
                )
            if path.startswith("/v2/orders/"):
                oid = path.rsplit("/", 1)[1]
                if method == "GET":
                    if oid not in eng.orders:
                        return 404, {"code": 40410000, "message": "order not found"}
                    return 200, eng.order_view(oid, q.get("nested", "").lower() == "true")
                if method == "DELETE":
                    eng.cancel(oid)
                    return 204, None
        except OrderRejected as exc:
            return exc.status, exc.body()
        return 404, {"code": 40410000, "message": f"no route {method} {path}"}

    def clock(self) -> dict[str, Any]:
        now = self.srv.clock.now_ns()
        local = datetime.fromtimestamp(now / 1e9, ZoneInfo("America/New_York"))
        open_ns = int(local.replace(hour=9, minute=30, second=0, microsecond=0).timestamp() * 1e9)
        close_ns = open_ns + 390 * 60_000_000_000
        is_open = local.weekday() < 5 and open_ns <= now < close_ns
        next_open = open_ns if now < open_ns else open_ns + 86_400_000_000_000
        return {
            "timestamp": rfc3339(now),
            "is_open": is_open,
            "next_open": rfc3339(next_open),
            "next_close": rfc3339(close_ns if now < close_ns else close_ns + 86_400_000_000_000),
        }

    def bars(self, q: dict[str, str]) -> Reply:
        if self.srv.bars_failures > 0:
            self.srv.bars_failures -= 1
            return 500, {"code": 50010000, "message": "internal server error"}
        if q.get("timeframe") != "1Min":
            return 400, {"code": 40010000, "message": "only timeframe 1Min is served here"}
        try:
            start = parse_time(q["start"]) if "start" in q else 0
            end = parse_time(q["end"]) if "end" in q else 2**62
            limit = int(q.get("limit", "1000"))
            offset = int(q.get("page_token", "0") or 0)
        except (ValueError, KeyError):
            return 400, {"code": 40010000, "message": "invalid start, end, limit or page_token"}
        symbols = [s for s in q.get("symbols", "").split(",") if s]
        if not symbols:
            return 400, {"code": 40010000, "message": "symbols is required"}
        # only minutes that have closed by the market clock exist
        closed_before = self.srv.clock.now_ns() - 60_000_000_000
        rows: list[tuple[str, dict]] = []
        for sym in symbols:
            for b in self.srv.bars.get(sym, []):
                if start <= b["t"] <= end and b["t"] <= closed_before:
                    rows.append((sym, b))
        page = rows[offset : offset + limit]
        out: dict[str, list] = {}
        for sym, b in page:
            out.setdefault(sym, []).append({**b, "t": rfc3339(b["t"]).replace(".000000000Z", "Z")})
        token = str(offset + limit) if offset + limit < len(rows) else None
        self.srv.bars_requests += 1
        return 200, {"bars": out, "next_page_token": token}
