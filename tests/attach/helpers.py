"""Real engines in subprocesses and raw protocol clients for the attach tests."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, unix_connect

from slob_tui.node.attach_protocol import (
    PROTOCOL_VERSION,
    Hello,
    SnapshotFrame,
    Welcome,
    decode_server,
    encode,
    socket_path_for,
)

REPO = Path(__file__).resolve().parents[2]


def engine_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLOB_", "ALPACA_", "TELEGRAM"))
    }
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def spawn_engine(
    workdir: Path, db: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`slob-tui --no-ui` (or the subcommand in `args`) in `workdir`, logging to engine.log."""
    cmd = [sys.executable, "-m", "slob_tui", *(args or ("--no-ui", "--speed", "600"))]
    cmd += ["--db", str(db)]
    log = open(workdir / "engine.log", "ab")  # noqa: SIM115 - the process owns it
    return subprocess.Popen(cmd, cwd=workdir, env=engine_env(env), stdout=log, stderr=log)


def wait_for_socket(db: Path, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> Path:
    path = socket_path_for(db)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"engine exited with {proc.returncode} before serving")
        if path.exists():
            try:
                with raw_client(path) as ws:
                    ws.send(encode(Hello(PROTOCOL_VERSION, client="probe", events=False)))
                    if isinstance(decode_server(ws.recv(timeout=5)), Welcome):
                        return path
            except OSError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"no front door at {path} within {timeout} s")


def stop_engine(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    if proc.poll() is None:
        proc.terminate()
    return proc.wait(timeout=timeout)


def raw_client(path: Path) -> ClientConnection:
    return unix_connect(str(path), uri="ws://localhost/attach", max_size=None, compression=None)


def attach_sync(path: Path, **hello: Any) -> tuple[ClientConnection, Welcome]:
    ws = raw_client(path).__enter__()  # closed by the caller's `with ws`
    ws.send(encode(Hello(PROTOCOL_VERSION, **hello)))
    welcome = decode_server(ws.recv(timeout=5))
    assert isinstance(welcome, Welcome), welcome
    return ws, welcome


def next_snapshot(ws: ClientConnection, timeout: float = 10.0) -> SnapshotFrame:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = decode_server(ws.recv(timeout=timeout))
        if isinstance(frame, SnapshotFrame):
            return frame
    raise AssertionError("no snapshot")


def stored_candles(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM candles").fetchone()[0])


def engine_log(workdir: Path) -> str:
    return (workdir / "engine.log").read_text(errors="replace")
