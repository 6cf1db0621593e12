"""Pause and the kill switch from an attached console: refused read-only, done with control,
always by the node's own trading gate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from slob_tui.commands.attach import build_console
from slob_tui.config import Settings, load_settings
from slob_tui.node import NodeConfig, TradingNode
from slob_tui.node.attach_protocol import socket_path_for
from slob_tui.ui.remote import AttachRefused, AttachTarget, RemoteEngine, send_command
from tests.polling import until


async def running_node(tmp_path: Path, settings: Settings | None = None) -> TradingNode:
    node = TradingNode(NodeConfig(db=str(tmp_path / "c.db"), speed=600.0,
                                  settings=settings or Settings()))  # fmt: skip
    await node.start()
    return node


def console(node: TradingNode, control: bool):  # noqa: ANN201
    remote = RemoteEngine(AttachTarget(socket=socket_path_for(node.config.db)), control=control)
    app = build_console(remote.target, control=control, settings=Settings(),
                        install_signals=False, watch_terminal=False)  # fmt: skip
    app.runner.engine = remote
    return app, remote


async def test_read_only_console_refuses_pause_and_kill(tmp_path: Path) -> None:
    node = await running_node(tmp_path)
    try:
        app, remote = console(node, control=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: remote.snapshots > 0)
            await pilot.press("p")
            await until(lambda: "read-only: attach with" in str(app.query_one("#banner").render()))
            assert not node.paused
            await pilot.press("K")
            await pilot.press("y")
            await until(lambda: bool(app.kill_results))
            assert not app.kill_results[-1].ok and "read-only" in app.kill_results[-1].summary
            assert not node.executor.killed
            await pilot.press("ctrl+q")
        assert not node.stopped
    finally:
        await node.stop()


async def test_control_console_pauses_and_kills_through_the_nodes_gate(tmp_path: Path) -> None:
    node = await running_node(tmp_path)
    try:
        app, remote = console(node, control=True)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: remote.snapshots > 0 and remote.control)
            await until(lambda: "(control)" in str(app.query_one("#banner").render()))
            await pilot.press("p")
            await until(lambda: node.paused)
            await until(lambda: remote.paused)
            await pilot.press("p")
            await until(lambda: not node.paused)
            await pilot.press("K")
            await pilot.press("y")
            await until(lambda: bool(app.kill_results))
            assert app.kill_results[-1].ok, app.kill_results[-1].summary
            assert node.executor.killed == "attached console"
            await until(lambda: remote.kill_reason == "attached console")
            await pilot.press("ctrl+q")
        assert not node.stopped
        target = AttachTarget(socket=socket_path_for(node.config.db))
        assert (
            await send_command(target, "reset_kill_switch") is True
        )  # what `flatten --reset` sends
        assert not node.executor.killed
        value = await send_command(target, "kill_switch", {"reason": "command line"})
        assert value["active"] is True and node.executor.killed == "command line"
    finally:
        await node.stop()


async def test_an_engine_that_permits_no_control_keeps_everyone_read_only(tmp_path: Path) -> None:
    settings = load_settings(env={"SLOB_ATTACH_CONTROL": "0"}, dotenv=None)
    node = await running_node(tmp_path, settings)
    try:
        target = AttachTarget(socket=socket_path_for(node.config.db))
        with pytest.raises(PermissionError, match="SLOB_ATTACH_CONTROL"):
            await send_command(target, "pause")
        assert not node.paused
    finally:
        await node.stop()


async def test_tcp_without_a_long_token_is_refused_at_start(tmp_path: Path) -> None:
    from slob_tui.errors import UsageError

    settings = load_settings(env={"SLOB_ATTACH_PORT": "9999", "SLOB_ATTACH_TOKEN": "short"},
                             dotenv=None)  # fmt: skip
    with pytest.raises(UsageError, match="SLOB_ATTACH_TOKEN"):
        TradingNode(NodeConfig(db=str(tmp_path / "t.db"), settings=settings))


async def test_a_bad_token_over_tcp_is_a_refusal_not_a_retry(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "a-long-enough-token-0123456789"
    settings = load_settings(env={"SLOB_ATTACH_PORT": str(port), "SLOB_ATTACH_TOKEN": token},
                             dotenv=None)  # fmt: skip
    node = await running_node(tmp_path, settings)
    try:
        url = f"ws://127.0.0.1:{node.front_door.tcp_port}"
        with pytest.raises(AttachRefused, match="bad token"):
            await send_command(AttachTarget(url=url, token="x" * 30), "health", control=False)
        remote = RemoteEngine(AttachTarget(url=url, token="y" * 30))
        with pytest.raises(AttachRefused):
            await asyncio.wait_for(remote.run(), timeout=10)  # no endless retrying
        health = await send_command(AttachTarget(url=url, token=token), "health", control=False)
        assert health["attach"]["refused"] == 2
    finally:
        await node.stop()
