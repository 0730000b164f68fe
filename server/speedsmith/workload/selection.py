"""What the project's test run loads: which test files can reach the target, which plugins.

- ``select_test_files``: in a large suite, the test files that import the target's module or
  name the function (the capture runs those, and falls back to the whole suite when they
  record nothing);
- ``blocked_plugins``: when the tests run in speedsmith's own interpreter, the pytest plugins
  that speedsmith's environment brought and the project never asked for (``-p no:NAME``):
  a suite with ``filterwarnings = error`` must not die of a plugin it does not use.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import os
import re
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from speedsmith.target import Target

DEFAULT_PYTHON_FILES = ("test_*.py", "*_test.py")
SKIPPED_FOLDERS = frozenset(
    {"node_modules", "__pycache__", "site-packages", "build", "dist", "docs", "doc"}
)
SELECT_ABOVE_FILES = 8
"""Suites with at most this many test files always run whole (selection saves nothing)."""
MAX_SCANNED_FILES = 20000
PROJECT_FILES = (
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "tox.ini",
    "noxfile.py",
    "requirements.txt",
    "requirements-dev.txt",
    "requirements-test.txt",
    "requirements_test.txt",
    "test-requirements.txt",
    "dev-requirements.txt",
)


def suite_roots(target: Target) -> list[Path]:
    """Where pytest looks for tests when run with no arguments: ``testpaths`` (globs,
    relative to the rootdir) that exist, else the project root."""
    found: list[Path] = []
    for entry in target.pytest.testpaths:
        pattern = str(target.pytest.rootdir / entry)
        matches = sorted(glob.glob(pattern)) if glob.has_magic(entry) else [pattern]
        found += [Path(m) for m in matches if os.path.exists(m)]
    return found or [target.root]


def test_files(target: Target) -> list[Path]:
    """The test files of the suite (``python_files`` patterns, virtualenvs and hidden folders
    skipped), in walk order."""
    patterns = target.pytest.python_files or DEFAULT_PYTHON_FILES
    files: list[Path] = []
    for start in suite_roots(target):
        if start.is_file():
            files.append(start)
            continue
        for folder, folders, names in os.walk(start):
            here = Path(folder)
            folders[:] = sorted(
                name
                for name in folders
                if not name.startswith(".")
                and name not in SKIPPED_FOLDERS
                and not (here / name / "pyvenv.cfg").exists()
            )
            for name in sorted(names):
                if name.endswith(".py") and any(fnmatch.fnmatch(name, p) for p in patterns):
                    files.append(here / name)
                    if len(files) >= MAX_SCANNED_FILES:
                        return files
    return files


def select_test_files(target: Target) -> tuple[Path, ...] | None:
    """The test files that can reach the target, or None for the whole suite (small suites,
    or when no file mentions it: it may be reached indirectly)."""
    files = test_files(target)
    if len(files) <= SELECT_ABOVE_FILES:
        return None
    words = _mentions(target)
    chosen = tuple(f for f in files if _mentions_any(f, words))
    if not chosen or len(chosen) == len(files):
        return None
    return chosen


def _mentions(target: Target) -> re.Pattern[str]:
    """Words whose presence makes a test file a candidate: the function's (or method's and
    class's) name, and the module's last component."""
    parts = target.qualname.split(".")
    names = {parts[-1], *parts[:-1]}
    last = target.module.rsplit(".", 1)[-1]
    if last and last != "__init__":
        names.add(last)
    return re.compile(r"\b(?:" + "|".join(re.escape(n) for n in sorted(names)) + r")\b")


def _mentions_any(file: Path, words: re.Pattern[str]) -> bool:
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True
    return words.search(text) is not None


def blocked_plugins(target: Target) -> tuple[str, ...]:
    """``-p no:NAME`` names for the plugins the project's run must not see (see the module
    docstring); nothing when the tests run in the project's own interpreter."""
    if not target.interpreter.is_own:
        return ()
    declared = _declared_text(target.root)
    blocked = []
    for name, distribution in own_plugins():
        if _normal(distribution) not in declared:
            blocked.append(name)
    return tuple(blocked)


@functools.cache
def own_plugins() -> tuple[tuple[str, str], ...]:
    """(entry point name, distribution name) of every pytest plugin installed beside
    speedsmith."""
    found = []
    for entry in metadata.entry_points(group="pytest11"):
        dist = getattr(entry, "dist", None)
        found.append((entry.name, dist.metadata["Name"] if dist is not None else entry.name))
    return tuple(sorted(set(found)))


def _declared_text(root: Path) -> str:
    """The project's packaging and requirement files, normalised, to look dependencies up."""
    text = []
    for name in PROJECT_FILES:
        try:
            text.append((root / name).read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return _normal("\n".join(text))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
