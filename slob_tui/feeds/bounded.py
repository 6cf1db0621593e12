"""Input files opened with limits, so a hostile or broken file costs bounded memory.

Every reader of tick and candle files (the csv module for the header, pandas, pyarrow) reads
through `open_bounded`, a binary stream that refuses:

- a line longer than `max_line_bytes` (1 MiB by default): without the limit a file with no
  newline is buffered whole (a 2 GB file took 4.1 GB and ended in a `_csv.Error` traceback);
- a gzip file that expands more than `max_ratio` times (200:1) once `ratio_grace_bytes` (8 MiB)
  have come out: a 1 MB gzip bomb expanded to 1 GB otherwise. Real market CSVs compress about
  5-15:1 (the shared SPY trades: 12:1), so the limit leaves a wide margin.

Both raise `InputLimitError`, a `UsageError`: one line naming the file, exit status 2. A .gz
file cut short or corrupt raises `DamagedFileError`, also a `UsageError` (it was a traceback).
"""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from slob_tui.errors import UsageError

MiB = 1 << 20


class InputLimitError(UsageError):
    """A file broke one of the input limits; the message names the file and the limit."""


class DamagedFileError(UsageError):
    """A .gz file that is cut short or corrupt; the message names the file."""


@dataclass(frozen=True)
class InputLimits:
    """What a file reader accepts; the defaults are stated in the module docstring."""

    max_line_bytes: int = MiB
    max_ratio: float = 200.0
    ratio_grace_bytes: int = 8 * MiB


DEFAULT_LIMITS = InputLimits()


class _Gunzip:
    """A gzip file's decompressed bytes, taken from zlib in large pieces.

    Not `gzip.GzipFile`: on Python 3.11 it feeds zlib 8 KiB of the file at a time, and each of
    its three calls per piece lets the GIL go and waits to get it back (about 1,800 times for
    four SPY days). In the replay's reader thread, beside an engine that holds the GIL, those
    waits made a CSV.gz replay of four SPY days take 871 ms where this takes 774 (alternating
    runs). The format rules are gzip's: members one after another, zero bytes allowed after a
    member, every trailer's CRC and length checked (zlib does it), a file that ends inside a
    member an `EOFError`, bad bytes a `BadGzipFile`.
    """

    PIECE = 256 * 1024  # compressed bytes per read: about 3 MiB of CSV

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.consumed = 0  # compressed bytes taken from the file
        self._inflate = zlib.decompressobj(wbits=31)
        self._input = b""  # compressed bytes taken but not yet given to zlib
        self._between = True  # before a member: at the start, or after one ended
        self._members = 0

    def read(self, size: int) -> bytes:
        """Up to `size` decompressed bytes; b"" once the file is read."""
        if size <= 0:  # zlib reads a max_length of 0 as no limit
            return b""
        while True:
            if self._between:
                rest = self._input
                while True:
                    if self._members:  # gzip's rule: zero padding after a member
                        rest = rest.lstrip(b"\0")
                    if rest:
                        break
                    rest = self._take()
                    if not rest:
                        return b""
                self._inflate = zlib.decompressobj(wbits=31)
                self._input, self._between = rest, False
            inflate = self._inflate
            data = inflate.unconsumed_tail or self._input or self._take()
            self._input = b""
            if not data:
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            try:
                out = inflate.decompress(data, size)
            except zlib.error as exc:
                raise gzip.BadGzipFile(f"not a valid gzip file ({exc})") from exc
            if inflate.eof:
                self._input, self._between = inflate.unused_data, True
                self._members += 1
            if out:
                return out

    def _take(self) -> bytes:
        data = self._raw.read(self.PIECE)
        self.consumed += len(data)
        return data

    def close(self) -> None:
        self._raw.close()


