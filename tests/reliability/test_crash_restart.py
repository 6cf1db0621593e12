"""SIGKILL `slob-tui replay` at seeded random moments, restart, compare.

Two instrument profiles: NQ minutes (a point-based future) and SPY minutes traded as QQQ (a
price-fraction symbol, the default Alpaca one), whose stops and targets a restart must keep to
the last digit. Two brokers: paper (the book saved in the database) and Alpaca, whose orders go
through the local Alpaca (tests/fakes/alpaca) running in a thread of the test: the venue
outlives every engine process, keeps its orders across the kills, and fills them against the
replayed minute bars at the engine time of each order (`replay_fills.py`), so an uninterrupted
run is deterministic and the restarted engine has to reconcile with what the venue did while it
was dead.

After every kill the database must hold: at most one entry order per setup (no duplicate
client_order_id for the same setup), every order the broker got recorded before it was sent
(a bracket's legs, created by the broker, are adopted at the restart), fills that are unique
and never exceed their order, and candles that are an unbroken prefix of an uninterrupted
run's. At the end: the same setup journal, trades, fills and orders as the uninterrupted run,
every broker order known, and no open exit leg without a position.
The default run makes 3 kills with paper and 2 with Alpaca; SLOB_RELIABILITY_RUNS sets the
count for the full matrix.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.alpaca import Bar, LocalAlpaca, ReplayFills

REPO = Path(__file__).resolve().parents[2]
NQ = "nq_1min_20231119_20231204_et.csv"
INSTRUMENTS = {  # name -> (file, the symbol it is replayed as)
    "NQ": (NQ, "NQ"),
    "QQQ": ("spy_1min_20131007_et.csv", "QQQ"),
}

KEY, SECRET = "PKCRASHMATRIX0001", "crash-matrix-secret"
ALPACA_LEGS = {"limit": "target", "stop": "stop"}


def _decided_at(db: Path, client_order_id: str) -> int | None:
    """The engine time at which the engine decided an order: its journal row, written before
    the order is sent (what the venue fills the order at)."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        row = conn.execute(
            "SELECT created_at FROM orders WHERE client_order_id = ?", (client_order_id,)
        ).fetchone()
    except sqlite3.OperationalError:  # no tables yet
        return None
    finally:
        conn.close()
    return None if row is None else int(row[0])


def _engine_bars(db: Path, symbol: str) -> list[Bar]:
    """The minute candles an engine replayed, as stored (the file's minutes, plus the flat
    candles the engine makes for minutes without a trade)."""
    rows = _q(
        db,
        "SELECT ts_ns, open, high, low, close FROM candles WHERE symbol = ? ORDER BY ts_ns",
        (symbol,),
    )
    return [Bar(*r) for r in rows]


class AlpacaVenue:
    """The local Alpaca in a thread with its own event loop, filling against `bars`; one venue
    (one account) per engine database, whatever happens to the engine."""

    def __init__(self, bars: dict[str, list[Bar]], db: Path) -> None:
        fills = ReplayFills(bars, partial(_decided_at, db))
        self.fills = fills
        self.server = LocalAlpaca([], KEY, SECRET, rate_limit_per_minute=100_000, replay=fills)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._call(self.server.start())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def env(self) -> dict[str, str]:
        return {
            "SLOB_BROKER": "alpaca",
            "ALPACA_API_KEY": KEY,
            "ALPACA_API_SECRET": SECRET,
            "ALPACA_API_BASE_URL": self.server.rest_url,
            "ALPACA_TRADING_STREAM_URL": self.server.trading_stream_url,
        }

    def book(self) -> dict:
        """The venue's account in the paper book's shape (read on the venue's own loop)."""

        async def snapshot() -> dict:
            eng = self.server.trading
            orders = []
            for o in eng.orders.values():
                parent = o["_parent"]
                if parent is None:
                    leg = "close" if o["client_order_id"].endswith("-X") else "entry"
                else:
                    leg = ALPACA_LEGS[o["type"]]
                orders.append(
                    {
                        "client_order_id": o["client_order_id"],
                        "leg": leg,
                        "setup_id": o["client_order_id"] if parent is None else None,
                        "symbol": o["symbol"],
                        "status": o["status"],
                        "qty": float(o["qty"]),
                        "filled_avg_price": None
                        if o["filled_avg_price"] is None
                        else float(o["filled_avg_price"]),
                    }
                )
            positions = {s: list(p) for s, p in eng.positions.items()}
            return {"orders": orders, "positions": positions, "cash": eng.cash}

        return self._call(snapshot())

    def close(self) -> None:
        self._call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _replay_cmd(data: Path, db: Path, instrument: str, speed: str = "max") -> list[str]:
    file, symbol = INSTRUMENTS[instrument]
    return [
        sys.executable,
        "-m",
        "slob_tui",
        "replay",
        str(data / file),
        "--no-ui",
        "--symbol",
        symbol,
        "--speed",
        speed,
        "--db",
        str(db),
    ]


