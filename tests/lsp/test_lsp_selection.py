"""Selections: "Optimize selection (lines a-b of `name`)" and "Optimize all N functions".

The code actions (cheap: snapped with tree-sitter, no engine) for selections inside a function,
across functions, and of nothing to rewrite; then the whole loop through the real server and
engine with the replay backend: a selected loop is rewritten and only its lines change, and a
selection across two functions runs both under one progress and applies one edit.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import (
    HANG,
    Client,
    apply_text_edit,
    initialize,
    open_document,
    progress_kinds,
    progress_values,
    single_text_edit,
    to_json,
)
from lsprotocol import types

# sumsq.py of fixtures/project, by line (0-based):
# 0 """A sum of squares..."""  3 def sum_of_squares(nums):  4     total = 0
# 5     for i in range(len(nums)):  6         total = total + nums[: i + 1][-1] * nums[i]
# 7     return total
WRONG_LOOP = "total = sum(nums)"
RIGHT_LOOP = "for x in nums:\n    total += x * x"
LOOP_RANGE = types.Range(
    start=types.Position(line=5, character=0),
    end=types.Position(
        line=6, character=len("        total = total + nums[: i + 1][-1] * nums[i]")
    ),
)

CUBES = '''

def sum_of_cubes(nums):
    """Also quadratic on purpose."""
    total = 0
    for i in range(len(nums)):
        total = total + nums[: i + 1][-1] ** 3
    return total
'''
CUBES_TEST = """

from sumsq import sum_of_cubes


def test_cubes():
    assert sum_of_cubes(list(range(-300, 300))) == sum(x**3 for x in range(-300, 300))
    assert sum_of_cubes([2]) == 8
