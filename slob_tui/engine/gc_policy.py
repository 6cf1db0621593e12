"""The garbage collector's settings while an engine runs: one process-wide choice, made here.

The pipeline allocates a few short-lived containers per tick (decoded messages, tick tuples).
With CPython's default thresholds (700, 10, 10) the collector runs a young collection every few
hundred ticks and, because surviving ticks are promoted, full collections that walk every object
the process holds (the console, the loaded modules). Measured on the end-to-end benchmark, that
was about 40 % of the pipeline's CPU. While at least one engine runs, objects that existed before
it started are frozen out of the collector's scans (`gc.freeze`) and the young-generation
threshold is raised; reference cycles are still collected, only less often. The first engine to
start applies this and the last one to stop restores the previous thresholds and unfreezes.
"""

from __future__ import annotations

import gc
import threading

RUNNING_THRESHOLDS = (50_000, 20, 20)

_lock = threading.Lock()
_holders = 0
_saved: tuple[int, int, int] | None = None


def acquire() -> None:
    """An engine starts: apply the running settings if it is the first one."""
    global _holders, _saved
    with _lock:
        _holders += 1
        if _holders == 1:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(*RUNNING_THRESHOLDS)


def release() -> None:
    """An engine stopped: put the previous settings back once no engine runs."""
    global _holders, _saved
    with _lock:
        if _holders == 0:
            return
        _holders -= 1
        if _holders == 0 and _saved is not None:
            gc.set_threshold(*_saved)
            gc.unfreeze()
            _saved = None


def holders() -> int:
    """How many running engines hold the settings (for tests and health)."""
    return _holders
