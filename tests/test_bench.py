"""``speedsmith bench`` on a tiny synthetic corpus with per-task replay pools (no model).

Checks the bookkeeping: success needs a verified speedup and passing tests, budgets hold,
the corpus is never written, ``reference.py`` never reaches a run's project, the summary's
arithmetic, and the command's outputs (table, JSON, CSV, plot).
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest

from speedsmith import bench
from speedsmith.bench import Task, TaskRun, load_pools, load_tasks, run_bench, summarise
from speedsmith.cli import main
from speedsmith.settings import Settings

TASKS = {
    "sumsq": {
        "slow.py": """
            def sum_of_squares(nums):
                total = 0
                for i in range(len(nums)):
                    total = total + nums[i] * nums[i]
                return total
            """,
        "test_slow.py": """
            from slow import sum_of_squares

            def test_small():
                assert sum_of_squares([1, 2, 3]) == 14

            def test_large():
                assert sum_of_squares(list(range(20000))) == sum(x * x for x in range(20000))
            """,
        "reference.py": "raise SystemExit('reference.py must never be imported')\n",
        "task.toml": 'id = "sumsq"\ntarget = "slow.py::sum_of_squares"\nreference_speedup = 2.0\n',
    },
    "dedupe": {
        "slow.py": """
            def dedupe(items):
                out = []
                for item in items:
                    if item not in out:
                        out.append(item)
                return out
            """,
        "test_slow.py": """
            from slow import dedupe

            def test_dedupe():
                assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]
                assert dedupe(list(range(300)) * 2) == list(range(300))
            """,
        "task.toml": 'id = "dedupe"\ntarget = "slow.py::dedupe"\nreference_speedup = 8.0\n',
    },
}
RIGHT = "def sum_of_squares(nums):\n    return sum([x * x for x in nums])\n"
WRONG = "def sum_of_squares(nums):\n    return sum(nums)\n"
DEDUPE_WRONG = "def dedupe(items):\n    return list(set(items))\n"
POOLS = {"sumsq": [WRONG, RIGHT], "dedupe": {"candidates": [DEDUPE_WRONG]}}


def write_corpus(root: Path) -> Path:
    for name, files in TASKS.items():
        for file, text in files.items():
            path = root / name / file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def pools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pools") / "pools.json"
    path.write_text(json.dumps(POOLS), encoding="utf-8")
    return path


def test_tasks_are_loaded_in_order_and_filtered(corpus: Path):
    assert [t.id for t in load_tasks(corpus)] == ["dedupe", "sumsq"]
    only = load_tasks(corpus, ["sum"])
    assert only == [Task("sumsq", corpus / "sumsq", "slow.py", "sum_of_squares", 2.0)]
    assert [t.id for t in load_tasks(corpus, limit=1)] == ["dedupe"]


def test_copies_hide_the_reference(corpus: Path, tmp_path: Path):
    copy = bench.copy_task(load_tasks(corpus, ["sumsq"])[0], tmp_path)
    assert sorted(p.name for p in copy.iterdir()) == [
        "pyproject.toml",
        "slow.py",
        "task.toml",
        "test_slow.py",
    ]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"a": ["x"]}, id="list"),
        pytest.param({"a": {"candidates": ["x"]}}, id="object"),
        pytest.param({"tasks": {"a": ["x"]}}, id="nested"),
    ],
)
def test_pool_formats(tmp_path: Path, data: dict[str, object]):
    path = tmp_path / "pools.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert load_pools(path) == {"a": ["x"]}


def test_replay_runs_score_success_and_keep_the_corpus_untouched(corpus: Path, pools: Path):
    before = snapshot(corpus)
    lines: list[str] = []
    settings = Settings(seed=1, backend="replay")
    runs = run_bench(
        load_tasks(corpus),
        ["best-of-n", "adaptive"],
        [2],
        settings,
        pools=load_pools(pools),
        log=lines.append,
    )
    assert snapshot(corpus) == before, "the corpus must never be written"
    by_key = {(r.strategy, r.task): r for r in runs}
    assert len(runs) == 4 and len(lines) == 4
    win = by_key["best-of-n", "sumsq"]
    assert win.success and win.tests_passed and win.verdict == "improved"
    assert win.speedup is not None and win.speedup >= 1.1
    assert (win.generated, win.equivalent) == (2, 1)
    lost = by_key["best-of-n", "dedupe"]
    assert not lost.success and lost.tests_passed is None and lost.speedup is None
    adaptive = by_key["adaptive", "dedupe"]
    # The zero-token local alias of seen.append is equivalent (not faster): not hopeless.
    assert adaptive.tool >= 1 and adaptive.equivalent >= 1 and not adaptive.success
    assert "stopped early" not in adaptive.reason
    for run in runs:
        assert run.completion_tokens <= 2 * 128, "2 candidates x the per-candidate cap"


def run(strategy: str, success: bool, speedup: float | None, tokens: int) -> TaskRun:
    return TaskRun(
        task="t",
        strategy=strategy,
        budget="600",
        verdict="improved" if speedup else "no-improvement",
        reason="",
        success=success,
        speedup=speedup,
        tests_passed=success if speedup else None,
        completion_tokens=tokens,
        prompt_tokens=0,
        total_seconds=2.0,
        search_seconds=1.0,
        generated=1,
        parsed=1,
        equivalent=1,
        faster=1,
        reference_speedup=4.0,
    )


@pytest.mark.parametrize(
    ("runs", "rate", "mean", "geomean", "tokens"),
    [
        pytest.param(
            [run("s", True, 4.0, 100), run("s", False, None, 300)],
            0.5,
            2.5,
            2.0,
            200.0,
            id="one-of-two",
        ),
        pytest.param(
            [run("s", False, 3.0, 50)], 0.0, 1.0, 1.0, 50.0, id="edit-failed-tests-counts-1x"
        ),
        pytest.param(
            [run("s", True, 2.0, 10), run("s", True, 8.0, 30)], 1.0, 5.0, 4.0, 20.0, id="all"
        ),
    ],
)
def test_summary_arithmetic(
    runs: list[TaskRun], rate: float, mean: float, geomean: float, tokens: float
):
    [row] = summarise(runs)
    assert row.tasks == len(runs)
    assert row.success_rate == rate
    assert math.isclose(row.mean_speedup, mean)
    assert math.isclose(row.geomean_speedup, geomean)
    assert row.mean_completion_tokens == tokens
    assert row.mean_reference_speedup == pytest.approx(4.0)


def test_bench_command_writes_table_json_csv_and_plot(
    corpus: Path, pools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out, png = tmp_path / "results.json", tmp_path / "curves.png"
    args = ["bench", str(corpus), "--strategy", "revision", "--budget", "300"]
    args += ["--backend", "replay", "--replay-file", str(pools), "--seed", "2", "--task", "sumsq"]
    assert main([*args, "--out", str(out), "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "revision" in printed and "100%" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["tasks"] == ["sumsq"] and data["backend"] == "replay"
    assert data["command"].startswith("speedsmith bench ")
    [summary] = data["summary"]
    assert summary["success_rate"] == 1.0 and summary["strategy"] == "revision"
    [only] = data["runs"]
    assert only["completion_tokens"] <= 300
    assert png.stat().st_size > 0
    assert (tmp_path / "curves.csv").read_text(encoding="utf-8").startswith("strategy,budget,")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(["--budget", "lots"], "'budget'", id="bad-budget"),
        pytest.param(["--backend", "replay"], "needs --replay-file", id="replay-without-pools"),
    ],
)
def test_bench_command_errors(
    corpus: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
):
    assert main(["bench", str(corpus), *extra]) == 2
    assert message in capsys.readouterr().err
