"""The final gate (the project's tests with the candidate substituted) under hostile candidates.

The gate runs the user's own tests, so it cannot audit them like the harness does: it must
contain what the candidate does instead (the same read-only world, no secrets in the
environment, a private home). Same throw-away world and checks as ``test_candidates.py``.
"""

from __future__ import annotations

from hostile_world import World

from speedsmith.workload import run_tests_with_candidate

TOTAL = "def total(values):\n    return sum(values)\n"

EXFILTRATE = """
def total(values):
    import os
    stolen = [os.environ.get('{SECRET_ENV}') or '']
    for path in ('{WORLD}/home/.config/secret-{MARKER}',
                 os.path.expanduser('~/.config/secret-{MARKER}'),
                 '{WORLD}/home/.ssh/id_rsa-{MARKER}',
                 '{REALHOME}/.speedsmith-canary-{MARKER}'):
        try:
            with open(path) as handle:
                stolen.append(handle.read())
        except BaseException:
            pass
    loot = ''.join(stolen)
    for target in ('{PROJECT}/exfil-{MARKER}.txt', '{WORLD}/exfil-{MARKER}.txt',
                   '{WORLD}/home/exfil-{MARKER}.txt', '/tmp/speedsmith-exfil-{MARKER}.txt'):
        try:
            with open(target, 'w') as handle:
                handle.write(loot)
        except BaseException:
            pass
    if loot:
        raise AssertionError('leaked: ' + loot)
    return sum(values)
"""


def gate(world: World, candidate: str, tests: tuple[str, ...] | None = None) -> tuple[bool, str]:
    workload = world.workloads["total"]
    return run_tests_with_candidate(
        world.project / "mod.py",
        "total",
        world.fill(candidate),
        workload.reached_tests if tests is None else tests,
        python=str(world.venv_python),
        timeout=60,
    )


def test_a_correct_candidate_passes_the_gate(fresh_world: World):
    world = fresh_world
    before, known = world.snapshot(), world.marker_files()
    passed, output = gate(world, TOTAL)
    assert world.escapes(before, known) == []
    assert passed, output


def test_a_wrong_candidate_fails_the_gate(fresh_world: World):
    world = fresh_world
    before, known = world.snapshot(), world.marker_files()
    passed, output = gate(world, "def total(values):\n    return sum(values) + 1\n")
    assert world.escapes(before, known) == []
    assert not passed, output


def test_an_exfiltrating_candidate_is_contained_by_the_gate(fresh_world: World):
    """Right value, but it copies the environment's secret and the home's secret files next
    to the project: nothing may be written, and no secret may reach the candidate (it would
    fail the tests and print it)."""
    world = fresh_world
    before, known = world.snapshot(), world.marker_files()
    passed, output = gate(world, EXFILTRATE)
    escapes = world.escapes(before, known)

    assert escapes == [], output
    for name, secret in {**world.secrets, "env": world.env_secret}.items():
        assert secret not in output, f"secret {name!r} reached the candidate:\n{output}"
    assert "leaked: " not in output, output
    assert passed, output


def test_a_gate_whose_tests_never_call_the_candidate_fails(fresh_world: World):
    world = fresh_world
    unrelated = f"{world.project / 'test_mod.py'}::test_unrelated"
    before, known = world.snapshot(), world.marker_files()
    passed, output = gate(world, TOTAL, tests=(unrelated,))
    assert world.escapes(before, known) == []
    assert not passed, output
    assert "never called" in output, output


def test_the_recorded_tests_reach_the_target(fresh_world: World):
    """Fixture sanity: the node ids the gate gets are the tests that call ``total``."""
    reached = fresh_world.workloads["total"].reached_tests
    assert [node.rpartition("::")[2] for node in reached] == ["test_total"], reached
