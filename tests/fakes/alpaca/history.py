"""Historical trades over REST (`/v2/stocks/trades`, `/v1beta3/crypto/us/trades`), paged.

The tape's trades in [start, end] (end inclusive, as Alpaca's), oldest first, `limit` per page
and `next_page_token` until the last page. `history_failures` (on the server) answers that many
trade requests with 500 before serving again: an interruption a download must survive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .trades import parse_time, rfc3339

if TYPE_CHECKING:
    from .server import LocalAlpaca

TRADE_PATHS = ("/v2/stocks/trades", "/v1beta3/crypto/us/trades")
Reply = tuple[int, Any]


def served(srv: LocalAlpaca) -> int:
    """Trade history requests answered with data so far."""
    return int(getattr(srv, "history_requests", 0))


def trades(srv: LocalAlpaca, q: dict[str, str]) -> Reply:
    failures = getattr(srv, "history_failures", 0)
    if failures > 0:
        srv.history_failures = failures - 1
        return 500, {"code": 50010000, "message": "internal server error"}
    try:
        start = parse_time(q["start"]) if "start" in q else 0
        end = parse_time(q["end"]) if "end" in q else 2**62
        limit = int(q.get("limit") or "1000")
        offset = int(q.get("page_token") or 0)
    except (ValueError, KeyError):
        return 400, {"code": 40010000, "message": "invalid start, end, limit or page_token"}
    if not 1 <= limit <= 10_000:
        return 400, {"code": 40010000, "message": "invalid limit: 1 to 10000"}
    symbols = [s for s in q.get("symbols", "").split(",") if s]
    if not symbols:
        return 400, {"code": 40010000, "message": "symbols is required"}
    wanted = set(symbols)
    rows = [t for t in srv.tape if t.symbol in wanted and start <= t.ts <= end]
    page = rows[offset : offset + limit]
    out: dict[str, list[dict[str, Any]]] = {}
    for t in page:
        out.setdefault(t.symbol, []).append(
            {
                "t": rfc3339(t.ts),
                "x": t.exchange,
                "p": t.price,
                "s": t.size,
                "c": list(t.conditions),
                "i": t.id,
                "z": "B",
            }  # fmt: skip
        )
    token = str(offset + limit) if offset + limit < len(rows) else None
    srv.history_requests = getattr(srv, "history_requests", 0) + 1
    return 200, {"trades": out, "next_page_token": token}
