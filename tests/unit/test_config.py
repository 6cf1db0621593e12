import pytest

from slob_tui.config import ConfigError, Settings, known_variables, load_settings


def keys(s: Settings) -> tuple[str, str]:
    return s.alpaca_api_key.get_secret_value(), s.alpaca_api_secret.get_secret_value()


def test_seed_names_and_alpacas_own_names(tmp_path):
    s = load_settings({"ALPACA_API_KEY": "k1", "ALPACA_API_SECRET": "s1"}, dotenv=None)
    assert keys(s) == ("k1", "s1")
    s = load_settings({"APCA_API_KEY_ID": "k2", "APCA_API_SECRET_KEY": "s2"}, dotenv=None)
    assert keys(s) == ("k2", "s2")
    assert s.has_alpaca_keys and s.alpaca_paper


def test_dotenv_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("ALPACA_API_KEY=fromfile\nSLOB_SYMBOLS=QQQ, SPY\nALPACA_FEED=sip\n")
    s = load_settings({"ALPACA_FEED": "iex"}, dotenv=env_file)
    assert s.alpaca_api_key.get_secret_value() == "fromfile"
    assert s.symbols == ("QQQ", "SPY")
    assert s.alpaca_feed == "iex"


def test_secrets_never_in_repr_or_redacted_view():
    secret = "SUPERSECRET-123"
    s = load_settings(
        {"ALPACA_API_KEY": "key-abc", "ALPACA_API_SECRET": secret, "TELEGRAM_BOT_TOKEN": "tok"},
        dotenv=None,
    )
    assert secret not in repr(s) and "key-abc" not in repr(s) and "tok" not in repr(s)
    red = s.redacted()
    assert red["alpaca_api_secret"] == "<set>" and red["telegram_token"] == "<set>"
    assert secret not in str(red)
    assert set(s.secrets()) == {"key-abc", secret, "tok"}


@pytest.mark.parametrize(
    "env,name",
    [
        ({"ALPACA_PAPER": "maybe"}, "ALPACA_PAPER"),
        ({"ALPACA_FEED": "nyse"}, "ALPACA_FEED"),
        ({"TELEGRAM_CHAT_IDS": "12,abc"}, "TELEGRAM_CHAT_IDS"),
        ({"SLOB_METRICS_PORT": "http"}, "SLOB_METRICS_PORT"),
    ],
)
def test_bad_settings_name_the_setting(env, name):
    with pytest.raises(ConfigError, match=name):
        load_settings(env, dotenv=None)


def test_every_group_reads_its_documented_variables_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SLOB_QTY=3\nSLOB_DQ_FROZEN_MINUTES=9\nSLOB_PAPER_BALANCE=5000\n")
    s = load_settings(
        {
            "SLOB_QTY": "2",
            "SLOB_SIZING": "Fixed_Qty",
            "SLOB_WHOLE_UNITS": "no",
            "SLOB_ALERT_EXITS": "off",
            "SLOB_ALERT_STORM_COUNT": "4",
            "SLOB_STORE_GIVE_UP_S": "12.5",
            "SLOB_STORE_MAX_QUEUE": "500",
            "SLOB_ATTACH": "0",
            "SLOB_ATTACH_PORT": "9109",
            "SLOB_ATTACH_CONTROL": "false",
            "SLOB_BROKER": "ALPACA",
            "SLOB_TELEGRAM_BASE_URL": "http://127.0.0.1:1",
        },
        dotenv=env_file,
    )
    assert (s.risk.qty, s.risk.sizing, s.risk.whole_units) == (2.0, "fixed_qty", False)
    assert s.quality.frozen_minutes == 9  # only in .env
    assert (s.alerts.exits, s.alerts.storm_count, s.alerts.order_filled) == (False, 4, True)
    assert (s.faults.store_give_up_s, s.faults.store_max_queue) == (12.5, 500)
    assert (s.attach.enabled, s.attach.port, s.attach.control) == (False, 9109, False)
    assert (s.broker.kind, s.broker.paper_balance) == ("alpaca", 5000.0)
    assert s.telegram_base_url == "http://127.0.0.1:1"