def _env(venue: AlpacaVenue | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLOB_", "ALPACA_", "APCA_", "REDIS_", "TELEGRAM_"))
    }
    env["PYTHONPATH"] = str(REPO)
    return env if venue is None else {**env, **venue.env()}


def _run_to_end(
    data: Path, db: Path, cwd: Path, instrument: str, venue: AlpacaVenue | None
) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(
        _replay_cmd(data, db, instrument),
        cwd=cwd,
        env=_env(venue),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return time.monotonic() - t0


def _run_and_kill(
    data: Path, db: Path, cwd: Path, delay: float, instrument: str, venue: AlpacaVenue | None
) -> bool:
    """Start a replay and SIGKILL it after `delay` s; False if it finished first."""
    proc = subprocess.Popen(
        _replay_cmd(data, db, instrument),
        cwd=cwd,
        env=_env(venue),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True
    finally:
        if proc.stderr is not None:
            err = proc.stderr.read().decode(errors="replace")
            proc.stderr.close()
    assert proc.returncode == 0, err[-2000:]
    return False


def _q(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _tables(db: Path) -> set[str]:
    return {r[0] for r in _q(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def _book(db: Path, venue: AlpacaVenue | None = None) -> dict:
    """What the broker holds: the paper book saved in the database, or the Alpaca venue's."""
    if venue is not None:
        return venue.book()
    rows = _q(db, "SELECT value FROM hot_state WHERE key = 'value:paper_book'")
    return json.loads(rows[0][0]) if rows else {"orders": []}


def _check_invariants(
    db: Path, ref_candles: list[tuple], symbol: str, venue: AlpacaVenue | None
) -> None:
    """What must hold at any moment, even straight after a SIGKILL."""
    tables = _tables(db)
    if "candles" in tables:
        got = _q(
            db,
            "SELECT ts_ns, open, high, low, close, volume FROM candles "
            "WHERE symbol = ? ORDER BY ts_ns",
            (symbol,),
        )
        assert got == ref_candles[: len(got)], "stored candles are not an unbroken prefix"
    if "orders" not in tables:
        return
    per_setup = _q(
        db,
        "SELECT setup_id, COUNT(*) FROM orders WHERE leg = 'entry' "
        "GROUP BY setup_id HAVING COUNT(*) > 1",
    )
    assert per_setup == [], f"two entry orders for one setup: {per_setup}"
    book = _book(db, venue)
    cids = [o["client_order_id"] for o in book["orders"]]
    assert len(cids) == len(set(cids)), "the broker holds a client_order_id twice"
    setups = [o["setup_id"] for o in book["orders"] if o["leg"] == "entry"]
    assert len(setups) == len(set(setups)), "the broker holds two entries for one setup"
    over = _q(
        db,
        "SELECT f.client_order_id, SUM(f.qty), o.qty FROM fills f JOIN orders o "
        "USING (client_order_id) GROUP BY f.client_order_id "
        "HAVING SUM(f.qty) > o.qty + 1e-9",
    )
    assert over == [], f"fills above the order quantity (counted twice): {over}"
    known = {r[0] for r in _q(db, "SELECT client_order_id FROM orders")}
    entries = [o["client_order_id"] for o in book["orders"] if o["leg"] in ("entry", "close")]
    unknown = [c for c in entries if c not in known]  # persisted before it was sent
    assert unknown == [], f"orders sent before they were recorded: {unknown}"


def _leg_names(db: Path) -> dict[str, str]:
    """Exit legs named by their entry: Alpaca gives a bracket's legs random client ids, so two
    runs are compared by `<entry id>:<leg>` (a paper leg's id already says as much)."""
    rows = _q(db, "SELECT client_order_id, leg, json_extract(info, '$.entry_cid') FROM orders")
    return {cid: f"{entry}:{leg}" for cid, leg, entry in rows if entry and leg != "entry"}


def _final(db: Path, venue: AlpacaVenue | None = None) -> dict:
    book = _book(db, venue)
    filled = {o["client_order_id"]: o for o in book["orders"] if o["status"] == "filled"}
    fills = _q(
        db,
        "SELECT client_order_id, SUM(qty), COUNT(*), MIN(price), MAX(price) "
        "FROM fills GROUP BY client_order_id ORDER BY client_order_id",
    )
    # every broker fill recorded exactly once, at the broker's price
    assert sorted(filled) == [f[0] for f in fills], "a broker fill was lost or invented"
    for cid, qty, n, lo, hi in fills:
        assert (
            n == 1 and qty == filled[cid]["qty"] and lo == hi == filled[cid]["filled_avg_price"]
        ), cid
    known = {r[0] for r in _q(db, "SELECT client_order_id FROM orders")}
    unknown = [o["client_order_id"] for o in book["orders"] if o["client_order_id"] not in known]
    assert unknown == [], f"broker orders the executor has no record of: {unknown}"
    open_positions = {s for s, (q, _) in book["positions"].items() if q}
    orphans = [
        o["client_order_id"]
        for o in book["orders"]
        if o["leg"] in ("stop", "target")
        and o["status"] in ("new", "held", "accepted")
        and o["symbol"] not in open_positions
    ]
    assert orphans == [], f"exit legs left open without a position: {orphans}"
    open_db = _q(
        db,
        "SELECT o.client_order_id FROM orders o JOIN trades t ON "
        "json_extract(o.info, '$.entry_cid') = t.trade_id "
        "WHERE o.status IN ('new', 'held', 'accepted', 'pending_new')",
    )
    assert open_db == [], f"exit legs open for closed trades: {open_db}"
    name = _leg_names(db)
    orders = _q(
        db,
        "SELECT client_order_id, status, qty, filled_qty, filled_avg_price, limit_price, "
        "stop_price FROM orders",
    )
    return {
        "trades": _q(db, "SELECT * FROM trades ORDER BY trade_id"),
        "setups": _q(db, "SELECT * FROM setups ORDER BY setup_id, idx, state"),
        "orders": sorted((name.get(o[0], o[0]), *o[1:]) for o in orders),
        "fills": sorted((name.get(f[0], f[0]), *f[1:]) for f in fills),
        "candles": _q(db, "SELECT COUNT(*), MIN(ts_ns), MAX(ts_ns) FROM candles"),
        "cash": book["cash"],
        "positions": book["positions"],
    }


class _Venues:
    """The Alpaca venue of each engine database (none with the paper broker)."""

    def __init__(self, bars: dict[str, list[Bar]] | None) -> None:
        self.bars = bars
        self.open: dict[Path, AlpacaVenue] = {}

    def of(self, db: Path) -> AlpacaVenue | None:
        if self.bars is None:
            return None
        if db not in self.open:
            self.open[db] = AlpacaVenue(self.bars, db)
        return self.open[db]

    def forget(self, db: Path) -> None:
        """The database starts over: so does its account."""
        venue = self.open.pop(db, None)
        if venue is not None:
            venue.close()

    def close(self) -> None:
        for db in list(self.open):
            self.forget(db)


def _crash_matrix(shared_data: Path, tmp_path: Path, kills: int, seed: int,
                  symbol: str = "NQ", broker: str = "paper") -> None:  # fmt: skip
    bars = None
    if broker == "alpaca":  # the candles the engine replays, from a first (paper) replay
        bars_db = tmp_path / "candles.db"
        _run_to_end(shared_data, bars_db, tmp_path, symbol, None)
        bars = {symbol: _engine_bars(bars_db, symbol)}
    venues = _Venues(bars)
    try:
        _kill_and_compare(shared_data, tmp_path, kills, seed, symbol, venues)
    finally:
        venues.close()


def _kill_and_compare(shared_data: Path, tmp_path: Path, kills: int, seed: int, symbol: str,
                      venues: _Venues) -> None:  # fmt: skip
    ref_db = tmp_path / "reference.db"
    duration = _run_to_end(shared_data, ref_db, tmp_path, symbol, venues.of(ref_db))
    ref = _final(ref_db, venues.of(ref_db))
    assert ref["trades"], "the reference run made no trades: nothing would be proven"
    ref_candles = _q(
        ref_db,
        "SELECT ts_ns, open, high, low, close, volume FROM candles WHERE symbol = ? ORDER BY ts_ns",
        (symbol,),
    )
    venue = venues.of(ref_db)
    if venue is not None:  # the venue fills on exactly the candles the engine replayed
        assert [Bar(*c[:5]) for c in ref_candles] == venue.fills.bars[symbol]
    rng = random.Random(seed)
    db = tmp_path / "crashed.db"
    done = attempts = 0
    while done < kills:
        attempts += 1
        assert attempts < kills * 4, "replays kept finishing before the kill"
        delay = rng.uniform(0.3, max(0.5, duration * 0.95))
        finished = not _run_and_kill(shared_data, db, tmp_path, delay, symbol, venues.of(db))
        _check_invariants(db, ref_candles, symbol, venues.of(db))
        if finished:  # it ran to the end: start over so that later kills land mid-run
            got = _final(db, venues.of(db))
            assert got == ref, "a run with kills ended different from the uninterrupted run"
            for p in tmp_path.glob("crashed.db*"):
                p.unlink()
            venues.forget(db)
            continue
        done += 1
    _run_to_end(shared_data, db, tmp_path, symbol, venues.of(db))
    _check_invariants(db, ref_candles, symbol, venues.of(db))
    got = _final(db, venues.of(db))
    assert got["trades"] == ref["trades"]
    assert got == ref


@pytest.mark.reliability
@pytest.mark.parametrize("symbol", sorted(INSTRUMENTS))
def test_kills_change_nothing(shared_data: Path, tmp_path: Path, symbol: str) -> None:
    """3 kills by default; `SLOB_RELIABILITY_RUNS=50 pytest -m reliability tests/reliability`
    for the full matrix (each kill is a fresh seeded moment)."""
    kills = int(os.environ.get("SLOB_RELIABILITY_RUNS", "3"))
    _crash_matrix(shared_data, tmp_path, kills=kills, seed=20231119 + kills, symbol=symbol)


@pytest.mark.reliability
@pytest.mark.parametrize("symbol", sorted(INSTRUMENTS))
def test_kills_change_nothing_with_alpaca(shared_data: Path, tmp_path: Path, symbol: str) -> None:
    """The same matrix with orders through the local Alpaca: 2 kills by default,
    SLOB_RELIABILITY_RUNS for more."""
    kills = int(os.environ.get("SLOB_RELIABILITY_RUNS", "2"))
    _crash_matrix(shared_data, tmp_path, kills, 20131007 + kills, symbol, broker="alpaca")


OPEN = ("new", "accepted", "held", "pending_new")


def _legs_resting(db: Path) -> bool:
    """A position held in the paper book with its stop and target resting there."""
    if not db.exists():  # not made by this read: the engine creates its own file
        return False
    try:
        book = _book(db)
    except sqlite3.Error:  # the engine has not made its tables yet
        return False
    held = {s for s, (q, _) in book.get("positions", {}).items() if q}
    legs = {
        o["leg"]
        for o in book["orders"]
        if o["leg"] in ("stop", "target") and o["status"] in OPEN and o["symbol"] in held
    }
    return legs == {"stop", "target"}


def _pace_for_first_trade(ref_db: Path, symbol: str) -> float:
    """Data seconds per wall second at which the reference run's earliest trade stays open for
    about 0.3 s of wall time: long enough to see its resting legs and kill."""
    ((entry, exit_),) = _q(ref_db, "SELECT entry_ts, exit_ts FROM trades ORDER BY entry_ts LIMIT 1")
    ((start,),) = _q(ref_db, "SELECT MIN(ts_ns) FROM candles WHERE symbol = ?", (symbol,))
    pace = (exit_ - entry) / 1e9 / 0.3
    assert (entry - start) / 1e9 / pace < 30, "the first trade is too late in the file"
    return pace


def _kill_with_legs_resting(shared_data: Path, tmp_path: Path, symbol: str) -> None:
    """SIGKILL the engine while an entry has filled and its stop and target rest in the paper
    book (the seeded moments of `_crash_matrix` never landed there), restart it at full speed:
    the restarted engine must take the resting legs back, close the trade as the uninterrupted
    run did, and leave the same journal, orders, fills and book.

    Paper only: the local Alpaca settles a whole bracket when its entry arrives
    (`replay_fills.py`), so its legs never rest in wall time for a kill to find."""
    ref_db = tmp_path / "reference.db"
    _run_to_end(shared_data, ref_db, tmp_path, symbol, None)
    ref = _final(ref_db)
    ref_candles = _q(
        ref_db,
        "SELECT ts_ns, open, high, low, close, volume FROM candles WHERE symbol = ? ORDER BY ts_ns",
        (symbol,),
    )
    db = tmp_path / "crashed.db"
    proc = subprocess.Popen(
        _replay_cmd(shared_data, db, symbol, f"{_pace_for_first_trade(ref_db, symbol):.3f}"),
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while not _legs_resting(db) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"the replay ended first: {err[-2000:]}"
    assert _legs_resting(db), "the kill did not land while the legs rested (90 s at most)"
    _check_invariants(db, ref_candles, symbol, None)
    _run_to_end(shared_data, db, tmp_path, symbol, None)
    _check_invariants(db, ref_candles, symbol, None)
    assert _final(db) == ref


@pytest.mark.reliability
@pytest.mark.parametrize("symbol", sorted(INSTRUMENTS))
def test_a_kill_while_exit_legs_rest_changes_nothing(
    shared_data: Path, tmp_path: Path, symbol: str
) -> None:
    _kill_with_legs_resting(shared_data, tmp_path, symbol)
