"""The front door of a running node: where consoles, `flatten` and browsers attach.

A websocket server on a Unix domain socket next to the database (mode 0600, and the peer's uid
checked, so only the engine's user gets in), and optionally on TCP at 127.0.0.1 with a token
(for SSH tunnels). The protocol is in `attach_protocol.py` and `docs/ATTACH.md`.

The engine never waits for a client. Snapshots are taken and encoded once per broadcast (at most
`snapshot_hz`, only when `seq` moved, or once a second) and events once per event, whatever the
number of clients; each client has a bounded outbox that a task of its own drains into the
socket. A client that stops reading fills its outbox, which is then emptied and marked for a
resync: it gets a fresh snapshot when it reads again, never the backlog. A garbage, oversized or
out-of-protocol frame closes that client only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import socket
import stat
import struct
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from websockets.asyncio.server import Server, ServerConnection, serve, unix_serve
from websockets.exceptions import ConnectionClosed

from slob_tui.config import Settings
from slob_tui.core.events import Event
from slob_tui.core.health import AttachHealth, HealthReport
from slob_tui.engine.bus import EventBus
from slob_tui.engine.snapshot import EngineSnapshot
from slob_tui.errors import UsageError
from slob_tui.node.attach_protocol import (
    CONTROL_COMMANDS,
    MAX_CLIENT_FRAME,
    PROTOCOL_VERSION,
    READ_COMMANDS,
    Bye,
    Command,
    EngineInfo,
    EventFrame,
    Hello,
    ProtocolError,
    Redactor,
    Refused,
    Result,
    Resync,
    SnapshotFrame,
    Welcome,
    decode_client,
    encode,
    event_to_wire,
    private_socket_dir,
    scrub,
    snapshot_to_wire,
    socket_path_for,
)

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 5.0
MAX_CANDLES_PER_REQUEST = 5000
MAX_COMMANDS_IN_FLIGHT = 4


@dataclass(frozen=True)
class FrontDoorConfig:
    """Where the front door listens and what it lets clients do (`SLOB_ATTACH*` settings)."""

    socket_path: Path | None
    """None: no Unix socket (SLOB_ATTACH=0)."""
    db: str = ""
    tcp_port: int = 0
    """0: no TCP listener. Bound to 127.0.0.1 only."""
    token: str = field(default="", repr=False)
    allow_control: bool = True
    """The engine's permission: False makes every client read-only whatever it asks."""
    max_clients: int = 32
    outbox_frames: int = 64
    outbox_bytes: int = 1 << 20
    """A client's outbox overflows at this many frames or bytes, whichever comes first."""
    snapshot_hz: float = 10.0
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_settings(cls, db: str | Path, settings: Settings) -> FrontDoorConfig:
        door = settings.attach
        token = door.token.get_secret_value()
        if door.port and len(token) < 16:
            raise UsageError(
                "SLOB_ATTACH_PORT needs SLOB_ATTACH_TOKEN (16 characters or more) in .env"
            )
        return cls(
            socket_path=socket_path_for(db) if door.enabled else None,
            db=str(db),
            tcp_port=door.port if door.enabled else 0,
            token=token,
            allow_control=door.control,
            secrets=tuple(settings.secrets()),
        )


class AttachControls(Protocol):
    async def kill_switch(self, reason: str) -> dict[str, Any]: ...

    async def reset_kill_switch(self) -> None: ...

    def kill_reason(self) -> str: ...


class AttachStore(Protocol):
    async def candles(
        self, symbol: str, start_ns: int | None = None, end_ns: int | None = None,
        limit: int | None = None,
    ) -> Sequence[Any]: ...  # fmt: skip


class AttachFeed(Protocol):
    # read-only: a feed's plain attributes satisfy these, and the door never sets them
    @property
    def name(self) -> str: ...

    @property
    def symbols(self) -> Sequence[str]: ...


