"""`slob-tui flatten`: the kill switch from the command line.

Cancels every open order and flattens every position at the configured broker, and sets the
kill switch so that no new order goes out until `--reset`. With the paper broker, when an
engine is running on the same database the request is handed to it (it owns the paper book);
otherwise the stored paper book is flattened directly at its last prices.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, help="SQLite file (default: SLOB_DB_PATH)")
    parser.add_argument("--reason", default="command line", help="recorded with the kill switch")
    parser.add_argument(
        "--reset", action="store_true", help="clear the kill switch instead (allow new orders)"
    )
    parser.add_argument(
        "--wait", type=float, default=15.0, metavar="SECONDS",
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


async def _flatten(db: str, live: bool, settings, args) -> str:  # noqa: ANN001
    import asyncio

    from slob_tui.core.clock import WallClock
    from slob_tui.engine.bus import EventBus
    from slob_tui.execution.executor import OrderExecutor
    from slob_tui.execution.wiring import make_broker
    from slob_tui.storage.state import StateManager

    state = StateManager(db, redis_url=settings.redis_url, tz=settings.tz)
    await state.open()
    try:
        # flattening live money only reduces risk: --live is its own confirmation here
        venue = make_broker(settings, state, live=live, live_confirmed=live)
        broker = venue.broker
        running = await state.get_value("engine")
        if venue.simulator is not None:
            if args.reset:
                await state.clear_value("kill_switch")
                return "kill switch cleared: new orders allowed"
            if isinstance(running, dict) and _alive(int(running.get("pid", 0))):
                await state.set_value("kill_request", {"reason": args.reason})
                loop = asyncio.get_running_loop()
                deadline = loop.time() + args.wait
                while loop.time() < deadline:
                    if not await state.get_value("kill_request"):
                        return (f"kill switch executed by the running engine (pid "
                                f"{running['pid']}): orders cancelled, positions flattened")
                    await asyncio.sleep(0.2)
                return (f"kill switch requested from the running engine (pid {running['pid']});"
                        " it acts on its next candle")
            book = await state.get_value("paper_book")
            if book:
                venue.simulator.load(book)
        await broker.connect()
        executor = OrderExecutor(broker, state, EventBus(), clock=WallClock())
        try:
            await executor.load()
            if args.reset:
                await executor.reset_kill_switch()
                return "kill switch cleared: new orders allowed"
            done = await executor.kill_switch(args.reason)
        finally:
            await broker.close()
        return (f"kill switch on ({broker.name}): cancelled {len(done['cancelled'])} orders, "
                f"flattened {', '.join(done['flattened']) or 'no positions'}")
    finally:
        await state.close()


def run(args: argparse.Namespace) -> int:
    import asyncio

    from slob_tui.config import load_settings

    settings = load_settings()
    print(asyncio.run(_flatten(args.db or settings.db_path, bool(args.live), settings, args)))
    return 0
