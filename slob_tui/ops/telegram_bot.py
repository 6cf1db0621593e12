"""The Telegram transport: python-telegram-bot polling on the engine's loop.

Alerts go to every allow-listed chat; every incoming update goes through `CommandProcessor`,
which refuses chats not on the list. The token lives only inside the bot object: the Bot API
puts it in the URL path, so httpx's request log and any URL in an error would show it —
`ops.logs` redacts both, and this module never formats the token itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from slob_tui.config import AlertConfig
from slob_tui.ops.alerts import AlertRouter
from slob_tui.ops.commands import CommandProcessor
from slob_tui.ops.logs import install_redaction

log = logging.getLogger(__name__)

MAX_MESSAGE = 4000  # Telegram's limit is 4096 characters


class TelegramOps:
    """Alerts out, commands in. `await start()` after the engine's loop runs; `await stop()`."""

    def __init__(
        self,
        engine: Any,
        token: str,
        chat_ids: Iterable[int],
        *,
        config: AlertConfig | None = None,
        base_url: str | None = None,
        tz: str = "America/New_York",
        poll_timeout_s: int = 10,
        confirm_window_s: float = 60.0,
        retry_delay_s: float = 1.0,
    ) -> None:
        from telegram import Update
        from telegram.ext import ApplicationBuilder, TypeHandler

        if not token:
            raise ValueError("TELEGRAM_BOT_TOKEN is empty")
        install_redaction([token])
        self.engine = engine
        self.chat_ids = tuple(int(c) for c in chat_ids)
        self.poll_timeout_s = poll_timeout_s
        builder = ApplicationBuilder().token(token)
        if base_url:
            root = base_url.rstrip("/")
            builder = builder.base_url(f"{root}/bot").base_file_url(f"{root}/file/bot")
        builder = builder.get_updates_read_timeout(poll_timeout_s + 5)
        self.app = builder.build()
        self.app.add_handler(TypeHandler(Update, self._on_update))
        self.commands = CommandProcessor(engine, self.chat_ids, confirm_window_s=confirm_window_s)
        self.send_attempts = 3
        self.retry_delay_s = retry_delay_s
        self.router = AlertRouter(self.send, config, tz=tz, retries=0)
        self.router.attach(engine.bus)
        self._running = False

    async def start(self) -> None:
        """Check the token (getMe), start polling for commands and the alert sender."""
        await self.app.initialize()
        await self.app.start()
        assert self.app.updater is not None
        await self.app.updater.start_polling(
            timeout=self.poll_timeout_s,
            drop_pending_updates=True,
            error_callback=self._polling_error,
        )
        self.router.start()
        self._running = True
        log.info(
            "telegram: bot @%s polling; %d chats allowed", self.app.bot.username, len(self.chat_ids)
        )

    async def stop(self) -> None:
        """Flush queued alerts, then stop polling and close the HTTP clients."""
        await self.router.stop()
        if not self._running:
            return
        self._running = False
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        await self.app.stop()
        await self.app.shutdown()

    async def send(self, text: str) -> None:
        """One message to every allow-listed chat, each retried on its own (so no chat gets a
        duplicate); raises if a chat still failed, which the router counts."""
        failures: list[str] = []
        for chat_id in self.chat_ids:
            for attempt in range(self.send_attempts):
                try:
                    await self.app.bot.send_message(chat_id=chat_id, text=text[:MAX_MESSAGE])
                    break
                except Exception as exc:  # noqa: BLE001 - retried, then reported below
                    log.warning(
                        "telegram: send to chat %s failed (attempt %d): %s",
                        chat_id,
                        attempt + 1,
                        exc,
                    )
                    if attempt + 1 == self.send_attempts:
                        failures.append(str(chat_id))
                    else:
                        await asyncio.sleep(self.retry_delay_s * (attempt + 1))
        if failures:
            raise RuntimeError(f"alert not delivered to chat(s) {', '.join(failures)}")

    def _polling_error(self, exc: Exception) -> None:
        log.warning("telegram: polling error: %s", exc)

    async def _on_update(self, update: Any, context: Any) -> None:
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None:
            log.warning("telegram: ignored an update without a message (%s)", update.update_id)
            return
        reply = await self.commands.handle(chat.id, message.text or "")
        try:
            await asyncio.wait_for(
                self.app.bot.send_message(chat_id=chat.id, text=reply[:MAX_MESSAGE]), 15
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("telegram: reply to chat %s failed: %s", chat.id, exc)
