"""`slob-tui web` in headless Chromium: the page loads, the attached console streams into it
with its ATTACHED banner, and a screenshot is taken (through the DevTools protocol)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.attach.helpers import engine_env, spawn_engine, stop_engine, wait_for_socket
from tests.attach.test_front_door import free_port
from tests.attach.test_processes import clients

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "slob-tui web exited"
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def _devtools_page(browser: subprocess.Popen[str]) -> str:
    assert browser.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = browser.stderr.readline()
        found = re.search(r"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)", line)
        if found:
            targets = json.loads(
                urllib.request.urlopen(f"http://127.0.0.1:{found.group(2)}/json/list").read()
            )
            return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
    raise AssertionError("chromium printed no DevTools address")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_the_browser_tab_shows_the_attached_console(tmp_path: Path) -> None:
    db = tmp_path / "web.db"
    engine = spawn_engine(tmp_path, db)
    web: subprocess.Popen[bytes] | None = None
    browser = None
    try:
        path = wait_for_socket(
            db, engine
        )  # `slob-tui web` refuses to serve with no engine to attach to
        port = free_port()
        web = subprocess.Popen(
            [sys.executable, "-m", "slob_tui", "web", "--db", str(db), "--port", str(port)],
            cwd=tmp_path, env=engine_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/"
        _wait_http(url, web)
        browser = subprocess.Popen(
            [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-port=0", "--remote-allow-origins=*", "--window-size=1400,900",
             f"--user-data-dir={tmp_path / 'chromium'}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        with connect(_devtools_page(browser), max_size=None) as cdp:
            calls = iter(range(1, 1_000_000))

            def call(method: str, **params: object) -> int:
                n = next(calls)
                cdp.send(json.dumps({"id": n, "method": method, "params": params}))
                return n

            call("Network.enable")
            call("Page.enable")
            call("Page.navigate", url=url)
            streamed = b""
            deadline = time.monotonic() + 60
            while b"ATTACHED" not in streamed:
                assert time.monotonic() < deadline, "the console never reached the page"
                msg = json.loads(cdp.recv(timeout=60))
                if msg.get("method") == "Network.webSocketFrameReceived":
                    frame = msg["params"]["response"]
                    if frame.get("opcode") == 2:
                        streamed += base64.b64decode(frame["payloadData"])
            time.sleep(1.0)  # let xterm.js paint what arrived
            shot = call("Page.captureScreenshot", format="png")
            classes = call("Runtime.evaluate", expression="document.body.className")
            results: dict[int, dict] = {}
            while shot not in results or classes not in results:
                msg = json.loads(cdp.recv(timeout=60))
                if "id" in msg:
                    results[msg["id"]] = msg.get("result", {})
        png = base64.b64decode(results[shot]["data"])
        (tmp_path / "web.png").write_bytes(png)
        assert png.startswith(b"\x89PNG") and len(png) > 20_000  # more than the loading splash
        assert "-first-byte" in results[classes]["result"]["value"]
        text = streamed.decode("utf-8", errors="replace")
        assert "read-only" in text and "DEMO" in text
        assert engine.poll() is None
        assert clients(path) == 1  # the browser's session
        web.kill()  # the web server dies hard: its session must not linger
        web.wait(timeout=10)
        deadline = time.monotonic() + 20
        while clients(path) != 0:
            assert time.monotonic() < deadline, "the web session outlived its server"
            time.sleep(0.2)
    finally:
        if browser is not None:
            browser.kill()
            browser.wait(timeout=10)
        if web is not None:
            web.terminate()
            web.wait(timeout=20)
        stop_engine(engine)
