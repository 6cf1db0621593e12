"""One health report, read by the console's panel, `/healthz` and the metrics, from real state.

A demo node runs on a real tmpfs with its metrics server on loopback. The kill switch goes
through the node's controls, safe mode through the engine's feed port (as the Alpaca feed sends
it), the store fault through a full disk. Each must reach the panel's rows and `/healthz` the
same way. Needs root for `mount -t tmpfs`.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from slob_tui.config import load_settings
from slob_tui.core.event_payloads import SafeModeChange
from slob_tui.core.events import Event, EventType
from slob_tui.core.health import HealthReport
from slob_tui.node import NodeConfig, TradingNode
from slob_tui.ui.widgets.health import health_rows
from tests.polling import until
from tests.servers import fill_disk, free_port

# What /healthz answered before the report was typed (docs/deploy.md, the compose healthcheck).
HEALTHZ_KEYS = {
    "healthy", "problems", "status", "market_open", "since_progress_s", "last_candle_age_s",
    "candles", "safe_mode", "mode", "attached_clients",
}  # fmt: skip


def panel(report: HealthReport) -> dict[str, str]:
    """The health panel's rows as label -> value."""
    return {label: value for label, value, _ in health_rows(report, 1_000)}


def gauges(text: str) -> dict[str, float]:
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.labels
    }


async def test_panel_healthz_and_metrics_show_the_real_gate_safe_mode_and_store(
    disk: Path,
) -> None:
    port = free_port()
    settings = load_settings({"SLOB_STOP_TIMEOUT_S": "10"}, dotenv=None)
    node = TradingNode(
        NodeConfig(db=str(disk / "slob.db"), speed=600.0, seed=7, metrics_port=port,
                   settings=settings)
    )  # fmt: skip
    candles: list[int] = []
    node.bus.subscribe(EventType.CANDLE_COMPLETED, lambda e: candles.append(e.data.start))
    await node.start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await until(lambda: len(candles) > 5, 30, "candles flowing")
            rows = panel(node.health())
            assert rows["status"] == "ok" and rows["feed"] == "running"
            assert rows["breaker"] == "ok" and rows["safe mode"] == "off"
            assert "FAULT" not in rows["store"]
            r = await client.get("/healthz")
            body = r.json()
            assert r.status_code == 200 and HEALTHZ_KEYS <= set(body)
            assert body["kill_switch"] is None and body["store_fault"] is None
            assert body["mode"] == node.health().mode == "DEMO"

            # The kill switch, through the node's controls (the console's K, /flatten).
            await node.trading_controls().kill_switch("operator test")
            report = node.health()
            assert report.trading is not None and report.trading.kill_switch == "operator test"
            assert panel(report)["breaker"] == "KILLED"
            body = (await client.get("/healthz")).json()
            assert body["kill_switch"] == "operator test"
            assert gauges((await client.get("/metrics")).text)["slob_kill_switch_on"] == 1
            await node.trading_controls().reset_kill_switch()
            assert panel(node.health())["breaker"] == "ok"
            assert (await client.get("/healthz")).json()["kill_switch"] is None

            # Safe mode, as a feed reports it through the engine's port.
            now = node.clock.now_ns()
            node.engine.feed_event(Event(EventType.SAFE_MODE, now, SafeModeChange(True), "feed"))
            rows = panel(node.health())
            assert rows["safe mode"] == "ON" and rows["status"] == "safe_mode"
            body = (await client.get("/healthz")).json()
            assert body["safe_mode"] is True and body["status"] == "safe_mode"
            assert gauges((await client.get("/metrics")).text)["slob_safe_mode"] == 1
            node.engine.feed_event(Event(EventType.SAFE_MODE, now, SafeModeChange(False), "feed"))
            assert panel(node.health())["safe mode"] == "off"

            # The store fault: a full disk; the guard halts the gate and says why.
            filler = fill_disk(disk)
            await until(lambda: node.health().status == "store_fault", 30, "the store fault")
            report = node.health()
            rows = panel(report)
            assert rows["status"] == "STORE FAULT" and rows["store"].endswith("FAULT")
            assert rows["breaker"] == "HALTED"
            assert report.storage is not None and "disk is full" in report.storage.fault
            r = await client.get("/healthz")
            body = r.json()
            assert r.status_code == 503 and body["status"] == "store_fault"
            assert body["store_fault"] == report.storage.fault
            assert body["problems"] == [f"store fault: {report.storage.fault}"]
            assert body["halted"] and "state cannot be persisted" in body["halted"]
            metrics = gauges((await client.get("/metrics")).text)
            assert metrics["slob_store_fault"] == 1 and metrics["slob_trading_halted"] == 1
            assert metrics["slob_healthy"] == 0

            filler.unlink()
            await until(lambda: node.health().status != "store_fault", 60, "writable again")
            assert panel(node.health())["breaker"] == "ok"
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await node.stop("test over")
    assert node.health().status == "stopped"
