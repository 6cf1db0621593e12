"""The search space: bounds around every default, and the TOML file that narrows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from slob_tui.errors import UsageError
from slob_tui.research.space import (
    SEARCHED,
    Choice,
    FloatRange,
    IntRange,
    default_space,
    load_space_file,
)
from slob_tui.strategy.params import SlobParams, profile_for


def test_every_default_lies_inside_its_bounds_and_types_match() -> None:
    for base in (SlobParams(), profile_for("SPY", 450.0)):
        space = default_space(base)
        assert set(space.dimensions) == set(SEARCHED)
        for name, dim in space.dimensions.items():
            value = getattr(base, name)
            if isinstance(dim, Choice):
                assert value in dim.options
            else:
                assert dim.low <= value <= dim.high, name
                assert isinstance(dim, IntRange) == isinstance(value, int), name


def test_buffers_scale_with_the_instrument_profile() -> None:
    spy = default_space(profile_for("SPY", 450.0)).dimensions["sl_buffer"]
    nq = default_space(SlobParams()).dimensions["sl_buffer"]
    assert isinstance(spy, FloatRange) and spy.high < nq.high


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "space.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_toml_narrows_restricts_fixes_and_limits(tmp_path: Path) -> None:
    text = """
search = ["high_confirm", "tp_mode", "min_rr"]
[params]
high_confirm = [3, 6]
tp_mode = ["tp2"]
min_rr = 1.5
session_tz = "America/New_York"
"""
    space = load_space_file(default_space(SlobParams()), _file(tmp_path, text))
    assert space.dimensions == {"high_confirm": IntRange(3, 6), "tp_mode": Choice(("tp2",))}
    assert space.base.min_rr == 1.5 and space.base.session_tz == "America/New_York"
    assert space.fixed_overrides() == {"min_rr": 1.5, "session_tz": "America/New_York"}
    assert space.params_for({"high_confirm": 4, "tp_mode": "tp2"}).high_confirm == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[params]\nbogus = 1\n", "unknown parameter 'bogus'"),
        ("[params]\nhigh_confirm = [7, 3]\n", "empty range"),
        ("[params]\nhigh_confirm = [1.5, 3]\n", "is an integer"),
        ("[params]\ntp_mode = []\n", "empty list"),
        ("[params]\ntp_mode = ['tp9']\n", "no option 'tp9'"),
        ("[params]\nhigh_confirm = 'five'\n", "expects int"),
        ("[params]\nsession_tz = [1, 2]\n", "not searched"),
        ("search = ['session_tz']\n", "not searchable"),
        ("[other]\nx = 1\n", "unknown key 'other'"),
        ("[params\n", "not valid TOML"),
    ],
)
def test_bad_toml_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_space_file(default_space(SlobParams()), _file(tmp_path, text))
