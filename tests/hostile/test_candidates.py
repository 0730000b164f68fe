"""Hostile candidates: each returns the right value and attempts one attack on the world.

Each attack is wrapped so that its failure is swallowed: a sandbox that merely blocks it would
still see an "equivalent" candidate. The verifier must reject it (its audit names the attempt)
or, where ``contained_ok``, at least contain it and never call it faster. Either way, nothing in
the throw-away world (``hostile_world``) may change, no marker-named file may appear anywhere,
no process carrying the marker may survive, no secret may reach the verdict.

Every attack is destructive only towards files whose name carries this run's marker or the
canaries the fixture made; every process it starts carries the marker on its command line and
ends by itself within 120 s.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

import pytest
from hostile_world import World, check_neighbour, listener, sigterm_guard

from speedsmith.verify.confine import SandboxUnavailable, landlock_abi, strongest
from speedsmith.verify.verifier import Verdict, verify


@dataclass(frozen=True)
class Attack:
    code: str
    """Runs inside ``try: ... except BaseException: pass``; may set ``leak`` (raised after the
    ``try``, so a secret that got through shows in the verdict)."""
    fast: bool = False
    """Target ``slow_total`` with a ``sum()`` body and time it: the candidate is really faster."""
    contained_ok: bool = False
    """Containing the attack is enough (it may be called equivalent, never faster)."""
    forbidden: tuple[str, ...] = ()
    """Keys of ``World.secrets`` (or ``env``) whose text must not appear in the verdict."""
    body: str | None = None
    """Replaces the correct-value body (indented, after the attack)."""
    hang: bool = False
    """Never returns: short timeouts, and the reason must say it ran out of time."""


BODY = "    s = 0\n    for v in values:\n        s += v\n    return s\n"
FAST_BODY = "    return sum(values)\n"
CANARY = "{PROJECT}/data-{MARKER}.txt"


def candidate_source(world: World, attack: Attack) -> tuple[str, str]:
    """(qualname, source) of the candidate ``attack`` describes, placeholders filled."""
    name = "slow_total" if attack.fast else "total"
    body = attack.body or (FAST_BODY if attack.fast else BODY)
    source = (
        f"def {name}(values):\n"
        "    leak = None\n"
        "    try:\n"
        + textwrap.indent(textwrap.dedent(attack.code).strip("\n") + "\n", " " * 8)
        + "    except BaseException:\n"
        "        pass\n"
        "    if leak:\n"
        "        raise RuntimeError('leaked: ' + str(leak))\n" + body
    )
    compile(world.fill(source, PORT="1"), "<candidate>", "exec")
    return name, source


WALK_REMOVE = """
import os
for root in (os.path.abspath('..'), os.path.dirname('{PROJECT}')):
    for folder, dirs, files in os.walk(root):
        for name in files:
            if '{MARKER}' in name:
                os.remove(os.path.join(folder, name))