"""
RIGHT_SQUARES = "def sum_of_squares(nums):\n    return sum([x * x for x in nums])\n"
RIGHT_CUBES = "def sum_of_cubes(nums):\n    return sum([x**3 for x in nums])\n"


def selection(first: tuple[int, int], last: tuple[int, int]) -> types.Range:
    return types.Range(start=types.Position(*first), end=types.Position(*last))


async def actions_for(client: Client, uri: str, selected: types.Range) -> list[Any]:
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=selected,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    return list(result or [])


def replay(tmp_path: Path, *candidates: str) -> dict[str, Any]:
    pool = tmp_path / "replay.json"
    pool.write_text(json.dumps({"candidates": list(candidates)}), encoding="utf-8")
    return {"backend": "replay", "replayFile": str(pool), "budget": len(candidates), "seed": 1}


def execute(client: Client, command: types.Command) -> asyncio.Future[Any]:
    return asyncio.ensure_future(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command=command.command, arguments=list(command.arguments or [])
            )
        )
    )


@pytest.mark.parametrize(
    ("selected", "expected"),
    [
        pytest.param(
            selection((5, 4), (6, 20)),
            [("Optimize selection (lines 6-7 of `sum_of_squares`)", (5, 6))],
            id="loop",
        ),
        pytest.param(
            selection((6, 8), (6, 20)),
            [("Optimize selection (line 7 of `sum_of_squares`)", (6, 6))],
            id="inside-one-statement",
        ),
        pytest.param(
            selection((4, 0), (6, 0)),
            [("Optimize selection (lines 5-7 of `sum_of_squares`)", (4, 6))],
            id="whole-lines-snap-out-to-the-loop",
        ),
        pytest.param(
            selection((6, 30), (4, 2)),
            [("Optimize selection (lines 5-7 of `sum_of_squares`)", (4, 6))],
            id="backwards",
        ),
        pytest.param(selection((3, 2), (6, 9)), [], id="def-line-is-the-whole-function"),
    ],
)
async def test_selection_actions(
    client: Client,
    project: Path,
    selected: types.Range,
    expected: list[tuple[str, tuple[int, int]]],
) -> None:
    await initialize(client, project)
    uri = open_document(client, project / "sumsq.py")

    actions = to_json(await actions_for(client, uri, selected))

    whole = {"uri": uri, "qualname": "sum_of_squares", "version": 1}
    wanted = [
        {
            "title": title,
            "kind": "refactor.rewrite",
            "command": {
                "title": title,
                "command": "speedsmith.optimize",
                "arguments": [{**whole, "region": {"startLine": first, "endLine": last}}],
            },
        }
        for title, (first, last) in expected
    ]
    whole_action = {
        "title": "Optimize sum_of_squares",
        "kind": "refactor.rewrite",
        "command": {
            "title": "Optimize sum_of_squares",
            "command": "speedsmith.optimize",
            "arguments": [whole],
        },
    }
    assert actions == [*wanted, whole_action]


async def test_selection_of_no_statement_says_why(client: Client, tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f(xs):\n    y = 1\n\n    # just a comment\n    return y\n")
    await initialize(client, tmp_path)
    uri = open_document(client, module)

    [disabled, whole] = await actions_for(client, uri, selection((2, 0), (3, 10)))

    assert isinstance(disabled, types.CodeAction) and disabled.disabled is not None
    assert disabled.disabled.reason == (
        "speedsmith: lines 3-4 of f hold no statement to rewrite "
        "(only blank lines, comments or the docstring)"
    )
    assert isinstance(whole, types.CodeAction) and whole.title == "Optimize f"


async def test_selection_across_functions(client: Client, project: Path) -> None:
    path = project / "sumsq.py"
    path.write_text(path.read_text() + CUBES)
    await initialize(client, project)
    uri = open_document(client, path)

    actions = await actions_for(client, uri, selection((6, 0), (13, 3)))

    assert [a.title for a in actions] == [
        "Optimize sum_of_squares",
        "Optimize sum_of_cubes",
        "Optimize all 2 functions",
    ]
    assert list(actions[-1].command.arguments) == [
        {"uri": uri, "version": 1, "qualnames": ["sum_of_squares", "sum_of_cubes"]}
    ]


async def test_optimize_selection_rewrites_only_the_loop(
    client: Client, project: Path, tmp_path: Path
) -> None:
    await initialize(client, project, replay(tmp_path, WRONG_LOOP, RIGHT_LOOP))
    path = project / "sumsq.py"
    text = path.read_text(encoding="utf-8")
    uri = open_document(client, path, text)
    [action, _whole] = await actions_for(client, uri, selection((5, 4), (6, 12)))
    assert action.command is not None

    result = await asyncio.wait_for(execute(client, action.command), timeout=HANG)

    assert result["verdict"] == "improved", result["reason"]
    assert result["region"] == [6, 7]
    [params] = client.applied_edits
    document, text_edit = single_text_edit(params)
    assert (document.uri, document.version) == (uri, 1)
    assert text_edit.range == LOOP_RANGE
    assert text_edit.new_text == "    for x in nums:\n        total += x * x"
    new = apply_text_edit(text, text_edit)
    old_lines, new_lines = text.split("\n"), new.split("\n")
    assert new_lines[:5] == old_lines[:5]  # the def line and `total = 0`, byte for byte
    assert new_lines[7:] == old_lines[7:]  # `return total` and after
    [values] = progress_values(client).values()
    kinds = progress_kinds(values)
    assert kinds[0] == "begin" and kinds[-1] == "end" and set(kinds[1:-1]) == {"report"}
    assert values[0].title == "Optimizing sum_of_squares"
    assert values[-1].message.startswith("verified ")


async def test_optimize_all_functions_under_one_progress(
    client: Client, project: Path, tmp_path: Path
) -> None:
    path = project / "sumsq.py"
    path.write_text(path.read_text() + CUBES)
    test = project / "test_sumsq.py"
    test.write_text(test.read_text() + CUBES_TEST)
    await initialize(client, project, replay(tmp_path, RIGHT_SQUARES, RIGHT_CUBES))
    text = path.read_text(encoding="utf-8")
    uri = open_document(client, path, text)
    *_, every = await actions_for(client, uri, selection((6, 0), (13, 3)))
    assert every.title == "Optimize all 2 functions" and every.command is not None

    result = await asyncio.wait_for(execute(client, every.command), timeout=HANG)

    assert [r["verdict"] for r in result["reports"]] == ["improved", "improved"], result
    [values] = progress_values(client).values()
    kinds = progress_kinds(values)
    assert kinds.count("begin") == kinds.count("end") == 1
    assert (kinds[0], kinds[-1]) == ("begin", "end")
    reports = [v.message for v in values if v.kind == "report"]
    first_cubes = next(i for i, m in enumerate(reports) if m.startswith("sum_of_cubes (2/2)"))
    assert all(m.startswith("sum_of_squares (1/2)") for m in reports[:first_cubes])
    assert all(m.startswith("sum_of_cubes (2/2)") for m in reports[first_cubes:])
    [params] = client.applied_edits
    [change] = params.edit.document_changes or []
    assert isinstance(change, types.TextDocumentEdit)
    assert (change.text_document.uri, change.text_document.version) == (uri, 1)
    new = text
    for edit in sorted(change.edits, key=lambda e: e.range.start.line, reverse=True):
        assert isinstance(edit, types.TextEdit)
        new = apply_text_edit(new, edit)
    assert "return sum([x * x for x in nums])" in new
    assert "return sum([x**3 for x in nums])" in new
    assert '    """Also quadratic on purpose."""' in new  # the docstring stays
