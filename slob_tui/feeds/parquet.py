"""Parquet tick and candle files, read a row group slice at a time through pyarrow.

The columns are found by the same names as in CSV files (`files.TIME_COLUMNS` and friends). A
time column may be a timestamp (with a zone: taken as is; without one: wall time in `tz`), an
integer count since the epoch (s, ms, us or ns, told apart by magnitude as in CSV files) or ISO
text with an offset. Rows missing a time, price or size are bad rows, counted by row number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slob_tui.errors import UsageError
from slob_tui.feeds.arrow_csv import tick_columns
from slob_tui.feeds.columns import TickColumns, use_system_allocator

SUFFIX = ".parquet"


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (SUFFIX, ".pq")


def _open(path: Path, text: tuple[str, ...] = ()) -> Any:
    """The file, with the `text` columns read dictionary-encoded (few distinct values)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
        raise UsageError(f"{path}: reading Parquet needs pyarrow") from exc
    use_system_allocator()
    try:
        # read a column chunk a MiB at a time rather than whole row groups up front: on four
        # SPY days in 65,536-row groups this took the reader's peak from 37 MB to 22 MB
        return pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False,
                              read_dictionary=list(text) or None)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise UsageError(f"cannot read {path}: not a Parquet file ({exc})") from exc


def columns(path: Path) -> list[str]:
    """The file's column names as written."""
    return list(_open(path).schema_arrow.names)


def row_count(path: Path) -> int:
    return int(_open(path).metadata.num_rows)


@dataclass(frozen=True)
class TimeRule:
    """How a time column becomes int ns UTC: a cast, a zone to assume, or an epoch scale."""

    zone: str | None = None  # naive timestamps are wall time here
    epoch_scale: int | None = None  # integers: ns per unit
    text: bool = False  # ISO text with an offset


def _time_rule(field_type: Any, sample: Any, tz: str, path: Path, name: str) -> TimeRule:
    import pyarrow as pa

    from slob_tui.feeds.timeparse import epoch_scale

    if pa.types.is_timestamp(field_type):
        return TimeRule(zone=None if field_type.tz else tz)
    if pa.types.is_integer(field_type):
        return TimeRule(epoch_scale=epoch_scale(str(abs(int(sample or 0)))) or 1)
    if pa.types.is_string(field_type) or pa.types.is_large_string(field_type):
        return TimeRule(text=True)
    raise UsageError(f"{path}: time column {name!r} is {field_type}, not a time")


