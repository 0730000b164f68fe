"""The speedsmith language server with ``engine.optimize`` replaced by a scripted stand-in.

The script is the JSON file named by the ``replayFile`` setting::

    {"steps": ["a progress message", ...],  # one progress callback each, ``delay`` apart
     "delay": 0.1,                            # seconds before each step (cancellable)
     "wait_for_cancel": false,                # after the steps, block until cancelled
     "verdict": "improved",                   # or no-improvement, refused, error
     "reason": "...",
     "new_text": "def f():\\n    return 1",   # for ``improved``: replaces the function
     "noise": false,                          # print to stdout, in-process and from a child
     "child_pid_file": null,                  # run a child for the whole run (pid written
                                              # there), killed when the run ends, as the
                                              # engine does with its sandboxed children
     "wait_for_file": null}                   # after the steps, block until this file exists

It only knows top-level functions (``def name`` at column 0), which is all the tests use.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import speedsmith.engine
from speedsmith.errors import Cancelled
from speedsmith.lsp.app import start
from speedsmith.report import CandidateCounts, FunctionEdit, OptimizeReport
from speedsmith.settings import Settings


def function_span(source: str, name: str) -> tuple[int, int]:
    """Byte span of the top-level ``def name`` through its last non-blank line."""
    match = re.search(rf"^def {re.escape(name)}\b.*?(?=^\S|\Z)", source, re.M | re.S)
    if match is None:
        raise LookupError(name)
    body = match.group(0).rstrip()
    start = len(source[: match.start()].encode())
    return start, start + len(body.encode())


def fake_optimize(
    path: Path,
    qualname: str,
    settings: Settings,
    *,
    source: str | None = None,
    progress: speedsmith.engine.ProgressFn | None = None,
    cancel: threading.Event | None = None,
    **more: Any,
) -> OptimizeReport:
    """``engine.optimize``'s signature (options it gains later, e.g. a region, are ignored)."""
    assert settings.replay_file is not None
    script = json.loads(Path(settings.replay_file).read_text(encoding="utf-8"))
    text = path.read_text(encoding="utf-8") if source is None else source
    cancel = cancel or threading.Event()
    if script.get("noise"):
        print("noise from the engine")
        subprocess.run([sys.executable, "-c", "print('noise from a child'); input()"], check=False)
    child = None
    if script.get("child_pid_file"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        Path(script["child_pid_file"]).write_text(str(child.pid), encoding="utf-8")
    try:
        for step in script.get("steps", []):
            if cancel.wait(script.get("delay", 0.0)):
                raise Cancelled("cancelled")
            if progress is not None:
                progress("generation", step)
        if script.get("wait_for_cancel"):
            cancel.wait(60)
        release = script.get("wait_for_file")
        while release and not Path(release).exists() and not cancel.wait(0.02):
            pass
        if cancel.is_set():
            raise Cancelled("cancelled")
    finally:
        if child is not None:
            child.kill()
            child.wait()
    verdict = script["verdict"]
    improved = verdict == "improved"
    edit = None
    if improved:
        start, end = function_span(text, qualname)
        edit = FunctionEdit(start_byte=start, end_byte=end, new_text=script["new_text"])
    return OptimizeReport(
        target=f"{path}::{qualname}",
        verdict=verdict,
        reason=script.get("reason", ""),
        model="fake",
        original=text,
        speedup=2.0 if improved else None,
        ci95=(1.8, 2.2) if improved else None,
        candidates=CandidateCounts(generated=2, parsed=2, equivalent=1, faster=int(improved)),
        optimized=script.get("new_text"),
        edit=edit,
    )


if __name__ == "__main__":
    speedsmith.engine.optimize = fake_optimize
    start()
