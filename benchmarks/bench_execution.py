"""Orders and state: what persisting before acting costs, SQLite beside Redis in one run.

`python -m benchmarks.bench_execution [--n 300]` prints medians of:
- trigger -> order placed (journal row, paper submit, book saved, events) per trigger,
- candle -> entry fill recorded (paper fill, fill + order in one transaction, position),
- candle -> trade closed (exit fill, trade row, the other exit cancelled),
- the per-candle execution hook with nothing to fill (paper book, kill-request check),
each with the hot state in SQLite and, when `redis-server` is installed, in Redis (a server
started on a free loopback port for the run). Ratios are Redis time over SQLite time.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from slob_tui.brokers.paper import PaperBroker
from slob_tui.core.clock import ManualClock
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import NS_PER_MINUTE, Candle, Direction, SetupState, SetupUpdate
from slob_tui.engine.bus import EventBus
from slob_tui.execution.executor import OrderExecutor
from slob_tui.execution.wiring import paper_persist
from slob_tui.storage.state import StateManager

T0 = 1_700_000_040 * 1_000_000_000


def _candle(i: int, px: float = 100.0) -> Candle:
    return Candle("NQ", T0 + i * NS_PER_MINUTE, px, px + 1, px - 1, px, 10.0)


def _trigger(i: int) -> Event:
    t = T0 + i * NS_PER_MINUTE
    u = SetupUpdate(
        f"NQ-LONG-{i}",
        "NQ",
        Direction.LONG,
        SetupState.TRIGGERED,
        SetupState.WAITING_ENTRY,
        None,
        i,
        t,
        {"entry": 100.0, "stop": 90.0, "target": 130.0, "liq2_time": t},
    )
    return Event(EventType.SETUP_TRIGGERED, t, u)


async def measure(db: Path, redis_url: str, n: int) -> dict[str, float]:
    state = await StateManager(db, redis_url=redis_url).open()
    broker = PaperBroker(1e9, persist=paper_persist(state), check_buying_power=False)
    ex = OrderExecutor(broker, state, EventBus(), clock=ManualClock(T0), max_signal_age_s=0)
    await ex.load()
    place, fill, close, idle = [], [], [], []
    for i in range(n):
        k = 3 * i
        t0 = time.perf_counter()
        await ex.on_setup_event(_trigger(k))
        t1 = time.perf_counter()
        await broker.on_candle(_candle(k + 1))  # the entry fills at this open
        t2 = time.perf_counter()
        await broker.on_candle(_candle(k + 2, 130.0))  # the target: trade closed, stop cancelled
        t3 = time.perf_counter()
        place.append(t1 - t0)
        fill.append(t2 - t1)
        close.append(t3 - t2)
    for i in range(n):  # nothing to fill: the hook's floor on every candle
        t0 = time.perf_counter()
        await broker.on_candle(_candle(3 * n + 2 + i))
        await ex.check_kill_request()
        idle.append(time.perf_counter() - t0)
    await state.close()
    return {
        "trigger->placed": statistics.median(place) * 1e6,
        "candle->fill recorded": statistics.median(fill) * 1e6,
        "candle->trade closed": statistics.median(close) * 1e6,
        "idle candle hook": statistics.median(idle) * 1e6,
    }


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    exe = shutil.which("redis-server")
    if exe is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="triggers (and idle candles) per backend")
    n = ap.parse_args().n
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sqlite = asyncio.run(measure(tmp / "sqlite.db", "", n))
        redis = None
        server = start_redis(tmp)
        if server is not None:
            try:
                redis = asyncio.run(measure(tmp / "redis.db", server[1], n))
            finally:
                server[0].terminate()
                server[0].wait()
    print(f"orders and state, median of {n} (microseconds)")
    print(f"{'':24}{'SQLite hot':>12}{'Redis hot':>12}{'Redis/SQLite':>14}")
    for name, ours in sqlite.items():
        peer = redis[name] if redis else None
        ratio = f"{peer / ours:.2f}" if peer else "-"
        peer_s = f"{peer:.0f}" if peer else "(no redis)"
        print(f"{name:24}{ours:>12.0f}{peer_s:>12}{ratio:>14}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
