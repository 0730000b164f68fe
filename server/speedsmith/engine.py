"""The engine: isolate -> workload -> search <-> verify -> edit. Shared by the CLI and the server.

Knows nothing of LSP. Blocking; callers run it off their event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from speedsmith.report import OptimizeReport
from speedsmith.settings import Settings

ProgressFn = Callable[[str, str], None]
"""``progress(phase, message)``; phase is one of ``workload``, ``generation``, ``verification``."""


def optimize(
    path: Path,
    qualname: str,
    settings: Settings,
    *,
    source: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> OptimizeReport:
    """Optimise ``qualname`` in the file at ``path``.

    ``source`` is the editor's text of the file (defaults to the file on disk); the returned
    report's ``edit`` is relative to it. User-level problems (no tests reach the function,
    syntax errors, missing model...) come back as verdict ``refused``/``error`` with a reason;
    never raises except ``speedsmith.errors.Cancelled`` once ``cancel`` is set.
    """
    raise NotImplementedError
