"""How the project's test run is shaped: which files run, which plugins load, what a failed or
overlong run says."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from speedsmith.settings import Settings
from speedsmith.target import resolve_target
from speedsmith.workload import capture, record_workload, selection

MODULE = "def double(x):\n    return 2 * x\n\n\ndef indirect(x):\n    return double(x) + 1\n"


def _unrelated(count: int) -> dict[str, str]:
    return {
        f"tests/test_other{i}.py": f"def test_{i}():\n    assert {i} == {i}\n" for i in range(count)
    }


def test_large_suites_run_only_the_files_that_name_the_function(make_project, tmp_path: Path):
    project = make_project(
        {
            "pkg/__init__.py": "",
            "pkg/mod.py": MODULE,
            "tests/test_double.py": "from pkg.mod import double\n\n\n"
            "def test_double():\n    assert double(2) == 4\n",
            **_unrelated(12),
        }
    )
    workload = record_workload(project.path("pkg/mod.py"), "double", out_dir=tmp_path)
    assert (workload.calls, workload.selected_files) == (1, 1)
    assert [Path(t.partition("::")[0]).name for t in workload.reached_tests] == ["test_double.py"]


def test_selection_falls_back_to_the_whole_suite(make_project, tmp_path: Path):
    """The one file naming ``double`` never calls it; the tests reach it through ``api``."""
    project = make_project(
        {
            "pkg/__init__.py": "",
            "pkg/mod.py": MODULE,
            "pkg/api.py": "from pkg.mod import indirect as entry\n",
            "tests/test_api.py": "from pkg.api import entry\n\n\n"
            "def test_entry():\n    assert entry(2) == 5\n",
            "tests/test_docs.py": "def test_docs():\n    assert 'double' in 'see double()'\n",
            **_unrelated(12),
        }
    )
    target = resolve_target(project.path("pkg/mod.py"), "double")
    assert selection.select_test_files(target) == (project.path("tests/test_docs.py"),)
    workload = record_workload(target, out_dir=tmp_path)
    assert (workload.calls, workload.selected_files) == (1, 0)


def test_a_broken_unrelated_test_file_does_not_stop_recording(make_project, tmp_path: Path):
    project = make_project(
        {
            "mod.py": MODULE,
            "test_mod.py": "from mod import double\n\n\ndef test_d():\n    assert double(1) == 2\n",
            "test_broken.py": "import not_installed_anywhere\n",
        }
    )
    workload = record_workload(project.path("mod.py"), "double", out_dir=tmp_path)
    assert (workload.calls, workload.run_error) == (1, "")


def test_a_run_that_collects_nothing_shows_pytests_errors(make_project, tmp_path: Path):
    project = make_project(
        {
            "mod.py": MODULE,
            "test_mod.py": "import not_installed_anywhere\nfrom mod import double\n\n\n"
            "def test_d():\n    assert double(1) == 2\n",
        }
    )
    workload = record_workload(project.path("mod.py"), "double", out_dir=tmp_path)
    assert workload.calls == 0
    assert "the project's tests did not run" in workload.run_error
    assert "not_installed_anywhere" in workload.run_error


def test_the_time_limit_keeps_what_was_recorded(
    make_project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """At the limit pytest is interrupted, not killed: the calls recorded so far are used.
    The limit leaves a busy machine time to start pytest and run ``test_a``, and the grace
    after the interrupt only catches a pytest that hangs. SIGINT is ignored here, as in a
    background job of a non-interactive shell: the recording run still takes the interrupt."""
    monkeypatch.setattr(capture, "INTERRUPT_GRACE_SECONDS", 120.0)
    project = make_project(
        {
            "mod.py": MODULE,
            "test_a.py": "from mod import double\n\n\ndef test_a():\n    assert double(1) == 2\n",
            "test_b.py": "import time\n\n\ndef test_b():\n    time.sleep(600)\n",
        }
    )
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the child
    try:
        workload = record_workload(project.path("mod.py"), "double", out_dir=tmp_path, timeout=40)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert workload.calls == 1, workload.pytest_output
    assert workload.truncated
    assert workload.run_error == ""


@pytest.mark.parametrize(
    ("declared", "blocked"),
    [
        pytest.param("", ("asyncio", "pytest_lsp"), id="undeclared-plugins-blocked"),
        pytest.param(
            '[project]\ndependencies = ["pytest-asyncio>=0.23"]\n',
            ("pytest_lsp",),
            id="declared-plugin-kept",
        ),
    ],
)
def test_speedsmiths_own_plugins_stay_out(
    make_project, monkeypatch: pytest.MonkeyPatch, declared: str, blocked: tuple[str, ...]
):
    monkeypatch.setattr(
        selection,
        "own_plugins",
        lambda: (("asyncio", "pytest-asyncio"), ("pytest_lsp", "pytest-lsp")),
    )
    project = make_project({"pyproject.toml": declared, "mod.py": MODULE})
    target = resolve_target(project.path("mod.py"), "double")
    assert selection.blocked_plugins(target) == blocked


def test_a_leaking_plugin_no_longer_breaks_a_strict_suite(make_project, tmp_path: Path):
    """``filterwarnings = error``: a warning raised by a plugin the project never asked for
    (here a ``pytest11`` entry point of speedsmith's environment) used to end the run with
    an INTERNALERROR. Every installed plugin not declared by the project is switched off."""
    project = make_project(
        {
            "pytest.ini": "[pytest]\nfilterwarnings =\n    error\n",
            "mod.py": MODULE,
            "test_mod.py": "from mod import double\n\n\ndef test_d():\n    assert double(1) == 2\n",
        }
    )
    target = resolve_target(project.path("mod.py"), "double")
    workload = record_workload(target, out_dir=tmp_path)
    assert (workload.calls, workload.run_error) == (1, ""), workload.pytest_output
    assert set(selection.blocked_plugins(target)) == {name for name, _ in selection.own_plugins()}


def test_progress_counts_the_tests(make_project, tmp_path: Path):
    project = make_project(
        {
            "mod.py": MODULE,
            "test_mod.py": "from mod import double\n\n\n"
            + "".join(
                f"def test_{i}():\n    assert double({i}) == {2 * i}\n\n\n" for i in range(5)
            ),
        }
    )
    seen: list[tuple[int, int]] = []
    record_workload(
        project.path("mod.py"),
        "double",
        out_dir=tmp_path,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (5, 5)
    assert all(done <= total for done, total in seen)


MOCKED = {
    "fmt.py": "def shout(text):\n    return text.upper() + '!'\n",
    "mod.py": "import fmt\n\n\ndef label(x):\n    return fmt.shout(str(x))\n",
}


@pytest.mark.parametrize(
    ("tests", "verdict", "calls", "reason"),
    [
        pytest.param(
            "import fmt\nfrom mod import label\n\n\n"
            "def test_plain():\n    assert label(1) == '1!'\n    assert label('a') == 'A!'\n\n\n"
            "def test_mocked(monkeypatch):\n"
            "    monkeypatch.setattr(fmt, 'shout', lambda text: 'mocked')\n"
            "    assert label(2) == 'mocked'\n",
            "no-improvement",
            2,
            "1 candidates",
            id="mocked-call-left-out",
        ),
        pytest.param(
            "import fmt\nfrom mod import label\n\n\n"
            "def test_mocked(monkeypatch):\n"
            "    monkeypatch.setattr(fmt, 'shout', lambda text: 'mocked')\n"
            "    assert label(2) == 'mocked'\n",
            "refused",
            1,
            "a second run differs from the recorded one",
            id="every-call-mocked-refused",
        ),
    ],
)
def test_calls_that_depend_on_their_tests_set_up(
    make_project, tmp_path: Path, tests: str, verdict: str, calls: int, reason: str
):
    """A call whose test patched what the function uses replays differently outside it: it
    is left out (the final gate still runs its test); if every call is like that, nothing
    can be verified."""
    import json

    from speedsmith.engine import optimize
    from speedsmith.settings import Settings

    project = make_project({**MOCKED, "test_mod.py": tests})
    pool = tmp_path / "pool.json"
    candidate = "def label(x):\n    return fmt.shout(str(x)) + ''\n"
    pool.write_text(json.dumps({"candidates": [candidate]}), encoding="utf-8")
    settings = Settings(backend="replay", replay_file=str(pool), seed=1, budget=1)
    report = optimize(project.path("mod.py"), "label", settings)
    assert report.verdict == verdict, report.reason
    assert report.recorded_calls == calls
    assert reason in report.reason


@pytest.mark.parametrize(
    ("files", "file"),
    [
        pytest.param(
            {
                "src/acme/tools/text.py": "def shout(s):\n    return s.upper()\n",
                "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["src"]\n',
                "tests/test_text.py": "from acme.tools.text import shout\n\n\n"
                "def test_shout():\n    assert shout('a') == 'A'\n    assert shout('') == ''\n",
            },
            "src/acme/tools/text.py",
            id="namespace-package-src",
        ),
        pytest.param(
            {
                "acme/tools/__init__.py": "",
                "acme/tools/text.py": "def shout(s):\n    return s.upper()\n",
                "tests/test_text.py": "from acme.tools.text import shout\n\n\n"
                "def test_shout():\n    assert shout('a') == 'A'\n    assert shout('') == ''\n",
            },
            "acme/tools/text.py",
            id="regular-package-inside-namespace-package",
        ),
    ],
)
def test_namespace_packages_record_and_verify(
    make_project, tmp_path: Path, files: dict[str, str], file: str
):
    from speedsmith.verify.verifier import verify

    project = make_project(files)
    target = resolve_target(project.path(file), "shout")
    assert target.module == "acme.tools.text"
    workload = record_workload(target, out_dir=tmp_path)
    assert (workload.calls, workload.run_error, workload.error) == (2, "", "")
    assert verify(target, "shout", workload, None, Settings()).equivalent
    wrong = "def shout(s):\n    return s.lower()\n"
    assert not verify(target, "shout", workload, wrong, Settings(), timing=False).equivalent
