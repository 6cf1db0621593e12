"""Prometheus for real: Debian's `prometheus` scrapes a headless engine on loopback and the
figures are read back through its query API; `promtool test rules` proves each rule in
deploy/alert.rules.yml fires and clears when it should."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.attach.helpers import (
    REPO,
    attach_sync,
    spawn_engine,
    stop_engine,
    wait_for_socket,
)
from tests.attach.test_front_door import free_port

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
RULES = REPO / "deploy" / "alert.rules.yml"

SUMMARY = {
    "SlobEngineDown": "slob-tui metrics endpoint unreachable for 2 minutes",
    "SlobNoProgress": "no candle processed for longer than expected while the market is open",
    "SlobSafeMode": "engine in safe mode: no new orders",
    "SlobTicksDropped": "the tick buffer overflowed and dropped ticks",
    "SlobReconnectStorm": "the feed reconnected 3 or more times in 10 minutes",
}
LABELS = {"SlobEngineDown": {"job": "slob-tui", "instance": "vps"}}
SERIES = """
      - series: 'up{job="slob-tui", instance="vps"}'
        values: '1 1 0 0 0 0 1 1'
      - series: 'slob_healthy{job="slob-tui"}'
        values: '1 1 0 0 0 1 1'
      - series: 'slob_safe_mode{job="slob-tui"}'
        values: '0 0 1 1 1 0 0'
      - series: 'slob_buffer_dropped_ticks_total{job="slob-tui"}'
        values: '0 0 0 5 5 5 5 5 5 5 5 5'
      - series: 'slob_feed_reconnects_total{job="slob-tui"}'
        values: '0 0 1 2 3 3 3 3 3 3 3 3 3 3 3 3 3 3'
"""
# (rule, minute, firing?): quiet before, pending not yet firing, firing, cleared after.
TIMELINE = [
    ("SlobEngineDown", 1, False), ("SlobEngineDown", 3, False), ("SlobEngineDown", 5, True),
    ("SlobEngineDown", 7, False),
    ("SlobNoProgress", 1, False), ("SlobNoProgress", 2, False), ("SlobNoProgress", 4, True),
    ("SlobNoProgress", 6, False),
    ("SlobSafeMode", 1, False), ("SlobSafeMode", 2, False), ("SlobSafeMode", 4, True),
    ("SlobSafeMode", 6, False),
    ("SlobTicksDropped", 2, False), ("SlobTicksDropped", 4, True), ("SlobTicksDropped", 11, False),
    ("SlobReconnectStorm", 1, False), ("SlobReconnectStorm", 4, True),
    ("SlobReconnectStorm", 16, False),
]  # fmt: skip


def rules_test(timeline: list[tuple[str, int, bool]]) -> str:
    cases = []
    for rule, minute, firing in timeline:
        alerts = "[]"
        if firing:
            labels = json.dumps(LABELS.get(rule, {"job": "slob-tui"}))
            alerts = f'[{{"exp_labels": {labels}, "exp_annotations": ' \
                     f'{{"summary": {json.dumps(SUMMARY[rule])}}}}}]'  # fmt: skip
        cases.append(f"      - {{eval_time: {minute}m, alertname: {rule}, exp_alerts: {alerts}}}")
    return (
        f"rule_files:\n  - {RULES}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n"
        f"    input_series:{SERIES}    alert_rule_test:\n" + "\n".join(cases) + "\n"
    )


def promtool(tmp_path: Path, timeline: list[tuple[str, int, bool]]) -> subprocess.CompletedProcess:
    test_file = tmp_path / "rules_test.yml"
    test_file.write_text(rules_test(timeline))
    return subprocess.run([str(PROMTOOL), "test", "rules", str(test_file)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (.ci/run installs it)")
def test_every_alert_rule_fires_and_clears(tmp_path: Path) -> None:
    assert {rule for rule, _, _ in TIMELINE} == set(SUMMARY)  # every rule of the file
    assert set(SUMMARY) == {
        line.split(":", 1)[1].strip()
        for line in RULES.read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    ok = promtool(tmp_path, TIMELINE)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = [(r, m, not f) if (r, m) == ("SlobEngineDown", 3) else (r, m, f)
             for r, m, f in TIMELINE]  # fmt: skip
    assert promtool(tmp_path, wrong).returncode != 0  # a pending alert is not a firing one


def query(port: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    body = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert body["status"] == "success"
    return body["data"]["result"]


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (.ci/run installs it)")
def test_prometheus_scrapes_the_engine_and_answers_queries(tmp_path: Path) -> None:
    metrics, prom_port = free_port(), free_port()
    db = tmp_path / "prom.db"
    engine = spawn_engine(tmp_path, db, "--no-ui", "--speed", "600", "--metrics-port",
                          str(metrics))  # fmt: skip
    prometheus = None
    try:
        path = wait_for_socket(db, engine)
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: ['{RULES}']\n"
            "scrape_configs:\n  - job_name: slob-tui\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{metrics}'],"
            " labels: {instance: vps}}]\n"
        )
        prometheus = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
        )  # fmt: skip
        with attach_sync(path, client="watcher", events=False)[0]:
            deadline = time.monotonic() + 60
            while True:
                assert prometheus.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
                try:
                    up = query(prom_port, 'up{job="slob-tui"}')
                    attached = query(prom_port, "slob_attached_clients")
                    candles = query(prom_port, "sum(slob_candles_total)")
                except OSError:
                    up = attached = candles = []
                if up and attached and candles and float(attached[0]["value"][1]) >= 1:
                    break
                assert time.monotonic() < deadline, "prometheus never scraped the engine"
                time.sleep(0.5)
        assert float(up[0]["value"][1]) == 1 and up[0]["metric"]["instance"] == "vps"
        assert float(candles[0]["value"][1]) > 0
        rules = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{prom_port}/api/v1/rules", timeout=10).read())  # fmt: skip
        loaded = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
        assert loaded == set(SUMMARY)
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=30)
        stop_engine(engine)
