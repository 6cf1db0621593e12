"""One websocket session with Alpaca's market-data stream: the wire side of the feed.

`AlpacaConnection` owns what touches the socket: the endpoint, connecting, the handshake
(connect -> `connected` -> auth -> subscribe, each reply checked), the read loop with its stall
check (no message for `stall_timeout_s` while the market is open) and Alpaca's error codes. It
calls nothing back: `frames()` yields each frame parsed into a `StreamFrame`, and the fetcher
(`alpaca.py`) keeps the session's state machine and decides what happens to the ticks.

402 (bad keys), 405 (too many symbols) and 409 (plan lacks the feed) raise a `FeedError` naming
the setting to fix; other failures raise `RetryableStreamError` (or the socket's own errors), so
the session ends and the fetcher reconnects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgpack
from websockets.asyncio.client import ClientConnection, connect

from slob_tui.config import Settings
from slob_tui.core.clock import Clock
from slob_tui.feeds.alpaca_frames import ParsedFrame, parse_frame
from slob_tui.feeds.base import FeedError

# The feed's logger, as before the wire side moved here (log filters may name it).
log = logging.getLogger("slob_tui.feeds.alpaca")

STREAM_HOST = "wss://stream.data.alpaca.markets"
STREAM_PATHS = {
    "iex": "/v2/iex",
    "sip": "/v2/sip",
    "crypto": "/v1beta3/crypto/us",
    "test": "/v2/test",
}
DEFAULT_SYMBOLS = {"iex": ("QQQ",), "sip": ("QQQ",), "crypto": ("BTC/USD",), "test": ("FAKEPACA",)}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class _NoFrames(logging.Filter):
    """websockets logs every frame at DEBUG, the auth frame (and so the secret) included."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("> ", "< ", "% "))


# The stream's own websockets logger: frame dumps never reach a handler, whatever the level.
_WIRE_LOG = logging.getLogger("slob_tui.feeds.alpaca.wire")
_WIRE_LOG.setLevel(logging.INFO)
_WIRE_LOG.addFilter(_NoFrames())


class RetryableStreamError(Exception):
    """This session failed in a way a later attempt may not (drop, stall, 406, 500...)."""


@dataclass(frozen=True, slots=True)
class StreamFrame:
    """One frame off the wire: its trades as tick tuples, its cancels and corrections, how
    many messages it held and how many were rejected, and the text of an Alpaca error it
    carried that does not end the stream (already logged)."""

    ticks: list[tuple[Any, ...]] = field(default_factory=list)
    corrections: list[tuple[Any, ...]] = field(default_factory=list)
    messages: int = 0
    rejected: int = 0
    error: str = ""


def stream_url_for(feed: str, override: str = "") -> str:
    """The stream URL: the override as given if it has a path, else host + the feed's path."""
    if override:
        if urlsplit(override).path not in ("", "/"):
            return override
        return override.rstrip("/") + STREAM_PATHS[feed]
    return STREAM_HOST + STREAM_PATHS[feed]


