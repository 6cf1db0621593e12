"""`core/retry.py`: backoff with equal jitter, attempts, and the breaker behind the feed's
SAFE MODE (these cases moved here with the feed's reconnect loop, which now uses it)."""

from __future__ import annotations

import pytest

from slob_tui.core.retry import Backoff, RetryPolicy


def test_delays_double_from_base_to_cap_with_jitter_in_the_upper_half():
    b = RetryPolicy(base_s=1.0, cap_s=60.0, trip_after=100).start(seed=3)
    seen = []
    for n in range(1, 11):
        b.failed()
        ceiling = min(60.0, 2 ** (n - 1))
        d = b.next_delay()
        assert ceiling / 2 <= d <= ceiling
        seen.append(d)
    assert seen[-1] > 30 and len(set(seen)) == len(seen)


def test_ceiling_is_the_base_before_any_failure_and_stays_at_the_cap():
    p = RetryPolicy(base_s=0.5, cap_s=4.0)
    assert [p.ceiling(n) for n in (0, 1, 2, 3, 4, 5, 500)] == [0.5, 0.5, 1, 2, 4, 4, 4]


def test_breaker_trips_on_the_tenth_failure_probes_slowly_and_resets():
    b = RetryPolicy(base_s=0.01, cap_s=0.05, trip_after=10, probe_s=7.0).start()
    trips = [b.failed() for _ in range(12)]
    assert trips == [False] * 9 + [True, False, False]
    assert b.tripped and b.next_delay() == 7.0
    assert b.succeeded() is True
    assert (b.failures, b.tripped, b.succeeded()) == (0, False, False)
    assert b.next_delay() <= 0.01


def test_no_trip_after_means_the_breaker_never_trips():
    b = RetryPolicy(base_s=0.01, cap_s=0.05).start()
    assert not any(b.failed() for _ in range(1000))
    assert not b.tripped and b.next_delay() <= 0.05


def test_attempts_bound_the_loop_and_zero_means_for_ever():
    bounded = RetryPolicy(base_s=0.01, cap_s=0.05, attempts=3).start()
    states = []
    for _ in range(3):
        bounded.failed()
        states.append(bounded.exhausted)
    assert states == [False, False, True]
    unbounded = RetryPolicy(base_s=0.01, cap_s=0.05).start()
    for _ in range(1000):
        unbounded.failed()
    assert not unbounded.exhausted


def test_same_seed_same_delays_and_each_loop_has_its_own_state():
    policy = RetryPolicy(trip_after=10)
    a, b = policy.start(seed=9), Backoff(policy, seed=9)
    for _ in range(5):
        a.failed(), b.failed()
        assert a.next_delay() == b.next_delay()
    assert policy.start(seed=9).failures == 0


@pytest.mark.parametrize(
    "kw",
    [{"base_s": 0}, {"cap_s": 0.5}, {"probe_s": 0}, {"attempts": -1}, {"trip_after": -1}],
)
def test_nonsense_settings_are_refused(kw):
    with pytest.raises(ValueError):
        RetryPolicy(**kw)
