"""Parameters: defaults from the spec, `--param` parsing with one-line errors, profiles."""

from __future__ import annotations

import pytest

from slob_tui.errors import UsageError
from slob_tui.strategy.params import SlobParams, parse_param_args, profile_for


def test_defaults_are_the_spec_values() -> None:
    p = SlobParams()
    assert (p.high_confirm, p.low_confirm, p.consol_min, p.consol_max) == (5, 3, 15, 120)
    assert (p.range_min_pct, p.range_max_pct, p.liq2_min_wait, p.liq2_timeout) == (
        0.10,
        0.50,
        5,
        20,
    )
    assert (p.nowick_max_wick, p.retrace_pct, p.entry_timeout, p.spike_ratio) == (
        0.20,
        0.40,
        20,
        2.0,
    )
    assert (p.sl_buffer, p.spike_buffer, p.tp_buffer, p.tp_mode, p.swing_k) == (
        1.0,
        2.0,
        1.0,
        "tp1",
        2,
    )
    assert (p.gap_pct, p.gap_check, p.min_quality, p.min_rr) == (0.04, True, 0.0, 0.0)
    assert (p.session_tz, p.ref_window, p.trade_window, p.close_time) == (
        "Europe/Stockholm",
        "09:00-15:30",
        "15:30-22:00",
        "22:00",
    )


def test_overrides_are_typed() -> None:
    p = SlobParams.from_overrides(
        parse_param_args(["high_confirm=4", "gap_check=off", "retrace_pct=0.5", "tp_mode=tp2"])
    )
    assert (p.high_confirm, p.gap_check, p.retrace_pct, p.tp_mode) == (4, False, 0.5, "tp2")


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["nope=1"], "unknown parameter 'nope'"),
        (["high_confirm=five"], "high_confirm: expected int"),
        (["retrace_pct=nan"], "retrace_pct: expected float"),
        (["gap_check=maybe"], "gap_check: expected bool"),
        (["tp_mode=tp9"], "tp_mode must be one of"),
        (["session_tz=Mars/Olympus"], "unknown time zone"),
        (["trade_window=22:00-15:30"], "end must be after start"),
        (["close_time=25:00"], "expected HH:MM"),
        (["consol_min=200"], "consol_min must be <= consol_max"),
        (["high_confirm"], "--param expects name=value"),
    ],
)
def test_bad_overrides_raise_one_line_usage_errors(items: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        SlobParams.from_overrides(parse_param_args(items))
    assert "\n" not in str(info.value)


def test_profiles_scale_buffers_by_price_except_point_futures() -> None:
    assert profile_for("NQ") == SlobParams()
    qqq = profile_for("QQQ", 400.0)
    assert qqq.sl_buffer == pytest.approx(0.016) and qqq.spike_buffer == pytest.approx(0.032)
    btc = profile_for("BTC/USD", 50000.0)
    assert btc.tp_buffer == pytest.approx(2.0) and btc.high_confirm == 5
    with pytest.raises(UsageError, match="typical price"):
        profile_for("SPY")
