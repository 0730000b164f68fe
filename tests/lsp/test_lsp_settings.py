"""Settings layers: initializationOptions < workspace/configuration < pyproject.toml.

LSP methods under test: ``initialize``, ``initialized``, ``workspace/configuration``,
``workspace/didChangeConfiguration``; read back with the ``speedsmith.settings`` command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from lsp_helpers import CAPABILITIES, HANG, Client, initialize
from lsprotocol import types

from speedsmith.settings import DEFAULTS, to_wire


async def effective(client: Client, root: Path | None = None) -> dict[str, Any]:
    arguments = [{"uri": (root / "mod.py").as_uri()}] if root is not None else []
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="speedsmith.settings", arguments=arguments)
    )


def warnings_shown(client: Client) -> list[str]:
    return [m.message for m in client.messages if m.type == types.MessageType.Warning]


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"budget": 3, "minSpeedup": 1.5, "seed": 4}, id="flat"),
        pytest.param({"speedsmith": {"budget": 3, "minSpeedup": 1.5, "seed": 4}}, id="nested"),
        pytest.param({"budget": "3", "min_speedup": 1.5, "seed": 4}, id="snake-and-digits"),
    ],
)
async def test_initialization_options(client: Client, tmp_path: Path, options: Any) -> None:
    await initialize(client, tmp_path, options)

    settings = await effective(client)

    assert settings == {**to_wire(DEFAULTS), "budget": 3, "minSpeedup": 1.5, "seed": 4}
    assert warnings_shown(client) == []


async def test_invalid_options_warn_and_keep_defaults(client: Client, tmp_path: Path) -> None:
    await initialize(client, tmp_path, {"budget": "lots", "bogus": 1, "seed": 2})

    settings = await effective(client)

    assert settings == {**to_wire(DEFAULTS), "seed": 2}
    [warning] = warnings_shown(client)
    assert warning.startswith("speedsmith: ")
    assert "'budget'" in warning
    assert "'bogus'" in warning


async def test_layers(client: Client, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.speedsmith]\nbudget = 7\n", encoding="utf-8")
    client.set_configuration(
        {"budget": 5, "temperature": 0.2, "trace": {"server": "verbose"}}, section="speedsmith"
    )
    await initialize(client, tmp_path, {"budget": 3, "seed": 9, "temperature": 0.9})

    settings = await effective(client, tmp_path)

    assert (settings["seed"], settings["temperature"], settings["budget"]) == (9, 0.2, 7)
    assert warnings_shown(client) == []


async def test_pyproject_edits_apply_without_restart(client: Client, tmp_path: Path) -> None:
    await initialize(client, tmp_path)
    assert (await effective(client, tmp_path))["budget"] == "quick"

    (tmp_path / "pyproject.toml").write_text("[tool.speedsmith]\nbudget = 2\n", encoding="utf-8")

    assert (await effective(client, tmp_path))["budget"] == 2


async def test_did_change_configuration_pulls_again(client: Client, tmp_path: Path) -> None:
    client.set_configuration({"budget": 5}, section="speedsmith")
    await initialize(client, tmp_path)
    assert (await effective(client))["budget"] == 5

    client.set_configuration({"budget": "max"}, section="speedsmith")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))

    async def budget() -> Any:
        return (await effective(client))["budget"]

    assert await wait_for_value(budget, "max")


async def test_pushed_configuration_without_pull_support(client: Client, tmp_path: Path) -> None:
    workspace = attrs.evolve(CAPABILITIES.workspace, configuration=False)
    await initialize(client, tmp_path, capabilities=attrs.evolve(CAPABILITIES, workspace=workspace))

    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"speedsmith": {"budget": 9}})
    )

    async def budget() -> Any:
        return (await effective(client))["budget"]

    assert await wait_for_value(budget, 9)


async def wait_for_value(read: Callable[[], Awaitable[Any]], expected: Any) -> bool:
    """Whether ``read()`` comes to return ``expected`` (notifications are async; ``HANG`` only
    catches a hang)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANG
    while loop.time() < deadline:
        if await read() == expected:
            return True
        await asyncio.sleep(0.05)
    return False
