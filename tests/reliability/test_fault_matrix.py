"""The fault matrix: real faults injected into a running `slob-tui replay` (paper broker).

Each run replays the NQ candle file at a fixed speed (about 15-30 s of wall time) while one
fault hits it: redis-server SIGKILLed and restarted, the database's filesystem (a tmpfs this
test mounts) filled and freed, the engine SIGSTOPped and SIGCONTed, a second engine started on
the same database, a filesystem that stays full past SLOB_STORE_GIVE_UP_S (exit status 75, then
a restart as the supervisor would), and a stop requested while the disk is full. Every run is
compared with an uninterrupted run of the same file: the same candles (prices, volume, tick
count: no minute missing, no tick lost), the same setup journal, every order and fill at the
paper broker known to the database (no order unmanaged), and the process gone within its stop
timeout. Faults that do not touch persistence (Redis, SIGSTOP, a second engine) must also leave
the trades identical; a full disk halts new entries, so there only the invariants are compared.

A full disk is not a read-only one: Linux refuses `mount -o remount,ro` (EBUSY) while the engine
holds the database open for writing, so "turned read-only" reaches a running engine only as
refused writes, which the filled tmpfs produces for real (SQLITE_FULL).

By default each fault hits once; `SLOB_RELIABILITY_RUNS=N pytest -m reliability
tests/reliability/test_fault_matrix.py` hits each at N seeded moments.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from slob_tui.node.config import STOP_TIMEOUT_S
from slob_tui.node.node import BACKSTOP_GRACE_S
from tests.reliability.test_crash_restart import NQ, _env, _final, _q
from tests.servers import REDIS, RedisServer, fill_disk, free_port, tmpfs

REPO = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("SLOB_RELIABILITY_RUNS", "1"))
SPEED = 86_400  # the NQ file's 15 days in about 15 s
SLOW = 43_200  # about 30 s: room for a full disk to bite after the WAL's free pages are used
STOP_S = 10.0  # SLOB_STOP_TIMEOUT_S for every run here
MARGIN_S = 10.0  # interpreter start and exit on two shared cores
DEMO_SPEED = 600  # ten market minutes a second
DEMO_S = 30.0


def _moments(kind: str) -> list[float]:
    """Seeded fractions of the run at which the fault hits, one per run."""
    rng = random.Random(f"{kind}-{RUNS}")
    return [round(rng.uniform(0.1, 0.35), 3) for _ in range(RUNS)]


@dataclass
class Engine:
    """A `slob-tui replay` process with its stderr read as it comes (to wait for a line)."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, db: Path, cwd: Path, speed: float | None, **env: str) -> Engine:
        """A replay of the NQ file (`speed` None: flat out)."""
        cmd = [sys.executable, "-m", "slob_tui", "replay", str(_data() / NQ), "--no-ui",
               "--speed", "max" if speed is None else str(speed), "--db", str(db)]  # fmt: skip
        return cls.spawn(cmd, cwd, env)

    @classmethod
    def demo(cls, db: Path, cwd: Path, **env: str) -> Engine:
        """The headless engine on the seeded demo market (the only engine that uses Redis:
        a replay keeps its hot state in its own file)."""
        cmd = [sys.executable, "-m", "slob_tui", "--no-ui", "--seed", "7", "--speed",
               str(DEMO_SPEED), "--db", str(db), "--duration", str(DEMO_S)]  # fmt: skip
        return cls.spawn(cmd, cwd, env)

    @classmethod
    def spawn(cls, cmd: list[str], cwd: Path, env: dict[str, str]) -> Engine:
        full_env = {**_env(), "SLOB_STOP_TIMEOUT_S": str(STOP_S), **env}
        proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        engine = cls(proc)
        threading.Thread(target=engine._read, daemon=True).start()
        return engine

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> float:
        """Until a stderr line contains `text`; the time it was seen (monotonic)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None or any(text in line for line in self.lines), (
                f"the engine exited ({self.proc.returncode}) before {text!r}:\n"
                f"{self.stderr[-3000:]}"
            )
            assert time.monotonic() < deadline, (
                f"no {text!r} within {timeout} s:\n" + (self.stderr[-3000:])
            )
            time.sleep(0.05)
        return time.monotonic()

    def finish(self, within: float) -> int:
        """The exit status; the process must be gone within `within` seconds."""
        try:
            return self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the engine was still alive {within:.0f} s later:\n{self.stderr[-3000:]}")

    def sleep_until(self, seconds: float) -> None:
        time.sleep(max(0.0, self.started + seconds - time.monotonic()))


def _data() -> Path:
    return REPO.parent / "shared" / "data"


def _run_s(speed: float) -> float:
    """Wall seconds a replay at `speed` takes (the file spans 15 days)."""
    return 15 * 86_400 / speed


def _candles(db: Path) -> list[tuple]:
    return _q(db, "SELECT ts_ns, open, high, low, close, volume, tick_count, gap_filled "
                  "FROM candles WHERE symbol = 'NQ' ORDER BY ts_ns")  # fmt: skip


def _setups(db: Path) -> list[tuple]:
    return _q(db, "SELECT * FROM setups ORDER BY setup_id, idx, state")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict:
    """The uninterrupted run, once for the module."""
    folder = tmp_path_factory.mktemp("reference")
    db = folder / "reference.db"
    engine = Engine.start(db, folder, None)
    assert engine.finish(300) == 0, engine.stderr[-2000:]
    final = _final(db)
    assert final["trades"], "the reference run made no trades: nothing would be proven"
    return {"candles": _candles(db), "setups": _setups(db), "final": final}


def _compare(db: Path, reference: dict, *, trades: bool) -> None:
    got = _candles(db)
    ref = reference["candles"]
    missing = sorted({r[0] for r in ref} - {g[0] for g in got})
    assert not missing, f"{len(missing)} minutes missing, first {missing[:3]}"
    assert got == ref, "stored candles differ from the uninterrupted run's"
    assert _setups(db) == reference["setups"], "the setup journal differs"
    final = _final(db)  # every broker order and fill known, no exit leg left without position
    if trades:
        assert final == reference["final"]


class Disk:
    """A tmpfs this test mounts, fills and frees: the real ENOSPC a full disk gives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self) -> None:
        fill_disk(self.filler.parent)

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root: run the fault matrix as root (CI does)")
    with tmpfs(tmp_path / "disk", "24m") as mount:
        yield Disk(mount)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


