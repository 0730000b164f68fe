"""Audit: what the code under verification tries to do to the world (stdlib only, Python 3.9+).

A diagnostic inside the harness, not the boundary (``confine.py`` is): a ``sys.addaudithook``
hook records, while the original or the candidate runs, every attempt to write, remove,
rename or link files, change permissions, spawn or signal processes, open sockets, use
``ctypes`` or ``mmap``, list or read files outside the folders the run may read, introspect
the garbage collector or add audit hooks. A candidate that attempts an effect the original
did not is not equivalent; the reason names the attempt. While a candidate runs, mutating
attempts are also refused on the spot (the hook raises), so they fail even before the
sandbox's walls are reached.

``ProcessState`` notices what outlives a call: threads, ``atexit`` handlers and signal
handlers. ``Nondeterminism`` notices an original reading the clock or using randomness.
"""

from __future__ import annotations

import atexit
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

_WRITE_MODE = frozenset("wax+")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_SINKS = frozenset({"/dev/null", "/dev/zero", "/dev/full"})
"""Writing there changes nothing."""
_HARMLESS_OS = frozenset({"os.listdir", "os.scandir", "os.getxattr", "os.listxattr"})
_VERBS = {
    "os.remove": "remove",
    "os.rmdir": "remove the folder",
    "os.rename": "rename",
    "os.mkdir": "create the folder",
    "os.symlink": "symlink",
    "os.link": "hard-link",
    "os.chmod": "chmod",
    "os.chown": "chown",
    "os.truncate": "truncate",
    "os.utime": "change the times of",
    "os.chdir": "change directory to",
    "os.system": "run",
    "os.exec": "exec",
    "os.posix_spawn": "spawn",
    "os.spawn": "spawn",
    "os.fork": "fork",
    "os.forkpty": "fork",
    "os.kill": "signal process",
    "os.killpg": "signal process group",
    "os.putenv": "set the environment variable",
    "os.unsetenv": "unset the environment variable",
    "subprocess.Popen": "run",
    "shutil.rmtree": "remove the tree",
    "shutil.move": "move",
    "shutil.copyfile": "copy",
    "shutil.copytree": "copy the tree",
    "socket.connect": "connect to",
    "socket.bind": "bind to",
    "socket.sendto": "send to",
    "socket.getaddrinfo": "resolve",
    "socket.__new__": "open a socket",
    "ctypes.dlopen": "load a C library with ctypes",
    "mmap.__new__": "mmap",
    "sys.addaudithook": "add an audit hook",
    "gc.get_objects": "walk the garbage collector's objects",
    "gc.get_referrers": "walk the garbage collector's referrers",
    "gc.get_referents": "walk the garbage collector's referents",
    "tempfile.mkstemp": "create a temporary file",
    "tempfile.mkdtemp": "create a temporary folder",
    "builtins.input": "read standard input",
}
_WATCHED_PREFIXES = (
    "open",
    "glob.",
    "os.",
    "shutil.",
    "subprocess.",
    "socket.",
    "ctypes.",
    "mmap.",
    "pty.",
    "fcntl.",
    "resource.",
    "syslog.",
    "sqlite3.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "poplib.",
    "imaplib.",
    "nntplib.",
    "telnetlib.",
    "webbrowser.",
    "tempfile.",
    "gc.get_",
    "signal.",
    "sys.addaudithook",
    "builtins.input",
    "builtins.breakpoint",
)


class Blocked(PermissionError):
    """Raised inside a candidate that attempts a mutating side effect."""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, int):
        return f"fd {value}"
    try:
        return os.fspath(value) if value is not None else "?"
    except TypeError:
        return repr(value)[:80]


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


