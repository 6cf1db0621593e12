"""Settings from the environment or `.env`. Secrets never appear in repr, logs or the store."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from slob_tui.core.calendar import parse_extra_holidays
from slob_tui.errors import SlobError

SECRET_FIELDS = frozenset({"alpaca_api_key", "alpaca_api_secret", "telegram_token"})


class ConfigError(SlobError):
    """A setting is missing or malformed; the message names the setting."""


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _bool(name: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


REDIS_SCHEMES = ("redis", "rediss", "unix")


def validate_redis_url(url: str) -> str:
    """`url` when redis-py can connect with it ('' = no Redis), else a ConfigError.

    The message never repeats the value: a Redis URL may carry a password.
    """
    from urllib.parse import urlsplit

    if not url:
        return url
    form = "redis://HOST[:PORT][/DB], rediss://... or unix:///PATH"
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number in 0-65535
    except ValueError:
        raise ConfigError(f"REDIS_URL is not a Redis URL (expected {form})") from None
    if parts.scheme not in REDIS_SCHEMES:
        raise ConfigError(f"REDIS_URL must start with redis://, rediss:// or unix:// ({form})")
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigError(f"REDIS_URL names no socket path ({form})")
        return url
    db = parts.path.strip("/")
    if not parts.hostname or (db and not db.isdigit()) or port == 0:
        raise ConfigError(f"REDIS_URL needs a host, a port 1-65535 and a numeric db ({form})")
    return url


@dataclass
class Settings:
    alpaca_api_key: str = field(default="", repr=False)
    alpaca_api_secret: str = field(default="", repr=False)
    alpaca_paper: bool = True
    alpaca_feed: str = "iex"
    alpaca_data_stream_url: str = ""
    alpaca_data_url: str = "https://data.alpaca.markets"
    alpaca_api_base_url: str = ""
    alpaca_trading_stream_url: str = ""
    feed: str = "demo"
    symbols: tuple[str, ...] = ()
    db_path: str = "data/slob_tui.db"
    log_level: str = "INFO"
    redis_url: str = ""
    telegram_token: str = field(default="", repr=False)
    telegram_chat_ids: tuple[int, ...] = ()
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    theme: str = "slob-dark"
    tz: str = "America/New_York"
    extra_holidays: frozenset[date] = frozenset()  # closures no rule knows (core/calendar.py)
    extra: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def has_alpaca_keys(self) -> bool:
        return bool(self.alpaca_api_key and self.alpaca_api_secret)

    def redacted(self) -> dict[str, Any]:
        """Settings safe to print or store: secrets shown only as set/unset."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            out[f.name] = ("<set>" if value else "<unset>") if f.name in SECRET_FIELDS else value
        return out

    def secrets(self) -> list[str]:
        """The secret values in force, for redaction filters."""
        return [v for v in (getattr(self, n) for n in SECRET_FIELDS) if v]


def load_settings(
    env: dict[str, str] | None = None, dotenv: Path | None = Path(".env")
) -> Settings:
    """Build settings from `.env` overlaid by the process environment (environment wins)."""
    merged: dict[str, str] = {}
    if dotenv is not None:
        merged.update(_read_dotenv(dotenv))
    merged.update(os.environ if env is None else env)

    def get(*names: str, default: str = "") -> str:
        for n in names:
            if merged.get(n):
                return merged[n]
        return default

    s = Settings()
    s.alpaca_api_key = get("ALPACA_API_KEY", "APCA_API_KEY_ID")
    s.alpaca_api_secret = get("ALPACA_API_SECRET", "APCA_API_SECRET_KEY")
    s.alpaca_paper = _bool("ALPACA_PAPER", get("ALPACA_PAPER", default="true"))
    s.alpaca_feed = get("ALPACA_FEED", default="iex").lower()
    if s.alpaca_feed not in ("iex", "sip", "crypto", "test"):
        raise ConfigError(f"ALPACA_FEED must be iex, sip, crypto or test, got {s.alpaca_feed!r}")
    s.alpaca_data_stream_url = get("ALPACA_DATA_STREAM_URL")
    s.alpaca_data_url = get("ALPACA_DATA_URL", default=s.alpaca_data_url)
    s.alpaca_api_base_url = get("ALPACA_API_BASE_URL", "APCA_API_BASE_URL")
    s.alpaca_trading_stream_url = get("ALPACA_TRADING_STREAM_URL")
    s.feed = get("SLOB_FEED", default="demo").lower()
    raw_symbols = get("SLOB_SYMBOLS")
    s.symbols = tuple(x.strip() for x in raw_symbols.split(",") if x.strip())
    s.db_path = get("SLOB_DB_PATH", default=s.db_path)
    s.log_level = get("SLOB_LOG_LEVEL", "LOG_LEVEL", default="INFO").upper()
    s.redis_url = validate_redis_url(get("REDIS_URL"))
    s.telegram_token = get("TELEGRAM_BOT_TOKEN")
    chat_ids = get("TELEGRAM_CHAT_IDS")
    try:
        s.telegram_chat_ids = tuple(int(x) for x in chat_ids.split(",") if x.strip())
    except ValueError as exc:
        raise ConfigError("TELEGRAM_CHAT_IDS must be comma-separated integers") from exc
    port = get("SLOB_METRICS_PORT", default="0")
    if not port.isdigit():
        raise ConfigError(f"SLOB_METRICS_PORT must be a port number, got {port!r}")
    s.metrics_port = int(port)
    s.metrics_host = get("SLOB_METRICS_HOST", default=s.metrics_host)
    s.theme = get("SLOB_THEME", default=s.theme)
    s.tz = get("SLOB_TZ", default=s.tz)
    try:
        s.extra_holidays = parse_extra_holidays(get("SLOB_EXTRA_HOLIDAYS"))
    except ValueError as exc:
        raise ConfigError(f"SLOB_EXTRA_HOLIDAYS: {exc}") from exc
    s.extra = {k: v for k, v in merged.items() if k.startswith("SLOB_")}
    return s
