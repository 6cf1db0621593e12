"""Every event type has one payload class, and the bus refuses an event carrying another."""

from __future__ import annotations

import dataclasses

import pytest

from slob_tui.core.event_payloads import (
    DataQualityFinding,
    ErrorReport,
    KillSwitchNotice,
    OrderFilled,
    SafeModeChange,
    payload_fields,
)
from slob_tui.core.events import (
    PAYLOAD_TYPES,
    Event,
    EventType,
    PayloadMismatchError,
    check_payload,
)
from slob_tui.engine.bus import EventBus
from tests.payloads import CANDLE, EXAMPLES, T0


def test_every_event_type_has_a_payload_class_and_an_example_of_it() -> None:
    assert set(PAYLOAD_TYPES) == set(EventType)
    assert set(EXAMPLES) == set(EventType)
    for etype, payload in EXAMPLES.items():
        check_payload(Event(etype, T0, payload))


def test_payload_records_are_frozen_and_slotted() -> None:
    for cls in {c for c in PAYLOAD_TYPES.values() if c.__module__.endswith("event_payloads")}:
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen, cls
        assert "__slots__" in cls.__dict__, cls


@pytest.mark.parametrize("etype", list(EventType))
async def test_the_bus_refuses_a_payload_of_another_type(etype: EventType) -> None:
    wrong = CANDLE if PAYLOAD_TYPES[etype] is not type(CANDLE) else ErrorReport("x")
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(None, seen.append)
    with pytest.raises(PayloadMismatchError):
        bus.emit(Event(etype, T0, wrong))
    with pytest.raises(PayloadMismatchError):
        await bus.emit_and_wait(Event(etype, T0, wrong))
    bus.emit(Event(etype, T0, EXAMPLES[etype]))
    assert [e.type for e in seen] == [etype]  # the refused ones reached nobody
    assert bus.emitted == 1


def test_a_dict_is_refused_where_a_record_is_due() -> None:
    with pytest.raises(PayloadMismatchError, match="safe_mode needs a SafeModeChange"):
        EventBus().emit(Event(EventType.SAFE_MODE, T0, {"on": True}))


def test_the_check_can_be_turned_off() -> None:
    bus = EventBus(check_payloads=False)
    bus.emit(Event(EventType.SAFE_MODE, T0, CANDLE))
    assert bus.emitted == 1


def test_payload_narrows_or_refuses() -> None:
    event = Event(EventType.SAFE_MODE, T0, SafeModeChange(True, "storm"))
    assert event.payload(SafeModeChange).reason == "storm"
    with pytest.raises(PayloadMismatchError, match="carries SafeModeChange, not OrderFilled"):
        event.payload(OrderFilled)


def test_a_fill_event_says_when_it_filled() -> None:
    assert "ts" in {f.name for f in dataclasses.fields(OrderFilled)}


def test_fields_shown_leave_out_optional_values_left_at_their_default() -> None:
    assert payload_fields(ErrorReport("boom")) == {"error": "boom"}
    assert payload_fields(KillSwitchNotice(False, "reset")) == {"active": False, "reason": "reset"}
    assert payload_fields(DataQualityFinding("loop_stall", details={"seconds": 2.5})) == {
        "kind": "loop_stall",
        "seconds": 2.5,
    }
    assert payload_fields(EXAMPLES[EventType.ORDER_PLACED])["setup_id"] == "NQ-1"
