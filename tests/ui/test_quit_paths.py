"""Every way out of the console leaves the last candles in the store (checked in the file)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from slob_tui.core.models import NS_PER_MINUTE, Tick
from slob_tui.ui.app import create_app
from tests.ui.helpers import T0, make_engine, synthetic_candles
from tests.ui.scenes import wait_engine_started

FORMING_START = T0  # the clock sits in this minute; ticks build its candle


async def _load(app, engine) -> None:
    await wait_engine_started(app)
    await engine.put_candles(synthetic_candles("NQ", 30, T0 - 30 * NS_PER_MINUTE))
    engine.put_ticks(
        [Tick("NQ", T0 + 1_000_000_000, 101.25, 2), Tick("NQ", T0 + 2_000_000_000, 101.75, 3)]
    )
    for _ in range(200):  # the consumer picks the batch up within a few clock ticks
        if engine.aggregator.forming("NQ") is not None:
            break
        await asyncio.sleep(0.01)
    assert engine.aggregator.forming("NQ") is not None


def _stored(db: Path) -> list[tuple[int, float, float]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT ts_ns, close, volume FROM candles WHERE symbol='NQ' ORDER BY ts_ns"
        ).fetchall()


def _assert_flushed(db: Path) -> None:
    rows = _stored(db)
    assert len(rows) == 31
    assert rows[-1] == (FORMING_START, 101.75, 5.0)  # the forming candle, closed on the way out


async def test_ctrl_q_flushes_the_forming_candle(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    engine = make_engine(db=db)
    app = create_app(engine, theme="slob-dark")
    async with app.run_test(size=(100, 30)) as pilot:
        await _load(app, engine)
        await pilot.press("ctrl+q")
    assert engine.stopped and engine.stop_reason == "quit"
    _assert_flushed(db)


async def test_quit_command_in_the_palette_flushes(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    engine = make_engine(db=db)
    app = create_app(engine, theme="slob-dark")
    async with app.run_test(size=(100, 30)) as pilot:
        await _load(app, engine)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"quit")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.5)
    assert engine.stopped
    _assert_flushed(db)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
async def test_signals_run_the_graceful_stop(tmp_path: Path, sig: signal.Signals) -> None:
    db = tmp_path / "c.db"
    engine = make_engine(db=db)
    app = create_app(engine, theme="slob-dark", install_signals=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await _load(app, engine)
        os.kill(os.getpid(), sig)  # a real signal to this process; the app's handler catches it
        for _ in range(300):
            if engine.stopped:
                break
            await pilot.pause(0.02)
    assert engine.stop_reason == f"signal {sig.name}"
    _assert_flushed(db)
    loop = asyncio.get_running_loop()
    assert not loop.remove_signal_handler(sig)  # the console removed its handler on exit


async def test_app_exit_without_quit_still_stops_the_engine(tmp_path: Path) -> None:
    """app.exit() from anywhere (a crash path, a vanished terminal) goes through on_unmount."""
    db = tmp_path / "c.db"
    engine = make_engine(db=db)
    app = create_app(engine, theme="slob-dark")
    async with app.run_test(size=(100, 30)):
        await _load(app, engine)
        app.exit()
    assert engine.stopped
    _assert_flushed(db)


async def test_vanished_terminal_check_quits_gracefully(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    engine = make_engine(db=db)
    app = create_app(engine, theme="slob-dark")
    async with app.run_test(size=(100, 30)) as pilot:
        await _load(app, engine)
        read_fd, write_fd = os.pipe()  # a descriptor that is not a terminal
        try:
            assert app.check_terminal(read_fd) is False
        finally:
            os.close(read_fd)
            os.close(write_fd)
        for _ in range(300):
            if engine.stopped:
                break
            await pilot.pause(0.02)
    assert engine.stop_reason == "terminal vanished"
    _assert_flushed(db)
