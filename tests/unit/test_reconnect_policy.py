"""Backoff with jitter and the SAFE MODE breaker, as the Alpaca feed uses them."""

from __future__ import annotations

import pytest

from slob_tui.feeds.reconnect import ReconnectPolicy


def test_delays_double_from_base_to_cap_with_jitter_in_the_upper_half():
    p = ReconnectPolicy(base_s=1.0, cap_s=60.0, trip_after=100, seed=3)
    seen = []
    for n in range(1, 11):
        p.failed()
        ceiling = min(60.0, 2 ** (n - 1))
        d = p.next_delay()
        assert ceiling / 2 <= d <= ceiling
        seen.append(d)
    assert seen[-1] > 30 and len(set(seen)) == len(seen)


def test_breaker_trips_on_the_tenth_failure_probes_slowly_and_resets():
    p = ReconnectPolicy(base_s=0.01, cap_s=0.05, trip_after=10, probe_s=7.0)
    trips = [p.failed() for _ in range(12)]
    assert trips == [False] * 9 + [True, False, False]
    assert p.tripped and p.next_delay() == 7.0
    assert p.succeeded() is True
    assert (p.failures, p.tripped, p.succeeded()) == (0, False, False)
    assert p.next_delay() <= 0.01


def test_same_seed_same_delays():
    a, b = ReconnectPolicy(seed=9), ReconnectPolicy(seed=9)
    for _ in range(5):
        a.failed(), b.failed()
        assert a.next_delay() == b.next_delay()


@pytest.mark.parametrize("kw", [{"base_s": 0}, {"cap_s": 0.5}, {"trip_after": 0}, {"probe_s": 0}])
def test_nonsense_settings_are_refused(kw):
    with pytest.raises(ValueError):
        ReconnectPolicy(**kw)
