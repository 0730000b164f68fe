"""The real server through vscode-languageclient's protocol library (node), as the extension
starts it: code action, then save -> background hint -> quick fix with the verified edit.

Runs ``editors/vscode/out/test/protocolClient.js`` (see its header). When
``editors/vscode/node_modules`` is missing the test installs it with ``npm ci`` (from
package-lock.json; needs the npm registry) and compiles the TypeScript first; it is skipped
only where node or npm is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VSCODE = REPO / "editors" / "vscode"
PROJECT = REPO / "tests" / "lsp" / "fixtures" / "project"
WRONG = "def sum_of_squares(nums):\n    return sum(nums)\n"
RIGHT = "def sum_of_squares(nums):\n    return sum([x * x for x in nums])\n"


def npm(*args: str, timeout: float) -> None:
    result = subprocess.run(
        ["npm", *args], cwd=VSCODE, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"npm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def compiled() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the VS Code client test")
    if not (VSCODE / "node_modules").is_dir():
        npm("ci", "--no-audit", "--no-fund", timeout=300)
    npm("run", "compile", timeout=120)
    return VSCODE / "out" / "test" / "protocolClient.js"


def test_protocol_client(compiled: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"candidates": [WRONG, RIGHT]}), encoding="utf-8")
    spec = tmp_path / "input.json"
    spec.write_text(
        json.dumps(
            {
                "python": sys.executable,
                "pythonPath": os.pathsep.join(
                    [str(REPO / "server"), *filter(None, [os.environ.get("PYTHONPATH")])]
                ),
                "cacheDir": str(tmp_path / "cache"),
                "project": str(project),
                "replayFile": str(replay),
            }
        ),
        encoding="utf-8",
    )

    result = subprocess.run(
        ["node", str(compiled), str(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["serverName"] == "speedsmith"
    assert set(seen["codeActionKinds"]) >= {"refactor.rewrite", "quickfix"}
    assert seen["actions"] == [
        {
            "title": "Optimize sum_of_squares",
            "kind": "refactor.rewrite",
            "command": "speedsmith.optimize",
        }
    ]
    assert seen["hint"]["source"] == "speedsmith"
    assert seen["hint"]["severity"] == 4  # Hint
    assert seen["hint"]["line"] == 3
    assert seen["hint"]["message"].startswith("verified ")
    fix = seen["fix"]
    assert fix is not None
    assert fix["kind"] == "quickfix"
    assert fix["version"] == 2
    assert fix["newText"].rstrip() == RIGHT.rstrip()


def test_protocol_client_optimizes_a_selection(compiled: Path, tmp_path: Path) -> None:
    """Lines 6-7 (the loop) selected as whole lines: the first action is "Optimize selection",
    and the edit the server asks for replaces those two lines only, in version 1."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    original = (project / "sumsq.py").read_text(encoding="utf-8")
    replay = tmp_path / "replay.json"
    loops = ["total = sum(nums)", "for x in nums:\n    total += x * x"]
    replay.write_text(json.dumps({"candidates": loops}), encoding="utf-8")
    spec = tmp_path / "input.json"
    spec.write_text(
        json.dumps(
            {
                "python": sys.executable,
                "pythonPath": os.pathsep.join(
                    [str(REPO / "server"), *filter(None, [os.environ.get("PYTHONPATH")])]
                ),
                "cacheDir": str(tmp_path / "cache"),
                "project": str(project),
                "replayFile": str(replay),
                "selection": {"start": 5, "end": 6},
            }
        ),
        encoding="utf-8",
    )

    result = subprocess.run(
        ["node", str(compiled), str(spec)], capture_output=True, text=True, timeout=300, check=False
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert [a["title"] for a in seen["actions"]] == [
        "Optimize selection (lines 6-7 of `sum_of_squares`)",
        "Optimize sum_of_squares",
    ]
    assert seen["report"]["verdict"] == "improved", seen["report"]
    assert seen["report"]["region"] == [6, 7]
    [params] = seen["applied"]
    [change] = params["edit"]["documentChanges"]
    assert change["textDocument"]["version"] == 1
    [edit] = change["edits"]
    old = original.split("\n")
    assert edit["range"] == {
        "start": {"line": 5, "character": 0},
        "end": {"line": 6, "character": len(old[6])},
    }
    assert edit["newText"] == "    for x in nums:\n        total += x * x"
