"""What the payload check costs per candle: one CANDLE_COMPLETED through the bus.

    .venv/bin/python -m benchmarks.bench_events [--n 200000] [--runs 7]

The engine publishes one CANDLE_COMPLETED per closed candle (and no event per tick). This
times, per event, building it and emitting it to the subscribers a node has on every event
(the setup journal, the metrics counts, the front door's relay stand-in), with the bus's
payload check on (the default) and off, and prints the medians of `--runs` runs and their
difference and ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Candle
from slob_tui.engine.bus import EventBus
from slob_tui.engine.journal import SetupJournal
from slob_tui.ops.collector import EventCounts


def _per_event_ns(n: int, check: bool) -> float:
    bus = EventBus(check_payloads=check)
    journal, counts, relayed = SetupJournal(), EventCounts(), []
    bus.subscribe(None, journal.remember)
    bus.subscribe(None, counts)
    bus.subscribe(None, relayed.append)
    candle = Candle("SPY", 0, 165.1, 165.2, 165.0, 165.15, 1200.0, 30)
    emit, kind = bus.emit, EventType.CANDLE_COMPLETED
    t0 = time.perf_counter_ns()
    for i in range(n):
        emit(Event(kind, i, candle, "aggregator"))
        if len(relayed) > 1000:
            relayed.clear()
    return (time.perf_counter_ns() - t0) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    on, off = [], []
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        off.append(_per_event_ns(args.n, False))
        on.append(_per_event_ns(args.n, True))
    med_on, med_off = statistics.median(on), statistics.median(off)
    print(f"CANDLE_COMPLETED built and emitted to 3 subscribers, median of {args.runs} runs "
          f"x {args.n:,} events")  # fmt: skip
    print(f"  payload check off : {med_off:8.1f} ns/event")
    print(f"  payload check on  : {med_on:8.1f} ns/event")
    print(f"  difference        : {med_on - med_off:+8.1f} ns/event (ratio {med_on / med_off:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
