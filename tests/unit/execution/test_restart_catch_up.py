"""Restart with the candle store ahead of the saved tracker and paper book (a live crash: the
store flushes every half second, the tracker state is saved on events and every 60 candles).
The stored candles the tracker never saw must be fed to it and the paper broker on start, so the
journal ends exactly as an uninterrupted run's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from slob_tui.config import load_settings
from slob_tui.node import NodeConfig, TradingNode

NQ = "nq_1min_20231119_20231204_et.csv"


async def _replay(file: Path, db: Path) -> None:
    config = NodeConfig(
        feed="replay",
        replay_file=str(file),
        db=str(db),
        speed=None,
        validate=False,
        settings=load_settings(env={}, dotenv=None),
    )
    engine = TradingNode(config)
    await engine.run()


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _journal(db: Path) -> dict[str, list[tuple]]:
    return {
        "setups": _rows(db, "SELECT * FROM setups ORDER BY setup_id, idx, state"),
        "orders": _rows(
            db,
            "SELECT client_order_id, status, qty, filled_avg_price FROM orders "
            "ORDER BY client_order_id",
        ),
        "fills": _rows(db, "SELECT * FROM fills ORDER BY execution_id"),
        "trades": _rows(db, "SELECT * FROM trades ORDER BY trade_id"),
    }


async def test_stored_candles_beyond_the_saved_state_are_caught_up(
    shared_data: Path, tmp_path: Path
) -> None:
    full = shared_data / NQ
    ref_db = tmp_path / "ref.db"
    await _replay(full, ref_db)
    ref = _journal(ref_db)
    assert len(ref["trades"]) >= 5

    lines = full.read_text().splitlines(keepends=True)
    part = tmp_path / "part" / NQ
    part.parent.mkdir()
    part.write_text("".join(lines[: len(lines) * 2 // 5]))
    db = tmp_path / "crashed.db"
    await _replay(part, db)  # state saved up to 40 % of the file
    cut = _rows(db, "SELECT MAX(ts_ns) FROM candles")[0][0]
    (upto,) = _rows(
        ref_db, f"SELECT ts_ns FROM candles ORDER BY ts_ns LIMIT 1 OFFSET {len(lines) * 7 // 10}"
    )[0]
    with sqlite3.connect(db) as conn:  # the store flushed 30 % more before the crash
        conn.execute("ATTACH ? AS ref", (str(ref_db),))
        conn.execute(
            "INSERT INTO candles SELECT * FROM ref.candles WHERE ts_ns > ? AND ts_ns <= ?",
            (cut, upto),
        )
    assert _journal(db)["trades"] != ref["trades"]  # the missing part holds trades

    await _replay(full, db)
    assert _journal(db) == ref


async def _replay_as(file: Path, db: Path, symbol: str) -> None:
    config = NodeConfig(feed="replay", replay_file=str(file), db=str(db), speed=None,
                        symbols=(symbol,), validate=False,
                        settings=load_settings(env={}, dotenv=None))  # fmt: skip
    await TradingNode(config).run()


async def test_a_restart_keeps_a_price_fraction_instruments_profile(
    shared_data: Path, tmp_path: Path
) -> None:
    """SPY's minutes traded as QQQ (the default Alpaca symbol): the restored tracker must keep
    the buffers scaled to the price (0.0067), not fall back to NQ's points (1.0)."""
    full = shared_data / "spy_1min_20131007_et.csv"
    ref_db = tmp_path / "ref.db"
    await _replay_as(full, ref_db, "QQQ")
    ref = _journal(ref_db)
    assert len(ref["trades"]) >= 1

    lines = full.read_text().splitlines(keepends=True)
    for i, share in enumerate((3, 5, 7)):  # stopped three times, each a little further on
        part = tmp_path / f"part{i}" / full.name
        part.parent.mkdir()
        part.write_text("".join(lines[: len(lines) * share // 10]))
        await _replay_as(part, tmp_path / "restarted.db", "QQQ")
    await _replay_as(full, tmp_path / "restarted.db", "QQQ")
    assert _journal(tmp_path / "restarted.db") == ref
