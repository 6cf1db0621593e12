"""The benchmark harness: records, the figure registry, timing, the table and the JSON file.

Every figure is measured beside its peer in the same process run, alternating ours and the
peer's repetitions so that a noisy neighbour on the shared cores hurts both alike, and reports
medians. A figure whose part of slob-tui does not exist yet is recorded as skipped with the
reason; it is never faked.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO_ROOT / "benchmarks" / "results.json"


class Skip(Exception):
    """The part a figure measures does not exist (yet) or cannot run here; the text says why."""


class DataMissing(Exception):
    """The real market data is not where the suite expects it."""


@dataclass
class Record:
    """One printed and stored figure. `ratio` > 1 always means ours is better than the peer."""

    figure: str
    value: float | None
    unit: str
    peer: str | None = None
    peer_value: float | None = None
    ratio: float | None = None
    goal: str | None = None
    met: bool | None = None
    status: str = "ok"  # ok | skipped | error
    note: str = ""
    higher_is_better: bool = True
    reps: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def speedup(ours: float | None, peer: float | None, higher_is_better: bool) -> float | None:
    """How many times better ours is than the peer (> 1: ours wins)."""
    if ours is None or peer is None or ours <= 0 or peer <= 0:
        return None
    return ours / peer if higher_is_better else peer / ours


@dataclass
class Context:
    """What every figure function receives."""

    data_dir: Path
    quick: bool
    reps: int
    work_dir: Path
    log: Callable[[str], None] = print
    cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """Inputs (parsed ticks, peer objects) are built once and shared between figures."""
        if key not in self.cache:
            self.cache[key] = build()
        return self.cache[key]


FigureFn = Callable[[Context], Iterator[Record]]


@dataclass(frozen=True)
class Figure:
    name: str
    fn: FigureFn
    summary: str
    cheap: bool = False


REGISTRY: dict[str, Figure] = {}


def figure(name: str, summary: str, cheap: bool = False) -> Callable[[FigureFn], FigureFn]:
    """Register a generator of records under a name `--only` can select."""

    def register(fn: FigureFn) -> FigureFn:
        REGISTRY[name] = Figure(name, fn, summary, cheap)
        return fn

    return register


def locate_data(data_dir: Path | None = None) -> Path:
    """`../shared/data` beside the repository (or the folder given), or a one-line reason."""
    data = data_dir or REPO_ROOT.parent / "shared" / "data"
    if not (data / "README.md").is_file():
        raise DataMissing(
            f"real market data not found at {data}: the benchmarks read ../shared/data beside "
            "the repository (or pass --data FOLDER)"
        )
    return data


def time_once(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds of one call (after a collection, so earlier garbage is not billed).

    CPU time is kept beside wall time because the machine's cores are shared: wall time is what
    a user waits, CPU time is what the code costs when a neighbour steals the core.
    """
    gc.collect()
    cpu = time.process_time()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, time.process_time() - cpu, result


Factory = Callable[[], Callable[[], Any]]


@dataclass
class Timing:
    """Seconds per repetition for both sides, and each side's last result."""

    ours: list[float] = field(default_factory=list)
    peer: list[float] = field(default_factory=list)
    ours_cpu: list[float] = field(default_factory=list)
    peer_cpu: list[float] = field(default_factory=list)
    ours_result: Any = None
    peer_result: Any = None

    def cpu_rates(self, count: int) -> dict[str, float | None]:
        """Items per CPU second (medians), for the record's `extra`."""
        return {
            "ours_per_cpu_s": rate(count, self.ours_cpu),
            "peer_per_cpu_s": rate(count, self.peer_cpu),
        }


