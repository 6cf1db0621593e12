"""The hot state behind `StateManager`: tracker state, live setups, open orders, small values.

The rule: **SQLite is the journal and the source of truth; Redis is a cache of it.** The hot
values always live in the journal's file (tables `tracker_state` and `hot_state`, `SqliteHot`).
With a `REDIS_URL`, `MirroredHot` also keeps a copy of them in Redis, for other processes to read
(a dashboard, a second tool), and rebuilds that copy from SQLite at open. The engine itself
always reads SQLite, so a cache that is behind can never steer it.

One write, two stores, in this order:
- SQLite first. If it fails, the error reaches the caller and Redis is not touched: both still
  hold the old value, nothing disagrees.
- Then Redis. If that fails, the value is already durable, so the write succeeds; the cache is
  marked stale (`CacheHealth`), and after a pause under the project's `RetryPolicy` the next write
  rebuilds the whole namespace from SQLite (`resync`). Until then Redis readers may see older
  values; the engine does not.

Before schema version 2, with `REDIS_URL` set, the hot state lived in Redis only. The first open
of a file from then with a namespace copies that namespace's Redis keys into SQLite once
(SQLite's own rows win) and records the namespace in `hot_cache`, so upgrading loses nothing. A
file made since is never seeded from Redis: keys left in Redis by a deleted database must not
come back as open orders or a kill switch; the rebuild at open removes them.

Depends on the journal only through `SqlRunner` (three methods), not on `StateManager`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from slob_tui.core.retry import Backoff, RetryPolicy

log = logging.getLogger(__name__)

TRACKER_PREFIX = "tracker:"
REDIS_TIMEOUT_S = 2.0  # a cache that hangs must not hold the engine's writes for long
CACHE_RETRY = RetryPolicy(base_s=1.0, cap_s=60.0)


class SqlRunner(Protocol):
    """The journal's SQL calls (`StateManager` has them): one statement, its own transaction."""

    async def write(self, sql: str, params: tuple[Any, ...] = ()) -> int: ...

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> Any: ...

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...


class HotStore(Protocol):
    """Key-value hot state: JSON values under `tracker:`, `setup:`, `order:`, `value:` keys."""

    async def get(self, key: str) -> Any | None: ...

    async def put(self, key: str, value: Any) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def keys(self, prefix: str) -> list[str]: ...

    async def close(self) -> None: ...


class JsonText(str):
    """A value already encoded as JSON: stored as it is (see `TrackerStateText`)."""

    __slots__ = ()


def _dumps(value: Any) -> str:
    if isinstance(value, JsonText):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


