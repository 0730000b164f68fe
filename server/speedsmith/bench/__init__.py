"""Benchmark: a corpus of tasks through the real optimize pipeline, per strategy and budget.

A task is a folder with ``task.toml`` (``id``, ``target = "slow.py::fn"``, optionally
``reference_speedup``), the module and its pytest tests. Every run works on a fresh temporary
copy of the task without ``reference.py`` (the search never sees it; its measured speedup in
``task.toml`` is only reported as headroom), so the corpus itself is never written.

A run succeeds when the engine proposes an edit verified at least ``min_speedup`` faster and the
task's tests pass with the edit applied (pytest on another temporary copy). For the mean and
geometric-mean speedups a task without a successful edit counts as 1.0x (the code is unchanged).

The replay backend serves a fixed pool of candidates per task (``{"task-id": [source, ...]}``,
or ``{"tasks": {...}}``, or ``{"task-id": {"candidates": [...]}}``), restarted for every run, so
the bookkeeping is testable quickly and deterministically.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speedsmith import edits
from speedsmith.errors import ModelError
from speedsmith.llm.base import Backend
from speedsmith.report import OptimizeReport
from speedsmith.settings import DEFAULTS, STRATEGIES, Settings, merge

HIDDEN = ("reference.py", "__pycache__", ".pytest_cache")
"""Never copied into a run's project."""

Log = Callable[[str], None]


@dataclass(frozen=True)
class Task:
    id: str
    folder: Path
    file: str
    """The module holding the target, relative to the task folder."""
    qualname: str
    reference_speedup: float | None = None


@dataclass(frozen=True)
class TaskRun:
    task: str
    strategy: str
    budget: str
    verdict: str
    reason: str
    success: bool
    speedup: float | None
    """The verified speedup of the proposed edit (None: no edit)."""
    tests_passed: bool | None
    """The task's tests with the edit applied (None: no edit to test)."""
    completion_tokens: int
    prompt_tokens: int
    total_seconds: float
    search_seconds: float
    generated: int
    parsed: int
    equivalent: int
    faster: int
    reference_speedup: float | None
    truncated: int = 0
    """Model candidates cut off by the token cap (not in ``parsed``)."""
    tool: int = 0
    """Zero-token candidates (``search/tools.py``), included in ``generated``."""

    @property
    def counted_speedup(self) -> float:
        return self.speedup if self.success and self.speedup else 1.0

    @property
    def complete(self) -> int:
        """Model candidates that were not cut off by the token cap."""
        return self.generated - self.tool - self.truncated


@dataclass(frozen=True)
class Summary:
    strategy: str
    budget: str
    tasks: int
    successes: int
    success_rate: float
    mean_speedup: float
    geomean_speedup: float
    mean_completion_tokens: float
    mean_seconds: float
    mean_reference_speedup: float | None
    """Headroom: the references' speedups over the same tasks (geometric mean)."""
    generated: int = 0
    """Candidates over all tasks (zero-token ones included), then how many of them parsed,
    were cut off by the token cap, were equivalent, were verified faster, came from tools."""
    parsed: int = 0
    truncated: int = 0
    equivalent: int = 0
    faster: int = 0
    tool: int = 0
    tokens_per_complete: float | None = None
    """Generated tokens per model candidate that was not truncated (None: none was)."""

    @property
    def parse_rate(self) -> float | None:
        return self.parsed / self.generated if self.generated else None


def load_tasks(corpus: Path, only: Sequence[str] = (), limit: int | None = None) -> list[Task]:
    """The corpus's tasks in name order; ``only`` keeps tasks whose id contains one of them."""
    tasks = []
    for manifest in sorted(Path(corpus).glob("*/task.toml")):
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        file, _, qualname = str(data["target"]).partition("::")
        task_id = str(data.get("id", manifest.parent.name))
        if only and not any(part in task_id for part in only):
            continue
        reference = data.get("reference_speedup")
        tasks.append(
            Task(
                task_id,
                manifest.parent,
                file,
                qualname,
                float(reference) if reference is not None else None,
            )
        )
    return tasks[:limit] if limit is not None else tasks