class AttachableEngine(Protocol):
    """What the front door needs of the node (kept small so it never imports `node.py`)."""

    @property
    def seq(self) -> int: ...

    @property
    def mode(self) -> str: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def feed(self) -> AttachFeed: ...

    @property
    def store(self) -> AttachStore: ...

    def snapshot(self) -> EngineSnapshot: ...

    def health(self) -> HealthReport: ...

    def pause_feed(self) -> None: ...

    def resume_feed(self) -> None: ...

    def trading_controls(self) -> AttachControls: ...


class AttachCommands:
    """The commands a client may send, by name; also what in-process surfaces (Telegram) call
    so that every path to the trading gate is the same one."""

    def __init__(self, engine: AttachableEngine, clients: ClientCount) -> None:
        self._engine = engine
        self._clients = clients

    async def run(self, name: str, args: dict[str, Any], *, control: bool) -> Any:
        if name in CONTROL_COMMANDS and not control:
            raise PermissionError(
                "read-only attach: pause, kill switch and reset need `slob-tui attach --control` "
                "and an engine that permits control (SLOB_ATTACH_CONTROL)"
            )
        if name == "health":
            return scrub(self._engine.health().as_dict())
        if name == "clients":
            return self._clients.count()
        if name == "kill_reason":
            return self._engine.trading_controls().kill_reason()
        if name == "candles":
            return await self._candles(args)
        if name == "pause":
            self._engine.pause_feed()
            return True
        if name == "resume":
            self._engine.resume_feed()
            return True
        if name == "kill_switch":
            reason = str(args.get("reason") or "attached client")[:200]
            return scrub(await self._engine.trading_controls().kill_switch(reason))
        if name == "reset_kill_switch":
            await self._engine.trading_controls().reset_kill_switch()
            return True
        raise LookupError(
            f"unknown command {name!r}: one of {sorted(READ_COMMANDS | CONTROL_COMMANDS)}"
        )

    async def _candles(self, args: dict[str, Any]) -> list[Any]:
        symbol = args.get("symbol")
        start, end = args.get("start_ns"), args.get("end_ns")
        if not isinstance(symbol, str) or not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (start, end)
        ):
            raise ValueError("candles needs symbol (text) and start_ns, end_ns (integers or null)")
        rows = await self._engine.store.candles(
            symbol, start_ns=start, end_ns=end, limit=MAX_CANDLES_PER_REQUEST
        )
        return list(rows)


class ClientCount(Protocol):
    def count(self) -> int: ...


class AttachedClient:
    """One connection: its grants and its bounded outbox, drained by its own task."""

    def __init__(
        self, ws: ServerConnection, number: int, transport: str, hello: Hello, control: bool,
        outbox_frames: int, outbox_bytes: int,
    ) -> None:  # fmt: skip
        self.ws = ws
        self.number = number
        self.transport = transport
        self.name = hello.client[:40] or "client"
        self.control = control
        self.events = hello.events
        self.outbox: deque[bytes] = deque()
        self.replies: deque[bytes] = deque()
        self.limit_frames = outbox_frames
        self.limit_bytes = outbox_bytes
        self.queued_bytes = 0
        self.resync_pending = True  # nothing sent yet: the first snapshot is owed
        self.resyncs = 0
        self.in_flight = 0
        self._wake = asyncio.Event()

    def _full(self, incoming: int) -> bool:
        return (
            len(self.outbox) >= self.limit_frames or self.queued_bytes + incoming > self.limit_bytes
        )

    def _clear(self) -> None:
        self.outbox.clear()
        self.queued_bytes = 0

    def _append(self, frame: bytes) -> None:
        self.outbox.append(frame)
        self.queued_bytes += len(frame)
        self._wake.set()

    def offer_snapshot(self, frame: bytes) -> None:
        """A snapshot supersedes whatever is queued when the outbox is full: it is a resync."""
        if self._full(len(frame)):
            if not self.resync_pending:
                self.resyncs += 1
            self._clear()
        self._append(frame)
        self.resync_pending = False

    def offer_event(self, frame: bytes) -> None:
        if self.resync_pending or not self.events:
            return
        if self._full(len(frame)):
            self._clear()  # never the backlog: a fresh snapshot instead
            self.resync_pending = True
            self.resyncs += 1
            return
        self._append(frame)

    def request_resync(self) -> None:
        self._clear()
        self.resync_pending = True
        self.resyncs += 1

    def reply(self, frame: bytes) -> None:
        """Welcome, results and bye: few, and never dropped."""
        self.replies.append(frame)
        self._wake.set()

    async def pump(self) -> None:
        """Write queued frames until the connection ends."""
        while True:
            if not self.replies and not self.outbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.replies:
                frame = self.replies.popleft()
            else:
                frame = self.outbox.popleft()
                self.queued_bytes -= len(frame)
            await self.ws.send(frame, text=True)

    def drained(self) -> bool:
        return not self.replies and not self.outbox


