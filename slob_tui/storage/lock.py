"""One engine per database: an OS file lock on `<db>.lock`, holding the owner's pid.

Two engines on one file overwrite each other's candles and orders (issue 14, item 4), so a
writer takes this lock before it opens the stores. `flock` belongs to the open file, so the
kernel releases it when the process dies, however it dies (SIGKILL, OOM): no stale lock to clean
up by hand. The lock file is never deleted: a process that opened the old file would then lock a
different inode than the next one. Read-only users (`validate`, an attached console, `sqlite3`)
do not take it and are never blocked.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from slob_tui.storage.errors import DatabaseLockedError, StoreError


def lock_path(db_path: str | Path) -> Path:
    """The lock file of a database: beside it, same name plus `.lock`."""
    db = Path(db_path)
    return db.with_name(db.name + ".lock")


class DatabaseLock:
    """The writer's claim on one database file; `acquire()` fails fast, it never waits."""

    def __init__(self, db_path: str | Path, role: str = "engine") -> None:
        """`role` is written beside the pid: an engine finding the lock held by a short-lived
        `flatten` waits for it (see `holder_role`) instead of refusing to start."""
        self.db_path = Path(db_path)
        self.path = lock_path(db_path)
        self.role = role
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> DatabaseLock:
        """Take the lock and write our pid into it; raises `DatabaseLockedError` naming the
        holder's pid when another process (or another lock object here) holds it."""
        if self._fd is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = self.holder()
            who = f"pid {pid}" if pid is not None else "a process that is still starting"
            what = (
                "another engine"
                if self.holder_role() in ("engine", None)
                else (f"`slob-tui {self.holder_role()}`")
            )
            raise DatabaseLockedError(
                f"database {self.db_path} is in use by {what} ({who}); stop it or "
                "choose another --db"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {self.path}: {exc}") from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {self.role}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot write the lock file {self.path}: {exc}") from exc
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (closing the file releases it); the file stays for the next one."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _record(self) -> list[str]:
        try:
            return self.path.read_text(encoding="ascii").split()
        except (OSError, UnicodeDecodeError):
            return []

    def holder(self) -> int | None:
        """The pid written by the last process that took the lock (it may have exited since),
        or None when there is none yet. Reading takes no lock."""
        record = self._record()
        return int(record[0]) if record and record[0].isdigit() else None

    def holder_role(self) -> str | None:
        """What the last holder was (`engine`, `flatten`); None when unknown."""
        record = self._record()
        return record[1] if len(record) > 1 else ("engine" if record else None)

    def __enter__(self) -> DatabaseLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
