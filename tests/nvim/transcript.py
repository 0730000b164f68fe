"""Print what a Neovim user sees when optimising ``examples/shapes`` with the real model.

Runs the same headless flow as ``test_nvim_e2e.py`` (``init.lua``: open ``stats.py``, code
action "Optimize sum_of_squares", execute, wait) on a throw-away copy of ``examples/shapes``,
then prints the code action titles, the ``$/progress`` values (seconds since Neovim started),
the ``window/showMessage`` text and ``sum_of_squares`` in the buffer before and after. This is
the transcript in the README's Neovim paragraph:

    .venv/bin/python tests/nvim/transcript.py [--seed 3] [--budget 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "server")]

from nvim_driver import REPO, run_nvim, server_cache_dir  # noqa: E402

MESSAGE_TYPES = {1: "Error", 2: "Warning", 3: "Info", 4: "Log"}


def function_lines(lines: list[str], name: str) -> list[str]:
    """The ``def name`` block of a module's lines (up to the next top-level statement)."""
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    end = start + 1
    while end < len(lines) and (not lines[end] or lines[end][0].isspace()):
        end += 1
    block = lines[start:end]
    while block and not block[-1]:
        block.pop()
    return block


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print init.lua's raw result too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="speedsmith-nvim-") as tmp:
        folder = Path(tmp)
        project = folder / "shapes"
        shutil.copytree(
            REPO / "examples" / "shapes",
            project,
            ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"),
        )
        on_disk = (project / "stats.py").read_bytes()
        done = run_nvim(
            project,
            folder / "home",
            file="stats.py",
            backend="llama",
            budget=args.budget,
            seed=args.seed,
            wait_ms=240_000,
            timeout_s=270,
            server_cache=server_cache_dir(folder / "speedsmith-cache"),
        )
        unchanged_on_disk = (project / "stats.py").read_bytes() == on_disk
    result = done.result
    if result is None or result["error"] is not None:
        print(result["error"] if result else "nvim wrote no result", file=sys.stderr)
        print(done.output, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))

    print(f"init_options: {json.dumps(result['init_options'], sort_keys=True)}")
    print(f"code actions: {', '.join(result['titles'])}")
    for event in result["progress"]:
        # Neovim copies the begin's title into each report/end; show it once.
        title = f" {event['title']!r}" if event["title"] and event["kind"] == "begin" else ""
        message = f": {event['message']}" if event["message"] else ""
        print(f"[{event['t_ms'] / 1000:5.1f}s] $/progress {event['kind']}{title}{message}")
    for shown in result["messages"]:
        kind = MESSAGE_TYPES.get(shown["type"], shown["type"])
        print(f"[{shown['t_ms'] / 1000:5.1f}s] showMessage ({kind}): {shown['message']}")
    verdict = (result["execute"]["result"] or {}).get("verdict")
    print(f"speedsmith.optimize answered: verdict {verdict}")
    print("buffer before:")
    for line in function_lines(result["before_lines"], "sum_of_squares"):
        print(f"    {line}")
    modified = "modified, not saved" if result["modified"] else "unmodified"
    disk = "stats.py on disk unchanged" if unchanged_on_disk else "stats.py on disk CHANGED"
    print(f"buffer after ({modified}; {disk}):")
    for line in function_lines(result["lines"], "sum_of_squares"):
        print(f"    {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