def test_settings_alone_never_read_the_environment(monkeypatch):
    monkeypatch.setenv("SLOB_QTY", "5")
    monkeypatch.setenv("ALPACA_API_KEY", "from-env")
    assert Settings().risk.qty == 1.0 and not Settings().has_alpaca_keys
    loaded = load_settings(dotenv=None)
    assert loaded.risk.qty == 5.0 and loaded.alpaca_api_key.get_secret_value() == "from-env"


def test_lower_case_names_are_not_variables():
    s = load_settings({"tz": "UTC", "port": "x", "qty": "9", "SLOB_TZ": "Europe/Oslo"}, dotenv=None)
    assert (s.tz, s.attach.port, s.risk.qty) == ("Europe/Oslo", 0, 1.0)


def test_the_attach_token_is_a_secret_too():
    token = "attach-token-0123456789"
    s = load_settings({"SLOB_ATTACH_PORT": "9109", "SLOB_ATTACH_TOKEN": token}, dotenv=None)
    assert token not in repr(s) and token not in str(s.redacted())
    assert s.redacted()["attach"]["token"] == "<set>" and token in s.secrets()


@pytest.mark.parametrize(
    "env,message",
    [
        ({"SLOB_MAX_QTY": "lots"}, "SLOB_MAX_QTY must be a number, got 'lots'"),
        ({"SLOB_DQ_VOLUME_WINDOW": "1.5"}, "SLOB_DQ_VOLUME_WINDOW must be a whole number"),
        ({"SLOB_ALERT_STORM_COUNT": "0"}, "SLOB_ALERT_STORM_COUNT must be positive, got '0'"),
        ({"SLOB_STOP_TIMEOUT_S": "nan"}, "SLOB_STOP_TIMEOUT_S must be a finite number"),
        ({"SLOB_ATTACH_PORT": "70000"}, "SLOB_ATTACH_PORT must be a port number, got '70000'"),
        ({"SLOB_BROKER": "ib"}, "SLOB_BROKER must be paper or alpaca, got 'ib'"),
        ({"SLOB_PAPER_BALANCE": "-5"}, "SLOB_PAPER_BALANCE must be positive"),
        ({"SLOB_SIZING": "fixed_risk"}, "SLOB_RISK_PER_TRADE must be > 0"),
    ],
)
def test_a_bad_value_in_any_group_is_one_line_naming_its_variable(env, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(env, dotenv=None)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_every_variable_of_the_template_and_the_alpaca_aliases_is_read():
    from pathlib import Path

    from dotenv import dotenv_values

    template = Path(__file__).resolve().parents[2] / ".env.template"
    aliases = {"APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "APCA_API_BASE_URL", "LOG_LEVEL"}
    assert set(dotenv_values(template)) | aliases <= known_variables()
    assert "SLOB_RELIABILITY_RUNS" not in known_variables()  # a test knob, not a setting


def test_help_and_the_engine_never_import_pydantic():
    """pydantic costs ~0.15 s to import: `--help` (every subcommand's too) stays without it, and
    so do the engine and execution (their settings groups are plain dataclasses in core)."""
    import subprocess
    import sys

    from slob_tui.cli import SUBCOMMANDS

    probe = (
        "import sys, contextlib, io\n"
        "from slob_tui.cli import main\n"
        f"for argv in [['--help']] + [[n, '--help'] for n in {sorted(SUBCOMMANDS)!r}]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        "import slob_tui.engine.engine, slob_tui.execution.executor, slob_tui.strategy.backtest\n"
        "print(sorted(m for m in sys.modules if m.startswith('pydantic')))\n"
        "import slob_tui.config\n"
        "print('pydantic_settings' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.split() == ["[]", "True"]


def test_an_unknown_field_is_refused_not_ignored():
    """The old `Settings(extra={...})` would otherwise run silently on defaults."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="extra"):
        Settings(extra={"SLOB_STOP_TIMEOUT_S": "3"})
    with pytest.raises(ValidationError, match="stop_timeout"):
        Settings(faults={"stop_timeout": 3})
