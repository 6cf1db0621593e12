"""The fast path for clean tick files: pyarrow's streaming CSV reader.

pyarrow parses the CSV and ISO 8601 timestamps with offsets in native threads (outside the GIL)
and about 2.5 times faster than pandas' chunks on the SPY file, which is what lets a replay
approach the pipeline's own speed. It is all or nothing per batch: a batch with a value it
cannot convert, a missing required value or a malformed line raises `Unclean`, and the caller
reads the rest of the file with the pandas path, which reports bad rows one by one.
The file is read through `bounded.open_bounded` (line length and gzip ratio limits), which
pyarrow takes as a Python stream; on the SPY trades that costs no measurable time.

It parses with one thread. In a replay this runs in the reader thread beside the engine, and on
two cores pyarrow's pool (a thread per core) took CPU from the engine's thread: the validator and
aggregator ran 1.4 times slower beside a pool-parsing reader, and not measurably slower beside a
one-thread one (`read_csv` drops the GIL while it parses).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from slob_tui.feeds.bounded import open_bounded
from slob_tui.feeds.columns import CodedColumn, TickColumns, numpy_of, use_system_allocator

# pyarrow parses this many bytes at a time: about 20,000 SPY trades, a batch large enough that
# the event loop turns a few times per chunk, small enough that memory stays flat.
BLOCK_BYTES = 1 << 20


class _ByteReader(Protocol):
    """A binary stream read a piece at a time (`BoundedStream`, or any binary file)."""

    def read(self, size: int, /) -> bytes: ...


class Unclean(Exception):
    """This file (from here on) needs the row-by-row tolerant reader."""


def available() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def tick_batches(
    path: Path,
    header: list[str],
    columns: dict[str, str | None],
    epoch_scale: int | None,
    chunk_rows: int,
) -> Iterator[TickColumns]:
    """Yield `TickColumns` (time as int ns UTC) of at most `chunk_rows` rows.

    `columns` maps roles (time, price, size, exchange, conditions, suspicious, id, symbol) to
    the file's spelling of the column or None. `epoch_scale` is set when the time column is a
    number (ns per unit); otherwise it is ISO text that carries an offset or Z.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    use_system_allocator()
    time_col, price_col = columns["time"], columns["price"]
    assert time_col is not None and price_col is not None, "time and price columns are required"
    text = {c for r in ("exchange", "conditions", "symbol") if (c := columns.get(r))}
    # few distinct values: decoded once each (see `columns.py`)
    types: dict[str, Any] = {c: pa.dictionary(pa.int32(), pa.string()) for c in text}
    if epoch_scale is None:
        types[time_col] = pa.timestamp("ns", tz="UTC")
    else:
        types[time_col] = pa.int64()
    types[price_col] = pa.float64()
    wanted = [c for c in header if c in set(filter(None, columns.values()))]
    # One thread: the replay's engine runs on the other core, and pyarrow's own pool of one
    # thread per core took CPU from it (see the module's note). The blocks come without the
    # header line, so the names are given.
    read = pcsv.ReadOptions(use_threads=False, column_names=header)
    with open_bounded(path) as stream:
        pending: list[Any] = []
        rows = 0
        for block in _blocks(stream, BLOCK_BYTES):
            try:
                table = pcsv.read_csv(
                    pa.BufferReader(pa.py_buffer(block)), read_options=read,
                    convert_options=pcsv.ConvertOptions(column_types=types,
                                                         include_columns=wanted),
                )  # fmt: skip
            except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
                raise Unclean(str(exc)) from exc
            if not table.num_rows:
                continue
            # later blocks must read as the first did (as one streaming reader would)
            for name in wanted:
                types.setdefault(name, table.schema.field(name).type)
            _check(table, columns)
            pending.append(table)
            rows += table.num_rows
            while rows >= chunk_rows:
                whole = pa.concat_tables(pending)
                yield tick_columns(whole.slice(0, chunk_rows), columns, epoch_scale)
                rest = whole.slice(chunk_rows)
                pending, rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
        if rows:
            yield tick_columns(pa.concat_tables(pending), columns, epoch_scale)


def _blocks(stream: _ByteReader, size: int) -> Iterator[memoryview]:
    """The file's data lines as pieces of about `size` bytes, each whole lines, the header
    line left out.

    pyarrow's streaming reader reads ahead as far as it likes (27 MB of a 50 MB file in flight
    while 8 MB had been consumed); handing it one block at a time keeps memory flat. A block is
    a view of the bytes read (copied only to join a line cut by the previous read): this runs
    in the replay's reader thread, and every copy there holds the GIL the engine needs."""
    header_seen = False
    carry = b""
    while True:
        data = stream.read(size)
        if not data:
            break
        buf = carry + data if carry else data
        start = 0
        if not header_seen:
            cut = buf.find(b"\n")
            if cut < 0:
                carry = buf
                continue
            header_seen, start = True, cut + 1
        cut = buf.rfind(b"\n")
        if cut < start:
            carry = buf[start:]
            continue
        carry = buf[cut + 1 :]
        yield memoryview(buf)[start : cut + 1]
    if header_seen and carry.strip():
        yield memoryview(carry)


def _check(table: Any, columns: dict[str, str | None]) -> None:
    """What makes a block need the tolerant reader: a missing value or a non-numeric size."""
    import pyarrow as pa

    required = [columns["time"], columns["price"], columns["size"]]
    if any(table.column(c).null_count for c in required):
        raise Unclean("missing time, price or size")
    size = table.column(columns["size"]).type
    if not (pa.types.is_integer(size) or pa.types.is_floating(size)):
        raise Unclean("size is not numeric")


def tick_columns(part: Any, columns: dict[str, str | None], epoch_scale: int | None) -> TickColumns:
    """One pyarrow table or record batch (no nulls in time, price, size) as `TickColumns`.

    Columns of the types the CSV reader is asked for go to numpy from their buffers, so a
    CSV replay never loads pyarrow's compute module; other types are cast first."""
    import numpy as np
    import pyarrow as pa

    if isinstance(part, pa.Table):
        part = part.unify_dictionaries()  # text columns: one dictionary for every chunk
    ts = part.column(columns["time"])
    if epoch_scale is None:
        if ts.type == pa.timestamp("ns", tz="UTC") or ts.type == pa.int64():
            ns = numpy_of(ts)
        else:
            ns = numpy_of(ts.cast(pa.int64()))
    else:
        ns = numpy_of(ts.cast(pa.int64())) * epoch_scale
    price = part.column(columns["price"])
    if not pa.types.is_float64(price.type):
        price = price.cast(pa.float64())

    def coded(role: str) -> CodedColumn | None:
        name = columns.get(role)
        return CodedColumn.from_arrow(part.column(name)) if name else None

    flags = None
    if columns.get("suspicious"):
        flag = part.column(columns["suspicious"])
        if pa.types.is_boolean(flag.type):
            flags = numpy_of(flag, null=False)
        elif pa.types.is_integer(flag.type):
            flags = numpy_of(flag, null=0) != 0
        else:  # text or float cells: truthiness, as the row-by-row path judges them
            flags = np.array([bool(f) for f in flag.to_pylist()], dtype=bool)
    ids = part.column(columns["id"]).to_pylist() if columns.get("id") else None
    return TickColumns(
        ts=ns,
        price=numpy_of(price),
        size=numpy_of(part.column(columns["size"])),
        exchange=coded("exchange"),
        conditions=coded("conditions"),
        suspicious=flags,
        ids=ids,
        symbols=coded("symbol"),
    )
