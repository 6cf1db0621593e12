"""The one health report: what the console's health panel, `/healthz`, the Prometheus metrics,
Telegram's /status and the front door's `health` command all read.

Each section is filled by the part that owns the state: the pipeline's progress by the engine's
`HealthMonitor`, the feed by the feed, the buffer by the `TickBuffer`, the trading gate by the
executor, storage by the node's `StoreGuard`, the front door by itself. The overall `status`
and the `/healthz` verdict are derived here, once, from those sections.

`as_dict()` is the wire shape (the front door's `health` command and snapshot frames): the
pipeline's figures flat at the top, each other section under its own key. `from_dict()` reads
it back for a console attached from another process. `/healthz` answers `healthz()`, a smaller
body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypeVar, get_args

T = TypeVar("T")

Progress = Literal["starting", "ok", "stale", "late_ticks"]
"""The pipeline's own verdict (`HealthMonitor`)."""
Status = Literal[
    "failed", "stopped", "store_fault", "starting", "safe_mode", "stale", "late_ticks", "ok"
]
"""The whole report's, most urgent first, as `HealthReport.status` derives it."""
STATUSES: tuple[str, ...] = get_args(Status)


def _pick(cls: type[T], data: Mapping[str, Any]) -> T:
    """`cls` built from the keys of `data` that name one of its fields (a wire dict)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class PipelineHealth:
    """Progress of the pipeline, judged by the last candle processed, not by a heartbeat.

    `progress` is the monitor's own verdict: `starting`, `ok`, `stale` (no candle for too long
    while the market is open) or `late_ticks` (ticks arrive but every one is late)."""

    progress: Progress = "starting"
    ticks: int = 0
    ticks_per_s: float = 0.0
    candles: int = 0
    candles_today: int = 0
    last_candle_start: int | None = None
    last_candle_age_s: float | None = None
    """Engine seconds since the end of the last closed candle."""
    last_candle_wall_age_s: float | None = None
    """Wall seconds since the last candle closed (engine time runs 60x in the demo)."""
    since_progress_s: float | None = None
    late_ticks: int = 0
    late_since_candle: int = 0
    connected: bool | None = None
    """From the feed's connect and disconnect events; None for a feed without a connection."""
    reconnects: int = 0
    safe_mode: bool = False
    """Set by the feed's SAFE_MODE events."""
    uptime_s: float | None = None


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """What a feed says of itself; `counters` holds the figures only that kind of feed has."""

    name: str = ""
    state: str = ""
    """e.g. connecting, subscribed, reconnecting, safe_mode, failed (Alpaca); running,
    paused, finished (demo, replay)."""
    reconnects: int = 0
    safe_mode: bool = False
    counters: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counters,
            "feed": self.name,
            "state": self.state,
            "reconnects": self.reconnects,
            "safe_mode": self.safe_mode,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedHealth:
        own = {"feed", "state", "reconnects", "safe_mode"}
        return cls(
            name=str(data.get("feed", "")),
            state=str(data.get("state", "")),
            reconnects=int(data.get("reconnects", 0) or 0),
            safe_mode=bool(data.get("safe_mode", False)),
            counters={k: v for k, v in data.items() if k not in own},
        )


@dataclass(frozen=True, slots=True)
class BufferHealth:
    """The tick buffer between the feed and the aggregator."""

    size: int = 0
    maxsize: int = 0
    enqueued: int = 0
    dequeued: int = 0
    dropped: int = 0
    evicted: int = 0
    peak: int = 0
    utilization: float = 0.0


@dataclass(frozen=True, slots=True)
class BusHealth:
    emitted: int = 0
    handler_errors: int = 0
    handlers: int = 0


@dataclass(frozen=True, slots=True)
class RunState:
    """Whether the pipeline still runs; `feed_failed` when it stopped because the feed did."""

    stopped: bool = False
    stop_reason: str = ""
    feed_failed: bool = False


@dataclass(frozen=True, slots=True)
class WriteStatus:
    """One store's writes: failing now, since how long, why; counts of failures and recoveries."""

    ok: bool = True
    failing_for_s: float = 0.0
    last_error: str | None = None
    failures: int = 0
    recoveries: int = 0


