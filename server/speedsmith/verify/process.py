"""The one process runner: every child speedsmith starts (the sandboxed harness, the pytest
capture run, the final gate) goes through ``run_child``.

It spawns the command in a session of its own, reads its stdout line by line on a thread (or
sends it to a file), enforces the deadline (optionally interrupting first, so a pytest run can
save what it has), honours cancellation, and on the way out kills the whole process group
(the sandbox's PID namespace takes every descendant with it), joins the reader and closes the
pipes. ``ChildEnd`` says why it ended. Knows nothing of LSP.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from speedsmith.errors import Cancelled

MAX_LINE_BYTES = 1 << 20
TICK_SECONDS = 0.05

Why = Literal["exited", "stopped", "deadline"]
"""``exited``: on its own; ``stopped``: the caller had what it needed (``on_line`` returned
False); ``deadline``: the time limit (after ``interrupt_grace_seconds``, if any)."""


@dataclass(frozen=True)
class ChildEnd:
    returncode: int | None
    why: Why
    interrupted: bool = False
    """SIGINT was sent at the deadline (the child may have saved its work before exiting)."""


@dataclass
class Child:
    """A started child: what ``on_line`` may use to talk back (``answer``)."""

    process: subprocess.Popen[bytes]
    deadline: float

    def answer(self, data: bytes) -> None:
        """Write ``data`` to the child's stdin and close it (it may have died: then nothing)."""
        if self.process.stdin is None:
            return
        with contextlib.suppress(OSError):
            self.process.stdin.write(data)
            self.process.stdin.close()

    def extend(self, seconds: float) -> None:
        """Move the deadline (time spent waiting on the caller does not count)."""
        self.deadline += seconds


def run_child(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout_seconds: float,
    cancel: threading.Event | None = None,
    on_line: Callable[[Child, bytes], bool] | None = None,
    output: IO[bytes] | None = None,
    stderr: IO[bytes] | int | None = None,
    interactive: bool = False,
    interrupt_grace_seconds: float | None = None,
    on_tick: Callable[[], None] | None = None,
) -> ChildEnd:
    """Run ``command`` to its end, its deadline, or until ``on_line`` returns False.

    Either ``on_line`` (stdout read line by line on a thread) or ``output`` (stdout, with
    stderr, written to a file). ``interactive`` keeps a stdin pipe for ``Child.answer``.
    Raises ``Cancelled`` once ``cancel`` is set; the child is dead by then, as it is whenever
    this returns."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if interactive else subprocess.DEVNULL,
        stdout=subprocess.PIPE if on_line is not None else output,
        stderr=subprocess.STDOUT if output is not None and stderr is None else stderr,
        start_new_session=True,
    )
    child = Child(process, time.monotonic() + timeout_seconds)
    lines: queue.Queue[bytes | None] = queue.Queue()
    reader = None
    if on_line is not None:
        reader = threading.Thread(target=_read, args=(process.stdout, lines), daemon=True)
        reader.start()
    why: Why = "exited"
    interrupted = False
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            if on_tick is not None:
                on_tick()
            left = child.deadline - time.monotonic()
            if left <= 0:
                if interrupt_grace_seconds is not None and not interrupted:
                    interrupted = True
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGINT)
                    child.deadline = time.monotonic() + interrupt_grace_seconds
                    continue
                why = "deadline"
                break
            if reader is None:
                try:
                    process.wait(timeout=min(left, TICK_SECONDS))
                    break
                except subprocess.TimeoutExpired:
                    continue
            try:
                line = lines.get(timeout=min(left, TICK_SECONDS))
            except queue.Empty:
                continue
            if line is None:
                break
            if not on_line(child, line):  # type: ignore[misc]
                why = "stopped"
                break
    finally:
        kill_group(process)
        if reader is not None:
            reader.join(timeout=1)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
    if on_tick is not None:
        on_tick()  # the last word, however fast the child was
    return ChildEnd(process.returncode, why, interrupted)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the child's whole process group (also after it exited: whatever it started must
    not outlive it) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _read(stream: IO[bytes] | None, lines: queue.Queue[bytes | None]) -> None:
    try:
        while stream is not None:
            line = stream.readline(MAX_LINE_BYTES)
            if not line:
                break
            lines.put(line)
    except (ValueError, OSError):
        pass  # closed by the parent after the deadline (an escaped grandchild kept it open)
    finally:
        lines.put(None)
