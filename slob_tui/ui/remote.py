"""The console's side of attach: a `RemoteEngine` that satisfies `ConsoleEngine` over the wire.

It keeps the latest snapshot a node's front door sent and hands it to the same console (same
widgets, themes, snapshots) as a hosted engine would. `run()` is the connection loop: connect,
handshake, read frames, and when the engine goes away say so on the banner and reconnect with
the project's one retry policy, resyncing from the fresh snapshot every connection starts with.
Detaching (`request_stop`/`stop`, what ctrl+q ends in) closes our socket and nothing else: the
engine never hears a stop from a console.

`seq` here is our own count of changes (a new snapshot, a connection state), not the engine's:
an engine that restarts counts from zero again, and the console must still redraw.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from slob_tui.core.health import HealthReport
from slob_tui.core.models import Candle
from slob_tui.core.retry import RetryPolicy
from slob_tui.engine.snapshot import EngineSnapshot
from slob_tui.node.attach_protocol import (
    MAX_SERVER_FRAME,
    PROTOCOL_VERSION,
    Bye,
    Command,
    EngineInfo,
    EventFrame,
    Hello,
    ProtocolError,
    Refused,
    Result,
    Resync,
    SnapshotFrame,
    Welcome,
    decode_server,
    encode,
    snapshot_from_wire,
)

log = logging.getLogger(__name__)

RECONNECT = RetryPolicy(base_s=0.25, cap_s=5.0)
COMMAND_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class AttachTarget:
    """Where the engine's front door is: a Unix socket path or a ws:// URL (with a token)."""

    socket: Path | None = None
    url: str = ""
    token: str = dataclasses.field(default="", repr=False)

    def describe(self) -> str:
        return str(self.socket) if self.socket is not None else self.url

    async def open(self, timeout: float = 5.0) -> ClientConnection:
        options: dict[str, Any] = {
            "max_size": MAX_SERVER_FRAME,
            "compression": None,
            "open_timeout": timeout,
            "close_timeout": 2,
        }
        if self.socket is not None:
            return await unix_connect(str(self.socket), uri="ws://localhost/attach", **options)
        return await connect(self.url, **options)


class AttachRefused(Exception):
    """The engine said no (version, token, too many clients): retrying will not help."""


class RemoteFeed:
    def __init__(self) -> None:
        self.name = "attached"
        self.symbols: Sequence[str] = ()


class RemoteStore:
    """Older candles for the chart's scroll-back, asked of the engine's store over the wire."""

    def __init__(self, engine: RemoteEngine) -> None:
        self._engine = engine
        self.path: Path | None = None

    async def candles(
        self, symbol: str, start_ns: int | None = None, end_ns: int | None = None,
        limit: int | None = None,
    ) -> list[Candle]:  # fmt: skip
        rows = await self._engine.command(
            "candles", {"symbol": symbol, "start_ns": start_ns, "end_ns": end_ns}
        )
        return msgspec.convert(rows, list[Candle])


class RemoteControls:
    """The console's K over the wire: the node's trading gate decides, we only ask."""

    def __init__(self, engine: RemoteEngine) -> None:
        self._engine = engine
        self.broker_name = "remote"

    async def kill_switch(self, reason: str) -> dict[str, Any]:
        value = await self._engine.command("kill_switch", {"reason": f"attached {reason}"})
        return value if isinstance(value, dict) else {"result": value}

    async def reset_kill_switch(self) -> None:
        await self._engine.command("reset_kill_switch")

    def kill_reason(self) -> str:
        return str(self._engine.kill_reason)

    def confirm_live(self) -> None:
        """Live trading is confirmed where the engine runs, never from an attached console."""


def _empty_snapshot(mode: str, feed: str) -> EngineSnapshot:
    return EngineSnapshot(
        seq=0, now_ns=time.time_ns(), mode=mode, feed=feed, symbols=(), paused=False,
        candles={}, forming={}, last_price={}, setups=(), orders=(), positions=(),
        health=HealthReport(mode=mode),
    )  # fmt: skip


