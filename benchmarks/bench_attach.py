"""Attach's cost and speed: engine CPU with no client vs ten consoles plus one that never reads,
tick-to-attached-screen latency, and attach-to-first-frame. Prints medians.

    .venv/bin/python -m benchmarks.bench_attach [--duration 20] [--rate 10000] [--clients 10]

The engine is a real `TradingNode` in this process, fed by the console benchmark's demo market
at `--rate` prints per wall second (`bench_console.RateFeed`), with its front door on a Unix
socket. Every client runs in one child process, so the engine's CPU figure counts the engine
only: `--clients` `RemoteEngine`s streaming snapshots and events, one raw client that shakes
hands and never reads, and one attached console (Textual, headless, 160x50) whose chart records
when each snapshot is drawn. Latency is measured from the moment a batch of ticks is put into
the engine to the moment the attached console's chart draws a snapshot that includes it; both
processes read CLOCK_MONOTONIC (`time.perf_counter` on Linux), one clock for the machine.
Attach-to-first-frame is from spawning the client process to the attached chart's first
drawing of engine data (interpreter start and imports included, as `slob-tui attach` pays them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

CLIENTS_CHILD = """
import asyncio, json, socket, sys, time
from pathlib import Path
from slob_tui.commands.attach import build_console
from slob_tui.config import Settings
from slob_tui.node.attach_protocol import PROTOCOL_VERSION, Hello, encode
from slob_tui.ui.remote import AttachTarget, RemoteEngine
from websockets.sync.client import unix_connect

