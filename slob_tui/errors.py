"""User-facing errors: each prints as one line naming the problem and exits non-zero."""


class SlobError(Exception):
    """Base of every error the command line reports as one line."""

    exit_status = 2


class UsageError(SlobError):
    """Bad flags or bad input."""


class ConfigError(UsageError):
    """A setting (environment or `.env`) is missing or malformed; the message names it."""
