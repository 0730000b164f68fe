"""speedsmith on real projects: every target's verdict, and every proposed edit re-tested.

Usage (from the repository root; speedsmith installed in ``.venv``)::

    .venv/bin/python scripts/bench_realworld.py [--budget quick] [--seed 1]
        [--only PROJECT ...] [--match TEXT ...] [--targets-limit N] [--timeout 900]
        [--out results.json] [--keep]

For each project the script:

1. copies it into a fresh temporary directory that holds nothing else (speedsmith never runs
   on /work/shared in place: a candidate that escaped the sandbox once deleted neighbouring
   files), creates the project's own ``.venv`` there (``python -m venv .venv`` then ``pip
   install -e . pytest`` plus what its tests need) and runs its whole test suite once (the
   baseline: a project whose suite fails before any edit is skipped, since no edit could be
   judged on it);
2. for each target runs ``<speedsmith> optimize FILE::FUNC --json --seed N --budget B`` from
   inside the copy (``<speedsmith>`` is the executable next to this script's interpreter) and
   prints the verdict, the reason, the recorded calls, the interpreter that ran the tests
   (report key ``python``), the candidate counts and the speedup;
3. checks that the run left the project's files as they were (speedsmith writes nothing
   without ``--apply``): a changed, added or removed file is reported as PROJECT CHANGED and
   the copy is restored;
4. for every ``improved`` verdict applies the report's unified diff (paths ``a/FILE``,
   relative to the project root) with ``patch -p1`` (a dry run first) to the copy, runs the
   project's whole test suite with the project's venv, then restores the file. A diff that
   does not apply is a BAD DIFF, an edit that breaks the suite a WRONG EDIT; either makes the
   script exit 1 at the end. (The edit is tested in the copy that ``pip install -e`` points
   at, so the suite imports the edited code whatever the project's layout.)

A target that errors or times out (``--timeout`` seconds; its whole process group is killed)
is reported and the run goes on. At the end a summary table (verdicts per project, refusals
grouped by reason) is printed and everything is written to ``--out``.

Projects (the first two are the snapshots in /work/shared/realworld, see its README; the
others are sdists from PyPI, downloaded with ``pip download --no-binary :all: --no-deps`` into
``--cache`` and checked against the sha256 pinned in PROJECTS; each sdist ships its tests):

=================  ========  ============  ==================================================
project            version   licence       whole suite (extra test requirements)
=================  ========  ============  ==================================================
boltons            967864f8  BSD-3-Clause  ``pytest --doctest-modules boltons tests`` (as tox)
inflection         88eefaac  MIT           ``pytest`` (its config adds the doctests)
more-itertools     11.2.1    MIT           ``pytest tests`` and ``pytest --doctest-modules
                                           more_itertools`` (upstream: ``unittest``, which
                                           loads the doctests)
humanize           4.17.0    MIT           ``pytest`` (src and tests with doctests; needs
                                           freezegun, pytest-benchmark)
python-slugify     9.2.0     MIT           ``pytest`` (tests; needs text-unidecode, a
                                           dependency)
toolz              1.2.0     BSD-3-Clause  ``pytest --doctest-modules toolz``
cachetools         8.0.2     MIT           ``pytest`` (tests)
=================  ========  ============  ==================================================

The whole suite is what the edit of an improved target must pass; speedsmith itself records
the calls from whatever tests it runs. Every suite passes on the pristine copy (Python 3.11).

Targets (FILE relative to the project root; what each exercises):

- boltons: ``boltons/strutils.py`` ``camel2under`` (regex), ``under2camel`` (split/join),
  ``split_punct_ws`` (regex split), ``parse_int_list`` and ``format_int_list`` (parsing and
  grouping loops, long docstrings), ``bytes2human`` (numeric formatting, doctest-only);
  ``boltons/iterutils.py`` ``chunked`` (``**kw`` wrapper), ``windowed`` (iterator result),
  ``unique`` (order-keeping dedupe), ``bucketize`` (dict of lists, callable arguments);
  ``boltons/listutils.py::BarrelList.insert`` (mutating method of a list subclass);
  ``boltons/mathutils.py::clamp`` (tiny: timing noise).
- inflection, all in the package's ``inflection/__init__.py``: ``ordinal``, ``underscore``
  (chained ``re.sub``), ``camelize`` (regex callback), ``parameterize`` (transliteration),
  ``pluralize`` (loop over rules), ``titleize`` (regex with lambdas).
- more-itertools: ``more_itertools/more.py::minmax`` (pairwise comparison loop),
  ``more_itertools/recipes.py::totient`` (arithmetic loop),
  ``more_itertools/recipes.py::polynomial_derivative`` (map over a list),
  ``more_itertools/more.py::numeric_range.index`` (method; more.py is 5000+ lines).
- humanize: ``src/humanize/number.py::intcomma`` (string processing, locale lookups),
  ``src/humanize/lists.py::natural_list`` (join), ``src/humanize/filesize.py::naturalsize``
  (numeric formatting), ``src/humanize/number.py::fractional`` (fractions to text).
- python-slugify: ``slugify/slugify.py::_replace_disallowed_unicode`` (character loop),
  ``slugify/slugify.py::_modern_truncate`` (word-budget loop), ``slugify/slugify.py::slugify``
  (the entry point), ``slugify/_legacy.py::smart_truncate`` (string loop),
  ``slugify/special.py::add_uppercase_char`` (mutates its list argument).
- toolz: ``toolz/itertoolz.py::frequencies`` (counting loop), ``toolz/itertoolz.py::groupby``
  (dict of lists), ``toolz/itertoolz.py::isdistinct`` (set membership loop),
  ``toolz/dicttoolz.py::merge_with`` (nested loops over dicts),
  ``toolz/functoolz.py::juxt.__call__`` (method).
- cachetools, the classes live in the package's ``src/cachetools/__init__.py``:
  ``Cache.__setitem__`` (mutating method), ``LRUCache.popitem`` (name-mangled attribute),
  ``src/cachetools/keys.py::typedkey`` (tuple building, ``**kwargs``).

Only the standard library (and the ``patch`` utility). docs/realworld.md quotes a run.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SPEEDSMITH_REALWORLD", "/work/shared/realworld"))
SPEEDSMITH = Path(sys.executable).parent / "speedsmith"

# Generated by installing or running the tests, never part of the project's source.
GENERATED_DIRS = {
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".benchmarks",
    ".eggs",
    "build",
    ".tox",
    ".mypy_cache",
    ".ruff_cache",
}


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    licence: str
    targets: tuple[str, ...]
    suites: tuple[tuple[str, ...], ...]
    """The whole test suite: pytest runs with these arguments (with the project's venv, from
    its root; ``()``: the project's own configuration), all of which must pass."""
    sdist: str = ""
    """``NAME==VERSION`` on PyPI; empty for a snapshot in SHARED."""
    sha256: str = ""
    test_requirements: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    """Environment of ``pip install`` (e.g. a version for setuptools-scm without git)."""


PROJECTS = [
    Project(
        name="boltons",
        version="967864f8",
        licence="BSD-3-Clause",
        suites=(("--doctest-modules", "boltons", "tests"),),
        targets=(
            "boltons/strutils.py::camel2under",
            "boltons/strutils.py::under2camel",
            "boltons/strutils.py::split_punct_ws",
            "boltons/strutils.py::parse_int_list",
            "boltons/strutils.py::format_int_list",
            "boltons/strutils.py::bytes2human",
            "boltons/iterutils.py::chunked",
            "boltons/iterutils.py::windowed",
            "boltons/iterutils.py::unique",
            "boltons/iterutils.py::bucketize",
            "boltons/listutils.py::BarrelList.insert",
            "boltons/mathutils.py::clamp",
        ),
    ),
    Project(
        name="inflection",
        version="88eefaac",
        licence="MIT",
        suites=((),),
        env={"SETUPTOOLS_SCM_PRETEND_VERSION_FOR_INFLECTION": "0.5.1"},
        targets=(
            "inflection/__init__.py::ordinal",
            "inflection/__init__.py::underscore",
            "inflection/__init__.py::camelize",
            "inflection/__init__.py::parameterize",
            "inflection/__init__.py::pluralize",
            "inflection/__init__.py::titleize",
        ),
    ),
    Project(
        name="more-itertools",
        version="11.2.1",
        licence="MIT",
        sdist="more-itertools==11.2.1",
        sha256="cbf08fd0af284dc69718b9b76a8e6203df624d70209ea511e4219d350c856f63",
        suites=(("tests",), ("--doctest-modules", "more_itertools")),
        targets=(
            "more_itertools/more.py::minmax",
            "more_itertools/recipes.py::totient",
            "more_itertools/recipes.py::polynomial_derivative",
            "more_itertools/more.py::numeric_range.index",
        ),
    ),
    Project(
        name="humanize",
        version="4.17.0",
        licence="MIT",
        sdist="humanize==4.17.0",
        sha256="1d6a36c453dbfbb3f0b34601d2e0b4ce5d48d780305cd45714843f0068fde6ac",
        suites=((),),
        test_requirements=("freezegun", "pytest-benchmark"),
        targets=(
            "src/humanize/number.py::intcomma",
            "src/humanize/lists.py::natural_list",
            "src/humanize/filesize.py::naturalsize",
            "src/humanize/number.py::fractional",
        ),
    ),
    Project(
        name="python-slugify",
        version="9.2.0",
        licence="MIT",
        sdist="python-slugify==9.2.0",
        sha256="cee32948083476013804de1667724fb1362dacb71e47b1d5d92adf8db6ee3298",
        suites=((),),
        targets=(
            "slugify/slugify.py::_replace_disallowed_unicode",
            "slugify/slugify.py::_modern_truncate",
            "slugify/slugify.py::slugify",
            "slugify/_legacy.py::smart_truncate",
            "slugify/special.py::add_uppercase_char",
        ),
    ),
    Project(
        name="toolz",
        version="1.2.0",
        licence="BSD-3-Clause",
        sdist="toolz==1.2.0",
        sha256="9667a038e9d6ecba37995e26cb2f59ec6420b6ad8dd9677de59db9b956b08490",
        suites=(("--doctest-modules", "toolz"),),
        targets=(
            "toolz/itertoolz.py::frequencies",
            "toolz/itertoolz.py::groupby",
            "toolz/itertoolz.py::isdistinct",
            "toolz/dicttoolz.py::merge_with",
            "toolz/functoolz.py::juxt.__call__",
        ),
    ),
    Project(
        name="cachetools",
        version="8.0.2",
        licence="MIT",
        sdist="cachetools==8.0.2",
        sha256="30ac523adfc118b51d2b2e7bad8a0ddb31370dfe2700c7f10ca224f36ccf81e0",
        suites=((),),
        targets=(
            "src/cachetools/__init__.py::Cache.__setitem__",
            "src/cachetools/__init__.py::LRUCache.popitem",
            "src/cachetools/keys.py::typedkey",
        ),
    ),
]

PROBLEMS = ("WRONG EDIT", "BAD DIFF", "PROJECT CHANGED")


def log(message: str = "") -> None:
    print(message, flush=True)


def shorten(text: str, width: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the variables that would point at its own venv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}
    }
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep) if part != venv_bin
    )
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Completed:
    returncode: int | None
    """None when it ran past its timeout (its process group was killed)."""
    stdout: str
    stderr: str
    seconds: float


