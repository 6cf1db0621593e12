"""Real processes: a headless engine, attached consoles that come, go and get killed."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

from slob_tui.commands.attach import build_console
from slob_tui.config import Settings
from slob_tui.node.attach_protocol import socket_path_for
from slob_tui.ui.remote import AttachTarget, RemoteEngine, send_command
from tests.attach.helpers import (
    attach_sync,
    engine_env,
    engine_log,
    spawn_engine,
    stop_engine,
    stored_candles,
    wait_for_socket,
)
from tests.polling import until

NQ_FILE = "nq_1min_20231119_20231204_et.csv"


def consoles(path: Path) -> int:
    """Attached consoles (`slob-tui attach` sessions past their start-up probe)."""
    asked = asyncio.run(send_command(AttachTarget(socket=path), "health", control=False))
    return sum(1 for name in asked["attach"]["attached"] if name.startswith("console#"))


def clients(path: Path) -> int:
    """Attached clients other than the one asking."""
    asked = asyncio.run(send_command(AttachTarget(socket=path), "clients", control=False))
    return int(asked) - 1


async def test_attached_console_sees_the_engine_stop_then_resyncs_on_restart(
    tmp_path: Path, shared_data: Path
) -> None:
    db = tmp_path / "nq.db"
    replay = ("replay", str(shared_data / NQ_FILE), "--no-ui", "--speed", "600")
    engine = spawn_engine(tmp_path, db, *replay)
    try:
        path = await asyncio.to_thread(wait_for_socket, db, engine)
        remote = RemoteEngine(AttachTarget(socket=path))
        app = build_console(remote.target, control=False, settings=Settings(),
                            install_signals=False, watch_terminal=False)  # fmt: skip
        app.runner.engine = remote
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: remote.snapshots >= 3 and app.last_snapshot is not None)
            app.refresh_now()
            assert "ATTACHED" in str(app.query_one("#banner").render())
            assert app.last_snapshot.mode == "REPLAY" and remote.raw_snapshot().candles["NQ"]
            first_seq = remote.remote_seq

            await asyncio.to_thread(stop_engine, engine)  # the engine stops (SIGTERM)
            await until(lambda: remote.state == "disconnected")
            await pilot.pause(0.3)
            banner = str(app.query_one("#banner").render())
            assert "DISCONNECTED" in banner and "engine stopped" in banner

            engine = spawn_engine(tmp_path, db, "--no-ui", "--speed", "600")  # a restart
            await until(lambda: remote.connections == 2 and remote.state == "attached", 40)
            await until(lambda: remote.raw_snapshot().mode == "DEMO")
            await pilot.pause(0.3)
            assert "ATTACHED" in str(app.query_one("#banner").render())
            assert app.last_snapshot.mode == "DEMO"  # the fresh engine's snapshot, drawn
            assert remote.remote_seq != first_seq or remote.snapshots > 3
            await pilot.press("ctrl+q")
        assert engine.poll() is None  # detaching left the engine running
    finally:
        stop_engine(engine)
    assert "Traceback" not in engine_log(tmp_path)


def test_sigkill_of_an_attached_console_leaves_the_engine_storing(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    engine = spawn_engine(tmp_path, db)
    console: subprocess.Popen[bytes] | None = None
    try:
        path = wait_for_socket(db, engine)
        console = spawn_console(tmp_path, db)
        deadline = time.monotonic() + 30
        while consoles(path) < 1:
            assert console.poll() is None, "the attached console exited"
            assert time.monotonic() < deadline, "the console never attached"
            time.sleep(0.1)
        before_kill = stored_candles(db)
        os.kill(console.pid, signal.SIGKILL)
        console.wait(timeout=10)
        deadline = time.monotonic() + 10
        while clients(path) != 0:
            assert time.monotonic() < deadline, "the engine still counts the killed console"
            time.sleep(0.1)
        deadline = time.monotonic() + 20
        while stored_candles(db) <= before_kill + 10:
            assert time.monotonic() < deadline, "the engine stopped storing candles"
            time.sleep(0.2)
        assert engine.poll() is None
    finally:
        if console is not None and console.poll() is None:
            console.kill()
        stop_engine(engine)
    log = engine_log(tmp_path)
    assert "Traceback" not in log and " ERROR " not in log
    assert "gone" in log  # a client gone: the worst it says


def spawn_console(workdir: Path, db: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`slob-tui attach --db DB` on a pseudo-terminal of 120x40 whose output is drained."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    console = subprocess.Popen(
        [sys.executable, "-m", "slob_tui", "attach", "--db", str(db), *extra],
        cwd=workdir, env=engine_env({"TERM": "xterm-256color"}), stdin=slave, stdout=slave,
        stderr=slave, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    threading.Thread(target=_drain, args=(master,), daemon=True).start()
    return console


def test_sigterm_detaches_an_attached_console_and_the_engine_runs_on(tmp_path: Path) -> None:
    db = tmp_path / "term.db"
    engine = spawn_engine(tmp_path, db)
    console: subprocess.Popen[bytes] | None = None
    try:
        path = wait_for_socket(db, engine)
        console = spawn_console(tmp_path, db, "--control")
        deadline = time.monotonic() + 30
        while consoles(path) < 1:
            assert console.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        console.send_signal(signal.SIGTERM)
        assert console.wait(timeout=20) == 0
        assert clients(path) == 0 and engine.poll() is None
    finally:
        if console is not None and console.poll() is None:
            console.kill()
        stop_engine(engine)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


async def test_ten_consoles_and_one_that_never_reads(tmp_path: Path) -> None:
    db = tmp_path / "ten.db"
    engine = spawn_engine(tmp_path, db)
    try:
        path = await asyncio.to_thread(wait_for_socket, db, engine)
        stalled, _ = await asyncio.to_thread(attach_sync, path, client="never-reads")
        remotes = [RemoteEngine(AttachTarget(socket=path), client=f"c{i}") for i in range(10)]
        tasks = [asyncio.create_task(r.run()) for r in remotes]
        try:
            await until(lambda: all(r.snapshots >= 2 for r in remotes))
            seqs = [r.remote_seq for r in remotes]
            candles = await asyncio.to_thread(stored_candles, db)
            await asyncio.sleep(5)  # the stalled client's outbox overflows meanwhile
            health = await remotes[0].command("health")
            assert health["attach"]["clients"] == 11 and health["attach"]["resyncs"] >= 1
            assert all(r.remote_seq > s for r, s in zip(remotes, seqs, strict=True))
            assert all(r.gaps == 0 and r.events_seen > 0 for r in remotes)
            assert await asyncio.to_thread(stored_candles, db) > candles
        finally:
            for r in remotes:
                r.request_stop()
            await asyncio.gather(*tasks)
            stalled.close()
        assert engine.poll() is None
    finally:
        stop_engine(engine)
    assert "Traceback" not in engine_log(tmp_path)


def test_no_engine_is_one_line_and_status_2(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "slob_tui", "attach", "--db", str(tmp_path / "none.db")],
        cwd=tmp_path, env=engine_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and str(socket_path_for(tmp_path / "none.db")) in out.stderr
