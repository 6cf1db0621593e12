"""The storage errors, apart from any one store so every module of the database can raise them.

Both are `SlobError`s: the command line prints them as one line and exits 2.
"""

from __future__ import annotations

from slob_tui.errors import SlobError


class StoreError(SlobError):
    """The database cannot be opened, written or read; the message names the file.

    `bad_data`: the candles themselves were refused (a value SQLite cannot bind or store), not
    the file (locked, full, unreadable): retrying the same batch would fail forever.
    """

    bad_data = False


class StateError(SlobError):
    """The state database (journal or hot state) cannot be opened or written; the message
    names the file or the Redis URL's role."""


class SchemaTooNewError(StoreError):
    """The file was written by a newer slob-tui: this one would misread or damage it."""


class DatabaseLockedError(StoreError):
    """Another engine holds the database's lock; the message names its pid."""


class StoreUnavailableError(StoreError):
    """The engine stopped because a store stayed unwritable past its limit: exit status 75
    (EX_TEMPFAIL), so a supervisor restarts it rather than treating it as bad input."""

    exit_status = 75
