"""The search strategies with the real embedded model on the example's ``sum_of_squares``.

Seeded and small (a few hundred tokens): asserts bookkeeping and safety (the token budget
holds; whatever is proposed passes the project's tests), not success.
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


@pytest.mark.parametrize(
    ("strategy", "tokens"),
    [pytest.param("maxmode", 200, id="maxmode")],
)
def test_strategy_with_the_real_model(tmp_path: Path, strategy: str, tokens: int):
    if not embedded_model_path().is_file():
        pytest.fail("the embedded model is not installed: run `speedsmith model fetch`")
    project = tmp_path / "shapes"
    shutil.copytree(EXAMPLE, project)
    file = project / "stats.py"
    original = file.read_text(encoding="utf-8")
    settings = Settings(
        strategy=strategy,
        budget=tokens,
        seed=3,
        maxmode_width=2,
        maxmode_depth=2,
        maxmode_hypotheses=2,
        budget_seconds=20.0,
    )
    report = optimize(file, "sum_of_squares", settings)

    assert report.verdict in {"improved", "no-improvement"}, report.reason
    assert 0 < report.tokens.completion <= tokens
    assert report.candidates.generated >= 2
    assert file.read_text(encoding="utf-8") == original
    if report.verdict == "no-improvement":
        return
    assert report.edit is not None and report.ci95 is not None and report.ci95[0] > 1.1
    file.write_text(edits.apply_edit(original, report.edit), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