class AlpacaConnection:
    """Connect with `open()` (or `async with`), then `authenticate()`, `subscribe()` and
    iterate `frames()` until it raises; `close()` ends it from anywhere (stop, a failed
    backfill), which makes `frames()` raise `ConnectionClosed`."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        feed: str,
        symbols: tuple[str, ...],
        clock: Clock,
        market_open: Callable[[int], bool],
        *,
        encoding: str = "msgpack",
        handshake_timeout_s: float = 10.0,
        stall_timeout_s: float = 30.0,
    ) -> None:
        self._settings = settings  # read for the auth frame only, never kept elsewhere
        self.url = url
        self.feed = feed
        self.symbols = symbols
        self.clock = clock
        self.market_open = market_open
        self.encoding = encoding
        self.handshake_timeout_s = handshake_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.last_message_mono: float | None = None
        self._ws: ClientConnection | None = None
        self._early: list[StreamFrame] = []  # read during the handshake, yielded first

    async def __aenter__(self) -> AlpacaConnection:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        headers = {"Content-Type": "application/msgpack"} if self.encoding == "msgpack" else {}
        host = urlsplit(self.url).hostname or ""
        self._ws = await connect(
            self.url,
            additional_headers=headers,
            open_timeout=self.handshake_timeout_s,
            max_size=2**24,
            logger=_WIRE_LOG,
            proxy=None if host in LOOPBACK_HOSTS else True,
        )

    async def close(self) -> None:
        ws = self._ws
        if ws is not None:
            await ws.close()

    # ----------------------------------------------------------------- handshake
    async def authenticate(self) -> None:
        """Wait for `connected`, send the keys, wait for `authenticated`."""
        msg = await self._expect("connected")
        if msg.get("T") != "success" or msg.get("msg") != "connected":
            raise RetryableStreamError(f"unexpected first message {msg.get('T')!r}")
        await self._send(
            {
                "action": "auth",
                "key": self._settings.alpaca_api_key.get_secret_value(),
                "secret": self._settings.alpaca_api_secret.get_secret_value(),
            }
        )
        msg = await self._expect("authenticated")
        if msg.get("T") != "success" or msg.get("msg") != "authenticated":
            raise RetryableStreamError(f"unexpected auth reply {msg.get('T')!r}")

    async def subscribe(self) -> None:
        """Subscribe to the symbols' trades; the reply must confirm every one of them."""
        await self._send({"action": "subscribe", "trades": list(self.symbols)})
        msg = await self._expect("subscription")
        if msg.get("T") != "subscription":
            raise RetryableStreamError(f"unexpected subscribe reply {msg.get('T')!r}")
        confirmed = msg.get("trades")
        if not isinstance(confirmed, list) or not (
            "*" in confirmed or set(self.symbols) <= set(confirmed)
        ):
            raise RetryableStreamError(
                f"subscription not confirmed: asked trades for {list(self.symbols)}"
            )

    async def _expect(self, want: str) -> dict[str, Any]:
        """Read frames until a control message arrives; what came with them is kept for
        `frames()` (trades may arrive before the subscription reply)."""
        deadline = time.monotonic() + self.handshake_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RetryableStreamError(
                    f"no {want!r} reply within {self.handshake_timeout_s:g} s"
                )
            parsed = parse_frame(await self._recv(remaining))
            self._early.append(StreamFrame(parsed.ticks, [], parsed.messages, parsed.rejected))
            for msg in parsed.controls:
                if msg.get("T") == "error":
                    self._raise_for_error(msg)
                return msg

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
        raise RetryableStreamError(f"Alpaca error {code}: {text}")

    # ----------------------------------------------------------------- streaming
    async def frames(self) -> AsyncIterator[StreamFrame]:
        """The frames read during the handshake, then every frame until the connection ends
        (`ConnectionClosed`) or stalls while the market is open (`RetryableStreamError`)."""
        early, self._early = self._early, []
        for frame in early:
            yield frame
        while True:
            try:
                raw = await self._recv(self.stall_timeout_s)
            except TimeoutError:
                if self.market_open(self.clock.now_ns()):
                    raise RetryableStreamError(
                        f"stream stalled: no message for {self.stall_timeout_s:g} s"
                    ) from None
                continue
            yield self._stream_frame(parse_frame(raw))

    def _stream_frame(self, parsed: ParsedFrame) -> StreamFrame:
        error = ""
        for msg in parsed.controls:
            if msg.get("T") == "error":
                error = f"Alpaca error {msg.get('code')}: {str(msg.get('msg', ''))[:80]}"
                log.warning("Alpaca stream: %s", error)
        return StreamFrame(
            parsed.ticks, parsed.corrections, parsed.messages, parsed.rejected, error
        )

    async def _recv(self, timeout: float) -> Any:
        if self._ws is None:
            raise RetryableStreamError("not connected")
        frame = await asyncio.wait_for(self._ws.recv(), timeout)
        self.last_message_mono = time.monotonic()
        return frame

    async def _send(self, obj: dict[str, Any]) -> None:
        if self._ws is None:
            raise RetryableStreamError("not connected")
        await self._ws.send(msgpack.packb(obj) if self.encoding == "msgpack" else json.dumps(obj))
