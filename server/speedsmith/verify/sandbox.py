"""Sandbox: run the verification harness in a confined child process and stream its verdicts.

Layers (``confine.py`` builds them; SECURITY.md says what each one stops and what it does not):

- a read-only world with one writable scratch directory, private empty ``/tmp``, home and
  ``/run``, PID and network namespaces (bubblewrap, else namespaces the child sets up itself),
  and Landlock inside it as a second, independent layer;
- everywhere: the scratch directory as working directory, HOME and TMPDIR, an allow-listed
  environment (no tokens or secrets), ``python -s -P -B`` (no user site, no bytecode written),
  resource limits the child applies to itself first (CPU seconds, address space, file size,
  open files, processes), its own process group (killed as a whole at the deadline or once
  the parent has what it needs; the PID namespace takes every descendant with it), stderr
  captured and capped;
- its messages are JSON lines with a size cap and a per-run nonce (lines without it are
  ignored); nothing it writes is unpickled.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from speedsmith.errors import Cancelled
from speedsmith.target import probe_interpreter
from speedsmith.verify import confine
from speedsmith.verify.process import Child, run_child

HARNESS = Path(__file__).resolve().with_name("harness.py")
ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT", "TMPDIR")


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 60
    memory_bytes: int = 4 << 30
    file_bytes: int = 16 << 20
    open_files: int = 256
    processes: int = 64


@dataclass
class ChildRun:
    messages: list[dict[str, Any]] = field(default_factory=list)
    returncode: int | None = None
    timed_out: bool = False
    stderr_tail: str = ""
    isolated_network: bool = False
    read_only_tree: bool = False
    layers: tuple[str, ...] = ()
    """The confinement layers that were active (``confine.Plan.layers``, less any that the
    child reported failing)."""


SUPPORT_DISTRIBUTIONS = ("hypothesis", "sortedcontainers")
"""What the harness imports besides the standard library (generated inputs). A project's own
interpreter may lack them: then speedsmith's copies are offered at the end of its
``sys.path`` (the project's own, if any, come first)."""


@functools.cache
def support_packages() -> tuple[tuple[str, str], ...]:
    """(top-level name, path) of every module and package of ``SUPPORT_DISTRIBUTIONS``."""
    found: dict[str, str] = {}
    for name in SUPPORT_DISTRIBUTIONS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for file in dist.files or ():
            top = file.parts[0]
            if top in ("..", "__pycache__") or top.endswith((".dist-info", ".pth")):
                continue
            if len(file.parts) == 1 and not top.endswith(".py"):
                continue
            found[top] = str(Path(str(dist.locate_file(top))).resolve())
    return tuple(sorted(found.items()))


def _offer_support(python: str, scratch: Path) -> tuple[str | None, tuple[str, ...]]:
    """(folder to append to the child's sys.path, folders it must be able to read)."""
    if Path(python).absolute() == Path(sys.executable).absolute():
        return None, ()
    folder = scratch / "support"
    folder.mkdir()
    for name, location in support_packages():
        (folder / name).symlink_to(location)
    return str(folder), tuple(location for _, location in support_packages())


def namespaces_available() -> bool:
    """True where a strong sandbox (bubblewrap or namespaces) can start a process."""
    return confine.bwrap_binary() is not None or confine.unshare_works()


def clean_env(scratch: Path) -> dict[str, str]:
    env = {key: os.environ[key] for key in ENV_ALLOW if key in os.environ}
    env.update(
        HOME=str(scratch),
        TMPDIR=str(scratch),
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return env


def run_harness(
    config: dict[str, Any],
    *,
    read_only_paths: tuple[str, ...] = (),
    python: str | None = None,
    sandbox: str = "auto",
    limits: Limits = Limits(),
    timeout_seconds: float = 30.0,
    on_message: Callable[[dict[str, Any]], bool] | None = None,
    cancel: threading.Event | None = None,
    timing_gate: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
) -> ChildRun:
    """Run the harness with ``config``; ``on_message`` returns False to stop the child early.

    The child stops before its timing rounds (``{"phase": "timing-ready"}``) until the parent
    answers on its stdin; the parent first enters ``timing_gate()`` (the compute lock) and holds
    it until the child is done. The wait does not count against ``timeout_seconds``. Raises
    ``confine.SandboxUnavailable`` when ``sandbox`` asks for layers this machine lacks.
    """
    run = ChildRun()
    python = python or sys.executable
    with tempfile.TemporaryDirectory(prefix="speedsmith-sandbox-") as tmp:
        scratch = Path(tmp)
        nonce = secrets.token_hex(16)
        support, readable = _offer_support(python, scratch)
        plan = confine.plan(
            sandbox, scratch=scratch, read_only=(*read_only_paths, *readable), python=python
        )
        isolate = plan.kind != "weak"
        config = dict(config, limits=limits.__dict__, nonce=nonce, world=plan.world)
        config["support_path"] = support
        config_path = scratch / "config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        stderr_file = scratch / "stderr.txt"
        with stderr_file.open("wb") as stderr:
            # -s -P -B rather than -I: the environment is already an allow-list, and -I would
            # ignore PYTHONHASHSEED, which must match the recording run's.
            # -P (3.11+) keeps the harness's folder off sys.path; older interpreters get the
            # same from the harness itself.
            safe_path = ["-P"] if _version(python) >= (3, 11) else []
            command = [*plan.prefix, python, "-s", *safe_path, "-B", str(HARNESS), str(config_path)]
            held = contextlib.ExitStack()

            def on_line(child: Child, line: bytes) -> bool:
                try:
                    message = json.loads(line)
                except ValueError:
                    return True
                if not isinstance(message, dict) or message.pop("nonce", None) != nonce:
                    return True
                if message.get("phase") == "sandbox":
                    failed = set(message.get("failed", []))
                    run.layers = tuple(
                        layer for layer in plan.layers if layer.split("-v")[0] not in failed
                    )
                    run.isolated_network = isolate and "network-namespace" in run.layers
                    run.read_only_tree = isolate and "read-only-root" in run.layers
                    return True
                if message.get("phase") == "timing-ready":
                    waited = time.monotonic()
                    if timing_gate is not None:
                        held.enter_context(timing_gate())
                    child.extend(time.monotonic() - waited)
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("cancelled")
                    child.answer(b"go\n")
                    return True
                run.messages.append(message)
                if message.get("phase") == "done":
                    return False
                return on_message is None or on_message(message)

            try:
                end = run_child(
                    command,
                    cwd=scratch,
                    env=clean_env(scratch),
                    timeout_seconds=timeout_seconds,
                    cancel=cancel,
                    on_line=on_line,
                    stderr=stderr,
                    interactive=True,
                )
            finally:
                held.close()  # the compute lock, once the child is dead
            run.timed_out = end.why == "deadline"
            run.returncode = end.returncode
        run.stderr_tail = stderr_file.read_bytes()[-4000:].decode("utf-8", "replace")
    return run


def _version(python: str) -> tuple[int, int]:
    if python == sys.executable:
        return sys.version_info[:2]
    info = probe_interpreter(python)
    return info.version if info is not None else sys.version_info[:2]
