"""Prometheus `/metrics` and `/healthz` for a running engine, served from the engine's loop.

The HTTP server is an asyncio server on the engine's own loop, so a scrape reads engine state
without a thread race; the figures come from `ops.collector`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from slob_tui.ops.collector import EngineCollector, EventCounts, store_size_bytes

__all__ = ["EngineCollector", "EventCounts", "MetricsServer", "health_verdict", "store_size_bytes"]

log = logging.getLogger(__name__)

NS_PER_SECOND = 1_000_000_000


def health_verdict(
    engine: Any,
    stale_after_s: float,
    market_open: Callable[[int], bool],
    health: dict[str, Any] | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Healthy unless the engine stopped, its feed failed, its stores refuse writes (trading is
    halted then), or no candle closed for longer than `stale_after_s` of engine time while the
    market is open: progress, not a heartbeat."""
    h = engine.health() if health is None else health
    now = engine.clock.now_ns()
    is_open = bool(market_open(now))
    since = h.get("since_progress_s")
    problems: list[str] = []
    if engine.stopped:
        problems.append(f"engine stopped ({engine.stop_reason or 'no reason'})")
    if engine.feed_error is not None:
        problems.append("feed failed")
    if h.get("status") == "store_fault":
        problems.append(f"store fault: {(h.get('storage') or {}).get('fault') or 'writes refused'}")
    if is_open and since is not None and since > stale_after_s:
        problems.append(f"no candle processed for {since:.0f} s (limit {stale_after_s:.0f} s)")
    body = {
        "healthy": not problems,
        "problems": problems,
        "status": h.get("status"),
        "market_open": is_open,
        "since_progress_s": since,
        "last_candle_age_s": h.get("last_candle_age_s"),
        "candles": h.get("candles"),
        "safe_mode": h.get("safe_mode"),
        "mode": h.get("mode"),
        "attached_clients": (h.get("attach") or {}).get("clients", 0),
    }
    return not problems, body


class MetricsServer:
    """`GET /metrics` (Prometheus text) and `GET /healthz` (200 or 503, JSON) on one port.

    Bound to 127.0.0.1 unless told otherwise: the numbers describe a trading account. `port=0`
    asks the OS for a free port (tests); `.port` holds the one bound.
    """

    def __init__(
        self,
        engine: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        db_path: str | Path | None = None,
        stale_after_s: float | None = None,
        market_open: Callable[[int], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self.counts = EventCounts()
        self.registry = CollectorRegistry(auto_describe=False)
        monitor = engine.health_monitor
        if stale_after_s is None:
            stale_after_s = monitor.stale_after_ns / NS_PER_SECOND
        self.stale_after_s = stale_after_s
        self.market_open = market_open or monitor.market_open
        self.registry.register(
            EngineCollector(
                engine,
                self.counts,
                db_path,
                verdict=lambda h: health_verdict(engine, self.stale_after_s, self.market_open, h)[
                    0
                ],
            )
        )
        self._server: asyncio.base_events.Server | None = None
        self.requests = 0
        engine.bus.subscribe(None, self.counts)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics and /healthz", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def render(self) -> bytes:
        """The Prometheus exposition text of every `slob_*` metric now."""
        return generate_latest(self.registry)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method_has_body = True
        try:
            status, ctype, body, method_has_body = await self._respond(reader)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            status, ctype, body = 400, "text/plain", b"bad request\n"
        except Exception as exc:  # noqa: BLE001 - a scrape must never take the engine down
            log.error("metrics request failed: %r", exc)
            status, ctype, body = 500, "text/plain", b"internal error\n"
        self.requests += 1
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  500: "Internal Server Error", 503: "Service Unavailable"}[status]  # fmt: skip
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            writer.write(head.encode() + (body if method_has_body else b""))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes, bool]:
        status, ctype, body, method = await self._route(reader)
        return status, ctype, body, method != "HEAD"

    async def _route(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes, str]:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3:
            return 400, "text/plain", b"bad request\n", "GET"
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET\n", method
        if target == "/metrics":
            return 200, CONTENT_TYPE_LATEST, self.render(), method
        if target == "/healthz":
            ok, body = health_verdict(self.engine, self.stale_after_s, self.market_open)
            code = 200 if ok else 503
            return code, "application/json", json.dumps(body).encode() + b"\n", method
        if target == "/":
            return 200, "text/plain", b"slob-tui: /metrics /healthz\n", method
        return 404, "text/plain", b"not found\n", method
