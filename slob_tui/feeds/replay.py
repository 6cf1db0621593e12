"""ReplayFeed: a tick or candle file pushed through the live pipeline, at a speed or flat out.

The file is read in chunks in a worker thread a few chunks ahead (`read_ahead.py`: pyarrow
parses while the engine aggregates), and
handed over in batches: ticks with `put_ticks_wait` (backpressure, nothing dropped), candles
with `put_candles`. After each batch the feed moves the engine clock to the batch's last time
(`set_time`), so the clock follows the data. At `--speed max` a batch is a whole chunk, and the
clock moves to its last tick only once the engine has processed it (inside the batch the engine
moves it candle by candle), so it never runs ahead of a decision; into the engine, such a chunk
stays columns (`TickChunk`: the validator and aggregator take it a run of rows at a time). A
paced replay hands over what is due, at most `max_batch_span_s` (20 s by default) of data at
once.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from slob_tui.core.health import FeedHealth
from slob_tui.core.tick_chunk import TickChunk
from slob_tui.engine.ports import ColumnSink
from slob_tui.feeds.base import FeedSink
from slob_tui.feeds.files import (
    ReadReport,
    detect_kind,
    iter_candle_chunks,
    iter_tick_chunks,
    iter_tick_column_chunks,
)
from slob_tui.feeds.read_ahead import ReadAhead
from slob_tui.feeds.sources import expand

NS_PER_SECOND = 1_000_000_000
# Rows per chunk read and per batch handed over at `--speed max`. Memory is bounded by this, not
# by the file: four SPY days peak within a few % of one day. The reader thread and the engine
# share one GIL, and each chunk costs both of them Python work under it (the reader to turn
# pyarrow's blocks into columns, the engine one turn of the validator and the aggregator), so
# fewer, larger chunks make a replay faster. Four SPY days, alternating runs: 8,192 rows (eight
# read ahead) 713 ms, 32,768 rows (four ahead) 666 ms; peak RSS 104 -> 107 MB (CSV) and 131 ->
# 144 MB (Parquet). Before the gzip reader took large pieces (`bounded.py`) the GIL waits lay
# elsewhere and 16,384 rows measured no faster.
CHUNK_ROWS = 32_768


class ReplayFeed:
    """Replays `path` (CSV, CSV.gz or Parquet, or a folder or glob of them; ticks or candles,
    detected from the header).

    `speed=None` replays as fast as the pipeline takes it; a number keeps data time / wall time
    at that factor (1.0 = real time), sleeping between batches.
    """

    mode = "REPLAY"

    def __init__(
        self,
        path: str | Path,
        symbol: str | None = None,
        tz: str = "America/New_York",
        speed: float | None = None,
        exclude_conditions: Any = None,
        batch_rows: int = CHUNK_ROWS,
        chunk_rows: int = CHUNK_ROWS,
        max_batch_span_s: float | None = None,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed is not None and not speed > 0:
            from slob_tui.errors import UsageError

            raise UsageError(f"replay speed must be positive or max, got {speed}")
        self.path = Path(path)
        self.inputs = expand(path)  # one file, or a folder or glob of daily files
        self.kind = detect_kind(path)  # raises UsageError naming the problem
        self.symbol = symbol or self.inputs.default_symbol()
        self.name = f"replay:{self.path.name}"
        self.symbols: tuple[str, ...] = (self.symbol,)
        self.tz = tz
        self.speed = speed
        self.exclude_conditions = tuple(exclude_conditions or ())
        self.batch_rows = batch_rows
        self.chunk_rows = chunk_rows
        self.max_batch_span_ns = (
            None if max_batch_span_s is None else int(max_batch_span_s * NS_PER_SECOND)
        )
        # a paced replay hands over what is due, at most this much data time at once
        self._paced_span_ns = int((max_batch_span_s or 20.0) * NS_PER_SECOND)
        self._wall = wall  # seconds; injectable so pacing can be tested without real time
        self.report = ReadReport(str(self.path))
        self.ticks_sent = 0
        self.candles_sent = 0
        self.batches = 0
        self.data_time: int | None = None
        self.state = "idle"
        self._stop = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._anchor: tuple[float, int] | None = None  # (wall s, data ns) for paced replay
        self._paused_at = 0.0
        self._drained_at: int | None = None
        self.drain_every_ns = 30 * NS_PER_SECOND
        self._reading: ReadAhead | None = None  # started early by `start_reading`

    # ------------------------------------------------------------------ Feed protocol
    def start_reading(self) -> None:
        """Start parsing now, in the reader thread, before the engine exists (a whole-process
        replay overlaps the file's first chunks with its start-up). At `--speed max` the chunks
        are columns, as a `ColumnSink` takes them; `run` turns them back into tuples for a
        sink that is not one."""
        if self._reading is None:
            self._reading = ReadAhead(self._chunks(columns=True))

    def _chunks(self, columns: bool) -> Iterator[Any]:
        """The file's chunks: lists of tuples or candles, or `TickChunk`s when `columns` and
        the replay is flat out."""
        flat_out = self.speed is None and self.max_batch_span_ns is None
        if self.kind == "ticks" and flat_out and columns:
            return iter_tick_column_chunks(
                self.inputs.label, self.symbol, self.tz, self.exclude_conditions,
                self.chunk_rows, report=self.report,
            )  # fmt: skip
        if self.kind == "ticks":
            return iter_tick_chunks(
                self.inputs.label, self.symbol, self.tz, self.exclude_conditions,
                self.chunk_rows, report=self.report,
            )  # fmt: skip
        return iter_candle_chunks(
            self.inputs.label, self.symbol, self.tz, self.chunk_rows, report=self.report
        )

    async def run(self, sink: FeedSink) -> None:
        self.state = "running"
        try:
            # Parse the next chunks in a worker thread while this one goes through the engine.
            reading = self._reading or ReadAhead(self._chunks(isinstance(sink, ColumnSink)))
            self._reading = None
            try:
                while not self._stop:
                    chunk: Any = await reading.get()
                    if chunk is None:  # the files are read (a chunk is never None)
                        break
                    if isinstance(chunk, TickChunk) and isinstance(sink, ColumnSink):
                        await self._send_columns(sink, chunk)
                    elif self.kind == "ticks":
                        rows = chunk.tuples() if isinstance(chunk, TickChunk) else chunk
                        await self._send_ticks(sink, rows)
                    else:
                        await self._send_candles(sink, chunk)
            finally:
                await reading.close()
            self.state = "stopped" if self._stop else "finished"
        except BaseException:
            self.state = "failed"
            raise

    def stop_reading(self) -> None:
        """Stop a reader `start_reading` began that `run` never took over (the command failed
        before the engine ran)."""
        if self._reading is not None:
            self._reading.stop()
            self._reading = None

    async def _send_ticks(self, sink: FeedSink, chunk: list[tuple[Any, ...]]) -> None:
        if self.speed is None and self.max_batch_span_ns is None:
            await self._send_ticks_flat_out(sink, chunk)
            return
        times = [t[1] for t in chunk]
        i, n = 0, len(chunk)
        while i < n and not self._stop:
            await self._resumed.wait()
            limit = times[i] + self._paced_span_ns
            if self.speed is not None:
                limit = min(limit, await self._pace(times[i]))
            j = min(bisect.bisect_right(times, limit, i, n), i + self.batch_rows)
            j = max(j, i + 1)
            batch = chunk[i:j]
            await self._before_jump(sink, times[i])
            sink.set_time(times[i])
            await sink.put_ticks_wait(batch)
            last = times[j - 1]
            sink.set_time(last)
            self.data_time = last
            self.ticks_sent += j - i
            self.batches += 1
            i = j
            await asyncio.sleep(0)  # let the engine take the batch before the clock moves on

    async def _send_ticks_flat_out(self, sink: FeedSink, chunk: list[tuple[Any, ...]]) -> None:
        """At `--speed max`: batches of `batch_rows` ticks whatever time they span, so the event
        loop turns a few times per chunk rather than once per few trades. The clock moves to a
        batch's last tick only once the engine has processed it (`put_candles(())` processes
        everything buffered first); inside the batch the engine moves it to each candle's end.
        So a candle is decided at the time it ended, as live, even when the tick that closes it
        comes after a long quiet spell (moving the clock to that tick first made the executor
        reject the candle's signal as stale, depending on where a batch happened to start)."""
        i, n = 0, len(chunk)
        while i < n and not self._stop:
            await self._resumed.wait()
            j = min(i + self.batch_rows, n)
            batch = chunk[i:j] if i or j < n else chunk
            await sink.put_ticks_wait(batch)
            await sink.put_candles(())
            last = batch[-1][1]
            sink.set_time(last)
            self.data_time = last
            self.ticks_sent += j - i
            self.batches += 1
            i = j
            await asyncio.sleep(0)  # one turn per batch: stop, pause and the console get in

    async def _send_columns(self, sink: Any, chunk: TickChunk) -> None:
        """At `--speed max` into a `ColumnSink`: `_send_ticks_flat_out` with the chunk left as
        columns; the engine processes each batch as it takes it, so the clock moves to its
        last tick after that, as there."""
        i, n = 0, len(chunk)
        while i < n and not self._stop:
            await self._resumed.wait()
            j = min(i + self.batch_rows, n)
            batch = chunk.slice(i, j) if i or j < n else chunk
            await sink.put_tick_columns(batch)
            last = int(batch.ts[-1])
            sink.set_time(last)
            self.data_time = last
            self.ticks_sent += j - i
            self.batches += 1
            i = j
            await asyncio.sleep(0)  # one turn per batch: stop, pause and the console get in

    async def _before_jump(self, sink: FeedSink, ts: int) -> None:
        """Before moving the clock to `ts`, make sure no waiting tick would age out.

        The engine's buffer ages ticks by the (data-driven) clock and evicts those older than
        its TTL (60 s). Everything still buffered arrived at or after the clock value at which
        the buffer was last seen empty; once `ts` is more than 30 s past that, wait until the
        engine has taken what it holds.
        """
        buffer = getattr(sink, "buffer", None)
        if buffer is None:
            return
        if len(buffer) == 0:
            self._drained_at = self.data_time
            return
        if self._drained_at is not None and ts - self._drained_at <= self.drain_every_ns:
            return
        while len(buffer) and not self._stop:
            await asyncio.sleep(0)
        self._drained_at = self.data_time

    async def _send_candles(self, sink: FeedSink, chunk: list[Any]) -> None:
        starts = [c.start for c in chunk]
        i, n = 0, len(chunk)
        while i < n and not self._stop:
            await self._resumed.wait()
            j = min(i + self.batch_rows, n)
            if self.speed is not None:
                limit = await self._pace(starts[i])
                j = max(i + 1, min(j, bisect.bisect_right(starts, limit, i, n)))
            batch = chunk[i:j]
            await sink.put_candles(batch)
            last = batch[-1].end
            sink.set_time(last)
            self.data_time = last
            self.candles_sent += len(batch)
            self.batches += 1
            i = j

    async def _pace(self, next_ts: int) -> int:
        """Sleep until `next_ts` is due at the speed factor; return the data time now due."""
        assert self.speed is not None
        if self._anchor is None:
            self._anchor = (self._wall(), next_ts)
        wall0, data0 = self._anchor
        while not self._stop:
            due = data0 + int((self._wall() - wall0) * self.speed * NS_PER_SECOND)
            if due >= next_ts:
                return due
            wait = (next_ts - due) / (self.speed * NS_PER_SECOND)
            await asyncio.sleep(min(wait, 0.25))  # stay responsive to stop and pause
        return next_ts

    async def stop(self) -> None:
        self._stop = True
        self._resumed.set()

    def pause(self) -> None:
        self._resumed.clear()
        self.state = "paused"
        self._paused_at = self._wall()

    def resume(self) -> None:
        if not self._resumed.is_set():
            if self._anchor is not None:  # paused wall time does not count as data time
                wall0, data0 = self._anchor
                self._anchor = (wall0 + self._wall() - self._paused_at, data0)
            self.state = "running"
            self._resumed.set()

    def health(self) -> FeedHealth:
        return FeedHealth(name=self.name, state=self.state, counters=self._counters())

    def _counters(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "speed": "max" if self.speed is None else self.speed,
            "rows_read": self.report.rows,
            "bad_rows": self.report.bad_rows,
            "rows_out_of_order": self.report.order.backwards,
            "ticks_sent": self.ticks_sent,
            "candles_sent": self.candles_sent,
            "batches": self.batches,
            "data_time": self.data_time,
        }
