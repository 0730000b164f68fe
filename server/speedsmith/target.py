"""The target: one function of one file of one project, resolved once.

Computed by ``resolve_target`` from the file, the qualified name and the settings, then passed
down to capture, verification, the cache and the report; nothing else re-derives the project
root, the import name or the interpreter. Knows nothing of LSP.

- **project root**: the nearest folder above the file holding ``pyproject.toml``,
  ``setup.cfg``, ``setup.py`` or ``.git`` (else ``pytest.ini``/``tox.ini``, else the file's
  folder);
- **pytest configuration** as pytest itself finds it from the project root (``pytest.ini``,
  ``.pytest.ini``, ``pyproject.toml [tool.pytest.ini_options]``, ``tox.ini [pytest]``,
  ``setup.cfg [tool:pytest]``): its folder (pytest's ``rootdir``), ``testpaths``,
  ``pythonpath`` and whether ``addopts`` runs doctests (``--doctest-modules``);
- **import name**: packages are folders with ``__init__.py`` (``pkg/__init__.py`` is
  ``pkg``); a file under a known import root (``pythonpath``, ``src/``, the project root)
  through folders without ``__init__.py`` is in a namespace package;
- **the interpreter** that runs the project's tests: the ``python`` setting (``--python``) >
  ``$VIRTUAL_ENV`` > ``.venv`` or ``venv`` in the project root > the one running speedsmith.
"""

from __future__ import annotations

import configparser
import functools
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from speedsmith.errors import SpeedsmithError

ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git")
WEAK_ROOT_MARKERS = ("pytest.ini", "tox.ini")
"""Only where none of ``ROOT_MARKERS`` is above the file."""
VENV_FOLDERS = (".venv", "venv")


class InterpreterError(SpeedsmithError):
    """The configured or detected interpreter cannot run the project's tests."""


@dataclass(frozen=True)
class PytestConfig:
    config_file: Path | None
    """The file pytest takes its configuration from (None: defaults)."""
    rootdir: Path
    """pytest's rootdir: the configuration file's folder, else the project root."""
    testpaths: tuple[str, ...] = ()
    pythonpath: tuple[Path, ...] = ()
    """Absolute folders pytest puts on ``sys.path`` (its ``pythonpath`` option)."""
    addopts: tuple[str, ...] = ()
    python_files: tuple[str, ...] = ()
    """Test file name patterns (empty: pytest's ``test_*.py`` and ``*_test.py``)."""
    doctest_modules: bool = False
    """``--doctest-modules`` in ``addopts``: the project runs its modules' doctests."""


@dataclass(frozen=True)
class Interpreter:
    path: str
    """Absolute path of the executable."""
    source: str
    """Where it came from: ``setting``, ``VIRTUAL_ENV``, ``.venv``, ``venv`` or ``speedsmith``."""

    @property
    def is_own(self) -> bool:
        """The interpreter running speedsmith (its plugins are not the project's)."""
        return self.source == "speedsmith"


@dataclass(frozen=True)
class Target:
    file: Path
    """Absolute, resolved path of the module file."""
    qualname: str
    """``f``, ``Class.method``, ``Outer.Inner.method``."""
    root: Path
    """The project root (tests run from here)."""
    module: str
    """The dotted import name (``pkg`` for ``pkg/__init__.py``)."""
    import_root: Path
    """The ``sys.path`` entry the module is imported from."""
    sys_path: tuple[str, ...]
    """What the tests see in front of the interpreter's own path: the import root, then
    pytest's ``pythonpath`` entries."""
    pytest: PytestConfig
    interpreter: Interpreter

    @property
    def python(self) -> str:
        return self.interpreter.path

    @property
    def display(self) -> str:
        """``path/relative/to/root.py::qualname``."""
        try:
            shown = self.file.relative_to(self.root)
        except ValueError:
            shown = self.file
        return f"{shown}::{self.qualname}"

    @property
    def run_doctests(self) -> bool:
        """The module's doctests are part of the workload: the project runs them."""
        return self.pytest.doctest_modules


