"""Every table of the database file, its schema version and the migrations between versions.

One file holds the candles (`CandleStore`), the journal (setups, orders, fills, trades) and the
hot state (tracker state, small values) of `StateManager`. Before this module each store created
its own tables and nothing said which layout a file had, so a later change to a table could not
tell an old file from a new one. Now the version is SQLite's `PRAGMA user_version` (0 in a file
written before versions existed, and in a new empty file) and `migrate` brings a file up to
`SCHEMA_VERSION` at open (the `Database` runs it on its writer connection), running each missing
migration in order, all in one transaction. A file
whose version is newer than this code is refused: this code would misread or damage it.

Adding a change: append a `Migration` with the next version; never edit a released one (a file
already past it would not get the edit).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from slob_tui.storage.errors import SchemaTooNewError


@dataclass(frozen=True, slots=True)
class Migration:
    """The statements that take a file from `version - 1` to `version`."""

    version: int
    why: str
    statements: tuple[str, ...]


# Version 1 is the layout the stores created before versions existed (IF NOT EXISTS: a file
# written then already has these tables, an empty file gets them). First, `store_meta` notes
# whether the StateManager had used the file before versions (its `hot_state` table is there):
# only such a file may have hot values that lived in Redis alone (see version 2).
_V1 = (
    "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """INSERT OR IGNORE INTO store_meta (key, value)
    SELECT 'hot_state_before_versions', '1'
    WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'hot_state')""",
    """CREATE TABLE IF NOT EXISTS candles (
    symbol TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    open REAL NOT NULL,
    high REAL NOT NULL,
    low REAL NOT NULL,
    close REAL NOT NULL,
    volume REAL NOT NULL,
    tick_count INTEGER NOT NULL DEFAULT 0,
    gap_filled INTEGER NOT NULL DEFAULT 0,
    backfilled INTEGER NOT NULL DEFAULT 0,
    ts_ns INTEGER NOT NULL,
    PRIMARY KEY (symbol, timestamp)
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS setups (
    setup_id TEXT NOT NULL, state TEXT NOT NULL, idx INTEGER NOT NULL, symbol TEXT NOT NULL,
    direction TEXT NOT NULL, prev_state TEXT, reason TEXT, time INTEGER NOT NULL,
    levels TEXT NOT NULL, PRIMARY KEY (setup_id, state, idx))""",
    """CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, setup_id TEXT, symbol TEXT NOT NULL,
    side TEXT NOT NULL, qty REAL NOT NULL, type TEXT NOT NULL, leg TEXT NOT NULL,
    limit_price REAL, stop_price REAL, status TEXT NOT NULL, filled_qty REAL NOT NULL,
    filled_avg_price REAL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    info TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS orders_by_order_id ON orders(order_id)",
    """CREATE TABLE IF NOT EXISTS fills (
    execution_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL, price REAL NOT NULL,
    ts INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS trades (
    trade_id TEXT PRIMARY KEY, setup_id TEXT, symbol TEXT NOT NULL, direction TEXT NOT NULL,
    qty REAL NOT NULL, entry_price REAL NOT NULL, exit_price REAL NOT NULL,
    entry_ts INTEGER NOT NULL, exit_ts INTEGER NOT NULL, exit_leg TEXT NOT NULL,
    pnl REAL NOT NULL, planned_rr REAL, actual_rr REAL, day TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS tracker_state (
    symbol TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at INTEGER NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS hot_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

# Version 2: the reads that scanned whole tables get an index (a fill's order at every
# restart, the day's P&L at every entry), and `hot_cache` records the Redis namespaces whose copy
# this file has rebuilt (before version 2, with REDIS_URL set, the hot state lived in Redis only:
# `hot.MirroredHot` imports it once into a file from then, never into a newer file).
_V2 = (
    "CREATE INDEX IF NOT EXISTS fills_by_client_order_id ON fills(client_order_id)",
    "CREATE INDEX IF NOT EXISTS trades_by_day ON trades(day)",
    """CREATE TABLE IF NOT EXISTS hot_cache (
    namespace TEXT PRIMARY KEY, imported_at INTEGER NOT NULL)""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the tables of the stores before the schema had a version", _V1),
    Migration(2, "indexes for fills by order and trades by day; Redis namespaces imported", _V2),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
BUSY_TIMEOUT_MS = 30_000  # another process migrating the same file at the same moment


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _refuse_newer(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"database {path} has schema version {version}, newer than this slob-tui's "
            f"({SCHEMA_VERSION}): upgrade slob-tui or choose another --db"
        )


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the file of `conn` (autocommit: `isolation_level=None`) to SCHEMA_VERSION.

    All missing migrations and the new version commit together or not at all; the version is
    read again under the write lock, so two processes opening one old file migrate it once.
    Returns the version the file had before.
    """
    before = schema_version(conn)
    _refuse_newer(before, path)
    if before == SCHEMA_VERSION:
        return before
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = schema_version(conn)
        _refuse_newer(before, path)
        for migration in MIGRATIONS[before:]:
            for statement in migration.statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return before


def ensure_schema(path: str | Path) -> int:
    """Open the file (creating it), switch it to WAL and migrate it; the version it had.

    For a file on its own (tools, tests); the stores' `Database` runs `migrate` on its writer
    connection instead, so the file keeps one writing connection. Raises `SchemaTooNewError`
    for a newer file and `sqlite3.Error` for a file SQLite cannot use (each store words that
    error with its own name for the file).
    """
    path = Path(path)
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
        return migrate(conn, path)
    finally:
        conn.close()
