"""Start-up and console figures: `slob-tui --help` wall time, first frame, console overhead.

Start-up runs real subprocesses; its peer is the bare interpreter (`python -c pass`) in the same
run, the floor no command can beat. The console figures need the Textual app (issue 4); without it
they are skipped with the reason. The overhead figure runs the same engine and paced feed twice
in child processes, once headless and once inside the console, and compares CPU seconds per
wall second over the same window.
"""

from __future__ import annotations

import asyncio
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


class PacedFeed:
    """SPY ticks at a fixed wall rate (batches every 0.1 s), the day cycled one day later."""

    name = "bench-paced"
    mode = "REPLAY"
    symbols = ("SPY",)

    def __init__(self, columns: dict[str, Any], rate: int) -> None:
        self.columns = columns
        self.per_batch = max(1, rate // 10)
        self.sent = 0
        self._stopped = False

    async def run(self, sink: Any) -> None:
        cols = self.columns
        ts, price, size = cols["ts"], cols["price"], cols["size"]
        conds, exchanges = cols["cond_names"], cols["exch_names"]
        n = len(ts)
        due = time.perf_counter()
        while not self._stopped:
            batch = []
            for k in range(self.sent, self.sent + self.per_batch):
                i = k % n
                offset = (k // n) * 86_400_000_000_000
                batch.append(
                    ("SPY", ts[i] + offset, price[i], size[i],
                     exchanges[cols["exch"][i]], conds[cols["cond"][i]], None)
                )
            sink.put_ticks(batch)
            sink.set_time(batch[-1][1])
            self.sent += len(batch)
            due += 0.1
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    async def stop(self) -> None:
        self._stopped = True

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {"state": "replaying", "ticks": self.sent}


CONSOLE_CHILD = """
import asyncio, json, sys, time
from pathlib import Path
from benchmarks.figures_console import PacedFeed
from benchmarks.figures_pipeline import pipeline_parts, read_columns
mode, warm, seconds, rate, folder, db = sys.argv[1:7]
warm, seconds, rate = float(warm), float(seconds), int(rate)

async def measure(feed, app=None):
    await asyncio.sleep(warm)
    c0, w0, t0, r0 = time.process_time(), time.perf_counter(), feed.sent, app and app.redraws
    await asyncio.sleep(seconds)
    out = {"cpu": time.process_time() - c0, "wall": time.perf_counter() - w0,
           "ticks": feed.sent - t0, "redraws": (app.redraws - r0) if app else 0}
    return out

async def main():
    parts = pipeline_parts()
    feed = PacedFeed(read_columns(Path(folder)), rate)
    engine = parts["engine"](feed, store=parts["store"](db), mode="REPLAY")
    if mode == "console":
        from slob_tui.ui.app import SlobConsole
        app = SlobConsole(engine)
        async with app.run_test(headless=True, size=(160, 50)):
            result = await measure(feed, app)
    else:
        task = asyncio.create_task(engine.run())
        result = await measure(feed)
        engine.request_stop("benchmark done")
        await task
    print("RESULT " + json.dumps(result), flush=True)

asyncio.run(main())
"""


def _console_child(ctx: Context, mode: str, seconds: float, rate: int, folder: Path) -> dict:
    db = ctx.work_dir / f"console-{mode}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", CONSOLE_CHILD, mode, "1.0", str(seconds), str(rate), str(folder),
         str(db)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{mode} child failed: {last}")
    return json.loads(lines[0][len("RESULT ") :])


@figure("console_overhead", "CPU of the console vs --no-ui on the same 10 k ticks/s feed")
def console_overhead_figures(ctx: Context) -> Iterator[Record]:
    _app_class()
    from benchmarks.figures_pipeline import write_columns

    rate = 10_000
    seconds = 5.0 if ctx.quick else 30.0
    folder = ctx.work_dir / "console-columns"
    folder.mkdir(exist_ok=True)
    write_columns(ctx, folder)
    runs = 1 if ctx.quick else 2
    headless, console = [], []
    for _ in range(runs):
        headless.append(_console_child(ctx, "headless", seconds, rate, folder))
        console.append(_console_child(ctx, "console", seconds, rate, folder))
    cpu_h = median([r["cpu"] / r["wall"] for r in headless]) * 100
    cpu_c = median([r["cpu"] / r["wall"] for r in console]) * 100
    overhead = cpu_c - cpu_h
    redraws = median([r["redraws"] / r["wall"] for r in console])
    delivered = median([r["ticks"] / r["wall"] for r in console])
    text, met = goal("% of a core", overhead, max_value=15)
    yield Record(
        "console overhead vs --no-ui",
        overhead,
        "% of a core",
        goal=text,
        met=met,
        note=(
            f"SPY ticks at {rate:,}/s for {seconds:.0f} s after 1 s of warm-up, median of {runs}: "
            f"engine alone {cpu_h:.1f}% of a core, with the console (160x50, headless) "
            f"{cpu_c:.1f}%; {redraws:.1f} redraws/s (goal <= 10); {delivered:,.0f} ticks/s fed"
        ),
        higher_is_better=False,
        reps=runs,
        extra={"headless": headless, "console": console},
    )
