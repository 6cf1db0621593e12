"""Messages the console posts to itself. Dataclasses, all in one place.

The engine's worker never touches a widget: it posts one of these and the app's handlers, which
run on the UI's message loop, update the screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class EngineStarted(Message):
    """The engine finished `start()`: the store is open and the feed runs."""

    mode: str


@dataclass
class EngineStopped(Message):
    """The engine's run ended (feed finished, stop requested or an error); `at_start`: it
    never ran (its store or broker could not be opened)."""

    reason: str
    error: str | None = None
    at_start: bool = False


@dataclass
class KillSwitchDone(Message):
    """The kill switch ran; `summary` says what it cancelled and flattened (or why not)."""

    summary: str
    ok: bool = True
