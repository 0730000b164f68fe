"""One heavy job on the cores at a time: model generation and timing rounds never overlap.

A timing round measured while the model decodes on the same cores gives false verdicts. This
lock is held around each generation and around the timing rounds of each verification (the
equivalence checks before them may overlap generation); it is a thread lock within a process
and an advisory file lock (``flock``) across processes, so a CLI run and a language server on
the same machine take turns too.

Timing has priority within a process: while a timing round waits for the lock, no new
generation starts, so a search that generates back to back cannot starve its verifier.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from speedsmith.paths import cache_dir

_THREAD_LOCK = threading.RLock()
_LOCAL = threading.local()
_WAITING = threading.Condition()
_priority_waiters = 0


@contextlib.contextmanager
def exclusive(*, priority: bool = False) -> Iterator[None]:
    """Hold the machine-wide compute lock (re-entrant within a thread).

    ``priority`` (timing rounds): jump ahead of generations that have not started yet.
    """
    global _priority_waiters
    waiting = False
    if getattr(_LOCAL, "depth", 0) == 0:
        with _WAITING:
            if priority:
                _priority_waiters += 1
                waiting = True
            else:
                _WAITING.wait_for(lambda: _priority_waiters == 0)
    try:
        with _hold():
            if waiting:
                waiting = False
                _release_priority()
            yield
    finally:
        if waiting:  # never got the lock
            _release_priority()


def _release_priority() -> None:
    global _priority_waiters
    with _WAITING:
        _priority_waiters -= 1
        _WAITING.notify_all()


@contextlib.contextmanager
def _hold() -> Iterator[None]:
    with _THREAD_LOCK:
        depth = getattr(_LOCAL, "depth", 0)
        _LOCAL.depth = depth + 1
        try:
            if depth > 0:
                yield
                return
            with _file_lock():
                yield
        finally:
            _LOCAL.depth = depth


@contextlib.contextmanager
def _file_lock() -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the thread lock only
        yield
        return
    path = Path(cache_dir()) / "compute.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)
