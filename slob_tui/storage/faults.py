"""`WriteHealth`: whether one store's writes currently fail, since when and why.

Each store (the candle store, the state journal) owns one and updates it on every write, so the
node can judge a fault by how long it lasts (halt trading at once, give up after
SLOB_STORE_GIVE_UP_S) without knowing how either store writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slob_tui.core.health import WriteStatus


@dataclass(slots=True)
class WriteHealth:
    name: str
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    failing_since: float | None = None
    """Monotonic time of the first failure in the current run of failures; None when writable."""
    last_error: str = ""
    failures: int = 0
    """Failed writes in all."""
    recoveries: int = 0

    def failed(self, exc: BaseException | str) -> bool:
        """Count a failure; True when it starts a fault (the store was writable until now)."""
        self.failures += 1
        self.last_error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        if self.failing_since is None:
            self.failing_since = self.clock()
            return True
        return False

    def succeeded(self) -> bool:
        """A write went in; True when that ends a fault."""
        if self.failing_since is None:
            return False
        self.failing_since = None
        self.recoveries += 1
        return True

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def failing_for(self) -> float:
        """Seconds the current fault has lasted (0 when writable)."""
        return 0.0 if self.failing_since is None else self.clock() - self.failing_since

    def status(self) -> WriteStatus:
        return WriteStatus(
            ok=not self.failing,
            failing_for_s=round(self.failing_for(), 1),
            last_error=self.last_error or None,
            failures=self.failures,
            recoveries=self.recoveries,
        )
