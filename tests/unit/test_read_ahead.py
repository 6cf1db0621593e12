"""ReadAhead: a replay's chunks read in a worker thread, in order, errors and stops included."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from slob_tui.feeds.read_ahead import ReadAhead


async def test_every_chunk_arrives_in_order_then_none():
    reading = ReadAhead(iter(range(50)), depth=3)
    got = []
    while (item := await reading.get()) is not None:
        got.append(item)
    await reading.close()
    assert got == list(range(50))


async def test_an_error_while_reading_is_raised_after_the_chunks_before_it():
    def chunks() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("line 7: bad")

    reading = ReadAhead(chunks())
    assert [await reading.get(), await reading.get()] == [1, 2]
    with pytest.raises(ValueError, match="line 7"):
        await reading.get()
    await reading.close()


async def test_close_stops_the_worker_at_most_depth_chunks_ahead_and_closes_the_file():
    produced: list[int] = []
    closed = threading.Event()
    two_ahead = threading.Event()

    def chunks() -> Iterator[int]:
        try:
            for i in range(1_000):
                produced.append(i)
                if i == 3:
                    two_ahead.set()
                yield i
        finally:
            closed.set()

    reading = ReadAhead(chunks(), depth=2)
    assert await reading.get() == 0
    assert two_ahead.wait(5)  # chunk 0 taken: room for 1 and 2, chunk 3 read, waiting
    await reading.close()
    assert closed.is_set()
    assert produced == [0, 1, 2, 3]


def test_made_before_any_loop_it_reads_ahead_and_hands_over_in_order():
    """A replay starts reading before its event loop exists: what was read by then is kept
    (at most `depth` chunks) and reaches the first consumer's loop in order, then the rest."""
    import asyncio

    produced: list[int] = []
    waiting = threading.Event()

    def chunks() -> Iterator[int]:
        for i in range(20):
            produced.append(i)
            if i == 4:
                waiting.set()
            yield i

    reading = ReadAhead(chunks(), depth=4)
    assert waiting.wait(5)  # four chunks kept, the fifth read and waiting for room
    assert produced == [0, 1, 2, 3, 4]

    async def consume() -> list[int]:
        got = []
        while (item := await reading.get()) is not None:
            got.append(item)
        await reading.close()
        return got

    assert asyncio.run(consume()) == list(range(20))


def test_stop_without_a_consumer_ends_the_worker_and_closes_the_file():
    closed = threading.Event()

    def chunks() -> Iterator[int]:
        try:
            yield from range(1_000)
        finally:
            closed.set()

    reading = ReadAhead(chunks(), depth=2)
    reading.stop()
    assert closed.wait(5)
