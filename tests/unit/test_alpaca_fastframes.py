"""The whole-frame path for crypto trades: taken for clean frames, and always exactly what the
per-message path gives (down to each tick field's type), whatever a frame holds."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob_tui.feeds.alpaca_fastframes import _crypto_trades, _stock_trades, trade_frame_ticks
from slob_tui.feeds.alpaca_frames import _parse_each, parse_frame


def assert_same_as_per_message(frame: bytes) -> None:
    """Equal results, down to each tick field's type (3 == 3.0, but a size must be a float)."""
    p, q = parse_frame(frame), _parse_each(frame)
    assert p == q
    assert [list(map(type, t)) for t in p.ticks] == [list(map(type, t)) for t in q.ticks]


def _crypto(ns: int = 7, **changes):
    """A crypto trade as Alpaca (and tests/fakes/alpaca/server.py) encode it, "T" first."""
    msg = {
        "T": "t",
        "S": "BTC/USD",
        "p": 64000.5,
        "s": 0.0123,
        "t": msgpack.Timestamp.from_unix_nano(ns),
        "i": 1,
        "tks": "B",
    }
    return {**msg, **changes}


_HEAD = b"\x87\xa1T\xa1t"  # fixmap 7, "T", "t": what the crypto path rewrites
_FLOAT_WITH_HEAD = struct.unpack(">d", b"\x40" + _HEAD + b"\x00\x00")[0]
_INT_WITH_HEAD = int.from_bytes(b"\x01" + _HEAD + b"\x00\x00", "big")
CRYPTO_ORDER = ("T", "S", "p", "s", "t", "i", "tks")

clean_crypto = st.fixed_dictionaries(
    {
        "T": st.just("t"),
        "S": st.sampled_from(["BTC/USD", "ETH/USD"]) | st.text(min_size=1, max_size=8),
        "p": st.floats(min_value=1e-9, max_value=1e9),
        "s": st.floats(min_value=0, max_value=1e9) | st.integers(0, 2**53),
        "t": st.integers(0, 2**62).map(msgpack.Timestamp.from_unix_nano),
        "i": st.integers(0, 2**64 - 1) | st.text(max_size=4) | st.none(),
        "tks": st.sampled_from(["B", "S"]) | st.text(max_size=3),
    }
).map(lambda t: {k: t[k] for k in CRYPTO_ORDER})


def test_a_clean_crypto_frame_takes_the_frame_path():
    frame = msgpack.packb([_crypto(5), _crypto(6, S="ETH/USD", s=2, i="x", tks="S")])
    ticks = _crypto_trades(frame)
    assert ticks == [
        ("BTC/USD", 5, 64000.5, 0.0123, "", (), 1),
        ("ETH/USD", 6, 64000.5, 2.0, "", (), "x"),
    ]
    assert trade_frame_ticks(frame) == ticks and _stock_trades(frame) is None
    assert_same_as_per_message(frame)


