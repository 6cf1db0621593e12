"""The `--speed` flag's value, read here rather than by argparse, so that a bad value is one
`slob-tui: error:` line with exit status 2 like every other bad input. Its own module: a replay
reads it before anything heavy is imported (see `commands/replay.py`)."""

from __future__ import annotations

from slob_tui.errors import UsageError


def parse_speed(text: str | float, allow_max: bool = False) -> float | None:
    """A positive finite factor; 'max' (as fast as possible) -> None when `allow_max`."""
    expected = "a positive number or max" if allow_max else "a positive number"
    if isinstance(text, str) and text.strip().lower() == "max":
        if allow_max:
            return None
        raise UsageError(f"--speed must be {expected} here (max is for file replays)")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UsageError(f"--speed must be {expected}, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise UsageError(f"--speed must be {expected}, got {text!r}")
    return value
