"""A chunk iterator read in a worker thread a few chunks ahead of its consumer.

pyarrow parses a block of about 20,000 trades at a time and a replay chunk is 8,192 of them,
so a reader asked for one chunk at a time sits idle while the engine takes the chunks a block
yields at once, and the engine then waits for the next block. Reading `depth` chunks ahead
keeps both busy; memory grows by those chunks only (columns: about 0.25 MB each). With two
chunks ahead the engine still waited about 80 ms in all on four SPY days, where the reader
slowed for a while; with eight, under 5 ms, at the same peak RSS.
"""

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
    worker (it finishes the chunk it is reading) and closes the iterator."""

    def __init__(self, chunks: Iterator[Any], depth: int = 8) -> None:
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Queue[Any] = asyncio.Queue()
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
                self._loop.call_soon_threadsafe(self._ready.put_nowait, chunk)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            last = _Failed(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if not self._stopped:
            self._loop.call_soon_threadsafe(self._ready.put_nowait, last)

    async def get(self) -> Any:
        item = await self._ready.get()
        self._room.release()
        if isinstance(item, _Failed):
            raise item.error
        return item

    async def close(self) -> None:
        self._stopped = True
        self._room.release()  # a worker waiting for room wakes up and sees the stop
        await asyncio.to_thread(self._thread.join)
