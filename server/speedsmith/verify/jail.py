"""Jail: what a confined child does to itself before any user code runs (stdlib only).

Imported by path by the harness (``harness.py``), and run as a launcher for the final gate:
``python jail.py WORLD_JSON -- COMMAND...`` applies the world, then ``execv``s ``COMMAND``
(Landlock domains and mount namespaces survive ``execve``).

- ``build_world``: inside ``unshare -rmnpf`` (the ``namespaces`` plan, where bubblewrap does
  not run), hide the private paths under empty tmpfs mounts, bind back the paths the run
  needs, make every mount read-only, then make the scratch directory writable again;
- ``landlock_restrict``: the independent second layer (Linux >= 5.13). Writes (creating,
  removing, renaming, linking, truncating) only beneath the writable paths and ``/dev/null``;
  reads, when asked, only beneath the system folders and the readable paths; no TCP bind or
  connect (ABI 4) and no signals or abstract unix sockets outside the sandbox (ABI 6).

Must run on Python 3.9+ (the project's interpreter runs it).
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import sys
from typing import Any

_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_SYS_MOUNT_SETATTR = 442
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REMOVE_DIR, _REMOVE_FILE, _MAKE_CHAR, _MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_MAKE_REG, _MAKE_SOCK, _MAKE_FIFO, _MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
_MAKE_SYM, _REFER, _TRUNCATE = 1 << 12, 1 << 13, 1 << 14
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT = 1, 2, 4, 32
_MS_BIND, _MS_REC, _MS_PRIVATE = 4096, 16384, 1 << 18
_MOUNT_ATTR_RDONLY = 1
_AT_FDCWD, _AT_RECURSIVE = -100, 0x8000
_ST_RDONLY = 1

_UNREADABLE_TOP = frozenset({"home", "root", "tmp", "run", "media", "mnt", "lost+found"})
"""Top-level folders the harness may not read (Landlock): homes and shared temporary space."""
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full")


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _syscall_numbers_known() -> bool:
    """444-446 and 442 are the same on x86_64 and aarch64 (and every 64-bit arch since 5.x)."""
    return sys.platform.startswith("linux") and platform.machine() in (
        "x86_64",
        "aarch64",
        "arm64",
        "riscv64",
        "ppc64le",
        "s390x",
    )


def landlock_abi() -> int:
    """The kernel's Landlock ABI (0 where it is missing or disabled)."""
    if not _syscall_numbers_known():
        return 0
    try:
        libc = _libc()
        libc.syscall.restype = ctypes.c_long
        version = libc.syscall(
            _SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), _LANDLOCK_CREATE_RULESET_VERSION
        )
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _write_rights(abi: int) -> int:
    rights = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_CHAR | _MAKE_DIR | _MAKE_REG
    rights |= _MAKE_SOCK | _MAKE_FIFO | _MAKE_BLOCK | _MAKE_SYM
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    return rights


def _file_only(rights: int) -> int:
    """The subset of ``rights`` that applies to a file (not a folder)."""
    return rights & (_EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE)


def landlock_restrict(writable: list[str], readable: list[str] | None, network: bool) -> str | None:
    """Restrict this process and its future children; None on success, else why not."""
    abi = landlock_abi()
    if abi <= 0:
        return "Landlock is not available"
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    write = _write_rights(abi)
    read = (_READ_FILE | _READ_DIR) if readable is not None else 0
    attr = (ctypes.c_uint64 * 3)(write | read, 0, 0)
    size = 8
    if abi >= 4:
        size = 16
        if not network:
            attr[1] = _NET_BIND_TCP | _NET_CONNECT_TCP
    if abi >= 6:
        size = 24
        attr[2] = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL
    ruleset = libc.syscall(
        _SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0
    )
    if ruleset < 0:
        return f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}"
    try:
        rules: dict[str, int] = {}
        for path in writable:
            rules[path] = rules.get(path, 0) | write | read
        for path in _DEVICES:
            rules[path] = rules.get(path, 0) | _WRITE_FILE | read
        if readable is not None:
            top = [os.path.join("/", e) for e in os.listdir("/") if e not in _UNREADABLE_TOP]
            for path in [*top, *readable]:
                rules[path] = rules.get(path, 0) | read
        for path, rights in rules.items():
            problem = _add_rule(libc, ruleset, path, rights)
            if problem and path in writable:
                return problem
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return f"no_new_privs: {os.strerror(ctypes.get_errno())}"
        if libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            return f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}"
    finally:
        os.close(ruleset)
    return None


