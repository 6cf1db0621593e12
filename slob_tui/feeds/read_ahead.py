"""A chunk iterator read in a worker thread a few chunks ahead of its consumer.

pyarrow parses a block of about 20,000 trades at a time, and a replay chunk holds 32,768 of
them, so a reader asked for one chunk at a time would sit idle while the engine took a chunk,
and the engine would then wait for the next block. Reading `depth` chunks ahead keeps both busy;
memory grows by those chunks only (columns: about 1 MB each). Measured with 8,192-row chunks:
two ahead, the engine still waited about 80 ms in all on four SPY days, where the reader slowed
for a while; eight ahead, under 5 ms, at the same peak RSS. Four 32,768-row chunks hold as
many rows as 16 of those."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead:
    """`await get()` gives the next chunk, None after the last; `await close()` stops the
    worker (it finishes the chunk it is reading) and closes the iterator.

    It may be made before any event loop runs (a replay starts reading while the process is
    still importing and opening its database): chunks read until a consumer first asks are
    kept, `depth` at most, and handed to the loop of that first `get()`."""

    def __init__(self, chunks: Iterator[Any], depth: int = 4) -> None:
        self._lock = threading.Lock()  # guards `_loop` and `_early`
        self._loop: asyncio.AbstractEventLoop | None = None
        self._early: list[Any] = []  # read before a loop was known
        self._ready: asyncio.Queue[Any] | None = None
        self._room = threading.Semaphore(depth)
        self._stopped = False
        self._thread = threading.Thread(target=self._read, args=(chunks,), name="replay-reader",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def _read(self, chunks: Iterator[Any]) -> None:
        last: Any = None
        try:
            for chunk in chunks:
                self._room.acquire()
                if self._stopped:
                    return
                self._hand(chunk)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            last = _Failed(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if not self._stopped:
            self._hand(last)

    def _hand(self, item: Any) -> None:
        with self._lock:
            loop, ready = self._loop, self._ready
            if loop is None or ready is None:
                self._early.append(item)
                return
        try:
            loop.call_soon_threadsafe(ready.put_nowait, item)
        except RuntimeError:  # the consumer's loop is closed: nobody reads any more
            self._stopped = True

    def _attach(self) -> asyncio.Queue[Any]:
        """The first consumer's loop: what was read before it is queued, in order."""
        ready: asyncio.Queue[Any] = asyncio.Queue()
        with self._lock:
            self._loop = asyncio.get_running_loop()
            for item in self._early:
                ready.put_nowait(item)
            self._early.clear()
            self._ready = ready
        return ready

    async def get(self) -> Any:
        ready = self._ready if self._ready is not None else self._attach()
        item = await ready.get()
        self._room.release()
        if isinstance(item, _Failed):
            raise item.error
        return item

    def stop(self) -> None:
        """Stop the worker without waiting for it (it ends at its next chunk); for an owner
        that never consumed, or is not in a loop."""
        self._stopped = True
        self._room.release()  # a worker waiting for room wakes up and sees the stop

    async def close(self) -> None:
        self.stop()
        await asyncio.to_thread(self._thread.join)
