"""The same search in this process, on two local processes and on a real two-worker Dask
cluster on loopback gives byte-identical JSON; an unreachable scheduler is one clear line."""

from __future__ import annotations

import pickle
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from slob_tui.cli import main
from slob_tui.core.models import Candle
from slob_tui.research.evaluate import CandleBlock
from tests.research.markets import NQ_FILE


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A scheduler and two worker processes on 127.0.0.1 (no dashboard)."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as lc:  # fmt: skip
        yield lc.scheduler_address


def _run(tmp_path: Path, data: Path, name: str, *extra: str) -> bytes:
    out = tmp_path / f"{name}.json"
    args = ["optimize", str(data / NQ_FILE), "--symbol", "NQ", "--tz", "America/New_York",
            "--trials", "8", "--seed", "11", "--walk-forward", "2", "--min-trades", "1",
            "--no-plot", "--storage", f"sqlite:///{tmp_path / name}.db", "--json", str(out),
            *extra]  # fmt: skip
    assert main(args) == 0
    return out.read_bytes()


def test_local_jobs_and_dask_cluster_give_identical_json(
    tmp_path: Path, shared_data: Path, cluster: str, capsys: pytest.CaptureFixture[str]
) -> None:
    local = _run(tmp_path, shared_data, "local")
    pool = _run(tmp_path, shared_data, "pool", "--jobs", "2")
    dask = _run(tmp_path, shared_data, "dask", "--scheduler", cluster)
    out = capsys.readouterr().out
    assert "2 local processes" in out and "(2 workers)" in out
    assert b'"params": {' in local  # a real choice was made, not an empty report
    assert pool == local
    assert dask == local


def test_unreachable_scheduler_is_one_line_and_exit_2(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [
        "optimize",
        str(shared_data / NQ_FILE),
        "--trials",
        "8",
        "--storage",
        f"sqlite:///{tmp_path / 'st.db'}",
        "--scheduler",
        f"tcp://127.0.0.1:{port}",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot reach Dask scheduler tcp://127.0.0.1:{port}" in err[0]


def test_a_shipped_block_rebuilds_every_candle_with_its_types() -> None:
    candles = [
        Candle("NQ", 60 * 10**9, 1.0, 2.5, 0.5, 2.0, 7),
        Candle("NQ", 120 * 10**9, 2.0, 2.0, 2.0, 2.0, 0.0, 3, gap_filled=True, backfilled=True),
    ]
    shipped = pickle.loads(pickle.dumps(CandleBlock(candles))).candles
    assert shipped == candles
    assert [type(c.volume) for c in shipped] == [int, float]