@dataclass(frozen=True, slots=True)
class CacheStatus:
    """The optional Redis copy of the journal: stale while it may not match SQLite."""

    stale: bool = False
    failures: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """The candle store and the state journal as the node's store guard sees them; `fault`
    says why writes are refused (trading is halted meanwhile), empty when they are not."""

    fault: str = ""
    candles: WriteStatus = field(default_factory=WriteStatus)
    candles_queued: int = 0
    candles_max_queue: int = 0
    journal: WriteStatus = field(default_factory=WriteStatus)
    give_up_s: float = 0.0
    redis: CacheStatus | None = None

    @property
    def ok(self) -> bool:
        return not self.fault

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "fault": self.fault or None,
            "candles": {
                **_as_dict(self.candles),
                "queued": self.candles_queued,
                "max_queue": self.candles_max_queue,
            },
            "journal": _as_dict(self.journal),
            "give_up_s": self.give_up_s,
        }
        if self.redis is not None:
            out["redis"] = _as_dict(self.redis)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoreHealth:
        candles = dict(data.get("candles") or {})
        redis = data.get("redis")
        return cls(
            fault=str(data.get("fault") or ""),
            candles=_pick(WriteStatus, candles),
            candles_queued=int(candles.get("queued", 0) or 0),
            candles_max_queue=int(candles.get("max_queue", 0) or 0),
            journal=_pick(WriteStatus, data.get("journal") or {}),
            give_up_s=float(data.get("give_up_s", 0.0) or 0.0),
            redis=None if redis is None else _pick(CacheStatus, redis),
        )


