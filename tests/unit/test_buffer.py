import asyncio
import contextlib
import signal
from collections.abc import Iterator

import pytest

from slob_tui.core.clock import ManualClock
from slob_tui.engine.buffer import BufferClosedError, TickBuffer


def ticks(a: int, b: int) -> list[tuple]:
    return [("X", i, 1.0, 1.0) for i in range(a, b)]


def test_batches_come_out_in_order():
    buf = TickBuffer(maxsize=100, clock=ManualClock())
    buf.put_batch(ticks(0, 3))
    buf.put_batch(ticks(3, 5))
    assert [t[1] for t in buf.take_all()] == [0, 1, 2, 3, 4]
    assert buf.take_all() == []
    s = buf.health()
    assert (s.enqueued, s.dequeued, s.dropped, s.size) == (5, 5, 0, 0)


def test_overflow_drops_the_oldest_and_counts_them():
    buf = TickBuffer(maxsize=10, clock=ManualClock())
    buf.put_batch(ticks(0, 6))
    buf.put_batch(ticks(6, 12))  # 2 over: ticks 0 and 1 go
    assert buf.health().dropped == 2
    assert len(buf) == 10 and buf.utilization == 1.0
    buf.put_batch(ticks(12, 30))  # larger than the buffer: only the newest 10 stay
    out = [t[1] for t in buf.take_all()]
    assert out == list(range(20, 30))
    assert buf.health().dropped == 2 + 10 + 8
    assert buf.health().enqueued == 30


def test_ttl_evicts_stale_ticks():
    clock = ManualClock(0)
    buf = TickBuffer(maxsize=100, ttl_s=60, clock=clock)
    buf.put_batch(ticks(0, 4))
    clock.advance(30 * 10**9)
    buf.put_batch(ticks(4, 6))
    clock.advance(31 * 10**9)  # the first batch is now 61 s old
    assert [t[1] for t in buf.take_all()] == [4, 5]
    assert buf.health().evicted == 4


async def test_get_batch_waits_and_times_out():
    buf = TickBuffer(maxsize=100, clock=ManualClock())
    assert await buf.get_batch(timeout=0.01) == []

    async def later():
        await asyncio.sleep(0.01)
        buf.put_batch(ticks(0, 2))

    task = asyncio.create_task(later())
    got = await buf.get_batch(timeout=5)
    await task
    assert len(got) == 2


async def test_put_batch_wait_applies_backpressure_without_loss():
    buf = TickBuffer(maxsize=10, clock=ManualClock())
    received = []

    async def consumer():
        while True:
            batch = await buf.get_batch(timeout=1)
            received.extend(t[1] for t in batch)
            if buf.closed and len(buf) == 0:
                return

    task = asyncio.create_task(consumer())
    for start in range(0, 100, 7):
        await buf.put_batch_wait(ticks(start, min(start + 7, 100)))
    buf.close()
    await task
    assert received == list(range(100))
    assert buf.health().dropped == 0
    assert buf.health().peak <= 10


def test_bad_size_rejected():
    with pytest.raises(ValueError):
        TickBuffer(maxsize=0)


@contextlib.contextmanager
def spin_guard(seconds: float) -> Iterator[None]:
    """Interrupts a loop that never yields (SIGALRM is checked between bytecodes), so a spin
    fails the test instead of hanging the suite."""

    def interrupt(signum: int, frame: object) -> None:
        raise AssertionError(f"still running after {seconds:g} s: spinning without a yield")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


async def test_put_batch_wait_on_a_buffer_closed_while_full_raises_instead_of_spinning():
    """Bug 4 of issue 13: closed while full, the old loop took an empty chunk for ever."""
    buf = TickBuffer(maxsize=4, clock=ManualClock())
    buf.put_batch(ticks(0, 4))
    waiter = asyncio.create_task(buf.put_batch_wait(ticks(4, 10)))
    await asyncio.sleep(0)  # the producer now waits for room
    assert not waiter.done()
    with spin_guard(5.0):
        buf.close()
        with pytest.raises(BufferClosedError, match="tick buffer closed: 6 ticks not added"):
            await waiter
    assert [t[1] for t in buf.take_all()] == [0, 1, 2, 3]
    assert buf.health().dropped == 0


async def test_put_batch_wait_on_a_closed_buffer_with_room_raises_at_once():
    buf = TickBuffer(maxsize=10, clock=ManualClock())
    buf.close()
    with pytest.raises(BufferClosedError, match="3 ticks not added"):
        await buf.put_batch_wait(ticks(0, 3))
    assert len(buf) == 0