def project_root(path: Path) -> Path:
    """The nearest folder above ``path`` holding a project marker, else the file's folder."""
    folders = list(Path(path).resolve().parents)
    for markers in (ROOT_MARKERS, WEAK_ROOT_MARKERS):
        for folder in folders:
            if any((folder / marker).exists() for marker in markers):
                return folder
    return Path(path).resolve().parent


def resolve_target(file: Path, qualname: str, python: str | None = None) -> Target:
    """Resolve everything about ``qualname`` in ``file`` that later stages need.

    Raises ``InterpreterError`` when ``python`` (the setting) does not name an interpreter."""
    path = Path(file).resolve()
    root = project_root(path)
    config = pytest_config(root)
    import_root, module = import_location(path, root, config.pythonpath)
    sys_path = tuple(dict.fromkeys([str(import_root), *(str(p) for p in config.pythonpath)]))
    return Target(
        file=path,
        qualname=qualname,
        root=root,
        module=module,
        import_root=import_root,
        sys_path=sys_path,
        pytest=config,
        interpreter=find_interpreter(root, python),
    )


# --- import name ----------------------------------------------------------------------------


def import_location(path: Path, root: Path, pythonpath: tuple[Path, ...] = ()) -> tuple[Path, str]:
    """(sys.path entry, dotted module name) of the module file ``path``.

    Regular packages are folders with ``__init__.py``; where the folder above the outermost
    one is not a known import root but a known root (``pythonpath``, ``root/src``, ``root``)
    lies above it through folders with identifier names, those folders are namespace
    packages."""
    path = path.resolve()
    parts = [] if path.name == "__init__.py" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    known = [p.resolve() for p in pythonpath] + [root / "src", root]
    if folder in known or not parts:
        return folder, ".".join(parts) or path.stem
    for entry in known:
        try:
            between = folder.relative_to(entry).parts
        except ValueError:
            continue
        if between and all(part.isidentifier() for part in between):
            return entry, ".".join([*between, *parts])
    return folder, ".".join(parts)


def module_location(path: Path) -> tuple[Path, str]:
    """``import_location`` with the project's own root and pytest configuration."""
    path = Path(path).resolve()
    root = project_root(path)
    return import_location(path, root, pytest_config(root).pythonpath)


# --- pytest configuration -------------------------------------------------------------------


def pytest_config(root: Path) -> PytestConfig:
    """pytest's configuration for a run started in ``root`` with no arguments."""
    for folder in (root, *root.parents):
        found = _read_config(folder)
        if found is not None:
            config_file, options = found
            return _config(config_file, folder, options)
    return PytestConfig(config_file=None, rootdir=root)


def _read_config(folder: Path) -> tuple[Path, dict[str, str | list[str]]] | None:
    """The pytest options in ``folder``, in pytest's order of precedence (None: none here)."""
    for name in ("pytest.ini", ".pytest.ini"):
        file = folder / name
        if file.is_file():
            parser = _ini(file)
            section = dict(parser["pytest"]) if parser and parser.has_section("pytest") else {}
            return file, dict(section)
    file = folder / "pyproject.toml"
    if file.is_file():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            data = {}
        options = data.get("tool", {}).get("pytest", {}).get("ini_options")
        if isinstance(options, dict):
            return file, {k: v for k, v in options.items() if isinstance(v, str | list)}
    for name, wanted in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        file = folder / name
        if file.is_file():
            ini = _ini(file)
            if ini is not None and ini.has_section(wanted):
                return file, dict(ini[wanted])
    return None


