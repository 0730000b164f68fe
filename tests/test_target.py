"""The target: project root, import name, pytest configuration and interpreter, resolved once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from speedsmith.target import (
    InterpreterError,
    find_interpreter,
    interpreter_problem,
    pytest_config,
    resolve_target,
)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _fake_venv(folder: Path) -> Path:
    """A folder that looks like a virtualenv whose python is this interpreter."""
    (folder / "bin").mkdir(parents=True)
    (folder / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    python = folder / "bin" / "python"
    python.symlink_to(sys.executable)
    return python


@pytest.mark.parametrize(
    ("files", "file", "module", "import_root"),
    [
        pytest.param({"pyproject.toml": "", "mod.py": ""}, "mod.py", "mod", ".", id="flat-module"),
        pytest.param(
            {"setup.py": "", "pkg/__init__.py": "", "pkg/core.py": ""},
            "pkg/core.py",
            "pkg.core",
            ".",
            id="package-module",
        ),
        pytest.param(
            {"pyproject.toml": "", "pkg/__init__.py": "def f(): pass\n"},
            "pkg/__init__.py",
            "pkg",
            ".",
            id="package-init-is-the-package",
        ),
        pytest.param(
            {"pyproject.toml": "", "pkg/__init__.py": "", "pkg/sub/__init__.py": ""},
            "pkg/sub/__init__.py",
            "pkg.sub",
            ".",
            id="subpackage-init",
        ),
        pytest.param(
            {"pyproject.toml": "", "src/pkg/__init__.py": "", "src/pkg/m.py": ""},
            "src/pkg/m.py",
            "pkg.m",
            "src",
            id="src-layout",
        ),
        pytest.param(
            {"pyproject.toml": "", "ns/pkg/__init__.py": "", "ns/pkg/m.py": ""},
            "ns/pkg/m.py",
            "ns.pkg.m",
            ".",
            id="namespace-package",
        ),
        pytest.param(
            {"pyproject.toml": "", "src/ns/tool/m.py": ""},
            "src/ns/tool/m.py",
            "ns.tool.m",
            "src",
            id="namespace-package-src-layout",
        ),
        pytest.param(
            {
                "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["lib"]\n',
                "lib/helpers/m.py": "",
            },
            "lib/helpers/m.py",
            "helpers.m",
            "lib",
            id="pytest-pythonpath-root",
        ),
    ],
)
def test_import_name(
    tmp_path: Path, files: dict[str, str], file: str, module: str, import_root: str
) -> None:
    _write(tmp_path, files)
    target = resolve_target(tmp_path / file, "f")
    assert target.root == tmp_path
    assert target.module == module
    assert target.import_root == (tmp_path / import_root).resolve()
    assert target.sys_path[0] == str(target.import_root)


@pytest.mark.parametrize(
    ("files", "config_file", "testpaths", "doctests"),
    [
        pytest.param({"pyproject.toml": ""}, None, (), False, id="none"),
        pytest.param(
            {
                "pyproject.toml": "[tool.pytest.ini_options]\n"
                'testpaths = ["tests"]\naddopts = "--doctest-modules -q"\n'
            },
            "pyproject.toml",
            ("tests",),
            True,
            id="pyproject",
        ),
        pytest.param(
            {"pyproject.toml": "", "pytest.ini": "[pytest]\ntestpaths = t1 t2\n"},
            "pytest.ini",
            ("t1", "t2"),
            False,
            id="pytest-ini-wins",
        ),
        pytest.param(
            {"tox.ini": "[tox]\n[pytest]\naddopts = --doctest-modules\n", "setup.py": ""},
            "tox.ini",
            (),
            True,
            id="tox-ini",
        ),
        pytest.param(
            {"setup.cfg": "[tool:pytest]\ntestpaths =\n    tests\n"},
            "setup.cfg",
            ("tests",),
            False,
            id="setup-cfg",
        ),
        pytest.param(
            {"setup.cfg": "[metadata]\nname = x\n", "tox.ini": "[tox]\n"},
            None,
            (),
            False,
            id="sections-without-pytest",
        ),
    ],
)
def test_pytest_configuration(
    tmp_path: Path,
    files: dict[str, str],
    config_file: str | None,
    testpaths: tuple[str, ...],
    doctests: bool,
) -> None:
    _write(tmp_path, files)
    config = pytest_config(tmp_path)
    assert config.config_file == (tmp_path / config_file if config_file else None)
    assert config.testpaths == testpaths
    assert config.doctest_modules is doctests


def test_interpreter_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    assert find_interpreter(project).source == "speedsmith"
    venv = _fake_venv(project / "venv")
    assert find_interpreter(project) == find_interpreter(project)
    assert find_interpreter(project).path == str(venv)
    dot_venv = _fake_venv(project / ".venv")
    assert (find_interpreter(project).source, find_interpreter(project).path) == (
        ".venv",
        str(dot_venv),
    )
    active = _fake_venv(tmp_path / "active")
    monkeypatch.setenv("VIRTUAL_ENV", str(active.parent.parent))
    assert find_interpreter(project).source == "VIRTUAL_ENV"
    assert find_interpreter(project, str(venv)).source == "setting"
    assert find_interpreter(project, str(project / "venv")).path == str(venv)
    # speedsmith's own environment, when it is the active one, is no better a guess.
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    assert find_interpreter(project).source == ".venv"


def test_a_bad_python_setting_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InterpreterError, match="not an executable Python interpreter"):
        find_interpreter(tmp_path, str(tmp_path / "nope" / "python"))


def test_an_interpreter_without_pytest_says_how_to_fix_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "m.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    target = resolve_target(tmp_path / "m.py", "f")
    assert target.interpreter.source == "speedsmith"
    assert interpreter_problem(target) is None
    target = resolve_target(tmp_path / "m.py", "f", str(bare))
    problem = interpreter_problem(target)
    assert problem is not None
    assert "pytest is not installed" in problem
    assert f"{bare}/bin/python -m pip install pytest" in problem