# ---- faults that do not touch persistence: everything equal, trades too -----------------------
def _demo_run(db: Path) -> dict:
    """What a demo run stored: candles (with tick counts), setups and trades."""
    return {
        "candles": _candles(db),
        "setups": _q(db, "SELECT setup_id, state, idx, symbol, direction, prev_state, reason, "
                         "time, levels FROM setups ORDER BY setup_id, idx, state"),
        "trades": _q(db, "SELECT * FROM trades ORDER BY trade_id"),
    }  # fmt: skip


def _compare_demo(got: dict, ref: dict) -> None:
    """Runs of a duration end at slightly different market minutes (the last one closed by
    the stop, with part of its ticks): before the earlier end, everything is equal; the
    interrupted run covers nearly the whole reference."""
    end = min(got["candles"][-1][0], ref["candles"][-1][0])
    cut = [c for c in ref["candles"] if c[0] < end]
    assert len(cut) >= 0.8 * len(ref["candles"]), "the interrupted run fell far behind"
    assert [c for c in got["candles"] if c[0] < end] == cut, "candles differ or are missing"
    assert [s for s in got["setups"] if s[7] < end] == [s for s in ref["setups"] if s[7] < end]
    done = [t for t in ref["trades"] if t[8] < end]
    assert [t for t in got["trades"] if t[8] < end] == done


@pytest.fixture(scope="module")
def demo_reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("demo-reference")
    engine = Engine.demo(folder / "reference.db", folder)
    assert engine.finish(DEMO_S * 3 + STOP_S + MARGIN_S) == 0, engine.stderr[-2000:]
    ref = _demo_run(folder / "reference.db")
    assert ref["setups"] and ref["trades"], "the demo reference traded nothing"
    return ref


