"""A feed of tick batches already in memory: replays them in order with the data as clock.

For tests, benchmarks and tools that prepare ticks themselves; it speaks the same `Feed`
protocol as the real feeds, so the engine cannot tell it apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slob_tui.core.health import FeedHealth
from slob_tui.feeds.base import FeedSink


class BatchFeed:
    """Hands each batch to the engine with backpressure, then sets the clock to its last tick."""

    mode = "REPLAY"

    def __init__(
        self, batches: Sequence[Sequence[tuple[Any, ...]]], symbols: tuple[str, ...] = (),
        name: str = "batches",
    ) -> None:  # fmt: skip
        self.batches = batches
        self.symbols = symbols or tuple(sorted({b[0][0] for b in batches if b}))
        self.name = name
        self.sent = 0
        self._stopped = False

    async def run(self, sink: FeedSink) -> None:
        for batch in self.batches:
            if self._stopped:
                return
            if not batch:
                continue
            await sink.put_ticks_wait(batch)
            sink.set_time(batch[-1][1])
            self.sent += len(batch)

    async def stop(self) -> None:
        self._stopped = True

    def pause(self) -> None:
        """Nothing to hold back: the batches are handed over as fast as the engine takes them."""

    def resume(self) -> None:
        """See `pause`."""

    def health(self) -> FeedHealth:
        return FeedHealth(
            name=self.name,
            state="stopped" if self._stopped else "replaying",
            counters={"ticks": self.sent},
        )
