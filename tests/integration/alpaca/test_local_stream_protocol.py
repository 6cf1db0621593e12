"""The local Alpaca's market-data stream speaks the documented protocol: every error code,
framing by Content-Type, the subscription reply."""

from __future__ import annotations

import asyncio
import json

import msgpack
from websockets.asyncio.client import connect

from tests.fakes.alpaca import LocalAlpaca, fakepaca_trades

from .conftest import KEY, SECRET

TAPE = fakepaca_trades(10**18, 20)


async def _recv(ws) -> list[dict]:
    raw = await asyncio.wait_for(ws.recv(), 5)
    return msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)


async def _send(ws, obj: dict) -> list[dict]:
    await ws.send(json.dumps(obj))
    return await _recv(ws)


def _code(reply: list[dict]) -> int | None:
    return reply[0].get("code") if reply[0]["T"] == "error" else None


async def test_error_codes_in_order_of_a_confused_client():
    async with LocalAlpaca(TAPE, KEY, SECRET) as server:
        async with connect(server.stream_url("test")) as ws:
            assert await _recv(ws) == [{"T": "success", "msg": "connected"}]
            assert _code(await _send(ws, {"action": "subscribe", "trades": ["FAKEPACA"]})) == 401
            await ws.send("{not json")
            assert _code(await _recv(ws)) == 400
            assert _code(await _send(ws, {"action": "auth", "key": KEY, "secret": "x"})) == 402
            ok = await _send(ws, {"action": "auth", "key": KEY, "secret": SECRET})
            assert ok == [{"T": "success", "msg": "authenticated"}]
            assert _code(await _send(ws, {"action": "auth", "key": KEY, "secret": SECRET})) == 403
            assert _code(await _send(ws, {"action": "dance"})) == 410
            many = [f"S{k}" for k in range(31)]
            assert _code(await _send(ws, {"action": "subscribe", "trades": many})) == 405
            await ws.send(json.dumps({"action": "unsubscribe", "trades": many}))
            await _recv(ws)
            sub = await _send(ws, {"action": "subscribe", "trades": ["FAKEPACA"], "bars": ["X"]})
            assert sub[0]["T"] == "subscription" and sub[0]["trades"] == ["FAKEPACA"]
            assert sub[0]["bars"] == ["X"] and sub[0]["corrections"] == ["FAKEPACA"]
            assert sub[0]["cancelErrors"] == ["FAKEPACA"] and sub[0]["quotes"] == []
            trades = await _recv(ws)
            assert trades[0]["T"] == "t" and trades[0]["t"].endswith("Z")  # JSON: RFC 3339
            assert len(trades) == 20  # one batched array
            # a second connection with the same key is refused at auth
            async with connect(server.stream_url("test")) as ws2:
                await _recv(ws2)
                assert (
                    _code(await _send(ws2, {"action": "auth", "key": KEY, "secret": SECRET})) == 406
                )
            await server.slow_client()
            assert _code(await _recv(ws)) == 407


async def test_msgpack_by_content_type_auth_timeout_and_500():
    async with LocalAlpaca(TAPE, KEY, SECRET, auth_timeout_s=0.2) as server:
        headers = {"Content-Type": "application/msgpack"}
        async with connect(server.stream_url("test"), additional_headers=headers) as ws:
            raw = await ws.recv()
            assert isinstance(raw, bytes)
            assert _code(msgpack.unpackb(await ws.recv())) == 404  # no auth in time
        async with connect(server.stream_url("test"), additional_headers=headers) as ws:
            await ws.recv()
            await ws.send(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
            await ws.recv()
            await ws.send(msgpack.packb({"action": "subscribe", "trades": ["*"]}))
            await ws.recv()
            batch = msgpack.unpackb(await ws.recv(), timestamp=2)
            assert batch[0]["t"] == TAPE[0].ts  # a msgpack Timestamp, to the nanosecond
            await server.internal_error()
            assert _code(msgpack.unpackb(await ws.recv())) == 500