# ---- faults that do not touch persistence: everything equal, trades too -----------------------
@pytest.mark.reliability
@pytest.mark.parametrize("moment", _moments("redis"))
def test_redis_killed_and_restarted(
    moment: float, tmp_path: Path, demo_reference: dict, redis_server: RedisServer
) -> None:
    """Redis is a copy of SQLite: losing it mid-run costs nothing and stops nothing, and the
    copy is rebuilt once it is back."""
    db = tmp_path / "run.db"
    engine = Engine.demo(db, tmp_path, REDIS_URL=redis_server.url)
    engine.sleep_until(2 + moment * DEMO_S * 0.6)
    assert engine.proc.poll() is None, "the run ended before the fault"
    redis_server.kill()
    engine.wait_for("Redis write failed", 15)  # the next hot write (tracker saves: 6 s)
    time.sleep(3)
    redis_server.start()  # empty, as a Redis that lost its data
    engine.wait_for("Redis copy rebuilt from SQLite", 25)
    assert engine.finish(DEMO_S * 3 + STOP_S + MARGIN_S) == 0, engine.stderr[-3000:]
    _compare_demo(_demo_run(db), demo_reference)


@pytest.mark.reliability
@pytest.mark.parametrize("moment", _moments("sigstop"))
def test_sigstop_and_sigcont(moment: float, tmp_path: Path, reference: dict) -> None:
    """A paused VM: nothing is lost, nothing is decided differently."""
    db = tmp_path / "run.db"
    engine = Engine.start(db, tmp_path, SPEED)
    engine.sleep_until(moment * _run_s(SPEED))
    assert engine.proc.poll() is None, "the run ended before the fault"
    engine.proc.send_signal(signal.SIGSTOP)
    time.sleep(5)
    engine.proc.send_signal(signal.SIGCONT)
    assert engine.finish(_run_s(SPEED) * 3 + STOP_S + MARGIN_S) == 0, engine.stderr[-3000:]
    _compare(db, reference, trades=True)


@pytest.mark.reliability
@pytest.mark.parametrize("moment", _moments("second"))
def test_a_second_engine_is_refused_and_the_first_goes_on(
    moment: float, tmp_path: Path, reference: dict
) -> None:
    db = tmp_path / "run.db"
    engine = Engine.start(db, tmp_path, SPEED)
    engine.sleep_until(moment * _run_s(SPEED))
    assert engine.proc.poll() is None, "the run ended before the fault"
    second = Engine.start(db, tmp_path, SPEED)
    assert second.finish(60) == 2, second.stderr[-2000:]
    assert str(engine.proc.pid) in second.stderr, second.stderr
    assert engine.finish(_run_s(SPEED) * 3 + STOP_S + MARGIN_S) == 0, engine.stderr[-3000:]
    _compare(db, reference, trades=True)


# ---- a disk that refuses writes ---------------------------------------------------------------
@pytest.mark.reliability
@pytest.mark.parametrize("moment", _moments("disk"))
def test_disk_full_for_a_while(moment: float, disk: Disk, reference: dict) -> None:
    """Candles queue, trading halts, health and an alert say why; once freed everything is
    written and trading resumes; the run ends as usual (exit 0)."""
    db = disk.path / "run.db"
    engine = Engine.start(db, disk.path.parent, SLOW, SLOB_STORE_GIVE_UP_S="120")
    engine.sleep_until(moment * _run_s(SLOW))
    assert engine.proc.poll() is None, "the run ended before the fault"
    disk.fill()
    engine.wait_for("STORE FAULT", 25)
    assert "TRADING HALTED" in engine.stderr
    time.sleep(3)
    disk.free()
    engine.wait_for("trading resumes", 30)
    assert engine.finish(_run_s(SLOW) * 3 + STOP_S + MARGIN_S) == 0, engine.stderr[-3000:]
    _compare(db, reference, trades=False)


@pytest.mark.reliability
@pytest.mark.parametrize("moment", _moments("give_up"))
def test_disk_full_past_give_up_exits_75_and_a_restart_loses_nothing(
    moment: float, disk: Disk, reference: dict
) -> None:
    give_up = 3.0
    db = disk.path / "run.db"
    engine = Engine.start(db, disk.path.parent, SLOW, SLOB_STORE_GIVE_UP_S=str(give_up))
    engine.sleep_until(moment * _run_s(SLOW))
    assert engine.proc.poll() is None, "the run ended before the fault"
    disk.fill()
    seen = engine.wait_for("STORE FAULT", 25)
    status = engine.finish(give_up + STOP_S + BACKSTOP_GRACE_S + MARGIN_S)
    assert status == 75, engine.stderr[-3000:]
    assert time.monotonic() - seen < give_up + STOP_S + BACKSTOP_GRACE_S + MARGIN_S
    assert re.search(r"slob-tui: error: stopped for a restart: a store stayed unwritable",
                     engine.stderr), engine.stderr[-2000:]  # fmt: skip
    disk.free()
    again = Engine.start(db, disk.path.parent, None)  # the supervisor's restart
    assert again.finish(300) == 0, again.stderr[-3000:]
    _compare(db, reference, trades=False)