class BoundedStream(io.RawIOBase):
    """A binary read stream over a CSV or CSV.gz file that enforces `InputLimits`.

    Each piece read is checked as it passes: the line continued from the last piece, then
    the lines inside it by jumping from newline to the farthest newline within the limit
    (memrchr speed: a few calls per MiB), so the check costs nothing measurable.
    """

    def __init__(self, path: Path, limits: InputLimits = DEFAULT_LIMITS) -> None:
        super().__init__()
        self.path = path
        self.limits = limits
        self._file: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._gunzip: _Gunzip | None = None  # the source, when the file is a .gz
        self._source: BinaryIO | _Gunzip = self._file
        if path.suffix == ".gz":
            self._gunzip = self._source = _Gunzip(self._file)
        self._line_run = 0  # bytes since the last newline
        self.produced = 0  # bytes handed out (decompressed)

    def readable(self) -> bool:
        return True

    def disk_bytes(self) -> int:
        """Bytes taken from the file on disk so far (compressed, for a .gz)."""
        return self._gunzip.consumed if self._gunzip is not None else self.produced

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        try:
            data = self._source.read(size)
        except EOFError as exc:
            raise DamagedFileError(
                f"{self.path}: the gzip data ends before its end marker (cut short?)"
            ) from exc
        except gzip.BadGzipFile as exc:
            raise DamagedFileError(f"{self.path}: {exc}") from exc
        if data:
            self._check(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def readall(self) -> bytes:
        parts = []
        while chunk := self.read(self.limits.max_line_bytes):
            parts.append(chunk)
        return b"".join(parts)

    def _check(self, data: bytes) -> None:
        limit = self.limits.max_line_bytes
        base = self.produced
        self.produced += len(data)
        first = data.find(b"\n")
        if first < 0:
            self._line_run += len(data)
        else:
            if self._line_run + first > limit:
                self._too_long(base + first)
            last = data.rfind(b"\n")
            pos = first
            while last - pos > limit + 1:  # a line between pos and last could be too long
                nxt = data.rfind(b"\n", pos + 1, pos + limit + 2)
                if nxt < 0:
                    self._too_long(base + pos + 1)
                pos = nxt
            self._line_run = len(data) - last - 1
        if self._line_run > limit:
            self._too_long(self.produced)
        if self._gunzip is not None and self.produced > self.limits.ratio_grace_bytes:
            ratio = self.produced / max(1, self._gunzip.consumed)
            if ratio > self.limits.max_ratio:
                raise InputLimitError(
                    f"{self.path}: expands more than {self.limits.max_ratio:g} times its "
                    f"compressed size ({self.produced // MiB} MiB out of "
                    f"{self._gunzip.consumed / MiB:.2f} MiB so far): not read, a gzip bomb "
                    "or not a market data file"
                )

    def _too_long(self, offset: int) -> None:
        """Refuse the line that takes in byte `offset` of the (decompressed) text."""
        limit = self.limits.max_line_bytes
        size = f"{limit // MiB} MiB" if limit % MiB == 0 else f"{limit:,} bytes"
        raise InputLimitError(
            f"{self.path}: line {self._line_at(offset)} is longer than {size}: not read, no "
            "CSV row of market data is that long"
        )

    def _line_at(self, offset: int) -> int:
        """The number of the line byte `offset` belongs to, counted again from the start of the
        file: only an error needs it, and counting every piece as it passed held the GIL in
        the replay's reader thread (about 25 ms on four SPY days)."""
        lines, left = 1, offset
        with open(self.path, "rb") as raw:
            source: BinaryIO | _Gunzip = _Gunzip(raw) if self._gunzip is not None else raw
            while left > 0:
                piece = source.read(min(left, MiB))
                if not piece:
                    break
                lines += piece.count(b"\n")
                left -= len(piece)
        return lines

    def close(self) -> None:
        if not self.closed:
            try:
                self._source.close()
            finally:
                self._file.close()
        super().close()


def open_bounded(path: Path, limits: InputLimits = DEFAULT_LIMITS) -> BoundedStream:
    """The file as a bounded binary stream (gzip decompressed when the name ends in .gz)."""
    return BoundedStream(path, limits)


def open_bounded_text(path: Path, limits: InputLimits = DEFAULT_LIMITS) -> io.TextIOWrapper:
    """The file as bounded UTF-8 text, for the csv module (newline='' as csv requires)."""
    return io.TextIOWrapper(io.BufferedReader(open_bounded(path, limits)), encoding="utf-8",
                            newline="")  # fmt: skip
