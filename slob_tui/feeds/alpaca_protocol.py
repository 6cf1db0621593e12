"""The Alpaca stream's wire side: endpoints, connecting, the handshake, reading, error codes.

It lives apart from `alpaca.py` so that module keeps the session's state machine (hold and
release around the backfill, pause, failure) and this one what touches the socket: connect ->
`connected` -> auth -> subscribe (the reply is checked), then the read loop with its stall
check (no message for `stall_timeout_s` while the market is open). 402 (bad keys), 405 (too
many symbols) and 409 (plan lacks the feed) raise a `FeedError` naming the setting to fix;
other failures raise `_Retry` so the session ends and the loop reconnects.

`_StreamProtocol` is a mixin of `AlpacaWSFetcher`: its methods read the fetcher's settings and
hand what arrives to the fetcher's `_count`, `_deliver` and `_correct`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import msgpack
from websockets.asyncio.client import ClientConnection, connect

from slob_tui.config import Settings
from slob_tui.core.clock import Clock
from slob_tui.feeds.alpaca_frames import parse_frame
from slob_tui.feeds.base import FeedError, FeedSink

# The feed's logger, as before the protocol moved here (log filters may name it).
log = logging.getLogger("slob_tui.feeds.alpaca")

STREAM_HOST = "wss://stream.data.alpaca.markets"
STREAM_PATHS = {
    "iex": "/v2/iex",
    "sip": "/v2/sip",
    "crypto": "/v1beta3/crypto/us",
    "test": "/v2/test",
}
DEFAULT_SYMBOLS = {"iex": ("QQQ",), "sip": ("QQQ",), "crypto": ("BTC/USD",), "test": ("FAKEPACA",)}


class _NoFrames(logging.Filter):
    """websockets logs every frame at DEBUG, the auth frame (and so the secret) included."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("> ", "< ", "% "))


# The stream's own websockets logger: frame dumps never reach a handler, whatever the level.
_WIRE_LOG = logging.getLogger("slob_tui.feeds.alpaca.wire")
_WIRE_LOG.setLevel(logging.INFO)
_WIRE_LOG.addFilter(_NoFrames())


class _Retry(Exception):
    """This session failed in a way a later attempt may not (drop, stall, 406, 500...)."""


def stream_url_for(feed: str, override: str = "") -> str:
    """The stream URL: the override as given if it has a path, else host + the feed's path."""
    if override:
        if urlsplit(override).path not in ("", "/"):
            return override
        return override.rstrip("/") + STREAM_PATHS[feed]
    return STREAM_HOST + STREAM_PATHS[feed]


class _StreamProtocol:
    """Connect, handshake, read loop and error codes of `AlpacaWSFetcher` (which sets these)."""

    _settings: Settings
    feed: str
    symbols: tuple[str, ...]
    url: str
    encoding: str
    handshake_timeout_s: float
    state: str
    stall_timeout_s: float
    clock: Clock
    _market_open: Callable[[int], bool]
    last_error: str
    _last_message_mono: float | None

    def _connect(self) -> connect:
        headers = {"Content-Type": "application/msgpack"} if self.encoding == "msgpack" else {}
        host = urlsplit(self.url).hostname or ""
        return connect(
            self.url,
            additional_headers=headers,
            open_timeout=self.handshake_timeout_s,
            max_size=2**24,
            logger=_WIRE_LOG,
            proxy=None if host in ("127.0.0.1", "localhost", "::1") else True,
        )

    async def _recv(self, ws: ClientConnection, timeout: float) -> Any:
        frame = await asyncio.wait_for(ws.recv(), timeout)
        self._last_message_mono = time.monotonic()
        return frame

    def _send_obj(self, obj: dict[str, Any]) -> bytes | str:
        return msgpack.packb(obj) if self.encoding == "msgpack" else json.dumps(obj)

    async def _expect(self, ws: ClientConnection, want: str) -> dict[str, Any]:
        """Read frames until a control message arrives; trades seen meanwhile are held."""
        deadline = time.monotonic() + self.handshake_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Retry(f"no {want!r} reply within {self.handshake_timeout_s:g} s")
            parsed = parse_frame(await self._recv(ws, remaining))
            self._count(parsed)
            if parsed.ticks:
                self._deliver(sink=None, ticks=parsed.ticks)
            for msg in parsed.controls:
                if msg.get("T") == "error":
                    self._raise_for_error(msg)
                return msg

    async def _handshake(self, ws: ClientConnection) -> None:
        self.state = "connected"
        msg = await self._expect(ws, "connected")
        if msg.get("T") != "success" or msg.get("msg") != "connected":
            raise _Retry(f"unexpected first message {msg.get('T')!r}")
        await ws.send(
            self._send_obj(
                {
                    "action": "auth",
                    "key": self._settings.alpaca_api_key,
                    "secret": self._settings.alpaca_api_secret,
                }
            )
        )
        msg = await self._expect(ws, "authenticated")
        if msg.get("T") != "success" or msg.get("msg") != "authenticated":
            raise _Retry(f"unexpected auth reply {msg.get('T')!r}")
        self.state = "authenticated"
        await ws.send(self._send_obj({"action": "subscribe", "trades": list(self.symbols)}))
        msg = await self._expect(ws, "subscription")
        if msg.get("T") != "subscription":
            raise _Retry(f"unexpected subscribe reply {msg.get('T')!r}")
        confirmed = msg.get("trades")
        if not isinstance(confirmed, list) or not (
            "*" in confirmed or set(self.symbols) <= set(confirmed)
        ):
            raise _Retry(f"subscription not confirmed: asked trades for {list(self.symbols)}")

    def _raise_for_error(self, msg: dict[str, Any]) -> None:
        code = msg.get("code")
        text = str(msg.get("msg", ""))[:80]
        if code == 402:
            raise FeedError(
                "Alpaca rejected the API keys (402 auth failed): check ALPACA_API_KEY and "
                "ALPACA_API_SECRET"
            )
        if code == 409:
            raise FeedError(
                f"the Alpaca plan does not include the {self.feed!r} feed (409 insufficient "
                "subscription): set ALPACA_FEED=iex (the free plan's feed)"
            )
        if code == 405:
            raise FeedError(
                f"too many symbols for the Alpaca plan (405 symbol limit exceeded): "
                f"reduce SLOB_SYMBOLS (asked {len(self.symbols)})"
            )
        if code == 406:
            log.warning(
                "Alpaca: 406 connection limit exceeded - another connection with these keys "
                "is open (one per endpoint); retrying with backoff"
            )
        raise _Retry(f"Alpaca error {code}: {text}")

    async def _read_loop(self, ws: ClientConnection, sink: FeedSink) -> None:
        while True:
            try:
                frame = await self._recv(ws, self.stall_timeout_s)
            except TimeoutError:
                if self._market_open(self.clock.now_ns()):
                    raise _Retry(
                        f"stream stalled: no message for {self.stall_timeout_s:g} s"
                    ) from None
                continue
            parsed = parse_frame(frame)
            self._count(parsed)
            for msg in parsed.controls:
                if msg.get("T") == "error":
                    code = msg.get("code")
                    self.last_error = f"Alpaca error {code}: {str(msg.get('msg', ''))[:80]}"
                    log.warning("Alpaca stream: %s", self.last_error)
            if parsed.ticks:
                self._deliver(sink, parsed.ticks)
            if parsed.corrections:
                self._correct(sink, parsed.corrections)