def _add_rule(libc: Any, ruleset: int, path: str, rights: int) -> str | None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as err:
        return f"{path}: {err.strerror}"
    try:
        if not os.path.isdir(path):
            rights = _file_only(rights)
        beneath = _PathBeneath(rights, fd)
        if libc.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, _LANDLOCK_RULE_PATH_BENEATH,
                        ctypes.byref(beneath), 0) != 0:  # fmt: skip
            return f"landlock_add_rule {path}: {os.strerror(ctypes.get_errno())}"
    finally:
        os.close(fd)
    return None


def _mount(libc: Any, source: str | None, target: str, kind: str | None, flags: int,
           data: str | None = None) -> str | None:  # fmt: skip
    def encode(text):
        return None if text is None else text.encode()

    if libc.mount(encode(source), target.encode(), encode(kind), flags, encode(data)) != 0:
        return f"mount {target}: {os.strerror(ctypes.get_errno())}"
    return None


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def build_world(private: list[str], read_only: list[str], scratch: str) -> str | None:
    """Inside fresh user + mount namespaces: the same world bubblewrap builds. None on success,
    else what failed (the caller then reports the layer missing)."""
    libc = _libc()
    problem = _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    if problem:
        return problem
    keep = sorted(dict.fromkeys([*read_only, scratch]), key=len)
    fds = {}
    for path in keep:
        try:
            fds[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
    for path in private:
        problem = _mount(libc, "tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755")
        if problem:
            return problem
    bound: list[str] = []
    for path, fd in fds.items():
        hidden = any(_under(path, p) for p in private)
        if path != scratch and (not hidden or any(_under(path, b) for b in bound)):
            continue
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(path, exist_ok=True)
        elif not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w"):
                pass
        problem = _mount(libc, f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC)
        if problem:
            return problem
        bound.append(path)
    for fd in fds.values():
        os.close(fd)
    problem = _read_only_everywhere(libc, scratch)
    if problem:
        return problem
    if not os.statvfs("/").f_flag & _ST_RDONLY:
        return "/ is still writable"
    return None


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _read_only_everywhere(libc: Any, scratch: str) -> str | None:
    """Every mount read-only (``mount_setattr``, Linux >= 5.12; else one remount per mount),
    then the scratch mount writable again."""
    libc.syscall.restype = ctypes.c_long
    attr = _MountAttr(_MOUNT_ATTR_RDONLY, 0, 0, 0)
    done = libc.syscall(_SYS_MOUNT_SETATTR, _AT_FDCWD, b"/", _AT_RECURSIVE,
                        ctypes.byref(attr), ctypes.sizeof(attr))  # fmt: skip
    if done == 0:
        clear = _MountAttr(0, _MOUNT_ATTR_RDONLY, 0, 0)
        if libc.syscall(_SYS_MOUNT_SETATTR, _AT_FDCWD, scratch.encode(), _AT_RECURSIVE,
                        ctypes.byref(clear), ctypes.sizeof(clear)) != 0:  # fmt: skip
            return f"mount_setattr {scratch}: {os.strerror(ctypes.get_errno())}"
        return None
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        points = [line.split()[4] for line in handle if len(line.split()) > 4]
    for point in points:
        if _under(point, scratch):
            continue
        point = point.encode().decode("unicode_escape")
        _mount(libc, None, point, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY)
    return None


def apply(world: dict[str, Any]) -> dict[str, Any]:
    """Everything the world asks of this process; returns what took effect."""
    result: dict[str, Any] = {"world": None, "landlock": None}
    if world.get("private") is not None:
        result["world"] = build_world(
            list(world["private"]), list(world.get("read_only", [])), world["writable"][0]
        )
        if result["world"] is not None:
            result["landlock"] = "not attempted: the world was not built"
            return result
    if world.get("landlock"):
        result["landlock"] = landlock_restrict(
            list(world["writable"]), world.get("readable"), bool(world.get("network"))
        )
    else:
        result["landlock"] = "Landlock is not available"
    return result


def main(argv: list[str]) -> int:
    """``jail.py WORLD_JSON -- COMMAND...``: apply the world, then become ``COMMAND``."""
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: jail.py WORLD_JSON -- COMMAND...\n")
        return 2
    world = json.loads(argv[1])
    result = apply(world)
    if world.get("private") is not None and result["world"] is not None:
        sys.stderr.write(
            f"speedsmith sandbox: cannot build the read-only world: {result['world']}\n"
        )
        return 125
    if world.get("landlock") and result["landlock"] is not None:
        sys.stderr.write(f"speedsmith sandbox: Landlock failed: {result['landlock']}\n")
        return 125
    os.execv(argv[3], argv[3:])
    return 127  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv))
