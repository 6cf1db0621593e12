"""The event bus: typed events, several handlers per type, failures isolated and counted."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from slob_tui.core.events import PAYLOAD_TYPES, Event, EventType, check_payload

log = logging.getLogger(__name__)

Handler = Callable[[Event], Any] | Callable[[Event], Awaitable[Any]]


class EventBus:
    """Publish/subscribe between engine parts.

    `emit` runs sync handlers at once and schedules async ones; `emit_and_wait` awaits every
    handler, for critical events (a setup that must be persisted before it is acted on).
    A handler that raises is logged and counted; the others still run.

    `check_payloads` (on unless Python runs with -O) refuses an event whose payload is not
    its type's class, raising `PayloadMismatchError` to the publisher before any handler runs:
    a dict lookup and a type comparison per event, and events are per candle or rarer.
    """

    def __init__(self, history_size: int = 1000, check_payloads: bool = __debug__) -> None:
        self.check_payloads = check_payloads
        self._handlers: dict[EventType | None, list[Handler]] = defaultdict(list)
        self.history: deque[Event] | None = deque(maxlen=history_size) if history_size else None
        self.emitted = 0
        self.handler_errors = 0
        self.errors_by_handler: dict[str, int] = defaultdict(int)
        self._pending: set[asyncio.Task[Any]] = set()

    def subscribe(
        self, event_type: EventType | None, handler: Handler, first: bool = False
    ) -> None:
        """Register `handler` for one type, or for every type with `None`; `first` puts it
        before the handlers already there (an observer that must see an event before others
        act on it)."""
        if first:
            self._handlers[event_type].insert(0, handler)
        else:
            self._handlers[event_type].append(handler)

    def unsubscribe(self, event_type: EventType | None, handler: Handler) -> None:
        handlers = self._handlers.get(event_type, [])
        if handler in handlers:
            handlers.remove(handler)

    def handler_count(self, event_type: EventType | None = None) -> int:
        return len(self._handlers.get(event_type, []))

    def _targets(self, event: Event) -> list[Handler]:
        specific = self._handlers.get(event.type)
        wildcard = self._handlers.get(None)
        if specific and wildcard:
            return [*specific, *wildcard]
        return list(specific or wildcard or ())

    def _failed(self, handler: Handler, event: Event, exc: BaseException) -> None:
        self.handler_errors += 1
        name = getattr(handler, "__qualname__", repr(handler))
        self.errors_by_handler[name] += 1
        log.error("event handler %s failed on %s: %r", name, event.type.value, exc)

    def emit(self, event: Event) -> None:
        """Deliver without waiting for async handlers (they run as tasks)."""
        if self.check_payloads and type(event.data) is not PAYLOAD_TYPES[event.type]:
            check_payload(event)  # a subclass passes; anything else is refused
        self.emitted += 1
        if self.history is not None:
            self.history.append(event)
        for handler in self._targets(event):
            try:
                result = handler(event)
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                self._failed(handler, event, exc)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(self._guard(handler, event, result))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    async def emit_and_wait(self, event: Event) -> None:
        """Deliver and await every handler, in registration order."""
        if self.check_payloads and type(event.data) is not PAYLOAD_TYPES[event.type]:
            check_payload(event)  # a subclass passes; anything else is refused
        self.emitted += 1
        if self.history is not None:
            self.history.append(event)
        for handler in self._targets(event):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # noqa: BLE001
                self._failed(handler, event, exc)

    async def _guard(self, handler: Handler, event: Event, aw: Awaitable[Any]) -> None:
        try:
            await aw
        except Exception as exc:  # noqa: BLE001
            self._failed(handler, event, exc)

    async def drain(self) -> None:
        """Wait for async handlers scheduled by `emit`."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def recent(self, event_type: EventType | None = None, limit: int = 100) -> list[Event]:
        if self.history is None:
            return []
        items = [e for e in self.history if event_type is None or e.type is event_type]
        return items[-limit:]

    def stats(self) -> dict[str, Any]:
        return {
            "emitted": self.emitted,
            "handler_errors": self.handler_errors,
            "handlers": sum(len(v) for v in self._handlers.values()),
        }
