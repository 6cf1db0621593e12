"""A bounded tick buffer that moves ticks in batches, never one queue hop per tick."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

from slob_tui.core.clock import Clock, WallClock
from slob_tui.core.health import BufferHealth

NS_PER_SECOND = 1_000_000_000


class BufferClosedError(Exception):
    """`put_batch_wait` on a closed buffer: no consumer will make room, so the producer is told
    (and stops) rather than spinning or dropping ticks without a word."""


class TickBuffer:
    """Holds ticks between the feed and the aggregator.

    Live feeds `put_batch` and never block: on overflow the oldest ticks are dropped and
    counted. Replay uses `put_batch_wait`, which waits for room instead (no loss). Ticks older
    than `ttl_s` by the clock when taken are evicted and counted. Each stored item is one
    batch with its arrival time, so the cost per tick is a list slice, not a queue hop.
    """

    def __init__(
        self, maxsize: int = 10_000, ttl_s: float = 60.0, clock: Clock | None = None
    ) -> None:
        if maxsize <= 0:
            raise ValueError("maxsize must be positive")
        self.maxsize = maxsize
        self.ttl_ns = int(ttl_s * NS_PER_SECOND)
        self.clock = clock or WallClock()
        self._batches: deque[tuple[int, list[Any]]] = deque()
        self._size = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closed = False
        self.enqueued = 0
        self.dequeued = 0
        self.dropped = 0
        self.evicted = 0
        self.peak = 0

    def __len__(self) -> int:
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def put_batch(self, ticks: Sequence[Any]) -> None:
        """Add ticks; drop the oldest ones if the buffer would exceed `maxsize`."""
        n = len(ticks)
        if n == 0:
            return
        batch = ticks if isinstance(ticks, list) else list(ticks)
        if n > self.maxsize:
            self.dropped += n - self.maxsize
            batch = batch[n - self.maxsize :]
            n = self.maxsize
        self.enqueued += len(ticks)
        overflow = self._size + n - self.maxsize
        while overflow > 0:
            arrived, oldest = self._batches[0]
            if len(oldest) <= overflow:
                self._batches.popleft()
                self._size -= len(oldest)
                self.dropped += len(oldest)
                overflow -= len(oldest)
            else:
                self._batches[0] = (arrived, oldest[overflow:])
                self._size -= overflow
                self.dropped += overflow
                overflow = 0
        self._batches.append((self.clock.now_ns(), batch))
        self._size += n
        if self._size > self.peak:
            self.peak = self._size
        if self._size >= self.maxsize:
            self._room.clear()
        self._ready.set()

    async def put_batch_wait(self, ticks: Sequence[Any]) -> None:
        """Add ticks, waiting for room rather than dropping (replay's backpressure).

        Raises `BufferClosedError` once the buffer is closed (before or while waiting): its
        consumer is gone, so waiting could never end and returning quietly would lose the rest
        of the producer's data without a word. Ticks added before the close stay buffered.
        """
        start = 0
        n = len(ticks)
        while start < n:
            while self._size >= self.maxsize and not self._closed:
                self._room.clear()
                await self._room.wait()
            if self._closed:
                raise BufferClosedError(f"tick buffer closed: {n - start} ticks not added")
            room = self.maxsize - self._size
            chunk = ticks[start : start + room]
            self.put_batch(chunk)
            start += len(chunk)

    def _evict_expired(self) -> None:
        if not self.ttl_ns or not self._batches:
            return
        cutoff = self.clock.now_ns() - self.ttl_ns
        while self._batches and self._batches[0][0] < cutoff:
            _, old = self._batches.popleft()
            self._size -= len(old)
            self.evicted += len(old)

    def count_passed(self, ticks: int) -> None:
        """Ticks handed to the pipeline past the buffer (a chunk of columns, processed at
        once) count as in and out, so the health figures cover every tick."""
        self.enqueued += ticks
        self.dequeued += ticks

    def take_all(self) -> list[Any]:
        """Every buffered tick in arrival order, without waiting."""
        self._evict_expired()
        if not self._batches:
            self._ready.clear()
            return []
        if len(self._batches) == 1:
            out = self._batches.popleft()[1]
        else:
            out = []
            for _, batch in self._batches:
                out.extend(batch)
            self._batches.clear()
        self._size = 0
        self.dequeued += len(out)
        self._ready.clear()
        self._room.set()
        return out

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Until ticks are there, the buffer is closed, or `timeout` seconds pass."""
        if not self._batches and not self._closed:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return

    async def get_batch(self, timeout: float | None = None) -> list[Any]:
        """Wait until ticks are there (or `timeout` seconds pass) and take them all."""
        await self.wait_ready(timeout)
        return self.take_all()

    def close(self) -> None:
        """Wake every waiter; later gets return what is left, then empty lists."""
        self._closed = True
        self._ready.set()
        self._room.set()

    @property
    def utilization(self) -> float:
        return self._size / self.maxsize

    def health(self) -> BufferHealth:
        return BufferHealth(
            size=self._size,
            maxsize=self.maxsize,
            enqueued=self.enqueued,
            dequeued=self.dequeued,
            dropped=self.dropped,
            evicted=self.evicted,
            peak=self.peak,
            utilization=self.utilization,
        )
