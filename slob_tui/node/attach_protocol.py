"""The attach protocol: typed frames between a running node's front door and its clients.

Written down for people in `docs/ATTACH.md`; this module is the one definition both sides use,
so the server and the console cannot drift apart. Frames are JSON text (msgspec Structs tagged
by `t`), one per websocket message. JSON rather than a binary encoding because an operator can
read a captured frame, and the snapshot rate (at most 10 a second) makes the size irrelevant.

A client's frames are decoded strictly: an unknown tag, a missing field or a wrong type is a
`ProtocolError`, and the server closes that client only.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import msgspec

from slob_tui.core.event_payloads import (
    DataQualityFinding,
    ErrorReport,
    finding_from_fields,
    payload_fields,
)
from slob_tui.core.events import PAYLOAD_TYPES, Event, EventPayload, EventType
from slob_tui.core.models import Candle, Order, Position, SetupUpdate
from slob_tui.engine.snapshot import EngineSnapshot, SetupView

PROTOCOL_VERSION = 1
MAX_CLIENT_FRAME = 64 * 1024
"""A client sends hellos and commands, never more than this in one frame."""
MAX_SERVER_FRAME = 16 * 1024 * 1024
"""Snapshots carry recent candles of every symbol: generous, but bounded."""
SOCKET_SUFFIX = ".sock"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux; keep a margin

READ_COMMANDS = frozenset({"health", "candles", "kill_reason", "clients"})
CONTROL_COMMANDS = frozenset({"pause", "resume", "kill_switch", "reset_kill_switch"})
COMMANDS = READ_COMMANDS | CONTROL_COMMANDS
SECRET_KEY_PARTS = ("secret", "token", "password", "api_key", "apikey")


class ProtocolError(ValueError):
    """A frame that is not valid under this protocol."""


# ---- client -> server ---------------------------------------------------------------------


class Hello(msgspec.Struct, tag_field="t", tag="hello", forbid_unknown_fields=True):
    """The first frame of every connection."""

    v: int
    client: str = ""
    control: bool = False
    """Ask for pause, kill switch and flatten; granted only if the engine permits it."""
    events: bool = True
    """Stream bus events after the snapshot (a console that only draws may say no)."""
    token: str = ""
    """Required on TCP; never logged, never echoed."""


class Command(msgspec.Struct, tag_field="t", tag="cmd", forbid_unknown_fields=True):
    id: int
    name: str
    args: dict[str, Any] = {}


class Resync(msgspec.Struct, tag_field="t", tag="resync", forbid_unknown_fields=True):
    """The client saw a gap in `eseq`: send me a fresh snapshot."""


ClientFrame = Hello | Command | Resync


# ---- server -> client ---------------------------------------------------------------------


class EngineInfo(msgspec.Struct):
    db: str
    mode: str
    feed: str
    symbols: tuple[str, ...]
    pid: int
    transport: str  # unix | tcp


class Welcome(msgspec.Struct, tag_field="t", tag="welcome"):
    v: int
    engine: EngineInfo
    control: bool
    """Whether this client may pause, kill and reset."""
    control_note: str = ""
    """Why control was refused, when it was asked for."""


class Refused(msgspec.Struct, tag_field="t", tag="refused"):
    """Sent instead of `Welcome` (wrong version, bad token, too many clients); then close."""

    reason: str


class WireEvent(msgspec.Struct):
    type: str
    ts: int
    source: str = ""
    kind: str = "none"
    """How `data` is written: `candle`, `setup` (the models) or `dict` (a payload's fields);
    engines before typed payloads also sent `order`, `fill`, `position`, `text`, `none`."""
    data: Any = None


class WireSnapshot(msgspec.Struct):
    seq: int
    now_ns: int
    mode: str
    feed: str
    symbols: tuple[str, ...]
    paused: bool
    candles: dict[str, tuple[Candle, ...]]
    forming: dict[str, Candle | None]
    last_price: dict[str, float]
    setups: tuple[SetupView, ...]
    orders: tuple[Order, ...]
    positions: tuple[Position, ...]
    health: dict[str, Any]
    events: tuple[WireEvent, ...] = ()


class SnapshotFrame(msgspec.Struct, tag_field="t", tag="snapshot"):
    """The whole state. `eseq`: the last event it already includes."""

    seq: int
    eseq: int
    snap: WireSnapshot
    kill_reason: str = ""
    """Why new orders are blocked (the trading gate's kill switch); empty while allowed."""


class EventFrame(msgspec.Struct, tag_field="t", tag="event"):
    """One bus event; `eseq` is one more than the previous one this client was sent."""

    eseq: int
    event: WireEvent


class Result(msgspec.Struct, tag_field="t", tag="result"):
    id: int
    ok: bool
    value: Any = None
    error: str = ""


class Bye(msgspec.Struct, tag_field="t", tag="bye"):
    """The engine is stopping: reconnect later."""

    reason: str


ServerFrame = Welcome | Refused | SnapshotFrame | EventFrame | Result | Bye

_client_decoder = msgspec.json.Decoder(ClientFrame)
_server_decoder = msgspec.json.Decoder(ServerFrame)


def _fallback(obj: Any) -> Any:
    """Anything msgspec cannot encode goes as text (paths, sets, exceptions)."""
    if isinstance(obj, set | frozenset):
        return sorted(str(x) for x in obj)
    return str(obj)


_encoder = msgspec.json.Encoder(enc_hook=_fallback)


def encode(frame: msgspec.Struct) -> bytes:
    return _encoder.encode(frame)


def decode_client(raw: str | bytes) -> Hello | Command | Resync:
    try:
        return _client_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(str(exc)) from None


def decode_server(
    raw: str | bytes,
) -> Welcome | Refused | SnapshotFrame | EventFrame | Result | Bye:
    try:
        return _server_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(str(exc)) from None


# ---- no secret on the wire ------------------------------------------------------------------


def scrub(value: Any) -> Any:
    """A copy of health-like data without any value whose key names a secret."""
    if isinstance(value, dict):
        return {k: ("<redacted>" if _secret_key(k) else scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _secret_key(key: Any) -> bool:
    text = str(key).lower()
    return any(part in text for part in SECRET_KEY_PARTS)


class Redactor:
    """The last line of defence: replace any secret value in force inside an encoded frame."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._secrets = tuple(s.encode() for s in secrets if len(s) >= 4)

    def __call__(self, frame: bytes) -> bytes:
        for secret in self._secrets:
            if secret in frame:
                frame = frame.replace(secret, b"<redacted>")
        return frame


# ---- events and snapshots <-> wire ----------------------------------------------------------

_MODEL_KINDS: tuple[tuple[str, type], ...] = (("candle", Candle), ("setup", SetupUpdate))
"""Payloads that are domain models go as themselves; every other payload as its fields."""


def event_to_wire(event: Event) -> WireEvent:
    """An event's payload, encoded explicitly: a model by its kind, a record as `dict` (its
    `payload_fields`, secrets scrubbed). The receiver rebuilds it from the event's type."""
    data = event.data
    etype, ts, source = str(event.type.value), event.ts, event.source
    for kind, cls in _MODEL_KINDS:
        if isinstance(data, cls):
            return WireEvent(etype, ts, source, kind, data)
    return WireEvent(etype, ts, source, "dict", scrub(payload_fields(data)))


def event_from_wire(wire: WireEvent) -> Event:
    """The event again, its payload of its type's class. An event this console cannot read
    (a newer engine's type, a payload of another shape) is shown as an ERROR, not fatal."""
    try:
        etype = EventType(wire.type)
    except ValueError:
        report = ErrorReport(f"{wire.type}: {_text(wire.data)}", "unknown_event")
        return Event(EventType.ERROR, wire.ts, report, wire.source)
    cls = PAYLOAD_TYPES[etype]
    try:
        payload = _payload_from_wire(cls, wire.data)
    except (msgspec.ValidationError, TypeError, ValueError) as exc:
        report = ErrorReport(f"{wire.type}: unreadable payload ({exc})", "undecodable_event")
        return Event(EventType.ERROR, wire.ts, report, wire.source)
    return Event(etype, wire.ts, payload, wire.source)


def _payload_from_wire(cls: type, data: Any) -> EventPayload:
    if cls is DataQualityFinding:
        if not isinstance(data, dict):
            raise TypeError(f"a finding is an object, got {type(data).__name__}")
        return finding_from_fields(data)
    payload: EventPayload = msgspec.convert(data, cls)
    return payload


def _text(data: Any) -> str:
    return "" if data is None else str(data)[:200]


def snapshot_to_wire(snap: EngineSnapshot) -> WireSnapshot:
    return WireSnapshot(
        seq=snap.seq,
        now_ns=snap.now_ns,
        mode=snap.mode,
        feed=snap.feed,
        symbols=tuple(snap.symbols),
        paused=snap.paused,
        candles={s: tuple(c) for s, c in snap.candles.items()},
        forming=dict(snap.forming),
        last_price=dict(snap.last_price),
        setups=tuple(snap.setups),
        orders=tuple(snap.orders),
        positions=tuple(snap.positions),
        health=scrub(snap.health),
        events=tuple(event_to_wire(e) for e in snap.events if isinstance(e, Event)),
    )


def snapshot_from_wire(wire: WireSnapshot) -> EngineSnapshot:
    return EngineSnapshot(
        seq=wire.seq,
        now_ns=wire.now_ns,
        mode=wire.mode,
        feed=wire.feed,
        symbols=wire.symbols,
        paused=wire.paused,
        candles=wire.candles,
        forming=wire.forming,
        last_price=wire.last_price,
        setups=wire.setups,
        orders=wire.orders,
        positions=wire.positions,
        health=wire.health,
        events=tuple(event_from_wire(e) for e in wire.events),
    )


# ---- where the front door is ----------------------------------------------------------------


def socket_path_for(db: str | Path) -> Path:
    """The Unix socket of the engine using `db`: next to it, or (when that path is too long
    for a socket address) in a private directory under the temp dir, named by a hash of it.
    Both sides compute it the same way, so `--db PATH` on both means the same engine."""
    absolute = Path(os.path.abspath(db))
    beside = absolute.with_name(absolute.name + SOCKET_SUFFIX)
    if len(os.fsencode(beside)) <= MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha256(os.fsencode(absolute)).hexdigest()[:20]
    return private_socket_dir() / f"{digest}{SOCKET_SUFFIX}"


def private_socket_dir() -> Path:
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp")
    return base / f"slob-tui-{os.getuid()}"
