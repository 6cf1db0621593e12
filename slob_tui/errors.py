"""User-facing errors: each prints as one line naming the problem and exits non-zero."""


class SlobError(Exception):
    """Base of every error the command line reports as one line."""


class UsageError(SlobError):
    """Bad flags or bad input."""
