"""Rows whose time goes backwards, counted as a file is read.

The pipeline takes a file in row order, as it would take a live stream: a candle at or before
a minute already closed is dropped and a tick of such a minute is late. A file sorted newest
first therefore loses nearly every row, which only the readers can name for what it is.
Checked per symbol, vectorised over each chunk (a few ms per 100,000 rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BackwardRow:
    """The first row found earlier than a row above it: its line, its time, the time it follows."""

    line: int
    ts: int
    after_ts: int


@dataclass
class TimeOrder:
    """Per-symbol latest time so far; counts rows earlier than it and rows at the same time."""

    backwards: int = 0
    repeated: int = 0
    first_backward: BackwardRow | None = None
    first_repeated_line: int | None = None
    _latest: dict[str, int] = field(default_factory=dict, repr=False)

    def note(
        self, symbols: Sequence[str] | str, ts: Sequence[int], line_of: Callable[[int], int]
    ) -> None:
        """Take one chunk in file order; `symbols` is one symbol for all rows or one per row;
        `line_of(i)` is the file line of the chunk's i-th row."""
        import numpy as np

        if not len(ts):
            return
        times = np.asarray(ts, dtype=np.int64)
        if isinstance(symbols, str):
            self._note_group(symbols, times, None, line_of)
            return
        names = np.asarray(symbols, dtype=object)
        for sym in dict.fromkeys(symbols):
            where = np.flatnonzero(names == sym)
            self._note_group(sym, times[where], where, line_of)

    def _note_group(self, sym: str, t: Any, where: Any, line_of: Callable[[int], int]) -> None:
        """One symbol's rows (numpy arrays); `where` maps them to chunk rows (None: all)."""
        import numpy as np

        prev = self._latest.get(sym)
        running = np.maximum.accumulate(t)
        before = np.empty_like(t)
        before[1:] = running[:-1]
        before[0] = t[0] if prev is None else prev
        if prev is not None:
            np.maximum(before, prev, out=before)
        back = t < before
        same = t == before
        if prev is None:
            same[0] = False
        n_back = int(back.sum())
        n_same = int(same.sum())
        if n_back:
            self.backwards += n_back
            if self.first_backward is None:
                i = int(np.argmax(back))
                row = i if where is None else int(where[i])
                self.first_backward = BackwardRow(line_of(row), int(t[i]), int(before[i]))
        if n_same:
            self.repeated += n_same
            if self.first_repeated_line is None:
                i = int(np.argmax(same))
                self.first_repeated_line = line_of(i if where is None else int(where[i]))
        latest = int(running[-1])
        self._latest[sym] = latest if prev is None else max(prev, latest)
