"""Combine ``speedsmith bench --out`` JSON files into one JSON, a summary CSV and a plot."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from speedsmith.bench import TaskRun, plot, results_json, summarise, write_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("inputs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plot", type=Path, required=True)
    parser.add_argument("--title", default="success vs generated tokens")
    args = parser.parse_args()
    runs: list[TaskRun] = []
    commands = []
    meta: dict[str, object] = {}
    for path in args.inputs:
        data = json.loads(path.read_text(encoding="utf-8"))
        runs += [TaskRun(**run) for run in data["runs"]]
        commands.append(data["command"])
        meta = {k: v for k, v in data.items() if k not in {"runs", "summary", "command"}}
    summaries = summarise(runs)
    meta["commands"] = commands
    meta["strategies"] = sorted({r.strategy for r in runs})
    args.out.write_text(json.dumps(results_json(runs, summaries, meta), indent=2) + "\n")
    write_csv(args.plot.with_suffix(".csv"), summaries)
    plot(args.plot, summaries, title=args.title)


if __name__ == "__main__":
    main()
