"""Secrets never reach a log: messages, args, httpx's request log and exception tracebacks."""

from __future__ import annotations

import logging

import httpx
import pytest

from slob_tui.ops.logs import REDACTED, Redactor, install_redaction, setup_logging
from tests.fakes.telegram_api import FakeBotAPI

TOKEN = "123456789:AAHfakeTokenForTests_abcdefghijklmnopq"
ALPACA_SECRET = "s3cr3t-alpaca-value-XYZ"


@pytest.fixture(autouse=True)
def redaction():
    install_redaction([TOKEN, ALPACA_SECRET])


def test_token_in_message_and_args_is_redacted(caplog):
    log = logging.getLogger("slob_tui.test")
    with caplog.at_level(logging.INFO):
        log.info("token is %s", TOKEN)
        log.warning(f"secret inline {ALPACA_SECRET} and again {ALPACA_SECRET}")
        log.error("dict %r", {"key": TOKEN})
    assert TOKEN not in caplog.text and ALPACA_SECRET not in caplog.text
    assert caplog.text.count(REDACTED) == 4
    assert caplog.records[0].getMessage() == f"token is {REDACTED}"


async def test_httpx_request_log_and_exception_are_redacted(caplog):
    api = FakeBotAPI("a-different-token")
    await api.start()
    url = f"{api.base_url}/bot{TOKEN}/getMe"
    try:
        with caplog.at_level(logging.INFO):
            async with httpx.AsyncClient() as client:
                response = await client.post(url)  # httpx logs the URL at INFO
                try:
                    response.raise_for_status()  # 401: the message quotes the URL
                except httpx.HTTPStatusError as exc:
                    logging.getLogger("slob_tui.test").exception("getMe failed: %s", exc)
    finally:
        await api.close()
    assert any(r.name == "httpx" for r in caplog.records), "httpx did not log the request"
    assert "401 Unauthorized" in caplog.text and "Traceback" in caplog.text
    assert TOKEN not in caplog.text
    assert f"/bot{REDACTED}/getMe" in caplog.text


def test_unknown_token_shapes_are_redacted_too():
    r = Redactor()
    text = r.redact("GET /bot987654321:ZZZabcdefghijklmnopqrstuvwxyz012345/getUpdates?token=abc")
    assert "ZZZabc" not in text and "token=abc" not in text
    assert r.redact("APCA-API-SECRET-KEY: hunter22hunter") == f"APCA-API-SECRET-KEY: {REDACTED}"


def test_ordinary_text_is_left_alone():
    r = Redactor(["", "ab"])  # empty and too-short secrets would mangle every line
    assert r.secret_count == 0
    assert r.redact("candle NQ 17500.25 at 15:31, ab ab") == "candle NQ 17500.25 at 15:31, ab ab"


def test_file_handler_gets_redacted_lines(tmp_path):
    root = logging.getLogger()
    level = root.level
    handlers = setup_logging("INFO", secrets=[TOKEN], log_file=tmp_path / "logs" / "slob.log")
    try:
        assert all(any(type(f).__name__ == "RedactionFilter" for f in h.filters) for h in handlers)
        try:
            raise RuntimeError(f"connect to https://api.telegram.org/bot{TOKEN}/x failed")
        except RuntimeError:
            logging.getLogger("slob_tui.test").exception("boom with %s", TOKEN)
        for h in handlers:
            h.flush()
        text = (tmp_path / "logs" / "slob.log").read_text()
    finally:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        root.setLevel(level)
    assert "boom with" in text and "RuntimeError" in text
    assert TOKEN not in text
    assert logging.getLogger("httpx").level >= logging.WARNING


def test_bad_level_and_bad_format_are_clear():
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        setup_logging("LOUD")
    record = logging.LogRecord("x", logging.INFO, "f", 1, "%d items " + TOKEN, ("n",), None)
    Redactor([TOKEN]).redact_record(record)
    assert TOKEN not in record.getMessage()
