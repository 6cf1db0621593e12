"""The hot-state backends behind `StateManager`: SQLite tables in the journal's file, or Redis.

Split from `state.py` so the journal (SQL over the orders, fills and trades) and the key-value
hot state (tracker state, live setups, open orders, flags) can be read apart; `StateManager`
picks one backend in `open()` and is the only user. The Redis client is imported only when a
`REDIS_URL` is given.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from slob_tui.storage.state import StateManager


class HotStore(Protocol):
    async def get(self, key: str) -> Any | None: ...

    async def put(self, key: str, value: Any) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def keys(self, prefix: str) -> list[str]: ...

    async def close(self) -> None: ...


class SqliteHot:
    """Hot state in the journal's file: `tracker:*` keys in `tracker_state`, others in
    `hot_state`."""

    def __init__(self, sm: StateManager) -> None:
        self._sm = sm

    async def get(self, key: str) -> Any | None:
        if key.startswith("tracker:"):
            row = await self._sm.fetchone(
                "SELECT state FROM tracker_state WHERE symbol = ?", (key[8:],))
        else:
            row = await self._sm.fetchone("SELECT value FROM hot_state WHERE key = ?", (key,))
        return None if row is None else json.loads(row[0])

    async def put(self, key: str, value: Any) -> None:
        text = json.dumps(value, separators=(",", ":"))
        if key.startswith("tracker:"):
            await self._sm.write("INSERT OR REPLACE INTO tracker_state VALUES (?, ?, ?)",
                                 (key[8:], text, int(datetime.now(UTC).timestamp())))
        else:
            await self._sm.write("INSERT OR REPLACE INTO hot_state VALUES (?, ?)", (key, text))

    async def delete(self, key: str) -> None:
        if key.startswith("tracker:"):
            await self._sm.write("DELETE FROM tracker_state WHERE symbol = ?", (key[8:],))
        else:
            await self._sm.write("DELETE FROM hot_state WHERE key = ?", (key,))

    async def keys(self, prefix: str) -> list[str]:
        if prefix.startswith("tracker:"):
            rows = await self._sm.fetchall("SELECT 'tracker:' || symbol FROM tracker_state")
        else:
            rows = await self._sm.fetchall(
                "SELECT key FROM hot_state WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))
        return sorted(r[0] for r in rows if r[0].startswith(prefix))

    async def close(self) -> None:
        return None


class RedisHot:
    """Hot state in Redis (`REDIS_URL`): every key is `<namespace>:<key>`, a JSON string."""

    def __init__(self, url: str, namespace: str = "slob") -> None:
        import redis.asyncio as aioredis

        self._r = aioredis.from_url(url, decode_responses=True)
        self._ns = namespace

    async def ping(self) -> None:
        await self._r.ping()

    async def get(self, key: str) -> Any | None:
        raw = await self._r.get(f"{self._ns}:{key}")
        return None if raw is None else json.loads(raw)

    async def put(self, key: str, value: Any) -> None:
        await self._r.set(f"{self._ns}:{key}", json.dumps(value, separators=(",", ":")))

    async def delete(self, key: str) -> None:
        await self._r.delete(f"{self._ns}:{key}")

    async def keys(self, prefix: str) -> list[str]:
        cut = len(self._ns) + 1
        found = [k[cut:] async for k in self._r.scan_iter(match=f"{self._ns}:{prefix}*")]
        return sorted(found)

    async def close(self) -> None:
        await self._r.aclose()
