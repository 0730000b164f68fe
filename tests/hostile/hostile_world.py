"""The throw-away tree hostile candidates are aimed at, and the checks that nothing escaped.

Everything a hostile candidate may touch carries this run's marker (``ssmk`` + 10 hex digits)
in its file name, or lies inside the fresh ``world/`` folder built here:

- ``world/above-MARKER.txt``: a canary above the project;
- ``world/neighbour/``: a fake neighbouring checkout (only marker-named files);
- ``world/venv/``: a throw-away venv (``python -m venv --without-pip``) whose one ``.pth`` file
  points at the test runner's site-packages, so the harness's dependencies import there;
- ``world/home/``: a fake home (``.ssh``, ``.aws``, ``.netrc``, ``.config``), which ``$HOME``
  points at while the fixture is active;
- ``world/project/``: the project (``pyproject.toml``, ``mod.py``, ``test_mod.py`` and the
  canary ``data-MARKER.txt``).

Outside it: canaries in the real home (found through ``pwd``, as a candidate would), ``/tmp``,
``/var/tmp`` and ``/dev/shm``. ``World.reset`` puts all of it back as built (and ends any
process carrying the marker, by pid) so one escaped candidate cannot spoil the next check;
``World.escapes`` lists what a candidate changed, left behind or left running.

Imported as ``hostile_world`` (``tests/hostile`` is on ``sys.path``, like ``tests/lsp``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import shutil
import signal
import site
import socket
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speedsmith.settings import Settings
from speedsmith.workload import Workload

SECRET_ENV = "SPEEDSMITH_HOSTILE_SECRET"

MODULE = """
def total(values):
    s = 0
    for v in values:
        s += v
    return s


def slow_total(values):
    s = 0
    for v in values:
        for _ in range(40):
            pass
        s += v
    return s
"""

TESTS = """
from mod import slow_total, total


def test_total():
    assert total([1, 2, 3]) == 6
    assert total([]) == 0
    assert total(list(range(100))) == 4950


def test_slow_total():
    assert slow_total(list(range(300))) == 44850
    assert slow_total([5, -5, 7]) == 7


def test_unrelated():
    assert 1 + 1 == 2