async def main(path, clients, duration):
    target = AttachTarget(socket=Path(path))
    stalled = unix_connect(path, uri="ws://localhost/attach").__enter__()
    stalled.send(encode(Hello(PROTOCOL_VERSION, client="never-reads")))
    remotes = [RemoteEngine(target, client=f"c{i}") for i in range(clients)]
    tasks = [asyncio.create_task(r.run()) for r in remotes]
    remote = RemoteEngine(target, client="timed-console")
    app = build_console(target, control=False, settings=Settings(), tz="UTC",
                        install_signals=False, watch_terminal=False)
    app.runner.engine = remote
    seen = []
    async with app.run_test(headless=True, size=(160, 50)) as pilot:
        chart = app.query_one("#chart")
        original = chart.show
        def show(snapshot, symbol):
            original(snapshot, symbol)
            if snapshot.candles:
                seen.append((time.perf_counter(), chart.ticks_seen))
        chart.show = show
        await asyncio.sleep(duration)
        await app.graceful_quit("benchmark done")
    for r in remotes:
        r.request_stop()
    await asyncio.gather(*tasks)
    stalled.close()
    print("RESULT " + json.dumps({"seen": seen,
          "snapshots": [r.snapshots for r in remotes], "gaps": [r.gaps for r in remotes],
          "events": [r.events_seen for r in remotes]}), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


FIRST_FRAME_CHILD = """
import asyncio, sys, time
from pathlib import Path
from slob_tui.commands.attach import build_console
from slob_tui.config import Settings
from slob_tui.ui.remote import AttachTarget, RemoteEngine

async def main(path):
    target = AttachTarget(socket=Path(path))
    app = build_console(target, control=False, settings=Settings(), tz="UTC",
                        install_signals=False, watch_terminal=False)
    async with app.run_test(headless=True, size=(120, 40)) as pilot:
        while not (app.last_snapshot is not None and app.last_snapshot.candles):
            await asyncio.sleep(0.005)
        await pilot.pause()
        print(f"FIRST_FRAME {time.perf_counter():.6f}", flush=True)
        await app.graceful_quit("measured")

asyncio.run(main(sys.argv[1]))
"""


def _first_frame(path: Path) -> float:
    """Spawn of an attaching console to its first frame drawn with the engine's data."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", FIRST_FRAME_CHILD, str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    marks = [ln for ln in proc.stdout.splitlines() if ln.startswith("FIRST_FRAME ")]
    if not marks:
        raise SystemExit(f"first frame never came: {proc.stderr.strip().splitlines()[-3:]}")
    return float(marks[0].split()[1]) - t0


def _node(rate: int, db: Path) -> Any:
    from benchmarks.bench_console import RateFeed
    from slob_tui.config import Settings
    from slob_tui.core.clock import ManualClock
    from slob_tui.node import NodeConfig, TradingNode

    feed = RateFeed(rate)
    node = TradingNode(NodeConfig(db=str(db), settings=Settings()), feed=feed,
                       clock=ManualClock(feed.start))  # fmt: skip
    return node, feed


async def _run(rate: int, duration: float, db: Path, clients: int) -> dict[str, Any]:
    node, feed = _node(rate, db)
    await node.start()
    child = None
    spawned = 0.0
    try:
        if clients:
            spawned = time.perf_counter()
            child = subprocess.Popen(
                [sys.executable, "-c", CLIENTS_CHILD, str(node.front_door.socket_path),
                 str(clients), str(duration)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            )  # fmt: skip
        cpu0, wall0 = time.process_time(), time.perf_counter()
        first_frames = []
        if clients:
            await asyncio.sleep(duration / 4)  # the load is attached by now
            for _ in range(3):
                first_frames.append(
                    await asyncio.to_thread(_first_frame, node.front_door.socket_path)
                )
        await asyncio.sleep(max(0.0, wall0 + duration + 2.0 - time.perf_counter()))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        processed = node.health().pipeline.ticks
        peak_clients = node.front_door.served
    finally:
        await node.stop("benchmark done")
    out: dict[str, Any] = {
        "cpu_s": cpu,
        "wall_s": wall,
        "ticks_sent": feed.total,
        "ticks_processed": processed,
        "clients_served": peak_clients,
    }
    if child is not None:
        stdout, stderr = child.communicate(timeout=120)
        lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            raise SystemExit(f"client process failed: {stderr.strip().splitlines()[-3:]}")
        result = json.loads(lines[0][len("RESULT ") :])
        seen = result["seen"]
        out["first_frame_s"] = statistics.median(first_frames)
        out["first_frames_s"] = first_frames
        out["load_first_frame_s"] = seen[0][0] - spawned if seen else float("nan")
        out.update(_latency(feed.sent, seen))
        out["client_snapshots_min"] = min(result["snapshots"])
        out["client_gaps"] = sum(result["gaps"])
        out["client_events_min"] = min(result["events"])
    return out


def _latency(sent: list[tuple[float, int]], seen: list[list[float]]) -> dict[str, float]:
    """For each batch put after the console's first drawing, the first drawing including it."""
    latencies = []
    j = 0
    start = seen[0][0] if seen else float("inf")
    for t_put, total in sent:
        if t_put < start:
            continue
        while j < len(seen) and seen[j][1] < total:
            j += 1
        if j == len(seen):
            break
        if seen[j][0] >= t_put:
            latencies.append(seen[j][0] - t_put)
    latencies.sort()

    def p(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {"lat_p50_ms": p(0.50), "lat_p99_ms": p(0.99), "lat_n": float(len(latencies))}


def measure_attach(rate: int = 10_000, duration: float = 20.0, clients: int = 10) -> dict:
    """One engine run with no client and one with `clients` + a stalled one + a timed console."""
    with tempfile.TemporaryDirectory() as tmp:
        alone = asyncio.run(_run(rate, duration, Path(tmp) / "alone.db", 0))
        attached = asyncio.run(_run(rate, duration, Path(tmp) / "attached.db", clients))
    return {"alone": alone, "attached": attached}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    ap.add_argument("--rate", type=int, default=10_000, help="ticks per wall second")
    ap.add_argument("--clients", type=int, default=10, help="streaming clients besides the two")
    ap.add_argument("--repeats", type=int, default=1, help="pairs of runs (median)")
    args = ap.parse_args(argv)
    if args.duration <= 0 or args.rate <= 0 or args.clients <= 0 or args.repeats <= 0:
        ap.error("--duration, --rate, --clients and --repeats must be positive")
    runs = [measure_attach(args.rate, args.duration, args.clients) for _ in range(args.repeats)]
    med = statistics.median

    def share(side: str) -> float:
        return med([r[side]["cpu_s"] / r[side]["wall_s"] * 100 for r in runs])

    att = [r["attached"] for r in runs]
    print(
        f"engine CPU, no client           {share('alone'):6.1f} % of a core "
        f"(ticks processed {med([r['alone']['ticks_processed'] for r in runs]):,.0f})"
    )
    print(
        f"engine CPU, {args.clients} clients + 1 stalled {share('attached'):6.1f} % of a core "
        f"(ticks processed {med([a['ticks_processed'] for a in att]):,.0f})"
    )
    print(
        f"tick-to-attached-screen         p50 {med([a['lat_p50_ms'] for a in att]):6.1f} ms  "
        f"p99 {med([a['lat_p99_ms'] for a in att]):6.1f} ms   (goal p99 <= 250)"
    )
    print(
        f"attach-to-first-frame           {med([a['first_frame_s'] for a in att]) * 1000:6.0f}"
        f" ms   (goal <= 1000; median of 3 spawns of an attaching console, under the load)"
    )
    print(
        f"clients: min snapshots {min(a['client_snapshots_min'] for a in att)}, "
        f"min events {min(a['client_events_min'] for a in att)}, "
        f"gaps {sum(a['client_gaps'] for a in att)}"
    )
    print(json.dumps(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
