"""`slob-tui flatten`: the kill switch from the command line.

When an engine runs on the database and its front door answers, the request goes there, to its
trading gate, and the engine cancels and flattens. Otherwise the command acts on the database
itself, holding the database lock so that an engine starting meanwhile waits for it: it sets
the kill switch (the trading gate's persisted state, which a running engine re-reads
before every order), cancels every open order and flattens every position at the configured
broker; no new order goes out until `--reset`, which a running engine honours the same way.
With the paper broker and an engine running on the same database, the engine (it owns the
paper book) cancels and flattens and says so; otherwise the stored paper book is flattened
directly at its last prices. A path where no database exists is refused.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slob_tui.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, help="SQLite file (default: SLOB_DB_PATH)")
    parser.add_argument("--reason", default="command line", help="recorded with the kill switch")
    parser.add_argument(
        "--reset", action="store_true", help="clear the kill switch instead (allow new orders)"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how long to wait for a running paper engine to act on the request",
    )
    parser.add_argument("--live", action="store_true", help="the live Alpaca account")


def _alive(pid: int) -> bool:
    import os

    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _through_front_door(db: str, args: argparse.Namespace) -> str | None:
    """Ask the engine running on `db` (its front door, `docs/ATTACH.md`) to kill or reset
    through its trading gate; None when no engine answers there."""
    from slob_tui.errors import UsageError
    from slob_tui.node.attach_protocol import socket_path_for
    from slob_tui.ui.remote import AttachRefused, AttachTarget, send_command

    target = AttachTarget(socket=socket_path_for(db))
    if target.socket is None or not target.socket.exists():
        return None
    try:
        if args.reset:
            await send_command(target, "reset_kill_switch")
            return "kill switch cleared by the running engine: new orders allowed"
        done = await send_command(target, "kill_switch", {"reason": args.reason})
    except ConnectionError:
        return None
    except (AttachRefused, PermissionError, RuntimeError) as exc:
        raise UsageError(f"the running engine refused the kill switch: {exc}") from None
    done = done if isinstance(done, dict) else {}
    return (
        f"kill switch executed by the running engine: cancelled "
        f"{len(done.get('cancelled') or [])} orders, flattened "
        f"{', '.join(done.get('flattened') or []) or 'no positions'}; new orders blocked"
    )


async def _flatten(db: str, live: bool, settings: Settings, args: argparse.Namespace) -> str:
    """Through the running engine's front door when it answers; otherwise on the database
    directly, holding its lock so that an engine starting meanwhile waits for us."""
    from slob_tui.storage.errors import DatabaseLockedError
    from slob_tui.storage.lock import DatabaseLock

    answered = await _through_front_door(db, args)
    if answered is not None:
        return answered
    lock = DatabaseLock(db, role="flatten")
    try:
        lock.acquire()
    except DatabaseLockedError:  # an engine without a front door: it reads the gate itself
        pass
    try:
        return await _on_the_database(db, live, settings, args)
    finally:
        lock.release()


async def _on_the_database(
    db: str, live: bool, settings: Settings, args: argparse.Namespace
) -> str:
    import asyncio

    from slob_tui.core.clock import WallClock
    from slob_tui.engine.bus import EventBus
    from slob_tui.execution.executor import OrderExecutor
    from slob_tui.execution.gate import TradingGate
    from slob_tui.execution.wiring import make_broker
    from slob_tui.storage.state import StateManager

    state = StateManager(db, redis_url=settings.redis_url, tz=settings.tz)
    await state.open()
    try:
        gate = TradingGate(state, WallClock().now_ns)
        await gate.load()
        if args.reset:  # a running engine reads the gate before its next order
            await gate.reset()
            return "kill switch cleared: new orders allowed"
        # flattening live money only reduces risk: --live is its own confirmation here
        venue = make_broker(settings, state, live=live, live_confirmed=live)
        broker = venue.broker
        running = await state.get_value("engine")
        pid = int(running.get("pid", 0)) if isinstance(running, dict) else 0
        alive = pid > 0 and _alive(pid)
        if venue.simulator is not None:
            if alive:  # it owns the paper book: close its gate now, it cancels and flattens
                kill = await gate.kill(args.reason)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + args.wait
                while loop.time() < deadline:
                    if await gate.acknowledged(kill.kill_id):
                        return (
                            f"kill switch executed by the running engine (pid "
                            f"{pid}): orders cancelled, positions flattened"
                        )
                    await asyncio.sleep(0.2)
                return (
                    f"kill switch on: the running engine (pid {pid}) places no "
                    "new order; it cancels and flattens on its next candle"
                )
            book = await state.get_value("paper_book")
            if book:
                venue.simulator.load(book)
        await broker.connect()
        executor = OrderExecutor(broker, state, EventBus(), clock=WallClock(), gate=gate)
        try:
            await executor.load()
            done = await executor.kill_switch(args.reason)
        finally:
            await broker.close()
        return (
            f"kill switch on ({broker.name}): cancelled {len(done['cancelled'])} orders, "
            f"flattened {', '.join(done['flattened']) or 'no positions'}"
        )
    finally:
        await state.close()


def run(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from slob_tui.config import load_settings
    from slob_tui.errors import UsageError

    settings = load_settings()
    db = Path(args.db or settings.db_path)
    if not db.is_file():  # a mistyped path must not become a new, empty account
        raise UsageError(f"state database {db}: no such file (give --db the engine's database)")
    print(asyncio.run(_flatten(str(db), bool(args.live), settings, args)))
    return 0
