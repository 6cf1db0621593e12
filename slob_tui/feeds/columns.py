"""A chunk of ticks as columns, the shape pyarrow hands over (CSV and Parquet alike).

Turning columns into the pipeline's tick tuples is where a replay spends its reading time, so
it is done a column at a time: numbers leave numpy with one `tolist()` each, and text columns
with few distinct values (exchange, sale condition, symbol) arrive dictionary-encoded, so each
distinct value is converted once (the condition cell into its code or codes) and the rows take
it by index. Only the rows flagged suspicious are touched one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def use_system_allocator() -> None:
    """Arrow's memory from the C allocator rather than its default (mimalloc here), which
    keeps freed blocks per reading thread: measured on four SPY days replayed from CSV, the
    peak RSS was 177 MB with mimalloc and 153 MB with the C allocator, at the same speed.
    The whole process's choice (`ARROW_DEFAULT_MEMORY_POOL` overrides it); set before the
    first read, so no buffer is handed between pools."""
    import os

    import pyarrow as pa

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL") is None:
        pa.set_memory_pool(pa.system_memory_pool())


def _bits(buffer: Any, offset: int, n: int) -> Any:
    import numpy as np

    bits = np.unpackbits(np.frombuffer(buffer, np.uint8), bitorder="little")
    return bits[offset : offset + n].astype(bool)


def numpy_of(column: Any, null: int | None = None) -> Any:
    """A pyarrow numeric, boolean or timestamp (chunked) array as a numpy array (a timestamp
    as int64 counts of its unit); a null cell is `null` (with None, a null is refused).

    Read from the array's buffers: pyarrow's own `to_numpy`, and any array or scalar it builds
    from Python values, import pandas on first use (~0.15 s and ~40 MB in a replay that
    otherwise never needs it)."""
    import numpy as np
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count and null is None:
        raise ValueError("numpy_of: the column has nulls")
    kind = column.type
    n, offset = len(column), column.offset
    valid, data = column.buffers()[:2]
    dtype: Any
    if pa.types.is_boolean(kind):
        dtype = np.dtype(bool)
    elif pa.types.is_timestamp(kind):
        dtype = np.dtype("int64")  # the count of its unit since the epoch, UTC
    elif pa.types.is_floating(kind):
        dtype = np.dtype(f"float{kind.bit_width}")
    elif pa.types.is_integer(kind):
        dtype = np.dtype(f"{'int' if pa.types.is_signed_integer(kind) else 'uint'}{kind.bit_width}")
    else:
        raise TypeError(f"numpy_of: {kind} is not a number")
    if data is None or n == 0:
        return np.zeros(0, dtype=dtype)
    if dtype.kind == "b":
        out = _bits(data, offset, n)
    else:
        out = np.frombuffer(data, dtype=dtype, count=offset + n)[offset:]
    if column.null_count:
        out = out.copy()
        out[~_bits(valid, offset, n)] = null
    return out


@dataclass(frozen=True)
class CodedColumn:
    """A text column as indices into its distinct values; a null cell is the value None."""

    indices: Any  # numpy integer array, one entry per row
    values: list[str | None]

    @classmethod
    def from_arrow(cls, column: Any) -> CodedColumn:
        """From a pyarrow (chunked) array of text or dictionary type.

        Dictionary chunks that share one dictionary (`Table.unify_dictionaries`, as the CSV
        reader's are) are taken as they are, without pyarrow's compute module (~11 MB and
        ~45 ms to import); anything else is encoded again."""
        import numpy as np
        import pyarrow as pa

        if isinstance(column, pa.ChunkedArray) and pa.types.is_dictionary(column.type):
            chunks = column.chunks
            if chunks and all(c.dictionary.equals(chunks[0].dictionary) for c in chunks[1:]):
                values = chunks[0].dictionary.to_pylist()
                null = len(values)
                if column.null_count:
                    values.append(None)
                parts = [numpy_of(c.indices, null=null) for c in chunks]
                return cls(np.concatenate(parts) if len(parts) > 1 else parts[0], values)
        import pyarrow.compute as pc

        if isinstance(column, pa.ChunkedArray):
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            column = column.combine_chunks()
        if not pa.types.is_dictionary(column.type):
            column = pc.dictionary_encode(column)
        values = column.dictionary.to_pylist()
        indices = column.indices
        if indices.null_count:
            values.append(None)
        return cls(numpy_of(indices, null=len(values) - 1), values)

    def take(self, mapped: list[Any]) -> list[Any]:
        """Row values after mapping each distinct value (`mapped[i]` for `values[i]`)."""
        import numpy as np

        table = np.empty(len(mapped), dtype=object)
        table[:] = mapped
        rows: list[Any] = table[self.indices].tolist()
        return rows

    def counts(self) -> list[int]:
        """How many rows hold each distinct value."""
        import numpy as np

        counts: list[int] = np.bincount(self.indices, minlength=len(self.values)).tolist()
        return counts


@dataclass(frozen=True)
class TickColumns:
    """One chunk of ticks in file order: times in int ns UTC, prices, sizes, optional rest."""

    ts: Any  # numpy int64
    price: Any  # numpy float64
    size: Any  # numpy integers (shares) or floats (crypto), as the file has them
    exchange: CodedColumn | None = None
    conditions: CodedColumn | None = None
    suspicious: Any = None  # numpy bool, or None when the file has no such column
    ids: list[Any] | None = None
    symbols: CodedColumn | None = None

    def __len__(self) -> int:
        return len(self.ts)
