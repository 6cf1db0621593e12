"""What a file argument names: one file, a folder of daily files, or a glob of them.

A folder or glob is one time-ordered stream: its files (CSV, CSV.gz, Parquet) are taken in name
order, which for daily files (`2024-01-02.parquet`, `spy_20240102.csv.gz`) is time order. Before
any row is replayed, the first time of every file is compared with the file before it; while
reading, each file's first time is compared with the last time of the one before. Either way a
file that starts before its predecessor ends is refused with one line naming both files.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from slob_tui.errors import UsageError

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
GENERIC_FOLDERS = frozenset({"trades", "bars", "ticks", "candles", "data"})


def _is_input(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith(SUFFIXES) and not name.startswith(".")


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


@dataclass(frozen=True)
class InputSet:
    """The files one argument stands for, in replay order; `label` is the argument itself."""

    label: str
    files: tuple[Path, ...]

    @property
    def single(self) -> bool:
        return len(self.files) == 1 and Path(self.label) == self.files[0]

    @property
    def first(self) -> Path:
        return self.files[0]

    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def default_symbol(self) -> str:
        """The symbol the argument implies: a file's first word (`spy_trades_20131007.csv.gz`
        -> SPY); a folder's name (`data/SPY/trades` -> SPY: `trades`, `bars` and the like are
        passed over); a daily file named by its date (`2024-01-02.parquet`, as `download`
        writes) takes its folder's."""
        first = self.files[0]
        stem = first.name.split("_")[0].split(".")[0]
        named = Path(self.label)
        if not named.is_dir() and stem and not stem[0].isdigit():
            return stem.upper()
        for folder in (named, *named.parents) if named.is_dir() else first.parents:
            if folder.name and folder.name.lower() not in GENERIC_FOLDERS:
                return folder.name.upper()
        return stem.upper()


def expand(argument: str | Path) -> InputSet:
    """The files named by `argument`, or a UsageError saying why there are none."""
    text = str(argument)
    path = Path(text)
    if path.is_file():
        return InputSet(text, (path,))
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if _is_input(p)), key=lambda p: p.name)
        if not files:
            raise UsageError(
                f"{text}: folder holds no tick or candle files ({', '.join(SUFFIXES)})"
            )
        return InputSet(text, tuple(files))
    if _has_magic(text):
        files = sorted((Path(p) for p in glob.glob(text)), key=lambda p: (p.name, str(p)))
        files = [p for p in files if _is_input(p)]
        if not files:
            raise UsageError(f"{text}: no file matches ({', '.join(SUFFIXES)})")
        return InputSet(text, tuple(files))
    if not path.exists():
        raise UsageError(f"file not found: {path}")
    raise UsageError(f"not a file: {path}")


def out_of_order(
    earlier: Path, later: Path, later_first: int, earlier_ns: int, edge: str = "ends"
) -> UsageError:
    """The one-line error for two files whose times overlap or run backwards; `earlier_ns` is
    when `earlier` starts or ends (`edge`)."""
    from datetime import UTC, datetime

    def when(ns: int) -> str:
        return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    return UsageError(
        f"{later} starts at {when(later_first)}, before {earlier} {edge} at "
        f"{when(earlier_ns)}: the files overlap or are not in time order (name order is "
        "replay order)"
    )
