"""Originals that cannot be verified safely, and machines without a strong sandbox: refused
before any candidate is generated, with a reason naming what was seen and the setting that
opts in; the report and ``--json`` list the sandbox layers that were active."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from speedsmith.engine import optimize
from speedsmith.settings import Settings
from speedsmith.verify import confine

RIGHT = "def f(x):\n    return x + 1\n"


def project(tmp_path: Path, body: str, prelude: str = "") -> Path:
    """A throwaway project: ``mod.f`` with ``body``, a test calling it twice."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text("")
    (root / "mod.py").write_text(f"{prelude}\n\ndef f(x):\n{body}")
    (root / "test_mod.py").write_text(
        "from mod import f\n\n\ndef test_f():\n    assert f(1) == 2\n    assert f(5) == 6\n"
    )
    return root


def replay(tmp_path: Path, **overrides: Any) -> Settings:
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps({"candidates": [RIGHT]}), encoding="utf-8")
    fields: dict[str, Any] = {"backend": "replay", "replay_file": str(pool), "budget": 1}
    fields.update(overrides)
    return Settings(**fields)


SIDE_EFFECTS = [
    pytest.param(
        "    open('log.txt', 'a').write('x')\n    return x + 1\n",
        "",
        r"tried to write .*/log\.txt",
        id="appends-to-a-file",
    ),
    pytest.param(
        "    subprocess.run(['true'])\n    return x + 1\n",
        "import subprocess",
        r"tried to run true",
        id="spawns-a-process",
    ),
    pytest.param(
        "    os.remove('/nonexistent-speedsmith-file')\n    return x + 1\n",
        "import os",
        r"tried to remove /nonexistent-speedsmith-file",
        id="removes-a-file",
    ),
    pytest.param(
        "    socket.socket().close()\n    return x + 1\n",
        "import socket",
        r"tried to open a socket",
        id="opens-a-socket",
    ),
    pytest.param(
        "    random.random()\n    return x + 1\n",
        "import random",
        r"uses randomness",
        id="uses-randomness",
    ),
    pytest.param(
        "    uuid.uuid4()\n    return x + 1\n",
        "import uuid",
        r"uses randomness \(os\.urandom\)",
        id="draws-a-uuid",
    ),
    pytest.param(
        "    datetime.datetime.now()\n    return x + 1\n",
        "import datetime",
        r"reads the clock \(datetime\.now\)",
        id="reads-datetime-now",
    ),
    pytest.param(
        "    time()\n    return x + 1\n",
        "from time import time",
        r"reads the clock \(time\.time\)",
        id="reads-an-imported-clock",
    ),
]


@pytest.mark.parametrize(("body", "prelude", "pattern"), SIDE_EFFECTS)
def test_side_effecting_originals_are_refused(tmp_path, body, prelude, pattern):
    root = project(tmp_path, body, prelude)
    before = sorted(p.name for p in root.iterdir())
    report = optimize(root / "mod.py", "f", replay(tmp_path))
    assert report.verdict == "refused", report.reason
    assert report.reason.startswith("f cannot be verified safely: on the recorded calls it")
    assert re.search(pattern, report.reason), report.reason
    assert "allowSideEffects" in report.reason
    assert report.candidates.generated == 0
    # What the capture run (your own tests, trusted) wrote is the only trace.
    assert set(sorted(p.name for p in root.iterdir())) <= {*before, "log.txt"}


def test_opting_in_verifies_anyway(tmp_path):
    root = project(tmp_path, "    random.random()\n    return x + 1\n", "import random")
    report = optimize(root / "mod.py", "f", replay(tmp_path, allow_side_effects=True))
    assert report.verdict != "refused", report.reason
    assert report.candidates.generated == 1


def test_a_counter_is_not_deterministic(tmp_path):
    root = project(tmp_path, "    COUNT[0] += 1\n    return x + COUNT[0]\n")
    (root / "mod.py").write_text("COUNT = [0]\n" + (root / "mod.py").read_text())
    (root / "test_mod.py").write_text("from mod import f\n\n\ndef test_f():\n    f(1)\n")
    report = optimize(root / "mod.py", "f", replay(tmp_path))
    assert report.verdict == "refused"
    assert "not deterministic" in report.reason


def test_the_report_lists_the_active_layers(tmp_path):
    root = project(
        tmp_path, "    y = 0\n    for _ in range(x):\n        y += 1\n    return y + 1\n"
    )
    report = optimize(root / "mod.py", "f", replay(tmp_path))
    assert report.verdict in ("improved", "no-improvement"), report.reason
    assert report.to_json()["sandbox"] == list(report.sandbox)
    assert "read-only-root" in report.sandbox
    assert "pid-namespace" in report.sandbox
    assert "network-namespace" in report.sandbox
    if confine.landlock_abi() > 0:
        assert f"landlock-v{confine.landlock_abi()}" in report.sandbox


@pytest.fixture
def no_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine where neither bubblewrap nor ``unshare`` can create namespaces."""
    monkeypatch.setattr(confine, "bwrap_binary", lambda: None)
    monkeypatch.setattr(confine, "unshare_works", lambda: False)


@pytest.mark.usefixtures("no_namespaces")
def test_weak_platform_refuses_with_what_is_missing(tmp_path):
    root = project(tmp_path, "    return x + 1\n")
    report = optimize(root / "mod.py", "f", replay(tmp_path))
    assert report.verdict == "refused"
    assert report.reason.startswith("no strong sandbox for candidates:")
    assert "bubblewrap" in report.reason and "unshare" in report.reason
    assert 'sandbox = "weak"' in report.reason
    assert report.candidates.generated == 0
    assert report.recorded_calls == 0, "refused before the tests even ran"


@pytest.mark.usefixtures("no_namespaces")
def test_weak_platform_runs_when_the_user_opts_in(tmp_path):
    root = project(tmp_path, "    return x + 1\n")
    report = optimize(root / "mod.py", "f", replay(tmp_path, sandbox="weak"))
    assert report.verdict != "refused", report.reason
    assert report.sandbox[0] == "weak"
    assert "pid-namespace" not in report.sandbox


@pytest.mark.parametrize(
    "mode", [pytest.param("bubblewrap", id="bubblewrap"), pytest.param("namespaces", id="ns")]
)
@pytest.mark.usefixtures("no_namespaces")
def test_asking_for_a_missing_layer_is_refused(tmp_path, mode):
    root = project(tmp_path, "    return x + 1\n")
    report = optimize(root / "mod.py", "f", replay(tmp_path, sandbox=mode))
    assert report.verdict == "refused"
    assert "cannot create namespaces here" in report.reason


def test_cli_json_names_the_layers(tmp_path):
    root = project(tmp_path, "    return x + 1\n")
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps({"candidates": [RIGHT]}), encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "speedsmith",
            "optimize",
            "mod.py::f",
            "--json",
            "--backend",
            "replay",
            "--replay-file",
            str(pool),
            "--budget",
            "1",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    data = json.loads(done.stdout)
    assert "read-only-root" in data["sandbox"], done.stderr
    assert "sandbox: " in done.stderr
