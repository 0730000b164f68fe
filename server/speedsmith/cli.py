"""Command line: ``speedsmith optimize``, ``serve``, ``model``, ``bench``.

Drives the same engine as the language server. Progress and the human report go to stderr;
``--json`` prints one object on stdout. Only ``--apply`` ever writes to a user file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn

from speedsmith import __version__, edits
from speedsmith.errors import Cancelled, ModelError, SpeedsmithError
from speedsmith.isolate import Region, functions_in_lines
from speedsmith.report import OptimizeReport
from speedsmith.settings import (
    DEFAULTS,
    SANDBOX_MODES,
    STRATEGIES,
    Settings,
    from_pyproject,
    merge,
)
from speedsmith.target import project_root

COUNTED = re.compile(r":? (\d+)/(\d+)$")
"""A progress message ending in ``done/total``."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speedsmith", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"speedsmith {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    opt = sub.add_parser("optimize", help="optimise one function, verified against your tests")
    opt.add_argument(
        "target",
        help="path/to/module.py::function (or ::Class.method), or path/to/module.py:START-END "
        "(1-based lines: the selected statements of one function, or every function they touch)",
    )
    opt.add_argument(
        "--budget",
        help="quick|standard|max (600/2000/8000 generated tokens), N >= 100 tokens, "
        "or N < 100 candidates",
    )
    opt.add_argument("--budget-seconds", type=float, help="wall-clock cap of the search")
    opt.add_argument("--strategy", choices=STRATEGIES, help="how the budget is spent")
    opt.add_argument("--seed", type=int, help="make sampling repeatable")
    opt.add_argument("--model", dest="model_path", help="a GGUF file instead of the embedded model")
    opt.add_argument("--n-gpu-layers", type=int, help="layers to offload to the GPU (-1: all)")
    opt.add_argument(
        "--speculative-tokens",
        type=int,
        help="tokens drafted from the prompt per decode step (0: off; see docs/inference.md)",
    )
    opt.add_argument("--min-speedup", type=float, help="required lower 95%% bound (default 1.1)")
    opt.add_argument(
        "--backend", choices=["llama", "replay", "openai"], help="llama, replay or openai"
    )
    opt.add_argument("--replay-file", help="candidates for the replay backend (JSON)")
    opt.add_argument(
        "--openai-base-url",
        help="openai backend: the server's URL (a project's pyproject.toml cannot set it)",
    )
    _sandbox_arguments(opt)
    _python_argument(opt)
    opt.add_argument("--apply", action="store_true", help="write the verified edit to the file")
    opt.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    check = sub.add_parser("verify", help="verify a given candidate against your tests")
    check.add_argument("target", help="path/to/module.py::function (or ::Class.method)")
    check.add_argument("--candidate", required=True, help="file holding the new function")
    check.add_argument("--min-speedup", type=float, help="required lower 95%% bound")
    _sandbox_arguments(check)
    _python_argument(check)
    check.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    serve = sub.add_parser("serve", help="run the language server (stdio by default)")
    serve.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")

    model = sub.add_parser("model", help="manage the embedded model")
    model.add_argument("action", choices=["fetch", "path"], help="fetch: install it; path: show it")

    from speedsmith.bench import add_arguments

    add_arguments(sub.add_parser("bench", help="success rate per search strategy and budget"))
    return parser


def _sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sandbox",
        choices=SANDBOX_MODES,
        help="where candidates run: auto (default), bubblewrap, namespaces, or weak (opt-in)",
    )
    parser.add_argument(
        "--allow-side-effects",
        action="store_const",
        const=True,
        help="verify a function that writes files, runs processes, reads the clock...",
    )


def _python_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="interpreter (or virtualenv folder) that runs your tests; default: $VIRTUAL_ENV, "
        "else .venv or venv in the project, else speedsmith's own",
    )


