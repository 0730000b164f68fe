"""What each sandbox layer costs: start-up per layer, and the verdict for a 1 ms function.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_sandbox.py [--runs 15]

Measured side by side in one run, on a throwaway project in a fresh temporary directory:

1. start-up of ``python -c pass`` alone, under Landlock only (``jail.py`` launcher), under
   bubblewrap's plan, and under the namespaces plan (``unshare`` + ``jail.build_world``), each
   the median of ``--runs`` runs, and the difference to plain Python in ms;
2. the whole verdict (``verify`` of an equivalent candidate with timing) for a function whose
   recorded calls take about 1 ms, per sandbox mode, median of a few runs; the target is a
   median <= 1 s.

The last line sums it up. docs/verification.md quotes a run of this script.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from speedsmith.settings import Settings
from speedsmith.verify import confine
from speedsmith.verify.verifier import verify
from speedsmith.workload import record_workload

MODULE = """
def slow_sum(values):
    total = 0
    for i in range(len(values)):
        total = total + values[i]
    return total
"""
TESTS = """
from mod import slow_sum


def test_slow_sum():
    for n in (2000, 4000, 6000, 8000):
        assert slow_sum(list(range(n))) == n * (n - 1) // 2
"""
CANDIDATE = "def slow_sum(values):\n    return sum(values)\n"


def median_ms(command: list[str], runs: int, cwd: Path) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def startup(scratch: Path, runs: int) -> dict[str, float]:
    python = sys.executable
    plain = [python, "-s", "-P", "-B", "-c", "pass"]
    rows = {"python alone": median_ms(plain, runs, scratch)}
    if confine.landlock_abi() > 0:
        world = {"writable": [str(scratch)], "readable": None, "landlock": True}
        jail = [python, "-s", "-B", str(confine.JAIL), json.dumps(world), "--"]
        rows["+ Landlock (jail.py launcher)"] = median_ms([*jail, *plain], runs, scratch)
    for mode in ("bubblewrap", "namespaces"):
        try:
            plan = confine.plan(mode, scratch=scratch, read_only=(), python=python)
        except confine.SandboxUnavailable:
            continue
        world = dict(plan.world, landlock=False)
        jail = [python, "-s", "-B", str(confine.JAIL), json.dumps(world), "--"]
        command = [*plan.prefix, *jail, *plain] if mode == "namespaces" else [*plan.prefix, *plain]
        rows[f"+ {mode} plan"] = median_ms(command, runs, scratch)
    return rows


def verdicts(root: Path, runs: int) -> dict[str, float]:
    out = root / "out"
    out.mkdir()
    workload = record_workload(root / "project" / "mod.py", "slow_sum", out_dir=out)
    assert workload.calls > 0, workload.pytest_output
    rows = {}
    for mode in ("bubblewrap", "namespaces", "weak"):
        try:
            confine.strongest(mode)
        except confine.SandboxUnavailable:
            continue
        settings = Settings(sandbox=mode)
        seconds = []
        for _ in range(runs):
            verdict = verify(root / "project" / "mod.py", "slow_sum", workload, CANDIDATE, settings)
            assert verdict.equivalent, verdict.reason
            seconds.append(verdict.seconds)
        rows[mode] = statistics.median(seconds)
    rows["_original_ms"] = workload.original_seconds * 1000
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--verdict-runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="speedsmith-bench-sandbox-") as tmp:
        root = Path(tmp)
        project = root / "project"
        project.mkdir()
        (project / "pyproject.toml").write_text("")
        (project / "mod.py").write_text(MODULE)
        (project / "test_mod.py").write_text(TESTS)
        scratch = root / "scratch"
        scratch.mkdir()
        print(f"machine: {confine.describe()}")
        rows = startup(scratch, args.runs)
        base = rows["python alone"]
        print(f"\n{'start-up of python -c pass':40} {'median ms':>10} {'layer ms':>10}")
        for name, ms in rows.items():
            print(f"{name:40} {ms:10.1f} {ms - base:10.1f}")
        found = verdicts(root, args.verdict_runs)
        original = found.pop("_original_ms")
        print(f"\nverdict (equivalence + timing), recorded calls take {original:.2f} ms in all")
        for mode, seconds in found.items():
            print(f"{mode:40} {seconds:10.2f} s")
        layer = {k: round(v - base, 1) for k, v in rows.items() if k != "python alone"}
        worst = max(found.values())
        print(
            f"\nsummary: layer start-up ms {layer}; verdict median s "
            f"{ {k: round(v, 2) for k, v in found.items()} }; "
            f"target <= 1 s {'met' if worst <= 1.0 else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