def load_pools(path: Path) -> dict[str, list[str]]:
    """Replay candidates per task id."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read replay pools {path}: {err}") from err
    if isinstance(data, dict) and isinstance(data.get("tasks"), dict):
        data = data["tasks"]
    if not isinstance(data, dict):
        raise ModelError(f"replay pools {path}: expected an object of task id -> candidates")
    pools: dict[str, list[str]] = {}
    for task_id, entry in data.items():
        candidates = entry.get("candidates") if isinstance(entry, dict) else entry
        if not isinstance(candidates, list) or not candidates:
            raise ModelError(f"replay pools {path}: task {task_id!r} has no candidate list")
        pools[str(task_id)] = [str(c) for c in candidates]
    return pools


def copy_task(task: Task, into: Path) -> Path:
    """A private copy of the task's project (without ``reference.py``); its folder."""
    target = into / task.id
    shutil.copytree(task.folder, target, ignore=shutil.ignore_patterns(*HIDDEN))
    marker = target / "pyproject.toml"
    if not marker.exists():  # the project root: keeps the engine inside the copy
        marker.write_text("", encoding="utf-8")
    return target


def tests_pass_with_edit(
    task: Task, report: OptimizeReport, python: str | None, timeout_seconds: float
) -> bool:
    """Apply the report's edit to a fresh copy of the task and run its tests."""
    assert report.edit is not None
    with tempfile.TemporaryDirectory(prefix="speedsmith-bench-check-") as tmp:
        project = copy_task(task, Path(tmp))
        module = project / task.file
        module.write_text(
            edits.apply_edit(module.read_text(encoding="utf-8"), report.edit), encoding="utf-8"
        )
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        try:
            done = subprocess.run(
                [python or sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0


def run_task(task: Task, settings: Settings, backend: Backend | None) -> TaskRun:
    """One task through ``optimize`` with ``settings`` (strategy, budget, seed...)."""
    from speedsmith.engine import optimize

    with tempfile.TemporaryDirectory(prefix="speedsmith-bench-") as tmp:
        project = copy_task(task, Path(tmp))
        report = optimize(project / task.file, task.qualname, settings, backend=backend)
    tests_passed = None
    if report.verdict == "improved" and report.edit is not None:
        tests_passed = tests_pass_with_edit(
            task, report, settings.python, settings.workload_timeout_seconds
        )
    speedup = report.speedup if report.verdict == "improved" else None
    success = bool(tests_passed) and speedup is not None and speedup >= settings.min_speedup
    seconds = report.seconds
    return TaskRun(
        task=task.id,
        strategy=settings.strategy,
        budget=str(settings.budget),
        verdict=report.verdict,
        reason=report.reason,
        success=success,
        speedup=speedup,
        tests_passed=tests_passed,
        completion_tokens=report.tokens.completion,
        prompt_tokens=report.tokens.prompt,
        total_seconds=seconds.get("total", 0.0),
        search_seconds=seconds.get("generation", 0.0) + seconds.get("verification", 0.0),
        generated=report.candidates.generated,
        parsed=report.candidates.parsed,
        equivalent=report.candidates.equivalent,
        faster=report.candidates.faster,
        reference_speedup=task.reference_speedup,
        truncated=report.candidates.truncated,
        tool=report.candidates.tool,
    )


def run_bench(
    tasks: Sequence[Task],
    strategies: Sequence[str],
    budgets: Sequence[str | int],
    base: Settings,
    *,
    pools: dict[str, list[str]] | None = None,
    log: Log = lambda line: None,
) -> list[TaskRun]:
    """Every task x strategy x budget. With ``pools`` the replay backend serves each task's
    pool (restarted per run); otherwise the backend of ``base`` (the model is loaded once)."""
    from speedsmith.llm.replay import ReplayBackend

    runs: list[TaskRun] = []
    if pools is not None:
        for task in tasks:
            if task.id not in pools:
                log(f"skipped {task.id}: no replay candidates")
        tasks = [t for t in tasks if t.id in pools]
    total = len(tasks) * len(strategies) * len(budgets)
    for strategy in strategies:
        for budget in budgets:
            settings = dataclasses.replace(base, strategy=strategy, budget=budget)
            for task in tasks:
                backend: Backend | None = None
                if pools is not None:
                    backend = ReplayBackend(pools[task.id], name=f"replay:{task.id}")
                run = run_task(task, settings, backend)
                runs.append(run)
                log(f"[{len(runs)}/{total}] {_describe(run)}")
    return runs


def _describe(run: TaskRun) -> str:
    outcome = run.verdict
    if run.speedup is not None:
        outcome += f" {run.speedup:.2f}x, tests {'pass' if run.tests_passed else 'FAIL'}"
    return (
        f"{run.strategy} budget={run.budget} {run.task}: {outcome}; "
        f"{run.completion_tokens} tokens, {run.total_seconds:.1f} s"
    )


def _geomean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else 1.0


def summarise(runs: Sequence[TaskRun]) -> list[Summary]:
    """One row per (strategy, budget), in the order first seen."""
    groups: dict[tuple[str, str], list[TaskRun]] = {}
    for run in runs:
        groups.setdefault((run.strategy, run.budget), []).append(run)
    rows = []
    for (strategy, budget), group in groups.items():
        speedups = [r.counted_speedup for r in group]
        references = [r.reference_speedup for r in group if r.reference_speedup]
        successes = sum(r.success for r in group)
        complete = sum(r.complete for r in group)
        tokens = sum(r.completion_tokens for r in group)
        rows.append(
            Summary(
                strategy=strategy,
                budget=budget,
                tasks=len(group),
                successes=successes,
                success_rate=successes / len(group),
                mean_speedup=statistics.fmean(speedups),
                geomean_speedup=_geomean(speedups),
                mean_completion_tokens=statistics.fmean(r.completion_tokens for r in group),
                mean_seconds=statistics.fmean(r.total_seconds for r in group),
                mean_reference_speedup=_geomean(references) if references else None,
                generated=sum(r.generated for r in group),
                parsed=sum(r.parsed for r in group),
                truncated=sum(r.truncated for r in group),
                equivalent=sum(r.equivalent for r in group),
                faster=sum(r.faster for r in group),
                tool=sum(r.tool for r in group),
                tokens_per_complete=tokens / complete if complete else None,
            )
        )
    return rows


def table(summaries: Sequence[Summary]) -> Any:
    """A rich table of the summaries."""
    from rich.table import Table

    out = Table(title="speedsmith bench")
    for name in ("strategy", "budget", "tasks", "success", "mean x", "geomean x", "tokens", "s"):
        out.add_column(name, justify="left" if name in {"strategy", "budget"} else "right")
    out.add_column("reference x", justify="right")
    for name in ("generated (tool)", "parsed", "truncated", "equiv", "faster", "tok/complete"):
        out.add_column(name, justify="right")
    for s in summaries:
        rate = f" ({100 * s.parse_rate:.0f}%)" if s.parse_rate is not None else ""
        out.add_row(
            s.strategy,
            s.budget,
            str(s.tasks),
            f"{s.successes} ({100 * s.success_rate:.0f}%)",
            f"{s.mean_speedup:.2f}",
            f"{s.geomean_speedup:.2f}",
            f"{s.mean_completion_tokens:.0f}",
            f"{s.mean_seconds:.1f}",
            f"{s.mean_reference_speedup:.1f}" if s.mean_reference_speedup else "-",
            f"{s.generated} ({s.tool})",
            f"{s.parsed}{rate}",
            str(s.truncated),
            str(s.equivalent),
            str(s.faster),
            f"{s.tokens_per_complete:.0f}" if s.tokens_per_complete is not None else "-",
        )
    return out


def results_json(
    runs: Sequence[TaskRun], summaries: Sequence[Summary], meta: dict[str, Any]
) -> dict[str, Any]:
    return {
        **meta,
        "summary": [dataclasses.asdict(s) for s in summaries],
        "runs": [dataclasses.asdict(r) for r in runs],
    }


def write_csv(path: Path, summaries: Sequence[Summary]) -> None:
    names = [f.name for f in dataclasses.fields(Summary)]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        for s in summaries:
            writer.writerow(dataclasses.asdict(s))


def plot(path: Path, summaries: Sequence[Summary], title: str = "") -> bool:
    """Success rate against mean generated tokens, one line per strategy; False without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(7, 4.5))
    by_strategy: dict[str, list[Summary]] = {}
    for s in summaries:
        by_strategy.setdefault(s.strategy, []).append(s)
    for strategy, rows in by_strategy.items():
        rows = sorted(rows, key=lambda s: s.mean_completion_tokens)
        xs = [s.mean_completion_tokens for s in rows]
        ys = [100 * s.success_rate for s in rows]
        axes.plot(xs, ys, marker="o", label=strategy)
        for s, x, y in zip(rows, xs, ys, strict=True):
            axes.annotate(s.budget, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    spread = [s.mean_completion_tokens for s in summaries if s.mean_completion_tokens > 0]
    if spread and max(spread) > 10 * min(spread):
        axes.set_xscale("log")  # budgets grow geometrically (about 1, 4, 16, 64 samples)
    axes.set_xlabel("mean generated tokens per task")
    axes.set_ylabel("success rate (%)")
    axes.set_ylim(-3, 103)
    axes.set_title(title or "success vs tokens")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def describe_settings(settings: Settings) -> dict[str, Any]:
    from speedsmith.engine import model_name

    return {
        "backend": settings.backend,
        "model": model_name(settings),
        "seed": settings.seed,
        "min_speedup": settings.min_speedup,
        "budget_seconds": settings.budget_seconds,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


# -- command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``speedsmith bench``'s arguments."""
    parser.add_argument("corpus", type=Path, help="folder of task folders (each with task.toml)")
    parser.add_argument(
        "--strategy", nargs="+", default=["best-of-n"], choices=STRATEGIES, help="strategies"
    )
    parser.add_argument(
        "--budget", nargs="+", default=["quick"], help="budgets (presets, tokens or candidates)"
    )
    parser.add_argument("--budget-seconds", type=float, help="wall-clock cap of each search")
    parser.add_argument("--backend", choices=["llama", "replay"], default="llama")
    parser.add_argument(
        "--replay-file", type=Path, help="replay backend: JSON of task id -> candidates"
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--task", nargs="+", default=[], help="only tasks whose id contains one")
    parser.add_argument("--limit", type=int, help="at most this many tasks")
    parser.add_argument(
        "--model", dest="model_path", help="a GGUF file instead of the embedded one"
    )
    parser.add_argument("--n-gpu-layers", type=int, help="layers to offload to the GPU")
    parser.add_argument("--min-speedup", type=float, help="success threshold (default 1.1)")
    parser.add_argument("--out", type=Path, help="write every run and the summary as JSON")
    parser.add_argument("--plot", type=Path, help="success vs tokens per strategy (PNG)")
    parser.add_argument("--csv", type=Path, help="the summary as CSV (default: next to --plot)")


def main(args: argparse.Namespace) -> int:
    """``speedsmith bench``: the table on stdout, progress on stderr."""
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    tasks = load_tasks(args.corpus, args.task, args.limit)
    if not tasks:
        err.print(f"[red]error:[/] no tasks (folders with task.toml) under {args.corpus}")
        return 2
    options: dict[str, Any] = {"seed": args.seed, "backend": args.backend}
    for key in ("budget_seconds", "model_path", "n_gpu_layers", "min_speedup"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.replay_file is not None:
        options["replay_file"] = str(args.replay_file)
    base, warnings = merge(DEFAULTS, options, origin="command line")
    budgets: list[str | int] = []
    for budget in args.budget:
        checked, more = merge(DEFAULTS, {"budget": budget}, origin="--budget")
        warnings += more
        if not more:
            budgets.append(checked.budget)
    for warning in warnings:
        err.print(f"[red]error:[/] {warning}")
    if warnings or not budgets:
        return 2
    pools = None
    if args.backend == "replay":
        if args.replay_file is None:
            err.print("[red]error:[/] --backend replay needs --replay-file")
            return 2
        try:
            pools = load_pools(args.replay_file)
        except ModelError as error:
            err.print(f"[red]error:[/] {error}")
            return 2
    started = time.perf_counter()
    runs = run_bench(tasks, args.strategy, budgets, base, pools=pools, log=err.print)
    summaries = summarise(runs)
    Console(highlight=False, width=160).print(table(summaries))
    meta = {
        "command": _command(args),
        "corpus": str(args.corpus),
        "tasks": [t.id for t in tasks],
        "strategies": list(args.strategy),
        "budgets": [str(b) for b in budgets],
        "seconds": round(time.perf_counter() - started, 1),
        **describe_settings(base),
    }
    if args.out is not None:
        args.out.write_text(
            json.dumps(results_json(runs, summaries, meta), indent=2) + "\n", encoding="utf-8"
        )
        err.print(f"results: {args.out}")
    csv_path = args.csv or (args.plot.with_suffix(".csv") if args.plot else None)
    if csv_path is not None:
        write_csv(csv_path, summaries)
        err.print(f"summary CSV: {csv_path}")
    if args.plot is not None:
        if plot(args.plot, summaries, title=f"{args.corpus.name}: success vs tokens"):
            err.print(f"plot: {args.plot}")
        else:
            err.print(f"matplotlib is not installed: no plot; the CSV {csv_path} has the data")
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (every option spelled out)."""
    parts = ["speedsmith", "bench", str(args.corpus)]
    parts += ["--strategy", *args.strategy, "--budget", *map(str, args.budget)]
    parts += ["--backend", args.backend, "--seed", str(args.seed)]
    for flag in ("replay_file", "budget_seconds", "limit", "model_path", "n_gpu_layers"):
        value = getattr(args, flag)
        if value is not None:
            name = "--model" if flag == "model_path" else "--" + flag.replace("_", "-")
            parts += [name, str(value)]
    if args.min_speedup is not None:
        parts += ["--min-speedup", str(args.min_speedup)]
    if args.task:
        parts += ["--task", *args.task]
    return " ".join(parts)
