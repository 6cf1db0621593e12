"""`slob-tui` without `--no-ui`: build the engine, open the console, exit when it has stopped.

Colour over SSH: SSH does not forward COLORTERM, so Textual would fall back to 256 colours and
the theme's candle colours would be approximated. When neither COLORTERM nor
TEXTUAL_COLOR_SYSTEM is set we set TEXTUAL_COLOR_SYSTEM=truecolor (every terminal emulator in
common use renders it); set TEXTUAL_COLOR_SYSTEM=256 to opt back into the 256-colour palette.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from slob_tui.errors import SlobError, UsageError

if TYPE_CHECKING:
    from slob_tui.node import NodeConfig


def choose_color_system(env: Mapping[str, str] | None = None) -> str | None:
    """The colour system to force, or None to leave Textual's detection alone."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if environ.get("TEXTUAL_COLOR_SYSTEM") or environ.get("COLORTERM"):
        return None
    if environ.get("TERM", "") in ("dumb", "linux"):
        return None
    return "truecolor"


def run_console(config: NodeConfig) -> int:
    """Open the console over the node built from `config` (demo, replay or alpaca feed)."""
    forced = choose_color_system()
    if forced:
        os.environ["TEXTUAL_COLOR_SYSTEM"] = forced
    from slob_tui.node import TradingNode
    from slob_tui.ui.app import create_app
    from slob_tui.ui.bindings import keymap_path, load_keymap

    keymap = load_keymap(keymap_path(config.settings.keymap))
    theme = config.settings.theme or os.environ.get("TEXTUAL_THEME")
    node = TradingNode(config)  # bad flags and files are reported first
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the console needs a terminal (stdin and stdout are not one): add --no-ui to run "
            "headless"
        )
    if config.live and node.mode != "LIVE":
        raise UsageError("--live needs a live broker; this engine is not trading live")
    app = create_app(
        node,
        theme=theme,
        tz=config.tz,
        symbol=config.symbols[0] if config.symbols else None,
        live_confirm=config.live,
        keymap=keymap,
        install_signals=True,
        watch_terminal=True,
        duration=config.duration,
    )
    app.run()
    if app.return_code == 2 and isinstance(app.runner.error, SlobError):
        raise app.runner.error  # one line and exit status 2, as headless
    if app.stopped_reason:
        print(f"slob-tui: engine stopped ({app.stopped_reason})")
    return int(app.return_code or 0)
