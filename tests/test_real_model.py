"""The real embedded model (SmolLM2-135M-Instruct on llama.cpp) through the whole pipe.

Few, small and seeded: the model is often wrong, so these tests assert safety (whatever is
proposed passes the project's own tests and is verified faster) and bookkeeping, not success.
Needs the model: ``speedsmith model fetch`` (``.ci/run`` does it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speedsmith import edits
from speedsmith.engine import optimize
from speedsmith.llm.model import embedded_model_path
from speedsmith.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shapes"

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module", autouse=True)
def _model_installed() -> None:
    if not embedded_model_path().is_file():
        pytest.fail("the embedded model is not installed: run `speedsmith model fetch`")


@pytest.mark.parametrize(
    ("qualname", "seed"),
    [
        pytest.param("sum_of_squares", 3, id="sum_of_squares"),
        pytest.param("dedupe", 1, id="dedupe"),
    ],
)
def test_real_model_proposals_pass_the_projects_tests(tmp_path: Path, qualname: str, seed: int):
    project = tmp_path / "shapes"
    shutil.copytree(EXAMPLE, project)
    file = project / "stats.py"
    original_text = file.read_text(encoding="utf-8")
    report = optimize(file, qualname, Settings(budget=8, seed=seed))

    assert report.verdict in {"improved", "no-improvement"}, report.reason
    assert report.model == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert report.candidates.generated - report.candidates.tool == 8  # + zero-token ones
    assert report.tokens.completion > 0 and report.tokens.prompt > 0
    assert file.read_text(encoding="utf-8") == original_text, "optimize must not write files"
    if report.verdict == "no-improvement":
        assert report.edit is None
        return
    assert report.edit is not None and report.ci95 is not None
    assert report.ci95[0] > 1.1
    assert "return sum(nums)\n" not in (report.optimized or "") + "\n"
    file.write_text(edits.apply_edit(original_text, report.edit), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
