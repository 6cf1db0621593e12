"""`slob-tui flatten` from a second process against a running headless engine (real NQ
minutes replayed into a real SQLite file), with the paper broker and with the local Alpaca.

The engine is paused (SIGSTOP) right after its first order, between two of its writes, so
the second process acts between two triggers whatever the machine's load; then it runs on: its
next triggered setup is refused by the gate (the kill switch read from the database), and after
`flatten --reset` the one after is placed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

from tests.fakes.alpaca import LocalAlpaca

REPO = Path(__file__).resolve().parents[2]
NQ = "nq_1min_20231119_20231204_et.csv"
SPEED = "9000"  # 150 candles a second: the first two triggers are ~1 s apart
KEY, SECRET = "PKFLATTENTEST001", "flatten-secret-never-printed"


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLOB_", "ALPACA_", "APCA_", "REDIS_", "TELEGRAM_"))
    }
    return {**env, "PYTHONPATH": str(REPO), **extra}


def _entries(db: Path) -> list[tuple[str, str, dict]]:
    """(client id, status, info) of every entry order, in trigger order."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=5)
    try:
        rows = conn.execute(
            "SELECT client_order_id, status, info FROM orders "
            "WHERE leg = 'entry' ORDER BY created_at"
        ).fetchall()
    except sqlite3.OperationalError:  # the engine has not created its tables yet
        return []
    finally:
        conn.close()
    return [(cid, status, json.loads(info)) for cid, status, info in rows]


async def _until(
    cond: Callable[[], bool], proc: asyncio.subprocess.Process, timeout: float = 90.0
) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert proc.returncode is None, "the engine exited early"
        assert loop.time() < end, "timed out waiting for the engine"
        await asyncio.sleep(0.02)


async def _freeze_between_writes(engine: asyncio.subprocess.Process, db: Path) -> None:
    """SIGSTOP the engine at a moment it holds no write transaction. An engine frozen inside
    one blocks every other writer of the file until it resumes (a `flatten` then waits its
    busy timeout and exits 2 saying the database is locked), so a test that freezes it at a
    random point, right after a burst of writes, must not land inside one."""
    stat = Path(f"/proc/{engine.pid}/stat")
    for _ in range(500):
        engine.send_signal(signal.SIGSTOP)
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "T":
            await asyncio.sleep(0.001)  # the signal is taken asynchronously
        conn = sqlite3.connect(db, timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # frozen inside a write: let it finish
            pass
        finally:
            conn.close()
        engine.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.002)
    raise AssertionError("the engine was inside a write transaction at every attempt")


async def _slob(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "slob_tui",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _kill_then_reset(shared_data: Path, tmp_path: Path, env: dict[str, str]) -> str:
    """Run the scenario; returns the kill command's output."""
    db = tmp_path / "engine.db"
    engine = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "slob_tui",
        "replay",
        str(shared_data / NQ),
        "--no-ui",
        "--speed",
        SPEED,
        "--db",
        str(db),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await _until(lambda: any(s != "pending_new" for _, s, _ in _entries(db)), engine)
        await _freeze_between_writes(engine, db)
        [(_, first_status, _)] = _entries(db)
        assert first_status != "rejected"
        code, killed_out, err = await _slob(
            env, tmp_path, "flatten", "--db", str(db), "--wait", "0", "--reason", "second process"
        )
        assert code == 0, err
        engine.send_signal(signal.SIGCONT)

        await _until(lambda: len(_entries(db)) >= 2, engine)
        _, status, info = _entries(db)[1]
        assert status == "rejected"
        assert info["reason"].startswith("kill switch is on") and "second process" in info["reason"]

        await _freeze_between_writes(engine, db)
        code, out, err = await _slob(env, tmp_path, "flatten", "--db", str(db), "--reset")
        assert (code, out.strip()) == (0, "kill switch cleared: new orders allowed"), err
        engine.send_signal(signal.SIGCONT)

        await _until(lambda: len(_entries(db)) >= 3 and _entries(db)[2][1] != "pending_new", engine)
        _, status, info = _entries(db)[2]
        assert status != "rejected", info
    finally:
        if engine.returncode is None:
            engine.send_signal(signal.SIGCONT)
            engine.send_signal(signal.SIGTERM)
        _, err_bytes = await asyncio.wait_for(engine.communicate(), 60)
    assert engine.returncode == 0, err_bytes.decode()[-2000:]
    return killed_out


async def test_paper_engine_obeys_flatten_and_reset_from_another_process(
    shared_data: Path, tmp_path: Path
) -> None:
    out = await _kill_then_reset(shared_data, tmp_path, _env({}))
    assert "places no new order" in out
    conn = sqlite3.connect(tmp_path / "engine.db")
    try:  # the engine itself cancelled and flattened on resuming, and told the command so
        ack = conn.execute("SELECT value FROM hot_state WHERE key = 'value:kill_ack'").fetchone()
        exits = conn.execute("SELECT exit_leg FROM trades ORDER BY exit_ts").fetchall()
    finally:
        conn.close()
    assert ack is not None and json.loads(ack[0])["id"]
    first = _entries(tmp_path / "engine.db")[0][1]
    # the kill cancelled the first entry before its fill, or closed the trade it opened
    assert first == "canceled" or exits[0] == ("close",), (first, exits)


async def test_alpaca_engine_obeys_flatten_and_reset_from_another_process(
    shared_data: Path, tmp_path: Path
) -> None:
    srv = LocalAlpaca([], KEY, SECRET)
    await srv.start()
    try:
        env = _env(
            {
                "SLOB_BROKER": "alpaca",
                "ALPACA_API_KEY": KEY,
                "ALPACA_API_SECRET": SECRET,
                "ALPACA_API_BASE_URL": srv.rest_url,
                "ALPACA_TRADING_STREAM_URL": srv.trading_stream_url,
            }
        )
        out = await _kill_then_reset(shared_data, tmp_path, env)
        assert out.startswith("kill switch on (alpaca): cancelled ")
        parents = [o for o in srv.trading.orders.values() if o["_parent"] is None]
        assert [(o["client_order_id"], o["status"]) for o in parents][:1] == [
            (_entries(tmp_path / "engine.db")[0][0], "canceled")
        ]
        assert len(parents) == 2  # the refused setup never reached the broker
        assert SECRET not in out
    finally:
        await srv.stop()
