"""Measure the verifier: false "faster" rate, power, false accepts of wrong candidates, time.

Over a corpus of tasks shaped like small user projects (``slow.py``, ``test_slow.py``,
``reference.py``; e.g. ``../shared/bench/dev``), printed in one run:

- A/A: ``slow`` verified against itself (a different function object, same code): how often
  is it called "faster"? Target <= 0.5% over >= 200 trials.
- power: ``reference`` against ``slow`` on tasks whose ``reference_speedup`` >= 1.3: how often
  is it called faster? Target >= 95%.
- false accepts: mutants of the reference (off-by-one, dropped branch, changed constant,
  swapped comparison). Each mutant is also run against the task's own tests; a mutant that
  fails them is certainly wrong, and one the verifier still accepts is a false accept
  (target 0). Mutants that pass the tests are reported separately: the verifier's generated
  inputs and docstring examples may still catch them.
- seconds per verdict: median and p90, overall and on workloads <= 50 ms.

The model is not involved. Usage::

    python scripts/bench_verifier.py ../shared/bench/dev --tasks 40 --aa-trials 200 --json out.json
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from speedsmith.isolate import find_function
from speedsmith.settings import Settings
from speedsmith.verify.verifier import Verdict, verify
from speedsmith.workload import Workload, record_workload, run_tests_with_candidate


@dataclass
class Tally:
    aa: list[bool] = field(default_factory=list)
    aa_false_faster: list[str] = field(default_factory=list)
    power: list[bool] = field(default_factory=list)
    power_misses: list[str] = field(default_factory=list)
    mutants_killed_by_tests: int = 0
    mutants_killed_by_tests_accepted: list[str] = field(default_factory=list)
    mutants_surviving_tests: int = 0
    mutants_surviving_tests_rejected: int = 0
    mutants_surviving_tests_accepted: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    seconds_small: list[float] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class _Mutator(ast.NodeTransformer):
    """Applies the ``target``-th applicable mutation of ``kind``."""

    SWAPS: ClassVar[dict[type, type]] = {
        ast.Lt: ast.LtE,
        ast.LtE: ast.Lt,
        ast.Gt: ast.GtE,
        ast.GtE: ast.Gt,
        ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq,
    }

    def __init__(self, kind: str, target: int):
        self.kind, self.target, self.seen, self.done = kind, target, 0, False

    def _hit(self) -> bool:
        hit = self.seen == self.target and not self.done
        self.seen += 1
        self.done = self.done or hit
        return hit

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        if self.kind == "swap-comparison" and type(node.ops[0]) in self.SWAPS and self._hit():
            node.ops[0] = self.SWAPS[type(node.ops[0])]()
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            return node
        if self.kind == "off-by-one" and self._hit():
            return ast.copy_location(ast.Constant(value + 1), node)
        if self.kind == "change-constant" and self._hit():
            return ast.copy_location(ast.Constant(value * 2 + 3), node)
        return node

    def visit_If(self, node: ast.If) -> ast.AST:
        self.generic_visit(node)
        if self.kind == "drop-branch" and self._hit():
            if node.orelse:
                node.orelse = []
            else:
                node.body = [ast.Pass()]
        return node


def mutants(source: str, per_kind: int, rng: random.Random) -> list[tuple[str, str]]:
    """Up to ``per_kind`` distinct mutants of each kind: (kind, source)."""
    tree = ast.parse(source)
    found: list[tuple[str, str]] = []
    original = ast.unparse(tree)
    for kind in ("off-by-one", "drop-branch", "change-constant", "swap-comparison"):
        counter = _Mutator(kind, -1)
        counter.visit(copy.deepcopy(tree))
        targets = list(range(counter.seen))
        rng.shuffle(targets)
        for target in targets[:per_kind]:
            mutated = _Mutator(kind, target).visit(copy.deepcopy(tree))
            text = ast.unparse(ast.fix_missing_locations(mutated))
            if text != original:
                found.append((kind, text))
    return found


def run_task(task: Path, args: argparse.Namespace, tally: Tally, rng: random.Random) -> None:
    meta = tomllib.loads((task / "task.toml").read_text())
    qualname = meta["target"].split("::", 1)[1]
    with tempfile.TemporaryDirectory(prefix="bench-verifier-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        for name in ("slow.py", "test_slow.py", "test_slow_data.json"):
            if (task / name).exists():
                shutil.copy(task / name, project / name)
        (project / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
        file = project / "slow.py"
        settings = Settings(min_speedup=1.1)
        workload_dir = Path(tmp) / "workload"
        workload_dir.mkdir()
        workload = record_workload(file, qualname, out_dir=workload_dir, timeout=300)
        if workload.calls == 0 or workload.error:
            tally.skipped.append(f"{task.name}: no workload ({workload.error or 'no calls'})")
            return
        baseline = verify(file, qualname, workload, None, settings)
        if not baseline.equivalent:
            tally.skipped.append(f"{task.name}: baseline differs ({baseline.reason[:80]})")
            return
        small = workload.original_seconds <= 0.05
        slow_source = find_function(file.read_text(), qualname).source
        reference_module = (task / "reference.py").read_text()

        def record(verdict: Verdict) -> Verdict:
            tally.seconds.append(verdict.seconds)
            if small:
                tally.seconds_small.append(verdict.seconds)
            return verdict

        for _ in range(args.aa_per_task):
            verdict = record(verify(file, qualname, workload, slow_source, settings))
            tally.aa.append(verdict.faster)
            if verdict.faster:
                tally.aa_false_faster.append(f"{task.name}: {verdict.reason}")
        if float(meta.get("reference_speedup", 0)) >= 1.3:
            for _ in range(args.power_per_task):
                verdict = record(verify(file, qualname, workload, reference_module, settings))
                tally.power.append(verdict.faster)
                if not verdict.faster:
                    expected = float(meta["reference_speedup"])
                    miss = f"{task.name} (corpus {expected:.2f}x): {verdict.reason[:160]}"
                    tally.power_misses.append(miss)
        _mutant_round(task, file, qualname, workload, reference_module, settings, args, tally, rng)


def _mutant_round(
    task: Path,
    file: Path,
    qualname: str,
    workload: Workload,
    reference_module: str,
    settings: Settings,
    args: argparse.Namespace,
    tally: Tally,
    rng: random.Random,
) -> None:
    tests = tuple(t for t in workload.reached_tests if t not in workload.failed_tests)
    for kind, source in mutants(reference_module, args.mutants_per_kind, rng):
        passed_tests, _ = run_tests_with_candidate(file, qualname, source, tests, timeout=120)
        verdict = verify(file, qualname, workload, source, settings, timing=False)
        tally.seconds.append(verdict.seconds)
        label = f"{task.name} [{kind}]"
        if not passed_tests:
            tally.mutants_killed_by_tests += 1
            if verdict.equivalent:
                tally.mutants_killed_by_tests_accepted.append(label)
        else:
            tally.mutants_surviving_tests += 1
            if verdict.equivalent:
                tally.mutants_surviving_tests_accepted.append(label)
            else:
                tally.mutants_surviving_tests_rejected += 1


def _pct(values: list[bool]) -> str:
    if not values:
        return "n/a"
    return f"{100 * sum(values) / len(values):.2f}% ({sum(values)}/{len(values)})"


def _quantiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {statistics.median(ordered):.2f} s, p90 {p90:.2f} s (n={len(ordered)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--tasks", type=int, default=40, help="tasks to use (seeded sample)")
    parser.add_argument("--aa-trials", type=int, default=200, help="A/A trials in total")
    parser.add_argument("--power-per-task", type=int, default=2)
    parser.add_argument("--mutants-per-kind", type=int, default=1)
    parser.add_argument("--max-workload-seconds", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tasks = []
    for task in sorted(p for p in args.corpus.iterdir() if (p / "task.toml").exists()):
        meta = tomllib.loads((task / "task.toml").read_text())
        slow_seconds = float(meta.get("workload", {}).get("slow_calls_seconds", 0.0))
        if slow_seconds <= args.max_workload_seconds:
            tasks.append(task)
    rng.shuffle(tasks)
    tasks = sorted(tasks[: args.tasks])
    args.aa_per_task = max(1, -(-args.aa_trials // max(1, len(tasks))))
    tally = Tally()
    started = time.perf_counter()
    for index, task in enumerate(tasks, 1):
        print(f"[{index}/{len(tasks)}] {task.name}", file=sys.stderr, flush=True)
        run_task(task, args, tally, rng)
    killed_accepted = len(tally.mutants_killed_by_tests_accepted)
    figures: dict[str, Any] = {
        "tasks": len(tasks),
        "skipped": tally.skipped,
        "aa_false_faster": [sum(tally.aa), len(tally.aa)],
        "aa_false_faster_cases": tally.aa_false_faster,
        "power": [sum(tally.power), len(tally.power)],
        "power_misses": tally.power_misses,
        "mutants_killed_by_tests": tally.mutants_killed_by_tests,
        "mutants_killed_by_tests_accepted": tally.mutants_killed_by_tests_accepted,
        "mutants_surviving_tests": tally.mutants_surviving_tests,
        "mutants_surviving_tests_rejected": tally.mutants_surviving_tests_rejected,
        "mutants_surviving_tests_accepted": tally.mutants_surviving_tests_accepted,
        "seconds_per_verdict": sorted(tally.seconds),
        "seconds_per_verdict_small_workloads": sorted(tally.seconds_small),
        "wall_seconds": time.perf_counter() - started,
    }
    print(f"tasks: {len(tasks)} ({len(tally.skipped)} skipped)")
    print(f"A/A false 'faster':             {_pct(tally.aa)}   (target <= 0.5%)")
    print(f"power (reference_speedup>=1.3): {_pct(tally.power)}   (target >= 95%)")
    print(
        f"wrong mutants (fail the tests): {tally.mutants_killed_by_tests}, "
        f"accepted by the verifier: {killed_accepted}   (target 0)"
    )
    print(
        f"mutants passing the tests:      {tally.mutants_surviving_tests}, rejected anyway: "
        f"{tally.mutants_surviving_tests_rejected}, accepted: "
        f"{len(tally.mutants_surviving_tests_accepted)} (equivalent or not caught)"
    )
    print(f"seconds per verdict:            {_quantiles(tally.seconds)}")
    print(f"  on workloads <= 50 ms:        {_quantiles(tally.seconds_small)}")
    print(f"wall time: {figures['wall_seconds']:.0f} s")
    for line in tally.skipped:
        print(f"skipped: {line}")
    for line in tally.aa_false_faster:
        print(f"A/A called faster: {line}")
    for line in tally.power_misses:
        print(f"power miss: {line}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
