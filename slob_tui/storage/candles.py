"""CandleStore: 1-minute candles in SQLite (WAL), written in batches off the tick path.

Schema: `candles(symbol, timestamp, open, high, low, close, volume, tick_count, gap_filled,
backfilled, ts_ns)`, primary key (symbol, timestamp), WITHOUT ROWID so a symbol's candles sit
in time order on disk. `timestamp` is the candle's start as fixed-width ISO 8601 UTC text
(`2013-10-07T08:00:00.000Z`, readable in any SQLite tool; text order = time order, so range
queries use the primary key). `ts_ns` repeats the start as integer nanoseconds so reads need no
date parsing. The table is created and migrated with every other table of the file by `schema`
(the `Database` migrates the file at open); the other tables (setups, orders, ...) belong to
the StateManager and are never touched here.

The write path (rows and the multi-row upsert statement) is in `candle_rows`; the batches go
through the file's one writer connection, the `Database` (`database.py`), which the node shares
with the `StateManager`. Reads use a read-only aiosqlite connection of the store's own.

When the file refuses writes (disk full, read-only, locked for long) the candles stay queued in
order and the writer retries under `STORE_RETRY` (0.5 s doubling to 5 s) instead of every
flush interval; `health` (a `WriteHealth`) says since when and why. The queue is bounded by
`max_pending` (SLOB_STORE_MAX_QUEUE, 100,000 candles: about 70 days of one symbol live, or
seconds of a flat-out replay): nothing is dropped, but past it `overflowing` turns true and the
node stops the engine (exit status 75), as it does when the fault outlasts SLOB_STORE_GIVE_UP_S;
the restart resumes after the last stored minute and the source (the replay file, Alpaca's REST
bars) hands over the minutes that were only queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import aiosqlite

from slob_tui.core.models import Candle
from slob_tui.core.retry import RetryPolicy
from slob_tui.storage.candle_rows import _write, iso_utc
from slob_tui.storage.database import PRAGMAS, Database, connect_read_only, read_only_uri
from slob_tui.storage.errors import SchemaTooNewError, StoreError
from slob_tui.storage.faults import WriteHealth

log = logging.getLogger(__name__)


STORE_RETRY = RetryPolicy(base_s=0.5, cap_s=5.0)
MAX_PENDING = 100_000

COLUMNS = "symbol, ts_ns, open, high, low, close, volume, tick_count, gap_filled, backfilled"


_BAD_DATA = (sqlite3.IntegrityError, sqlite3.InterfaceError, TypeError, ValueError, OverflowError)


def _candle(r: Sequence[Any]) -> Candle:
    return Candle(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]), bool(r[9]))


def count_stored(path: str | Path, symbol: str | None = None) -> int:
    """Candles in a file no store has open (a command's summary after its node stopped),
    through a read-only connection: the file keeps a single writer."""
    where, params = ("", ()) if symbol is None else (" WHERE symbol = ?", (symbol,))
    try:
        with contextlib.closing(connect_read_only(Path(path))) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM candles{where}", params).fetchone()[0])
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read candles from {path}: {exc}") from exc


class CandleStore:
    """Async candle persistence. `enqueue` never blocks; a writer task batches the writes.

    The writer flushes every `flush_interval` seconds or as soon as `batch_size` candles wait.
    A failed write keeps the candles queued (nothing is lost) and is retried with backoff;
    `flush()` and `close()` raise `StoreError` if the write still fails (`close` after trying
    for up to its `timeout_s`).
    """

    def __init__(
        self,
        database: Database | str | Path,
        flush_interval: float = 0.5,
        batch_size: int = 5_000,
        *,
        retry: RetryPolicy = STORE_RETRY,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.database = database if isinstance(database, Database) else Database(database)
        self.path = self.database.path
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.retry = retry
        self.max_pending = max_pending
        self.health = WriteHealth("candles")
        self.busy_timeout = 5.0  # seconds a write waits for another process's lock
        self._db: aiosqlite.Connection | None = None  # the reads' (read-only) connection
        self._pending: list[Candle] = []
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self.writes = 0  # candles written
        self.flushes = 0
        self.write_errors = 0
        self.last_error: str | None = None
        self.unwritable: list[Candle] = []

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> CandleStore:
        """Create the file (and folder) if needed, switch to WAL, start the writer."""
        if self._db is not None:
            return self
        if self.path.exists() and self.path.is_dir():
            raise StoreError(f"candle store path is a directory: {self.path}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create folder for candle store {self.path}: {exc}") from exc
        db = None
        try:
            await self.database.open()
        except (sqlite3.Error, OSError, SchemaTooNewError) as exc:
            if isinstance(exc, SchemaTooNewError):
                raise
            raise StoreError(f"cannot open candle store {self.path}: {exc}") from exc
        try:
            db = await aiosqlite.connect(read_only_uri(self.path), uri=True)
            for pragma in PRAGMAS:
                await db.execute(pragma)
        except (sqlite3.Error, OSError) as exc:
            if db is not None:
                await db.close()
            await self.database.close()
            raise StoreError(f"cannot open candle store {self.path}: {exc}") from exc
        self._db = db
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._closing = False
        self._writer = asyncio.create_task(self._write_loop(), name="candle-store-writer")
        return self

    async def close(self, timeout_s: float = 0.0) -> None:
        """Flush what is queued (retrying for up to `timeout_s` while the file refuses it),
        stop the writer, close the connections; raises StoreError naming what is unwritten."""
        if self._db is None:
            return
        self._closing = True
        try:
            await self._flush_until(asyncio.get_running_loop().time() + timeout_s)
        finally:
            if self._writer is not None:
                if self._wake is not None:
                    self._wake.set()
                self._writer.cancel()
                try:
                    await self._writer
                except asyncio.CancelledError:
                    pass
                except Exception:  # noqa: BLE001 - it was logged; the connections still close
                    log.exception("candle store %s: the writer had failed", self.path)
                self._writer = None
            try:
                await self._db.close()  # first: the writer, closed last, checkpoints the WAL
            finally:
                self._db = None
                await self.database.close()

    async def __aenter__(self) -> CandleStore:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError(f"candle store {self.path} is not open")
        return self._db

    # ------------------------------------------------------------------ writes
    def enqueue(self, candles: Iterable[Candle]) -> None:
        """Queue candles for the writer; returns at once (the per-tick path calls this)."""
        self._pending.extend(candles)
        if len(self._pending) >= self.batch_size and self._wake is not None:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def overflowing(self) -> bool:
        """More candles queued than `max_pending` while the file refuses them: the node stops
        the engine (a slow but working disk is not a reason to)."""
        return self.health.failing and len(self._pending) > self.max_pending

    async def _write_loop(self) -> None:
        assert self._wake is not None
        backoff = self.retry.start()
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            try:
                await self._flush_pending()
            except StoreError as exc:
                backoff.failed()
                delay = backoff.next_delay()
                log.error("%s (%d candles queued; retry in %.1f s)", exc, len(self._pending),
                          delay)  # fmt: skip
                await asyncio.sleep(delay)  # enqueue's wake-ups must not turn this into a spin
                continue
            backoff.succeeded()

    async def _flush_until(self, deadline: float) -> None:
        """Flush, retrying under the store's policy until `deadline` (loop time) passes."""
        loop = asyncio.get_running_loop()
        backoff = self.retry.start()
        while True:
            try:
                await self._flush_pending()
                return
            except StoreError:
                backoff.failed()
                delay = min(backoff.next_delay(), deadline - loop.time())
                if delay <= 0:
                    log.error("candle store %s: %d candles could not be written before the "
                              "stop", self.path, len(self._pending))  # fmt: skip
                    raise
                await asyncio.sleep(delay)

    async def _flush_pending(self) -> None:
        assert self._lock is not None
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            try:
                try:
                    await self.upsert_many(batch)
                except StoreError as exc:
                    if not exc.bad_data:
                        self._pending[:0] = batch  # keep order, lose nothing
                        raise
                    await self._write_each(batch)
            except StoreError as exc:
                if not exc.bad_data:
                    self.health.failed(exc.__cause__ or exc)
                raise
            self.health.succeeded()
            self.flushes += 1

    async def _write_each(self, batch: list[Candle]) -> None:
        """A batch with a candle SQLite refuses: write the others one by one and set the bad
        ones aside (logged, kept in `unwritable`), so one bad row cannot stop all saving. If
        none goes in, the file refuses them all (a trigger, a changed schema): keep them."""
        refused: list[tuple[Candle, StoreError]] = []
        written = 0
        for i, candle in enumerate(batch):
            try:
                await self.upsert_many([candle])
                written += 1
            except StoreError as exc:
                if not exc.bad_data:
                    self._pending[:0] = [c for c, _ in refused] + batch[i:]
                    raise
                refused.append((candle, exc))
        self.write_errors -= len(refused)  # one failed write: the batch's, already counted
        if not written:
            self._pending[:0] = batch
            raise refused[-1][1]
        for candle, why in refused:
            self.unwritable.append(candle)
            log.error("%s: set aside %s", why, candle)

    async def flush(self) -> None:
        """Write everything queued so far; raises StoreError if it cannot."""
        self._conn()
        await self._flush_pending()

    async def upsert_many(self, candles: Sequence[Candle]) -> int:
        """Insert or replace by (symbol, start) in one transaction; returns rows written.

        Goes through the database's one writer connection, on the event loop's thread (see
        `database`), after the writes asked for before it; waits up to `busy_timeout` seconds
        for another process's write lock, with the loop free in between attempts.
        """
        self._conn()
        n = len(candles)
        if n == 0:
            return 0
        try:
            await self.database.write(
                lambda conn: _write(conn, candles), rows=n, busy_timeout_s=self.busy_timeout
            )
        except (sqlite3.Error, StoreError, TypeError, ValueError, OverflowError) as exc:
            # StoreError: the database closed while the batch waited; TypeError and the
            # others: a candle SQLite cannot bind
            self._failed(exc)
        self.writes += n
        return n

    def _failed(self, exc: Exception) -> NoReturn:
        self.write_errors += 1
        self.last_error = str(exc)
        error = StoreError(f"cannot write candles to {self.path}: {exc}")
        error.bad_data = isinstance(exc, _BAD_DATA)
        raise error from exc

    # ------------------------------------------------------------------ reads
    async def _select(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        try:
            async with self._conn().execute(sql, params) as cur:
                return list(await cur.fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read candles from {self.path}: {exc}") from exc

    @staticmethod
    def _bounds(start_ns: int | None, end_ns: int | None) -> tuple[str, list[Any]]:
        where, params = "", []
        if start_ns is not None:
            where += " AND timestamp >= ? AND ts_ns >= ?"
            params += [iso_utc(start_ns), start_ns]
        if end_ns is not None:
            where += " AND timestamp <= ? AND ts_ns < ?"
            params += [iso_utc(end_ns), end_ns]
        return where, params

    async def candles(
        self,
        symbol: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int | None = None,
    ) -> list[Candle]:
        """Candles with start in [start_ns, end_ns), oldest first, at most `limit`."""
        where, params = self._bounds(start_ns, end_ns)
        sql = f"SELECT {COLUMNS} FROM candles WHERE symbol = ?{where} ORDER BY timestamp"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_candle(r) for r in await self._select(sql, [symbol, *params])]

    async def range(self, symbol: str, start_ns: int, end_ns: int) -> Any:
        """Candles with start in [start_ns, end_ns) as a DataFrame indexed by UTC start time.

        Columns: symbol, ts_ns, open, high, low, close, volume, tick_count, gap_filled,
        backfilled. Read column-wise in a worker thread through a connection of its own (see
        `candle_frames`), so a large range neither hops per row nor waits behind the writer.
        """
        from slob_tui.storage.candle_frames import read_frame

        self._conn()
        where, params = self._bounds(start_ns, end_ns)
        try:
            return await asyncio.to_thread(read_frame, self.path, symbol, where, params)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read candles from {self.path}: {exc}") from exc

    async def recent(self, symbol: str, n: int) -> list[Candle]:
        """The last `n` candles of `symbol`, oldest first (the tracker's warm-up)."""
        rows = await self._select(
            f"SELECT {COLUMNS} FROM candles WHERE symbol = ? ORDER BY timestamp DESC LIMIT ?",
            [symbol, int(n)],
        )
        return [_candle(r) for r in reversed(rows)]

    async def latest(self, symbol: str) -> Candle | None:
        got = await self.recent(symbol, 1)
        return got[0] if got else None

    async def count(self, symbol: str | None = None) -> int:
        if symbol is None:
            rows = await self._select("SELECT COUNT(*) FROM candles", [])
        else:
            rows = await self._select("SELECT COUNT(*) FROM candles WHERE symbol = ?", [symbol])
        return int(rows[0][0])

    async def symbols(self) -> list[str]:
        rows = await self._select("SELECT DISTINCT symbol FROM candles ORDER BY symbol", [])
        return [r[0] for r in rows]

    async def stats(self) -> dict[str, Any]:
        rows = await self._select(
            "SELECT COUNT(*), COUNT(DISTINCT symbol), MIN(timestamp), MAX(timestamp) FROM candles",
            [],
        )
        n, nsym, first, last = rows[0]
        size = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        return {
            "rows": int(n),
            "symbols": int(nsym),
            "first": first,
            "last": last,
            "file_size_bytes": size,
            "pending_writes": len(self._pending),
            "writes": self.writes,
            "flushes": self.flushes,
            "write_errors": self.write_errors,
            "last_error": self.last_error,
            "unwritable": len(self.unwritable),
            "writable": not self.health.failing,
        }

    async def vacuum(self) -> None:
        """Flush, checkpoint the WAL and compact the file."""
        await self.flush()
        try:
            await self.database.vacuum()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot vacuum {self.path}: {exc}") from exc
