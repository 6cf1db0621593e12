"""The console's hold on the engine: its run as a task, and every way out.

`SlobConsole` inherits this mixin, so app.py keeps layout, snapshots and actions. The engine's
`run()` is an asyncio task watched by a Textual worker. Textual cancels workers at exit without
awaiting them, so the engine task is shielded from that cancellation and every way out — ctrl+q,
the quit command, SIGTERM, SIGHUP, a vanished terminal, or the app unmounting — ends in
`shutdown_engine()`, which requests a stop and awaits the engine's graceful stop. The task only
posts messages; it never touches a widget.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

from slob_tui.ui.messages import EngineStarted, EngineStopped

log = logging.getLogger("slob_tui.ui.app")  # the name these messages had before the move


class EngineHost:
    """Engine task, graceful quit, signal handlers and the terminal watch of `SlobConsole`
    (a Textual `App`, which sets the state below in its `__init__`)."""

    engine: Any
    duration: float | None
    stop_timeout: float
    _factory: Callable[[], Any] | None
    _engine_task: asyncio.Task[Any] | None
    _quitting: bool
    _signals: list[int]

    def start_engine(self) -> None:
        """Build (if a factory was given) and run the engine; the worker only watches it."""
        if self._engine_task is not None:
            return
        if self.engine is None and self._factory is not None:
            self.engine = self._factory()
        self._engine_task = asyncio.create_task(self._run_engine(), name="console-engine")
        self.run_worker(self._watch_engine(), name="engine", group="engine", exit_on_error=False)

    async def _run_engine(self) -> None:
        engine = self.engine
        try:
            await engine.start()
            self.post_message(EngineStarted(engine.mode))
            await engine.run(self.duration)
        except Exception as exc:  # noqa: BLE001 - reported on screen, the app stays up
            if not engine.stopped:
                await engine.stop(f"error: {exc}")
            self.post_message(EngineStopped(engine.stop_reason or "error", str(exc)))
            return
        self.post_message(EngineStopped(engine.stop_reason or "stopped"))

    async def _watch_engine(self) -> None:
        assert self._engine_task is not None
        await asyncio.shield(self._engine_task)

    async def shutdown_engine(self, reason: str) -> None:
        """Request a graceful stop and wait for it: candles flushed before we go."""
        task = self._engine_task
        if task is None or self.engine is None:
            return
        self.engine.request_stop(reason)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self.stop_timeout)
        except TimeoutError:
            log.error("engine did not stop within %.0f s", self.stop_timeout)
        except Exception as exc:  # noqa: BLE001 - already reported by _run_engine
            log.error("engine stop: %s", exc)

    async def graceful_quit(self, reason: str) -> None:
        if self._quitting:
            return
        self._quitting = True
        await self.shutdown_engine(reason)
        self.exit(0)

    async def action_quit(self) -> None:
        await self.graceful_quit("quit")

    async def on_unmount(self) -> None:
        await self.shutdown_engine("console closed")
        self._remove_signal_handlers()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(sig, self.on_signal, sig)
                self._signals.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()

    def on_signal(self, sig: int) -> None:
        """SIGTERM/SIGHUP: the same graceful stop as ctrl+q."""
        name = signal.Signals(sig).name
        self.call_later(self.graceful_quit, f"signal {name}")

    def check_terminal(self, fd: int = 0) -> bool:
        """Quit gracefully when our terminal is gone (a dropped SSH session); True if alive."""
        try:
            alive = os.isatty(fd)
            if alive:
                os.get_terminal_size(fd)
        except OSError:
            alive = False
        if not alive:
            self.call_later(self.graceful_quit, "terminal vanished")
        return alive