def _ini(file: Path) -> configparser.ConfigParser | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(file, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    return parser


def _words(value: str | list[str] | None, *, lines: bool = False) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    try:
        return tuple(value.split() if lines else shlex.split(value))
    except ValueError:
        return tuple(value.split())


def _config(config_file: Path, folder: Path, options: dict[str, str | list[str]]) -> PytestConfig:
    addopts = _words(options.get("addopts"))
    pythonpath = tuple(
        (folder / p).resolve() for p in _words(options.get("pythonpath"), lines=True)
    )
    return PytestConfig(
        config_file=config_file,
        rootdir=folder,
        testpaths=_words(options.get("testpaths"), lines=True),
        pythonpath=pythonpath,
        addopts=addopts,
        python_files=_words(options.get("python_files"), lines=True),
        doctest_modules="--doctest-modules" in addopts,
    )


# --- interpreter ----------------------------------------------------------------------------


def find_interpreter(root: Path, setting: str | None = None) -> Interpreter:
    """The interpreter that runs the project's tests (see the module docstring)."""
    if setting:
        found = _executable(setting, root)
        if found is None:
            raise InterpreterError(
                f"python = {setting!r} is not an executable Python interpreter "
                "(set the `python` setting or --python to one, e.g. .venv/bin/python)"
            )
        return Interpreter(found, "setting")
    active = os.environ.get("VIRTUAL_ENV")
    if active:
        found = _venv_python(Path(active))
        if found is not None and not _is_own_environment(Path(active)):
            return Interpreter(found, "VIRTUAL_ENV")
    for name in VENV_FOLDERS:
        found = _venv_python(root / name)
        if found is not None:
            return Interpreter(found, name)
    return Interpreter(sys.executable, "speedsmith")


def _executable(setting: str, root: Path) -> str | None:
    candidate = Path(setting).expanduser()
    if not candidate.is_absolute() and os.sep in setting:
        candidate = root / candidate
    if candidate.is_dir():
        return _venv_python(candidate)
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate.absolute())
    which = shutil.which(setting)
    return str(Path(which).absolute()) if which else None


def _venv_python(folder: Path) -> str | None:
    """The interpreter of the virtual environment ``folder`` (None: not one)."""
    if not (folder / "pyvenv.cfg").is_file():
        return None
    for name in ("bin/python", "bin/python3", "Scripts/python.exe"):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate.absolute())
    return None


def _is_own_environment(folder: Path) -> bool:
    """``folder`` is the environment speedsmith itself runs in (then it is no better a guess
    than a project's own ``.venv``)."""
    try:
        return folder.resolve() == Path(sys.prefix).resolve()
    except OSError:
        return False


# --- interpreter checks ---------------------------------------------------------------------

MIN_PYTHON = (3, 9)
_PROBE = (
    "import sys, importlib.util as u; "
    "print(sys.version_info[0], sys.version_info[1], int(u.find_spec('pytest') is not None))"
)


@dataclass(frozen=True)
class InterpreterInfo:
    version: tuple[int, int]
    has_pytest: bool


@functools.cache
def probe_interpreter(python: str) -> InterpreterInfo | None:
    """Version and whether pytest is importable (None: it does not run). Cached per path."""
    try:
        done = subprocess.run(
            [python, "-c", _PROBE],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
            env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")},
        )
        major, minor, pytest = (int(x) for x in done.stdout.split()[:3])
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return InterpreterInfo((major, minor), bool(pytest))


def interpreter_problem(target: Target) -> str | None:
    """Why ``target``'s interpreter cannot run its tests, with the fix (None: it can)."""
    info = probe_interpreter(target.python)
    where = "" if target.interpreter.is_own else f" (from {target.interpreter.source})"
    if info is None:
        return f"{target.python}{where} does not run as a Python interpreter"
    if info.version < MIN_PYTHON:
        shown = ".".join(map(str, info.version))
        return (
            f"{target.python}{where} is Python {shown}; speedsmith runs tests on Python "
            f"{'.'.join(map(str, MIN_PYTHON))} or later (set `python` / --python)"
        )
    if not info.has_pytest:
        return (
            f"pytest is not installed for {target.python}{where}: install it with "
            f"`{target.python} -m pip install pytest`, or point the `python` setting "
            "(--python) at an interpreter that has it"
        )
    return None
