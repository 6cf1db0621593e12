"""The console's hold on the engine: what it needs of one, and its run as a task.

`ConsoleEngine` is the surface the console reads and drives: a `TradingNode` (the real thing)
or a bare `LiveTradingEngine` (tests of the screens, which place no orders and so offer no
trading controls). `EngineRunner` runs it as an asyncio task that a Textual worker watches.
Textual cancels workers at exit without awaiting them, so the task is shielded from that
cancellation, and every way out of the console ends in `shutdown()`, which requests a stop and
awaits the graceful one. The runner only posts messages; it never touches a widget.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from textual.message import Message

from slob_tui.engine.snapshot import EngineSnapshot
from slob_tui.ui.messages import EngineStarted, EngineStopped

log = logging.getLogger("slob_tui.ui.app")


# Members are read-only properties: the console only reads them, and the node exposes them as
# properties (a plain attribute satisfies a read-only protocol member too).
class TradingControls(Protocol):
    @property
    def broker_name(self) -> str: ...

    async def kill_switch(self, reason: str) -> dict[str, Any]: ...

    async def reset_kill_switch(self) -> None: ...

    def kill_reason(self) -> str: ...

    def confirm_live(self) -> None: ...


class ConsoleFeed(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def symbols(self) -> Sequence[str]: ...


class ConsoleStore(Protocol):
    path: Path


class ConsoleEngine(Protocol):
    @property
    def mode(self) -> str: ...

    @property
    def seq(self) -> int: ...

    @property
    def paused(self) -> bool: ...

    @property
    def stop_reason(self) -> str: ...

    @property
    def feed(self) -> ConsoleFeed: ...

    @property
    def store(self) -> Any: ...

    @property
    def stopped(self) -> bool: ...

    def snapshot(self) -> EngineSnapshot: ...

    async def start(self) -> None: ...

    async def run(self, duration: float | None = None) -> None: ...

    async def stop(self, reason: str = "stopped") -> None: ...

    def request_stop(self, reason: str = "stop requested") -> None: ...

    def pause_feed(self) -> None: ...

    def resume_feed(self) -> None: ...

    def trading_controls(self) -> TradingControls | None: ...


class EngineRunner:
    """Builds (from a factory, if given one) and runs the console's engine as a task."""

    def __init__(
        self,
        engine_or_factory: ConsoleEngine | Callable[[], ConsoleEngine],
        *,
        post_message: Callable[[Message], object],
        duration: float | None,
        stop_timeout: float,
    ) -> None:
        if callable(engine_or_factory) and not hasattr(engine_or_factory, "snapshot"):
            self.engine: ConsoleEngine | None = None
            self._factory: Callable[[], ConsoleEngine] | None = engine_or_factory
        else:
            self.engine = engine_or_factory  # type: ignore[assignment]
            self._factory = None
        self._post = post_message
        self.duration = duration
        self.stop_timeout = stop_timeout
        self.task: asyncio.Task[None] | None = None
        self.error: Exception | None = None  # what ended the engine, if anything did

    def start(self) -> bool:
        """Build the engine if needed and start its task; False if it already runs."""
        if self.task is not None:
            return False
        if self.engine is None and self._factory is not None:
            self.engine = self._factory()
        self.task = asyncio.create_task(self._run(), name="console-engine")
        return True

    async def _run(self) -> None:
        engine = self.engine
        assert engine is not None
        started = False
        try:
            await engine.start()
            started = True
            self._post(EngineStarted(engine.mode))
            await engine.run(self.duration)
        except Exception as exc:  # noqa: BLE001 - reported by the app, which decides the exit
            self.error = exc
            if not engine.stopped:
                await engine.stop(f"error: {exc}")
            reason = (engine.stop_reason or "error") if started else "failed to start"
            self._post(EngineStopped(reason, str(exc), at_start=not started))
            return
        self._post(EngineStopped(engine.stop_reason or "stopped"))

    async def watch(self) -> None:
        """What the Textual worker awaits: the task, shielded from the worker's cancel."""
        assert self.task is not None
        await asyncio.shield(self.task)

    async def shutdown(self, reason: str) -> None:
        """Request a graceful stop and wait for it: candles flushed before we go."""
        task = self.task
        if task is None or self.engine is None:
            return
        self.engine.request_stop(reason)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self.stop_timeout)
        except TimeoutError:
            log.error("engine did not stop within %.0f s", self.stop_timeout)
        except Exception as exc:  # noqa: BLE001 - already reported by _run
            log.error("engine stop: %s", exc)
