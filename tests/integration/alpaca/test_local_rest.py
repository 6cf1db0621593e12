"""The local Alpaca's REST side over real HTTP: bars paging, order rules, rate limit; and the
feed's bars client against it."""

from __future__ import annotations

import httpx
import pytest

from slob_tui.core.models import NS_PER_MINUTE
from slob_tui.feeds.alpaca_rest import AlpacaBarsClient, BackfillError
from slob_tui.feeds.base import FeedError
from tests.fakes.alpaca import LocalAlpaca, fakepaca_trades, minute_bars

from .conftest import KEY, SECRET, SLICE_END, SLICE_START

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


async def test_bars_client_pages_to_the_same_candles_as_one_page(spy_trades, reference_candles):
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        server.seek(SLICE_END)  # every minute of the slice has closed
        one = AlpacaBarsClient(server.rest_url, KEY, SECRET, page_limit=10_000)
        paged = AlpacaBarsClient(server.rest_url, KEY, SECRET, page_limit=7)
        end = SLICE_END - NS_PER_MINUTE
        a = await one.fetch_candles(["SPY"], SLICE_START, end)
        b = await paged.fetch_candles(["SPY"], SLICE_START, end)
    key = [(c.start, c.open, c.high, c.low, c.close, c.volume) for c in reference_candles]
    assert [(c.start, c.open, c.high, c.low, c.close, c.volume) for c in a["SPY"]] == key
    assert a == b and all(c.backfilled for c in b["SPY"])
    assert (one.requests, paged.requests) == (1, 5)  # 29 bars, 7 a page


async def test_bars_exist_only_for_closed_minutes(spy_trades):
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        server.seek(SLICE_START + 5 * NS_PER_MINUTE + 30_000_000_000)  # 09:35:30
        got = await AlpacaBarsClient(server.rest_url, KEY, SECRET).fetch_candles(
            ["SPY"], SLICE_START, SLICE_END
        )
    assert [c.start for c in got["SPY"]] == [SLICE_START + k * NS_PER_MINUTE for k in range(5)]


async def test_bars_client_errors_are_plain(spy_trades):
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        with pytest.raises(FeedError, match="ALPACA_API_KEY") as info:
            await AlpacaBarsClient(server.rest_url, KEY, "nope").fetch_candles(
                ["SPY"], SLICE_START, SLICE_END
            )
        assert "nope" not in str(info.value)
        server.bars_failures = 1
        with pytest.raises(BackfillError, match="500"):
            await AlpacaBarsClient(server.rest_url, KEY, SECRET).fetch_candles(
                ["SPY"], SLICE_START, SLICE_END
            )
        url = server.rest_url
    with pytest.raises(BackfillError, match="ConnectError"):
        await AlpacaBarsClient(url, KEY, SECRET).fetch_candles(["SPY"], SLICE_START, SLICE_END)


def test_bars_leave_odd_lots_and_out_of_sequence_prints_out_of_ohlc():
    tape = fakepaca_trades(0, 50, seed=3)
    odd = [t for t in tape if "I" in t.conditions]
    assert odd  # the seed makes some
    bars = minute_bars(tape)["FAKEPACA"]
    regular = [t for t in tape if "I" not in t.conditions]
    assert sum(b["v"] for b in bars) == sum(t.size for t in tape)
    assert bars[0]["o"] == regular[0].price
    assert max(b["h"] for b in bars) == max(t.price for t in regular)


async def test_order_rules_over_http():
    async with LocalAlpaca(fakepaca_trades(0, 10), KEY, SECRET, rate_limit_per_minute=30) as s:
        s.set_price("QQQ", 400.0)
        async with httpx.AsyncClient(base_url=s.rest_url, headers=HEADERS) as http:

            async def post(body: dict) -> httpx.Response:
                return await http.post("/v2/orders", json=body)

            base = {
                "symbol": "QQQ",
                "qty": "2",
                "side": "sell",
                "type": "market",
                "time_in_force": "day",
                "order_class": "bracket",
            }
            ok = await post(
                {
                    **base,
                    "client_order_id": "c1",
                    "take_profit": {"limit_price": 390},
                    "stop_loss": {"stop_price": 405},
                }
            )
            assert ok.status_code == 200
            order = ok.json()
            assert order["qty"] == "2" and order["filled_avg_price"] == "400"
            assert [leg["type"] for leg in order["legs"]] == ["limit", "stop"]
            assert len(order["id"]) == 36 and order["id"].count("-") == 4
            dup = await post(
                {
                    **base,
                    "client_order_id": "c1",
                    "take_profit": {"limit_price": 390},
                    "stop_loss": {"stop_price": 405},
                }
            )
            assert (dup.status_code, dup.json()) == (
                422,
                {"code": 40010001, "message": "client_order_id must be unique"},
            )
            wrong_side = await post(
                {
                    **base,
                    "client_order_id": "c2",
                    "take_profit": {"limit_price": 410},
                    "stop_loss": {"stop_price": 405},
                }
            )
            assert wrong_side.status_code == 422
            ioc = await post(
                {
                    **base,
                    "client_order_id": "c3",
                    "time_in_force": "ioc",
                    "take_profit": {"limit_price": 390},
                    "stop_loss": {"stop_price": 405},
                }
            )
            assert ioc.status_code == 422 and "day or gtc" in ioc.json()["message"]
            long_id = await post({**base, "client_order_id": "x" * 49})
            assert long_id.status_code == 422
            crypto = await post(
                {
                    **base,
                    "symbol": "BTC/USD",
                    "client_order_id": "c4",
                    "take_profit": {"limit_price": 1},
                    "stop_loss": {"stop_price": 2},
                }
            )
            assert crypto.status_code == 422 and "crypto" in crypto.json()["message"]
            by_cid = await http.get(
                "/v2/orders:by_client_order_id", params={"client_order_id": "c1"}
            )
            assert by_cid.json()["id"] == order["id"]
            missing = await http.get(
                "/v2/orders:by_client_order_id", params={"client_order_id": "zz"}
            )
            assert missing.status_code == 404
            tp = order["legs"][0]["id"]
            assert (await http.delete(f"/v2/orders/{tp}")).status_code == 204
            again = await http.delete(f"/v2/orders/{tp}")
            assert again.status_code == 422 and "canceled" in again.json()["message"]
            everything = await http.delete("/v2/orders")
            assert everything.status_code == 207
            assert [r["status"] for r in everything.json()] == [200]  # the stop leg
            positions = (await http.get("/v2/positions")).json()
            assert [(p["symbol"], p["qty"], p["side"]) for p in positions] == [
                ("QQQ", "-2", "short")
            ]
            unauthorized = await http.get("/v2/account", headers={"APCA-API-SECRET-KEY": "bad"})
            assert unauthorized.status_code == 401
            codes = [(await http.get("/v2/clock")).status_code for _ in range(30)]
    # 30 a minute: 12 authorized requests came before, so 18 more pass and 12 get 429
    assert codes == [200] * 18 + [429] * 12
