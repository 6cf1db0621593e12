"""What every file command says about the file it read: skipped rows and rows out of time order.

One wording for backtest, validate, parity and replay, with times in the file's zone (`--tz`)
and the zone named, so the same file is described the same way by each command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `--help` builds every command's parser: no numpy for it
    from slob_tui.feeds.files import ReadReport


def local_time(ns: int | None, tz: str, seconds: bool = True) -> str:
    """'2024-01-02 10:03:00' in `tz` (no zone label: the caller names the zone once)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if ns is None:
        return "-"
    fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return datetime.fromtimestamp(ns / 1e9, ZoneInfo(tz)).strftime(fmt)


def plural(n: int, word: str) -> str:
    """'1 row', '3 rows'."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def skipped_line(report: ReadReport) -> str | None:
    """'N unreadable rows skipped (lines ...)' or None when every row was read."""
    if not report.bad_rows:
        return None
    reason = f": {report.bad_reasons[0]}" if report.bad_reasons else ""
    if report.bad_rows == 1:
        return f"1 unreadable row skipped (line {report.bad_lines[0]}{reason})"
    lines = ", ".join(map(str, report.bad_lines[:5])) + (", ..." if report.bad_rows > 5 else "")
    return f"{report.bad_rows:,} unreadable rows skipped (lines {lines}; first{reason})"


def order_lines(report: ReadReport, tz: str) -> list[str]:
    """The rows whose time goes backwards (and, in candle files, repeated minutes)."""
    return describe_order(order_json(report), report.rows, report.kind, tz)


def describe_order(order: dict[str, Any], rows: int, kind: str, tz: str) -> list[str]:
    """`order_lines` from the --json form (`order_json`), so a saved report renders alike."""
    out: list[str] = []
    first = order.get("first_out_of_order")
    backwards = order.get("rows_out_of_order", 0)
    if backwards and first:
        out.append(
            f"{backwards:,} of {plural(rows, 'row')} out of time order (earlier than a row above "
            f"them); first at line {first['line']}: {local_time(first['ts'], tz)} after "
            f"{local_time(first['after_ts'], tz)} ({tz})"
        )
    repeated = order.get("repeated_minutes", 0)
    if kind == "candles" and repeated:
        out.append(
            f"{plural(repeated, 'row')} {'repeats' if repeated == 1 else 'repeat'} the minute "
            f"of a row above; first at line {order.get('first_repeated_line')}"
        )
    return out


def dropped_line(dropped_candles: int, late_ticks: int) -> str | None:
    """What the pipeline dropped because of the order (the live engine does the same)."""
    parts = []
    if dropped_candles:
        parts.append(f"{plural(dropped_candles, 'candle row')} at or before a minute already "
                     "closed")  # fmt: skip
    if late_ticks:
        parts.append(f"{plural(late_ticks, 'tick')} of a minute already closed (late)")
    return "dropped, as live: " + "; ".join(parts) if parts else None


def order_json(report: ReadReport) -> dict[str, Any]:
    """The same facts for --json documents (times as ns UTC)."""
    order = report.order
    first = order.first_backward
    return {
        "rows_out_of_order": order.backwards,
        "first_out_of_order": None
        if first is None
        else {"line": first.line, "ts": first.ts, "after_ts": first.after_ts},
        "repeated_minutes": order.repeated if report.kind == "candles" else 0,
        "first_repeated_line": order.first_repeated_line if report.kind == "candles" else None,
    }