def side_by_side(reps: int, ours: Factory, peer: Factory | None) -> Timing:
    """Alternate ours and the peer `reps` times.

    Each side is a factory: its set-up (a fresh aggregator, an engine loaded with data) is not
    timed, only the call it returns.
    """
    t = Timing()
    for _ in range(reps):
        wall, cpu, t.ours_result = time_once(ours())
        t.ours.append(wall)
        t.ours_cpu.append(cpu)
        if peer is not None:
            wall, cpu, t.peer_result = time_once(peer())
            t.peer.append(wall)
            t.peer_cpu.append(cpu)
    return t


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def rate(count: int, seconds: list[float]) -> float | None:
    """Items per second from the median time."""
    m = median(seconds)
    return count / m if m else None


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit.endswith("/s") and value >= 1e6:
        return f"{value / 1e6:.2f} M{unit}"
    if unit.endswith("/s") and value >= 1e3:
        return f"{value / 1e3:.1f} k{unit}"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


def _cpu_note(r: Record) -> str:
    ours, peer = r.extra.get("ours_per_cpu_s"), r.extra.get("peer_per_cpu_s")
    if ours is None:
        return ""
    unit = r.extra.get("cpu_unit", r.unit)  # a figure in % still counts items per CPU second
    text = f"; per CPU second: ours {format_value(ours, unit)}"
    return text + (f", peer {format_value(peer, unit)}" if peer is not None else "")


def render_table(records: list[Record]) -> str:
    """A plain text table: wide enough to read, no dependency on Rich for the suite."""
    header = ("figure", "ours", "peer", "peer value", "ratio", "goal", "met")
    rows = [header]
    for r in records:
        if r.status != "ok":
            rows.append((r.figure, r.status.upper(), "", "", "", r.goal or "", "-"))
            continue
        rows.append(
            (
                r.figure,
                format_value(r.value, r.unit),
                r.peer or "",
                format_value(r.peer_value, r.unit) if r.peer else "",
                f"{r.ratio:.2f}x" if r.ratio is not None else ("n/a" if r.peer else ""),
                r.goal or "",
                {True: "yes", False: "NO", None: "-"}[r.met],
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [
        f"  {r.figure}: {'' if r.status == 'ok' else r.status + ': '}{r.note}{_cpu_note(r)}"
        for r in records
        if r.note
    ]
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)


def write_json(records: list[Record], path: Path, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "records": [r.to_json() for r in records]}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def goal(
    unit: str,
    value: float | None,
    ratio: float | None = None,
    min_ratio: float | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
) -> tuple[str, bool | None]:
    """The goal as text and whether it is met (None when a needed figure is missing)."""
    parts: list[str] = []
    met: bool | None = True
    if min_ratio is not None:
        parts.append(f">= {min_ratio:g}x peer")
        met = None if ratio is None or met is None else met and ratio >= min_ratio
    if min_value is not None:
        parts.append(f">= {format_value(min_value, unit)}")
        met = None if value is None or met is None else met and value >= min_value
    if max_value is not None:
        parts.append(f"<= {format_value(max_value, unit)}")
        met = None if value is None or met is None else met and value <= max_value
    return ", ".join(parts), met


def assert_same_rows(
    ours: list[tuple[Any, ...]], peer: list[tuple[Any, ...]], peer_name: str
) -> None:
    """Candles (start, open, high, low, close, volume) must agree before anything is timed."""
    if len(ours) != len(peer):
        starts_o = {r[0] for r in ours}
        starts_p = {r[0] for r in peer}
        only_o = sorted(starts_o - starts_p)[:3]
        only_p = sorted(starts_p - starts_o)[:3]
        raise AssertionError(
            f"candle count differs from {peer_name}: ours {len(ours)}, peer {len(peer)} "
            f"(only ours: {only_o}, only peer: {only_p})"
        )
    for a, b in zip(ours, peer, strict=True):
        values = zip(a[1:], b[1:], strict=True)
        if a[0] != b[0] or any(abs(x - y) > 1e-9 * max(1.0, abs(y)) for x, y in values):
            raise AssertionError(f"candle differs from {peer_name}: ours {a}, peer {b}")
