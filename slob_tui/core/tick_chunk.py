"""A chunk of one symbol's trades as columns: what a file replay at `--speed max` hands over.

The validator and the aggregator judge and aggregate it with numpy a run of rows at a time
(`DataQualityValidator.filter_columns`, `CandleAggregator.process_columns`, both over the
chunk's `minute_runs`) and build a tick tuple only for the rare row that needs the per-tick
rules, so the candles, findings and state are those of
the tuples `tuples()` gives. Text columns are codes into their distinct values, as the file
readers decode them (each value once). A chunk carries no trade ids: a file with ids is
handed over as tuples (`SymbolState.seen` needs the ids of every accepted tick).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import Any

from slob_tui.core.models import NS_PER_MINUTE


@dataclass(frozen=True, slots=True)
class TickChunk:
    """Rows in file order: `ts` numpy int64 ns UTC, `price` numpy float64, `size` numpy int64
    (shares) or float64 (crypto); exchange and conditions as numpy integer codes into
    `exchanges` and `conditions` (a condition value is what a tuple's field 5 holds: None, a
    code or a tuple of codes)."""

    symbol: str
    ts: Any
    price: Any
    size: Any
    exchange_codes: Any
    exchanges: tuple[str, ...]
    condition_codes: Any
    conditions: tuple[Any, ...]

    def __len__(self) -> int:
        return len(self.ts)

    def tick(self, i: int) -> tuple[Any, ...]:
        """Row `i` as the tick tuple the per-tick path would have been given."""
        return (
            self.symbol,
            self.ts.item(i),
            self.price.item(i),
            self.size.item(i),
            self.exchanges[self.exchange_codes.item(i)],
            self.conditions[self.condition_codes.item(i)],
            None,
        )

    def tuples(self) -> list[tuple[Any, ...]]:
        """Every row as a tick tuple (for a consumer that takes only tuples)."""
        n = len(self)
        ex = [self.exchanges[i] for i in self.exchange_codes.tolist()]
        cond = [self.conditions[i] for i in self.condition_codes.tolist()]
        return list(
            zip(repeat(self.symbol, n), self.ts.tolist(), self.price.tolist(),
                self.size.tolist(), ex, cond, repeat(None, n), strict=False)
        )  # fmt: skip

    def rows(self, keep: Any) -> TickChunk:
        """The rows at `keep` (a numpy index or boolean array), in order."""
        return TickChunk(
            self.symbol, self.ts[keep], self.price[keep], self.size[keep],
            self.exchange_codes[keep], self.exchanges, self.condition_codes[keep],
            self.conditions,
        )  # fmt: skip

    def slice(self, i: int, j: int) -> TickChunk:
        """Rows `i` to `j` (views, no copy)."""
        return TickChunk(
            self.symbol, self.ts[i:j], self.price[i:j], self.size[i:j],
            self.exchange_codes[i:j], self.exchanges, self.condition_codes[i:j],
            self.conditions,
        )  # fmt: skip


def minute_runs(ts: Any) -> tuple[Any, Any, Any]:
    """(minute of each row, first row of each run, end of each run): the runs of consecutive
    rows in one minute, as numpy arrays, for `ts` in ns (a chunk's times)."""
    import numpy as np

    minute = ts - ts % NS_PER_MINUTE
    starts = np.flatnonzero(np.concatenate(([True], minute[1:] != minute[:-1])))
    return minute, starts, np.append(starts[1:], len(ts))
