"""On-disk cache of optimisation results, keyed by what the result depends on.

Knows nothing of LSP. A result is stored under a key made of the file's path, the function's
qualified name, the hash of what it depends on in its module (``function_hash``: its
normalised source plus the imports, globals, helpers and class header the model saw), the
state of the project's test files (``tests_fingerprint``: the verdict was reached on the calls
those tests make), and every setting that can change the outcome (the model, the budget
actually used, tolerances, the interpreter...; not the seed, thread counts or GPU layers). So
an unchanged function is never optimised twice with the same settings, and a function whose
code, helpers or tests changed never gets a stale result.

Only conclusive results are stored (``improved`` and ``no-improvement``): a refusal or an
error depends on circumstances (unsaved buffer, missing model) that change without the
function changing. Entries are small JSON files under ``<cache dir>/results/`` (the cache
dir is ``$SPEEDSMITH_CACHE_DIR`` if set, else the platform's user cache dir), written
atomically; an unreadable or foreign entry reads as a miss.

The stored report has no byte offsets: whoever applies a cached result rebuilds the edit from
the current text of the file, after checking that the function's source hash still matches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speedsmith.isolate import FunctionInfo, collect_context
from speedsmith.paths import cache_dir
from speedsmith.report import CandidateCounts, HotRegion, HotSpot, OptimizeReport, TokenCounts
from speedsmith.settings import Settings, to_wire
from speedsmith.target import project_root

FORMAT = 2
CACHED_VERDICTS = frozenset({"improved", "no-improvement"})
IRRELEVANT_SETTINGS = frozenset(
    {
        "seed",
        "nThreads",
        "nGpuLayers",
        "onSave",
        "onSaveBudget",
        "onSaveDebounceSeconds",
        "budgetSeconds",
    }
)
"""Wire names of settings that do not change what a run may conclude (only how fast it gets
there or whether it runs at all). ``budget`` is relevant: a larger budget may find more."""


def normalize_source(source: str) -> str:
    """The function's text without trailing whitespace on lines or trailing blank lines."""
    lines = [line.rstrip() for line in source.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def function_hash(text: str, fn: FunctionInfo) -> str:
    """Hash of what a result for ``fn`` depends on in its module's ``text``: the function's
    normalised source and the module-level code it uses (``isolate.collect_context``), so
    editing a helper or an import invalidates the function's results too."""
    context = collect_context(text, fn)
    material = json.dumps(
        [
            normalize_source(fn.source),
            [normalize_source(part) for part in context.imports],
            [normalize_source(part) for part in context.globals_used],
            [normalize_source(part) for part in context.helpers],
            normalize_source(context.class_header or ""),
        ]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


TEST_FILES = ("test_*.py", "*_test.py", "conftest.py")
PYTEST_CONFIG = ("pyproject.toml", "pytest.ini", "setup.cfg", "tox.ini")
"""At the project root; not ``.git``, whose folder changes with every git command."""
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "site-packages", "build", "dist"})
"""Besides hidden folders and virtual environments (folders with ``pyvenv.cfg``)."""
MAX_TEST_FILES = 5000
"""``tests_fingerprint`` looks at this many test files at most (the first, in walk order)."""


