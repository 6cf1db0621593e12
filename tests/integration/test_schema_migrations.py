"""The schema version: a database written before versions existed is upgraded in place with
nothing lost and read by the stores and the engine; a newer one is refused with one line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from slob_tui.errors import SlobError
from slob_tui.storage.candles import CandleStore
from slob_tui.storage.errors import SchemaTooNewError
from slob_tui.storage.schema import MIGRATIONS, SCHEMA_VERSION, ensure_schema
from slob_tui.storage.state import StateManager
from tests.fixtures import make_unversioned_db as made

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "unversioned.db"
OLD_TABLES = ("candles", "setups", "orders", "fills", "trades", "tracker_state", "hot_state")


def _dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in OLD_TABLES}


def _version(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def _objects(db: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    db = tmp_path / "slob.db"
    shutil.copy(FIXTURE, db)
    return db


def test_the_fixture_is_a_database_from_before_versions() -> None:
    assert _version(FIXTURE) == 0  # re-made with later code, it would not test an upgrade
    assert set(OLD_TABLES) <= _objects(FIXTURE)
    assert all(rows for rows in _dump(FIXTURE).values())  # every table holds something


def test_migrations_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


async def test_old_database_is_upgraded_in_place_and_nothing_is_lost(old_db: Path) -> None:
    before = _dump(old_db)
    async with CandleStore(old_db) as store:  # either store may be the first to open the file
        assert _version(old_db) == SCHEMA_VERSION
        assert await store.candles(made.SYMBOL) == made.candles()
    sm = await StateManager(old_db).open()
    try:
        assert [u.setup_id for u in await sm.live_setups()] == [made.setups()[2].setup_id]
        ended = made.setups()[0].setup_id
        assert await sm.setup_history(ended) == made.setups()[:2]
        entry, stop, fill = made.orders()
        assert [r.order.client_order_id for r in await sm.orders()] == ["e1", "e1-stop"]
        assert (await sm.get_order("e1")).info == entry.info
        assert await sm.open_order_mirror() == ["e1-stop"]
        assert await sm.fills("e1") == [fill]
        assert await sm.net_positions() == {made.SYMBOL: -2.0}
        assert [t["trade_id"] for t in await sm.trades()] == ["t-old"]
        assert await sm.load_trackers() == {made.SYMBOL: made.tracker_state()}
        assert await sm.get_value("kill_switch") == made.KILL_SWITCH
    finally:
        await sm.close()
    assert _dump(old_db) == before  # every row of every table, unchanged
    assert {"fills_by_client_order_id", "trades_by_day", "hot_cache"} <= _objects(old_db)
    assert _legacy_hot_state(old_db)  # hot values may have lived in Redis: import them once
    assert ensure_schema(old_db) == SCHEMA_VERSION  # a second open has nothing to do


def _legacy_hot_state(db: Path) -> bool:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        sql = "SELECT 1 FROM store_meta WHERE key = 'hot_state_before_versions'"
        return conn.execute(sql).fetchone() is not None


async def test_a_new_file_gets_every_table_at_the_current_version(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    sm = await StateManager(db).open()
    await sm.close()
    assert _version(db) == SCHEMA_VERSION
    assert {*OLD_TABLES, "hot_cache", "store_meta"} <= _objects(db)
    assert not _legacy_hot_state(db)  # nothing from before versions to import from Redis


def test_each_intermediate_version_upgrades_too(tmp_path: Path) -> None:
    """A file left at any released version gets exactly the migrations after it."""
    for version in range(SCHEMA_VERSION + 1):
        db = tmp_path / f"v{version}.db"
        shutil.copy(FIXTURE, db)
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
            for migration in MIGRATIONS[:version]:
                for statement in migration.statements:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        before = _dump(db)
        assert ensure_schema(db) == version
        assert _version(db) == SCHEMA_VERSION and _dump(db) == before


async def test_a_newer_database_is_refused_with_one_line(old_db: Path) -> None:
    with contextlib.closing(sqlite3.connect(old_db)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()
    before = _dump(old_db)
    for opener in (CandleStore(old_db).open, StateManager(old_db).open):
        with pytest.raises(SchemaTooNewError) as caught:
            await opener()
        message = str(caught.value)
        assert isinstance(caught.value, SlobError) and "\n" not in message
        assert f"schema version {SCHEMA_VERSION + 1}" in message and str(old_db) in message
    assert _version(old_db) == SCHEMA_VERSION + 1 and _dump(old_db) == before  # untouched


def test_the_command_line_refuses_a_newer_database_with_exit_2(old_db: Path) -> None:
    with contextlib.closing(sqlite3.connect(old_db)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
        conn.commit()
    proc = subprocess.run(
        [sys.executable, "-m", "slob_tui", "--no-ui", "--duration", "1", "--db", str(old_db)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert errors == [errors[0]] and "newer than this slob-tui" in errors[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


async def test_two_processes_opening_one_old_file_migrate_it_once(old_db: Path) -> None:
    before = _dump(old_db)
    code = (
        "import sys; from slob_tui.storage.schema import ensure_schema; ensure_schema(sys.argv[1])"
    )
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", code, str(old_db), cwd=ROOT)
        for _ in range(3)
    ]
    assert [await p.wait() for p in procs] == [0, 0, 0]
    assert _version(old_db) == SCHEMA_VERSION and _dump(old_db) == before


@pytest.mark.slow
def test_the_engine_runs_on_an_upgraded_database(old_db: Path) -> None:
    """The headless engine restores the tracker, the live setup and the open stop from the old
    file, and keeps every row it had."""
    before = _dump(old_db)
    proc = subprocess.run(
        [sys.executable, "-m", "slob_tui", "--no-ui", "--duration", "2", "--speed", "300",
         "--db", str(old_db)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "not restored" not in text  # the saved tracker state was read as it was written
    assert "client_order_id=e1-stop" in text  # the open stop from the old file was reconciled
    assert "stopped (duration elapsed)" in text
    after = _dump(old_db)
    assert set(before["candles"]) <= set(after["candles"])
    assert set(before["setups"]) <= set(after["setups"])
    for table in ("fills", "trades"):
        assert after[table] == before[table]
    assert _version(old_db) == SCHEMA_VERSION