class SqliteHot:
    """Hot state in the journal's file: `tracker:*` keys in `tracker_state`, others in
    `hot_state`."""

    def __init__(self, db: SqlRunner) -> None:
        self._db = db

    async def get(self, key: str) -> Any | None:
        if key.startswith(TRACKER_PREFIX):
            row = await self._db.fetchone(
                "SELECT state FROM tracker_state WHERE symbol = ?", (key[len(TRACKER_PREFIX) :],)
            )
        else:
            row = await self._db.fetchone("SELECT value FROM hot_state WHERE key = ?", (key,))
        return None if row is None else json.loads(row[0])

    async def put(self, key: str, value: Any) -> None:
        await self.put_text(key, _dumps(value))

    async def put_text(self, key: str, text: str, replace: bool = True) -> None:
        """Store an already encoded value; `replace=False` keeps a row that exists."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        if key.startswith(TRACKER_PREFIX):
            now = int(datetime.now(UTC).timestamp())
            await self._db.write(
                f"{verb} INTO tracker_state VALUES (?, ?, ?)",
                (key[len(TRACKER_PREFIX) :], text, now),
            )
        else:
            await self._db.write(f"{verb} INTO hot_state VALUES (?, ?)", (key, text))

    async def delete(self, key: str) -> None:
        if key.startswith(TRACKER_PREFIX):
            await self._db.write(
                "DELETE FROM tracker_state WHERE symbol = ?", (key[len(TRACKER_PREFIX) :],)
            )
        else:
            await self._db.write("DELETE FROM hot_state WHERE key = ?", (key,))

    async def keys(self, prefix: str) -> list[str]:
        if prefix.startswith(TRACKER_PREFIX):
            rows = await self._db.fetchall("SELECT 'tracker:' || symbol FROM tracker_state")
        else:
            rows = await self._db.fetchall(
                "SELECT key FROM hot_state WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            )
        return sorted(r[0] for r in rows if r[0].startswith(prefix))

    async def items(self) -> dict[str, str]:
        """Every hot key with its encoded value: what the cache is rebuilt from."""
        rows = await self._db.fetchall(
            "SELECT 'tracker:' || symbol, state FROM tracker_state "
            "UNION ALL SELECT key, value FROM hot_state"
        )
        return {k: v for k, v in rows}

    async def close(self) -> None:
        return None


class RedisHot:
    """Hot state in Redis (`REDIS_URL`): every key is `<namespace>:<key>`, a JSON string."""

    def __init__(self, url: str, namespace: str = "slob") -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No retries inside the client: a failed call is reported at once, and the cache's own
        # backoff (CACHE_RETRY) decides when to try again.
        self._r = aioredis.from_url(
            url,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
        self.namespace = namespace

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    async def ping(self) -> None:
        await self._r.ping()

    async def get(self, key: str) -> Any | None:
        raw = await self._r.get(self._key(key))
        return None if raw is None else json.loads(raw)

    async def put(self, key: str, value: Any) -> None:
        await self._r.set(self._key(key), _dumps(value))

    async def delete(self, key: str) -> None:
        await self._r.delete(self._key(key))

    async def keys(self, prefix: str) -> list[str]:
        cut = len(self.namespace) + 1
        found = [k[cut:] async for k in self._r.scan_iter(match=self._key(prefix) + "*")]
        return sorted(found)

    async def items(self) -> dict[str, str]:
        """Every key of the namespace with its encoded value."""
        keys = await self.keys("")
        values = await self._r.mget([self._key(k) for k in keys]) if keys else []
        return {
            k: v.decode() if isinstance(v, bytes) else v
            for k, v in zip(keys, values, strict=True)
            if v is not None
        }

    async def replace_all(self, items: dict[str, str]) -> None:
        """Make the namespace hold exactly `items`, in one MULTI/EXEC transaction."""
        stale = [self._key(k) for k in await self.keys("") if k not in items]
        async with self._r.pipeline(transaction=True) as pipe:
            if stale:
                pipe.delete(*stale)
            if items:
                pipe.mset({self._key(k): v for k, v in items.items()})
            await pipe.execute()

    async def close(self) -> None:
        await self._r.aclose()


@dataclass(slots=True)
class CacheHealth:
    """Whether the Redis copy is known to match SQLite, for health reports and alerts."""

    stale: bool = False
    failures: int = 0  # cache writes or rebuilds that failed, in all
    last_error: str | None = None
    rebuilds: int = 0


class MirroredHot:
    """Hot state in SQLite (the truth) with a Redis copy; reads come from SQLite."""

    def __init__(
        self,
        journal: SqliteHot,
        cache: RedisHot,
        db: SqlRunner,
        policy: RetryPolicy = CACHE_RETRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.journal = journal
        self.cache = cache
        self.health = CacheHealth()
        self._db = db
        self._clock = clock
        self._backoff: Backoff = policy.start()
        self._retry_at = 0.0

    async def open(self) -> MirroredHot:
        """Import a namespace's keys from before version 2 once, then rebuild the cache from
        SQLite; the caller has checked that Redis answers."""
        namespace = self.cache.namespace
        legacy = await self._db.fetchone(
            "SELECT 1 FROM store_meta WHERE key = 'hot_state_before_versions'"
        )
        seen = await self._db.fetchone("SELECT 1 FROM hot_cache WHERE namespace = ?", (namespace,))
        if legacy is not None and seen is None:
            copied = await self.cache.items()
            for key, text in copied.items():
                await self.journal.put_text(key, text, replace=False)
            if copied:
                log.info("hot state: %d Redis key(s) of %r copied into SQLite", len(copied),
                         namespace)  # fmt: skip
        if seen is None:
            await self._db.write(
                "INSERT OR IGNORE INTO hot_cache VALUES (?, ?)",
                (namespace, int(datetime.now(UTC).timestamp())),
            )
        await self.cache.replace_all(await self.journal.items())
        return self

    async def get(self, key: str) -> Any | None:
        return await self.journal.get(key)

    async def keys(self, prefix: str) -> list[str]:
        return await self.journal.keys(prefix)

    async def put(self, key: str, value: Any) -> None:
        await self.journal.put(key, value)  # raises: nothing was changed anywhere
        if await self._cache_usable():
            try:
                await self.cache.put(key, value)
            except Exception as exc:  # noqa: BLE001 - any Redis failure only makes the copy stale
                self._cache_failed(exc)

    async def delete(self, key: str) -> None:
        await self.journal.delete(key)
        if await self._cache_usable():
            try:
                await self.cache.delete(key)
            except Exception as exc:  # noqa: BLE001 - as in put
                self._cache_failed(exc)

    async def resync(self) -> bool:
        """Rebuild the Redis copy from SQLite; True when the copy matches again."""
        try:
            await self.cache.replace_all(await self.journal.items())
        except Exception as exc:  # noqa: BLE001 - as in put
            self._cache_failed(exc)
            return False
        self.health.stale = False
        self.health.rebuilds += 1
        self._backoff.succeeded()
        log.info("hot state: Redis copy rebuilt from SQLite")
        return True

    async def _cache_usable(self) -> bool:
        """True when a write may go to Redis: the copy is current, or it was stale and its
        retry time has come and a rebuild (which includes this write) succeeded just now."""
        if not self.health.stale:
            return True
        if self._clock() >= self._retry_at:
            await self.resync()
        return False  # a successful rebuild already holds the value SQLite has now

    def _cache_failed(self, exc: Exception) -> None:
        if not self.health.stale:
            log.warning("hot state: Redis write failed (%s); SQLite has the value, the Redis "
                        "copy is stale until rebuilt", type(exc).__name__)  # fmt: skip
        self.health.stale = True
        self.health.failures += 1
        self.health.last_error = f"{type(exc).__name__}: {exc}"
        self._backoff.failed()
        self._retry_at = self._clock() + self._backoff.next_delay()

    async def close(self) -> None:
        await self.cache.close()
