"""Walk-forward folds: whole days, out-of-sample spans disjoint and after their search."""

from __future__ import annotations

import pytest

from slob_tui.errors import UsageError
from slob_tui.research.windows import session_days, walk_forward, whole_span
from tests.research.markets import DAYS, spiky_days


def test_folds_are_whole_days_and_out_of_sample_spans_never_overlap() -> None:
    candles = spiky_days()
    windows = walk_forward(candles, 3, "Europe/Stockholm")
    assert len(windows) == 3
    starts = set(session_days(candles, "Europe/Stockholm"))
    for w in windows:
        oos = w.out_of_sample
        assert oos is not None
        assert w.in_sample.hi == oos.lo and w.in_sample.end_ns <= oos.start_ns
        assert w.in_sample.lo in starts and oos.lo in starts
        assert oos.hi - oos.lo == w.in_sample.hi - w.in_sample.lo  # 2 days each
    for a, b in zip(windows, windows[1:], strict=False):
        assert a.out_of_sample is not None and b.out_of_sample is not None
        assert a.out_of_sample.end_ns <= b.out_of_sample.start_ns
    assert windows[-1].out_of_sample.hi == len(candles)  # type: ignore[union-attr]


def test_without_walk_forward_one_window_spans_everything() -> None:
    candles = spiky_days()
    (w,) = whole_span(candles)
    assert (w.in_sample.lo, w.in_sample.hi, w.out_of_sample) == (0, len(candles), None)


def test_too_few_days_for_k_windows() -> None:
    with pytest.raises(UsageError, match=f"{len(DAYS)} session days, need at least 9"):
        walk_forward(spiky_days(), len(DAYS), "Europe/Stockholm")
