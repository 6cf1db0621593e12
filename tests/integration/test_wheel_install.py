"""The built wheel, installed non-editable into a fresh venv, starts: every subcommand's help
and the console itself, from a folder outside the repository so the source tree cannot leak in.

Bug 6 of issue 13: `ui/app.tcss` and the themes were not package data, so `pip install .` gave a
console that died at start with Textual's StylesheetError. The venv is kept in `.venv/` between
runs and reused only while the wheel's RECORD (the hash of every file in it) is unchanged, so
only a change to the package pays for a new install.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".venv" / "wheel-smoke"
INSTALL_TIMEOUT_S = 1200

# Run by the fresh venv's python: build the console the way `slob-tui` does (flags -> config
# -> node -> app) and let Textual lay out one frame headlessly.
CONSOLE_SCRIPT = """
import asyncio, sys
import slob_tui
from slob_tui.cli import build_parser
from slob_tui.node import TradingNode, from_args
from slob_tui.ui.app import create_app

async def main(db: str) -> None:
    app = create_app(TradingNode(from_args(build_parser().parse_args(["--db", db]))))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        chart = app.screen.query_one("#chart")
        assert chart.region.width > 0, chart.region
        print("theme", app.theme)
        print("package", slob_tui.__file__)

asyncio.run(main(sys.argv[1]))
"""


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH, no virtualenv of the repository, no settings of the developer's shell."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SLOB_")}
    env.pop("REDIS_URL", None)
    return env


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _record_digest(wheel: Path) -> str:
    """The hash of the wheel's RECORD: the same files give the same digest, whatever the zip's
    timestamps."""
    with zipfile.ZipFile(wheel) as zf:
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        return hashlib.sha256(zf.read(record)).hexdigest()


def _venv_for(wheel: Path, work: Path) -> Path:
    """A venv with this wheel installed: the cached one if it holds the same wheel, else new."""
    digest = _record_digest(wheel)
    marker = CACHE / "wheel.sha256"
    if marker.exists() and marker.read_text() == digest:
        return CACHE
    shutil.rmtree(CACHE, ignore_errors=True)
    _run([sys.executable, "-m", "venv", str(CACHE)], cwd=work)
    _run([str(CACHE / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], cwd=work,
         timeout=INSTALL_TIMEOUT_S)  # fmt: skip
    marker.write_text(digest)  # last: a broken install is never reused
    return CACHE


def test_installed_wheel_runs_every_command_and_opens_the_console(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(REPO)],
         cwd=tmp_path)  # fmt: skip
    (wheel,) = dist.glob("slob_tui-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert "slob_tui/ui/app.tcss" in names
    assert {"slob_tui/themes/slob-dark.toml", "slob_tui/themes/slob-light.toml"} <= names

    venv = _venv_for(wheel, tmp_path)
    work = tmp_path / "elsewhere"  # outside the repository: nothing can be imported from it
    work.mkdir()
    assert REPO not in work.parents
    python, cli = venv / "bin" / "python", venv / "bin" / "slob-tui"

    listed = _run([str(python), "-c", "from slob_tui.cli import SUBCOMMANDS; print(*SUBCOMMANDS)"],
                  cwd=work).stdout.split()  # fmt: skip
    assert {"backtest", "replay", "validate", "flatten", "check"} <= set(listed)
    assert "usage: slob-tui" in _run([str(cli), "--help"], cwd=work).stdout
    for name in listed:
        assert f"usage: slob-tui {name}" in _run([str(cli), name, "--help"], cwd=work).stdout

    (work / "console.py").write_text(CONSOLE_SCRIPT)
    shown = _run([str(python), "console.py", str(work / "smoke.db")], cwd=work, timeout=120)
    lines = dict(line.split(" ", 1) for line in shown.stdout.splitlines() if " " in line)
    assert lines["theme"] == "slob-dark"  # the built-in themes were found in the wheel
    assert Path(lines["package"]).is_relative_to(venv)  # the installed copy, not the source tree
