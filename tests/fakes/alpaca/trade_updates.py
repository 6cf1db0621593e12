"""The local Alpaca's `trade_updates` stream (`/stream`): order events from the paper engine."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

if TYPE_CHECKING:
    from .server import LocalAlpaca


async def serve_trade_updates(srv: LocalAlpaca, ws: ServerConnection) -> None:
    """One `/stream` connection: authenticate, listen, then every order event as a binary
    frame holding JSON (as Alpaca's paper endpoint sends them)."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    listening = False

    def listener(update: dict[str, Any]) -> None:
        if listening:
            queue.put_nowait(update)

    async def pump() -> None:
        while True:
            update = await queue.get()
            await ws.send(json.dumps({"stream": "trade_updates", "data": update}).encode())

    srv.trading.listeners.append(listener)
    pumper = asyncio.create_task(pump())
    authed = False
    try:
        async for raw in ws:
            try:
                msg = json.loads(raw)
                action = msg["action"]
            except Exception:  # noqa: BLE001
                await ws.send(
                    json.dumps(
                        {"stream": "error", "data": {"error_message": "invalid syntax"}}
                    ).encode()
                )
                continue
            if action in ("authenticate", "auth"):
                data = msg.get("data") or {}
                authed = (
                    data.get("key_id") == srv.api_key and data.get("secret_key") == srv.api_secret
                )
                status = "authorized" if authed else "unauthorized"
                await ws.send(
                    json.dumps(
                        {
                            "stream": "authorization",
                            "data": {"status": status, "action": "authenticate"},
                        }
                    ).encode()
                )
                if not authed:
                    await ws.close()
                    return
            elif action == "listen" and authed:
                streams = (msg.get("data") or {}).get("streams") or []
                listening = "trade_updates" in streams
                srv.trade_update_listeners += listening
                await ws.send(
                    json.dumps(
                        {
                            "stream": "listening",
                            "data": {"streams": ["trade_updates"] if listening else []},
                        }
                    ).encode()
                )
    except ConnectionClosed:
        pass
    finally:
        pumper.cancel()
        srv.trading.listeners.remove(listener)
