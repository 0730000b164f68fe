"""Shared fixtures: tiny throw-away projects (a module, its tests, a root marker) on disk.

``make_project({"mod.py": "...", "test_mod.py": "..."})`` writes the files (dedented) under a
fresh folder with an empty ``pyproject.toml`` as the project-root marker and returns a
``TinyProject``. ``project_factory`` is the same builder, session-scoped, for module-scoped
fixtures that record a workload once.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class TinyProject:
    root: Path

    def path(self, relative: str) -> Path:
        return self.root / relative

    def write(self, relative: str, text: str) -> Path:
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return target

    def snapshot(self) -> dict[str, tuple[int, bytes]]:
        """Every entry under the root (folders included): mtime and contents."""
        state: dict[str, tuple[int, bytes]] = {}
        for entry in sorted(self.root.rglob("*")):
            data = entry.read_bytes() if entry.is_file() else b"<dir>"
            state[entry.relative_to(self.root).as_posix()] = (entry.stat().st_mtime_ns, data)
        return state


ProjectBuilder = Callable[..., TinyProject]


def _build(folder: Path, files: Mapping[str, str], marker: bool) -> TinyProject:
    project = TinyProject(folder)
    if marker and "pyproject.toml" not in files:
        project.write("pyproject.toml", "")
    for relative, text in files.items():
        project.write(relative, text)
    return project


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectBuilder:
    """Build a tiny project under this test's ``tmp_path`` (one folder per call)."""
    count = [0]

    def build(files: Mapping[str, str], *, marker: bool = True) -> TinyProject:
        count[0] += 1
        folder = tmp_path / f"project{count[0]}"
        folder.mkdir()
        return _build(folder, files, marker)

    return build


@pytest.fixture(scope="session")
def project_factory(tmp_path_factory: pytest.TempPathFactory) -> ProjectBuilder:
    """Session-scoped ``make_project`` (for module-scoped fixtures)."""

    def build(
        files: Mapping[str, str], *, marker: bool = True, name: str = "project"
    ) -> TinyProject:
        return _build(tmp_path_factory.mktemp(name), files, marker)

    return build


@pytest.fixture
def no_plugin_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner pytest runs (inherited environment) skip third-party plugins: ~1 s -> 0.3 s each.

    The tiny projects need none of them; speedsmith's own plugin is loaded with ``-p``.
    """
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
