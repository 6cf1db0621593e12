"""The StateManager with hot state in a real redis-server started on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slob_tui.storage.state import StateManager
from tests.unit.execution.state_contract import check_contract

REDIS = shutil.which("redis-server")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    if REDIS is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_redis_backend_meets_the_contract(redis_url: str, tmp_path: Path) -> None:
    sm = await StateManager(tmp_path / "slob.db", redis_url=redis_url).open()
    assert sm.backend == "redis"
    await check_contract(sm)
    await sm.close()
    import redis

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = sorted(r.keys("slob:*"))
    assert keys == ["slob:order:b", "slob:tracker:ES", "slob:tracker:NQ"]
    with sqlite3.connect(tmp_path / "slob.db") as conn:  # hot state went to Redis only
        assert conn.execute("SELECT COUNT(*) FROM tracker_state").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM hot_state").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone() == (2,)
    again = await StateManager(tmp_path / "slob.db", redis_url=redis_url).open()
    assert sorted(await again.load_trackers()) == ["ES", "NQ"]
    assert (await again.get_order("a")).order.filled_qty == 2  # the journal stays in SQLite
    await again.close()
    r.close()


async def test_namespaces_keep_two_engines_apart(redis_url: str, tmp_path: Path) -> None:
    a = await StateManager(tmp_path / "a.db", redis_url=redis_url, namespace="acct-a").open()
    b = await StateManager(tmp_path / "b.db", redis_url=redis_url, namespace="acct-b").open()
    await a.save_tracker("NQ", {"index": 1})
    assert await b.load_trackers() == {}
    await a.close()
    await b.close()
