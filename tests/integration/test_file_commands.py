"""The file commands (backtest, validate, parity, replay) as a user meets them: what they print
and their exit status, for empty, hostile, backwards and ordinary files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from slob_tui.cli import main

COMMANDS = ("backtest", "validate", "parity", "replay")
MiB = 1 << 20


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty folder (no .env) with no live database or Redis configured."""
    monkeypatch.chdir(tmp_path)
    for name in ("SLOB_DB_PATH", "REDIS_URL", "SLOB_TZ", "SLOB_FEED"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def argv_for(command: str, path: Path) -> list[str]:
    if command == "replay":
        return [command, str(path), "--no-ui"]
    if command == "backtest":
        return [command, str(path), "--no-plot"]
    return [command, str(path)]


def assert_one_line_error(code: int, err: str, needle: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, lines
    assert lines[0].startswith("slob-tui: error:") and needle in lines[0], lines
    assert "Traceback" not in err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "header", ["timestamp,open,high,low,close,volume\n", "timestamp,price,size\n\n\n"]
)
def test_a_file_with_only_a_header_is_one_line_and_exit_2(capsys, tmp_path, command, header):
    path = tmp_path / "empty.csv"
    path.write_text(header)
    code, out, err = run(capsys, *argv_for(command, path))
    assert_one_line_error(code, err, "no data rows")
    assert not (tmp_path / "data").exists()  # nothing was created for a file not read


def long_line_file(path: Path) -> Path:
    """A tick file whose second row is 3 MiB without a newline."""
    with open(path, "wb") as fh:
        fh.write(b"timestamp,price,size\n2024-01-02T15:00:01Z,10,1\n")
        fh.write(b"7" * (3 * MiB))
    return path


def long_header_file(path: Path) -> Path:
    path.write_bytes(b"timestamp," + b"x" * (2 * MiB))
    return path


def gzip_bomb(path: Path) -> Path:
    """80 KiB of gzip that expands to 40 MiB of candle rows: past 200:1 after 8 MiB."""
    row = b"2024-01-02 10:00:00,1,1,1,1\n" * 40_000
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(b"timestamp,open,high,low,close\n")
        for _ in range(40):
            fh.write(row)
    assert path.stat().st_size < 200_000
    return path


def gzip_long_line(path: Path) -> Path:
    """A small gzip tick file whose third line is 64 MiB of zeros without a newline."""
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(b"timestamp,price,size\n2024-01-02T15:00:01Z,10,1\n")
        zeros = b"0" * MiB
        for _ in range(64):
            fh.write(zeros)
    return path


HOSTILE = {
    "long.csv": (long_line_file, "line 3 is longer than 1 MiB"),
    "header.csv": (long_header_file, "line 1 is longer than 1 MiB"),
    "bomb.csv.gz": (gzip_bomb, "expands more than 200 times"),
    "zeros.csv.gz": (gzip_long_line, "line 3 is longer than 1 MiB"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_are_one_line_and_exit_2(capsys, tmp_path, command, name):
    make, needle = HOSTILE[name]
    path = make(tmp_path / name)
    code, out, err = run(capsys, *argv_for(command, path))
    assert_one_line_error(code, err, needle)
    assert name in err
