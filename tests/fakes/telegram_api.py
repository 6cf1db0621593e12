"""A local fake of the Telegram Bot API on 127.0.0.1, enough for python-telegram-bot to poll.

It speaks real HTTP over asyncio streams (no web framework): `POST /bot<token>/<method>` with a
form-encoded or JSON body, answers getMe, deleteWebhook, getUpdates (long polling, offsets),
sendMessage and a few no-ops, and refuses any other token with 401 like the real API.
Tests push incoming messages with `push_message` and read what the bot sent in `sent`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any
from urllib.parse import parse_qsl

REASONS = {200: "OK", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}
BOT_USER = {"id": 777000111, "is_bot": True, "first_name": "SlobBot", "username": "slob_test_bot"}


class FakeBotAPI:
    def __init__(self, token: str, *, max_poll_s: float = 0.3) -> None:
        self.token = token
        self.max_poll_s = max_poll_s
        self.updates: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.fail_sends = 0  # the next N sendMessage calls answer 500
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._new_update = asyncio.Condition()
        self._new_sent = asyncio.Condition()
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # ---- test side ------------------------------------------------------------------
    async def push_message(self, chat_id: int, text: str) -> None:
        """An incoming message, as a user in `chat_id` would send it."""
        entities = []
        if text.startswith("/"):
            entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        update = {
            "update_id": next(self._update_ids),
            "message": {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "Trader"},
                "text": text,
                "entities": entities,
            },
        }
        async with self._new_update:
            self.updates.append(update)
            self._new_update.notify_all()

    async def wait_sent(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least `count` messages were sent by the bot; return them all."""
        async with self._new_sent:
            await asyncio.wait_for(
                self._new_sent.wait_for(lambda: len(self.sent) >= count), timeout
            )
        return list(self.sent)

    def texts_to(self, chat_id: int) -> list[str]:
        return [m["text"] for m in self.sent if int(m["chat_id"]) == chat_id]

    # ---- HTTP -----------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                status, payload = await self._dispatch(path, headers, body)
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()

    def _params(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        ctype = headers.get("content-type", "")
        if "json" in ctype:
            return json.loads(body or b"{}")
        return dict(parse_qsl(body.decode()))

    async def _dispatch(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        prefix = f"/bot{self.token}/"
        if not path.startswith(prefix):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        name = path[len(prefix) :].split("?", 1)[0]
        self.calls.append(name)
        params = self._params(headers, body)
        if name == "getMe":
            return 200, {"ok": True, "result": BOT_USER}
        if name in ("deleteWebhook", "setMyCommands", "close", "logOut"):
            return 200, {"ok": True, "result": True}
        if name == "getUpdates":
            return 200, {"ok": True, "result": await self._get_updates(params)}
        if name == "sendMessage":
            if self.fail_sends > 0:
                self.fail_sends -= 1
                return 500, {"ok": False, "error_code": 500, "description": "Internal error"}
            message = {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": int(params["chat_id"]), "type": "private"},
                "from": BOT_USER,
                "text": params.get("text", ""),
            }
            async with self._new_sent:
                self.sent.append({"chat_id": int(params["chat_id"]), "text": params["text"]})
                self._new_sent.notify_all()
            return 200, {"ok": True, "result": message}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method"}

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), self.max_poll_s)

        def ready() -> list[dict[str, Any]]:
            return [u for u in self.updates if u["update_id"] >= offset]

        async with self._new_update:
            if offset:
                self.updates = ready()
            if not ready() and timeout > 0:
                try:
                    await asyncio.wait_for(
                        self._new_update.wait_for(lambda: bool(ready())), timeout
                    )
                except TimeoutError:
                    pass
            return ready()
