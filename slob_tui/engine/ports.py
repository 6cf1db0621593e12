"""The engine's ports: the protocol every feed speaks and the sink it pushes into.

They live with the engine, which owns the pipeline; feeds (adapters, a layer above) implement
`Feed` and call `FeedSink`, so the engine never knows which feed it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from slob_tui.core.events import Event
from slob_tui.core.health import FeedHealth
from slob_tui.core.models import Candle
from slob_tui.core.tick_chunk import TickChunk


class FeedSink(Protocol):
    """What a feed pushes into (the engine implements it).

    Ticks are tuples in `Tick`'s field order (a `Tick` is one). `put_ticks` never blocks and
    may drop the oldest buffered ticks under overload (live); `put_ticks_wait` waits for room
    (replay, no loss) and raises `BufferClosedError` once the engine stopped taking ticks.
    `put_candles` hands over complete candles built elsewhere (candle files, REST backfill): the
    engine processes everything buffered before them first, so order holds. `repair_candle`
    hands over the source's own candle of a minute already closed (a gap's edge minute, of
    which the stream carried only part): the engine replaces its candle when they differ.
    `set_time` drives the engine clock from the data in replay and demo.
    """

    def put_ticks(self, ticks: Sequence[tuple[Any, ...]]) -> None: ...

    async def put_ticks_wait(self, ticks: Sequence[tuple[Any, ...]]) -> None: ...

    async def put_candles(self, candles: Sequence[Candle]) -> None: ...

    def repair_candle(self, candle: Candle) -> None: ...

    def set_time(self, ns: int) -> None: ...

    def feed_event(self, event: Event) -> None: ...

    def last_candle_start(self, symbol: str) -> int | None: ...

    def apply_correction(
        self, symbol: str, ts: int, trade_id: Any, exchange: str = "",
        corrected: tuple[float, float, Any] | None = None,
    ) -> None: ...  # fmt: skip


@runtime_checkable
class ColumnSink(Protocol):
    """A sink that also takes a chunk of one symbol's trades as columns (the engine does):
    a file replay at `--speed max` hands its chunks over so, processed at once, in order
    after everything handed over before, with the same candles as their tuples would give."""

    async def put_tick_columns(self, chunk: TickChunk) -> None: ...


class Feed(Protocol):
    """A source of market data. `run` returns when the data ends or `stop` is called."""

    name: str
    mode: str  # DEMO | REPLAY | PAPER | LIVE, shown in the console banner
    symbols: tuple[str, ...]

    async def run(self, sink: FeedSink) -> None: ...

    async def stop(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def health(self) -> FeedHealth: ...


class CandleSink(Protocol):
    """Where the pipeline's closed candles go (the candle store): queued, never awaited on the
    candle path; read once at open to continue after the stored history."""

    path: Path

    async def open(self) -> object: ...

    async def close(self, timeout_s: float = 0.0) -> None:
        """Write what is queued (for up to `timeout_s`, 0: until done) and close."""
        ...

    def enqueue(self, candles: Sequence[Candle]) -> None: ...

    async def symbols(self) -> list[str]: ...

    async def recent(self, symbol: str, n: int) -> list[Candle]: ...
