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

from slob_tui.core.health import HealthReport, HealthVerdict
from slob_tui.ops.collector import EngineCollector, EventCounts, store_size_bytes

__all__ = ["EngineCollector", "EventCounts", "MetricsServer", "store_size_bytes"]

log = logging.getLogger(__name__)

NS_PER_SECOND = 1_000_000_000


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
        self.registry.register(EngineCollector(engine, self.counts, self.verdict, db_path))
        self._server: asyncio.base_events.Server | None = None
        self.requests = 0
        engine.bus.subscribe(None, self.counts)

    def verdict(self, report: HealthReport) -> HealthVerdict:
        """`/healthz`'s verdict on `report`, with this server's staleness limit and hours."""
        return report.verdict(self.stale_after_s, self.market_open)

    def healthz(self) -> tuple[bool, dict[str, Any]]:
        """`/healthz`'s answer (healthy, JSON body), from the engine's health report now."""
        report: HealthReport = self.engine.health()
        verdict = self.verdict(report)
        return verdict.healthy, report.healthz(verdict)

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
            ok, body = self.healthz()
            code = 200 if ok else 503
            return code, "application/json", json.dumps(body).encode() + b"\n", method
        if target == "/":
            return 200, "text/plain", b"slob-tui: /metrics /healthz\n", method
        return 404, "text/plain", b"not found\n", method