@pytest.mark.reliability
@pytest.mark.parametrize("moment", _moments("stop_in_fault"))
def test_a_stop_while_the_disk_is_full_ends_within_the_stop_timeout(
    moment: float, disk: Disk, reference: dict
) -> None:
    """SIGINT while nothing can be written: the queue is retried until the stop timeout, the
    process exits 75 (candles unwritten, for the supervisor); the restart loses nothing."""
    db = disk.path / "run.db"
    engine = Engine.start(db, disk.path.parent, SLOW, SLOB_STORE_GIVE_UP_S="120")
    engine.sleep_until(moment * _run_s(SLOW))
    assert engine.proc.poll() is None, "the run ended before the fault"
    disk.fill()
    engine.wait_for("STORE FAULT", 25)
    asked = time.monotonic()
    engine.proc.send_signal(signal.SIGINT)
    assert engine.finish(STOP_S + BACKSTOP_GRACE_S + MARGIN_S) == 75, engine.stderr[-3000:]
    assert time.monotonic() - asked < STOP_S + BACKSTOP_GRACE_S + MARGIN_S
    disk.free()
    again = Engine.start(db, disk.path.parent, None)
    assert again.finish(300) == 0, again.stderr[-3000:]
    _compare(db, reference, trades=False)


# ---- the stop timeout and the supervisors' ------------------------------------------------------
def _seconds(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*s?\s*", text)
    assert m, text
    return float(m.group(1))


def test_the_supervisors_wait_longer_than_the_engine_may_take_to_stop() -> None:
    """systemd's TimeoutStopSec and compose's stop_grace_period must cover the engine's stop
    timeout plus its backstop, or the supervisor SIGKILLs a stop that was still saving."""
    unit = (REPO / "deploy" / "slob-tui.service").read_text()
    compose = (REPO / "deploy" / "docker-compose.yml").read_text()
    (systemd,) = re.findall(r"^TimeoutStopSec=(.+)$", unit, re.M)
    (grace,) = re.findall(r"stop_grace_period:\s*(\S+)", compose)
    for text, name in ((unit, "systemd"), (compose, "compose")):
        set_here = re.findall(r"SLOB_STOP_TIMEOUT_S[=:]\s*\"?(\d+(?:\.\d+)?)", text)
        stop = max(map(float, set_here), default=STOP_TIMEOUT_S)
        wait = _seconds(systemd if name == "systemd" else grace)
        assert wait >= stop + BACKSTOP_GRACE_S + 5, (name, wait, stop)


STUCK = """
import asyncio, sys, threading, time
from slob_tui.config import load_settings
from slob_tui.node import NodeConfig, TradingNode

async def main():
    settings = load_settings({"SLOB_STOP_TIMEOUT_S": "3"}, dotenv=None)
    node = TradingNode(NodeConfig(db=sys.argv[1], speed=600.0, settings=settings))
    node.install_signal_handlers()
    threading.Thread(target=time.sleep, args=(3600,)).start()  # nothing can cancel it
    await node.run(duration=2)

asyncio.run(main())
print("stopped", flush=True)
"""


def test_a_thread_that_never_ends_cannot_keep_the_process_past_its_stop_timeout(
    tmp_path: Path,
) -> None:
    """The stop finished, but the interpreter would wait for a stuck non-daemon thread for
    ever: the backstop ends the process at the stop timeout plus its grace."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", STUCK, str(tmp_path / "s.db")], cwd=tmp_path,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=2 + 3 + BACKSTOP_GRACE_S + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the process outlived its stop timeout and the backstop")
    assert "stopped" in out, err[-2000:]  # the stop itself completed in time
    assert proc.returncode == 1 and "after the stop began" in err, (proc.returncode, err[-2000:])
    assert time.monotonic() - t0 >= 2 + 3 + BACKSTOP_GRACE_S - 1  # not before its time