class RemoteEngine:
    """A running node seen through its front door; what `slob-tui attach` hosts."""

    def __init__(
        self, target: AttachTarget, *, control: bool = False, client: str = "console",
        events: bool = True, retry: RetryPolicy = RECONNECT,
    ) -> None:  # fmt: skip
        self.target = target
        self.want_control = control
        self.client_name = client
        self.want_events = events
        self.retry = retry
        self.mode = "DEMO"
        self.seq = 0
        self.paused = False
        self.stop_reason = ""
        self.connected = False
        self.control = False
        self.info: EngineInfo | None = None
        self.state = "connecting"
        self.note = ""
        self.why = ""
        """Why we are not attached (engine stopped, connection lost), kept across retries."""
        self.kill_reason = ""
        self.remote_seq = -1
        self.eseq = -1
        self.snapshots = 0
        self.events_seen = 0
        self.gaps = 0
        self.connections = 0
        self.first_frame_s: float | None = None
        self._feed = RemoteFeed()
        self._store = RemoteStore(self)
        self._controls = RemoteControls(self)
        self._snap = _empty_snapshot(self.mode, "attached")
        self._view = self._decorate(self._snap)
        self._ws: ClientConnection | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = 0
        self._stop = asyncio.Event()
        self._stopped = False
        self._created = time.monotonic()

    # ---- ConsoleEngine ------------------------------------------------------------------------
    @property
    def feed(self) -> RemoteFeed:
        return self._feed

    @property
    def store(self) -> RemoteStore:
        return self._store

    @property
    def stopped(self) -> bool:
        return self._stopped

    def snapshot(self) -> EngineSnapshot:
        return self._view

    def raw_snapshot(self) -> EngineSnapshot:
        """The engine's snapshot as received, without the ATTACHED banner text."""
        return self._snap

    async def start(self) -> None:
        """Nothing to open up front: `run` connects, and keeps reconnecting."""

    async def run(self, duration: float | None = None) -> None:
        """Stay attached until detached (or `duration` passes), reconnecting as needed."""
        loop_task = asyncio.create_task(self._connection_loop(), name="attach-loop")
        stop_task = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait(
                {loop_task, stop_task}, timeout=duration, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (loop_task, stop_task):
                task.cancel()
            for task in (loop_task, stop_task):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._close()
            self._stopped = True
            if not self.stop_reason:
                self.stop_reason = "detached"
        if loop_task.done() and not loop_task.cancelled() and loop_task.exception():
            raise loop_task.exception()  # type: ignore[misc]

    async def stop(self, reason: str = "detached") -> None:
        self.request_stop(reason)
        await self._close()
        self._stopped = True

    def request_stop(self, reason: str = "detached") -> None:
        """Detach: close our connection; the engine keeps running."""
        self.stop_reason = self.stop_reason or reason
        self._stop.set()

    def pause_feed(self) -> None:
        self._fire("pause")

    def resume_feed(self) -> None:
        self._fire("resume")

    def trading_controls(self) -> RemoteControls:
        return self._controls

    # ---- commands -------------------------------------------------------------------------------
    async def command(self, name: str, args: dict[str, Any] | None = None) -> Any:
        """Send a command and wait for its result; raises with the engine's error text."""
        if name in ("pause", "resume", "kill_switch", "reset_kill_switch") and not self.control:
            raise PermissionError(self._read_only_text())
        ws = self._ws
        if ws is None or not self.connected:
            raise ConnectionError(f"not attached to {self.target.describe()} right now")
        self._ids += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._ids] = future
        try:
            await ws.send(encode(Command(self._ids, name, args or {})), text=True)
            return await asyncio.wait_for(future, timeout=COMMAND_TIMEOUT_S)
        finally:
            self._pending.pop(self._ids, None)

    def _read_only_text(self) -> str:
        if self.want_control:
            return f"the engine refused control: {self.note or 'not permitted'}"
        return "read-only: attach with --control to pause, kill or flatten"

    def _fire(self, name: str) -> None:
        """Pause and resume are synchronous in the console; their outcome shows on the banner."""
        if not self.control:
            self._set_note(self._read_only_text())
            return
        task = asyncio.get_running_loop().create_task(self._fire_and_report(name))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _fire_and_report(self, name: str) -> None:
        try:
            await self.command(name)
        except Exception as exc:  # noqa: BLE001 - shown on the banner
            self._set_note(f"{name} failed: {exc}")

    # ---- the connection loop ---------------------------------------------------------------------
    async def _connection_loop(self) -> None:
        backoff = self.retry.start()
        while True:
            try:
                await self._attach_once(backoff)
            except AttachRefused as exc:
                self._set_state("refused", str(exc))
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, ProtocolError, TimeoutError,
                    asyncio.IncompleteReadError) as exc:  # fmt: skip
                if self.connected:
                    log.info("attach: connection to %s lost: %s", self.target.describe(), exc)
                    self.why = "connection lost"
                elif not self.why:
                    self.why = "no engine answers"
            finally:
                self._lost()
            backoff.failed()
            delay = backoff.next_delay()
            self._set_state("disconnected", f"{self.why} · reconnecting in {delay:.1f} s")
            await asyncio.sleep(delay)

    async def _handshake(self, timeout: float = 5.0) -> ClientConnection:
        """Connect, say hello, take the welcome (or raise `AttachRefused`)."""
        ws = await self.target.open(timeout)
        self._ws = ws
        try:
            hello = Hello(PROTOCOL_VERSION, client=self.client_name, control=self.want_control,
                          events=self.want_events, token=self.target.token)  # fmt: skip
            await ws.send(encode(hello), text=True)
            first = decode_server(await asyncio.wait_for(ws.recv(), timeout=timeout))
            if isinstance(first, Refused):
                raise AttachRefused(first.reason)
            if not isinstance(first, Welcome):
                raise ProtocolError("expected a welcome frame")
        except BaseException:
            await ws.close()
            self._ws = None
            raise
        self.info = first.engine
        if self.target.socket is not None:
            self._store.path = Path(first.engine.db)  # same machine: the health panel sizes it
        self.control = first.control
        self.note = first.control_note
        self.connections += 1
        self.connected = True
        self.why = ""
        self.eseq = -1
        return ws

    async def _attach_once(self, backoff: Any) -> None:
        ws = await self._handshake()
        backoff.succeeded()
        self._set_state("attached")
        await self._read(ws)

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            if self._handle(decode_server(raw)):
                return

    async def call_once(self, name: str, args: dict[str, Any] | None = None) -> Any:
        """One command on a connection of its own, closed after the result; `ConnectionError`
        when no engine answers."""
        try:
            ws = await self._handshake()
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise ConnectionError(
                f"no engine answers at {self.target.describe()} ({exc})"
            ) from None
        reader = asyncio.create_task(self._read(ws))
        try:
            return await self.command(name, args)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, ProtocolError):
                await reader
            await self._close()

    def _handle(self, frame: Any) -> bool:
        """Apply one frame; True when the engine said goodbye."""
        if isinstance(frame, SnapshotFrame):
            self._apply_snapshot(frame)
        elif isinstance(frame, EventFrame):
            if self.eseq >= 0 and frame.eseq != self.eseq + 1:
                self.gaps += 1
                self.eseq = -1  # ignore events until the fresh snapshot comes
                self._ask_resync()
            elif self.eseq >= 0:
                self.eseq = frame.eseq
                self.events_seen += 1
        elif isinstance(frame, Result):
            future = self._pending.get(frame.id)
            if future is not None and not future.done():
                if frame.ok:
                    future.set_result(frame.value)
                else:
                    future.set_exception(RuntimeError(frame.error))
        elif isinstance(frame, Bye):
            self.why = f"engine stopped: {frame.reason}"
            self.connected = False
            self._set_state("disconnected", self.why)
            return True
        return False

    def _ask_resync(self) -> None:
        ws = self._ws
        if ws is not None:
            task = asyncio.get_running_loop().create_task(ws.send(encode(Resync()), text=True))
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    def _apply_snapshot(self, frame: SnapshotFrame) -> None:
        snap = snapshot_from_wire(frame.snap)
        self._snap = snap
        self.remote_seq = frame.seq
        self.eseq = frame.eseq
        self.mode = snap.mode
        self.paused = snap.paused
        self._feed.name = snap.feed
        self._feed.symbols = snap.symbols
        self.kill_reason = frame.kill_reason
        self.snapshots += 1
        if self.first_frame_s is None:
            self.first_frame_s = time.monotonic() - self._created
        self._refresh()

    def _lost(self) -> None:
        self.connected = False
        self.control = False
        ws, self._ws = self._ws, None
        if ws is not None:
            task = asyncio.get_running_loop().create_task(ws.close())
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the engine went away"))

    async def _close(self) -> None:
        ws, self._ws = self._ws, None
        self.connected = False
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    # ---- what the banner says ----------------------------------------------------------------
    def _set_state(self, state: str, note: str = "") -> None:
        self.state = state
        if note or state == "attached":
            self.note = note
        self._refresh()

    def _set_note(self, note: str) -> None:
        self.note = note
        self._refresh()

    def banner_text(self) -> str:
        where = self.target.describe()
        access = "control" if self.control else "read-only"
        if self.state == "attached":
            text = f"ATTACHED to {where} ({access})"
        else:
            text = f"{self.state.upper()} from {where}"
        return f"{text} · {self.note}" if self.note else text

    def _decorate(self, snap: EngineSnapshot) -> EngineSnapshot:
        """The snapshot the console draws: the engine's, with the banner saying where it is."""
        return dataclasses.replace(snap, feed=f"{snap.feed} · {self.banner_text()}")

    def _refresh(self) -> None:
        self._view = self._decorate(self._snap)
        self.seq += 1


async def probe(target: AttachTarget) -> EngineInfo:
    """Handshake once (read-only, no events) and return what the engine is; raises
    `ConnectionError` if no engine answers, `AttachRefused` if it says no."""
    engine = RemoteEngine(target, client="probe", events=False)
    await engine.call_once("clients")
    assert engine.info is not None
    return engine.info


async def send_command(
    target: AttachTarget, name: str, args: dict[str, Any] | None = None, *, control: bool = True
) -> Any:
    """One command to a running engine, for `slob-tui flatten` and scripts: connect, ask, close.
    Raises `ConnectionError` when no engine answers (then nothing runs: act directly),
    `AttachRefused`, `PermissionError` (read-only) or `RuntimeError` with the engine's error."""
    engine = RemoteEngine(target, control=control, client=f"cli:{name}", events=False)
    return await engine.call_once(name, args)
