"""Reconnect timing for streams: exponential backoff with jitter, and a circuit breaker.

Separate from any one client so that every stream (market data, trade updates) retries the
same way: delays grow from `base_s` to `cap_s` with jitter (so many clients do not retry in
step); after `trip_after` failures in a row the breaker trips (SAFE MODE) and retries slow
to one probe every `probe_s` until a success resets it.
"""

from __future__ import annotations

import random


class ReconnectPolicy:
    def __init__(
        self,
        base_s: float = 1.0,
        cap_s: float = 60.0,
        trip_after: int = 10,
        probe_s: float = 60.0,
        seed: int | None = None,
    ) -> None:
        if base_s <= 0 or cap_s < base_s or trip_after < 1 or probe_s <= 0:
            raise ValueError("need 0 < base_s <= cap_s, trip_after >= 1 and probe_s > 0")
        self.base_s = base_s
        self.cap_s = cap_s
        self.trip_after = trip_after
        self.probe_s = probe_s
        self.failures = 0
        self.tripped = False
        self._rng = random.Random(seed)

    def failed(self) -> bool:
        """Count a failure; True exactly when this one trips the breaker."""
        self.failures += 1
        if not self.tripped and self.failures >= self.trip_after:
            self.tripped = True
            return True
        return False

    def succeeded(self) -> bool:
        """Reset; True when the breaker was tripped (the caller announces the recovery)."""
        was = self.tripped
        self.failures = 0
        self.tripped = False
        return was

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt."""
        if self.tripped:
            return self.probe_s
        n = max(self.failures, 1)
        ceiling = min(self.cap_s, self.base_s * 2 ** min(n - 1, 30))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)
