"""DatabaseLock with real processes: a second one is refused with the first one's pid, and the
kernel frees the lock when the holder is SIGKILLed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from slob_tui.errors import SlobError
from slob_tui.storage.errors import DatabaseLockedError
from slob_tui.storage.lock import DatabaseLock, lock_path

# Takes the lock, says so, then holds it until killed (or stdin closes).
HOLDER = """
import sys
from slob_tui.storage.lock import DatabaseLock
lock = DatabaseLock(sys.argv[1]).acquire()
print("locked", flush=True)
sys.stdin.read()
"""

# Tries once; prints the one line a user would see and exits 2 like the command line.
CONTENDER = """
import sys
from slob_tui.storage.lock import DatabaseLock
from slob_tui.errors import SlobError
try:
    DatabaseLock(sys.argv[1]).acquire()
except SlobError as exc:
    print(exc)
    sys.exit(2)
print("acquired")
"""


def _holder(db: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"  # blocks until the lock is held
    return proc


def _contend(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CONTENDER, str(db)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_a_second_process_is_refused_naming_the_holders_pid(tmp_path: Path) -> None:
    db = tmp_path / "slob.db"
    holder = _holder(db)
    try:
        second = _contend(db)
        assert second.returncode == 2, second.stderr
        assert f"pid {holder.pid}" in second.stdout and str(db) in second.stdout
        assert second.stdout.count("\n") == 1  # one line
        with pytest.raises(DatabaseLockedError, match=f"pid {holder.pid}"):
            DatabaseLock(db).acquire()  # this process too
        assert DatabaseLock(db).holder() == holder.pid
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_sigkill_of_the_holder_frees_the_lock(tmp_path: Path) -> None:
    db = tmp_path / "slob.db"
    holder = _holder(db)
    os.kill(holder.pid, signal.SIGKILL)
    assert holder.wait(timeout=10) == -signal.SIGKILL
    assert lock_path(db).exists()  # the file stays; the kernel dropped the lock with the process
    after = _contend(db)
    assert (after.returncode, after.stdout.strip()) == (0, "acquired")
    with DatabaseLock(db) as lock:
        assert lock.held and lock.holder() == os.getpid()
        assert "in use" in _contend(db).stdout
    assert not lock.held
    assert _contend(db).returncode == 0  # released on exit from the block


def test_readers_are_not_blocked_by_the_lock(tmp_path: Path) -> None:
    db = tmp_path / "slob.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    holder = _holder(db)
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as reader:
            assert reader.execute("SELECT x FROM t").fetchall() == [(1,)]
        reader.close()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_an_unusable_lock_folder_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SlobError, match="cannot create the lock file"):
        DatabaseLock(blocker / "sub" / "slob.db").acquire()