@settings(max_examples=150, deadline=None)
@given(st.lists(clean_crypto, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_frames_of_well_formed_crypto_trades_take_the_frame_path_with_the_same_result(trades, rnd):
    keys = list(CRYPTO_ORDER[1:])
    rnd.shuffle(keys)  # any one key order for the frame, "T" first
    trades = [{"T": "t", **{k: t[k] for k in keys}} for t in trades]
    frame = msgpack.packb(trades)
    assert _crypto_trades(frame) is not None
    p = parse_frame(frame)
    assert_same_as_per_message(frame)
    assert (len(p.ticks), p.rejected, p.messages) == (len(trades), 0, len(trades))
    for tick, trade in zip(p.ticks, trades, strict=True):
        expected = (trade["S"], trade["t"].to_unix_nano(), trade["p"], float(trade["s"]))
        assert tick == (*expected, "", (), trade["i"])


# messages the frame path must refuse, or must not be fooled by
_POISON = [
    {"tks": b"\x87", "T": "t"},  # a bin value ending in the head's first byte, then "T":"t"
    {"T": "success", "msg": "connected"},
    {"T": "subscription", "trades": ["BTC/USD"], "quotes": [], "bars": []},
    {"T": "b", "S": "BTC/USD", "o": _FLOAT_WITH_HEAD, "h": 1.0, "l": 1.0, "c": 1.0, "v": 1},
    {"T": "t", "S": "SPY", "i": 1, "x": "P", "p": 1.0, "s": 1, "t": 5, "c": [], "z": "B"},  # stock
    # a fixarray of 14 (`9e`) laid out like a rewritten crypto trade
    ["T", "t", "S", "BTC/USD", "p", 1.0, "s", 1.0, "t", 5, "i", 1, "tks", "B"],
    # the same after two nils: an array of 16 has no fixarray form, so this is `dc 00 10`
    [None, None, "T", "t", "S", "BTC/USD", "p", 1.0, "s", 1.0, "t", 5, "i", 1, "tks", "B"],
    {"T": "x", "S": "BTC/USD", "i": 1, "x": "", "p": 1.0, "s": 1, "t": 5},  # a cancel
    {"T": "t"},
    7,
]
_FIELD_SWAPS = [
    ("p", 0.0), ("p", -1.0), ("p", float("nan")), ("p", float("inf")), ("p", 3), ("p", True),
    ("p", "1.0"), ("p", None),
    ("s", -1), ("s", -1e-9), ("s", float("nan")), ("s", float("-inf")), ("s", True),
    ("s", "0.5"),
    ("t", True), ("t", 1.5), ("t", "2021-02-22T15:51:45Z"), ("t", "garbage"), ("t", None),
    ("S", ""), ("S", b"BTC/USD"), ("S", ["BTC/USD"]), ("S", None), ("S", 1),
    ("i", True), ("i", 1.5), ("i", [1]), ("i", b"\x01"),
    ("tks", None), ("tks", 1), ("tks", [1]), ("tks", {"a": [1]}), ("tks", {(1,): 2}),
    ("tks", b"\x87\xa1T\xa1t"), ("S", b"X\x87\xa1T\xa1t"),  # the head inside bin values
    ("p", _FLOAT_WITH_HEAD), ("i", _INT_WITH_HEAD), ("s", _FLOAT_WITH_HEAD),
    ("i", int.from_bytes(b"\x01\xdc\x00\x10\x00\x00\x00\x00", "big")),  # array16 of 16
    ("i", int.from_bytes(b"\x01\xdd\x00\x00\x00\x10\x00\x00", "big")),  # array32 of 16
    ("tks", _crypto(1)),  # a crypto trade nested in a value
    ("x", "D"), ("c", []), ("z", "C"), ("q", 1),  # an eighth key
]  # fmt: skip


# odd but accepted by the per-message path: the frame path takes them too, with the same ticks
_ACCEPTED_SWAPS = [("s", 2**64 - 1), ("s", -0.0), ("s", 0), ("i", None), ("i", ""), ("tks", "")]


def _without(msg, key):
    return {k: v for k, v in msg.items() if k != key}


odd_crypto = (
    st.sampled_from(_POISON)
    | st.tuples(clean_crypto, st.sampled_from(_FIELD_SWAPS + _ACCEPTED_SWAPS)).map(
        lambda tf: {**tf[0], tf[1][0]: tf[1][1]}
    )
    | st.tuples(clean_crypto, st.sampled_from(CRYPTO_ORDER)).map(lambda tk: _without(*tk))
)


@settings(max_examples=300, deadline=None)
@given(st.lists(clean_crypto | odd_crypto, min_size=1, max_size=6))
def test_any_mix_of_crypto_trades_and_odd_messages_parses_as_message_by_message(msgs):
    frame = msgpack.packb(msgs)
    assert_same_as_per_message(frame)


@pytest.mark.parametrize(("key", "value"), _FIELD_SWAPS)
def test_each_odd_field_gives_what_the_per_message_path_gives(key, value):
    good = _crypto()
    for msgs in ([{**good, key: value}], [good, {**good, key: value}, good]):
        frame = msgpack.packb(msgs)
        assert _crypto_trades(frame) is None
        assert_same_as_per_message(frame)


@pytest.mark.parametrize(("key", "value"), _ACCEPTED_SWAPS)
def test_odd_but_valid_fields_still_take_the_frame_path(key, value):
    good = _crypto()
    frame = msgpack.packb([good, {**good, key: value}, good])
    assert _crypto_trades(frame) is not None
    assert_same_as_per_message(frame)
    assert len(parse_frame(frame).ticks) == 3


@pytest.mark.parametrize("key", CRYPTO_ORDER)
def test_a_missing_key_sends_the_frame_message_by_message(key):
    good = _crypto()
    frame = msgpack.packb([good, _without(good, key), good])
    assert _crypto_trades(frame) is None
    assert_same_as_per_message(frame)
    assert len(parse_frame(frame).ticks) == 2 + (key in ("i", "tks"))  # those two may be absent


@pytest.mark.parametrize("odd", _POISON)
def test_a_non_trade_message_mixed_in_sends_the_frame_message_by_message(odd):
    good = _crypto()
    frame = msgpack.packb([good, odd, good])
    assert _crypto_trades(frame) is None
    assert_same_as_per_message(frame)


def test_the_heads_bytes_inside_values_do_not_fool_the_frame_path():
    ns = 1614009105335689322
    good = _crypto(ns)
    tricky = {**good, "p": _FLOAT_WITH_HEAD, "i": _INT_WITH_HEAD}
    frame = msgpack.packb([tricky, good])
    assert frame.count(_HEAD) == 4  # two real heads, two inside values
    assert _crypto_trades(frame) is None
    assert parse_frame(frame).ticks[0] == ("BTC/USD", ns, _FLOAT_WITH_HEAD, 0.0123, "", (),
                                           _INT_WITH_HEAD)  # fmt: skip
    smuggled = msgpack.packb([{"tks": b"\x87", "T": "t"}, good])  # bin value, then "T":"t"
    assert smuggled.count(_HEAD) == 2
    p = parse_frame(smuggled)
    assert p == _parse_each(smuggled) and p.rejected == 1 and len(p.ticks) == 1
    # a str (msgpack raw) value holding the head: not UTF-8, so the frame is refused whole
    as_str = msgpack.packb([{**good, "S": b"X" + _HEAD}, good], use_bin_type=False)
    assert as_str.count(_HEAD) == 3
    assert _crypto_trades(as_str) is None
    assert parse_frame(as_str).rejected == 1 and parse_frame(as_str) == _parse_each(as_str)


def test_a_fixarray_of_fourteen_is_not_taken_for_a_trade():
    """An array of 14 may be one byte, `9e`. Had the head become `dc 00 0e` (an array of 14),
    this frame would be read as two clean trades: a `9e` lookalike whose price hides a second
    head (its rewrite pushes the price's last two bytes, fixstr "s", out as the next key) and
    one real trade. Message by message the frame is undecodable: one rejection."""
    price = struct.unpack(">d", b"\x40" + _HEAD + b"\xa1s")[0]
    ts = msgpack.Timestamp.from_unix_nano(5)
    lookalike = (
        b"\x9e\xa1T\xa1t\xa1S\xa7BTC/USD\xa1p" + msgpack.packb(price)
        + msgpack.packb(1.0) + b"\xa1t" + msgpack.packb(ts) + b"\xa1i\x01\xa3tks\xa1B"
    )  # fmt: skip
    frame = b"\x92" + lookalike + msgpack.packb(_crypto(5, p=1.0, s=1.0))
    assert frame.count(_HEAD) == 2
    assert _crypto_trades(frame) is None
    assert parse_frame(frame) == _parse_each(frame)
    assert (parse_frame(frame).rejected, parse_frame(frame).ticks) == (1, [])
    plain = msgpack.packb([_POISON[5], _crypto()])  # a plain `9e` lookalike beside a trade
    assert plain[1:2] == b"\x9e" and _crypto_trades(plain) is None
    assert_same_as_per_message(plain)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 400), st.integers(0, 255), st.integers(1, 4))
def test_mutated_crypto_frames_never_raise(pos, byte, n_msgs):
    frame = bytearray(msgpack.packb([_crypto(10**18 + k) for k in range(n_msgs)]))
    frame[pos % len(frame)] = byte
    p = parse_frame(bytes(frame))
    assert len(p.ticks) <= n_msgs
    assert_same_as_per_message(bytes(frame))


def test_stock_and_crypto_trades_in_one_frame_go_message_by_message():
    stock = {"T": "t", "S": "SPY", "i": 1, "x": "P", "p": 1.0, "s": 1, "t": 5, "c": [], "z": "B"}
    frame = msgpack.packb([stock, _crypto()])
    assert trade_frame_ticks(frame) is None
    assert len(parse_frame(frame).ticks) == 2
    assert_same_as_per_message(frame)