class FrontDoor:
    """Serves a node's snapshots, events and commands to attached clients."""

    def __init__(self, engine: AttachableEngine, config: FrontDoorConfig) -> None:
        self.engine = engine
        self.config = config
        self.commands = AttachCommands(engine, self)
        self.clients: dict[int, AttachedClient] = {}
        self.eseq = 0
        self.served = 0
        self.refused = 0
        self.protocol_errors = 0
        self._resyncs_gone = 0
        self.socket_path: Path | None = None
        self.tcp_port: int | None = None
        self._redact = Redactor(config.secrets)
        self._servers: list[Server] = []
        self._socket_inode: int | None = None
        self._broadcaster: asyncio.Task[None] | None = None
        self._commands: set[asyncio.Task[None]] = set()
        self._last_seq = -1
        self._last_sent = 0.0
        self._numbers = 0

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.config
        if cfg.socket_path is not None:
            sock = self._bind_unix(cfg.socket_path)
            if sock is not None:
                server = await unix_serve(self._serve_unix, sock=sock, **self._ws_options())
                self._servers.append(server)
                self.socket_path = cfg.socket_path
        if cfg.tcp_port:
            server = await serve(self._serve_tcp, "127.0.0.1", cfg.tcp_port, **self._ws_options())
            self._servers.append(server)
            self.tcp_port = server.sockets[0].getsockname()[1] if server.sockets else None
        if self._servers:
            self.engine.bus.subscribe(None, self._on_event)
            self._broadcaster = asyncio.create_task(self._broadcast(), name="front-door")
            log.info("front door: %s", self.describe())

    def describe(self) -> str:
        parts = []
        if self.socket_path is not None:
            parts.append(f"unix {self.socket_path}")
        if self.tcp_port:
            parts.append(f"tcp 127.0.0.1:{self.tcp_port}")
        return ", ".join(parts) or "closed"

    def _ws_options(self) -> dict[str, Any]:
        return {
            "max_size": MAX_CLIENT_FRAME,
            "compression": None,  # per-connection deflate would cost the engine per client
            "max_queue": 8,
            "ping_interval": 20,
            "ping_timeout": 20,
            "close_timeout": 2,
        }

    def _bind_unix(self, path: Path) -> socket.socket | None:
        """A socket only our user may use; a stale file left by a killed engine is replaced,
        a live one is left alone (another engine serves that database)."""
        if path.parent == private_socket_dir():
            path.parent.mkdir(mode=0o700, exist_ok=True)
            os.chmod(path.parent, 0o700)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                log.error("front door: %s exists and is not a socket; not serving", path)
                return None
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.settimeout(1.0)
                probe.connect(os.fspath(path))
            except OSError:
                path.unlink(missing_ok=True)  # nobody listens: a stale socket
            else:
                log.error("front door: another engine already serves %s; not serving", path)
                return None
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(os.fspath(path))
        except OSError as exc:
            sock.close()
            log.error("front door: cannot bind %s: %s", path, exc)
            return None
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self._socket_inode = path.stat().st_ino
        return sock

    async def stop(self, reason: str = "engine stopped") -> None:
        if not self._servers:
            return
        self.engine.bus.unsubscribe(None, self._on_event)
        if self._broadcaster is not None:
            self._broadcaster.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._broadcaster
        self._broadcast_now(force=True)  # the final state, then goodbye
        bye = encode(Bye(reason))
        for client in list(self.clients.values()):
            client.reply(bye)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not all(c.drained() for c in self.clients.values()):
            await asyncio.sleep(0.02)
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=3)
        self._servers.clear()
        path = self.socket_path
        if path is not None:
            with contextlib.suppress(OSError):
                if path.stat().st_ino == self._socket_inode:
                    path.unlink()

    # ---- what operations read ---------------------------------------------------------------
    def count(self) -> int:
        return len(self.clients)

    def health(self) -> AttachHealth:
        return AttachHealth(
            clients=len(self.clients),
            control_clients=sum(1 for c in self.clients.values() if c.control),
            served=self.served,
            refused=self.refused,
            protocol_errors=self.protocol_errors,
            resyncs=self._resyncs_gone + sum(c.resyncs for c in self.clients.values()),
            listening=self.describe(),
            attached=tuple(
                f"{c.name}#{c.number} {c.transport} {'control' if c.control else 'read-only'}"
                for c in self.clients.values()
            ),
        )

    # ---- engine -> clients ------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        self.eseq += 1
        wanting = [c for c in self.clients.values() if c.events and not c.resync_pending]
        if not wanting:
            return
        try:
            frame = self._redact(encode(EventFrame(self.eseq, event_to_wire(event))))
        except Exception as exc:  # noqa: BLE001 - a client resyncs; the bus is not disturbed
            log.warning("front door: event %s not encodable: %s", event.type.value, exc)
            for client in wanting:
                client.request_resync()
            return
        for client in wanting:
            client.offer_event(frame)

    async def _broadcast(self) -> None:
        period = 1.0 / max(self.config.snapshot_hz, 0.5)
        while True:
            await asyncio.sleep(period)
            try:
                self._broadcast_now()
            except Exception as exc:  # noqa: BLE001 - the front door must not die on one snapshot
                log.error("front door: snapshot failed: %s", exc)

    def _broadcast_now(self, force: bool = False) -> None:
        if not self.clients:
            return
        seq = self.engine.seq
        now = time.monotonic()
        owed = [c for c in self.clients.values() if c.resync_pending]
        if not (force or owed or seq != self._last_seq or now - self._last_sent >= 1.0):
            return
        frame = self.snapshot_frame()
        self._last_seq = seq
        self._last_sent = now
        for client in list(self.clients.values()):
            client.offer_snapshot(frame)

    def snapshot_frame(self) -> bytes:
        snap = self.engine.snapshot()
        killed = self.engine.trading_controls().kill_reason()
        frame = SnapshotFrame(snap.seq, self.eseq, snapshot_to_wire(snap), killed)
        return self._redact(encode(frame))

    # ---- one connection -----------------------------------------------------------------------
    async def _serve_unix(self, ws: ServerConnection) -> None:
        sock = ws.transport.get_extra_info("socket")
        uid = _peer_uid(sock)
        if uid is not None and uid != os.getuid():
            self.refused += 1
            log.warning("front door: refused a client of uid %d", uid)
            await self._refuse(ws, "this engine serves its own user only")
            return
        await self._serve(ws, "unix")

    async def _serve_tcp(self, ws: ServerConnection) -> None:
        await self._serve(ws, "tcp")

    async def _refuse(self, ws: ServerConnection, reason: str, code: int = 1008) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(encode(Refused(reason)), text=True)
            await ws.close(code, reason[:120])

    async def _serve(self, ws: ServerConnection, transport: str) -> None:
        try:
            hello = await self._handshake(ws, transport)
        except (ProtocolError, TimeoutError) as exc:
            self.protocol_errors += 1
            log.info("front door: client closed in the handshake: %s", str(exc)[:120])
            await self._refuse(ws, "expected a hello frame first", code=1002)
            return
        except ConnectionClosed:
            return
        if hello is None:
            return
        control, note = self._grant(hello, transport)
        self._numbers += 1
        client = AttachedClient(
            ws, self._numbers, transport, hello, control, self.config.outbox_frames,
            self.config.outbox_bytes,
        )  # fmt: skip
        self.clients[client.number] = client
        self.served += 1
        client.reply(encode(Welcome(PROTOCOL_VERSION, self._info(transport), control, note)))
        client.offer_snapshot(self.snapshot_frame())
        log.info("front door: %s #%d attached (%s%s)", client.name, client.number, transport,
                 ", control" if control else ", read-only")  # fmt: skip
        pump = asyncio.create_task(client.pump(), name=f"attach-{client.number}")
        try:
            await self._receive(ws, client)
        except ProtocolError as exc:
            self.protocol_errors += 1
            log.info("front door: client #%d closed: %s", client.number, str(exc)[:120])
            with contextlib.suppress(ConnectionClosed):
                await ws.close(1002, "protocol error")
        except ConnectionClosed:
            pass
        finally:
            if self.clients.pop(client.number, None) is not None:
                self._resyncs_gone += client.resyncs
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await pump
            log.info("front door: client #%d gone", client.number)

    async def _handshake(self, ws: ServerConnection, transport: str) -> Hello | None:
        if len(self.clients) >= self.config.max_clients:
            self.refused += 1
            await self._refuse(ws, f"too many clients (at most {self.config.max_clients})", 1013)
            return None
        raw = await asyncio.wait_for(ws.recv(), timeout=HANDSHAKE_TIMEOUT_S)
        hello = decode_client(raw)
        if not isinstance(hello, Hello):
            raise ProtocolError("the first frame must be a hello")
        if hello.v != PROTOCOL_VERSION:
            self.refused += 1
            await self._refuse(ws, f"protocol version {hello.v} unsupported: this engine speaks "
                                   f"{PROTOCOL_VERSION}")  # fmt: skip
            return None
        if transport == "tcp" and not _token_ok(hello.token, self.config.token):
            self.refused += 1
            log.warning("front door: refused a TCP client: bad token")
            await self._refuse(ws, "bad token")
            return None
        return hello

    def _grant(self, hello: Hello, transport: str) -> tuple[bool, str]:
        if not hello.control:
            return False, ""
        if not self.config.allow_control:
            return False, "this engine permits no control (SLOB_ATTACH_CONTROL=0)"
        return True, ""

    def _info(self, transport: str) -> EngineInfo:
        feed = self.engine.feed
        return EngineInfo(
            db=self.config.db,
            mode=self.engine.mode,
            feed=feed.name,
            symbols=tuple(feed.symbols),
            pid=os.getpid(),
            transport=transport,
        )

    async def _receive(self, ws: ServerConnection, client: AttachedClient) -> None:
        async for raw in ws:
            frame = decode_client(raw)
            if isinstance(frame, Resync):
                client.request_resync()
            elif isinstance(frame, Command):
                self._start_command(client, frame)
            else:
                raise ProtocolError("hello sent twice")

    def _start_command(self, client: AttachedClient, cmd: Command) -> None:
        if client.in_flight >= MAX_COMMANDS_IN_FLIGHT:
            client.reply(encode(Result(cmd.id, False, error="busy: too many commands at once")))
            return
        client.in_flight += 1
        task = asyncio.create_task(self._run_command(client, cmd), name=f"attach-cmd-{cmd.name}")
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    async def _run_command(self, client: AttachedClient, cmd: Command) -> None:
        """Runs to the end even if the client goes: a kill switch is never half-done."""
        try:
            value = await self.commands.run(cmd.name, cmd.args, control=client.control)
            result = Result(cmd.id, True, value)
        except Exception as exc:  # noqa: BLE001 - reported to the client that asked
            result = Result(cmd.id, False, error=f"{type(exc).__name__}: {exc}"[:500])
        finally:
            client.in_flight -= 1
        if cmd.name in CONTROL_COMMANDS:
            log.warning("front door: %s #%d ran %s: %s", client.name, client.number, cmd.name,
                        "ok" if result.ok else result.error)  # fmt: skip
        client.reply(self._redact(encode(result)))


def _token_ok(given: str, expected: str) -> bool:
    """Constant time, whatever the lengths."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _peer_uid(sock: socket.socket | None) -> int | None:
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    uid: int
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid
