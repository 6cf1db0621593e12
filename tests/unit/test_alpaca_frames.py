"""The Alpaca frame parser: exact nanosecond times, both framings, and no input that raises."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob_tui.feeds.alpaca_fastframes import _stock_trades
from slob_tui.feeds.alpaca_frames import (
    _parse_each,
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
    assert_same_as_per_message(data)


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
        assert_same_as_per_message(frame)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 400), st.integers(0, 255), st.integers(1, 4))
def test_mutated_real_frames_never_raise(pos, byte, n_msgs):
    frame = bytearray(
        msgpack.packb([_trade(msgpack.Timestamp.from_unix_nano(10**18 + k)) for k in range(n_msgs)])
    )
    frame[pos % len(frame)] = byte
    p = parse_frame(bytes(frame))
    assert len(p.ticks) <= n_msgs
    assert_same_as_per_message(bytes(frame))


@pytest.mark.parametrize("c", [[["I"]], [{"a": 1}], [1], ["@"] * 20])
def test_odd_condition_lists_take_the_checked_path(c):
    msg = {**_trade(msgpack.Timestamp.from_unix_nano(1)), "c": c}
    p = parse_frame(msgpack.packb([msg]))
    if all(isinstance(x, str) for x in c):
        assert p.ticks[0][5] == tuple(c) and p.rejected == 0
    else:
        assert p.ticks == [] and p.rejected == 1


# ---- the frame-at-once path for stock trades: taken when it can be, and always exact --------


def assert_same_as_per_message(frame: bytes | str) -> None:
    """Equal results, down to each tick field's type (3 == 3.0, but a price must be a float)."""
    p, q = parse_frame(frame), _parse_each(frame)
    assert p == q
    assert [list(map(type, t)) for t in p.ticks] == [list(map(type, t)) for t in q.ticks]


_HEAD = b"\x89\xa1T\xa1t"  # what the frame path rewrites: fixmap 9, "T", "t"
_FLOAT_WITH_HEAD = struct.unpack(">d", b"\x40" + _HEAD + b"\x00\x00")[0]
_INT_WITH_HEAD = int.from_bytes(b"\x01" + _HEAD + b"\x00\x00", "big")

codes = st.text(max_size=3)
ALPACA_ORDER = ("T", "S", "i", "x", "p", "s", "t", "c", "z")
clean_trades = st.fixed_dictionaries(
    {
        "T": st.just("t"),
        "S": st.text(min_size=1, max_size=6),
        "i": st.integers(0, 2**64 - 1) | st.text(max_size=4) | st.none(),
        "x": codes,
        "p": st.floats(min_value=1e-6, max_value=1e9),
        "s": st.integers(0, 2**53) | st.floats(min_value=0, max_value=1e12),
        "t": st.integers(0, 2**62).map(msgpack.Timestamp.from_unix_nano),
        "c": st.lists(codes, max_size=16),
        "z": codes,
    }
).map(lambda t: {k: t[k] for k in ALPACA_ORDER})  # "T" first, as Alpaca sends it


@settings(max_examples=150, deadline=None)
@given(st.lists(clean_trades, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_frames_of_well_formed_trades_take_the_frame_path_with_the_same_result(trades, rnd):
    keys = list(ALPACA_ORDER[1:])
    rnd.shuffle(keys)  # any one key order for the frame, "T" first
    trades = [{"T": "t", **{k: t[k] for k in keys}} for t in trades]
    frame = msgpack.packb(trades)
    assert _stock_trades(frame) is not None
    p = parse_frame(frame)
    assert_same_as_per_message(frame)
    assert (len(p.ticks), p.rejected, p.messages) == (len(trades), 0, len(trades))
    for tick, trade in zip(p.ticks, trades, strict=True):
        assert tick == (
            trade["S"],
            trade["t"].to_unix_nano(),
            trade["p"],
            float(trade["s"]),
            trade["x"],
            tuple(trade["c"]),
            trade["i"],
        )


# messages the frame path must refuse, or must not be fooled by (the head's bytes in a value)
_POISON = [
    {"z": b"\x89", "T": "t"},  # a bin value ending in the head's first byte, then "T":"t"
    {"T": "b", "S": "SPY", "o": _FLOAT_WITH_HEAD, "h": 1.0, "l": 1.0, "c": 1.0, "v": 1},
    ["T", "t", "S", "SPY", "i", 1, "x", "P", "p", 1.0, "s", 1, "t", 5, "c", [], "z", "B"],
    {"T": "success", "msg": "connected"},
    {"T": "t", "S": "SPY", "p": 1.0, "s": 1, "t": 5, "i": 1, "tks": "B"},  # crypto layout
]
_FIELD_SWAPS = [
    ("p", 0.0),
    ("p", -1.0),
    ("p", float("nan")),
    ("p", float("inf")),
    ("p", 3),
    ("p", True),
    ("s", -1),
    ("s", float("nan")),
    ("s", True),
    ("s", 2**64 - 1),
    ("s", -0.0),
    ("t", True),
    ("t", 1.5),
    ("t", "2021-02-22T15:51:45Z"),
    ("S", ""),
    ("S", b"SPY"),
    ("x", None),
    ("x", 0),
    ("c", None),
    ("c", [["I"]]),
    ("c", ["@"] * 20),
    ("c", [1]),
    ("i", True),
    ("i", 1.5),
    ("z", {"a": [1]}),
    ("z", [1]),
    ("S", ["SPY"]),
    ("p", _FLOAT_WITH_HEAD),
    ("i", _INT_WITH_HEAD),
    ("q", 1),
    ("z", {(1,): 2}),
]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        clean_trades
        | st.sampled_from(_POISON)
        | st.tuples(clean_trades, st.sampled_from(_FIELD_SWAPS)).map(
            lambda tf: {**tf[0], tf[1][0]: tf[1][1]}
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_mix_of_trades_and_odd_messages_parses_as_message_by_message(msgs):
    frame = msgpack.packb(msgs)
    assert_same_as_per_message(frame)


@pytest.mark.parametrize(("key", "value"), _FIELD_SWAPS)
def test_each_odd_field_gives_what_the_per_message_path_gives(key, value):
    good = _trade(msgpack.Timestamp.from_unix_nano(7))
    for msgs in ([{**good, key: value}], [good, {**good, key: value}, good]):
        frame = msgpack.packb(msgs)
        assert_same_as_per_message(frame)


def test_the_heads_bytes_inside_values_do_not_fool_the_frame_path():
    ns = 1614009105335689322
    good = _trade(msgpack.Timestamp.from_unix_nano(ns))
    tricky = {**good, "p": _FLOAT_WITH_HEAD, "i": _INT_WITH_HEAD}
    frame = msgpack.packb([tricky, good])
    assert frame.count(_HEAD) == 4  # two real heads, two inside values
    assert _stock_trades(frame) is None
    assert parse_frame(frame).ticks[0] == (
        "QQQ",
        ns,
        _FLOAT_WITH_HEAD,
        1.0,
        "D",
        ("@", "I"),
        _INT_WITH_HEAD,
    )
    smuggled = msgpack.packb([{"z": b"\x89", "T": "t"}, good])  # bin value, then "T":"t"
    assert smuggled.count(_HEAD) == 2
    p = parse_frame(smuggled)
    assert p == _parse_each(smuggled) and p.rejected == 1 and len(p.ticks) == 1


@pytest.mark.parametrize(
    "odd",
    [
        {"i": int.from_bytes(b"\x01\xdc\x00\x12\x00\x00\x00\x00", "big")},  # array16 of 18
        {"i": int.from_bytes(b"\x01\xdd\x00\x00\x00\x12\x00\x00", "big")},  # array32 of 18
        {"z": _trade(msgpack.Timestamp.from_unix_nano(1))},  # a trade map nested in a value
        {"z": {(1,): 2}},  # an array as a map key: the per-message decode refuses the frame
    ],
)
def test_frames_the_frame_path_cannot_vouch_for_go_message_by_message(odd):
    good = _trade(msgpack.Timestamp.from_unix_nano(7))
    frame = msgpack.packb([{**good, **odd}, good])
    assert _stock_trades(msgpack.packb([good, good])) is not None
    assert _stock_trades(frame) is None
    assert_same_as_per_message(frame)


def _cancel(t):
    return {
        "T": "x",
        "S": "QQQ",
        "i": 96921,
        "x": "D",
        "p": 126.55,
        "s": 1,
        "a": "C",
        "t": t,
        "z": "C",
    }


def _correction(t):
    return {
        "T": "c",
        "S": "QQQ",
        "x": "D",
        "oi": 96921,
        "op": 126.55,
        "os": 1,
        "oc": ["@"],
        "ci": 96922,
        "cp": 126.5,
        "cs": 2,
        "cc": ["@", "I"],
        "t": t,
        "z": "C",
    }


def test_cancels_and_corrections_come_out_beside_the_trades():
    ns = 1614009105335689322
    stamp = msgpack.Timestamp.from_unix_nano(ns)
    packed = msgpack.packb([_trade(stamp), _cancel(stamp), _correction(stamp)])
    text = "2021-02-22T15:51:45.335689322Z"
    as_json = json.dumps([_trade(text), _cancel(text), _correction(text)])
    for frame in (packed, as_json):
        p = parse_frame(frame)
        assert p.ticks == [("QQQ", ns, 126.55, 1.0, "D", ("@", "I"), 96921)]
        assert p.corrections == [
            ("QQQ", ns, 96921, "D", None),
            ("QQQ", ns, 96921, "D", (126.5, 2.0, ("@", "I"))),
        ]
        assert (p.messages, p.rejected) == (3, 0)


@pytest.mark.parametrize(
    "msg",
    [
        {**_cancel("2021-02-22T15:51:45Z"), "i": None},
        {**_correction("2021-02-22T15:51:45Z"), "cp": -1},
        {**_correction("2021-02-22T15:51:45Z"), "cc": "I"},
        {k: v for k, v in _correction("2021-02-22T15:51:45Z").items() if k != "oi"},
        {**_cancel("bad time")},
    ],
)
def test_a_malformed_cancel_or_correction_is_counted_not_raised(msg):
    p = parse_frame(json.dumps([msg]))
    assert p.corrections == [] and p.rejected == 1
