"""`slob-tui` in a real terminal (a pty): it opens the console, and SIGTERM/SIGHUP stop it
gracefully — the process exits 0, says why, and the store holds the candles. (That the forming
candle is flushed on each way out is checked in-process in test_quit_paths.py.)"""

from __future__ import annotations

import os
import pty
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("slob-tui")


def _drain(fd: int, out: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        out.extend(chunk)


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM candles").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_console_process_stops_gracefully_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    db = tmp_path / "live.db"
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLOB_", "TEXTUAL_"))}
    env.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
    proc = subprocess.Popen(
        [str(SCRIPT), "--db", str(db), "--speed", "120"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    os.close(slave)
    screen = bytearray()
    reader = threading.Thread(target=_drain, args=(master, screen), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while _rows(db) == 0 or b"DEMO" not in screen:
            assert proc.poll() is None, bytes(screen[-2000:]).decode(errors="replace")
            assert time.monotonic() < deadline, "console never stored a candle"
            time.sleep(0.2)
        time.sleep(1.5)  # let ticks build a forming candle
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert code == 0, bytes(screen[-3000:]).decode(errors="replace")
    assert f"engine stopped (signal {sig.name})".encode() in screen
    with sqlite3.connect(db) as conn:
        count = conn.execute("SELECT COUNT(*) FROM candles").fetchone()[0]
    assert count > 0
    assert b"Traceback" not in screen


def test_console_on_a_corrupt_database_prints_the_one_line_and_exits_2(tmp_path: Path) -> None:
    """Issue 15 item 4, in a real terminal: the same line and status as `--no-ui`."""
    (tmp_path / "bad.db").write_bytes(b"this is not a database" * 300)
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLOB_", "TEXTUAL_"))}
    env.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
    proc = subprocess.Popen(
        [str(SCRIPT), "--db", "bad.db"], stdin=slave, stdout=slave, stderr=slave, env=env,
        cwd=tmp_path, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    screen = bytearray()
    reader = threading.Thread(target=_drain, args=(master, screen), daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=5)
        os.close(master)
    text = bytes(screen).decode(errors="replace")
    assert code == 2, text[-3000:]
    assert "slob-tui: error: cannot open candle store bad.db: file is not a database" in text
    assert "Traceback" not in text