def settings_for(file: Path, args: argparse.Namespace, err: Console) -> Settings:
    """Defaults < pyproject.toml [tool.speedsmith] < command-line flags."""
    if getattr(args, "python", None) and Path(args.python).exists():
        args.python = str(Path(args.python).absolute())  # relative to where the user is
    settings, warnings = merge(
        DEFAULTS, from_pyproject(project_root(file)), origin="pyproject.toml"
    )
    flags = {
        key: getattr(args, key)
        for key in (
            "budget",
            "budget_seconds",
            "strategy",
            "seed",
            "model_path",
            "n_gpu_layers",
            "speculative_tokens",
            "min_speedup",
            "backend",
            "replay_file",
            "openai_base_url",
            "sandbox",
            "allow_side_effects",
            "python",
        )
        if getattr(args, key, None) is not None
    }
    settings, more = merge(settings, flags, origin="command line")
    for warning in warnings + more:
        err.print(f"[yellow]warning:[/] {warning}")
    return settings


def _optimize(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    lines = LINES.match(args.target)
    if lines is None:
        target = _target(args.target, err)
        if target is None:
            return 2
        found: list[tuple[Path, str, Region | None]] | None = [(*target, None)]
    else:
        found = _line_targets(Path(lines[1]), int(lines[2]), int(lines[3]), err)
    if found is None:
        return 2
    codes, objects = [], []
    for file, qualname, region in found:  # several: one after another (--apply: each applied)
        display = args.target if len(found) == 1 else f"{file}::{qualname}"
        code, data = _optimize_one(args, err, file, qualname, region, display)
        codes.append(code)
        if data is not None:
            objects.append(data)
        if code == 130:
            break
    if args.json and objects:
        print(json.dumps(objects[0] if len(found) == 1 else objects, indent=2))
    return max(codes)


LINES = re.compile(r"^(.+):(\d+)-(\d+)$")
"""``path/to/module.py:START-END``: 1-based lines, inclusive."""


def _line_targets(
    file: Path, start: int, end: int, err: Console
) -> list[tuple[Path, str, Region | None]] | None:
    """What ``FILE:START-END`` names: the selected statements of the one function holding the
    lines (a region), or each function the lines touch (whole)."""
    if not file.is_file():
        err.print(f"[red]error:[/] no such file: {file}")
        return None
    if start < 1 or end < start:
        err.print(
            f"[red]error:[/] lines must be START-END with 1 <= START <= END, not {start}-{end}"
        )
        return None
    try:
        source = file.read_text(encoding="utf-8")
        functions = functions_in_lines(source, start - 1, end - 1)
    except (OSError, UnicodeDecodeError, SpeedsmithError) as error:
        err.print(f"[red]error:[/] {error}")
        return None
    if not functions:
        err.print(f"[red]error:[/] no function on lines {start}-{end} of {file}")
        return None
    if len(functions) == 1:
        [fn] = functions
        inside = fn.start_line <= start - 1 and end - 1 <= fn.end_line
        return [(file, fn.qualname, Region(start - 1, end - 1) if inside else None)]
    return [(file, fn.qualname, None) for fn in functions]


def _optimize_one(
    args: argparse.Namespace,
    err: Console,
    file: Path,
    qualname: str,
    region: Region | None,
    display: str,
) -> tuple[int, dict[str, Any] | None]:
    """Optimise one function (or region): the exit status and the ``--json`` object."""
    settings = settings_for(file, args, err)
    from speedsmith.engine import optimize

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def progress(phase: str, message: str) -> None:
            # "...: 12/340" (tests run so far) drives the bar; other messages pulse it.
            counted = COUNTED.search(message)
            done, total = (int(counted[1]), int(counted[2])) if counted else (0, None)
            text = message[: counted.start()] if counted else message
            bar.update(task, description=f"[bold]{phase}[/]: {text}", completed=done, total=total)

        try:
            report = optimize(file, qualname, settings, progress=progress, region=region)
        except (Cancelled, KeyboardInterrupt):
            err.print("cancelled")
            return 130, None
    _print_report(report, err, display=display)
    if args.apply and report.verdict == "improved" and report.edit is not None:
        text = file.read_text(encoding="utf-8")
        # The engine read the same file; refuse if it changed meanwhile.
        if report.original and report.original not in _dedented_sources(text, qualname):
            err.print("[red]error:[/] the file changed during the search; nothing written")
            return 1, None
        file.write_text(edits.apply_edit(text, report.edit), encoding="utf-8")
        err.print(f"applied to {file}")
    data: dict[str, Any] = report.to_json()
    data["target"] = display
    return (1 if report.verdict == "error" else 0), data


def _dedented_sources(text: str, qualname: str) -> set[str]:
    from speedsmith.isolate import find_function

    try:
        return {find_function(text, qualname).source}
    except Exception:
        return set()


def _print_report(report: OptimizeReport, err: Console, *, display: str) -> None:
    colour = {"improved": "green", "no-improvement": "yellow", "refused": "yellow"}.get(
        report.verdict, "red"
    )
    err.print(f"[bold {colour}]{report.verdict}[/] {display}: {report.reason}")
    if report.region is not None:
        first, last = report.region
        err.print(f"region: lines {first}-{last} (the rest of the function unchanged)")
    c = report.candidates
    if c.generated:
        rate = f"{100 * c.parsed / c.generated:.0f}%"
        err.print(
            f"candidates: {c.generated} generated ({c.tool} by tools), {c.parsed} parsed "
            f"({rate}), {c.truncated} truncated, {c.equivalent} equivalent, {c.faster} faster"
        )
        if c.unparsed:
            why = ", ".join(f"{count} {reason}" for reason, count in c.unparsed.items())
            err.print(f"not parsed: {why}")
        err.print(f"tokens: {report.tokens.prompt} prompt, {report.tokens.completion} completion")
    if report.hot_region is not None:
        hot = report.hot_region
        err.print(
            f"hot region: lines {hot.start}-{hot.end} ({hot.share:.0%} of the time), "
            f"{c.region} candidates aimed at it"
        )
    if report.python:
        err.print(f"python: {report.python}", soft_wrap=True)
    if report.python or report.recorded_calls:
        err.print(f"recorded calls from your tests: {report.recorded_calls}")
    if report.speedup is not None and report.ci95 is not None:
        lo, hi = report.ci95
        err.print(f"speedup: {report.speedup:.2f}x (95% CI {lo:.2f}-{hi:.2f}x)")
    if report.seconds:
        err.print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items()))
    err.print(f"model: {report.model}")
    if report.sandbox:
        err.print("sandbox: " + ", ".join(report.sandbox))
    if report.diff:
        err.print(report.diff, markup=False)