def _to_utc_ns(column: Any, rule: TimeRule) -> Any:
    """A pyarrow time column -> int64 ns UTC (pyarrow array)."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_timestamp(kind) and kind.tz is not None and kind.unit == "ns":
        return column.view(pa.int64())  # already ns UTC: no copy, no compute module
    import pyarrow.compute as pc

    if rule.epoch_scale is not None:
        return pc.multiply(column.cast(pa.int64()), rule.epoch_scale)
    if rule.text:
        column = column.cast(pa.timestamp("ns", tz="UTC"))
    elif column.type.tz is None:
        column = pc.assume_timezone(column.cast(pa.timestamp("ns")), rule.zone,
                                    ambiguous="earliest", nonexistent="raise")  # fmt: skip
    return column.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())


def _sample(column: Any) -> Any:
    """The first value, as `_time_rule` needs it: a number for an integer column, else None
    (a timestamp's `as_py` would import pandas, which a replay otherwise never needs)."""
    import pyarrow as pa

    return column[0].as_py() if pa.types.is_integer(column.type) else None


def first_time(path: Path, name: str, tz: str) -> int | None:
    """The first row's time in ns UTC, or None for a file without rows or with a null time."""
    file = _open(path)
    for batch in file.iter_batches(batch_size=1, columns=[name]):
        if not batch.num_rows:
            continue
        if batch.column(0).null_count:
            return None
        rule = _time_rule(file.schema_arrow.field(name).type, _sample(batch.column(0)), tz, path,
                          name)  # fmt: skip
        return int(_to_utc_ns(batch.column(0), rule)[0].as_py())
    return None


def _batches(
    path: Path, wanted: list[str], chunk_rows: int, text: tuple[str, ...] = ()
) -> Iterator[Any]:
    import pyarrow as pa

    try:
        yield from _open(path, text).iter_batches(
            batch_size=chunk_rows, columns=wanted, use_threads=False
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc


def _timed_batches(
    path: Path, names: dict[str, str | None], tz: str, chunk_rows: int
) -> Iterator[tuple[Any, Any, int]]:
    """(batch, its time column as int ns UTC, the batch's first row number) for every batch
    with rows; the time rule is read from the first value, once per file."""
    import pyarrow as pa

    time_name = names["time"]
    assert time_name is not None
    schema = _open(path).schema_arrow
    field_type = schema.field(time_name).type
    wanted = [n for n in dict.fromkeys(names.values()) if n]
    rule: TimeRule | None = None
    seen = 0
    text = tuple(  # read as dictionaries: decoded once per distinct value (`columns.py`)
        n for r in ("exchange", "conditions", "symbol")
        if (n := names.get(r)) and pa.types.is_string(schema.field(n).type)
    )  # fmt: skip
    for batch in _batches(path, wanted, chunk_rows, text):
        if not batch.num_rows:
            continue
        if rule is None:
            rule = _time_rule(field_type, _sample(batch.column(time_name)), tz, path, time_name)
        try:
            ns = _to_utc_ns(batch.column(time_name), rule)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise UsageError(f"{path}: column {time_name!r}: {exc}") from exc
        yield batch, ns, seen
        seen += batch.num_rows


def _all_valid(columns: list[Any]) -> Any:
    """A mask of the rows where every one of `columns` has a value."""
    import pyarrow.compute as pc

    valid = pc.is_valid(columns[0])
    for column in columns[1:]:
        valid = pc.and_(valid, pc.is_valid(column))
    return valid


def tick_chunks(
    path: Path, names: dict[str, str | None], tz: str, chunk_rows: int
) -> Iterator[tuple[TickColumns, list[int]]]:
    """`TickColumns` of at most `chunk_rows` rows, with the (0-based) row numbers of the rows
    left out for a missing time, price or size. `names` maps roles to the file's columns."""
    import pyarrow as pa

    time_name = names["time"]
    for batch, ns, seen in _timed_batches(path, names, tz, chunk_rows):
        arrays = dict(zip(batch.schema.names, batch.columns, strict=True))
        arrays[time_name] = ns
        table = pa.table(arrays)
        required = [table.column(names[r]) for r in ("time", "price", "size")]
        bad: list[int] = []
        if any(c.null_count for c in required):  # the compute module only for such a file
            import pyarrow.compute as pc

            valid = _all_valid(required)
            bad = [seen + i for i in pc.indices_nonzero(pc.invert(valid)).to_pylist()]
            table = table.filter(valid)
        if table.num_rows:
            yield tick_columns(table, {**names, "time": time_name}, None), bad
        elif bad:
            yield TickColumns(ts=_empty_ns(), price=_empty_ns(), size=_empty_ns()), bad


def _empty_ns() -> Any:
    import numpy as np

    return np.empty(0, dtype=np.int64)


def candle_chunks(
    path: Path, names: dict[str, str | None], tz: str, chunk_rows: int
) -> Iterator[dict[str, list[Any]]]:
    """Candle columns (time as int ns UTC) of at most `chunk_rows` rows; rows missing a value
    are dropped and their row numbers given under "bad"."""
    import pyarrow.compute as pc

    for batch, ns, seen in _timed_batches(path, names, tz, chunk_rows):
        cols = {role: batch.column(name) for role, name in names.items() if name}
        cols["time"] = ns
        valid = _all_valid([cols[r] for r in ("time", "open", "high", "low", "close")])
        bad = [seen + i for i in pc.indices_nonzero(pc.invert(valid)).to_pylist()]
        out: dict[str, list[Any]] = {
            role: (pc.filter(col, valid) if bad else col).to_pylist() for role, col in cols.items()
        }
        out["bad"] = bad
        yield out
