"""Settings from the environment or `.env`: one typed, frozen pydantic-settings model.

Every variable keeps its documented name (`docs/deploy.md`, `.env.template`); groups of them
are typed sub-objects (`risk`, `quality`, `alerts`, `faults`, `attach`, `broker`), so no part
of the program parses a string again. Secrets are `SecretStr`: never in repr, logs, the store
or `redacted()`. A bad value is a `ConfigError` naming the variable, on one line.

Importing this module loads pydantic and pydantic-settings (~0.15 s): only commands that run
something import it, never `slob-tui --help` (tests/unit/test_config.py checks).

pydantic-settings' own environment source reads nested groups only as SLOB_RISK__QTY-style
names; the documented names are flat (SLOB_QTY), so `load_settings()` gathers `.env` (with
pydantic-settings' dotenv reader) and the environment, and the model hands each group its own.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from slob_tui.core.calendar import parse_extra_holidays
from slob_tui.core.quality_policy import QualityPolicy
from slob_tui.core.risk_limits import RiskLimits
from slob_tui.errors import ConfigError

__all__ = [
    "AlertConfig",
    "AttachSettings",
    "BrokerSettings",
    "ConfigError",
    "FaultLimits",
    "Settings",
    "known_variables",
    "load_settings",
    "validate_redis_url",
]

REDIS_SCHEMES = ("redis", "rediss", "unix")
STOP_TIMEOUT_S = 30.0
"""The engine's stop budget; deploy/slob-tui.service's TimeoutStopSec is this plus 10 s."""


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


def _var(*names: str) -> Any:
    """The variable(s) a field is read from, first name first (the others are aliases)."""
    return AliasChoices(*names) if len(names) > 1 else names[0]


_GROUP = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Port = Annotated[int, Field(ge=0, le=65535)]


class FaultLimits(BaseModel):
    """How long a node keeps going on a store that refuses writes, and how long it may take
    to stop. Past either store limit it stops with exit status 75 for the supervisor."""

    model_config = _GROUP

    store_give_up_s: Positive = Field(300.0, validation_alias="SLOB_STORE_GIVE_UP_S")
    """A store unwritable this long stops the engine."""
    store_max_queue: Annotated[int, Field(gt=0)] = Field(
        100_000, validation_alias="SLOB_STORE_MAX_QUEUE"
    )
    """Candles queued for an unwritable store before the engine stops."""
    stop_timeout_s: Positive = Field(STOP_TIMEOUT_S, validation_alias="SLOB_STOP_TIMEOUT_S")
    """Every task cancelled, every thread joined, the process gone."""


class AlertConfig(BaseModel):
    """Which alerts go out: each flag is `SLOB_ALERT_<NAME>=true|false`."""

    model_config = _GROUP

    setup_triggered: bool = Field(True, validation_alias="SLOB_ALERT_SETUP_TRIGGERED")
    order_filled: bool = Field(True, validation_alias="SLOB_ALERT_ORDER_FILLED")
    exits: bool = Field(True, validation_alias="SLOB_ALERT_EXITS")  # stop or target hit
    safe_mode: bool = Field(True, validation_alias="SLOB_ALERT_SAFE_MODE")
    reconnect_storm: bool = Field(True, validation_alias="SLOB_ALERT_RECONNECT_STORM")
    daily_summary: bool = Field(True, validation_alias="SLOB_ALERT_DAILY_SUMMARY")
    store_fault: bool = Field(True, validation_alias="SLOB_ALERT_STORE_FAULT")
    """The database refuses writes, is writable again, or gave up."""
    storm_count: Annotated[int, Field(gt=0)] = Field(3, validation_alias="SLOB_ALERT_STORM_COUNT")
    """This many disconnects ..."""
    storm_window_s: Positive = Field(300.0, validation_alias="SLOB_ALERT_STORM_WINDOW_S")
    """... within this much engine time is a storm."""


class AttachSettings(BaseModel):
    """The engine's front door (`docs/ATTACH.md`): its socket, its TCP port and who may steer."""

    model_config = _GROUP

    enabled: bool = Field(True, validation_alias="SLOB_ATTACH")
    """False: no Unix socket and no TCP listener."""
    port: Port = Field(0, validation_alias="SLOB_ATTACH_PORT")
    """0: no TCP listener; else 127.0.0.1 only, and a token is required."""
    token: SecretStr = Field(SecretStr(""), validation_alias="SLOB_ATTACH_TOKEN", repr=False)
    control: bool = Field(True, validation_alias="SLOB_ATTACH_CONTROL")
    """False makes every client read-only whatever it asks."""


class BrokerSettings(BaseModel):
    """Where orders go: the paper venue (and its starting cash) or Alpaca."""

    model_config = _GROUP

    kind: Literal["paper", "alpaca"] | None = Field(None, validation_alias="SLOB_BROKER")
    """None: paper, or Alpaca with `--live`."""
    paper_balance: Positive = Field(100_000.0, validation_alias="SLOB_PAPER_BALANCE")


