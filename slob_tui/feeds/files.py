"""Tick and candle file readers (CSV or CSV.gz), chunked so memory stays flat on long files.

Tick files whose times carry an offset (or are epoch numbers) go through pyarrow's streaming
reader (`arrow_csv.py`); any batch it cannot take whole hands the rest of the file to the
tolerant pandas `read_csv(chunksize=...)` path, which reports bad rows one by one. On the SPY
ticks (benchmarks/bench_pipeline.py): pyarrow 1.5 M rows/s, pandas chunks 0.67 M, the csv
module 0.51 M. Chunks leave as plain tuples in `Tick` field order.

Timestamps: see `timeparse.py` (offsets as written; naive text in the `tz` zone, DST-correct).
A row that cannot be parsed is counted in the `ReadReport` with its line number, never fatal.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

from slob_tui.core.models import Candle
from slob_tui.core.tick_chunk import TickChunk
from slob_tui.engine.aggregator import SUSPICIOUS
from slob_tui.errors import UsageError
from slob_tui.feeds import parquet
from slob_tui.feeds.bounded import open_bounded, open_bounded_text
from slob_tui.feeds.columns import TickColumns
from slob_tui.feeds.order import TimeOrder
from slob_tui.feeds.parquet import is_parquet
from slob_tui.feeds.sources import InputSet, expand, out_of_order
from slob_tui.feeds.timeparse import epoch_scale as _epoch_scale
from slob_tui.feeds.timeparse import first_ns
from slob_tui.feeds.timeparse import has_offset as _has_offset
from slob_tui.feeds.timeparse import to_ns as _to_ns
from slob_tui.feeds.timeparse import zone as _zone

TIME_COLUMNS = ("timestamp", "timestamp_utc", "time", "date", "datetime")
SIZE_COLUMNS = ("size", "amount", "qty", "quantity", "volume")
CONDITION_COLUMNS = ("condition", "conditions")
CANDLE_COLUMNS = ("open", "high", "low", "close")
MAX_BAD_LINES = 20


@dataclass
class ReadReport:
    """What a reader saw: rows, bad rows and where they were, rows with excluded conditions."""

    path: str
    kind: str = ""
    rows: int = 0
    bad_rows: int = 0
    bad_lines: list[int] = field(default_factory=list)
    bad_reasons: list[str] = field(default_factory=list)
    excluded_rows: int = 0
    exclusions_seen: set[str] = field(default_factory=set)
    first_ts: int | None = None
    last_ts: int | None = None
    order: TimeOrder = field(default_factory=TimeOrder)

    def add_bad(self, line: int, reason: str) -> None:
        self.bad_rows += 1
        if len(self.bad_lines) < MAX_BAD_LINES:
            self.bad_lines.append(line)
            self.bad_reasons.append(reason)

    def summary(self) -> str:
        text = f"{self.rows} rows, {self.bad_rows} bad"
        if self.bad_lines:
            text += " (lines " + ", ".join(map(str, self.bad_lines[:5]))
            text += ", ...)" if self.bad_rows > 5 else ")"
        return text


def _open_text(path: Path) -> io.TextIOBase:
    return open_bounded_text(path)


def _check_path(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"file not found: {p}")
    if not p.is_file():
        raise UsageError(f"not a file: {p}")
    return p


def _read_head(p: Path) -> tuple[list[str], list[str]]:
    """The header row and the first data row (blank lines skipped; [] when there is none)."""
    try:
        with _open_text(p) as fh:
            lines = csv.reader(fh)
            header = next(lines, [])
            first = next((row for row in lines if any(c.strip() for c in row)), [])
    except (csv.Error, OSError, UnicodeDecodeError, EOFError) as exc:
        raise UsageError(f"cannot read {p}: {exc}") from exc
    if not header:
        raise UsageError(f"{p} is empty: expected a CSV header line")
    return header, first


def _no_rows(p: Path) -> UsageError:
    return UsageError(f"{p}: no data rows, only a header line: nothing to read")


def read_header(path: str | Path) -> list[str]:
    """The lower-cased column names of a CSV, CSV.gz or Parquet file (of a folder's first)."""
    p = expand(path).first
    if is_parquet(p):
        return [c.strip().lower() for c in parquet.columns(p)]
    header, _ = _read_head(p)
    return [c.strip().lower() for c in header]


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in columns:
            return name
    return None


def detect_kind(path: str | Path) -> str:
    """'candles' when the header has open/high/low/close, 'ticks' when it has a price.

    A file with a header and no data row is refused here, before any command starts work; so
    is a folder or glob whose files are not all of one kind."""
    inputs = expand(path)
    kinds = [(f, _file_kind(f)) for f in inputs.files]
    for (a, ka), (b, kb) in zip(kinds, kinds[1:], strict=False):
        if ka != kb:
            raise UsageError(f"{b} holds {kb} but {a} holds {ka}: one replay takes one kind")
    return kinds[0][1]


def _file_kind(p: Path) -> str:
    if is_parquet(p):
        cols = [c.strip().lower() for c in parquet.columns(p)]
        if _pick(cols, TIME_COLUMNS) is None:
            raise UsageError(
                f"{p}: no time column (expected one of {', '.join(TIME_COLUMNS)}); "
                f"columns are {', '.join(cols)}"
            )
        if not parquet.row_count(p):
            raise UsageError(f"{p}: no data rows: nothing to read")
        return _kind_of(p, cols)
    header, first = _read_head(p)
    cols = [c.strip().lower() for c in header]
    if _pick(cols, TIME_COLUMNS) is None:
        raise UsageError(
            f"{p}: no time column (expected one of {', '.join(TIME_COLUMNS)}); "
            f"columns are {', '.join(cols)}"
        )
    if not first:
        raise _no_rows(p)
    return _kind_of(p, cols)


def _kind_of(p: Path, cols: list[str]) -> str:
    if all(c in cols for c in CANDLE_COLUMNS):
        return "candles"
    if "price" in cols:
        return "ticks"
    raise UsageError(
        f"{p}: neither a tick file (needs price) nor a candle file (needs open, high, low, "
        f"close); columns are {', '.join(cols)}"
    )


def _chunks(
    path: Path, chunk_rows: int, dtypes: dict[str, Any], report: ReadReport
) -> Iterator[tuple[Any, list[int]]]:
    """pandas chunks with lower-cased columns; lines with too many fields are reported."""
    import pandas as pd

    skipped: list[int] = []
    try:
        stream = open_bounded(path)
        reader = pd.read_csv(
            stream, chunksize=chunk_rows, dtype=dtypes, on_bad_lines="warn",
            skipinitialspace=True, compression=None,
        )  # fmt: skip
        with stream, reader:
            while True:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        chunk = next(reader)
                    except StopIteration:
                        break
                for w in caught:
                    for part in str(w.message).splitlines():
                        if part.startswith("Skipping line "):
                            line = int(part.split()[2].rstrip(":"))
                            skipped.append(line)
                            report.rows += 1
                            report.add_bad(line, "wrong number of fields")
                chunk.columns = [str(c).strip().lower() for c in chunk.columns]
                yield chunk, skipped
    except (OSError, EOFError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise UsageError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc


def _line_of(row_index: int, skipped: list[int]) -> int:
    line = row_index + 2  # header is line 1
    for s in skipped:
        if s <= line:
            line += 1
    return line


def _lines_of(index: Any, skipped: list[int]) -> Callable[[int], int]:
    """The file line of a chunk's i-th row (after bad rows were taken out)."""
    return lambda i: _line_of(int(index[i]), skipped)


def _counted_from(first: int) -> Callable[[int], int]:
    """The line (or row) number of a chunk's i-th row when its first row is `first`."""
    return lambda i: first + i


def _row_lines(rows: list[int]) -> Callable[[int], int]:
    """The row number, counted from 1, of a chunk's i-th row when its rows are `rows`."""
    return lambda i: rows[i] + 1


def _report_bad(report: ReadReport, chunk: Any, bad: Any, skipped: list[int], why: Any) -> None:
    for idx in chunk.index[bad.to_numpy()]:
        report.add_bad(_line_of(int(idx), skipped), why(idx))


def _dtypes(cols: list[str], header: list[str], names: tuple[str, ...]) -> dict[str, Any]:
    """Read these columns as text (by their spelling in the file)."""
    return {orig: str for orig, low in zip(header, cols, strict=True) if low in names}


class _TickAssembler:
    """Turns parsed columns into tick tuples; shared by the pyarrow and the pandas paths."""

    def __init__(self, symbol: str, report: ReadReport, exclude_conditions: Any) -> None:
        self.symbol = symbol
        self.report = report
        self.excluded = frozenset(str(c) for c in (exclude_conditions or ()))
        self._codes: dict[Any, Any] = {}

    def codes(self, value: Any) -> Any:
        """A condition cell as one code (str), a tuple of codes, or None; cached per value."""
        try:
            return self._codes[value]
        except KeyError:
            pass
        if not isinstance(value, str) or not value.strip():
            out = None
        else:
            parts = value.replace("|", " ").replace(";", " ").split()
            out = parts[0] if len(parts) == 1 else tuple(parts)
        self._codes[value] = out
        return out

    def build(self, ts: list[int], price: list[float], size: list[Any],
              cols: dict[str, list[Any]],
              line_of: Callable[[int], int]) -> list[tuple[Any, ...]]:  # fmt: skip
        n = len(ts)
        report = self.report
        if report.first_ts is None:
            report.first_ts = ts[0]
        report.last_ts = ts[-1]
        sym = cols.get("symbol")
        syms = [x if x else self.symbol for x in sym] if sym is not None else [self.symbol] * n
        report.order.note(syms if sym is not None else self.symbol, ts, line_of)
        exch = cols.get("exchange")
        exch = [x or "" for x in exch] if exch is not None else [""] * n
        raw = cols.get("conditions")
        codes = self.codes
        conds = [codes(c) for c in raw] if raw is not None else [None] * n
        for i in cols.get("suspicious_rows", ()):
            c = conds[i]
            conds[i] = (SUSPICIOUS,) if c is None else (
                (c, SUSPICIOUS) if isinstance(c, str) else (*c, SUSPICIOUS))  # fmt: skip
        if self.excluded:
            for c in set(conds):
                hit = self.excluded.intersection((c,) if isinstance(c, str) else (c or ()))
                if hit:
                    report.exclusions_seen.update(hit)
                    report.excluded_rows += conds.count(c)
        ids = cols.get("id")
        ids = [None if x != x else x for x in ids] if ids is not None else [None] * n
        return list(zip(syms, ts, price, size, exch, conds, ids, strict=True))

    def build_columns(
        self, chunk: TickColumns, line_of: Callable[[int], int]
    ) -> list[tuple[Any, ...]]:
        """The same tuples as `build`, from columns: each distinct text value is converted
        once, and the rows take it by index (see `columns.py`)."""
        n = len(chunk)
        report = self.report
        ts = chunk.ts.tolist()
        if report.first_ts is None:
            report.first_ts = ts[0]
        report.last_ts = ts[-1]
        if chunk.symbols is not None:
            names = [x if x else self.symbol for x in chunk.symbols.values]
            syms: Any = chunk.symbols.take(names)
            report.order.note(syms, chunk.ts, line_of)
        else:
            syms = repeat(self.symbol, n)
            report.order.note(self.symbol, chunk.ts, line_of)
        exch: Any = (chunk.exchange.take([x or "" for x in chunk.exchange.values])
                     if chunk.exchange is not None else repeat("", n))  # fmt: skip
        coded = chunk.conditions
        mapped = [self.codes(v) for v in coded.values] if coded is not None else [None]
        conds: Any = coded.take(mapped) if coded is not None else None
        counts = coded.counts() if coded is not None else [n]
        flagged = chunk.suspicious.nonzero()[0].tolist() if chunk.suspicious is not None else []
        if flagged:
            conds = conds if conds is not None else [None] * n
            extra: dict[Any, int] = {}
            for i in flagged:
                c = conds[i]
                if coded is not None:
                    counts[int(coded.indices[i])] -= 1
                else:
                    counts[0] -= 1
                conds[i] = (SUSPICIOUS,) if c is None else (
                    (c, SUSPICIOUS) if isinstance(c, str) else (*c, SUSPICIOUS))  # fmt: skip
                extra[conds[i]] = extra.get(conds[i], 0) + 1
            seen = list(zip(mapped, counts, strict=True)) + list(extra.items())
        else:
            seen = list(zip(mapped, counts, strict=True))
        if self.excluded:
            for c, k in seen:
                hit = self.excluded.intersection((c,) if isinstance(c, str) else (c or ()))
                if hit and k:
                    report.exclusions_seen.update(hit)
                    report.excluded_rows += k
        ids: Any = ([None if x != x else x for x in chunk.ids] if chunk.ids is not None
                    else repeat(None, n))  # fmt: skip
        # strict=False: a column the file lacks is an endless repeat() of its default
        return list(zip(syms, ts, chunk.price.tolist(), chunk.size.tolist(), exch,
                        conds if conds is not None else repeat(None, n), ids,
                        strict=False))  # fmt: skip

    def build_chunk(
        self, chunk: TickColumns, line_of: Callable[[int], int]
    ) -> TickChunk | list[tuple[Any, ...]]:
        """The same rows as `build_columns`, left as columns (`TickChunk`), with the same
        report; a chunk with trade ids or a symbol column leaves as tuples (a `TickChunk` is
        one symbol's trades without ids)."""
        import numpy as np

        if chunk.ids is not None or chunk.symbols is not None:
            return self.build_columns(chunk, line_of)
        n = len(chunk)
        report = self.report
        if report.first_ts is None:
            report.first_ts = int(chunk.ts[0])
        report.last_ts = int(chunk.ts[-1])
        report.order.note(self.symbol, chunk.ts, line_of)
        coded = chunk.conditions
        values = [self.codes(v) for v in coded.values] if coded is not None else [None]
        codes = coded.indices if coded is not None else np.zeros(n, dtype=np.int32)
        counts: list[int] = np.bincount(codes, minlength=len(values)).tolist()
        if chunk.suspicious is not None and chunk.suspicious.any():
            flagged = chunk.suspicious.nonzero()[0]
            codes = codes.astype(np.int64)  # a copy: the rows flagged get codes of their own
            was = codes[flagged]
            for k in np.unique(was).tolist():
                c = values[k]
                rows = flagged[was == k]
                values.append((SUSPICIOUS,) if c is None else (
                    (c, SUSPICIOUS) if isinstance(c, str) else (*c, SUSPICIOUS)))  # fmt: skip
                codes[rows] = len(values) - 1
                counts[k] -= len(rows)
                counts.append(len(rows))
        if self.excluded:
            for c, k in zip(values, counts, strict=True):
                hit = self.excluded.intersection((c,) if isinstance(c, str) else (c or ()))
                if hit and k:
                    report.exclusions_seen.update(hit)
                    report.excluded_rows += k
        if chunk.exchange is not None:
            exchanges = tuple(x or "" for x in chunk.exchange.values)
            exchange_codes = chunk.exchange.indices
        else:
            exchanges, exchange_codes = ("",), np.zeros(n, dtype=np.int32)
        size = chunk.size
        size = size.astype(np.int64 if size.dtype.kind in "iub" else np.float64, copy=False)
        return TickChunk(self.symbol, chunk.ts, chunk.price, size, exchange_codes, exchanges,
                         codes, tuple(values))  # fmt: skip


def iter_tick_chunks(
    path: str | Path,
    symbol: str,
    tz: str = "America/New_York",
    exclude_conditions: Any = None,
    chunk_rows: int = 100_000,
    report: ReadReport | None = None,
    reader: str = "auto",
) -> Iterator[list[tuple[Any, ...]]]:
    """Yield lists of tick tuples (symbol, ts_ns, price, size, exchange, conditions, id).

    `path` is a CSV, CSV.gz or Parquet file, or a folder or glob of them (one stream in name
    order; see `sources.py`). `exclude_conditions` only counts rows carrying those codes into
    `report` (the aggregator's policy decides what sets OHLC), so that a mistyped code shows up
    as unused. `reader`: "auto" takes pyarrow for CSV files whose times carry an offset or are
    epoch numbers and pandas otherwise (or from the first unclean batch on); "pandas" forces the
    tolerant path.
    """
    for chunk in _tick_stream(path, symbol, tz, exclude_conditions, chunk_rows, report, reader,
                              columns=False):  # fmt: skip
        assert not isinstance(chunk, TickChunk)
        yield chunk


def iter_tick_column_chunks(
    path: str | Path,
    symbol: str,
    tz: str = "America/New_York",
    exclude_conditions: Any = None,
    chunk_rows: int = 100_000,
    report: ReadReport | None = None,
) -> Iterator[list[tuple[Any, ...]] | TickChunk]:
    """`iter_tick_chunks`, with the chunks pyarrow reads (CSV or Parquet) left as columns
    (`TickChunk`, see `_TickAssembler.build_chunk`) when they can be; the others as tuples.
    The same rows and the same report."""
    yield from _tick_stream(path, symbol, tz, exclude_conditions, chunk_rows, report, "auto",
                            columns=True)  # fmt: skip


def _tick_stream(
    path: str | Path, symbol: str, tz: str, exclude_conditions: Any, chunk_rows: int,
    report: ReadReport | None, reader: str, columns: bool,
) -> Iterator[list[tuple[Any, ...]] | TickChunk]:  # fmt: skip
    inputs = expand(path)
    report = report if report is not None else ReadReport(inputs.label)
    report.kind = "ticks"
    assemble = _TickAssembler(symbol, report, exclude_conditions)
    if len(inputs.files) > 1:
        _check_first_times(inputs, tz)
    previous: Path | None = None
    for p in inputs.files:
        first = True
        before = report.last_ts
        for chunk in _file_tick_chunks(p, tz, chunk_rows, report, reader, assemble, columns):
            if first and len(chunk):
                first = False
                start = int(chunk.ts[0]) if isinstance(chunk, TickChunk) else chunk[0][1]
                if previous is not None and before is not None and start < before:
                    raise out_of_order(previous, p, start, before)
            yield chunk
        previous = p


def _check_first_times(inputs: InputSet, tz: str) -> None:
    """Refuse, before anything is read, files whose first times do not rise in name order."""
    last: tuple[Path, int] | None = None
    for p in inputs.files:
        t = _first_time(p, tz)
        if t is None:
            continue
        if last is not None and t < last[1]:
            raise out_of_order(last[0], p, t, last[1], edge="starts")
        last = (p, t)


def _first_time(p: Path, tz: str) -> int | None:
    """The time of a file's first row in ns UTC (None when it cannot be told cheaply)."""
    if is_parquet(p):
        cols = parquet.columns(p)
        name = _pick([c.strip().lower() for c in cols], TIME_COLUMNS)
        spelled = {c.strip().lower(): c for c in cols}
        return parquet.first_time(p, spelled[name], tz) if name else None
    header, row = _read_head(p)
    cols = [c.strip().lower() for c in header]
    name = _pick(cols, TIME_COLUMNS)
    if name is None or not row or len(row) != len(cols):
        return None
    return first_ns(row[cols.index(name)].strip(), tz)


def _file_tick_chunks(
    p: Path, tz: str, chunk_rows: int, report: ReadReport, reader: str,
    assemble: _TickAssembler, columns: bool = False,
) -> Iterator[list[tuple[Any, ...]] | TickChunk]:  # fmt: skip
    """One file's ticks (see `iter_tick_chunks`)."""
    build = assemble.build_chunk if columns else assemble.build_columns
    if is_parquet(p):
        yield from _parquet_ticks(p, tz, chunk_rows, report, build)
        return
    zone = _zone(tz)
    raw_header, first_row = _read_head(p)
    cols = [c.strip().lower() for c in raw_header]
    time_col = _pick(cols, TIME_COLUMNS)
    size_col = _pick(cols, SIZE_COLUMNS)
    if time_col is None or "price" not in cols or size_col is None:
        missing = [n for n, ok in (("time", time_col), ("price", "price" in cols),
                                   ("size", size_col)) if not ok]  # fmt: skip
        raise UsageError(
            f"{p}: not a tick file, missing {' and '.join(missing)} column(s); "
            f"columns are {', '.join(cols)}"
        )
    if not first_row:
        raise _no_rows(p)
    cond_col = _pick(cols, CONDITION_COLUMNS)
    consumed = 0
    if reader == "auto" and first_row and len(first_row) == len(cols):
        from slob_tui.feeds import arrow_csv

        sample = first_row[cols.index(time_col)].strip()
        scale = _epoch_scale(sample)
        if arrow_csv.available() and (scale is not None or _has_offset(sample)):
            spelled = dict(zip(cols, raw_header, strict=True))
            roles = {"time": time_col, "price": "price", "size": size_col,
                     "exchange": "exchange", "conditions": cond_col,
                     "suspicious": "suspicious", "id": "id", "symbol": "symbol"}  # fmt: skip
            names = {r: spelled.get(c) if c else None for r, c in roles.items()}
            try:
                for batch in arrow_csv.tick_batches(p, raw_header, names, scale, chunk_rows):
                    n = len(batch)
                    report.rows += n
                    first_line = consumed + 2  # no bad rows on this path: row k is line k + 2
                    consumed += n
                    yield build(batch, _counted_from(first_line))
                return
            except arrow_csv.Unclean:
                pass  # the tolerant reader takes over after the rows already handed out
    yield from _pandas_ticks(p, raw_header, cols, time_col, size_col, cond_col, zone,
                             chunk_rows, report, assemble, consumed)  # fmt: skip


def _roles(p: Path, cols: list[str], spelled: dict[str, str]) -> dict[str, str | None]:
    time_col = _pick(cols, TIME_COLUMNS)
    size_col = _pick(cols, SIZE_COLUMNS)
    if time_col is None or "price" not in cols or size_col is None:
        missing = [n for n, ok in (("time", time_col), ("price", "price" in cols),
                                   ("size", size_col)) if not ok]  # fmt: skip
        raise UsageError(
            f"{p}: not a tick file, missing {' and '.join(missing)} column(s); "
            f"columns are {', '.join(cols)}"
        )
    roles = {"time": time_col, "price": "price", "size": size_col, "exchange": "exchange",
             "conditions": _pick(cols, CONDITION_COLUMNS), "suspicious": "suspicious",
             "id": "id", "symbol": "symbol"}  # fmt: skip
    return {r: spelled.get(c) if c else None for r, c in roles.items()}


def _parquet_ticks(
    p: Path, tz: str, chunk_rows: int, report: ReadReport,
    build: Callable[[TickColumns, Callable[[int], int]], list[tuple[Any, ...]] | TickChunk],
) -> Iterator[list[tuple[Any, ...]] | TickChunk]:  # fmt: skip
    """A Parquet file's ticks; a row missing time, price or size is a bad row (its number
    counted from 1, as a line would be)."""
    raw = parquet.columns(p)
    cols = [c.strip().lower() for c in raw]
    names = _roles(p, cols, dict(zip(cols, raw, strict=True)))
    consumed = 0
    for chunk, bad in parquet.tick_chunks(p, names, tz, chunk_rows):
        for row in bad:
            report.add_bad(row + 1, "missing time, price or size")
        report.rows += len(chunk) + len(bad)
        good = [i for i in range(consumed, consumed + len(chunk) + len(bad)) if i not in bad]
        consumed += len(chunk) + len(bad)
        if len(chunk):
            row_of = good if bad else None
            first = consumed - len(chunk)
            yield build(chunk, _row_lines(row_of) if row_of else _counted_from(first + 1))


def _pandas_ticks(p: Path, raw_header: list[str], cols: list[str], time_col: str, size_col: str,
                  cond_col: str | None, zone: Any, chunk_rows: int, report: ReadReport,
                  assemble: _TickAssembler, skip_good: int,
                  ) -> Iterator[list[tuple[Any, ...]]]:  # fmt: skip
    """The tolerant path: bad rows are reported one by one. The first `skip_good` rows were
    already handed out by the fast path (all good), so they are dropped here, uncounted."""
    import pandas as pd

    dtypes = _dtypes(cols, raw_header, (*CONDITION_COLUMNS, "exchange", "symbol"))
    for chunk, skipped in _chunks(p, chunk_rows, dtypes, report):
        if skip_good:
            drop = min(skip_good, len(chunk))
            chunk = chunk.iloc[drop:]
            skip_good -= drop
        if chunk.empty:
            continue
        report.rows += len(chunk)
        ts, bad_ts = _to_ns(chunk[time_col], zone)
        price = pd.to_numeric(chunk["price"], errors="coerce")
        size = pd.to_numeric(chunk[size_col], errors="coerce")
        bad = bad_ts | price.isna() | size.isna()
        if bad.any():
            _report_bad(report, chunk, bad, skipped, lambda i: "unparseable time, price or size")
            good = ~bad
            chunk, ts, price, size = chunk[good], ts[good], price[good], size[good]
            if chunk.empty:
                continue
        extra: dict[str, list[Any]] = {}
        for role, name in (("symbol", "symbol"), ("exchange", "exchange"),
                           ("conditions", cond_col), ("id", "id")):  # fmt: skip
            if name is not None and name in chunk.columns:
                extra[role] = chunk[name].where(chunk[name].notna(), None).tolist()
        if "suspicious" in chunk.columns:
            flag = pd.to_numeric(chunk["suspicious"], errors="coerce").fillna(0).to_numpy() != 0
            extra["suspicious_rows"] = flag.nonzero()[0].tolist()
        yield assemble.build(ts.astype("int64").tolist(), price.tolist(), size.tolist(), extra,
                             _lines_of(chunk.index, skipped))  # fmt: skip


def iter_candle_chunks(
    path: str | Path,
    symbol: str,
    tz: str = "America/New_York",
    chunk_rows: int = 100_000,
    report: ReadReport | None = None,
) -> Iterator[list[Candle]]:
    """Yield lists of `Candle`s (stamped at the bar's start) from a candle file, or from a
    folder or glob of them (one stream in name order, see `sources.py`)."""
    inputs = expand(path)
    report = report if report is not None else ReadReport(inputs.label)
    report.kind = "candles"
    if len(inputs.files) > 1:
        _check_first_times(inputs, tz)
    previous: Path | None = None
    for p in inputs.files:
        first = True
        before = report.last_ts
        chunks = (_parquet_candles(p, symbol, tz, chunk_rows, report) if is_parquet(p)
                  else _file_candle_chunks(p, symbol, tz, chunk_rows, report))  # fmt: skip
        for chunk in chunks:
            if first and chunk:
                first = False
                if previous is not None and before is not None and chunk[0].start < before:
                    raise out_of_order(previous, p, chunk[0].start, before)
            yield chunk
        previous = p


def _parquet_candles(p: Path, symbol: str, tz: str, chunk_rows: int,
                     report: ReadReport) -> Iterator[list[Candle]]:  # fmt: skip
    raw = parquet.columns(p)
    cols = [c.strip().lower() for c in raw]
    spelled = dict(zip(cols, raw, strict=True))
    time_col = _pick(cols, TIME_COLUMNS)
    missing = [c for c in CANDLE_COLUMNS if c not in cols]
    if time_col is None:
        missing.insert(0, "timestamp/date")
    if missing:
        raise UsageError(
            f"{p}: not a candle file, missing {', '.join(missing)} column(s); "
            f"columns are {', '.join(cols)}"
        )
    assert time_col is not None  # its absence raised above
    names: dict[str, str | None] = {"time": spelled[time_col]}
    for c in (*CANDLE_COLUMNS, "volume", "symbol"):
        names[c] = spelled.get(c)
    consumed = 0
    for part in parquet.candle_chunks(p, names, tz, chunk_rows):
        bad = part.pop("bad")
        for row in bad:
            report.add_bad(row + 1, "missing time or price")
        starts = part["time"]
        report.rows += len(starts) + len(bad)
        first_row = consumed
        consumed += len(starts) + len(bad)
        if not starts:
            continue
        if report.first_ts is None:
            report.first_ts = starts[0]
        report.last_ts = starts[-1]
        n = len(starts)
        syms = [x or symbol for x in part["symbol"]] if "symbol" in part else [symbol] * n
        report.order.note(syms, starts, _counted_from(first_row + 1))
        vol = part.get("volume") or [0.0] * n
        vol = [0.0 if v is None else v for v in vol]
        yield [
            Candle(s, t, a, b, d, e, v)
            for s, t, a, b, d, e, v in zip(syms, starts, part["open"], part["high"],
                                           part["low"], part["close"], vol, strict=True)
        ]  # fmt: skip


def _file_candle_chunks(
    p: Path, symbol: str, tz: str, chunk_rows: int, report: ReadReport
) -> Iterator[list[Candle]]:
    import pandas as pd

    zone = _zone(tz)
    raw_header, first_row = _read_head(p)
    cols = [c.strip().lower() for c in raw_header]
    time_col = _pick(cols, TIME_COLUMNS)
    missing = [c for c in CANDLE_COLUMNS if c not in cols]
    if time_col is None:
        missing.insert(0, "timestamp/date")
    if missing:
        raise UsageError(
            f"{p}: not a candle file, missing {', '.join(missing)} column(s); "
            f"columns are {', '.join(cols)}"
        )
    if not first_row:
        raise _no_rows(p)
    dtypes = _dtypes(cols, raw_header, ("symbol",))
    for chunk, skipped in _chunks(p, chunk_rows, dtypes, report):
        n = len(chunk)
        if n == 0:
            continue
        report.rows += n
        ts, bad = _to_ns(chunk[time_col], zone)
        fields = [pd.to_numeric(chunk[c], errors="coerce") for c in CANDLE_COLUMNS]
        vol = (pd.to_numeric(chunk["volume"], errors="coerce") if "volume" in cols
               else pd.Series(0.0, index=chunk.index))  # fmt: skip
        for f in (*fields, vol):
            bad = bad | f.isna()
        if bad.any():
            _report_bad(report, chunk, bad, skipped, lambda i: "unparseable time or price")
            good = ~bad
            chunk, ts, vol = chunk[good], ts[good], vol[good]
            fields = [f[good] for f in fields]
            n = len(chunk)
            if n == 0:
                continue
        starts = ts.astype("int64").tolist()
        if report.first_ts is None:
            report.first_ts = starts[0]
        report.last_ts = starts[-1]
        line_of = _lines_of(chunk.index, skipped)
        if "symbol" in chunk.columns:
            syms = chunk["symbol"].fillna(symbol).astype(str).tolist()
            report.order.note(syms, starts, line_of)
        else:
            syms = [symbol] * n
            report.order.note(symbol, starts, line_of)
        o, h, lo, c = (f.tolist() for f in fields)
        yield [
            Candle(s, t, a, b, d, e, v)
            for s, t, a, b, d, e, v in zip(syms, starts, o, h, lo, c, vol.tolist(), strict=True)
        ]


def load_candles(
    path: str | Path, symbol: str, tz: str = "America/New_York", report: ReadReport | None = None
) -> list[Candle]:
    """A whole candle file as one list (candle files are small: one row per minute)."""
    out: list[Candle] = []
    for chunk in iter_candle_chunks(path, symbol, tz, report=report):
        out.extend(chunk)
    return out
