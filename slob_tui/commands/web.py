"""`slob-tui web`: the attached console in a browser tab, served by textual-serve.

Each browser session runs `slob-tui attach` (read-only) in a pseudo-terminal that textual-serve
streams to the page. Bound to 127.0.0.1 only: reach it from elsewhere through an SSH tunnel.
Read-only always: a browser tab is not where a kill switch should be one click away from a
stranger on a shared machine.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", default=None, metavar="PATH",
        help="attach to the engine using this SQLite file (default: SLOB_DB_PATH)",
    )  # fmt: skip
    parser.add_argument("--socket", default=None, metavar="PATH", help="the engine's Unix socket")
    parser.add_argument("--port", type=int, default=8090, help="port on 127.0.0.1 (default 8090)")


def attach_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve starts per browser session (`exec`, so the session's
    parent is the server itself and it can leave when the server dies)."""
    import shlex
    import sys

    parts = [sys.executable, "-m", "slob_tui", "attach"]
    if getattr(args, "socket", None):
        parts += ["--socket", str(args.socket)]
    elif getattr(args, "db", None):
        parts += ["--db", str(args.db)]
    return "exec " + shlex.join(parts)  # textual-serve runs it through a shell: no shell left


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from slob_tui.errors import UsageError
    from slob_tui.ui.remote import AttachRefused, probe

    from .attach import target_from_args

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, got {args.port}")
    target = target_from_args(args)
    try:
        asyncio.run(probe(target))
    except ConnectionError as exc:
        raise UsageError(f"{exc}: start the engine first (`slob-tui --no-ui --db PATH`)") from None
    except AttachRefused as exc:
        raise UsageError(f"the engine at {target.describe()} refused: {exc}") from None
    from textual_serve.server import Server

    logging.basicConfig(level=logging.INFO)
    print(f"slob-tui: serving the attached console (read-only) on http://127.0.0.1:{args.port}")
    Server(attach_command(args), host="127.0.0.1", port=args.port, title="slob-tui").serve()
    return 0
