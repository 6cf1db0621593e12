"""SIGKILL `slob-tui replay` (paper broker) at seeded random moments, restart, compare.

Two instrument profiles: NQ minutes (a point-based future) and SPY minutes traded as QQQ (a
price-fraction symbol, the default Alpaca one), whose stops and targets a restart must keep to
the last digit.

After every kill the database must hold: at most one entry order per setup (no duplicate
client_order_id for the same setup), every order the broker got recorded before it was sent
(a bracket's legs, created by the broker, are adopted at the restart), fills that are unique
and never exceed their order, and candles that are an unbroken prefix of an uninterrupted
run's. At the end: the same setup journal, trades, fills and orders as the uninterrupted run,
every broker order known, and no open exit leg without a position.
The default run makes 3 kills; SLOB_RELIABILITY_RUNS sets the count for the full matrix.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NQ = "nq_1min_20231119_20231204_et.csv"
INSTRUMENTS = {  # name -> (file, the symbol it is replayed as)
    "NQ": (NQ, "NQ"),
    "QQQ": ("spy_1min_20131007_et.csv", "QQQ"),
}


def _replay_cmd(data: Path, db: Path, instrument: str) -> list[str]:
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
        "max",
        "--db",
        str(db),
    ]


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLOB_", "ALPACA_", "APCA_", "REDIS_", "TELEGRAM_"))
    }
    env["PYTHONPATH"] = str(REPO)
    return env


def _run_to_end(data: Path, db: Path, cwd: Path, instrument: str) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(
        _replay_cmd(data, db, instrument),
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return time.monotonic() - t0


def _run_and_kill(data: Path, db: Path, cwd: Path, delay: float, instrument: str) -> bool:
    """Start a replay and SIGKILL it after `delay` s; False if it finished first."""
    proc = subprocess.Popen(
        _replay_cmd(data, db, instrument),
        cwd=cwd,
        env=_env(),
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


def _book(db: Path) -> dict:
    rows = _q(db, "SELECT value FROM hot_state WHERE key = 'value:paper_book'")
    return json.loads(rows[0][0]) if rows else {"orders": []}


def _check_invariants(db: Path, ref_candles: list[tuple], symbol: str) -> None:
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
    book = _book(db)
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


def _final(db: Path) -> dict:
    book = _book(db)
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
    return {
        "trades": _q(db, "SELECT * FROM trades ORDER BY trade_id"),
        "setups": _q(db, "SELECT * FROM setups ORDER BY setup_id, idx, state"),
        "orders": _q(
            db,
            "SELECT client_order_id, status, qty, filled_qty, filled_avg_price "
            "FROM orders ORDER BY client_order_id",
        ),
        "fills": fills,
        "candles": _q(db, "SELECT COUNT(*), MIN(ts_ns), MAX(ts_ns) FROM candles"),
        "cash": book["cash"],
        "positions": book["positions"],
    }


def _crash_matrix(shared_data: Path, tmp_path: Path, kills: int, seed: int,
                  symbol: str = "NQ") -> None:  # fmt: skip
    ref_db = tmp_path / "reference.db"
    duration = _run_to_end(shared_data, ref_db, tmp_path, symbol)
    ref = _final(ref_db)
    assert ref["trades"], "the reference run made no trades: nothing would be proven"
    ref_candles = _q(
        ref_db,
        "SELECT ts_ns, open, high, low, close, volume FROM candles WHERE symbol = ? ORDER BY ts_ns",
        (symbol,),
    )
    rng = random.Random(seed)
    db = tmp_path / "crashed.db"
    done = attempts = 0
    while done < kills:
        attempts += 1
        assert attempts < kills * 4, "replays kept finishing before the kill"
        finished = not _run_and_kill(
            shared_data, db, tmp_path, rng.uniform(0.3, max(0.5, duration * 0.95)), symbol
        )
        _check_invariants(db, ref_candles, symbol)
        if finished:  # it ran to the end: start over so that later kills land mid-run
            got = _final(db)
            assert got == ref, "a run with kills ended different from the uninterrupted run"
            for p in tmp_path.glob("crashed.db*"):
                p.unlink()
            continue
        done += 1
    _run_to_end(shared_data, db, tmp_path, symbol)
    _check_invariants(db, ref_candles, symbol)
    got = _final(db)
    assert got["trades"] == ref["trades"]
    assert got == ref


@pytest.mark.reliability
@pytest.mark.parametrize("symbol", sorted(INSTRUMENTS))
def test_kills_change_nothing(shared_data: Path, tmp_path: Path, symbol: str) -> None:
    """3 kills by default; `SLOB_RELIABILITY_RUNS=50 pytest -m reliability tests/reliability`
    for the full matrix (each kill is a fresh seeded moment)."""
    kills = int(os.environ.get("SLOB_RELIABILITY_RUNS", "3"))
    _crash_matrix(shared_data, tmp_path, kills=kills, seed=20231119 + kills, symbol=symbol)
