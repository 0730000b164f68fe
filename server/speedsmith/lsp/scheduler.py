"""One job queue for the engine: explicit requests first, background runs one at a time.

LSP methods: none of its own; it carries out ``workspace/executeCommand`` ``speedsmith.optimize``
(an explicit job), ``speedsmith.cancel``, ``window/workDoneProgress/cancel``,
``$/cancelRequest`` of a running ``speedsmith.optimize``, ``textDocument/didClose`` (jobs of
the closed document stop) and ``shutdown``/``exit`` (everything stops), and sends the
notification ``speedsmith/status`` (the queue's state, for status bars).

The engine is blocking: every job runs on one single-worker executor of its own, never on
pygls's shared thread pool, so ``codeAction``, ``hover`` and document sync keep answering
while a search runs. Explicit jobs pre-empt the background one (it is cancelled and queued
again, first); a background job starts only when no explicit job is running. Each job carries
a ``threading.Event``: setting it makes the engine stop and kill its children.

Background runs are debounced per document (the setting ``onSaveDebounceSeconds``): a queued
run waits until that long has passed since the document's last save, and every save of the
document restarts the wait for all of its queued runs. The clock and the timer are injectable
(``clock``, ``call_later``) so tests drive the wait without sleeping.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from speedsmith.isolate import Region

logger = logging.getLogger(__name__)

T = TypeVar("T")

STATUS_NOTIFICATION = "speedsmith/status"


@dataclass
class Job:
    """One ``speedsmith.optimize`` run."""

    token: str
    uri: str
    qualname: str
    version: int | None
    """The document version the run started from."""
    text: str
    """The document text the run started from (the edit's offsets refer to it)."""
    was_open: bool = True
    """Whether the document was open in the editor when the run started."""
    cancel: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    qualnames: tuple[str, ...] = ()
    """The functions to optimise one after another ("Optimize all N functions"); () means
    ``(qualname,)``."""
    region: Region | None = None
    """Only these lines of the function (``engine.optimize(region=...)``)."""


@dataclass
class Pending:
    """A function queued for a background run, as it was when saved."""

    uri: str
    qualname: str
    function_hash: str
    cancel: threading.Event = field(default_factory=threading.Event)
    preempted: bool = False
    not_before: float = 0.0
    """The scheduler's clock time before which the run does not start (the debounce)."""


JOB_NICENESS = 10
"""How much lower than the server's own the job thread's scheduling priority is (Linux: per
thread; the processes the engine starts inherit it). On a machine whose cores a search keeps
busy, the event loop still gets a core at once, so codeAction and hover stay fast."""


def prepare_worker() -> None:
    """The job thread's start: lower its priority, load the engine (numpy, scipy: about a
    second, off the event loop) and freeze what that loaded out of the garbage collector's
    way (a full collection stops every thread, the event loop's too, while it walks)."""
    lower_priority()
    try:
        from speedsmith import engine  # noqa: F401
    except Exception:  # the job reports it when it imports the engine itself
        logger.debug("could not load the engine ahead of the first job", exc_info=True)
    gc.freeze()


def lower_priority() -> None:
    """Lower the calling thread's priority by ``JOB_NICENESS`` (where the OS allows)."""
    try:
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + JOB_NICENESS))
    except (AttributeError, OSError) as err:  # not Linux, or not permitted
        logger.debug("could not lower the job thread's priority: %s", err)


class Timer(Protocol):
    """What ``call_later`` returns: ``asyncio.TimerHandle`` or a test's stand-in."""

    def cancel(self) -> None: ...


def loop_call_later(delay: float, callback: Callable[[], None]) -> Timer:
    """``callback`` after ``delay`` seconds on the running event loop."""
    return asyncio.get_running_loop().call_later(delay, callback)


