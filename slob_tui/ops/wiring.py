"""Attach metrics, alerts and log redaction to an engine: the one call `build_engine` makes.

Each part is off unless configured: metrics need a port (`--metrics-port` or
SLOB_METRICS_PORT), Telegram needs TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_IDS. Redaction of the
secrets in force is always installed, because any library may log a URL with a token in it.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slob_tui.core.calendar import us_equity_calendar
from slob_tui.errors import UsageError
from slob_tui.ops.logs import install_redaction

log = logging.getLogger(__name__)

NS_PER_SECOND = 1_000_000_000


@dataclass
class OpsHandle:
    """What `attach_ops` started, for tests and the console (None where a part is off)."""

    metrics: Any = None
    telegram: Any = None


def _metrics_endpoint(opts: Any, settings: Any) -> tuple[str, int]:
    extra = getattr(opts, "extra", {}) or {}
    port = extra.get("metrics_port")
    port = settings.metrics_port if port is None else port
    host = extra.get("metrics_host") or settings.metrics_host or "127.0.0.1"
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(f"--metrics-port must be a port number 1-65535 (0 = off), got {port!r}")
    return host, port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def attach_ops(engine: Any, opts: Any, settings: Any) -> OpsHandle:
    """Wire metrics and Telegram into `engine` through its start and stop hooks."""
    install_redaction(settings.secrets())
    handle = OpsHandle()
    feed_name = getattr(opts, "feed", "")
    market_open: Callable[[int], bool] | None = None
    if feed_name == "alpaca" and getattr(settings, "alpaca_feed", "") != "crypto":
        market_open = us_equity_calendar(settings.extra_holidays).prepare().is_open
        engine.health_monitor.market_open = market_open
    host, port = _metrics_endpoint(opts, settings)
    if port:
        from slob_tui.ops.metrics import MetricsServer

        handle.metrics = MetricsServer(
            engine, host=host, port=port, db_path=getattr(opts, "db", None),
            market_open=market_open,
        )
    if settings.telegram_token:
        if not settings.telegram_chat_ids:
            raise UsageError(
                "TELEGRAM_BOT_TOKEN is set but TELEGRAM_CHAT_IDS is empty: set the chat ids "
                "allowed to receive alerts and send commands"
            )
        from slob_tui.ops.alerts import AlertConfig
        from slob_tui.ops.telegram_bot import TelegramOps

        handle.telegram = TelegramOps(
            engine, settings.telegram_token, settings.telegram_chat_ids,
            config=AlertConfig.from_settings(settings),
            base_url=(getattr(settings, "extra", {}) or {}).get("SLOB_TELEGRAM_BASE_URL"),
            tz=getattr(settings, "tz", "America/New_York"),
        )
    if handle.metrics is None and handle.telegram is None:
        return handle

    async def start_ops(_engine: Any) -> None:
        if handle.metrics is not None:
            try:
                await handle.metrics.start()
            except OSError as exc:
                raise UsageError(
                    f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror})"
                ) from exc
            if not _is_loopback(host):
                log.warning("metrics exposed on %s:%d: keep it behind a firewall", host, port)
        if handle.telegram is not None:
            try:
                await handle.telegram.start()
            except Exception as exc:  # noqa: BLE001 - trading goes on without alerts
                log.error("telegram: could not start, alerts are OFF: %s", exc)

    async def stop_ops(_engine: Any) -> None:
        if handle.telegram is not None:
            handle.telegram.router.post_summary()
            await handle.telegram.stop()
        if handle.metrics is not None:
            await handle.metrics.close()

    engine.add_start_hook(start_ops)
    engine.add_stop_hook(stop_ops)
    engine.add_health_source("ops", lambda: _ops_health(handle))
    return handle


def _ops_health(handle: OpsHandle) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if handle.metrics is not None:
        out["metrics"] = f"{handle.metrics.host}:{handle.metrics.port}"
    if handle.telegram is not None:
        r = handle.telegram.router
        out["alerts"] = {"sent": r.sent, "failed": r.failed, "dropped": r.dropped}
        out["commands_refused"] = handle.telegram.commands.refused
    return out
