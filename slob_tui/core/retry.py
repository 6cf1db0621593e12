"""One retry policy for every loop that talks to the outside: order placement, the broker's
trade-update stream and the market-data feed's reconnects.

`RetryPolicy` is the frozen configuration; `Backoff` is one loop's running state. Delays grow
from `base_s` to `cap_s` with "equal jitter" (half fixed, half random, so many clients do not
retry in step). With `attempts` set, the loop gives up after that many tries; with `trip_after`
set, that many failures in a row trip a breaker (SAFE MODE for the feed) and retries slow to one
probe every `probe_s` until a success resets it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 1.0
    cap_s: float = 60.0
    attempts: int = 0
    """Tries in all before giving up; 0 retries for ever."""
    trip_after: int = 0
    """Failures in a row that trip the breaker; 0 never trips."""
    probe_s: float = 60.0

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.probe_s <= 0:
            raise ValueError("need 0 < base_s <= cap_s and probe_s > 0")
        if self.attempts < 0 or self.trip_after < 0:
            raise ValueError("attempts and trip_after must be >= 0 (0 means no limit)")

    def ceiling(self, failures: int) -> float:
        """The largest delay after `failures` failures in a row (at least one)."""
        n = max(failures, 1)
        return min(self.cap_s, self.base_s * (1 << min(n - 1, 30)))

    def delay(self, failures: int, rng: random.Random) -> float:
        ceiling = self.ceiling(failures)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def start(self, seed: int | None = None) -> Backoff:
        return Backoff(self, seed)


class Backoff:
    """The running state of one retry loop under a `RetryPolicy`."""

    def __init__(self, policy: RetryPolicy, seed: int | None = None) -> None:
        self.policy = policy
        self.failures = 0
        self.tripped = False
        self._rng = random.Random(seed)

    def failed(self) -> bool:
        """Count a failure; True exactly when this one trips the breaker."""
        self.failures += 1
        trip = self.policy.trip_after
        if trip and not self.tripped and self.failures >= trip:
            self.tripped = True
            return True
        return False

    def succeeded(self) -> bool:
        """Reset; True when the breaker was tripped (the caller announces the recovery)."""
        was = self.tripped
        self.failures = 0
        self.tripped = False
        return was

    @property
    def exhausted(self) -> bool:
        """No tries left under `attempts` (never, when attempts is 0)."""
        return bool(self.policy.attempts) and self.failures >= self.policy.attempts

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt."""
        if self.tripped:
            return self.policy.probe_s
        return self.policy.delay(self.failures, self._rng)
