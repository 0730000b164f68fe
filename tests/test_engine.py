"""The engine end to end on the example project, with the replay backend (no model needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from speedsmith.engine import optimize
from speedsmith.errors import Cancelled
from speedsmith.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shapes"
WRONG = "def sum_of_squares(nums):\n    return sum(nums)\n"
RIGHT = "def sum_of_squares(nums):\n    return sum([x * x for x in nums])\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "shapes"
    shutil.copytree(EXAMPLE, target)
    return target


def replay(tmp_path: Path, *candidates: str, **overrides: object) -> Settings:
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps({"candidates": list(candidates)}), encoding="utf-8")
    fields: dict[str, object] = {"backend": "replay", "replay_file": str(pool), "seed": 1}
    fields["budget"] = len(candidates)
    fields.update(overrides)
    return Settings(**fields)  # type: ignore[arg-type]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_wrong_candidate_is_never_proposed_and_right_one_is(project: Path, tmp_path: Path):
    before = snapshot(project)
    report = optimize(project / "stats.py", "sum_of_squares", replay(tmp_path, WRONG, RIGHT))
    assert report.verdict == "improved", report.reason
    assert report.optimized == RIGHT.rstrip("\n")
    assert "return sum(nums)" not in (report.diff or "")
    assert report.candidates.generated == 2
    assert report.candidates.equivalent == 1
    assert report.speedup is not None and report.ci95 is not None
    assert report.ci95[0] > 1.1
    # The report's figures and its reason (the verifier's words) show the same digits.
    lo, hi = report.ci95
    assert report.reason.startswith(f"{report.speedup:.2f}x (95% CI {lo:.2f}-{hi:.2f})")
    assert report.edit is not None
    source = (project / "stats.py").read_text(encoding="utf-8")
    assert (
        source.encode()[report.edit.start_byte : report.edit.end_byte]
        .decode()
        .startswith("def sum_of_squares")
    )
    assert snapshot(project) == before, "the engine must never write to the project"


def test_only_wrong_candidates_give_no_improvement(project: Path, tmp_path: Path):
    report = optimize(project / "stats.py", "sum_of_squares", replay(tmp_path, WRONG, WRONG))
    assert report.verdict == "no-improvement"
    assert report.edit is None and report.optimized is None
    assert report.candidates.equivalent == 0
    assert "2 candidates" in report.summary()


@pytest.mark.parametrize(
    ("setup", "qualname", "verdict", "reason"),
    [
        pytest.param(None, "nope", "error", "no function", id="target-missing"),
        pytest.param(
            ("stats.py", "def broken(:\n"), "sum_of_squares", "error", "syntax error", id="syntax"
        ),
        pytest.param(
            ("untested.py", "def lonely(x):\n    return x + 1\n"),
            "lonely",
            "refused",
            "no test calls lonely",
            id="no-tests",
        ),
        pytest.param(
            (
                "clock.py",
                "import time\n\n\ndef stamp(x):\n    return (x, time.perf_counter_ns())\n",
            ),
            "stamp",
            "refused",
            "stamp cannot be verified safely: on the recorded calls it reads the clock "
            "(time.perf_counter_ns). set allowsideeffects = true",
            id="nondeterministic",
        ),
    ],
)
def test_refusals_and_errors(project, tmp_path, setup, qualname, verdict, reason):
    file = project / "stats.py"
    if setup is not None:
        name, text = setup
        file = project / name
        if name == "stats.py":
            text = file.read_text() + "\n" + text
        file.write_text(text, encoding="utf-8")
        if name == "clock.py":
            (project / "test_clock.py").write_text(
                "from clock import stamp\n\ndef test_stamp():\n    assert stamp(3)[0] == 3\n"
            )
    report = optimize(file, qualname, replay(tmp_path, RIGHT))
    assert report.verdict == verdict
    assert reason in report.reason.lower()
    assert report.edit is None


def test_unsaved_buffer_is_refused(project: Path, tmp_path: Path):
    file = project / "stats.py"
    buffer = file.read_text().replace("total = 0", "total = 0  # edited")
    report = optimize(file, "sum_of_squares", replay(tmp_path, RIGHT), source=buffer)
    assert report.verdict == "refused"
    assert "save the file" in report.reason


def test_missing_model_is_a_clear_error(project: Path, tmp_path: Path):
    settings = Settings(model_path=str(tmp_path / "missing.gguf"))
    report = optimize(project / "stats.py", "sum_of_squares", settings)
    assert report.verdict == "error"
    assert "model file not found" in report.reason


def test_cancel_stops_the_run(project: Path, tmp_path: Path):
    import threading

    cancel = threading.Event()

    def progress(phase: str, message: str) -> None:
        if phase == "generation":
            cancel.set()

    with pytest.raises(Cancelled):
        optimize(
            project / "stats.py",
            "sum_of_squares",
            replay(tmp_path, RIGHT),
            progress=progress,
            cancel=cancel,
        )
