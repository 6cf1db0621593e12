"""`slob-tui attach`: the console on an engine that runs elsewhere (headless, under systemd).

The same console, widgets and themes, bound to a `RemoteEngine` that reads the engine's front
door. ctrl+q detaches; the engine keeps running. Read-only unless `--control` (and the engine
permits it).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slob_tui.config import Settings
    from slob_tui.ui.app import SlobConsole
    from slob_tui.ui.remote import AttachTarget


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--db", default=None, metavar="PATH",
        help="attach to the engine using this SQLite file (default: SLOB_DB_PATH)",
    )  # fmt: skip
    where.add_argument("--socket", default=None, metavar="PATH", help="the engine's Unix socket")
    where.add_argument(
        "--url", default=None, metavar="URL",
        help="ws://127.0.0.1:PORT of an engine with SLOB_ATTACH_PORT (token: SLOB_ATTACH_TOKEN)",
    )  # fmt: skip
    parser.add_argument(
        "--control", action="store_true",
        help="ask for pause, kill switch and flatten (the engine must permit it)",
    )  # fmt: skip
    parser.add_argument("--symbol", default=None, help="the symbol to chart first")


def target_from_args(args: argparse.Namespace, settings: object | None = None) -> AttachTarget:
    """The `AttachTarget` the flags name; a bad URL or path is a `UsageError`."""
    from pathlib import Path

    from slob_tui.config import Settings, load_settings
    from slob_tui.errors import UsageError
    from slob_tui.node.attach_protocol import socket_path_for
    from slob_tui.ui.remote import AttachTarget

    conf = settings if isinstance(settings, Settings) else load_settings()
    if getattr(args, "url", None):
        url = str(args.url)
        if not url.startswith(("ws://", "wss://")):
            raise UsageError(f"--url must be a ws:// or wss:// address, got {url!r}")
        return AttachTarget(url=url, token=conf.attach.token.get_secret_value())
    if getattr(args, "socket", None):
        return AttachTarget(socket=Path(args.socket))
    db = getattr(args, "db", None) or conf.db_path
    if Path(db).is_dir():
        raise UsageError(f"--db {db}: is a directory, expected a SQLite file path")
    return AttachTarget(socket=socket_path_for(db))


def run(args: argparse.Namespace) -> int:
    import asyncio
    import os
    import sys

    from slob_tui.config import load_settings
    from slob_tui.errors import UsageError
    from slob_tui.ui.remote import AttachRefused, probe

    settings = load_settings()
    target = target_from_args(args, settings)
    try:
        info = asyncio.run(probe(target))
    except ConnectionError as exc:
        raise UsageError(
            f"{exc}: start the engine first (`slob-tui --no-ui --db PATH`) or name it with "
            "--db, --socket or --url"
        ) from None
    except AttachRefused as exc:
        raise UsageError(f"the engine at {target.describe()} refused: {exc}") from None
    served = bool(os.environ.get("TEXTUAL_DRIVER"))  # `slob-tui web`: textual-serve's driver
    if not served and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("attach needs a terminal (stdin and stdout are not one)")
    from slob_tui.ui.launch import choose_color_system

    forced = choose_color_system()
    if forced:
        os.environ["TEXTUAL_COLOR_SYSTEM"] = forced
    if served:
        _exit_with_parent()
    app = build_console(target, control=args.control, settings=settings, symbol=args.symbol,
                        first_symbol=info.symbols[0] if info.symbols else None)  # fmt: skip
    app.run()
    print(f"slob-tui: detached from {target.describe()}; the engine keeps running")
    return int(app.return_code or 0)


def _exit_with_parent() -> None:
    """Under `slob-tui web` our parent is textual-serve: when it dies our pipes are gone and
    Textual would keep drawing into them, so leave too (a client vanishing is safe for the
    engine, as a killed console is)."""
    import os
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def build_console(
    target: AttachTarget,
    *,
    control: bool,
    settings: Settings,
    symbol: str | None = None,
    first_symbol: str | None = None,
    **kwargs: Any,
) -> SlobConsole:
    """The console around a `RemoteEngine` (what `attach`, `web` and the tests run)."""
    import os

    from slob_tui.ui.app import create_app
    from slob_tui.ui.bindings import keymap_path, load_keymap
    from slob_tui.ui.remote import RemoteEngine

    engine = RemoteEngine(target, control=control)
    options: dict[str, Any] = {
        "theme": settings.theme or os.environ.get("TEXTUAL_THEME"),
        "tz": settings.tz,
        "symbol": symbol or first_symbol,
        "keymap": load_keymap(keymap_path(settings.keymap)),
        "install_signals": True,
        "watch_terminal": True,
        "stop_timeout": 5.0,
    }
    options.update(kwargs)
    return create_app(engine, **options)