class Audit:
    """The hook's state. ``who`` says whose effects are being recorded (None: nobody's)."""

    def __init__(self, readable: Sequence[str]):
        roots = [*readable, sys.prefix, sys.base_prefix, sys.exec_prefix, os.getcwd()]
        roots += [p for p in sys.path if p and os.path.isabs(p)]
        self.roots = tuple(os.path.realpath(p) for p in dict.fromkeys(roots))
        self.who: str | None = None
        self.effects: dict[str, list[str]] = {"original": [], "candidate": []}
        self._seen: dict[str, set[str]] = {"original": set(), "candidate": set()}

    def install(self) -> None:
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: Any) -> None:
        who = self.who
        if event == "sys.addaudithook":
            if who is not None:
                self._add(who, "add an audit hook")
            raise RuntimeError("speedsmith: audit hooks are fixed in the sandbox")
        if who is None or not event.startswith(_WATCHED_PREFIXES):
            return
        self.who = None  # what the hook itself does is not audited
        try:
            effect, mutating = self._describe(event, args)
        except Exception:
            effect, mutating = event, True
        finally:
            self.who = who
        if effect is None:
            return
        self._add(who, effect)
        if mutating and who == "candidate":
            raise Blocked(f"speedsmith sandbox: {effect} is not allowed")

    def _add(self, who: str, effect: str) -> None:
        if effect not in self._seen[who] and len(self.effects[who]) < 50:
            self._seen[who].add(effect)
            self.effects[who].append(effect)

    def _path(self, value: Any) -> str:
        """The path the kernel will act on: relative to the working directory, symlinks
        (``/proc/self/cwd``, links planted in scratch) resolved."""
        text = _text(value)
        if isinstance(value, int) or text == "?":
            return text
        return os.path.realpath(os.path.join(os.getcwd(), text))

    def _describe(self, event: str, args: Any) -> tuple[str | None, bool]:
        if event == "open":
            path, mode, flags = ([*list(args), None, None, None])[:3]
            writing = (isinstance(mode, str) and bool(_WRITE_MODE & set(mode))) or (
                mode is None and isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
            )
            if writing:
                target = self._path(path)
                return (None, False) if target in _SINKS else (f"write {target}", True)
            if isinstance(path, int):
                return None, False
            full = self._path(path)
            if _under(full, self.roots) or full.startswith("/dev/"):
                return None, False
            return f"read {full}", False
        if event in ("os.listdir", "os.scandir", "glob.glob", "glob.glob/2"):
            full = self._path(args[0] if args and args[0] is not None else ".")
            if _under(full, self.roots):
                return None, False
            return f"list {full}", False
        if event in _HARMLESS_OS:
            return None, False
        if event in ("socket.getaddrinfo", "socket.gethostbyname"):
            port = f":{args[1]}" if event == "socket.getaddrinfo" and len(args) > 1 else ""
            return f"resolve {_text(args[0])}{port}", True
        if event.startswith("socket."):
            target = args[1] if event != "socket.__new__" and len(args) > 1 else ""
            verb = _VERBS.get(event, event)
            return f"{verb} {target}".strip(), True
        if event in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn"):
            command = args[1] if len(args) > 1 else args[0]
            if isinstance(command, (list, tuple)):
                command = " ".join(_text(c) for c in command)
            return f"run {_text(command)[:120]}", True
        if event == "os.system":
            return f"run {_text(args[0])[:120]}", True
        if event in ("os.kill", "os.killpg"):
            return f"{_VERBS[event]} {args[0]} with signal {args[1]}", True
        if event in ("os.rename", "os.symlink", "os.link", "shutil.move", "shutil.copyfile",
                     "shutil.copytree"):  # fmt: skip
            return f"{_VERBS[event]} {self._path(args[0])} -> {self._path(args[1])}", True
        if event in ("os.putenv", "os.unsetenv"):
            return f"{_VERBS[event]} {_text(args[0])}", True
        if event == "mmap.__new__" and args and args[0] == -1:
            return None, False  # anonymous memory, no file behind it
        verb = _VERBS.get(event, f"call {event}")
        if event in ("os.fork", "os.forkpty", "ctypes.dlopen") or event.startswith("gc."):
            return verb, event != "gc.get_referents"
        if event.startswith("ctypes."):
            return "use ctypes", True
        if event == "tempfile.mkstemp" or event == "tempfile.mkdtemp":
            return f"{verb} in {self._path(args[0]) if args else '?'}", True
        if args and isinstance(args[0], (str, bytes, os.PathLike)):
            return f"{verb} {self._path(args[0])}", True
        return verb, True

    def new_effects(self, allowed: Sequence[str]) -> list[str]:
        """The candidate's effects that the original did not show (here or in ``allowed``)."""
        known = set(allowed) | self._seen["original"]
        return [e for e in self.effects["candidate"] if e not in known]


def _signals() -> list[Any]:
    try:
        every = sorted(signal.valid_signals())
    except AttributeError:  # pragma: no cover - not POSIX
        return []
    return [s for s in every if s not in (signal.SIGKILL, signal.SIGSTOP)]


class ProcessState:
    """Threads, atexit handlers and signal handlers, compared before and after."""

    def __init__(self) -> None:
        self.threads = set(threading.enumerate())
        self.atexit = _atexit_count()
        self.handlers = {s: _handler(s) for s in _signals()}

    def changes(self) -> list[str]:
        found = []
        alive = [t for t in threading.enumerate() if t not in self.threads and t.is_alive()]
        if alive:
            found.append(f"left {len(alive)} thread(s) running after the call")
        if _atexit_count() != self.atexit:
            found.append("registered an atexit handler")
        for number, before in self.handlers.items():
            if _handler(number) is not before:
                found.append(f"installed a handler for {signal.Signals(number).name}")
                break
        return found


def _atexit_count() -> int:
    counter = getattr(atexit, "_ncallbacks", None)
    return int(counter()) if counter is not None else 0


def _handler(number: Any) -> Any:
    try:
        return signal.getsignal(number)
    except (ValueError, OSError):
        return None


def _clocks() -> dict[Any, str]:
    names = ["time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"]
    names += ["process_time", "process_time_ns", "thread_time", "thread_time_ns"]
    found = {getattr(time, n): f"reads the clock (time.{n})" for n in names if hasattr(time, n)}
    found[os.urandom] = "uses randomness (os.urandom)"
    return found


class Nondeterminism:
    """Watches the original's calls (``sys.setprofile``) for the clock and randomness."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self._clocks = _clocks()
        self._state: Any = None

    def __enter__(self) -> Nondeterminism:
        self._state = random.getstate()
        clocks, found = self._clocks, self.found

        def profiler(frame: Any, event: str, arg: Any) -> None:
            if event != "c_call":
                return
            try:
                what = clocks.get(arg)
            except TypeError:  # unhashable
                return
            if what is None:
                owner, name = getattr(arg, "__self__", None), getattr(arg, "__name__", "")
                module = getattr(owner, "__module__", "")
                if name in ("now", "utcnow", "today") and module in ("datetime", "_datetime"):
                    what = f"reads the clock ({getattr(owner, '__name__', '?')}.{name})"
            if what is not None and what not in found:
                found.append(what)

        sys.setprofile(profiler)
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.setprofile(None)
        if random.getstate() != self._state:
            self.found.append("uses randomness (the random module's shared generator)")
