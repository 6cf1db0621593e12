"""Waiting in a test for something another task, thread or process does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(
    predicate: Callable[[], object], timeout: float = 20.0, what: str = "the condition",
    step: float = 0.02,
) -> None:  # fmt: skip
    """Poll `predicate` with the loop free in between; an AssertionError past `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(step)
