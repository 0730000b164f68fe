"""No survivors when speedsmith itself dies: a verification whose parent is killed with
SIGKILL mid-run leaves no sandboxed process behind (``--die-with-parent`` / ``--kill-child``
and the PID namespace), whatever the candidate was doing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from hostile_world import marker_processes

from speedsmith.verify.confine import SandboxUnavailable, strongest

HANG_SECONDS = 120.0
"""Only catches hangs: every wait below ends as soon as its event happens."""

DRIVER = """
import sys
from pathlib import Path
from speedsmith.settings import Settings
from speedsmith.verify.verifier import verify
from speedsmith.workload import record_workload

root, python, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
workload = record_workload(root / "mod.py", "f", out_dir=root.parent / "out", python=python)
assert workload.calls > 0, workload.pytest_output
print("recorded", flush=True)
candidate = "def f(x):\\n    while True:\\n        pass\\n"
verify(root / "mod.py", "f", workload, candidate,
       Settings(python=python, sandbox=mode, candidate_timeout_seconds=600))
"""


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + HANG_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"hung waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "mode", [pytest.param("bubblewrap", id="bwrap"), pytest.param("namespaces", id="unshare")]
)
def test_killing_speedsmith_kills_the_sandbox(tmp_path: Path, mode: str):
    try:
        strongest(mode)
    except SandboxUnavailable as err:
        pytest.skip(str(err))
    marker = "ssmk" + uuid.uuid4().hex[:10]
    root = tmp_path / "project"
    root.mkdir()
    (tmp_path / "out").mkdir()
    (root / "pyproject.toml").write_text("")
    (root / "mod.py").write_text("def f(x):\n    return x + 1\n")
    (root / "test_mod.py").write_text("from mod import f\n\ndef test_f():\n    assert f(1) == 2\n")
    # The interpreter under a name carrying the marker: the harness's command line shows it.
    python = tmp_path / f"python-{marker}"
    python.symlink_to(sys.executable)
    driver = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(DRIVER), str(root), str(python), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert driver.stdout is not None
        assert driver.stdout.readline().strip() == "recorded"
        # The harness is up, spinning in the candidate's loop.
        wait_for(lambda: any("harness.py" in c for c in marker_processes(marker).values()), "it")
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=HANG_SECONDS)
        wait_for(lambda: not marker_processes(marker), "the sandbox to die with its parent")
    finally:
        if driver.poll() is None:
            driver.kill()
        for pid in marker_processes(marker):
            os.kill(pid, signal.SIGKILL)
