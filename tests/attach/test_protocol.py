"""The attach protocol's frames: what the engine encodes is what the console decodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob_tui.core.event_payloads import ErrorReport
from slob_tui.core.events import PAYLOAD_TYPES, Event, EventType
from slob_tui.core.models import (
    Candle,
    Direction,
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
    EventFrame,
    Hello,
    ProtocolError,
    Redactor,
    Resync,
    SnapshotFrame,
    WireEvent,
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
from tests.payloads import example_event

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
POSITION = Position("NQ", -1.0, 100.5, 101.0)


def full_snapshot() -> EngineSnapshot:
    events = (
        Event(EventType.CANDLE_COMPLETED, T0, CANDLE, "aggregator"),
        Event(EventType.SETUP_TRIGGERED, T0, UPDATE, "tracker"),
        *(example_event(t, T0, "executor") for t in EventType),
    )
    return EngineSnapshot(
        seq=41, now_ns=T0 + 5, mode="PAPER", feed="replay", symbols=("NQ", "ES"),
        paused=True, candles={"NQ": (CANDLE, CANDLE), "ES": ()},
        forming={"NQ": CANDLE, "ES": None}, last_price={"NQ": 101.0},
        setups=(SetupView("NQ-1", "NQ", "SHORT", "TRIGGERED", None, (UPDATE,)),),
        orders=(ORDER,), positions=(POSITION,),
        health={"status": "ok", "feed": {"rows": 3, "reconnects": 0}, "list": [1, 2]},
        events=events,
    )  # fmt: skip


def test_a_snapshot_survives_the_wire_field_for_field() -> None:
    snap = full_snapshot()
    frame = decode_server(encode(SnapshotFrame(snap.seq, 9, snapshot_to_wire(snap))))
    assert isinstance(frame, SnapshotFrame) and frame.seq == 41 and frame.eseq == 9
    back = snapshot_from_wire(frame.snap)
    assert back == snap  # events included: Event is a dataclass, data rebuilt by kind


@pytest.mark.parametrize("etype", list(EventType))
def test_every_event_type_comes_back_with_its_payload(etype: EventType) -> None:
    event = example_event(etype, T0, "x")
    wire = json.loads(encode(EventFrame(5, event_to_wire(event))))
    frame = decode_server(json.dumps(wire))
    assert isinstance(frame, EventFrame)
    back = event_from_wire(frame.event)
    assert back == event
    assert type(back.data) is PAYLOAD_TYPES[etype]


def test_record_payloads_go_as_their_fields_as_the_dicts_did() -> None:
    """The frame a console sees: `kind` dict, the payload's field names as keys."""
    wire = json.loads(encode(event_to_wire(example_event(EventType.ORDER_FILLED))))
    assert wire["kind"] == "dict"
    assert wire["data"] == {
        "client_order_id": "c1", "order_id": "o1", "symbol": "NQ", "side": "sell",
        "qty": 1.0, "price": 100.5, "leg": "entry", "execution_id": "x1",
        "setup_id": "NQ-1", "ts": T0 + 60_000_000_000 + 5,
    }  # fmt: skip
    finding = json.loads(encode(event_to_wire(example_event(EventType.DATA_QUALITY))))
    assert finding["data"] == {"kind": "volume_spike", "symbol": "NQ", "ts": T0,
                               "volume": 900.0, "median": 100.0, "factor": 9.0}  # fmt: skip
    assert (
        json.loads(encode(event_to_wire(example_event(EventType.CANDLE_COMPLETED))))["kind"]
        == "candle"
    )


def test_a_payload_of_another_shape_is_shown_as_an_error_not_fatal() -> None:
    """An older engine's dict (no fill time) or a newer engine's event type."""
    old = WireEvent("order_filled", T0, "executor", "dict", {"symbol": "NQ", "leg": "entry"})
    back = event_from_wire(old)
    assert back.type is EventType.ERROR
    assert back.payload(ErrorReport).kind == "undecodable_event"
    assert "order_filled" in back.payload(ErrorReport).error
    newer = event_from_wire(WireEvent("margin_call", T0, "x", "dict", {"symbol": "NQ"}))
    assert newer.type is EventType.ERROR and newer.payload(ErrorReport).kind == "unknown_event"


def test_secret_keys_in_a_payload_are_scrubbed() -> None:
    event = Event(EventType.HEALTH, T0, {"feed": {"api_key": "AKXYZ"}}, "x")
    assert event_to_wire(event).data == {"feed": {"api_key": "<redacted>"}}


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