def tests_fingerprint(path: Path) -> str:
    """Hash of the size and modification time of the test files (and pytest configuration) of
    the project holding ``path``: changes when a test that may call the function changes."""
    root = project_root(path)
    entries: list[tuple[str, int, int]] = []
    for name in PYTEST_CONFIG:
        with contextlib.suppress(OSError):
            stat = (root / name).stat()
            entries.append((name, stat.st_size, stat.st_mtime_ns))
    seen = 0
    for folder, folders, files in os.walk(root):
        if seen >= MAX_TEST_FILES:
            break
        here = Path(folder)
        folders[:] = sorted(
            name
            for name in folders
            if not name.startswith(".")
            and name not in SKIPPED_FOLDERS
            and not (here / name / "pyvenv.cfg").exists()
        )
        for name in sorted(files):
            if not any(fnmatch.fnmatch(name, pattern) for pattern in TEST_FILES):
                continue
            seen += 1
            if seen > MAX_TEST_FILES:
                break
            with contextlib.suppress(OSError):
                stat = (here / name).stat()
                entries.append(
                    (str((here / name).relative_to(root)), stat.st_size, stat.st_mtime_ns)
                )
    material = json.dumps([str(root), entries])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def result_key(
    path: Path, qualname: str, function_hash: str, settings: Settings, tests: str
) -> str:
    """The cache key of optimising ``qualname`` (``function_hash``) with ``settings`` while
    the project's tests have the fingerprint ``tests`` (``tests_fingerprint``)."""
    relevant = {k: v for k, v in to_wire(settings).items() if k not in IRRELEVANT_SETTINGS}
    material = json.dumps(
        {
            "format": FORMAT,
            "path": str(Path(path).resolve()),
            "qualname": qualname,
            "source": function_hash,
            "tests": tests,
            "settings": relevant,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedResult:
    """A stored result: the report (without its edit) and what it was computed with."""

    key: str
    qualname: str
    function_hash: str
    budget: str | int
    created: float
    report: OptimizeReport
    tests: str = ""
    """The ``tests_fingerprint`` the result was reached with."""


class ResultCache:
    """Results under ``directory`` (default ``cache_dir() / "results"``)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else cache_dir() / "results"

    def _file(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> CachedResult | None:
        """The entry stored under ``key``, or None (missing, unreadable or another format)."""
        try:
            data = json.loads(self._file(key).read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("key") != key:
                return None
            return CachedResult(
                key=key,
                qualname=data["qualname"],
                function_hash=data["function_hash"],
                budget=data["budget"],
                created=float(data["created"]),
                report=report_from_json(data["report"]),
                tests=str(data.get("tests", "")),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(
        self,
        key: str,
        function_hash: str,
        budget: str | int,
        report: OptimizeReport,
        tests: str = "",
    ) -> CachedResult | None:
        """Store a conclusive ``report``; returns the entry, or None if it is not cached."""
        if report.verdict not in CACHED_VERDICTS:
            return None
        qualname = report.target.rpartition("::")[2]
        entry = CachedResult(
            key=key,
            qualname=qualname,
            function_hash=function_hash,
            budget=budget,
            created=time.time(),
            report=report,
            tests=tests,
        )
        data = {
            "format": FORMAT,
            "key": key,
            "qualname": qualname,
            "function_hash": function_hash,
            "budget": budget,
            "created": entry.created,
            "report": report.to_json(),
            "tests": tests,
        }
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return entry


def report_from_json(data: dict[str, Any]) -> OptimizeReport:
    """An ``OptimizeReport`` (with no edit) from ``OptimizeReport.to_json()``'s object.

    Unknown keys are ignored, so entries written by another version still read.
    """
    known = {f.name for f in dataclasses.fields(OptimizeReport)}
    fields = {k: v for k, v in data.items() if k in known and k != "edit"}
    if isinstance(fields.get("ci95"), list):
        fields["ci95"] = tuple(fields["ci95"])
    if isinstance(fields.get("candidates"), dict):
        fields["candidates"] = _sub(CandidateCounts, fields["candidates"])
    if isinstance(fields.get("tokens"), dict):
        fields["tokens"] = _sub(TokenCounts, fields["tokens"])
    if isinstance(fields.get("hot_lines"), list):
        fields["hot_lines"] = tuple(_sub(HotSpot, hot) for hot in fields["hot_lines"])
    if isinstance(fields.get("hot_region"), dict):
        fields["hot_region"] = _sub(HotRegion, fields["hot_region"])
    return OptimizeReport(**fields)


def _sub(cls: Any, data: dict[str, Any]) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