_PREFIXED: dict[str, tuple[str, Any]] = {
    "risk": ("SLOB_", RiskLimits),
    "quality": ("SLOB_DQ_", QualityPolicy),
}
"""The groups that are plain dataclasses in core, read as `<prefix><FIELD>` (SLOB_MAX_QTY)."""
_GROUPS: dict[str, type[BaseModel]] = {
    "alerts": AlertConfig,
    "faults": FaultLimits,
    "attach": AttachSettings,
    "broker": BrokerSettings,
}
_LOWER = frozenset({"ALPACA_FEED", "SLOB_FEED", "SLOB_BROKER", "SLOB_SIZING"})
_UPPER = frozenset({"SLOB_LOG_LEVEL", "LOG_LEVEL"})


class Settings(BaseSettings):
    """Everything the program reads from `.env` and the environment, typed.

    `Settings(...)` alone is exactly what it is given plus defaults (tests, benchmarks, tools);
    `load_settings()` is the one reader of `.env` and the environment.
    """

    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True
    )

    alpaca_api_key: SecretStr = Field(
        SecretStr(""), validation_alias=_var("ALPACA_API_KEY", "APCA_API_KEY_ID"), repr=False
    )
    alpaca_api_secret: SecretStr = Field(
        SecretStr(""), validation_alias=_var("ALPACA_API_SECRET", "APCA_API_SECRET_KEY"), repr=False
    )
    alpaca_paper: bool = Field(True, validation_alias="ALPACA_PAPER")
    alpaca_feed: Literal["iex", "sip", "crypto", "test"] = Field(
        "iex", validation_alias="ALPACA_FEED"
    )
    alpaca_data_stream_url: str = Field("", validation_alias="ALPACA_DATA_STREAM_URL")
    alpaca_data_url: str = Field("https://data.alpaca.markets", validation_alias="ALPACA_DATA_URL")
    alpaca_api_base_url: str = Field(
        "", validation_alias=_var("ALPACA_API_BASE_URL", "APCA_API_BASE_URL")
    )
    alpaca_trading_stream_url: str = Field("", validation_alias="ALPACA_TRADING_STREAM_URL")
    feed: str = Field("demo", validation_alias="SLOB_FEED")
    symbols: tuple[str, ...] = Field((), validation_alias="SLOB_SYMBOLS")
    db_path: str = Field("data/slob_tui.db", validation_alias="SLOB_DB_PATH")
    log_level: str = Field("INFO", validation_alias=_var("SLOB_LOG_LEVEL", "LOG_LEVEL"))
    redis_url: str = Field("", validation_alias="REDIS_URL")
    telegram_token: SecretStr = Field(
        SecretStr(""), validation_alias="TELEGRAM_BOT_TOKEN", repr=False
    )
    telegram_chat_ids: tuple[int, ...] = Field((), validation_alias="TELEGRAM_CHAT_IDS")
    telegram_base_url: str | None = Field(None, validation_alias="SLOB_TELEGRAM_BASE_URL")
    """The Bot API's address; None: Telegram's own (tests point it at a local fake)."""
    metrics_port: Port = Field(0, validation_alias="SLOB_METRICS_PORT")
    metrics_host: str = Field("127.0.0.1", validation_alias="SLOB_METRICS_HOST")
    theme: str = Field("slob-dark", validation_alias="SLOB_THEME")
    keymap: str = Field("", validation_alias="SLOB_KEYMAP")
    """A keymap file; '' = ~/.config/slob-tui/keymap.toml when it exists (ui/bindings.py)."""
    tz: str = Field("America/New_York", validation_alias="SLOB_TZ")
    extra_holidays: frozenset[date] = Field(frozenset(), validation_alias="SLOB_EXTRA_HOLIDAYS")
    """Closures no rule knows (core/calendar.py)."""
    risk: RiskLimits = RiskLimits()
    quality: QualityPolicy = QualityPolicy()
    alerts: AlertConfig = AlertConfig()
    faults: FaultLimits = FaultLimits()
    attach: AttachSettings = AttachSettings()
    broker: BrokerSettings = BrokerSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The groups are read from flat variable names (SLOB_QTY, not SLOB_RISK__QTY), which
        # the stock environment source cannot do: load_settings() gathers the variables.
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _gather_groups(cls, data: Any) -> Any:
        """Hand each group the flat variables it reads, unless it was given whole."""
        if not isinstance(data, dict):
            return data
        groups = _group_variables()
        out = {k: v for k, v in data.items() if not any(k in names for names in groups.values())}
        for group, names in groups.items():
            given = {names[k]: v for k, v in data.items() if k in names}
            if group not in out and given:
                out[group] = given
        return out

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, raw: Any) -> Any:
        return (
            tuple(x.strip() for x in raw.split(",") if x.strip()) if isinstance(raw, str) else raw
        )

    @field_validator("telegram_chat_ids", mode="before")
    @classmethod
    def _split_chat_ids(cls, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        try:
            return tuple(int(x) for x in raw.split(",") if x.strip())
        except ValueError:
            raise ConfigError("TELEGRAM_CHAT_IDS must be comma-separated integers") from None

    @field_validator("extra_holidays", mode="before")
    @classmethod
    def _parse_holidays(cls, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        try:
            return parse_extra_holidays(raw)
        except ValueError as exc:
            raise ConfigError(f"SLOB_EXTRA_HOLIDAYS: {exc}") from exc

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, url: str) -> str:
        return validate_redis_url(url)

    @property
    def has_alpaca_keys(self) -> bool:
        return bool(
            self.alpaca_api_key.get_secret_value() and self.alpaca_api_secret.get_secret_value()
        )

    def redacted(self) -> dict[str, Any]:
        """Settings safe to print or store: secrets shown only as set/unset."""
        return {name: _shown(getattr(self, name)) for name in type(self).model_fields}

    def secrets(self) -> list[str]:
        """The secret values in force, for redaction filters."""
        found = (
            self.alpaca_api_key,
            self.alpaca_api_secret,
            self.telegram_token,
            self.attach.token,
        )
        return [v for v in (s.get_secret_value() for s in found) if v]


@cache
def _group_variables() -> dict[str, dict[str, str]]:
    """Each group's variables: variable name -> the group's field name."""
    out: dict[str, dict[str, str]] = {}
    for group, (prefix, kind) in _PREFIXED.items():
        out[group] = {f"{prefix}{f.name.upper()}": f.name for f in dataclasses.fields(kind)}
    for group, model in _GROUPS.items():
        out[group] = {str(info.validation_alias): name for name, info in model.model_fields.items()}
    return out


@cache
def known_variables() -> frozenset[str]:
    """Every variable name (and alias) the settings read."""
    names = {v for group in _group_variables().values() for v in group}
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        names.update(map(str, alias.choices) if isinstance(alias, AliasChoices) else [])
        names.update([alias] if isinstance(alias, str) else [])
    return frozenset(names)


def _shown(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "<set>" if value.get_secret_value() else "<unset>"
    if isinstance(value, BaseModel):
        return {name: _shown(getattr(value, name)) for name in type(value).model_fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def load_settings(
    env: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
) -> Settings:
    """Settings from `.env` overlaid by the process environment (or `env`): the environment
    wins, an empty variable counts as unset, and only the documented names are read (so a
    stray lower-case `port` or `tz` in a shell never reaches a field by its Python name)."""
    merged: dict[str, str] = {}
    if dotenv is not None:
        found = DotEnvSettingsSource(Settings, env_file=dotenv, case_sensitive=True).env_vars
        merged.update({k: v for k, v in found.items() if v is not None})
    merged.update(os.environ if env is None else env)
    known = known_variables()
    variables = {k: _normal(k, v) for k, v in merged.items() if k in known and v and v.strip()}
    try:
        return Settings.model_validate(variables)
    except ValidationError as exc:
        raise _one_line(exc) from None


def _normal(name: str, value: str) -> str:
    value = value.strip()
    if name in _LOWER:
        return value.lower()
    return value.upper() if name in _UPPER else value


_NOT_SHOWN = frozenset(
    {"ALPACA_API_KEY", "APCA_API_KEY_ID", "ALPACA_API_SECRET", "APCA_API_SECRET_KEY",
     "TELEGRAM_BOT_TOKEN", "SLOB_ATTACH_TOKEN", "REDIS_URL"}
)  # fmt: skip


def _variable(loc: tuple[int | str, ...]) -> str:
    """The variable a pydantic error location stands for."""
    head, last = str(loc[0]), str(loc[-1])
    if last.isupper():
        return last
    group = _group_variables().get(head, {})
    by_field = {field: variable for variable, field in group.items()}
    if last in by_field:
        return by_field[last]
    alias = Settings.model_fields[head].validation_alias if head in Settings.model_fields else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return alias if isinstance(alias, str) else head


_WHAT = {
    "bool_parsing": "must be true or false",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
}


def _one_line(exc: ValidationError) -> ConfigError:
    """The first problem as `NAME must be ..., got 'VALUE'` (secrets never repeated)."""
    err = exc.errors()[0]
    name = _variable(err["loc"])
    kind, ctx = err["type"], err.get("ctx", {})
    if name.endswith("_PORT") and kind in ("int_parsing", "greater_than_equal", "less_than_equal"):
        what = "must be a port number"
    elif kind == "greater_than" and ctx.get("gt") == 0:
        what = "must be positive"
    elif kind == "literal_error":
        what = "must be " + str(ctx.get("expected", "")).replace("'", "")
    else:
        what = _WHAT.get(kind) or "must be " + err["msg"].removeprefix("Input should be ")
    raw = err.get("input")
    shown = f", got {raw!r}" if isinstance(raw, str) and name not in _NOT_SHOWN else ""
    return ConfigError(f"{name} {what}{shown}")
