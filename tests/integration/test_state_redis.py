"""The StateManager with a Redis copy of the hot state, against a real redis-server started on
a free loopback port: SQLite is the journal and the truth, Redis a cache rebuilt from it."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from slob_tui.core.retry import RetryPolicy
from slob_tui.storage.errors import StateError
from slob_tui.storage.hot import MirroredHot, RedisHot, SqliteHot
from slob_tui.storage.state import StateManager
from tests.servers import REDIS, RedisServer, free_port
from tests.unit.execution.state_contract import check_contract

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "unversioned.db"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    srv = RedisServer(free_port(), tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture
def redis_url(server: RedisServer) -> str:
    return server.url


def _sqlite_hot(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT 'tracker:' || symbol, state FROM tracker_state "
            "UNION ALL SELECT key, value FROM hot_state"
        ).fetchall()
    conn.close()
    return dict(rows)


def _redis_hot(r: redis.Redis, namespace: str = "slob") -> dict[str, str]:
    keys = sorted(r.keys(f"{namespace}:*"))
    cut = len(namespace) + 1
    return {k[cut:]: r.get(k) for k in keys}


async def test_redis_backend_meets_the_contract(redis_url: str, tmp_path: Path) -> None:
    sm = await StateManager(tmp_path / "slob.db", redis_url=redis_url).open()
    assert sm.backend == "redis"
    await check_contract(sm)
    assert sm.cache_health is not None and not sm.cache_health.stale
    await sm.close()

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert sorted(r.keys("slob:*")) == ["slob:order:b", "slob:tracker:ES", "slob:tracker:NQ"]
    # The hot values are journaled in SQLite too (the truth), and Redis holds the same copy.
    assert _redis_hot(r) == _sqlite_hot(tmp_path / "slob.db")
    with sqlite3.connect(tmp_path / "slob.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone() == (2,)
    conn.close()
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


async def test_redis_down_mid_run_keeps_writes_in_sqlite_then_the_copy_is_rebuilt(
    server: RedisServer, tmp_path: Path
) -> None:
    """Redis write fails, SQLite write succeeded: the write succeeds, the engine reads the new
    value, the copy is marked stale, and a rebuild after Redis returns makes it whole again."""
    db = tmp_path / "slob.db"
    sm = await StateManager(db, redis_url=server.url).open()
    await sm.save_tracker("NQ", {"index": 1})
    await sm.set_value("kill_switch", {"reason": "before"})
    server.kill()

    await sm.save_tracker("NQ", {"index": 2})  # no exception: SQLite has it
    await sm.set_value("kill_switch", {"reason": "during"})
    await sm.clear_value("kill_switch")
    await sm.set_value("halt", {"reason": "during"})
    health = sm.cache_health
    assert health is not None and health.stale and health.failures >= 1
    assert "Connection" in (health.last_error or "")
    assert await sm.load_trackers() == {"NQ": {"index": 2}}  # reads never come from the cache
    assert await sm.get_value("kill_switch") is None
    assert await sm.get_value("halt") == {"reason": "during"}

    server.start()  # empty, as a Redis that lost its data
    r = server.client()
    assert _redis_hot(r) == {}
    assert isinstance(sm.hot, MirroredHot)
    assert await sm.hot.resync() is True
    assert not health.stale and health.rebuilds == 1
    assert (
        _redis_hot(r)
        == _sqlite_hot(db)
        == {
            "tracker:NQ": '{"index":2}',
            "value:halt": '{"reason":"during"}',
        }
    )
    await sm.close()
    r.close()


async def test_a_stale_copy_is_rebuilt_by_the_next_write_once_its_retry_time_has_come(
    server: RedisServer, tmp_path: Path
) -> None:
    db = tmp_path / "slob.db"
    sm = await StateManager(db).open()  # the journal; the mirror is built by hand below
    now = [0.0]
    policy = RetryPolicy(base_s=10, cap_s=10)
    mirror = MirroredHot(SqliteHot(sm), RedisHot(server.url), sm, policy, clock=lambda: now[0])
    hot = await mirror.open()
    server.kill()
    await hot.put("value:a", 1)
    assert hot.health.stale and hot.health.failures == 1
    server.start()
    await hot.put("value:b", 2)  # before the retry time: SQLite only, no attempt on Redis
    assert hot.health.failures == 1 and _redis_hot(server.client()) == {}
    now[0] = 10.0  # the retry time (at most base_s) has passed
    await hot.put("value:c", 3)
    assert not hot.health.stale
    assert _redis_hot(server.client()) == {"value:a": "1", "value:b": "2", "value:c": "3"}
    await hot.close()
    await sm.close()


async def test_sqlite_write_fails_redis_is_not_touched(server: RedisServer, tmp_path: Path) -> None:
    """SQLite write fails: the caller gets the error and neither store holds the new value."""
    db = tmp_path / "slob.db"
    sm = await StateManager(db, redis_url=server.url).open()
    await sm.set_value("kill_switch", {"reason": "old"})
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE UPDATE ON hot_state "
                     "BEGIN SELECT RAISE(ABORT, 'disk refused by test'); END")  # fmt: skip
        conn.execute("CREATE TRIGGER refuse_new BEFORE INSERT ON hot_state "
                     "WHEN EXISTS (SELECT 1 FROM hot_state WHERE key = NEW.key) "
                     "BEGIN SELECT RAISE(ABORT, 'disk refused by test'); END")  # fmt: skip
    conn.close()
    with pytest.raises(StateError, match="disk refused by test"):
        await sm.set_value("kill_switch", {"reason": "new"})
    assert sm.health.failing
    assert await sm.get_value("kill_switch") == {"reason": "old"}
    r = server.client()
    assert r.get("slob:value:kill_switch") == '{"reason":"old"}'
    assert sm.cache_health is not None and not sm.cache_health.stale
    await sm.close()
    r.close()


async def test_open_rebuilds_the_copy_from_sqlite(server: RedisServer, tmp_path: Path) -> None:
    """Whatever Redis holds at open (a key SQLite deleted while Redis was down, a value changed
    by hand) gives way to SQLite."""
    db = tmp_path / "slob.db"
    sm = await StateManager(db, redis_url=server.url).open()
    await sm.save_tracker("NQ", {"index": 5})
    await sm.close()
    r = server.client()
    r.set("slob:value:kill_switch", '{"reason":"left over"}')
    r.set("slob:tracker:NQ", '{"index":0}')
    again = await StateManager(db, redis_url=server.url).open()
    assert await again.get_value("kill_switch") is None
    assert _redis_hot(r) == {"tracker:NQ": '{"index":5}'}
    await again.close()
    r.close()


async def test_hot_state_that_lived_in_redis_only_is_imported_once(
    server: RedisServer, tmp_path: Path
) -> None:
    """Before schema version 2, with REDIS_URL the hot values lived in Redis only: the first
    open copies them into SQLite (SQLite's rows win), so upgrading loses none of them."""
    db = tmp_path / "slob.db"
    shutil.copy(FIXTURE, db)  # written by the code before versions; its hot rows are in SQLite
    r = server.client()
    r.set("slob:tracker:ES", '{"version":1,"index":7}')  # as the old RedisHot wrote them
    r.set("slob:value:paper_book", '{"cash":100000.0}')
    r.set("slob:value:kill_switch", '{"reason":"redis copy"}')  # SQLite has its own: it wins
    sm = await StateManager(db, redis_url=server.url).open()
    assert sorted(await sm.load_trackers()) == ["ES", "NQ"]
    assert await sm.get_value("paper_book") == {"cash": 100000.0}
    assert (await sm.get_value("kill_switch"))["reason"] == "fixture"
    await sm.clear_value("paper_book")
    await sm.close()
    assert _redis_hot(r) == _sqlite_hot(db)

    r.set("slob:value:paper_book", '{"cash":1.0}')  # a stale copy: not imported a second time
    again = await StateManager(db, redis_url=server.url).open()
    assert await again.get_value("paper_book") is None
    await again.close()
    assert _redis_hot(r) == _sqlite_hot(db)
    r.close()


async def test_a_new_database_is_never_seeded_from_keys_left_in_redis(
    server: RedisServer, tmp_path: Path
) -> None:
    """A database deleted to start afresh must not get its old open orders or kill switch back
    from Redis: only a file from before schema version 2 imports; the rebuild drops the rest."""
    r = server.client()
    r.set("slob:value:kill_switch", '{"reason":"old database"}')
    r.set("slob:order:gone", '{"order":{},"info":{}}')
    sm = await StateManager(tmp_path / "new.db", redis_url=server.url).open()
    assert await sm.get_value("kill_switch") is None
    assert await sm.open_order_mirror() == []
    assert _redis_hot(r) == {}
    await sm.close()
    r.close()