def run(
    command: list[str],
    cwd: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> Completed:
    """Run ``command`` in its own session; on timeout kill that whole process group."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env if env is not None else clean_env(),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, err = process.communicate(stdin, timeout=timeout)
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, err = process.communicate(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            out, err = "", ""
        code = None
    return Completed(code, out or "", err or "", time.perf_counter() - started)


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --- getting the projects ---------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_of(project: Project, cache: Path) -> Path:
    """The pristine project folder: the snapshot in SHARED, or the sdist unpacked in cache."""
    if not project.sdist:
        folder = SHARED / project.name
        if not folder.is_dir():
            raise RuntimeError(f"{folder} not found")
        return folder
    name, version = project.sdist.split("==")
    downloads = cache / "sdists"
    downloads.mkdir(parents=True, exist_ok=True)
    wanted = re.sub(r"[-_.]+", "_", f"{name}-{version}.tar.gz").lower()

    def find() -> Path | None:
        for candidate in downloads.glob("*.tar.gz"):
            if re.sub(r"[-_.]+", "_", candidate.name).lower() == wanted:
                return candidate
        return None

    archive = find()
    if archive is None:
        done = run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                project.sdist,
                "-d",
                str(downloads),
            ],
            cwd=cache,
            timeout=600,
        )
        archive = find()
        if done.returncode != 0 or archive is None:
            output = "\n".join(
                line
                for line in (done.stdout + done.stderr).splitlines()
                if not line.startswith("WARNING: Location")
            )
            raise RuntimeError(f"pip download {project.sdist} failed:\n{tail(output)}")
    digest = sha256_of(archive)
    if digest != project.sha256:
        raise RuntimeError(f"{archive.name}: sha256 {digest}, expected {project.sha256}")
    unpacked = cache / "unpacked" / archive.name.removesuffix(".tar.gz")
    if not unpacked.is_dir():
        staging = Path(tempfile.mkdtemp(dir=cache))
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        (top,) = staging.iterdir()
        unpacked.parent.mkdir(parents=True, exist_ok=True)
        top.rename(unpacked)
        shutil.rmtree(staging)
    return unpacked


def snapshot(root: Path) -> dict[str, bytes]:
    """Every source file of the project (not what installing or testing generates)."""
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [
            d for d in dirnames if d not in GENERATED_DIRS and not d.endswith(".egg-info")
        ]
        for filename in filenames:
            if filename.endswith((".pyc", ".pyo")):
                continue
            path = Path(dirpath) / filename
            if path.is_symlink() or not path.is_file():
                continue
            files[str(path.relative_to(root))] = path.read_bytes()
    return files


def changes(root: Path, pristine: dict[str, bytes]) -> list[str]:
    now = snapshot(root)
    changed = [f"changed {p}" for p in now if p in pristine and now[p] != pristine[p]]
    added = [f"added {p}" for p in now if p not in pristine]
    removed = [f"removed {p}" for p in pristine if p not in now]
    return sorted(changed + added + removed)


def restore(root: Path, pristine: dict[str, bytes]) -> None:
    now = snapshot(root)
    for relative in now:
        if relative not in pristine:
            (root / relative).unlink()
    for relative, data in pristine.items():
        path = root / relative
        if now.get(relative) != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


# --- one project ------------------------------------------------------------------------


def setup(project: Project, copy: Path, timeout: float) -> dict[str, Any]:
    """Create ``copy/.venv`` with the project installed, and run its suite once."""
    info: dict[str, Any] = {"ok": False}
    started = time.perf_counter()
    env = clean_env(project.env)
    made = run([sys.executable, "-m", "venv", ".venv"], cwd=copy, timeout=300, env=env)
    if made.returncode != 0:
        info["error"] = f"python -m venv failed:\n{tail(made.stderr)}"
        return info
    python = str(copy / ".venv" / "bin" / "python")
    install = run(
        [python, "-m", "pip", "install", "-q", "-e", ".", "pytest", *project.test_requirements],
        cwd=copy,
        timeout=timeout,
        env=env,
    )
    if install.returncode != 0:
        info["error"] = f"pip install failed:\n{tail(install.stderr)}"
        return info
    freeze = run([python, "-m", "pip", "freeze"], cwd=copy, timeout=120, env=env)
    info["packages"] = [line for line in freeze.stdout.splitlines() if line.strip()]
    info["setup_seconds"] = round(time.perf_counter() - started, 1)
    suite = run_suite(project, copy, timeout)
    info["baseline"] = suite
    info["ok"] = suite["passed"]
    if not suite["passed"]:
        info["error"] = "the test suite fails before any edit:\n" + suite["tail"]
    return info


def run_suite(project: Project, copy: Path, timeout: float) -> dict[str, Any]:
    """Run every pytest command of the project's suite; it passes when all of them do."""
    python = str(copy / ".venv" / "bin" / "python")
    runs = []
    for arguments in project.suites:
        command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no"]
        done = run([*command, *arguments], cwd=copy, timeout=timeout, env=clean_env())
        lines = done.stdout.strip().splitlines()
        runs.append(
            {
                "command": " ".join(["pytest", *arguments]),
                "returncode": done.returncode,
                "summary": lines[-1].strip("= ") if lines else "",
                "seconds": round(done.seconds, 1),
                "tail": tail(done.stdout + done.stderr, 25),
            }
        )
    return {
        "passed": all(r["returncode"] == 0 for r in runs),
        "passed_count": sum(
            int(m.group(1)) for r in runs for m in re.finditer(r"(\d+) passed", r["summary"])
        ),
        "summary": "; ".join(f"{r['command']}: {r['summary'] or 'timeout'}" for r in runs),
        "seconds": round(sum(r["seconds"] for r in runs), 1),
        "tail": "\n".join(r["tail"] for r in runs if r["returncode"] != 0),
        "runs": runs,
    }


def optimize(target: str, copy: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        str(SPEEDSMITH),
        "optimize",
        target,
        "--json",
        "--seed",
        str(args.seed),
        "--budget",
        str(args.budget),
    ]
    done = run(command, cwd=copy, timeout=args.timeout)
    result: dict[str, Any] = {
        "target": target,
        "command": " ".join(command),
        "returncode": done.returncode,
        "seconds": round(done.seconds, 1),
        "stderr_tail": tail(done.stderr, 20),
    }
    if done.returncode is None:
        result["verdict"] = "timeout"
        result["reason"] = f"no answer within --timeout {args.timeout:.0f} s (process killed)"
        return result
    report = parse_report(done.stdout)
    if report is None:
        result["verdict"] = "harness-error"
        result["reason"] = f"exit {done.returncode}, no JSON on stdout: " + (
            tail(done.stderr, 3) or tail(done.stdout, 3)
        )
        return result
    result["report"] = report
    result["verdict"] = report.get("verdict", "?")
    result["reason"] = report.get("reason", "")
    return result


def parse_report(stdout: str) -> dict[str, Any] | None:
    text = stdout.strip()
    for start in [0, *(m.start() for m in re.finditer(r"^\{", text, re.M))]:
        try:
            data = json.loads(text[start:])
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return None


def check_edit(
    project: Project,
    copy: Path,
    result: dict[str, Any],
    pristine: dict[str, bytes],
    baseline: dict[str, Any],
    timeout: float,
) -> dict[str, Any]:
    """Apply the improved target's diff to the copy, run the whole suite, restore the copy.

    An edit under which fewer tests pass than on the pristine copy (a dropped docstring
    takes its doctest with it) is still OK, with a warning."""
    diff = (result.get("report") or {}).get("diff") or ""
    if not diff.strip():
        return {"status": "BAD DIFF", "detail": "verdict improved but the report has no diff"}
    patch = ["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-r", "-"]
    dry = run([*patch, "--dry-run"], cwd=copy, timeout=60, stdin=diff)
    if dry.returncode != 0:
        return {"status": "BAD DIFF", "detail": tail(dry.stdout + dry.stderr, 10)}
    try:
        applied = run(patch, cwd=copy, timeout=60, stdin=diff)
        if applied.returncode != 0:
            return {"status": "BAD DIFF", "detail": tail(applied.stdout + applied.stderr, 10)}
        suite = run_suite(project, copy, timeout)
    finally:
        restore(copy, pristine)
    status = "edit OK" if suite["passed"] else "WRONG EDIT"
    checked: dict[str, Any] = {"status": status, "suite": suite}
    if suite["passed"] and suite["passed_count"] < baseline["passed_count"]:
        checked["warning"] = (
            f"{baseline['passed_count'] - suite['passed_count']} fewer tests passed than on "
            "the pristine copy"
        )
    return checked


def print_target(result: dict[str, Any], copy: Path) -> None:
    report = result.get("report") or {}
    python = report.get("python") or "-"
    if python.startswith(f"{copy}{os.sep}"):
        python = python.removeprefix(f"{copy}{os.sep}") + " (the project's)"
    c = report.get("candidates") or {}
    counts = "-"
    if c:
        counts = (
            f"{c.get('generated', 0)} generated, {c.get('parsed', 0)} parsed, "
            f"{c.get('equivalent', 0)} equivalent, {c.get('faster', 0)} faster"
        )
        if "truncated" in c:
            counts += f", {c['truncated']} truncated"
        if c.get("tool"):
            counts += f" ({c['tool']} generated by tools, not the model)"
        if c.get("unparsed"):
            counts += "; not parsed: " + ", ".join(f"{n} {why}" for why, n in c["unparsed"].items())
    truncated = report.get("truncated")
    if truncated is not None and "truncated" not in c:
        counts += f", {truncated} truncated"
    speedup = ""
    if report.get("speedup") is not None and report.get("ci95"):
        lo, hi = report["ci95"]
        speedup = f" {report['speedup']:.2f}x (95% CI {lo:.2f}-{hi:.2f})"
    log(f"  {result['verdict']}{speedup} {result['target']}  [{result['seconds']:.0f} s]")
    log(f"    reason: {shorten(result.get('reason', ''), 200)}")
    log(
        f"    recorded calls: {report.get('recorded_calls', '-')}; "
        f"python: {python}; candidates: {counts}"
    )
    if result["verdict"] in {"harness-error", "timeout", "error"} and result.get("stderr_tail"):
        log("    stderr: " + shorten(tail(result["stderr_tail"], 3), 200))
    check = result.get("edit_check")
    if check:
        detail = check.get("suite", {}).get("summary") or shorten(check.get("detail", ""), 200)
        log(f"    edit: {check['status']} ({detail})")
        if check.get("warning"):
            log(f"    warning: {check['warning']}")
        if check["status"] == "WRONG EDIT":
            log("    " + check["suite"]["tail"].replace("\n", "\n    "))
    for change in result.get("project_changes", []):
        log(f"    PROJECT CHANGED: {change}")


def bench_project(project: Project, args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "version": project.version,
        "licence": project.licence,
        "sdist": project.sdist or None,
        "targets": [],
    }
    log(f"== {project.name} {project.version} ({project.licence})")
    try:
        source = source_of(project, cache)
    except Exception as error:
        entry["setup"] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        log(f"  setup failed: {entry['setup']['error']}")
        return entry
    workdir = Path(tempfile.mkdtemp(prefix=f"speedsmith-realworld-{project.name}-"))
    copy = workdir / project.name
    try:
        shutil.copytree(
            source,
            copy,
            symlinks=True,
            ignore=shutil.ignore_patterns(*GENERATED_DIRS, "*.pyc"),
        )
        log(f"  copy: {copy}")
        info = setup(project, copy, args.setup_timeout)
        entry["setup"] = info
        if not info["ok"]:
            log(f"  setup failed: {info.get('error')}")
            return entry
        log(
            f"  venv ready in {info['setup_seconds']} s; baseline suite: "
            f"{info['baseline']['summary']} ({info['baseline']['seconds']} s)"
        )
        pristine = snapshot(copy)
        targets = [t for t in project.targets if not args.match or any(m in t for m in args.match)]
        if args.targets_limit:
            targets = targets[: args.targets_limit]
        for target in targets:
            try:
                result = optimize(target, copy, args)
            except Exception as error:
                result = {
                    "target": target,
                    "verdict": "harness-error",
                    "reason": f"{type(error).__name__}: {error}",
                    "seconds": 0.0,
                }
            try:
                project_changes = changes(copy, pristine)
                if project_changes:
                    result["project_changes"] = project_changes
                    restore(copy, pristine)
            except OSError as error:
                result["project_changes"] = [f"the copy could not be checked: {error}"]
            if result["verdict"] == "improved":
                try:
                    result["edit_check"] = check_edit(
                        project, copy, result, pristine, info["baseline"], args.setup_timeout
                    )
                except Exception as error:
                    result["edit_check"] = {
                        "status": "BAD DIFF",
                        "detail": f"{type(error).__name__}: {error}",
                    }
            entry["targets"].append(result)
            print_target(result, copy)
    finally:
        if args.keep:
            log(f"  kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return entry


# --- summary ----------------------------------------------------------------------------

VERDICTS = ("improved", "no-improvement", "refused", "error", "timeout", "harness-error")


def reason_group(result: dict[str, Any]) -> str:
    """The reason with the target's names and the numbers taken out, to group alike ones."""
    reason = " ".join(str(result.get("reason", "")).split())
    qualname = result["target"].split("::")[-1]
    for name in {qualname, qualname.split(".")[-1]}:
        reason = re.sub(rf"(?<![\w.]){re.escape(name)}(?!\w)", "<function>", reason)
    reason = re.sub(r"\d+(\.\d+)?", "N", reason)
    return shorten(reason, 150)


def problems_of(result: dict[str, Any]) -> list[str]:
    found = []
    check = result.get("edit_check") or {}
    if check.get("status") in PROBLEMS:
        found.append(check["status"])
    if result.get("project_changes"):
        found.append("PROJECT CHANGED")
    return found


def summarize(results: dict[str, Any]) -> int:
    """Print the summary tables; return the number of problems (wrong edits and the like)."""
    projects = results["projects"]
    header = ["project", *VERDICTS, "edit OK", "problems"]
    rows = []
    problems: list[str] = []
    for name, entry in projects.items():
        verdicts = Counter(r["verdict"] for r in entry["targets"])
        ok = sum((r.get("edit_check") or {}).get("status") == "edit OK" for r in entry["targets"])
        found = [f"{p} {r['target']}" for r in entry["targets"] for p in problems_of(r)]
        problems += found
        if not entry.get("setup", {}).get("ok"):
            rows.append([name, "setup failed", *[""] * (len(header) - 2)])
            continue
        rows.append([name, *(str(verdicts.get(v, 0)) for v in VERDICTS), str(ok), str(len(found))])
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    log()
    log("== summary")
    log("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        log("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))

    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for entry in projects.values():
        for result in entry["targets"]:
            if result["verdict"] in {"refused", "error", "timeout", "harness-error"}:
                groups[(result["verdict"], reason_group(result))].append(result["target"])
    if groups:
        log()
        log("== refusals and errors by reason")
        for (verdict, reason), targets in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            log(f"  {len(targets):3d}  {verdict}: {reason}")
            for target in targets:
                log(f"         {target}")
    if problems:
        log()
        log("== PROBLEMS")
        for problem in problems:
            log(f"  {problem}")
    return len(problems)


def git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--budget", default="quick", help="speedsmith --budget (default quick)")
    parser.add_argument("--seed", type=int, default=1, help="speedsmith --seed (default 1)")
    parser.add_argument(
        "--only",
        action="append",
        choices=[p.name for p in PROJECTS],
        help="run only this project (repeatable)",
    )
    parser.add_argument(
        "--targets-limit", type=int, default=0, help="first N targets of each project (0: all)"
    )
    parser.add_argument(
        "--match",
        action="append",
        metavar="TEXT",
        help="only the targets whose FILE::FUNC contains TEXT (repeatable)",
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds per target (default 900)"
    )
    parser.add_argument(
        "--setup-timeout",
        type=float,
        default=900,
        help="seconds for pip install and for one run of a project's suite (default 900)",
    )
    parser.add_argument("--out", default="realworld-results.json", help="results JSON")
    parser.add_argument(
        "--cache",
        default=str(Path.home() / ".cache" / "speedsmith-realworld"),
        help="where the sdists are downloaded and unpacked",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    args = parser.parse_args()

    if not SPEEDSMITH.exists():
        log(f"error: {SPEEDSMITH} not found (run this script with speedsmith's interpreter)")
        return 2
    if shutil.which("patch") is None:
        log("error: the patch utility is needed to apply the verified edits")
        return 2
    cache = Path(args.cache).expanduser().resolve()
    cache.mkdir(parents=True, exist_ok=True)
    chosen = [p for p in PROJECTS if not args.only or p.name in args.only]
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "speedsmith": str(SPEEDSMITH),
        "budget": args.budget,
        "seed": args.seed,
        "timeout": args.timeout,
        "projects": {},
    }
    log(
        f"speedsmith {SPEEDSMITH} at {results['commit']}; budget {args.budget}, "
        f"seed {args.seed}, timeout {args.timeout:.0f} s per target"
    )
    out = Path(args.out)
    for project in chosen:
        results["projects"][project.name] = bench_project(project, args, cache)
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    problems = summarize(results)
    setup_failures = [n for n, e in results["projects"].items() if not e["setup"].get("ok")]
    results["problems"] = problems
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    log(f"\nresults: {out}")
    if setup_failures:
        log(f"setup failed: {', '.join(setup_failures)}")
    return 1 if problems or setup_failures else 0


if __name__ == "__main__":
    sys.exit(main())
