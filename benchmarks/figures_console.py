"""Start-up and console figures: `slob-tui --help` wall time, first frame, console overhead.

Start-up runs real subprocesses; its peer is the bare interpreter (`python -c pass`) in the same
run, the floor no command can beat. The console figures need the Textual app (issue 4); without it
they are skipped with the reason. The overhead figure runs the console benchmark's own load run
(`bench_console.measure_load`: the same demo feed headless and inside the console) in a fresh
child process and compares CPU seconds per wall second.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.suite import Context, Record, Skip, figure, goal, median, speedup

MISSING_MARK = "No module named 'slob_tui."


def help_command() -> list[str]:
    """The installed console script when it is beside this interpreter, else `-m slob_tui`."""
    script = Path(sys.executable).with_name("slob-tui")
    if script.is_file():
        return [str(script), "--help"]
    return [sys.executable, "-m", "slob_tui", "--help"]


def wall_seconds(cmd: list[str]) -> float:
    """Seconds from spawn to exit; a failure is reported with the child's last stderr line."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        if MISSING_MARK in proc.stderr:
            raise Skip(f"{' '.join(cmd[-2:])} cannot start yet: {last}")
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {last}")
    return elapsed


@figure("startup", "`slob-tui --help` wall time vs the bare interpreter", cheap=True)
def startup_figures(ctx: Context) -> Iterator[Record]:
    cmd = help_command()
    bare = [sys.executable, "-c", "pass"]
    runs = 5 if ctx.quick else max(11, ctx.reps)
    wall_seconds(cmd)  # warm the file cache; a missing command module skips here
    ours_s, bare_s = [], []
    for _ in range(runs):
        ours_s.append(wall_seconds(cmd))
        bare_s.append(wall_seconds(bare))
    ours_ms = median(ours_s) * 1000
    bare_ms = median(bare_s) * 1000
    text, met = goal("ms", ours_ms, max_value=150)
    yield Record(
        "start-up: slob-tui --help",
        ours_ms,
        "ms",
        "python -c pass",
        bare_ms,
        speedup(ours_ms, bare_ms, False),
        text,
        met,
        note=f"median of {runs} subprocess runs; ours minus the bare interpreter = "
        f"{ours_ms - bare_ms:.0f} ms of imports and parser building",
        higher_is_better=False,
        reps=runs,
    )


def _app_class() -> type:
    if importlib.util.find_spec("slob_tui.ui.app") is None:
        raise Skip("the console (slob_tui/ui/app.py, issue 4) does not exist yet")
    from textual.app import App

    module = importlib.import_module("slob_tui.ui.app")
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if issubclass(obj, App) and obj is not App and obj.__module__ == module.__name__:
            return obj
    raise Skip("slob_tui.ui.app defines no Textual App subclass yet")


FIRST_FRAME_CHILD = """
import asyncio, sys, time
t0 = time.perf_counter()
from slob_tui.ui.app import {name} as AppClass
async def main():
    app = AppClass()
    async with app.run_test(headless=True, size=(120, 40)) as pilot:
        await pilot.pause()
        print(f"FIRST_FRAME {{time.perf_counter() - t0:.6f}}", flush=True)
        await app.action_quit()
asyncio.run(main())
"""


def _first_frame_seconds(code: str, name: str, work_dir: Path) -> float:
    """Wall time from spawning the child to reading its first-frame mark on stdout.

    The child runs in the scratch folder with its own database, so the demo engine the console
    builds never writes into the repository's `data/`.
    """
    env = {**os.environ, "SLOB_DB_PATH": str(work_dir / "first-frame.db")}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=work_dir,
        env=env,
    )
    assert proc.stdout is not None
    seen = None
    for line in proc.stdout:
        if line.startswith("FIRST_FRAME "):
            seen = time.perf_counter() - start
            break
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    if seen is None:
        last = (err.strip().splitlines() or ["(no output)"])[-1]
        raise Skip(f"{name}() cannot be started headless with no arguments: {last}")
    return seen


@figure("first_frame", "time from process start to the console's first frame")
def first_frame_figures(ctx: Context) -> Iterator[Record]:
    app_cls = _app_class()
    code = FIRST_FRAME_CHILD.format(name=app_cls.__name__)
    runs = 3 if ctx.quick else 5
    seconds = []
    for _ in range(runs):
        seconds.append(_first_frame_seconds(code, app_cls.__name__, ctx.work_dir))
    ms = median(seconds) * 1000
    text, met = goal("ms", ms, max_value=700)
    yield Record(
        "start-up: first frame",
        ms,
        "ms",
        goal=text,
        met=met,
        note=f"median of {runs}: spawn of the interpreter to the first headless frame (120x40)",
        higher_is_better=False,
        reps=runs,
    )


LOAD_CHILD = """
import json, sys
from benchmarks.bench_console import measure_load
print("RESULT " + json.dumps(measure_load(int(sys.argv[1]), float(sys.argv[2]))), flush=True)
"""


def _measure_load(ctx: Context, rate: int, seconds: float) -> dict[str, Any]:
    """The console benchmark's own load run (issue 4), in a fresh child process."""
    if importlib.util.find_spec("benchmarks.bench_console") is None:
        raise Skip("benchmarks/bench_console.py (the console's load run) does not exist yet")
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_CHILD, str(rate), str(seconds)],
        capture_output=True,
        text=True,
        timeout=2 * seconds + 180,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "SLOB_DB_PATH": str(ctx.work_dir / "console-load.db")},
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        if "cannot import name 'measure_load'" in proc.stderr:
            raise Skip("benchmarks.bench_console has no measure_load() yet")
        raise RuntimeError(f"console load child failed: {last}")
    return json.loads(lines[0][len("RESULT ") :])


@figure("console_overhead", "CPU of the console vs --no-ui on the same 10 k ticks/s feed")
def console_overhead_figures(ctx: Context) -> Iterator[Record]:
    _app_class()
    rate = 10_000
    seconds = 5.0 if ctx.quick else 30.0
    runs = 1 if ctx.quick else 2
    results = [_measure_load(ctx, rate, seconds) for _ in range(runs)]
    share = {
        side: median([r[side]["cpu_s"] / r[side]["wall_s"] for r in results]) * 100
        for side in ("headless", "console")
    }
    overhead = share["console"] - share["headless"]
    redraws = median([r["console"]["redraws_per_s"] for r in results])
    p99 = median([r["console"]["lat_p99_ms"] for r in results])
    text, met = goal("% of a core", overhead, max_value=15)
    yield Record(
        "console overhead vs --no-ui",
        overhead,
        "% of a core",
        goal=text,
        met=met,
        note=(
            f"demo market at {rate:,} prints/s for {seconds:.0f} s (bench_console.measure_load), "
            f"median of {runs}: engine alone {share['headless']:.1f}% of a core, inside the "
            f"console (160x50, headless) {share['console']:.1f}%; {redraws:.1f} redraws/s "
            f"(goal <= 10); tick-to-chart p99 {p99:.0f} ms (goal <= 200)"
        ),
        higher_is_better=False,
        reps=runs,
        extra={"runs": results},
    )
