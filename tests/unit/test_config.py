import pytest

from slob_tui.config import ConfigError, Settings, load_settings


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