@dataclass(frozen=True, slots=True)
class TradingHealth:
    """The executor and its trading gate: the kill switch and a halt (with their reasons)
    stop new orders; `gate_fault` when the persisted switch could not be read."""

    broker: str = ""
    paper: bool = True
    kill_switch: str = ""
    halted: str = ""
    gate_fault: str = ""
    placed: int = 0
    rejected: int = 0
    retries: int = 0
    duplicates: int = 0
    open_orders: int = 0
    malformed_updates: int = 0

    @property
    def gate_open(self) -> bool:
        return not (self.kill_switch or self.halted or self.gate_fault)

    def as_dict(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "paper": self.paper,
            "kill_switch": self.kill_switch or None,
            "halted": self.halted or None,
            "store_fault": self.gate_fault or None,
            "placed": self.placed,
            "rejected": self.rejected,
            "retries": self.retries,
            "duplicates": self.duplicates,
            "open_orders": self.open_orders,
            "malformed_updates": self.malformed_updates,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TradingHealth:
        return _pick(
            cls,
            {
                **data,
                "kill_switch": str(data.get("kill_switch") or ""),
                "halted": str(data.get("halted") or ""),
                "gate_fault": str(data.get("store_fault") or ""),
            },
        )


@dataclass(frozen=True, slots=True)
class AttachHealth:
    """The front door: clients attached now and what it served and refused."""

    clients: int = 0
    control_clients: int = 0
    served: int = 0
    refused: int = 0
    protocol_errors: int = 0
    resyncs: int = 0
    listening: str = "closed"
    attached: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HealthVerdict:
    """What `/healthz` answers: 200 when `healthy`, else 503 with the `problems`."""

    healthy: bool
    problems: tuple[str, ...]
    market_open: bool


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The whole engine's health at engine time `at_ns`. A bare pipeline (no node) has no
    `storage`, `trading` or `attach` section."""

    at_ns: int = 0
    mode: str = ""
    pipeline: PipelineHealth = field(default_factory=PipelineHealth)
    run: RunState = field(default_factory=RunState)
    feed: FeedHealth = field(default_factory=FeedHealth)
    buffer: BufferHealth = field(default_factory=BufferHealth)
    bus: BusHealth = field(default_factory=BusHealth)
    aggregator: Mapping[str, Any] = field(default_factory=dict)
    data_quality: Mapping[str, Any] | None = None
    setup_events: int = 0
    candle_hook_errors: int = 0
    loop_stalls: int = 0
    longest_stall_s: float = 0.0
    storage: StoreHealth | None = None
    trading: TradingHealth | None = None
    ops: Mapping[str, Any] | None = None
    attach: AttachHealth | None = None

    # ---- derived, here only ----------------------------------------------------------------
    @property
    def safe_mode(self) -> bool:
        return self.pipeline.safe_mode or self.feed.safe_mode

    @property
    def reconnects(self) -> int:
        return max(self.pipeline.reconnects, self.feed.reconnects)

    @property
    def status(self) -> Status:
        """One word, most urgent first (see `STATUSES`)."""
        if self.run.stopped:
            return "failed" if self.run.feed_failed else "stopped"
        if self.storage is not None and not self.storage.ok:
            return "store_fault"
        if self.pipeline.progress == "starting":
            return "starting"
        if self.safe_mode:
            return "safe_mode"
        return self.pipeline.progress

    @property
    def healthy(self) -> bool:
        return self.status in ("ok", "starting")

    def verdict(self, stale_after_s: float, market_open: Callable[[int], bool]) -> HealthVerdict:
        """Healthy unless the engine stopped, its feed failed, its stores refuse writes
        (trading is halted then), or no candle closed for longer than `stale_after_s` of engine
        time while the market is open: progress, not a heartbeat."""
        is_open = bool(market_open(self.at_ns))
        since = self.pipeline.since_progress_s
        problems: list[str] = []
        if self.run.stopped:
            problems.append(f"engine stopped ({self.run.stop_reason or 'no reason'})")
        if self.run.feed_failed:
            problems.append("feed failed")
        if self.storage is not None and not self.storage.ok:
            problems.append(f"store fault: {self.storage.fault}")
        if is_open and since is not None and since > stale_after_s:
            problems.append(f"no candle processed for {since:.0f} s (limit {stale_after_s:.0f} s)")
        return HealthVerdict(not problems, tuple(problems), is_open)

    def healthz(self, verdict: HealthVerdict) -> dict[str, Any]:
        """The `/healthz` JSON body."""
        trading = self.trading
        return {
            "healthy": verdict.healthy,
            "problems": list(verdict.problems),
            "status": self.status,
            "market_open": verdict.market_open,
            "since_progress_s": self.pipeline.since_progress_s,
            "last_candle_age_s": self.pipeline.last_candle_age_s,
            "candles": self.pipeline.candles,
            "safe_mode": self.safe_mode,
            "mode": self.mode,
            "attached_clients": 0 if self.attach is None else self.attach.clients,
            "kill_switch": None if trading is None else trading.kill_switch or None,
            "halted": None if trading is None else trading.halted or None,
            "store_fault": None if self.storage is None else self.storage.fault or None,
        }

    # ---- wire --------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        p = self.pipeline
        out: dict[str, Any] = {
            "status": self.status,
            "healthy": self.healthy,
            "progress": p.progress,
            "at_ns": self.at_ns,
            "ticks": p.ticks,
            "ticks_per_s": p.ticks_per_s,
            "candles": p.candles,
            "candles_today": p.candles_today,
            "last_candle_start": p.last_candle_start,
            "last_candle_age_s": p.last_candle_age_s,
            "last_candle_wall_age_s": p.last_candle_wall_age_s,
            "since_progress_s": p.since_progress_s,
            "late_ticks": p.late_ticks,
            "late_since_candle": p.late_since_candle,
            "connected": p.connected,
            "reconnects": p.reconnects,
            "safe_mode": p.safe_mode,
            "uptime_s": p.uptime_s,
            "mode": self.mode,
            "run": _as_dict(self.run),
            "feed": self.feed.as_dict(),
            "buffer": _as_dict(self.buffer),
            "aggregator": dict(self.aggregator),
            "bus": _as_dict(self.bus),
            "setup_events": self.setup_events,
            "candle_hook_errors": self.candle_hook_errors,
            "loop_stalls": self.loop_stalls,
            "longest_stall_s": self.longest_stall_s,
        }
        if self.data_quality is not None:
            out["data_quality"] = dict(self.data_quality)
        if self.storage is not None:
            out["storage"] = self.storage.as_dict()
            if not self.storage.ok:
                out["problems"] = [self.storage.fault]
        if self.trading is not None:
            out["execution"] = self.trading.as_dict()
        if self.ops:
            out["ops"] = dict(self.ops)
        if self.attach is not None:
            out["attach"] = {**_as_dict(self.attach), "attached": list(self.attach.attached)}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthReport:
        """The report back from `as_dict()` (as a console attached from elsewhere receives it)."""
        storage = data.get("storage")
        execution = data.get("execution")
        attach = data.get("attach")
        return cls(
            at_ns=int(data.get("at_ns", 0) or 0),
            mode=str(data.get("mode", "")),
            pipeline=_pick(PipelineHealth, data),
            run=_pick(RunState, data.get("run") or {}),
            feed=FeedHealth.from_dict(data.get("feed") or {}),
            buffer=_pick(BufferHealth, data.get("buffer") or {}),
            bus=_pick(BusHealth, data.get("bus") or {}),
            aggregator=dict(data.get("aggregator") or {}),
            data_quality=data.get("data_quality"),
            setup_events=int(data.get("setup_events", 0) or 0),
            candle_hook_errors=int(data.get("candle_hook_errors", 0) or 0),
            loop_stalls=int(data.get("loop_stalls", 0) or 0),
            longest_stall_s=float(data.get("longest_stall_s", 0.0) or 0.0),
            storage=None if storage is None else StoreHealth.from_dict(storage),
            trading=None if execution is None else TradingHealth.from_dict(execution),
            ops=data.get("ops"),
            attach=None
            if attach is None
            else _pick(AttachHealth, {**attach, "attached": tuple(attach.get("attached", ()))}),
        )


def _as_dict(section: Any) -> dict[str, Any]:
    """A flat section's fields by name (sections hold plain values only)."""
    return {f.name: getattr(section, f.name) for f in fields(section)}