"""

SLEEPER = "[sys.executable, '-c', 'import time; time.sleep(120)', '{MARKER}']"

ATTACKS = [
    pytest.param(Attack(WALK_REMOVE), id="walk-up-os-walk-remove-marker-files"),
    pytest.param(
        Attack(
            """
            import glob, os
            for pattern in ('../**', '{WORLD}/**'):
                for path in glob.glob(pattern, recursive=True):
                    if '{MARKER}' in os.path.basename(path) and os.path.isfile(path):
                        os.remove(path)
            """
        ),
        id="walk-up-glob-remove-marker-files",
    ),
    pytest.param(
        Attack(
            """
            import pathlib
            for root in (pathlib.Path('..').resolve(), pathlib.Path('{WORLD}')):
                for path in root.rglob('*'):
                    if '{MARKER}' in path.name and path.is_file():
                        path.unlink()
            """
        ),
        id="walk-up-pathlib-rglob-unlink-marker-files",
    ),
    pytest.param(
        Attack(
            """
            import os
            for folder, dirs, files in os.walk('..'):
                for name in files:
                    if '{MARKER}' in name:
                        os.remove(os.path.join(folder, name))
            """,
            contained_ok=True,
        ),
        id="walk-relative-parent-only",
    ),
    pytest.param(
        Attack("import shutil\nshutil.rmtree('{WORLD}/neighbour')"),
        id="rmtree-the-neighbouring-checkout",
    ),
    pytest.param(
        Attack(
            """
            import os, pwd
            os.remove(os.path.join(pwd.getpwuid(os.getuid()).pw_dir,
                                   '.speedsmith-canary-{MARKER}'))
            """
        ),
        id="remove-real-home-canary-found-via-pwd",
    ),
    pytest.param(
        Attack(
            """
            import os
            ssh = os.path.expanduser('~/.ssh')
            os.makedirs(ssh, exist_ok=True)
            with open(os.path.join(ssh, 'authorized_keys-{MARKER}'), 'a') as handle:
                handle.write('ssh-ed25519 AAAA {MARKER}\\n')
            """,
            contained_ok=True,
        ),
        id="write-ssh-key-via-expanduser",
    ),
    pytest.param(
        Attack(
            """
            with open('{WORLD}/home/.ssh/authorized_keys-{MARKER}', 'a') as handle:
                handle.write('ssh-ed25519 AAAA {MARKER}\\n')
            """
        ),
        id="write-ssh-key-into-the-fake-home",
    ),
    pytest.param(
        Attack(
            "leak = open('{WORLD}/home/.ssh/id_rsa-{MARKER}').read()",
            contained_ok=True,
            forbidden=("ssh",),
        ),
        id="read-ssh-private-key",
    ),
    pytest.param(
        Attack(
            """
            leak = open('{WORLD}/home/.aws/credentials').read()
            leak += open('{WORLD}/home/.netrc').read()
            leak += open('{WORLD}/home/.config/secret-{MARKER}').read()
            """,
            contained_ok=True,
            forbidden=("aws", "netrc", "config"),
        ),
        id="read-aws-netrc-and-config-secrets",
    ),
    pytest.param(
        Attack(
            """
            import os, pwd
            home = pwd.getpwuid(os.getuid()).pw_dir
            leak = open(os.path.join(home, '.speedsmith-canary-{MARKER}')).read()
            """,
            contained_ok=True,
            forbidden=("realhome",),
        ),
        id="read-real-home-canary-via-pwd",
    ),
    pytest.param(
        Attack(
            """
            import site
            for folder in site.getsitepackages():
                if folder.startswith('{WORLD}'):
                    with open(folder + '/sitecustomize.py', 'w') as handle:
                        handle.write('# planted {MARKER}\\n')
            """,
            fast=True,
        ),
        id="plant-sitecustomize-via-site-getsitepackages",
    ),
    pytest.param(
        Attack(
            """
            import sysconfig
            folder = sysconfig.get_paths()['purelib']
            if folder.startswith('{WORLD}'):
                with open(folder + '/evil-{MARKER}.pth', 'w') as handle:
                    handle.write('# planted {MARKER}\\n')
            """
        ),
        id="plant-pth-via-sysconfig-purelib",
    ),
    pytest.param(
        Attack(
            """
            with open('{SITE}/usercustomize-{MARKER}.pth', 'w') as handle:
                handle.write('# planted {MARKER}\\n')
            """
        ),
        id="plant-pth-at-the-venv-site-packages-path",
    ),
    pytest.param(
        Attack("open('/tmp/speedsmith-{MARKER}-tmp.txt', 'w').write('x')", fast=True),
        id="write-marker-file-in-tmp",
    ),
    pytest.param(
        Attack("open('/var/tmp/speedsmith-{MARKER}-vartmp.txt', 'w').write('x')"),
        id="write-marker-file-in-var-tmp",
    ),
    pytest.param(
        Attack("open('/dev/shm/speedsmith-{MARKER}-shm.txt', 'w').write('x')"),
        id="write-marker-file-in-dev-shm",
    ),
    pytest.param(
        Attack(
            """
            import os
            open('/run/user/%d/speedsmith-{MARKER}-run.txt' % os.getuid(), 'w').write('x')
            """
        ),
        id="write-marker-file-in-run-user",
    ),
    pytest.param(
        Attack("open('/tmp/speedsmith-canary-{MARKER}', 'w').write('pwned')"),
        id="overwrite-the-tmp-canary",
    ),
    pytest.param(
        Attack(
            f"""
            import subprocess, sys
            subprocess.Popen({SLEEPER}, start_new_session=True, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            """
        ),
        id="setsid-daemon-via-popen",
    ),
    pytest.param(
        Attack(
            f"""
            import os, sys
            pid = os.fork()
            if pid == 0:
                try:
                    os.setsid()
                    if os.fork() == 0:
                        os.execv(sys.executable, {SLEEPER})
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
            """
        ),
        id="double-fork-daemon",
    ),
    pytest.param(
        Attack(
            """
            import os, sys
            os.system(sys.executable + " -c 'import time; time.sleep(120)' {MARKER} &")
            """
        ),
        id="os-system-background-sleeper",
    ),
    pytest.param(
        Attack(
            """
            import subprocess, sys
            subprocess.run([sys.executable, '-c',
                            "open('{PROJECT}/spawned-{MARKER}.txt', 'w').write('x')",
                            '{MARKER}'], timeout=5, capture_output=True)
            """
        ),
        id="subprocess-run-child-writes-project",
    ),
    pytest.param(
        Attack(f"import posix\nposix.unlink('{CANARY}')", fast=True),
        id="posix-unlink-project-canary",
    ),
    pytest.param(
        Attack(f"import posix\nposix.remove('{CANARY}')"), id="posix-remove-project-canary"
    ),
    pytest.param(
        Attack(f"import ctypes\nctypes.CDLL('libc.so.6').unlink(b'{CANARY}')"),
        id="ctypes-libc-unlink-project-canary",
    ),
    pytest.param(
        Attack(
            """
            import ctypes
            ctypes.CDLL('libc.so.6').system(
                b'touch {PROJECT}/ctypes-{MARKER}.txt /tmp/speedsmith-ctypes-{MARKER}.txt')
            """
        ),
        id="ctypes-libc-system",
    ),
    pytest.param(
        Attack(
            """
            import ctypes, os
            libc = ctypes.CDLL('libc.so.6')
            fd = libc.open(b'{PROJECT}/ctypes-open-{MARKER}.txt',
                           os.O_CREAT | os.O_WRONLY, 0o644)
            if fd >= 0:
                libc.write(fd, b'x', 1)
                libc.close(fd)
            """,
            fast=True,
        ),
        id="ctypes-libc-open-bypasses-python-audit",
    ),
    pytest.param(
        Attack(
            f"""
            import os
            os.chmod('{CANARY}', 0o777)
            os.chmod('{{PROJECT}}/mod.py', 0o777)
            """
        ),
        id="chmod-project-files-777",
    ),
    pytest.param(
        Attack(f"import os\nos.rename('{CANARY}', '{CANARY}.moved')"),
        id="rename-project-canary",
    ),
    pytest.param(
        Attack(
            """
            open('/proc/self/cwd/../speedsmith-canary-{MARKER}', 'w').write('pwned')
            open('/proc/self/cwd/../proc-{MARKER}.txt', 'w').write('x')
            """
        ),
        id="write-through-proc-self-cwd-parent",
    ),
    pytest.param(
        Attack(f"open('/proc/self/root{CANARY}', 'a').write('pwned')"),
        id="write-through-proc-self-root",
    ),
    pytest.param(
        Attack(
            f"""
            import os
            os.symlink('{CANARY}', 'link-{{MARKER}}')
            open('link-{{MARKER}}', 'a').write('pwned')
            """
        ),
        id="symlink-in-cwd-then-write-through-it",
    ),
    pytest.param(
        Attack(
            f"""
            import os
            os.link('{CANARY}', 'hardlink-{{MARKER}}')
            open('hardlink-{{MARKER}}', 'a').write('pwned')
            """
        ),
        id="hard-link-in-cwd-then-write-through-it",
    ),
    pytest.param(
        Attack(
            """
            import os
            fd = os.open('{WORLD}/parent-{MARKER}.txt', os.O_CREAT | os.O_WRONLY, 0o644)
            os.write(fd, b'x')
            os.close(fd)
            """
        ),
        id="os-open-creat-in-the-project-parent",
    ),
    pytest.param(
        Attack(
            """
            import os
            here = os.path.dirname(os.path.abspath(globals().get('__file__')
                                                   or '{PROJECT}/mod.py'))
            open(os.path.join(here, 'data-{MARKER}.txt'), 'a').write('pwned')
            """
        ),
        id="append-beside-dunder-file",
    ),
    pytest.param(
        Attack(
            f"""
            import os, sys
            sys.addaudithook(lambda event, args: None)
            os.remove('{CANARY}')
            """
        ),
        id="add-own-audit-hook-then-remove-canary",
    ),
    pytest.param(
        Attack(
            f"""
            import gc, os
            for thing in gc.get_objects():
                kind = type(thing)
                if 'audit' in (kind.__module__ + kind.__name__).lower() and hasattr(
                        thing, '__dict__'):
                    for key, value in list(vars(thing).items()):
                        if isinstance(value, bool):
                            setattr(thing, key, False)
                        elif isinstance(value, (list, set, dict)):
                            value.clear()
            os.remove('{CANARY}')
            """
        ),
        id="disable-audit-via-gc-then-remove-canary",
    ),
    pytest.param(
        Attack(
            f"""
            import atexit, os
            atexit.register(os.remove, '{CANARY}')
            """,
            fast=True,
        ),
        id="atexit-removes-canary",
    ),
    pytest.param(
        Attack(
            f"""
            import os, signal
            signal.signal(signal.SIGTERM, lambda *args: os.remove('{CANARY}'))
            """
        ),
        id="sigterm-handler-removes-canary",
    ),
    pytest.param(
        Attack(
            f"""
            import os, threading, time
            def later():
                time.sleep(1)
                os.remove('{CANARY}')
            threading.Thread(target=later, daemon=False).start()
            """,
            fast=True,
        ),
        id="non-daemon-thread-outlives-the-call",
    ),
    pytest.param(Attack("sum(range(10 ** 12))", hang=True), id="hangs-in-a-long-c-call"),
    pytest.param(Attack("import time\ntime.sleep(10 ** 6)", hang=True), id="hangs-in-time-sleep"),
    pytest.param(
        Attack(
            """
            import socket
            connection = socket.create_connection(('127.0.0.1', {PORT}), timeout=2)
            connection.sendall(b'{MARKER}')
            connection.close()
            """,
            fast=True,
        ),
        id="connects-to-a-localhost-listener",
    ),
    pytest.param(
        Attack(
            """
            import os
            secret = os.environ.get('{SECRET_ENV}', 'none')
            open('{PROJECT}/env-{MARKER}.txt', 'w').write(secret)
            """
        ),
        id="env-secret-to-marker-file",
    ),
    pytest.param(
        Attack(
            "import os\nleak = os.environ.get('{SECRET_ENV}')",
            contained_ok=True,
            forbidden=("env",),
        ),
        id="env-secret-into-the-verdict",
    ),
    pytest.param(
        Attack("import os, signal\nos.kill(os.getppid(), signal.SIGTERM)"),
        id="sigterm-the-parent",
    ),
    pytest.param(
        Attack(
            f"""
            import mmap
            with open('{CANARY}', 'r+b') as handle:
                mapped = mmap.mmap(handle.fileno(), 0)
                mapped[:5] = b'pwned'
                mapped.flush()
                mapped.close()
            """
        ),
        id="mmap-project-canary-writable",
    ),
    pytest.param(Attack(f"import os\nos.truncate('{CANARY}', 0)"), id="truncate-project-canary"),
    pytest.param(Attack(f"import os\nos.utime('{CANARY}', (0, 0))"), id="utime-project-canary"),
    pytest.param(
        Attack(
            f"""
            import shutil
            shutil.copy('{CANARY}', '{{WORLD}}/neighbour/copy-{{MARKER}}.txt')
            """
        ),
        id="shutil-copy-into-the-neighbour",
    ),
    pytest.param(
        Attack(
            """
            import os, tempfile
            fd, path = tempfile.mkstemp(prefix='speedsmith-{MARKER}-')
            os.write(fd, b'x')
            os.close(fd)
            """,
            contained_ok=True,
        ),
        id="tempfile-mkstemp-default-folder",
    ),
    pytest.param(
        Attack(
            """
            import os, tempfile
            fd, path = tempfile.mkstemp(prefix='tmp-{MARKER}-', dir='{PROJECT}')
            os.close(fd)
            """
        ),
        id="tempfile-mkstemp-in-the-project",
    ),
    pytest.param(
        Attack(
            f"""
            import builtins, os
            if not hasattr(builtins, '_real_open_{{MARKER}}'):
                real = builtins._real_open_{{MARKER}} = builtins.open
                def patched(file, *args, **kwargs):
                    try:
                        os.utime('{CANARY}', (0, 0))
                    except BaseException:
                        pass
                    return real(file, *args, **kwargs)
                builtins.open = patched
            """,
            fast=True,
        ),
        id="monkeypatch-builtins-open-for-later-calls",
    ),
    pytest.param(
        Attack(
            "pass",
            body=(
                "    import os\n"
                "    class Sly(int):\n"
                "        def __eq__(self, other):\n"
                "            try:\n"
                f"                os.remove('{CANARY}')\n"
                "            except BaseException:\n"
                "                pass\n"
                "            return int(self) == other\n"
                "        __hash__ = int.__hash__\n"
                "    return Sly(sum(values))\n"
            ),
        ),
        id="result-whose-eq-removes-canary",
    ),
    pytest.param(
        Attack(
            "pass",
            body=(
                "    import os\n"
                "    class Sly(int):\n"
                "        def __reduce__(self):\n"
                f"            return (os.remove, ('{CANARY}',))\n"
                "    return Sly(sum(values))\n"
            ),
        ),
        id="result-whose-pickle-removes-canary",
    ),
    pytest.param(
        Attack(
            f"""
            import os, pickle
            class Payload:
                def __reduce__(self):
                    return (os.remove, ('{CANARY}',))
            pickle.loads(pickle.dumps(Payload()))
            """
        ),
        id="unpickle-a-payload",
    ),
    pytest.param(
        Attack(
            """
            import os
            os.chdir('{PROJECT}')
            open('chdir-{MARKER}.txt', 'w').write('x')
            """
        ),
        id="chdir-into-project-then-write-relative",
    ),
]

assert len(ATTACKS) >= 40


MODES = [
    pytest.param("bubblewrap", id="bwrap"),
    pytest.param("namespaces", id="unshare"),
    # Landlock, the audit hook and the process limits alone: each layer must hold by itself.
    pytest.param("weak", id="weak"),
]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    mode = str(request.param)
    try:
        strongest(mode)
    except SandboxUnavailable as err:
        pytest.skip(f"{mode} sandbox not available here: {err}")
    if mode == "weak" and landlock_abi() == 0:
        pytest.skip("the weak sandbox is only tested where Landlock backs it")
    return mode


@pytest.mark.parametrize("attack", ATTACKS)
def test_hostile_candidate_is_rejected_or_contained(fresh_world: World, attack: Attack, mode: str):
    world = fresh_world
    qualname, template = candidate_source(world, attack)
    settings = world.settings(sandbox=mode)
    if attack.hang:
        settings = world.settings(sandbox=mode, candidate_timeout_seconds=3, timing_max_seconds=1)
    if "neighbour" in template:
        check_neighbour(world)
    before = world.snapshot()
    known = world.marker_files()
    with listener() as server, sigterm_guard() as received:
        candidate = world.fill(template, PORT=str(server.port))
        verdict = verify(
            world.project / "mod.py",
            qualname,
            world.workloads[qualname],
            candidate,
            settings,
            timing=attack.fast,
        )
        connected = server.accepted()
    escapes = world.escapes(before, known)
    shown = describe(verdict)

    assert escapes == [], shown
    # The world was built: a rejection must not come from a sandbox that failed to start.
    assert "sandbox could not" not in verdict.reason, shown
    if mode != "weak":
        assert {"read-only-root", "pid-namespace"} <= set(verdict.sandbox_layers), shown
    assert not connected, f"the candidate reached the localhost listener; {shown}"
    assert received == [], f"the test process got SIGTERM; {shown}"
    assert isinstance(verdict.reason, str) and verdict.reason.strip(), shown
    assert verdict.reason.isprintable(), shown
    secrets = {**world.secrets, "env": world.env_secret}
    said = " | ".join((verdict.reason, *verdict.mismatches))
    for key in attack.forbidden:
        assert secrets[key] not in said, f"secret {key!r} reached the verdict; {shown}"
    assert "leaked: " not in said, shown
    if attack.hang:
        assert re.search(r"time|CPU", verdict.reason, re.IGNORECASE), shown
    assert not verdict.faster, shown
    if not attack.contained_ok:
        assert verdict.equivalent is False, shown


def describe(verdict: Verdict) -> str:
    return (
        f"equivalent={verdict.equivalent} faster={verdict.faster} reason={verdict.reason!r} "
        f"mismatches={list(verdict.mismatches)} layers={list(verdict.sandbox_layers)}"
    )


def test_the_original_replays_without_effects(fresh_world: World):
    """The fixture's project is sound: the original replays clean in the world's venv."""
    world = fresh_world
    for qualname, workload in world.workloads.items():
        verdict = verify(
            world.project / "mod.py", qualname, workload, None, world.settings(), timing=False
        )
        assert verdict.equivalent, describe(verdict)
        assert verdict.effects == (), describe(verdict)


def test_an_honest_sum_is_equivalent_and_faster(fresh_world: World):
    """Control for the ``fast`` attacks: without the attack the candidate does win."""
    world = fresh_world
    before = world.snapshot()
    known = world.marker_files()
    verdict = verify(
        world.project / "mod.py",
        "slow_total",
        world.workloads["slow_total"],
        "def slow_total(values):\n" + FAST_BODY,
        world.settings(),
        timing=True,
    )
    assert world.escapes(before, known) == []
    assert verdict.equivalent, describe(verdict)
    assert verdict.faster, describe(verdict)
