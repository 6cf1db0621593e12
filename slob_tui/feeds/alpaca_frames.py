"""Alpaca market-data frames to tick tuples, without one object or event per trade.

Alpaca batches many messages into one frame (a msgpack or JSON array). msgpack timestamps are
decoded by `msgpack.unpackb(..., timestamp=2)` straight to integer nanoseconds; JSON carries
RFC 3339 strings with nine fractional digits, which `datetime.fromisoformat` rejects on
Python 3.11, so they are parsed here by hand. A malformed message is counted, never raised.
A msgpack frame made only of well-formed stock trades, or only of crypto trades (the bulk of a
busy stream), is decoded as a whole without a dict per trade and checked column by column
(`alpaca_fastframes`); every other frame goes message by message (`_parse_each`), and both give
the same result.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import msgpack

from slob_tui.feeds.alpaca_fastframes import (
    _VALID_CONDITIONS,
    _remember_conditions,
    trade_frame_ticks,
)

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})\Z"
)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_rfc3339_ns(text: str) -> int:
    """`2021-02-22T15:51:45.335689322Z` -> integer ns since the epoch (UTC).

    Raises ValueError on anything that is not a valid RFC 3339 timestamp.
    """
    m = _RFC3339.match(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text[:40]!r}")
    y, mo, d, hh, mi, ss = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if not 1 <= mo <= 12:
        raise ValueError(f"month out of range in {text[:40]!r}")
    leap = mo == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if not 1 <= d <= _DAYS_IN_MONTH[mo - 1] + leap or hh > 23 or mi > 59 or ss > 59:
        raise ValueError(f"field out of range in {text[:40]!r}")
    frac = m.group(7) or ""
    tz = m.group(8)
    offset = 0
    if tz not in ("Z", "z"):
        oh, om = int(tz[1:3]), int(tz[4:6])
        if oh > 23 or om > 59:
            raise ValueError(f"offset out of range in {text[:40]!r}")
        offset = (oh * 3600 + om * 60) * (1 if tz[0] == "+" else -1)
    seconds = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - offset
    return seconds * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)


def format_rfc3339_ns(ns: int) -> str:
    """Integer ns -> `YYYY-MM-DDTHH:MM:SS.fffffffffZ` (what Alpaca's JSON frames carry)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    days, rem = divmod(seconds, 86400)
    # civil_from_days (inverse of _days_from_civil)
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    mo = mp + (3 if mp < 10 else -9)
    y = yoe + era * 400 + (mo <= 2)
    hh, rem = divmod(rem, 3600)
    mi, ss = divmod(rem, 60)
    return f"{y:04d}-{mo:02d}-{d:02d}T{hh:02d}:{mi:02d}:{ss:02d}.{frac:09d}Z"


class FrameError(ValueError):
    """A frame that is not an array of messages in either framing."""


def decode_frame(frame: bytes | str) -> list[Any]:
    """Decode one frame: bytes are msgpack (timestamps to int ns), text is JSON."""
    try:
        if isinstance(frame, bytes | bytearray | memoryview):
            msgs = msgpack.unpackb(frame, timestamp=2, raw=False, strict_map_key=False)
        else:
            msgs = json.loads(frame)
    except Exception as exc:  # noqa: BLE001 - msgpack raises many unrelated types
        raise FrameError(f"undecodable frame: {type(exc).__name__}") from None
    if not isinstance(msgs, list):
        raise FrameError(f"frame is a {type(msgs).__name__}, not an array")
    return msgs


def _number(v: Any) -> float:
    if type(v) is bool or not isinstance(v, int | float):
        raise TypeError("not a number")
    f = float(v)
    if not math.isfinite(f):
        raise ValueError("not finite")
    return f


def _symbol_and_time(m: dict[str, Any]) -> tuple[str, int]:
    """A message's `S` and `t` (msgpack int ns or an RFC 3339 string); raises on bad ones."""
    sym = m["S"]
    if not isinstance(sym, str) or not sym:
        raise TypeError("bad symbol")
    ts = m["t"]
    if type(ts) is not int:
        if not isinstance(ts, str):
            raise TypeError("bad timestamp")
        ts = parse_rfc3339_ns(ts)
    return sym, ts


def _correction_tuple(m: dict[str, Any]) -> tuple[Any, ...]:
    """Alpaca's cancel (`x`) or correction (`c`) of an earlier trade -> (symbol, ts, trade id,
    exchange, corrected), `corrected` being None for a cancel or (price, size, conditions)."""
    sym, ts = _symbol_and_time(m)
    exchange = m.get("x") or ""
    if not isinstance(exchange, str):
        raise TypeError("bad exchange")
    if m["T"] == "x":
        trade_id, corrected = m["i"], None
    else:
        trade_id = m["oi"]
        raw_c = m.get("cc") or []
        if not (isinstance(raw_c, list) and all(isinstance(c, str) for c in raw_c)):
            raise TypeError("bad conditions")
        price, size = _number(m["cp"]), _number(m["cs"])
        if price <= 0 or size < 0:
            raise ValueError("price or size out of range")
        corrected = (price, size, tuple(raw_c))
    if type(trade_id) is bool or not isinstance(trade_id, int | str):
        raise TypeError("bad trade id")
    return (sym, ts, trade_id, exchange, corrected)


def _trade_tuple(m: dict[str, Any]) -> tuple[Any, ...]:
    """One trade message -> a tick tuple in `Tick` field order; raises on bad fields."""
    sym, ts = _symbol_and_time(m)
    price = _number(m["p"])
    size = _number(m["s"])
    if price <= 0 or size < 0:
        raise ValueError("price or size out of range")
    raw_c = m.get("c")
    if raw_c is None:
        conds: tuple[str, ...] = ()
    elif isinstance(raw_c, list) and all(isinstance(c, str) for c in raw_c):
        conds = tuple(raw_c)
    else:
        raise TypeError("bad conditions")
    exchange = m.get("x") or ""
    if not isinstance(exchange, str):
        raise TypeError("bad exchange")
    trade_id = m.get("i")
    if trade_id is not None and (type(trade_id) is bool or not isinstance(trade_id, int | str)):
        raise TypeError("bad trade id")
    return (sym, ts, price, size, exchange, conds, trade_id)


_INF = float("inf")


def _known(conds: tuple[Any, ...], valid: dict[tuple[str, ...], tuple[str, ...]]) -> bool:
    try:
        return conds in valid
    except TypeError:  # an unhashable element: not a list of codes
        return False


@dataclass(slots=True)
class ParsedFrame:
    """What one frame held: tick tuples, control messages (success, error, subscription)."""

    ticks: list[tuple[Any, ...]] = field(default_factory=list)
    controls: list[dict[str, Any]] = field(default_factory=list)
    messages: int = 0
    rejected: int = 0
    corrections: list[tuple[Any, ...]] = field(default_factory=list)  # cancels, corrections


CONTROL_TYPES = frozenset({"success", "error", "subscription"})


def parse_frame(frame: bytes | str) -> ParsedFrame:
    """Decode a frame and split it; never raises: bad frames and messages are counted.

    A msgpack frame of well-formed stock or crypto trades (what a busy stream sends) takes the
    frame-at-once path; any other frame, or one that path cannot vouch for, goes message by
    message, which alone decides what is rejected.
    """
    if type(frame) is bytes:
        ticks = trade_frame_ticks(frame)
        if ticks is not None:
            return ParsedFrame(ticks, [], len(ticks), 0)
    return _parse_each(frame)


def _parse_each(frame: bytes | str) -> ParsedFrame:
    """The per-message path: every message checked on its own, malformed ones counted."""
    out = ParsedFrame()
    try:
        msgs = decode_frame(frame)
    except FrameError:
        out.rejected = 1
        out.messages = 1
        return out
    out.messages = len(msgs)
    ticks = out.ticks
    append = ticks.append
    valid_conds = _VALID_CONDITIONS
    for m in msgs:
        if type(m) is not dict:
            out.rejected += 1
            continue
        kind = m.get("T")
        if kind == "t":
            # fast path: the shape every well-formed msgpack trade has
            ts = m.get("t")
            p = m.get("p")
            sym = m.get("S")
            c = m.get("c")
            if (
                type(ts) is int
                and type(p) is float
                and 0.0 < p < _INF
                and type(sym) is str
                and sym
                and type(c) is list
            ):
                size = m.get("s")
                conds = tuple(c)
                x = m.get("x")
                i = m.get("i")
                if (
                    (type(size) is int or type(size) is float)
                    and 0 <= size < _INF
                    and (_known(conds, valid_conds) or _remember_conditions(conds))
                    and type(x) is str
                    and (i is None or type(i) is int or type(i) is str)
                ):
                    append((sym, ts, p, float(size), x, conds, i))
                    continue
            try:
                append(_trade_tuple(m))
            except (KeyError, TypeError, ValueError, OverflowError):
                out.rejected += 1
        elif not isinstance(kind, str):
            out.rejected += 1
        elif kind in CONTROL_TYPES:
            out.controls.append(m)
        elif kind == "c" or kind == "x":  # trades come with their corrections and cancels
            try:
                out.corrections.append(_correction_tuple(m))
            except (KeyError, TypeError, ValueError, OverflowError):
                out.rejected += 1
        # other channels (bars, quotes, statuses) are not subscribed: ignored
    return out
