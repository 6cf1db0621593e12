"""The Alpaca frame parser: exact nanosecond times, both framings, and no input that raises."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob_tui.feeds.alpaca_frames import (
    format_rfc3339_ns,
    parse_frame,
    parse_rfc3339_ns,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_doc_example_with_nine_fractional_digits():
    assert parse_rfc3339_ns("2021-02-22T15:51:45.335689322Z") == 1614009105335689322


@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)),
    st.integers(0, 999),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
)
def test_matches_datetime_for_any_instant_and_offset(naive, extra_ns, offset_min):
    """Reference: datetime arithmetic (microseconds) plus the three extra digits."""
    tz = timedelta(minutes=offset_min)
    local = naive.replace(tzinfo=UTC) + tz
    sign = "+" if offset_min >= 0 else "-"
    off = f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + f".{local.microsecond:06d}{extra_ns:03d}" + off
    delta = naive.replace(tzinfo=UTC) - EPOCH
    expected = (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000 + extra_ns
    assert parse_rfc3339_ns(text) == expected


@given(st.integers(-(10**18), 4 * 10**18))
def test_format_then_parse_round_trips(ns):
    assert parse_rfc3339_ns(format_rfc3339_ns(ns)) == ns


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "2021-02-30T00:00:00Z",
        "2021-13-01T00:00:00Z",
        "2021-02-22T24:00:00Z",
        "2021-02-22T15:51:45.1234567890Z",
        "2021-02-22T15:51:45",
        "2021-02-22 15:51:45+25:00",
        "2021-02-22T15:51:60Z",
        "yesterday",
    ],
)
def test_rejects_malformed_times(bad):
    with pytest.raises(ValueError):
        parse_rfc3339_ns(bad)


def _trade(t):
    return {
        "T": "t",
        "S": "QQQ",
        "i": 96921,
        "x": "D",
        "p": 126.55,
        "s": 1,
        "t": t,
        "c": ["@", "I"],
        "z": "C",
    }


def test_msgpack_timestamp_goes_straight_to_ns_and_json_string_agrees():
    ns = 1614009105335689322
    packed = msgpack.packb(
        [
            _trade(msgpack.Timestamp.from_unix_nano(ns)),
            _trade(msgpack.Timestamp.from_unix_nano(ns + 1)),
        ]
    )
    as_json = json.dumps([_trade("2021-02-22T15:51:45.335689322Z")])
    a, b = parse_frame(packed), parse_frame(as_json)
    assert a.ticks[0] == ("QQQ", ns, 126.55, 1.0, "D", ("@", "I"), 96921)
    assert a.ticks[1][1] == ns + 1
    assert b.ticks == a.ticks[:1]
    assert (a.rejected, a.messages, b.rejected) == (0, 2, 0)


def test_crypto_trade_has_no_exchange_or_conditions():
    frame = msgpack.packb(
        [
            {
                "T": "t",
                "S": "BTC/USD",
                "p": 64000.5,
                "s": 0.0123,
                "t": msgpack.Timestamp.from_unix_nano(5),
                "i": 1,
                "tks": "B",
            }
        ]
    )
    assert parse_frame(frame).ticks == [("BTC/USD", 5, 64000.5, 0.0123, "", (), 1)]


def test_controls_are_split_out_and_other_channels_ignored():
    frame = json.dumps(
        [
            {"T": "success", "msg": "connected"},
            {"T": "b", "S": "QQQ", "o": 1, "h": 1, "l": 1, "c": 1, "v": 1},
            {"T": "error", "code": 406, "msg": "connection limit exceeded"},
        ]
    )
    p = parse_frame(frame)
    assert [m["T"] for m in p.controls] == ["success", "error"]
    assert p.ticks == [] and p.rejected == 0


@pytest.mark.parametrize(
    "msg",
    [
        {"T": "t"},
        {**_trade("2021-02-22T15:51:45Z"), "p": "1"},
        {**_trade("nope"), "S": "X"},
        {**_trade("2021-02-22T15:51:45Z"), "p": float("nan")},
        {**_trade("2021-02-22T15:51:45Z"), "s": -1},
        {**_trade("2021-02-22T15:51:45Z"), "c": "I"},
        {**_trade("2021-02-22T15:51:45Z"), "S": ""},
        {**_trade("2021-02-22T15:51:45Z"), "p": True},
        {"T": ["t"]},
        7,
        "t",
    ],
)
def test_each_malformed_message_is_counted_once(msg):
    good = _trade("2021-02-22T15:51:45Z")
    p = parse_frame(json.dumps([good, msg, good], allow_nan=True))
    assert len(p.ticks) == 2 and p.rejected == 1


@pytest.mark.parametrize(
    "frame", [b"\xc1", b"", "not json", "{}", json.dumps({"T": "t"}), b"\x93\x01"]
)
def test_undecodable_or_non_array_frames_count_one_rejection(frame):
    p = parse_frame(frame)
    assert p.ticks == [] and p.rejected == 1


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data):
    p = parse_frame(data)
    assert p.rejected + len(p.ticks) + len(p.controls) <= max(p.messages, 1)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["T", "S", "p", "s", "t", "c", "x", "i"]), json_values, max_size=8
        ),
        max_size=6,
    )
)
def test_random_messages_never_raise_and_every_bad_one_is_counted(msgs):
    for frame in (json.dumps(msgs, allow_nan=True), msgpack.packb(msgs)):
        p = parse_frame(frame)
        assert p.messages == len(msgs)
        assert len(p.ticks) + p.rejected + len(p.controls) <= len(msgs)
        trades = sum(1 for m in msgs if m.get("T") == "t")
        assert len(p.ticks) + p.rejected >= trades


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 400), st.integers(0, 255), st.integers(1, 4))
def test_mutated_real_frames_never_raise(pos, byte, n_msgs):
    frame = bytearray(
        msgpack.packb([_trade(msgpack.Timestamp.from_unix_nano(10**18 + k)) for k in range(n_msgs)])
    )
    frame[pos % len(frame)] = byte
    p = parse_frame(bytes(frame))
    assert len(p.ticks) <= n_msgs


@pytest.mark.parametrize("c", [[["I"]], [{"a": 1}], [1], ["@"] * 20])
def test_odd_condition_lists_take_the_checked_path(c):
    msg = {**_trade(msgpack.Timestamp.from_unix_nano(1)), "c": c}
    p = parse_frame(msgpack.packb([msg]))
    if all(isinstance(x, str) for x in c):
        assert p.ticks[0][5] == tuple(c) and p.rejected == 0
    else:
        assert p.ticks == [] and p.rejected == 1
