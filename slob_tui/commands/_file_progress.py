"""A progress bar for long file commands (replay, backtest, validate, download): on a terminal
only, never in a pipe or with `--quiet`, so scripts read the same output as before.

Rows, rows per second and the time left; the total is exact for Parquet (its metadata) and
estimated for CSV from the first MiB (lines per byte of the file on disk, gzip included), so the
bar may end a little before or after 100 %. rich is imported only when a bar is shown.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Protocol

SAMPLE_BYTES = 1 << 20


class RowProgress(Protocol):
    def update(self, rows: int) -> None:
        """`rows` handled so far (absolute)."""

    def close(self) -> None: ...


class _Silent:
    """What a pipe or `--quiet` gets: nothing."""

    def update(self, rows: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Bar:
    def __init__(self, label: str, total: int | None, unit: str, stream: Any) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task: Any) -> Text:
                speed = task.speed
                if not speed:
                    return Text(f"- {unit}/s")
                if speed >= 1e6:
                    return Text(f"{speed / 1e6:.2f} M {unit}/s")
                return Text(f"{speed / 1e3:.0f} k {unit}/s")

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f} rows"),
            Rate(),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=False,
            refresh_per_second=4,
        )
        self._task = self._progress.add_task(label, total=total)
        self._progress.start()

    def update(self, rows: int) -> None:
        self._progress.update(self._task, completed=rows)

    def close(self) -> None:
        self._progress.stop()


def progress(
    label: str, total: int | None, quiet: bool = False, unit: str = "trades", stream: Any = None
) -> RowProgress:
    """A bar on a terminal (stderr), nothing otherwise."""
    stream = stream if stream is not None else sys.stderr
    if quiet or not getattr(stream, "isatty", lambda: False)():
        return _Silent()
    return _Bar(label, total, unit, stream)


def estimate_rows(files: tuple[Path, ...] | list[Path]) -> int | None:
    """Rows in these files: exact for Parquet, estimated for CSV from its first MiB."""
    from slob_tui.feeds import parquet
    from slob_tui.feeds.bounded import open_bounded

    total = 0
    for path in files:
        if parquet.is_parquet(path):
            total += parquet.row_count(path)
            continue
        size = path.stat().st_size
        with open_bounded(path) as stream:
            sample = stream.read(SAMPLE_BYTES)
            taken = stream.disk_bytes()
        lines = sample.count(b"\n")
        if not lines or not taken:
            return None
        total += max(0, int(size * lines / taken) - 1)
    return total


def file_progress(path: str, quiet: bool, verb: str) -> RowProgress:
    """The bar for a file command over `path` (a file, folder or glob), or nothing."""
    stream = sys.stderr
    if quiet or not stream.isatty():
        return _Silent()
    from slob_tui.feeds.sources import expand

    inputs = expand(path)
    return progress(f"{verb} {Path(inputs.label).name}", estimate_rows(inputs.files),
                    stream=stream)  # fmt: skip
