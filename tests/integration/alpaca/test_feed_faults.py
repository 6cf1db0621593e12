"""Errors, faults, SAFE MODE, pause/resume and secrecy of the Alpaca feed."""

from __future__ import annotations

import asyncio
import logging

import pytest

from slob_tui.config import load_settings
from slob_tui.core.events import EventType
from slob_tui.feeds.alpaca import AlpacaWSFetcher, stream_url_for
from slob_tui.feeds.base import FeedError
from tests.fakes.alpaca import LocalAlpaca

from .conftest import (
    KEY,
    SECRET,
    AggSink,
    fast_fetcher,
    ohlcv,
    run_until_done,
    settings_for,
    wait_for,
)


async def _run_expecting_error(fetcher: AlpacaWSFetcher, sink: AggSink) -> FeedError:
    with pytest.raises(FeedError) as info:
        await asyncio.wait_for(fetcher.run(sink), 10)
    return info.value


async def test_bad_keys_stop_with_402_naming_the_settings(spy_trades, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-" + SECRET
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        fetcher = fast_fetcher(server, settings=settings_for(server, secret=wrong))
        err = await _run_expecting_error(fetcher, AggSink())
    assert "ALPACA_API_KEY" in str(err) and "ALPACA_API_SECRET" in str(err) and "402" in str(err)
    assert fetcher.health()["state"] == "failed"
    for text in (str(err), repr(err), caplog.text, repr(fetcher.health())):
        assert wrong not in text and SECRET not in text


async def test_plan_without_sip_stops_with_409_naming_alpaca_feed(spy_trades):
    async with LocalAlpaca(spy_trades, KEY, SECRET, plan="basic") as server:
        fetcher = fast_fetcher(server, feed="sip", stream_url=server.stream_url("sip"))
        err = await _run_expecting_error(fetcher, AggSink())
    assert "409" in str(err) and "ALPACA_FEED" in str(err)


async def test_missing_keys_name_both_spellings():
    fetcher = AlpacaWSFetcher(load_settings(env={}, dotenv=None), feed="iex")
    err = await _run_expecting_error(fetcher, AggSink())
    assert "ALPACA_API_KEY" in str(err) and "APCA_API_KEY_ID" in str(err)


async def test_apca_key_names_are_accepted_and_stream(spy_trades, reference_candles):
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        env = {
            "APCA_API_KEY_ID": KEY,
            "APCA_API_SECRET_KEY": SECRET,
            "ALPACA_DATA_STREAM_URL": f"ws://127.0.0.1:{server.port}",
            "ALPACA_DATA_URL": server.rest_url,
            "ALPACA_PAPER": "false",
        }
        settings = load_settings(env=env, dotenv=None)
        fetcher = fast_fetcher(server, settings=settings)
        assert fetcher.url == server.stream_url("iex")  # a bare host gets the feed's path
        assert fetcher.mode == "LIVE"
        sink = AggSink()
        await run_until_done(fetcher, sink)
    assert ohlcv(sink.final()) == ohlcv(reference_candles)


def test_default_urls_symbols_and_mode():
    settings = load_settings(env={}, dotenv=None)
    assert stream_url_for("iex") == "wss://stream.data.alpaca.markets/v2/iex"
    assert stream_url_for("crypto") == "wss://stream.data.alpaca.markets/v1beta3/crypto/us"
    assert AlpacaWSFetcher(settings, feed="iex").symbols == ("QQQ",)
    assert AlpacaWSFetcher(settings, feed="crypto").symbols == ("BTC/USD",)
    assert AlpacaWSFetcher(settings, feed="test").symbols == ("FAKEPACA",)
    assert AlpacaWSFetcher(settings, feed="iex").mode == "PAPER"
    with pytest.raises(FeedError, match="ALPACA_FEED"):
        AlpacaWSFetcher(settings, feed="nasdaq")


async def test_406_says_so_and_retries(spy_trades, reference_candles, caplog):
    caplog.set_level(logging.WARNING)
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        server.refuse_auth(2, code=406)
        sink = AggSink()
        fetcher = fast_fetcher(server)
        await run_until_done(fetcher, sink)
    assert "406 connection limit exceeded" in caplog.text
    assert fetcher.reconnects == 2
    assert ohlcv(sink.final()) == ohlcv(reference_candles)


async def test_second_connection_with_same_key_gets_406(spy_trades):
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        first, second = fast_fetcher(server), fast_fetcher(server)
        s1, s2 = AggSink(), AggSink()
        t1 = asyncio.create_task(first.run(s1))
        await wait_for(lambda: first.state == "subscribed", 10, "first subscribed")
        t2 = asyncio.create_task(second.run(s2))
        await wait_for(lambda: "406" in second.last_error, 10, "a 406 on the second")
        assert second.state in ("reconnecting", "connecting", "connected")
        for f in (first, second):
            await f.stop()
        await asyncio.gather(t1, t2)


async def test_stalled_stream_is_treated_as_a_drop(spy_trades, reference_candles, caplog):
    caplog.set_level(logging.WARNING)
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        server.schedule(len(spy_trades) // 2, "stall", seconds=5.0)
        sink = AggSink()
        fetcher = fast_fetcher(server, stall_timeout_s=0.3, market_open=lambda _ns: True)
        await run_until_done(fetcher, sink)
    assert "stream stalled: no message for 0.3 s" in caplog.text
    assert fetcher.reconnects == 1
    assert ohlcv(sink.final()) == ohlcv(reference_candles)


async def test_closed_market_silence_is_not_a_stall(spy_trades):
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        server.stall(1.0)
        fetcher = fast_fetcher(server, stall_timeout_s=0.1, market_open=lambda _ns: False)
        task = asyncio.create_task(fetcher.run(AggSink()))
        await wait_for(lambda: fetcher.ticks > 0, 10, "ticks after the silence")
        await fetcher.stop()
        await task
    assert fetcher.reconnects == 0


async def test_garbage_frames_are_counted_not_raised(spy_trades, reference_candles):
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        sink = AggSink()
        fetcher = fast_fetcher(server)
        task = asyncio.create_task(run_until_done(fetcher, sink))
        await wait_for(lambda: fetcher.ticks > 1000, 10, "streaming")
        bad = await server.send_garbage(6, seed=3)
        await task
    assert bad > 6  # some frames carry several bad messages
    assert fetcher.rejected_messages == bad
    assert fetcher.reconnects == 0
    assert ohlcv(sink.final()) == ohlcv(reference_candles)


async def test_safe_mode_after_ten_failures_and_recovery(spy_trades):
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        sink = AggSink()
        fetcher = fast_fetcher(server)
        task = asyncio.create_task(fetcher.run(sink))
        await wait_for(lambda: fetcher.state == "subscribed", 10, "subscribed")
        await server.go_down()
        await wait_for(lambda: fetcher.safe_mode, 20, "SAFE MODE")
        on = sink.of_type(EventType.SAFE_MODE)
        assert len(on) == 1 and on[0].data.on is True and "10 consecutive" in on[0].data.reason
        assert fetcher.health()["state"] == "safe_mode"
        await server.come_up()
        await wait_for(
            lambda: not fetcher.safe_mode and fetcher.state == "subscribed", 20, "recovery"
        )
        await fetcher.stop()
        await task
    modes = [e.data.on for e in sink.of_type(EventType.SAFE_MODE)]
    assert modes == [True, False]
    assert fetcher.consecutive_failures == 0


async def test_pause_drops_ticks_and_resume_backfills_the_hole(spy_trades, reference_candles):
    async with LocalAlpaca(spy_trades, KEY, SECRET, speed=600) as server:
        sink = AggSink()
        fetcher = fast_fetcher(server)
        task = asyncio.create_task(run_until_done(fetcher, sink))
        await wait_for(lambda: fetcher.ticks > 2000, 20, "streaming")
        fetcher.pause()
        paused_at = fetcher.ticks
        await wait_for(lambda: fetcher.ticks > paused_at + 3000, 20, "ticks while paused")
        fetcher.resume()
        await task
    assert fetcher.paused_dropped > 0
    assert fetcher.backfilled_candles > 0
    assert sink.order_violations == 0
    assert ohlcv(sink.final()) == ohlcv(reference_candles)


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_secret_never_in_logs_even_at_debug(spy_trades, caplog, encoding):
    """Debug logging of every library on a run with a drop and a 406: the secret stays out.
    websockets logs frames at DEBUG, and the auth frame carries the secret: a short secret
    keeps the frame under the logger's truncation, so a leak would show."""
    caplog.set_level(logging.DEBUG)
    secret = "Zq-81x"
    async with LocalAlpaca(spy_trades[:3000], "PK1", secret) as server:
        server.schedule(1500, "refuse_auth", count=1, code=406)
        fetcher = fast_fetcher(
            server, settings=settings_for(server, "PK1", secret), encoding=encoding
        )
        task = asyncio.create_task(fetcher.run(AggSink()))
        await wait_for(
            lambda: (
                fetcher.ticks >= 1500 and fetcher.state == "subscribed" and fetcher.reconnects == 2
            ),
            20,
            "two reconnects",
        )
        await fetcher.stop()
        await task
    assert logging.getLogger("websockets.client").isEnabledFor(logging.DEBUG)
    for form in (secret, secret.encode().hex(), " ".join(f"{b:02x}" for b in secret.encode())):
        assert form not in caplog.text
    assert secret not in repr(fetcher.health())


async def test_random_and_mutated_frames_never_raise_out_of_the_fetcher():
    """Seeded random bytes, random JSON text and real frames with flipped bytes, mid-stream:
    the session survives and every rejection the parser reports is counted."""
    import random

    import msgpack

    from slob_tui.feeds.alpaca_frames import parse_frame
    from tests.fakes.alpaca import fakepaca_trades

    rng = random.Random(42)
    good = msgpack.packb([{"T": "t", "S": "FAKEPACA", "i": k, "x": "V", "p": 100.0 + k, "s": 5,
                           "t": msgpack.Timestamp.from_unix_nano(10**18 + k), "c": ["@"]}
                          for k in range(5)])  # fmt: skip
    frames: list[bytes | str] = []
    for _ in range(300):
        kind = rng.randrange(3)
        if kind == 0:
            frames.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 60))))
        elif kind == 1:
            frames.append("".join(rng.choice('[]{}",:0123456789.tT-eE') for _ in range(30)))
        else:
            mutated = bytearray(good)
            for _ in range(rng.randint(1, 3)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            frames.append(bytes(mutated))
    expected = sum(parse_frame(f).rejected for f in frames)
    tape = fakepaca_trades(10**18, 100)
    async with LocalAlpaca(tape, KEY, SECRET) as server:
        fetcher = fast_fetcher(
            server, feed="test", symbols=("FAKEPACA",), stream_url=server.stream_url("test")
        )
        task = asyncio.create_task(fetcher.run(AggSink()))
        await wait_for(lambda: fetcher.ticks == 100, 10, "the tape")
        for f in frames:
            await server.send_raw(f)
        await wait_for(lambda: fetcher.messages >= 100 + 300, 10, "all frames read")
        assert fetcher.state == "subscribed" and fetcher.reconnects == 0
        await fetcher.stop()
        await task
    assert expected > 200
    assert fetcher.rejected_messages == expected


async def test_crypto_feed_streams_btc_without_conditions():
    from tests.fakes.alpaca import fakepaca_trades

    tape = fakepaca_trades(10**18, 500, symbol="BTC/USD")
    async with LocalAlpaca(tape, KEY, SECRET) as server:
        sink = AggSink()
        fetcher = fast_fetcher(
            server,
            feed="crypto",
            symbols=None,
            stream_url=server.stream_url("crypto"),
            backfill=False,
        )
        task = asyncio.create_task(fetcher.run(sink))
        await wait_for(lambda: fetcher.ticks == 500, 10, "crypto trades")
        await fetcher.stop()
        await task
    assert fetcher.symbols == ("BTC/USD",)
    assert sink.ticks == 500 and sink.agg.forming("BTC/USD") is not None


async def test_cancels_and_corrections_reach_the_engine():
    import msgpack

    from tests.fakes.alpaca import fakepaca_trades

    stamp = msgpack.Timestamp.from_unix_nano(10**18 + 7)
    frame = msgpack.packb([
        {"T": "x", "S": "FAKEPACA", "i": 7, "x": "V", "p": 107.0, "s": 5, "a": "C", "t": stamp},
        {"T": "c", "S": "FAKEPACA", "x": "V", "oi": 8, "op": 108.0, "os": 5, "oc": ["@"],
         "ci": 99, "cp": 108.5, "cs": 4, "cc": ["@"], "t": stamp},
    ])  # fmt: skip
    tape = fakepaca_trades(10**18, 20)
    async with LocalAlpaca(tape, KEY, SECRET) as server:
        sink = AggSink()
        fetcher = fast_fetcher(
            server, feed="test", symbols=("FAKEPACA",), stream_url=server.stream_url("test")
        )
        task = asyncio.create_task(fetcher.run(sink))
        await wait_for(lambda: fetcher.ticks == 20, 10, "the tape")
        await server.send_raw(frame)
        await wait_for(lambda: len(sink.corrections) == 2, 10, "the corrections")
        await fetcher.stop()
        await task
    assert sink.corrections == [
        ("FAKEPACA", 10**18 + 7, 7, "V", None),
        ("FAKEPACA", 10**18 + 7, 8, "V", (108.5, 4.0, ("@",))),
    ]
    assert fetcher.health()["corrections"] == 2 and fetcher.rejected_messages == 0