"""

OUTSIDE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
"""Shared writable folders that get a canary (where writable) and are searched (top level)."""

Entry = tuple[str, int, int, str]
"""(kind, mode, mtime_ns, sha256 of the contents or the link's target)."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entry(path: Path) -> Entry | None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return ("link", info.st_mode, info.st_mtime_ns, os.readlink(path))
    if stat.S_ISDIR(info.st_mode):
        return ("dir", info.st_mode, info.st_mtime_ns, "")
    if stat.S_ISREG(info.st_mode):
        return ("file", info.st_mode, info.st_mtime_ns, _digest(path))
    return ("other", info.st_mode, info.st_mtime_ns, "")


def _walk(root: Path) -> list[Path]:
    """Every entry below ``root`` (links not followed), ``root`` itself first."""
    found = [root]
    for folder, dirs, files in os.walk(root, followlinks=False):
        found += [Path(folder, name) for name in (*dirs, *files)]
    return found


def marker_processes(marker: str) -> dict[int, str]:
    """pid -> command line of every process whose command line carries ``marker``."""
    found: dict[int, str] = {}
    needle = marker.encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            found[int(proc.name)] = cmdline.replace(b"\0", b" ").decode("utf-8", "replace")
    return found


@dataclass
class World:
    marker: str
    base: Path
    """The ``mktemp`` folder holding ``world/`` (and, outside ``world/``, the recordings)."""
    search_root: Path
    """Searched recursively for marker-named files (pytest's base temp folder)."""
    real_home_canary: Path
    outside_canaries: list[Path] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    """Name -> contents of the secret files, which must never reach a verdict or an output."""
    pristine: dict[Path, tuple[Entry, bytes | None]] = field(default_factory=dict)
    workloads: dict[str, Workload] = field(default_factory=dict)
    """Qualname -> the calls recorded from ``test_mod.py`` (``conftest.py`` fills it)."""

    @property
    def world(self) -> Path:
        return self.base / "world"

    @property
    def project(self) -> Path:
        return self.world / "project"

    @property
    def neighbour(self) -> Path:
        return self.world / "neighbour"

    @property
    def home(self) -> Path:
        return self.world / "home"

    @property
    def venv_python(self) -> Path:
        return self.world / "venv" / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        found = sorted((self.world / "venv" / "lib").glob("python*/site-packages"))
        assert len(found) == 1, found
        return found[0]

    @property
    def canary(self) -> Path:
        """The project's canary."""
        return self.project / f"data-{self.marker}.txt"

    @property
    def env_secret(self) -> str:
        return f"{self.marker}-secret"

    def settings(self, **changes: object) -> Settings:
        base = {
            "python": str(self.venv_python),
            "timing_max_rounds": 6,
            "candidate_timeout_seconds": 8,
        }
        base.update(changes)
        return Settings(**base)  # type: ignore[arg-type]

    def fill(self, template: str, **extra: str) -> str:
        """``template`` with its ``{TOKEN}`` placeholders replaced (``str.replace``: candidates
        hold braces of their own)."""
        tokens = {
            "{MARKER}": self.marker,
            "{WORLD}": str(self.world),
            "{PROJECT}": str(self.project),
            "{REALHOME}": str(self.real_home_canary.parent),
            "{SITE}": str(self.site_packages),
            "{SECRET_ENV}": SECRET_ENV,
            **{"{" + key + "}": value for key, value in extra.items()},
        }
        for token, value in tokens.items():
            template = template.replace(token, value)
        left = re.findall(r"\{[A-Z_]+\}", template)
        assert not left, f"unfilled placeholders {left}"
        return template

    # -- the state the candidates must not change --------------------------------------------

    def watched(self) -> list[Path]:
        return [*_walk(self.world), self.real_home_canary, *self.outside_canaries]

    def snapshot(self) -> dict[Path, Entry | None]:
        state: dict[Path, Entry | None] = {path: _entry(path) for path in self.watched()}
        for path in self.pristine:
            state.setdefault(path, _entry(path))
        return state

    def marker_files(self) -> set[Path]:
        """Every file or folder whose name carries the marker, where a write could land."""
        found: set[Path] = set()
        for path in _walk(self.search_root):
            if self.marker in path.name:
                found.add(path)
        top_level = [*OUTSIDE_DIRS, str(self.real_home_canary.parent), os.getcwd()]
        top_level.append(f"/run/user/{os.getuid()}")
        for folder in top_level:
            with contextlib.suppress(OSError):
                for name in os.listdir(folder):
                    if self.marker in name:
                        found.add(Path(folder, name))
        return found

    def escapes(self, before: dict[Path, Entry | None], known: set[Path]) -> list[str]:
        """What changed since ``before``: files changed, removed or added, new marker files,
        processes carrying the marker (waited for up to 10 s, then ended by pid)."""
        problems: list[str] = []
        after = self.snapshot()
        for path in sorted(set(before) | set(after)):
            old, new = before.get(path), after.get(path)
            if old == new:
                continue
            if old is None:
                problems.append(f"added {path}")
            elif new is None:
                problems.append(f"removed {path}")
            else:
                what = [
                    name
                    for name, a, b in zip(
                        ("kind", "mode", "mtime", "contents"), old, new, strict=True
                    )
                    if a != b
                ]
                problems.append(f"changed {path} ({', '.join(what)})")
        for path in sorted(self.marker_files() - known):
            problems.append(f"new marker file {path}")
        deadline = time.monotonic() + 10
        running = marker_processes(self.marker)
        while running and time.monotonic() < deadline:
            time.sleep(0.1)
            running = marker_processes(self.marker)
        for pid, cmdline in sorted(running.items()):
            problems.append(f"process {pid} still running: {cmdline[:200]}")
        self.end_processes()
        return problems

    # -- building and resetting --------------------------------------------------------------

    def record_pristine(self) -> None:
        self.pristine = {}
        for path in self.watched():
            entry = _entry(path)
            assert entry is not None, path
            data = path.read_bytes() if entry[0] == "file" else None
            self.pristine[path] = (entry, data)

    def end_processes(self) -> None:
        for pid in marker_processes(self.marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def reset(self) -> None:
        """Back to the state ``record_pristine`` saw: extra entries in ``world/`` and extra
        marker files removed, changed or missing canaries rewritten, marker processes ended."""
        self.end_processes()
        for path in sorted(_walk(self.world), key=lambda p: len(p.parts), reverse=True):
            if path not in self.pristine:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        for path in self.marker_files():
            if path not in self.pristine:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        for path, (entry, data) in sorted(self.pristine.items(), key=lambda i: len(i[0].parts)):
            if _entry(path) == entry:
                continue
            kind, mode, _mtime, digest = entry
            if kind == "dir":
                if path.is_symlink() or (path.exists() and not path.is_dir()):
                    path.unlink()
                path.mkdir(exist_ok=True)
            elif kind == "link":
                if path.is_symlink() or path.exists():
                    path.unlink()
                os.symlink(digest, path)
                continue
            else:
                if path.is_symlink():
                    path.unlink()
                assert data is not None
                if path.exists():
                    os.chmod(path, 0o600)
                path.write_bytes(data)
            os.chmod(path, stat.S_IMODE(mode))
        # Times last: writing a file changes its folder's mtime.
        for path, (entry, _) in sorted(
            self.pristine.items(), key=lambda i: len(i[0].parts), reverse=True
        ):
            if entry[0] != "link" and _entry(path) != entry:
                os.utime(path, ns=(entry[2], entry[2]))
        assert self.snapshot() == {path: e for path, (e, _) in self.pristine.items()}

    def remove_outside(self) -> None:
        self.end_processes()
        for path in [self.real_home_canary, *self.outside_canaries]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for path in self.marker_files():
            if path.is_relative_to(self.search_root):
                continue  # pytest's temp folders clean themselves
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def build_world(base: Path, search_root: Path) -> World:
    marker = "ssmk" + uuid.uuid4().hex[:10]
    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    world = World(
        marker=marker,
        base=base,
        search_root=search_root,
        real_home_canary=real_home / f".speedsmith-canary-{marker}",
    )
    root = world.world
    _write(root / f"above-{marker}.txt", f"above the project {marker}\n")
    _write(world.neighbour / f"lib-{marker}.py", f"# neighbouring checkout {marker}\n")
    _write(world.neighbour / "pkg" / f"x-{marker}.py", f"# neighbouring package {marker}\n")

    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root / "venv")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    _write(
        world.site_packages / "speedsmith-hostile-runner.pth",
        "".join(f"{path}\n" for path in site.getsitepackages()),
    )

    secrets = {
        "ssh": f"-----BEGIN OPENSSH PRIVATE KEY----- ssh-{marker}-key",
        "aws": f"aws_secret_access_key = aws-{marker}-key",
        "netrc": f"machine example.invalid login me password netrc-{marker}-pw",
        "config": f"config-{marker}-token",
        "realhome": f"realhome-{marker}-token",
    }
    world.secrets = secrets
    _write(world.home / ".ssh" / f"id_rsa-{marker}", secrets["ssh"] + "\n", 0o600)
    _write(world.home / ".aws" / "credentials", f"[default]\n{secrets['aws']}\n", 0o600)
    _write(world.home / ".netrc", secrets["netrc"] + "\n", 0o600)
    _write(world.home / ".config" / f"secret-{marker}", secrets["config"] + "\n", 0o600)

    project = world.project
    _write(project / "pyproject.toml", "")
    _write(project / "mod.py", textwrap.dedent(MODULE).lstrip("\n"))
    _write(project / "test_mod.py", textwrap.dedent(TESTS).lstrip("\n"))
    _write(world.canary, f"project data {marker}\n")

    _write(world.real_home_canary, secrets["realhome"] + "\n", 0o600)
    for folder in OUTSIDE_DIRS:
        if os.path.isdir(folder) and os.access(folder, os.W_OK):
            world.outside_canaries.append(
                _write(Path(folder, f"speedsmith-canary-{marker}"), f"outside {marker}\n")
            )
    check_neighbour(world)
    world.record_pristine()
    return world


def check_neighbour(world: World) -> None:
    """The neighbour (which one candidate removes wholesale) holds only the files built here."""
    found = {p.relative_to(world.neighbour).as_posix() for p in _walk(world.neighbour)}
    assert found == {".", "pkg", f"lib-{world.marker}.py", f"pkg/x-{world.marker}.py"}, found


@contextlib.contextmanager
def listener() -> Iterator[Any]:
    """A localhost TCP listener; ``accepted()`` tells whether anything connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)

    class Listener:
        port = server.getsockname()[1]

        @staticmethod
        def accepted() -> bool:
            try:
                connection, _ = server.accept()
            except BlockingIOError:
                return False
            connection.close()
            return True

    try:
        yield Listener
    finally:
        server.close()


@contextlib.contextmanager
def sigterm_guard() -> Iterator[list[int]]:
    """SIGTERM to the test process is recorded instead of ending the run."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
