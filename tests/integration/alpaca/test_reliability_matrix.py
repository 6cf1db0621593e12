"""Seeded fault matrix: drops at random points, garbage frames, stalls, auth refusals,
restarts and long outages (SAFE MODE). Every run must end with exactly the candles of the
fault-free run, no duplicate, no tick behind a backfill, and no crash.

`SLOB_RELIABILITY_RUNS=200 pytest -m reliability tests/integration/alpaca` runs the full
matrix; the default run takes 8 seeds.
"""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from slob_tui.core.events import EventType
from tests.fakes.alpaca import LocalAlpaca

from .conftest import KEY, SECRET, AggSink, fast_fetcher, ohlcv, run_until_done, wait_for

RUNS = int(os.environ.get("SLOB_RELIABILITY_RUNS", "8"))
KINDS = ("drop", "garbage", "stall", "refuse_auth", "restart")


def plan(seed: int, n_trades: int) -> list[tuple[int, str, dict]]:
    rng = random.Random(seed)
    faults = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(KINDS)
        at = rng.randrange(1, n_trades)
        args: dict = {}
        if kind == "garbage":
            args = {"count": rng.randint(1, 5), "seed": rng.randrange(1000)}
        elif kind == "stall":
            args = {"seconds": 2.0}
        elif kind == "refuse_auth":
            args = {"count": rng.randint(1, 3), "code": rng.choice((406, 500))}
        elif kind == "restart":
            args = {"downtime_s": rng.choice((0.01, 0.05, 0.1))}
        faults.append((at, kind, args))
    return faults


@pytest.mark.reliability
@pytest.mark.parametrize("seed", range(RUNS))
async def test_seeded_faults_end_with_the_fault_free_candles(seed, spy_trades, reference_candles):
    rng = random.Random(seed * 7919)
    faults = plan(seed, len(spy_trades))
    outage = seed % 4 == 3  # every fourth run also takes the server down until SAFE MODE
    async with LocalAlpaca(
        spy_trades, KEY, SECRET, batch_size=rng.choice((50, 100, 250))
    ) as server:
        for at, kind, args in faults:
            server.schedule(at, kind, **args)
        sink = AggSink()
        fetcher = fast_fetcher(
            server,
            stall_timeout_s=0.3,
            market_open=lambda _ns: True,
            seed=seed,
            encoding=rng.choice(("msgpack", "json")),
        )
        runner = asyncio.create_task(run_until_done(fetcher, sink, timeout=90))
        if outage:
            at = rng.randrange(len(spy_trades) // 4, len(spy_trades) // 2)
            await wait_for(lambda: server.cursor >= at or runner.done(), 60, "outage point")
            await server.go_down()
            await wait_for(lambda: fetcher.safe_mode, 30, "SAFE MODE")
            await server.come_up()
        await runner
    context = f"seed {seed}: faults {faults}, outage {outage}, health {fetcher.health()}"
    starts = [c.start for c in sink.closed]
    assert len(starts) == len(set(starts)), context
    assert sink.order_violations == 0, context
    assert ohlcv(sink.final()) == ohlcv(reference_candles), context
    assert fetcher.state == "stopped", context
    modes = [e.data.on for e in sink.of_type(EventType.SAFE_MODE)]
    if outage:
        assert modes == [True, False], context
    else:
        assert modes == [], context
