"""The attach protocol's frames: what the engine encodes is what the console decodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob_tui.core.events import Event, EventType
from slob_tui.core.health import (
    AttachHealth,
    BufferHealth,
    CacheStatus,
    FeedHealth,
    HealthReport,
    PipelineHealth,
    StoreHealth,
    TradingHealth,
    WriteStatus,
)
from slob_tui.core.models import (
    Candle,
    Direction,
    Fill,
    Order,
    OrderStatus,
    Position,
    SetupState,
    SetupUpdate,
    Side,
)
from slob_tui.engine.snapshot import EngineSnapshot, SetupView
from slob_tui.node.attach_protocol import (
    MAX_SOCKET_PATH,
    Command,
    Hello,
    ProtocolError,
    Redactor,
    Resync,
    SnapshotFrame,
    decode_client,
    decode_server,
    encode,
    event_from_wire,
    event_to_wire,
    scrub,
    snapshot_from_wire,
    snapshot_to_wire,
    socket_path_for,
)

T0 = 1_700_000_000_000_000_000
CANDLE = Candle("NQ", T0, 100.0, 101.5, 99.25, 101.0, 42.0, 7, False, True)
UPDATE = SetupUpdate(
    "NQ-1",
    "NQ",
    Direction.SHORT,
    SetupState.TRIGGERED,
    SetupState.WAITING_ENTRY,
    None,
    12,
    T0,
    {"entry": 100.5, "rr": 2.5},
)
ORDER = Order(
    "o1",
    "c1",
    "NQ",
    Side.SELL,
    1.0,
    "market",
    OrderStatus.FILLED,
    "entry",
    None,
    None,
    None,
    1.0,
    100.5,
    "NQ-1",
    T0,
    T0,
)
FILL = Fill("o1", "c1", "NQ", Side.SELL, 1.0, 100.5, T0, "x1")
POSITION = Position("NQ", -1.0, 100.5, 101.0)


def full_snapshot() -> EngineSnapshot:
    events = (
        Event(EventType.CANDLE_COMPLETED, T0, CANDLE, "aggregator"),
        Event(EventType.SETUP_TRIGGERED, T0, UPDATE, "tracker"),
        Event(EventType.ORDER_FILLED, T0, ORDER, "executor"),
        Event(EventType.POSITION_CHANGED, T0, POSITION, "executor"),
        Event(EventType.ENGINE_STARTED, T0, {"mode": "DEMO"}, ""),
        Event(EventType.HEALTH, T0, None, ""),
    )
    return EngineSnapshot(
        seq=41, now_ns=T0 + 5, mode="PAPER", feed="replay", symbols=("NQ", "ES"),
        paused=True, candles={"NQ": (CANDLE, CANDLE), "ES": ()},
        forming={"NQ": CANDLE, "ES": None}, last_price={"NQ": 101.0},
        setups=(SetupView("NQ-1", "NQ", "SHORT", "TRIGGERED", None, (UPDATE,)),),
        orders=(ORDER,), positions=(POSITION,),
        health=HealthReport(
            at_ns=T0, mode="PAPER",
            pipeline=PipelineHealth(progress="ok", ticks=9, candles=2, connected=True),
            feed=FeedHealth(name="replay", state="paused", counters={"rows": 3, "list": [1, 2]}),
            buffer=BufferHealth(size=1, maxsize=10, utilization=0.1),
            aggregator={"symbols": {"NQ": {"ticks": 9}}},
            storage=StoreHealth(fault="disk full", candles=WriteStatus(ok=False, failures=2),
                                redis=CacheStatus(stale=True)),
            trading=TradingHealth(broker="paper", kill_switch="console", placed=1),
            attach=AttachHealth(clients=1, attached=("console#1 unix read-only",)),
        ),
        events=events,
    )  # fmt: skip


def test_a_snapshot_survives_the_wire_field_for_field() -> None:
    snap = full_snapshot()
    frame = decode_server(encode(SnapshotFrame(snap.seq, 9, snapshot_to_wire(snap))))
    assert isinstance(frame, SnapshotFrame) and frame.seq == 41 and frame.eseq == 9
    back = snapshot_from_wire(frame.snap)
    assert back == snap  # events included: Event is a dataclass, data rebuilt by kind


@pytest.mark.parametrize("data", [CANDLE, UPDATE, ORDER, FILL, POSITION, {"a": 1}, None])
def test_every_kind_of_event_data_comes_back_as_its_type(data: object) -> None:
    event = Event(EventType.ORDER_PLACED, T0, data, "x")
    wire = json.loads(encode(event_to_wire(event)))
    assert event_from_wire(decode_server_event(wire)) == event


def decode_server_event(wire: dict[str, object]):  # noqa: ANN201
    import msgspec

    from slob_tui.node.attach_protocol import WireEvent

    return msgspec.convert(wire, WireEvent)


def test_unknown_event_data_goes_as_text() -> None:
    event = Event(EventType.ERROR, T0, Path("/x"), "feed")
    assert event_from_wire(event_to_wire(event)).data == "/x"


def test_secret_keys_are_scrubbed_and_secret_values_redacted() -> None:
    health = {"feed": {"api_key": "AKXYZ", "token_set": True}, "ok": [{"password": "p"}]}
    assert scrub(health) == {
        "feed": {"api_key": "<redacted>", "token_set": "<redacted>"},
        "ok": [{"password": "<redacted>"}],
    }
    redact = Redactor(("SECRETVALUE123", "ab"))  # too-short values are not searched for
    assert (
        redact(b'{"x":"SECRETVALUE123-suffix","y":"ab"}') == b'{"x":"<redacted>-suffix","y":"ab"}'
    )


def test_client_frames_decode_strictly() -> None:
    assert decode_client(b'{"t":"hello","v":1}') == Hello(1)
    assert decode_client('{"t":"cmd","id":3,"name":"health"}') == Command(3, "health")
    assert decode_client('{"t":"resync"}') == Resync()
    bad_frames = (
        b"",
        b"\xff\xfe",
        b"[]",
        b'{"t":"hello"}',
        b'{"t":"hello","v":"1"}',
        b'{"t":"hello","v":1,"admin":true}',
        b'{"t":"welcome","v":1}',
        b"null",
    )
    for bad in bad_frames:
        with pytest.raises(ProtocolError):
            decode_client(bad)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                              lambda c: st.lists(c, max_size=4)
                              | st.dictionaries(st.sampled_from(["t", "v", "id", "name", "args",
                                                                 "hello", "cmd"]), c, max_size=4),
                              max_leaves=12).map(lambda v: json.dumps(v))))  # fmt: skip
def test_any_input_is_a_frame_or_a_protocol_error(raw: bytes | str) -> None:
    try:
        frame = decode_client(raw)
    except ProtocolError:
        return
    assert isinstance(frame, Hello | Command | Resync)


def test_the_socket_sits_beside_the_database_or_in_a_private_dir(tmp_path: Path) -> None:
    short = tmp_path / "a.db"
    assert socket_path_for(short) == tmp_path / "a.db.sock"
    deep = tmp_path / ("d" * 120) / "slob.db"
    path = socket_path_for(deep)
    assert len(str(path)) <= MAX_SOCKET_PATH and path.name.endswith(".sock")
    assert path == socket_path_for(str(deep))  # both sides compute the same place
    assert path != socket_path_for(tmp_path / ("e" * 120) / "slob.db")
