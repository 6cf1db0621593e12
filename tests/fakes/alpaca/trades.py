"""Trades for the local Alpaca: the SPY tape of a real day, or synthetic FAKEPACA prints.

AlgoSeek's numeric `condition` codes become Alpaca-style sale-condition lists so that the
client's SIP policy leaves out the same prints the data README measured (odd lots and
out-of-sequence prints do not set open/high/low/close; their size still counts as volume):

| AlgoSeek code                 | Alpaca `c`   | meaning                         |
|-------------------------------|--------------|---------------------------------|
| 20, 20000020                  | ["@", "I"]   | odd lot                         |
| 20100000, 20100200            | ["@", "Z"]   | sold out of sequence            |
| any other code                | ["@"]        | regular sale                    |

A print flagged `suspicious` also gets "Z", since it must not set OHLC either.
Bars served over REST are built from the same trades with the same rule (`EXCLUDED`).
"""

from __future__ import annotations

import csv
import gzip
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

NS_MIN = 60_000_000_000
ODD_LOT_CODES = frozenset({"20", "20000020"})
OUT_OF_SEQUENCE_CODES = frozenset({"20100000", "20100200"})
EXCLUDED = frozenset({"I", "Z"})


class Trade(NamedTuple):
    symbol: str
    ts: int
    price: float
    size: int
    exchange: str
    conditions: tuple[str, ...]
    id: int


def rfc3339(ns: int) -> str:
    """ns UTC -> Alpaca's JSON time string with nine fractional digits."""
    sec, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def parse_time(text: str) -> int:
    """Alpaca's RFC 3339 query times (any fraction length, Z or offset) -> ns UTC."""
    main, frac, tz = text, "", ""
    if text.endswith(("Z", "z")):
        main, tz = text[:-1], "+00:00"
    elif len(text) > 6 and text[-6] in "+-":
        main, tz = text[:-6], text[-6:]
    if "." in main:
        main, frac = main.split(".", 1)
    if not tz or not frac.isdigit() and frac:
        raise ValueError(f"bad time {text!r}")
    dt = datetime.fromisoformat(main + tz)
    return int(dt.timestamp()) * 1_000_000_000 + int((frac or "0")[:9].ljust(9, "0"))


def alpaca_conditions(code: str, suspicious: bool = False) -> tuple[str, ...]:
    """The Alpaca-style condition list for one AlgoSeek condition code (see the table)."""
    if code in ODD_LOT_CODES:
        return ("@", "I")
    if code in OUT_OF_SEQUENCE_CODES or suspicious:
        return ("@", "Z")
    return ("@",)


def _iso_to_ns(text: str) -> int:
    dt = datetime.fromisoformat(text)
    return (int(dt.timestamp()) * 1_000_000 + dt.microsecond) * 1000


def load_algoseek_trades(
    path: Path, symbol: str = "SPY", start_ns: int | None = None, end_ns: int | None = None
) -> list[Trade]:
    """Trades of an AlgoSeek tick file (gzip or plain CSV) in [start_ns, end_ns)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    out: list[Trade] = []
    with opener(path, "rt", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=1):
            ts = _iso_to_ns(row["timestamp"])
            if start_ns is not None and ts < start_ns:
                continue
            if end_ns is not None and ts >= end_ns:
                break
            conds = alpaca_conditions(row["condition"], row.get("suspicious", "0") == "1")
            out.append(
                Trade(symbol, ts, float(row["price"]), int(row["size"]), row["exchange"], conds, n)
            )
    return out


def fakepaca_trades(
    start_ns: int, count: int, seed: int = 7, symbol: str = "FAKEPACA"
) -> list[Trade]:
    """A seeded random walk of prints, about ten a second, for the test stream."""
    rng = random.Random(seed)
    price, ts, out = 100.0, start_ns, []
    for n in range(1, count + 1):
        ts += rng.randint(1, 200_000_000)
        price = max(0.01, round(price + rng.choice((-0.01, 0.0, 0.01)), 2))
        odd = rng.random() < 0.1
        out.append(
            Trade(
                symbol,
                ts,
                price,
                rng.randint(1, 99) if odd else 100,
                "V",
                ("@", "I") if odd else ("@",),
                n,
            )
        )
    return out


def minute_bars(trades: list[Trade]) -> dict[str, list[dict]]:
    """Alpaca REST bar rows per symbol (numbers, `t` the minute's start in ns for now).

    Excluded prints add volume only; a minute with no eligible print has no bar.
    """
    bars: dict[str, dict[int, dict]] = {}
    for t in trades:
        minute = t.ts - t.ts % NS_MIN
        per = bars.setdefault(t.symbol, {})
        bar = per.get(minute)
        eligible = not (EXCLUDED & set(t.conditions))
        if bar is None:
            bar = per[minute] = {
                "t": minute,
                "o": None,
                "h": None,
                "l": None,
                "c": None,
                "v": 0,
                "n": 0,
                "pv": 0.0,
            }
        bar["v"] += t.size
        bar["n"] += 1
        bar["pv"] += t.price * t.size
        if eligible:
            if bar["o"] is None:
                bar["o"] = bar["h"] = bar["l"] = t.price
            bar["h"] = max(bar["h"], t.price)
            bar["l"] = min(bar["l"], t.price)
            bar["c"] = t.price
    out: dict[str, list[dict]] = {}
    for sym, per in bars.items():
        rows = []
        for minute in sorted(per):
            b = per[minute]
            if b["o"] is None:
                continue
            vw = b.pop("pv") / b["v"] if b["v"] else b["c"]
            rows.append({**b, "vw": round(vw, 6)})
        out[sym] = rows
    return out
