"""`Database`: the one writer of a database file, shared by the candle store and the state journal.

Before this module the file had two writing connections (the candle store's and the state
manager's), each waiting for the other's lock inside SQLite. Now a `Database` owns the only
connection that writes: every write transaction, the schema migration at open, the WAL
checkpoints and the final close go through it, one at a time, in the order they were asked for
(`write` waits in a FIFO queue, an `asyncio.Lock`). Readers get connections of their own opened
read-only (`connect_read_only`): in WAL mode they read the last commit without waiting for the
writer, and SQLite refuses any write they would try.

Where the writes run: on the event loop's thread. In a worker thread the candle batches starved:
the sqlite3 module drops the GIL around every step and the thread must take it back, but a thread
waiting for the GIL asks its holder to drop it only after a whole switch interval (5 ms) without
a release, and a busy event loop (a replay at full speed) releases and retakes it at every
select(). Measured on the 10 M-tick memory figure: steps of 0.4 ms stalled for 0.2-1 s and no
batch was committed before the end of the run. On the loop a write costs the loop what the GIL
made it cost anyway (~2.5 us a candle). A commit does not fsync (WAL, synchronous=NORMAL). The
WAL checkpoint, which does, runs on the loop too, after CHECKPOINT_EVERY rows (bulk writes) or
CHECKPOINT_COMMITS commits (live: a commit of a few rows still adds whole pages, ~16 KB, so
counting rows alone would let the WAL grow for days): it needs the one writer connection, and in
a worker thread it starved like the writes while holding the queue, so candles piled up behind
it (the 10 M-tick memory figure grew 9 % instead of 2 %). One PASSIVE checkpoint of 20,000 rows
took 8-10 ms here, once per 200 commits; a busy reader never makes it wait. Another process
holding the file's write lock (a `flatten`, a migration) is waited for in short attempts
(WRITE_BUSY_MS inside SQLite) with the loop free for BUSY_PAUSE_S in between, up to the caller's
busy timeout.

Each store opens and closes the database it was given; the connection opens with the first and
closes with the last (`open`/`close` count users), so a store built alone on a path (a command,
a test) and the node's two stores sharing one object both work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from slob_tui.storage.errors import StoreError
from slob_tui.storage.schema import BUSY_TIMEOUT_MS, migrate

log = logging.getLogger(__name__)

R = TypeVar("R")

# Per connection. A small page cache keeps RSS flat while the file grows (the default 2 MB cache
# fills over hours of candles and reads as growth; appends and range scans gain nothing from
# more). The -wal file is cut back to 8 MB after a checkpoint instead of keeping its largest size.
PRAGMAS = (
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA cache_size=-256",
    "PRAGMA journal_size_limit=8388608",
)
WRITE_BUSY_MS = 5
BUSY_PAUSE_S = 0.05
BUSY_TIMEOUT_S = 5.0
CHECKPOINT_EVERY = 20_000  # rows (~1000 WAL pages of candles)
CHECKPOINT_COMMITS = 200  # ~3 MB of WAL


def _busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


def read_only_uri(path: Path) -> str:
    """The file as a `mode=ro` URI: a connection opened with it can never write the file."""
    return f"{path.resolve().as_uri()}?mode=ro"


def connect_read_only(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A reader's connection (autocommit: a read transaction is opened explicitly if wanted)."""
    conn = sqlite3.connect(
        read_only_uri(path), uri=True, isolation_level=None, check_same_thread=check_same_thread
    )
    try:
        for pragma in PRAGMAS:
            conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


