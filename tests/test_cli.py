"""``speedsmith optimize`` as a user runs it: a real subprocess, JSON on stdout, --apply."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "shapes"
WRONG = "def sum_of_squares(nums):\n    return sum(nums)\n"
RIGHT = "def sum_of_squares(nums):\n    return sum([x * x for x in nums])\n"


def speedsmith(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "server"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "speedsmith", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "shapes"
    shutil.copytree(EXAMPLE, target)
    (target / "pool.json").write_text(json.dumps({"candidates": [WRONG, RIGHT]}))
    return target


@pytest.mark.parametrize(
    "apply", [pytest.param(False, id="report-only"), pytest.param(True, id="apply")]
)
def test_optimize_json_and_apply(project: Path, apply: bool):
    before = (project / "stats.py").read_text()
    args = ["optimize", "stats.py::sum_of_squares", "--backend", "replay"]
    args += ["--replay-file", "pool.json", "--budget", "2", "--seed", "3", "--json"]
    done = speedsmith(project, *args, *(["--apply"] if apply else []))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["target"] == "stats.py::sum_of_squares"
    assert data["verdict"] == "improved"
    assert data["candidates"] == {
        "generated": 2,
        "parsed": 2,
        "truncated": 0,
        "equivalent": 1,
        "faster": 1,
        "tool": 0,
        "region": 0,
        "unparsed": {},
    }
    assert data["ci95"][0] > 1.1 and data["speedup"] >= data["ci95"][0]
    assert set(data["seconds"]) >= {"workload", "generation", "verification", "total"}
    assert data["optimized"] == RIGHT.rstrip("\n")
    assert "+    return sum([x * x for x in nums])" in data["diff"]
    after = (project / "stats.py").read_text()
    if apply:
        assert after == before.replace(
            "    total = 0\n    for i in range(len(nums)):\n"
            "        total = total + nums[i] * nums[i]\n    return total",
            "    return sum([x * x for x in nums])",
        )
    else:
        assert after == before


@pytest.mark.parametrize(
    ("target", "code", "verdict"),
    [
        pytest.param("stats.py::missing", 1, "error", id="unknown-function"),
        pytest.param("nofile.py::f", 2, None, id="unknown-file"),
        pytest.param("stats.py", 2, None, id="no-qualname"),
    ],
)
def test_bad_targets(project: Path, target: str, code: int, verdict: str | None):
    done = speedsmith(
        project, "optimize", target, "--backend", "replay", "--replay-file", "pool.json", "--json"
    )
    assert done.returncode == code
    assert "error" in done.stderr
    if verdict:
        assert json.loads(done.stdout)["verdict"] == verdict


def test_missing_model_says_how_to_fix(project: Path, tmp_path: Path):
    done = speedsmith(
        project,
        "optimize",
        "stats.py::sum_of_squares",
        "--model",
        str(tmp_path / "x.gguf"),
        "--json",
    )
    assert done.returncode == 1
    assert "model file not found" in json.loads(done.stdout)["reason"]


@pytest.mark.parametrize(
    ("candidate", "equivalent", "reason"),
    [
        pytest.param(WRONG, False, "expected 14, got 6", id="wrong"),
        pytest.param(RIGHT, True, "95% CI", id="right"),
        pytest.param("def other(nums):\n    return 0\n", False, "renamed", id="renamed"),
    ],
)
def test_verify_command(project: Path, candidate: str, equivalent: bool, reason: str):
    (project / "candidate.py").write_text(candidate)
    done = speedsmith(
        project, "verify", "stats.py::sum_of_squares", "--candidate", "candidate.py", "--json"
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) >= {"equivalent", "reason", "mismatches", "speedup", "ci95", "faster"}
    assert data["equivalent"] is equivalent
    assert reason in data["reason"]
    assert data["faster"] is (equivalent and data["ci95"][0] > 1.1)
