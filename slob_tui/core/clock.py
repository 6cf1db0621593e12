"""Injected clocks: the wall clock live, a clock driven by data in replay and tests."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int: ...


class WallClock:
    """Real time."""

    def now_ns(self) -> int:
        return time.time_ns()


class ManualClock:
    """A clock that only moves when told: tests, replay and snapshots."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def set(self, ns: int) -> None:
        self._now = ns

    def advance(self, ns: int) -> None:
        self._now += ns


class AcceleratedClock:
    """Wall time sped up by `speed` from a chosen start: the demo market's clock."""

    def __init__(self, start_ns: int, speed: float = 1.0, wall: Clock | None = None) -> None:
        self._wall = wall or WallClock()
        self._origin_wall = self._wall.now_ns()
        self._origin = start_ns
        self.speed = speed

    def now_ns(self) -> int:
        return self._origin + int((self._wall.now_ns() - self._origin_wall) * self.speed)
