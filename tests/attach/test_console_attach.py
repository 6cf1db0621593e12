"""The attached console is the same console: same widgets, same picture at the same seq."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.geometry import Region

from slob_tui.commands.attach import build_console
from slob_tui.config import Settings
from slob_tui.node import NodeConfig, TradingNode
from slob_tui.node.attach_protocol import socket_path_for
from slob_tui.ui.app import create_app
from slob_tui.ui.remote import AttachTarget, RemoteEngine

NQ_FILE = "nq_1min_20231119_20231204_et.csv"
COMPARED = ("#chart", "#events", "#setups", "#orders")


def screen_of(app: Any) -> dict[str, list[list[tuple[str, str]]]]:
    """Each compared widget's lines: text and style of every segment."""
    out = {}
    for selector in COMPARED:
        widget = app.query_one(selector)
        region = Region(0, 0, widget.size.width, widget.size.height)
        out[selector] = [
            [(seg.text, str(seg.style)) for seg in strip] for strip in widget.render_lines(region)
        ]
    return out


async def settle_paused(node: TradingNode) -> int:
    node.pause_feed()
    seq = -1
    while seq != node.seq:  # ticks already buffered are still processed
        seq = node.seq
        await asyncio.sleep(0.3)
    return seq


async def test_attached_console_matches_the_hosted_one_at_the_same_seq(
    tmp_path: Path, shared_data: Path
) -> None:
    config = NodeConfig(feed="replay", replay_file=str(shared_data / NQ_FILE), symbols=("NQ",),
                        db=str(tmp_path / "nq.db"), speed=6000.0, settings=Settings())  # fmt: skip
    node = TradingNode(config)
    await node.start()
    try:
        while not node.snapshot().setups:  # a screen with a setup on it, not an empty one
            await asyncio.sleep(0.05)
        seq = await settle_paused(node)
        remote = RemoteEngine(AttachTarget(socket=socket_path_for(config.db)))
        attached = build_console(remote.target, control=False, settings=Settings(),
                                 install_signals=False, watch_terminal=False)  # fmt: skip
        attached.runner.engine = remote  # the engine the test inspects
        async with attached.run_test(size=(140, 44)) as pilot:
            while remote.raw_snapshot().seq != seq or attached.last_snapshot is None:
                await pilot.pause(0.05)
            attached.refresh_now()
            await pilot.pause(0.2)
            seen = screen_of(attached)
            banner = str(attached.query_one("#banner").render())
            await pilot.press("ctrl+q")  # detaches
        assert "ATTACHED" in banner and str(socket_path_for(config.db)) in banner
        assert not node.stopped and node.seq == seq  # detaching never touched the engine
        snap, mine = remote.raw_snapshot(), node.snapshot()
        for name in ("seq", "mode", "symbols", "paused", "candles", "forming", "last_price",
                     "setups", "orders", "positions", "events"):  # fmt: skip
            assert getattr(snap, name) == getattr(mine, name), name
        assert snap.candles["NQ"] and snap.events and snap.setups

        hosted = create_app(node, install_signals=False, watch_terminal=False)
        async with hosted.run_test(size=(140, 44)) as pilot:
            while hosted.last_snapshot is None or hosted.last_snapshot.seq != seq:
                await pilot.pause(0.05)
            hosted.refresh_now()
            await pilot.pause(0.2)
            assert screen_of(hosted) == seen
            await pilot.press("ctrl+q")
    finally:
        await node.stop()
