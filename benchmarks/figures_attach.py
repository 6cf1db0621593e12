"""Attach figures: engine CPU with ten consoles plus one that never reads against none,
tick-to-attached-screen p99 at 10 k ticks/s, and attach-to-first-frame.

Runs `bench_attach.measure_attach` in a fresh child process (the engine there, every client in
a grandchild), as the console overhead figure runs its load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.suite import Context, Record, figure, goal, median, speedup

CHILD = """
import json, sys
from benchmarks.bench_attach import measure_attach
print("RESULT " + json.dumps(measure_attach(int(sys.argv[1]), float(sys.argv[2]), 10)), flush=True)
"""


def _measure(rate: int, seconds: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(rate), str(seconds)],
        capture_output=True,
        text=True,
        timeout=4 * seconds + 240,
        cwd=Path(__file__).resolve().parent.parent,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"attach load child failed: {last}")
    return json.loads(lines[0][len("RESULT ") :])


@figure("attach", "ten attached consoles + one that never reads: engine CPU, latency, first frame")
def attach_figures(ctx: Context) -> Iterator[Record]:
    rate = 10_000
    seconds = 8.0 if ctx.quick else 20.0
    runs = 1 if ctx.quick else 2
    results = [_measure(rate, seconds) for _ in range(runs)]
    share = {
        side: median([r[side]["cpu_s"] / r[side]["wall_s"] * 100 for r in results])
        for side in ("alone", "attached")
    }
    attached = [r["attached"] for r in results]
    yield Record(
        "attach: engine CPU, 10 clients + 1 stalled",
        share["attached"],
        "% of a core",
        "the same engine, no client",
        share["alone"],
        speedup(share["attached"], share["alone"], False),
        note=f"demo market at {rate:,} prints/s for {seconds:.0f} s, median of {runs}; "
        f"ticks processed {median([a['ticks_processed'] for a in attached]):,.0f} with clients "
        f"vs {median([r['alone']['ticks_processed'] for r in results]):,.0f} without; "
        f"client event gaps {sum(a['client_gaps'] for a in attached)}",
        higher_is_better=False,
        reps=runs,
        extra={"runs": results},
    )
    p99 = median([a["lat_p99_ms"] for a in attached])
    text, met = goal("ms", p99, max_value=250)
    yield Record(
        "attach: tick-to-attached-screen p99",
        p99,
        "ms",
        goal=text,
        met=met,
        note=f"tick put into the engine -> drawn by an attached console in another process "
        f"(p50 {median([a['lat_p50_ms'] for a in attached]):.0f} ms), under the 10 + 1 clients",
        higher_is_better=False,
        reps=runs,
    )
    first = median([a["first_frame_s"] for a in attached]) * 1000
    text, met = goal("ms", first, max_value=1000)
    yield Record(
        "attach: first frame",
        first,
        "ms",
        goal=text,
        met=met,
        note="spawn of an attaching console (interpreter, imports, handshake, snapshot) to its "
        "first frame with the engine's candles; median of 3 per run, under the load",
        higher_is_better=False,
        reps=runs,
    )