class Database:
    """The single owner of the writing connection of one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._users = 0
        self._gate = asyncio.Lock()  # open and close
        self._queue = asyncio.Lock()  # the writes, FIFO
        self._checkpoint: asyncio.Task[None] | None = None
        self._since_checkpoint = [0, 0]  # rows, commits
        self.commits = 0
        self.schema_before = 0
        """The schema version the file had when this object migrated it."""

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> Database:
        """Open (the first user) or join (the others). The first opening creates the file and
        its folder, switches it to WAL and migrates it (`schema.migrate`), on the writer
        connection. Raises `OSError`, `sqlite3.Error` or `SchemaTooNewError`: each store words
        them with its own name for the file."""
        async with self._gate:
            if self._conn is None:
                if self.path.exists() and self.path.is_dir():
                    raise IsADirectoryError(f"{self.path} is a directory")
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn, self.schema_before = await asyncio.to_thread(self._connect)
                self._since_checkpoint = [0, 0]
            self._users += 1
        return self

    def _connect(self) -> tuple[sqlite3.Connection, int]:
        # A migration by another process is waited for inside SQLite here (a worker thread);
        # the writes' short busy timeout is set only after.
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )  # fmt: skip
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchall()
            before = migrate(conn, self.path)
            for pragma in (*PRAGMAS, f"PRAGMA busy_timeout={WRITE_BUSY_MS}",
                           "PRAGMA wal_autocheckpoint=0"):  # fmt: skip
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
        return conn, before

    async def close(self) -> None:
        """Leave; the last user's close waits for the running checkpoint and closes the writer
        (SQLite checkpoints the WAL into the file then, in a worker thread). Every reader
        must be closed before: the last connection to close is the one that checkpoints."""
        async with self._gate:
            if self._users == 0:
                return
            self._users -= 1
            if self._users or self._conn is None:
                return
            if self._checkpoint is not None:
                with contextlib.suppress(sqlite3.Error):
                    await self._checkpoint
                self._checkpoint = None
            conn, self._conn = self._conn, None
            async with self._queue:
                try:
                    await asyncio.to_thread(conn.close)
                except sqlite3.Error as exc:  # the file is closed anyway
                    log.warning("database %s: closing: %s", self.path, exc)

    def _writer(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"database {self.path} is not open")
        return self._conn

    # ------------------------------------------------------------------ writes
    async def write(
        self,
        transaction: Callable[[sqlite3.Connection], R],
        *,
        rows: int = 1,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> R:
        """Run `transaction(conn)` on the writer connection inside BEGIN IMMEDIATE ... COMMIT,
        after the writes asked for before it; its result. Any error rolls it back and reaches
        the caller (`sqlite3.Error` for the file, anything `transaction` raised); a write lock
        held by another process is waited for up to `busy_timeout_s`, with the loop free.
        `rows` counts towards the next WAL checkpoint."""
        conn = self._writer()
        async with self._queue:
            conn = self._writer()  # closed while this write waited its turn
            out = await self._attempt(conn, transaction, busy_timeout_s)
            self.commits += 1
        since = self._since_checkpoint
        since[0] += rows
        since[1] += 1
        if (since[0] >= CHECKPOINT_EVERY or since[1] >= CHECKPOINT_COMMITS) and (
            self._checkpoint is None or self._checkpoint.done()
        ):
            since[:] = [0, 0]
            self._checkpoint = asyncio.create_task(self._checkpoint_wal(), name="db-checkpoint")
        return out

    async def _attempt(
        self,
        conn: sqlite3.Connection,
        transaction: Callable[[sqlite3.Connection], R],
        busy_timeout_s: float,
    ) -> R:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + busy_timeout_s
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                out = transaction(conn)
                conn.execute("COMMIT")
                return out
            except BaseException as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error) and _busy(exc) and loop.time() < deadline:
                    await asyncio.sleep(BUSY_PAUSE_S)
                    continue
                raise

    @property
    def checkpointing(self) -> asyncio.Task[None] | None:
        """The background WAL checkpoint, if one was started (tests wait for it)."""
        return self._checkpoint

    async def _checkpoint_wal(self) -> None:
        """Copy the WAL into the file (PASSIVE: what no reader still needs), after the writes
        queued before it, on the loop's thread (see the module's note)."""
        try:
            async with self._queue:
                self._writer().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except (sqlite3.Error, StoreError) as exc:
            log.warning("database %s: WAL checkpoint failed: %s", self.path, exc)

    async def vacuum(self) -> None:
        """Checkpoint the whole WAL and compact the file (after the writes queued before)."""
        async with self._queue:
            conn = self._writer()

            def go() -> None:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                conn.execute("VACUUM")

            await asyncio.to_thread(go)