def _model(args: argparse.Namespace) -> int:
    from speedsmith.llm import model

    err = Console(stderr=True, highlight=False)
    if args.action == "path":
        print(model.embedded_model_path())
        return 0
    try:
        path = model.fetch_embedded_model(log=lambda message: err.print(message, soft_wrap=True))
    except ModelError as error:
        err.print(f"[red]error:[/] {error}", soft_wrap=True)
        return 1
    print(f"embedded model installed: {path}")  # one line, never wrapped
    return 0


def _verify(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    target = _target(args.target, err)
    if target is None:
        return 2
    file, qualname = target
    try:
        candidate = Path(args.candidate).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        err.print(f"[red]error:[/] cannot read the candidate: {error}")
        return 2
    from speedsmith.checker import check_candidate

    with err.status("verifying", spinner="dots"):
        report = check_candidate(file, qualname, candidate, settings_for(file, args, err))
    verdict = "faster" if report.faster else "equivalent" if report.equivalent else "rejected"
    colour = "green" if report.faster else "yellow" if report.equivalent else "red"
    err.print(f"[bold {colour}]{verdict}[/] {args.target}: {report.reason}")
    for mismatch in report.mismatches[1:]:
        err.print(f"  {mismatch}", markup=False)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    return 1 if report.error else 0


def _target(text: str, err: Console) -> tuple[Path, str] | None:
    if "::" not in text:
        err.print("[red]error:[/] target must look like path/to/module.py::function")
        return None
    file_text, qualname = text.rsplit("::", 1)
    file = Path(file_text)
    if not file.is_file():
        err.print(f"[red]error:[/] no such file: {file}")
        return None
    return file, qualname


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "verify":
        return _verify(args)
    if args.command == "optimize":
        return _optimize(args)
    if args.command == "model":
        return _model(args)
    if args.command == "bench":
        from speedsmith.bench import main as bench_main

        return bench_main(args)
    from speedsmith.lsp import start

    start(tcp=args.tcp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
