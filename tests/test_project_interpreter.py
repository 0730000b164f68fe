"""The project's own interpreter: a src-layout project developed in its own ``.venv``.

The virtualenv here is built offline: ``python -m venv --without-pip`` plus a ``.pth`` file
that exposes pytest (and only pytest and its dependencies) from speedsmith's environment, the
project's ``src`` folder (as ``pip install -e .`` would) and a dependency installed only
there. speedsmith's own interpreter cannot import the project; the project's can.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from speedsmith.engine import optimize
from speedsmith.settings import Settings
from speedsmith.target import resolve_target
from speedsmith.verify.verifier import verify
from speedsmith.workload import record_workload

PYTEST_PACKAGES = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py")

MODULE = """
from onlyhere import scale


def total(items: list[int]) -> int:
    result = 0
    for item in items:
        result = result + scale(item)
    return result
"""

TESTS = """
from fastpkg.core import total


def test_total():
    assert total([1, 2, 3]) == 12
    assert total([]) == 0
    assert total(list(range(10))) == 90
"""

SLOW_CANDIDATE = (
    "def total(items: list[int]) -> int:\n    return sum(scale(item) for item in items)\n"
)
WRONG_OFF_THE_RECORD = (
    "def total(items: list[int]) -> int:\n    return sum(scale(abs(item)) for item in items)\n"
)


def _site_packages(venv: Path) -> Path:
    found = list((venv / "lib").glob("python3*/site-packages"))
    assert found, list(venv.rglob("*"))[:20]
    return found[0]


def _build_project(root: Path) -> Path:
    """``root/proj``: src layout, its own ``.venv`` with pytest and ``onlyhere``."""
    project = root / "proj"
    package = project / "src" / "fastpkg"
    package.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "fastpkg"\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
        encoding="utf-8",
    )
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "core.py").write_text(textwrap.dedent(MODULE).lstrip(), encoding="utf-8")
    (project / "tests").mkdir()
    (project / "tests" / "test_core.py").write_text(
        textwrap.dedent(TESTS).lstrip(), encoding="utf-8"
    )
    venv = project / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = _site_packages(venv)
    shared = root / "shared-pytest"
    shared.mkdir()
    for name in PYTEST_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        source = Path(spec.origin)
        if source.name == "__init__.py":
            (shared / name).symlink_to(source.parent, target_is_directory=True)
        else:
            (shared / source.name).symlink_to(source)
    (site / "onlyhere.py").write_text("def scale(x):\n    return 2 * x\n", encoding="utf-8")
    (site / "links.pth").write_text(f"{shared}\n{project / 'src'}\n", encoding="utf-8")
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_project(tmp_path_factory.mktemp("interpreter"))


def test_the_project_venv_runs_the_tests(project: Path, tmp_path: Path) -> None:
    target = resolve_target(project / "src" / "fastpkg" / "core.py", "total")
    assert target.interpreter.source == ".venv"
    assert (target.module, target.import_root) == ("fastpkg.core", project / "src")
    workload = record_workload(target, out_dir=tmp_path)
    assert workload.run_error == "", workload.pytest_output
    assert (workload.calls, workload.python) == (3, str(project / ".venv" / "bin" / "python"))


def test_speedsmith_interpreter_shows_pytest_error_lines(project: Path, tmp_path: Path) -> None:
    target = resolve_target(project / "src" / "fastpkg" / "core.py", "total", sys.executable)
    workload = record_workload(target, out_dir=tmp_path)
    assert workload.calls == 0
    assert "the project's tests did not run" in workload.run_error
    assert "onlyhere" in workload.run_error  # pytest's own ModuleNotFoundError line


def test_generated_inputs_still_run_in_a_venv_without_hypothesis(
    project: Path, tmp_path: Path
) -> None:
    """The project's venv has no Hypothesis: speedsmith's copy is offered at the end of
    sys.path, so a candidate wrong only off the recorded inputs is still caught."""
    target = resolve_target(project / "src" / "fastpkg" / "core.py", "total")
    workload = record_workload(target, out_dir=tmp_path)
    settings = Settings(generated_examples=50)
    verdict = verify(target, "total", workload, WRONG_OFF_THE_RECORD, settings, timing=False)
    assert not verdict.equivalent
    assert "generated" in verdict.reason or "input" in verdict.reason, verdict.reason


def test_optimize_reports_the_interpreter(project: Path, tmp_path: Path) -> None:
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps({"candidates": [SLOW_CANDIDATE]}), encoding="utf-8")
    settings = Settings(backend="replay", replay_file=str(pool), seed=1, budget=1)
    report = optimize(project / "src" / "fastpkg" / "core.py", "total", settings)
    assert report.python == str(project / ".venv" / "bin" / "python")
    assert report.recorded_calls == 3
    assert report.verdict in ("improved", "no-improvement"), report.reason
    assert report.candidates.equivalent == 1, report.reason
