"""StateManager: setups, orders, fills and trades that survive a crash, beside the candles.

The journal (tables `setups`, `orders`, `fills`, `trades`) is SQLite, in the same file as the
candles; `schema` owns every table and migrates the file at open. Hot state (tracker state, live
setups, open orders, the paper book, flags such as the kill switch) sits behind `HotStore`
(`hot.py`): always in SQLite (`tracker_state`/`hot_state`), the source of truth, and copied to
Redis when a URL is given (`MirroredHot`: the write rule and what happens when one of the two
writes fails are in its module). Writes go through the file's one writer connection, the
`Database` (`database.py`) the node shares with the candle store: each is one transaction, in the
order asked for, after the candle batches asked for before it. Reads run on one dedicated thread
through a read-only connection of this manager's own: they see every write that has returned.

A write the file refuses (disk full, read-only) raises `StateError` and is recorded in `health`
(a `WriteHealth`): the caller keeps what it could not save and tries again (the execution
runtime halts trading meanwhile); the next write that goes in ends the fault.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from operator import is_
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from slob_tui.core.models import Fill, Order, OrderStatus, SetupUpdate, Side
from slob_tui.storage.database import Database, connect_read_only
from slob_tui.storage.errors import SchemaTooNewError, StateError, StoreError
from slob_tui.storage.faults import WriteHealth
from slob_tui.storage.hot import (
    CacheHealth,
    HotStore,
    JsonText,
    MirroredHot,
    RedisHot,
    SqliteHot,
)

R = TypeVar("R")
ORDER_COLS = (
    "client_order_id, order_id, setup_id, symbol, side, qty, type, leg, limit_price, stop_price, "
    "status, filled_qty, filled_avg_price, created_at, updated_at, info"
)


@dataclass(slots=True)
class OrderRecord:
    """An order as the executor knows it, with what it planned (`info`: entry_cid, direction,
    entry, stop, target, reason)."""

    order: Order
    info: dict[str, Any] = field(default_factory=dict)


WRITE_BUSY_TIMEOUT_S = 30.0  # another process's write lock (a `flatten`, a migration)
INSERT_FILL = "INSERT OR IGNORE INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def _fill_row(f: Fill) -> tuple[Any, ...]:
    return (f.execution_id, f.order_id, f.client_order_id, f.symbol, f.side.value, f.qty,
            f.price, f.ts)  # fmt: skip


def _order_row(rec: OrderRecord) -> tuple[Any, ...]:
    o = rec.order
    return (
        o.client_order_id,
        o.id,
        o.setup_id,
        o.symbol,
        o.side.value,
        o.qty,
        o.type,
        o.leg,
        o.limit_price,
        o.stop_price,
        o.status.value,
        o.filled_qty,
        o.filled_avg_price,
        o.created_at,
        o.updated_at,
        json.dumps(rec.info, separators=(",", ":")),
    )


def _record(r: sqlite3.Row | tuple[Any, ...]) -> OrderRecord:
    order = Order(
        id=r[1],
        client_order_id=r[0],
        symbol=r[3],
        side=Side(r[4]),
        qty=r[5],
        type=r[6],
        status=OrderStatus(r[10]),
        leg=r[7],
        limit_price=r[8],
        stop_price=r[9],
        filled_qty=r[11],
        filled_avg_price=r[12],
        setup_id=r[2],
        created_at=r[13],
        updated_at=r[14],
    )
    return OrderRecord(order, json.loads(r[15]))


def order_to_dict(o: Order) -> dict[str, Any]:
    return {
        "id": o.id,
        "client_order_id": o.client_order_id,
        "symbol": o.symbol,
        "side": o.side.value,
        "qty": o.qty,
        "type": o.type,
        "status": o.status.value,
        "leg": o.leg,
        "parent_id": o.parent_id,
        "limit_price": o.limit_price,
        "stop_price": o.stop_price,
        "filled_qty": o.filled_qty,
        "filled_avg_price": o.filled_avg_price,
        "setup_id": o.setup_id,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
    }


def order_from_dict(d: dict[str, Any]) -> Order:
    return Order(**{**d, "side": Side(d["side"]), "status": OrderStatus(d["status"])})


class TrackerStateText:
    """A tracker's state (`SetupTracker.state_dict()`) as JSON text, each row of its candle
    history encoded once.

    While a setup is live the history runs to hundreds of rows, and the state is saved after
    every setup transition: four SPY days saved it 172 times, 1.8 MB of JSON in which only the
    3,628 rows of the days were new. A row's earlier text is used only for the very tuple it was
    made from (the tracker's rows are immutable, appended and dropped from the front), so the
    text always equals a fresh encoding of the state."""

    def __init__(self) -> None:
        # symbol -> (absolute index of the first row, the rows, their texts)
        self._last: dict[str, tuple[int, list[Any], list[str]]] = {}

    def encode(self, symbol: str, state: dict[str, Any]) -> JsonText:
        if "hist" not in state:  # not a tracker's own state (a test's, an old one): as it is
            return JsonText(json.dumps(state, separators=(",", ":")))
        rows: list[Any] = list(state["hist"])
        base = int(state.get("hist_base", 0))
        was_base, was_rows, was_texts = self._last.get(symbol, (base, [], []))
        # rows[j] is the row once at was_rows[j + shift]: the overlap is reused when every row
        # in it is the very tuple encoded before; rows before and after it are encoded
        shift = base - was_base
        lo, hi = max(0, -shift), min(len(rows), len(was_rows) - shift)
        texts: list[str]
        if lo < hi and all(map(is_, rows[lo:hi], was_rows[lo + shift : hi + shift])):
            texts = [json.dumps(row, separators=(",", ":")) for row in rows[:lo]]
            texts += was_texts[lo + shift : hi + shift]
        else:
            texts, hi = [], 0
        texts += [json.dumps(row, separators=(",", ":")) for row in rows[hi:]]
        self._last[symbol] = (base, rows, texts)
        rest = json.dumps({k: v for k, v in state.items() if k != "hist"}, separators=(",", ":"))
        hist = '"hist":[' + ",".join(texts) + "]"
        return JsonText(rest[:-1] + ("," if len(rest) > 2 else "") + hist + "}")


class StateManager:
    """One interface over the journal (SQLite) and the hot state (SQLite or Redis)."""

    def __init__(
        self,
        database: Database | str | Path,
        redis_url: str = "",
        tz: str = "America/New_York",
        namespace: str = "slob",
    ) -> None:
        self.database = database if isinstance(database, Database) else Database(database)
        self.path = self.database.path
        self.redis_url = redis_url
        self.namespace = namespace
        self.tz = ZoneInfo(tz)
        self._conn: sqlite3.Connection | None = None  # the reads' (read-only) connection
        self._pool: ThreadPoolExecutor | None = None
        self.hot: HotStore | None = None
        self.writes = 0
        self.health = WriteHealth("journal")
        self._tracker_text = TrackerStateText()

    @property
    def backend(self) -> str:
        return "redis" if self.redis_url else "sqlite"

    async def open(self) -> StateManager:
        try:
            await self.database.open()
        except (sqlite3.Error, OSError, SchemaTooNewError) as exc:
            if isinstance(exc, SchemaTooNewError):
                raise
            raise StateError(f"state database {self.path}: {exc}") from exc
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-db")
        try:
            self._conn = await self._run(connect_read_only, self.path)
        except (sqlite3.Error, OSError) as exc:
            self._pool.shutdown()
            self._pool = None
            await self.database.close()
            raise StateError(f"state database {self.path}: {exc}") from exc
        journal = SqliteHot(self)
        if self.redis_url:
            cache = RedisHot(self.redis_url, self.namespace)
            try:
                await cache.ping()
            except Exception as exc:
                await cache.close()
                await self.close()
                raise StateError(f"REDIS_URL: cannot reach Redis ({type(exc).__name__})") from exc
            mirrored = MirroredHot(journal, cache, self)
            try:
                await mirrored.open()
            except BaseException:
                await mirrored.close()
                await self.close()
                raise
            self.hot = mirrored
        else:
            self.hot = journal
        return self

    @property
    def cache_health(self) -> CacheHealth | None:
        """The Redis copy's state (stale or not, failures), None without Redis."""
        return self.hot.health if isinstance(self.hot, MirroredHot) else None

    async def close(self) -> None:
        if self.hot is not None:
            await self.hot.close()
            self.hot = None
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
            await self.database.close()  # after the reader: the last to close checkpoints
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    @property
    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateError("state store is not open")
        return self._conn

    @property
    def _h(self) -> HotStore:
        if self.hot is None:
            raise StateError("state store is not open")
        return self.hot

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        if self._pool is None:
            raise StateError("state store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _commit(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """Run one write transaction through the database's writer; a refusal is a StateError
        and counts in `health`."""
        self._c  # noqa: B018 - raises when this manager is not open
        try:
            out = await self.database.write(fn, busy_timeout_s=WRITE_BUSY_TIMEOUT_S)
        except (sqlite3.Error, StoreError) as exc:
            self.health.failed(exc)
            raise StateError(f"cannot write the state database {self.path}: {exc}") from exc
        self.health.succeeded()
        self.writes += 1
        return out

    async def _read(self, fn: Callable[[], R]) -> R:
        try:
            return await self._run(fn)
        except sqlite3.Error as exc:
            raise StateError(f"cannot read the state database {self.path}: {exc}") from exc

    async def write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """One statement in its own transaction; the number of rows it changed."""
        return await self._commit(lambda conn: conn.execute(sql, params).rowcount)

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        conn = self._c
        return await self._read(lambda: conn.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        conn = self._c
        return await self._read(lambda: conn.execute(sql, params).fetchone())

    # ---- setups -----------------------------------------------------------------------
    async def record_setup(self, u: SetupUpdate) -> bool:
        """Journal one transition (idempotent) and keep the live set current; True if new."""
        new = (
            await self.write(
                "INSERT OR IGNORE INTO setups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    u.setup_id,
                    u.state.value,
                    u.index,
                    u.symbol,
                    u.direction.value,
                    u.prev_state.value if u.prev_state else None,
                    u.reason,
                    u.time,
                    json.dumps(u.levels, separators=(",", ":"), default=float),
                ),
            )
            > 0
        )
        if u.state.is_terminal:
            await self._h.delete(f"setup:{u.setup_id}")
        else:
            await self._h.put(f"setup:{u.setup_id}", u.to_dict())
        return new

    async def live_setups(self) -> list[SetupUpdate]:
        out = []
        for key in await self._h.keys("setup:"):
            d = await self._h.get(key)
            if d is not None:
                out.append(SetupUpdate.from_dict(d))
        return sorted(out, key=lambda u: u.time)

    async def setup_history(self, setup_id: str) -> list[SetupUpdate]:
        rows = await self.fetchall(
            "SELECT setup_id, symbol, direction, state, prev_state, reason, idx, time, levels "
            "FROM setups WHERE setup_id = ? ORDER BY idx, rowid",
            (setup_id,),
        )
        return [
            SetupUpdate.from_dict(
                {
                    "setup_id": r[0],
                    "symbol": r[1],
                    "direction": r[2],
                    "state": r[3],
                    "prev_state": r[4],
                    "reason": r[5],
                    "index": r[6],
                    "time": r[7],
                    "levels": json.loads(r[8]),
                }
            )
            for r in rows
        ]

    # ---- tracker state ----------------------------------------------------------------
    async def save_tracker(self, symbol: str, state: dict[str, Any]) -> None:
        await self._h.put(f"tracker:{symbol}", self._tracker_text.encode(symbol, state))

    async def load_trackers(self) -> dict[str, dict[str, Any]]:
        out = {}
        for key in await self._h.keys("tracker:"):
            state = await self._h.get(key)
            if state is not None:
                out[key[8:]] = state
        return out

    # ---- orders -----------------------------------------------------------------------
    async def save_order(self, rec: OrderRecord) -> None:
        """Insert or update by client_order_id; open orders are mirrored in the hot store."""
        await self.write(
            f"INSERT OR REPLACE INTO orders ({ORDER_COLS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _order_row(rec),
        )
        key = f"order:{rec.order.client_order_id}"
        if rec.order.status.is_open:
            await self._h.put(key, {"order": order_to_dict(rec.order), "info": rec.info})
        else:
            await self._h.delete(key)

    async def get_order(self, client_order_id: str) -> OrderRecord | None:
        r = await self.fetchone(
            f"SELECT {ORDER_COLS} FROM orders WHERE client_order_id = ?", (client_order_id,)
        )
        return None if r is None else _record(r)

    async def get_order_by_id(self, order_id: str) -> OrderRecord | None:
        if not order_id:
            return None
        r = await self.fetchone(f"SELECT {ORDER_COLS} FROM orders WHERE order_id = ?", (order_id,))
        return None if r is None else _record(r)

    async def orders(self, open_only: bool = False) -> list[OrderRecord]:
        rows = await self.fetchall(f"SELECT {ORDER_COLS} FROM orders ORDER BY created_at, rowid")
        recs = [_record(r) for r in rows]
        return [r for r in recs if r.order.status.is_open] if open_only else recs

    async def open_order_mirror(self) -> list[str]:
        """Client ids of the open orders as the hot store holds them."""
        return [k[6:] for k in await self._h.keys("order:")]

    # ---- fills and trades ---------------------------------------------------------------
    async def save_fill_and_order(self, f: Fill, rec: OrderRecord) -> bool:
        """Record a fill and the order's new filled quantity in one transaction, so a crash
        cannot leave one without the other (a lost or a doubled fill after restart)."""
        row = _order_row(rec)

        def go(conn: sqlite3.Connection) -> bool:
            added = conn.execute(INSERT_FILL, _fill_row(f)).rowcount > 0
            conn.execute(
                f"INSERT OR REPLACE INTO orders ({ORDER_COLS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return added

        new = await self._commit(go)
        key = f"order:{rec.order.client_order_id}"
        if rec.order.status.is_open:
            await self._h.put(key, {"order": order_to_dict(rec.order), "info": rec.info})
        else:
            await self._h.delete(key)
        return new

    async def net_positions(self) -> dict[str, float]:
        """Signed quantity per symbol from the recorded fills: what the broker should hold."""
        out: dict[str, float] = {}
        for sym, side, qty in await self.fetchall("SELECT symbol, side, qty FROM fills"):
            out[sym] = out.get(sym, 0.0) + (qty if side == "buy" else -qty)
        return {s: q for s, q in out.items() if abs(q) > 1e-9}

    async def record_fill(self, f: Fill) -> bool:
        """True if this execution was not known yet (a fill is never counted twice)."""
        return (
            await self.write(
                INSERT_FILL,
                _fill_row(f),
            )
            > 0
        )

    async def fills(self, client_order_id: str | None = None) -> list[Fill]:
        sql = (
            "SELECT order_id, client_order_id, symbol, side, qty, price, ts, execution_id "
            "FROM fills"
        )
        args: tuple[Any, ...] = ()
        if client_order_id is not None:
            sql += " WHERE client_order_id = ?"
            args = (client_order_id,)
        rows = await self.fetchall(sql + " ORDER BY ts, rowid", args)
        return [Fill(r[0], r[1], r[2], Side(r[3]), r[4], r[5], r[6], r[7]) for r in rows]

    def day_of(self, ns: int) -> str:
        return datetime.fromtimestamp(ns / 1e9, self.tz).date().isoformat()

    async def record_trade(self, trade: dict[str, Any]) -> bool:
        t = dict(trade)
        t.setdefault("day", self.day_of(int(t["exit_ts"])))
        return (
            await self.write(
                "INSERT OR IGNORE INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    t["trade_id"],
                    t.get("setup_id"),
                    t["symbol"],
                    t["direction"],
                    t["qty"],
                    t["entry_price"],
                    t["exit_price"],
                    t["entry_ts"],
                    t["exit_ts"],
                    t["exit_leg"],
                    t["pnl"],
                    t.get("planned_rr"),
                    t.get("actual_rr"),
                    t["day"],
                ),
            )
            > 0
        )

    async def trades(self) -> list[dict[str, Any]]:
        conn = self._c

        def go() -> list[dict[str, Any]]:
            cur = conn.execute("SELECT * FROM trades ORDER BY entry_ts, trade_id")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

        return await self._read(go)

    async def day_stats(self, day: str) -> tuple[int, float]:
        """(entries placed that day, realised P&L of trades closed that day)."""
        placed = 0
        for (created,) in await self.fetchall(
            "SELECT created_at FROM orders WHERE leg = 'entry' AND order_id != '' "
            "AND status != 'rejected'"
        ):
            if self.day_of(created) == day:
                placed += 1
        (pnl,) = await self.fetchone(
            "SELECT COALESCE(SUM(pnl), 0) FROM trades WHERE day = ?", (day,)
        )
        return placed, float(pnl)

    # ---- small values: kill switch, halt reason, the paper book ----------------------
    async def get_value(self, key: str) -> Any | None:
        return await self._h.get(f"value:{key}")

    async def set_value(self, key: str, value: Any) -> None:
        await self._h.put(f"value:{key}", value)

    async def clear_value(self, key: str) -> None:
        await self._h.delete(f"value:{key}")
