"""The typed health report: one status derived in one place, a wire shape that comes back
field for field, and the panel styling every status the report can give."""

from __future__ import annotations

import json
from dataclasses import replace

from slob_tui.core.health import (
    STATUSES,
    AttachHealth,
    FeedHealth,
    HealthReport,
    PipelineHealth,
    RunState,
    StoreHealth,
    TradingHealth,
    WriteStatus,
)
from slob_tui.ui.widgets.health import STATUS_STYLE, health_rows


def report(**sections: object) -> HealthReport:
    """A stale pipeline's report with `sections` set."""
    return replace(HealthReport(pipeline=PipelineHealth(progress="stale")), **sections)


def test_status_takes_the_most_urgent_condition() -> None:
    fault = StoreHealth(fault="disk full")
    assert report().status == "stale"
    assert report(feed=FeedHealth(safe_mode=True)).status == "safe_mode"
    assert report(pipeline=PipelineHealth(progress="starting", safe_mode=True)).status == "starting"
    assert report(storage=fault, feed=FeedHealth(safe_mode=True)).status == "store_fault"
    assert report(storage=fault, run=RunState(stopped=True)).status == "stopped"
    assert report(run=RunState(stopped=True, feed_failed=True)).status == "failed"
    assert report(storage=StoreHealth()).status == "stale"  # a writable store is no fault
    assert not report().healthy and HealthReport(pipeline=PipelineHealth(progress="ok")).healthy


def test_every_status_has_a_style_on_the_panel() -> None:
    assert set(STATUSES) == set(STATUS_STYLE)


def test_the_gate_row_reads_the_trading_section() -> None:
    def breaker(h: HealthReport) -> str:
        return dict((label, value) for label, value, _ in health_rows(h, None))["breaker"]

    assert breaker(report()) == "n/a"  # a bare pipeline places no orders
    assert breaker(report(trading=TradingHealth())) == "ok"
    assert breaker(report(trading=TradingHealth(halted="store"))) == "HALTED"
    assert breaker(report(trading=TradingHealth(gate_fault="unreadable"))) == "HALTED"
    assert breaker(report(trading=TradingHealth(kill_switch="k", halted="store"))) == "KILLED"


def test_the_wire_shape_comes_back_as_the_same_report() -> None:
    full = HealthReport(
        at_ns=7, mode="PAPER",
        pipeline=PipelineHealth(progress="ok", ticks=3, connected=False, last_candle_age_s=1.5),
        run=RunState(stopped=True, stop_reason="duration elapsed"),
        feed=FeedHealth(name="alpaca-iex", state="subscribed", reconnects=2,
                        counters={"messages": 9, "last_error": None}),
        aggregator={"symbols": {"QQQ": {"ticks": 3}}},
        data_quality={"by_kind": {}},
        storage=StoreHealth(fault="x", candles=WriteStatus(ok=False, failures=1),
                            candles_queued=4, candles_max_queue=10),
        trading=TradingHealth(broker="alpaca", paper=False, kill_switch="k", placed=2),
        ops={"metrics": "127.0.0.1:9108"},
        attach=AttachHealth(clients=2, attached=("a", "b")),
    )  # fmt: skip
    wire = json.loads(json.dumps(full.as_dict()))
    assert HealthReport.from_dict(wire) == full
    assert wire["execution"]["kill_switch"] == "k" and wire["storage"]["ok"] is False
    assert wire["status"] == "stopped" and wire["reconnects"] == 0
    assert HealthReport.from_dict(HealthReport().as_dict()) == HealthReport()


def test_healthz_is_red_for_staleness_only_while_the_market_is_open() -> None:
    late = HealthReport(pipeline=PipelineHealth(progress="stale", since_progress_s=300.0))
    assert late.verdict(180, lambda _ns: False).healthy
    verdict = late.verdict(180, lambda _ns: True)
    assert not verdict.healthy and verdict.problems[0].startswith("no candle processed for 300 s")
    body = late.healthz(verdict)
    assert body["healthy"] is False and body["market_open"] is True
    assert body["kill_switch"] is None and body["store_fault"] is None
