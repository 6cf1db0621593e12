"""Operations around a running engine: metrics, Telegram alerts and commands, log redaction.

Each part is off unless configured: metrics need a port (`--metrics-port` or
SLOB_METRICS_PORT), Telegram needs TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_IDS. Redaction of the
secrets in force is always installed, because any library may log a URL with a token in it.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

from slob_tui.config import Settings
from slob_tui.core.calendar import us_equity_calendar
from slob_tui.errors import UsageError
from slob_tui.ops.logs import install_redaction

log = logging.getLogger(__name__)

NS_PER_SECOND = 1_000_000_000


def _metrics_endpoint(port: int | None, host: str | None, settings: Settings) -> tuple[str, int]:
    port = settings.metrics_port if port is None else port
    host = host or settings.metrics_host or "127.0.0.1"
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


def equity_market_open(feed: str, settings: Settings) -> Callable[[int], bool] | None:
    """US equity hours for an Alpaca stock feed (health is judged only while it trades).
    The exchange schedule is loaded here, at build time, not on the event loop."""
    if feed == "alpaca" and settings.alpaca_feed != "crypto":
        return us_equity_calendar(settings.extra_holidays).prepare().is_open
    return None


class OpsRuntime:
    """Metrics and Telegram for one engine (or node): each part only when configured.

    Built once; `start()` after the engine is open and before the feed runs, `stop()` after
    the pipeline has stopped. `engine` is what they read: health, snapshot, bus, controls.
    """

    def __init__(
        self,
        engine: Any,
        settings: Settings,
        *,
        feed: str = "",
        db_path: str | None = None,
        metrics_port: int | None = None,
        metrics_host: str | None = None,
    ) -> None:
        install_redaction(settings.secrets())
        self.metrics: Any = None
        self.telegram: Any = None
        market_open = equity_market_open(feed, settings)
        self.host, self.port = _metrics_endpoint(metrics_port, metrics_host, settings)
        if self.port:
            from slob_tui.ops.metrics import MetricsServer

            self.metrics = MetricsServer(
                engine, host=self.host, port=self.port, db_path=db_path, market_open=market_open
            )
        if settings.telegram_token.get_secret_value():
            if not settings.telegram_chat_ids:
                raise UsageError(
                    "TELEGRAM_BOT_TOKEN is set but TELEGRAM_CHAT_IDS is empty: set the chat ids "
                    "allowed to receive alerts and send commands"
                )
            from slob_tui.ops.telegram_bot import TelegramOps

            self.telegram = TelegramOps(
                engine, settings.telegram_token.get_secret_value(), settings.telegram_chat_ids,
                config=settings.alerts,
                base_url=settings.telegram_base_url,
                tz=settings.tz,
            )  # fmt: skip

    async def start(self) -> None:
        if self.metrics is not None:
            try:
                await self.metrics.start()
            except OSError as exc:
                raise UsageError(
                    f"--metrics-port {self.port}: cannot listen on {self.host}:{self.port} "
                    f"({exc.strerror})"
                ) from exc
            if not _is_loopback(self.host):
                log.warning("metrics exposed on %s:%d: keep it behind a firewall", self.host,
                            self.port)  # fmt: skip
        if self.telegram is not None:
            try:
                await self.telegram.start()
            except Exception as exc:  # noqa: BLE001 - trading goes on without alerts
                log.error("telegram: could not start, alerts are OFF: %s", exc)

    async def stop(self) -> None:
        if self.telegram is not None:
            self.telegram.router.post_summary()
            await self.telegram.stop()
        if self.metrics is not None:
            await self.metrics.close()

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.metrics is not None:
            out["metrics"] = f"{self.metrics.host}:{self.metrics.port}"
        if self.telegram is not None:
            r = self.telegram.router
            out["alerts"] = {"sent": r.sent, "failed": r.failed, "dropped": r.dropped}
            out["commands_refused"] = self.telegram.commands.refused
        return out
