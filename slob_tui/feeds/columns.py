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


@dataclass(frozen=True)
class CodedColumn:
    """A text column as indices into its distinct values; a null cell is the value None."""

    indices: Any  # numpy integer array, one entry per row
    values: list[str | None]

    @classmethod
    def from_arrow(cls, column: Any) -> CodedColumn:
        """From a pyarrow (chunked) array of text or dictionary type."""
        import pyarrow as pa
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
            indices = pc.fill_null(indices, len(values))
            values.append(None)
        return cls(indices.to_numpy(zero_copy_only=False), values)

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
    size: list[Any]  # Python ints (shares) or floats (crypto), as the file has them
    exchange: CodedColumn | None = None
    conditions: CodedColumn | None = None
    suspicious: Any = None  # numpy bool, or None when the file has no such column
    ids: list[Any] | None = None
    symbols: CodedColumn | None = None

    def __len__(self) -> int:
        return len(self.ts)