class Scheduler:
    """The executor, the explicit jobs by progress token, the background queue."""

    def __init__(
        self,
        notify: Callable[[str, Any], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        call_later: Callable[[float, Callable[[], None]], Timer] = loop_call_later,
    ) -> None:
        self.notify = notify
        """Sends a notification to the client (``speedsmith/status``)."""
        self.clock = clock
        """The debounce's clock (seconds)."""
        self.call_later = call_later
        """Arms the timer that starts a debounced run once it is due."""
        self.timer: Timer | None = None
        self.timer_due: float | None = None
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="speedsmith-job", initializer=prepare_worker
        )
        """Runs the (blocking) engine; one job at a time, never on pygls' shared pool."""
        self.jobs: dict[str, Job] = {}
        """Running and waiting explicit jobs by progress token, oldest first."""
        self.queue: list[Pending] = []
        self.current: Pending | None = None
        self.task: asyncio.Task[None] | None = None
        self.runs = 0
        """Background engine runs started (tests read it through ``speedsmith.status``)."""
        self.background: Callable[[Pending], Awaitable[None]] | None = None
        """What a background job does (set by ``speedsmith.lsp.hints``)."""
        self.last_status: dict[str, Any] = self.state()
        self.closed = False

    # -- running work -------------------------------------------------------------------------

    async def run_blocking(self, function: Callable[[], T]) -> T:
        """Run ``function`` on the job executor and await its result."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function)

    def add(self, job: Job) -> None:
        """Register an explicit job: it pre-empts the background job."""
        self.jobs[job.token] = job
        self.preempt()

    def finish(self, job: Job) -> None:
        """The explicit job is over: forget it, resume the background queue."""
        job.done = True
        self.jobs.pop(job.token, None)
        self.kick()

    def ahead_of(self, job: Job) -> list[str]:
        """Qualnames of the explicit jobs started before ``job`` that still run."""
        ahead = []
        for other in self.jobs.values():
            if other is job:
                break
            if not other.done:
                ahead.append(other.qualname)
        return ahead

    # -- the background queue -------------------------------------------------------------------

    def enqueue(self, pending: Pending, delay: float = 0.0) -> None:
        """Queue ``pending`` (replacing a queued run of the same function) to start no sooner
        than ``delay`` seconds from now; the document's other queued runs wait as long."""
        due = self.clock() + max(0.0, delay)
        self.queue = [
            p for p in self.queue if (p.uri, p.qualname) != (pending.uri, pending.qualname)
        ]
        pending.not_before = due
        for queued in self.queue:
            if queued.uri == pending.uri:
                queued.not_before = max(queued.not_before, due)
        self.queue.append(pending)

    def preempt(self) -> None:
        """An explicit request arrived: stop the background job (it is queued again)."""
        job = self.current
        if job is not None and not job.cancel.is_set():
            job.preempted = True
            job.cancel.set()

    def _explicit_busy(self) -> bool:
        return any(not job.done for job in self.jobs.values())

    def kick(self) -> None:
        """Start the next queued job that is due, unless one runs or an explicit request is
        pending; when none is due yet, arm the timer for the first that will be."""
        if (
            self.closed
            or self.background is None
            or self.task is not None
            or not self.queue
            or self._explicit_busy()
        ):
            self.status()
            return
        now = self.clock()
        pending = next((p for p in self.queue if p.not_before <= now), None)
        if pending is None:
            self._arm(min(p.not_before for p in self.queue) - now)
            self.status()
            return
        self.queue.remove(pending)
        self.current = pending
        self.task = asyncio.get_running_loop().create_task(self._run(pending, self.background))
        self.status()

    def _arm(self, delay: float) -> None:
        """Kick again in ``delay`` seconds (one timer: an earlier due time replaces it)."""
        due = self.clock() + delay
        if self.timer is not None and self.timer_due is not None and self.timer_due <= due:
            return
        self._disarm()
        self.timer_due = due
        self.timer = self.call_later(delay, self._due)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.timer_due = None

    def _due(self) -> None:
        self.timer = self.timer_due = None
        self.kick()

    async def _run(self, pending: Pending, body: Callable[[Pending], Awaitable[None]]) -> None:
        try:
            await body(pending)
        except Exception:
            logger.exception("background run of %s failed", pending.qualname)
        finally:
            self.current = None
            self.task = None
            if pending.preempted and not self.closed:
                retry = Pending(pending.uri, pending.qualname, pending.function_hash)
                if all((p.uri, p.qualname) != (retry.uri, retry.qualname) for p in self.queue):
                    self.queue.insert(0, retry)
            self.kick()

    def started_run(self) -> None:
        """A background job is about to call the engine."""
        self.runs += 1
        self.status()

    # -- cancellation ---------------------------------------------------------------------------

    def cancel_token(self, token: str) -> bool:
        """``window/workDoneProgress/cancel``: stop the explicit job behind ``token``."""
        job = self.jobs.get(token)
        if job is None or job.cancel.is_set():
            return False
        job.cancel.set()
        return True

    def drop(self, uri: str) -> None:
        """Forget the queued runs for ``uri`` and cancel its running background job."""
        self.queue = [p for p in self.queue if p.uri != uri]
        if self.current is not None and self.current.uri == uri:
            self.current.cancel.set()
        self.status()

    def cancel_all(self) -> int:
        """``speedsmith.cancel``: every explicit job, the queue and the background job; how
        many were asked to stop."""
        count = 0
        for job in self.jobs.values():
            if not job.cancel.is_set():
                job.cancel.set()
                count += 1
        count += len(self.queue)
        self.queue.clear()
        if self.current is not None and not self.current.cancel.is_set():
            self.current.cancel.set()
            count += 1
        self.status()
        return count

    def close(self, wait: float | None = None) -> bool:
        """``shutdown``, ``exit`` or the client gone: cancel everything, stop the executor.

        With ``wait``, wait that many seconds for the running job to end (its children
        killed); whether it did.
        """
        self.closed = True
        self.cancel_all()
        self._disarm()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if wait is None:
            return True
        workers = list(getattr(self.executor, "_threads", ()))
        for thread in workers:
            thread.join(wait)
        return not any(thread.is_alive() for thread in workers)

    # -- status ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """``{"running": qualname | None, "queued": n, "runs": engine runs so far}``."""
        return {
            "running": self.current.qualname if self.current is not None else None,
            "queued": len(self.queue),
            "runs": self.runs,
        }

    def status(self) -> None:
        """Send ``speedsmith/status`` with ``state()`` when it changed since the last one."""
        state = self.state()
        if state == self.last_status:
            return
        self.last_status = state
        try:
            self.notify(STATUS_NOTIFICATION, state)
        except Exception as err:  # the transport may be gone at shutdown
            logger.debug("status notification failed: %s", err)
