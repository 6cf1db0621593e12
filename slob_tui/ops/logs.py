"""Logging setup with secret redaction that no handler can bypass.

Tokens leak through logs in indirect ways: httpx logs every request URL at INFO, and the Bot
API puts the token in the URL path (`/bot<token>/getUpdates`); an exception message or a
traceback may quote a URL or a header. So redaction happens when the record is made (a wrapped
log record factory) and again in a filter on every handler we install: a handler added later by
a library or by pytest's caplog still only ever sees redacted text.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

REDACTED = "[REDACTED]"

# Shapes of secrets worth hiding even when we were not told their value: a Telegram bot token
# (digits:35 url-safe chars), also after the `/bot` URL prefix; Alpaca keys in headers or query.
_PATTERNS = (
    re.compile(r"(?<!\d)\d{5,12}:[A-Za-z0-9_-]{30,}"),
    re.compile(r"(?i)(apca-api-(?:key-id|secret-key)['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"),
    re.compile(r"(?i)((?:api[_-]?key|api[_-]?secret|secret|token|password)=)[^&\s'\"]+"),
)
_MIN_SECRET_LEN = 4  # shorter "secrets" would redact ordinary words


class Redactor:
    """Replaces known secret values and secret-shaped strings with `[REDACTED]`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Learn more secret values (longest first, so a secret containing another is whole)."""
        with self._lock:
            merged = set(self._secrets) | {s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}
            self._secrets = tuple(sorted(merged, key=len, reverse=True))

    @property
    def secret_count(self) -> int:
        return len(self._secrets)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            if pattern.groups:
                text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
            else:
                text = pattern.sub(REDACTED, text)
        return text

    def redact_record(self, record: logging.LogRecord) -> None:
        """Rewrite a record in place: message, args, exception and stack text."""
        if getattr(record, "_slob_redacted", False):
            return
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not hide the secret check
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = self.redact(text)
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        record._slob_redacted = True


class RedactionFilter(logging.Filter):
    """A handler filter: every record passing through is redacted; none is dropped."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        self.redactor.redact_record(record)
        return True


_REDACTOR = Redactor()
_FILTER = RedactionFilter(_REDACTOR)
_installed_factory = False


def redactor() -> Redactor:
    """The process-wide redactor (secrets learnt by `install_redaction`)."""
    return _REDACTOR


def install_redaction(secrets: Iterable[str] = ()) -> Redactor:
    """Redact `secrets` (and secret-shaped text) in every log record from now on.

    Idempotent: calling again only adds secrets. Wraps the record factory once and puts the
    filter on every handler of the root logger present now.
    """
    global _installed_factory
    _REDACTOR.add(secrets)
    if not _installed_factory:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _REDACTOR.redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed_factory = True
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    return _REDACTOR


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(
    level: str = "INFO",
    *,
    secrets: Iterable[str] = (),
    log_file: str | Path | None = None,
    stream: Any = None,
    max_bytes: int = 10_000_000,
    backups: int = 5,
) -> list[logging.Handler]:
    """Configure the root logger for a long-running engine: stderr and/or a rotating file.

    Every handler gets the redaction filter. httpx logs each request URL at INFO (with the
    Bot API token in it), so its logger is raised to WARNING whatever `level` is.
    """
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    root = logging.getLogger()
    root.setLevel(numeric)
    added: list[logging.Handler] = []
    if stream is not None or log_file is None:
        added.append(logging.StreamHandler(stream or sys.stderr))
    if log_file is not None:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        added.append(RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups))
    for handler in added:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    for noisy in ("httpx", "httpcore", "telegram.ext.Updater"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    install_redaction(secrets)
    return added
