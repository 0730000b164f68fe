"""Settings from the editor and the project.

LSP methods: ``initialize`` (reads ``initializationOptions``), ``initialized`` and
``workspace/didChangeConfiguration`` (both pull ``workspace/configuration`` section
``speedsmith`` when the client supports it). Layers, lowest first: defaults,
initializationOptions, workspace/configuration, then ``[tool.speedsmith]`` of the project's
``pyproject.toml`` (re-read each time settings are needed, so edits to it apply at once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lsprotocol import types

from speedsmith.lsp.server import SpeedsmithServer
from speedsmith.settings import DEFAULTS, Settings, from_pyproject, merge

SECTION = "speedsmith"
IGNORED_CLIENT_KEYS = frozenset({"trace", "serverCommand"})
"""Keys editors put in the section for their LSP client (``speedsmith.trace.server``, the
VS Code extension's ``speedsmith.serverCommand``)."""


def register(server: SpeedsmithServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: SpeedsmithServer, params: types.InitializeParams) -> None:
        options = unwrap(params.initialization_options)
        ls.init_options = options if isinstance(options, dict) else {}
        settings, warnings = merge(DEFAULTS, options, origin="initializationOptions")
        ls.client_settings = settings
        ls.warn_settings(warnings, popup=True)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: SpeedsmithServer, params: types.InitializedParams) -> None:
        try:
            await pull(ls, None, popup=True)
        finally:
            ls.configured.set()
        _, warnings = effective_settings(ls, None)
        ls.warn_settings(warnings, popup=True)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: SpeedsmithServer, params: types.DidChangeConfigurationParams
    ) -> None:
        await pull(ls, params.settings, popup=True)
        if ls.background is not None:
            await ls.background.settings_changed()


def unwrap(options: Any) -> Any:
    """The ``speedsmith`` object when the options are nested under it, else the options."""
    if isinstance(options, Mapping) and isinstance(options.get(SECTION), Mapping):
        return dict(options[SECTION])
    return options


async def pull(ls: SpeedsmithServer, pushed: Any, *, popup: bool) -> None:
    """Recompute ``ls.client_settings`` from initializationOptions and the client's config.

    Asks ``workspace/configuration`` when the client supports it; otherwise uses ``pushed``
    (the ``settings`` of a ``workspace/didChangeConfiguration`` notification), if any.
    """
    settings, _ = merge(DEFAULTS, ls.init_options, origin="initializationOptions")
    section: Any = None
    if ls.client_supports("workspace.configuration"):
        root = ls.project_root()
        item = types.ConfigurationItem(
            section=SECTION, scope_uri=root.as_uri() if root is not None else None
        )
        try:
            result = await ls.workspace_configuration_async(types.ConfigurationParams(items=[item]))
        except Exception as err:
            ls.log(f"speedsmith: workspace/configuration failed: {err}", types.MessageType.Warning)
        else:
            section = result[0] if result else None
    elif pushed is not None:
        section = unwrap(pushed)
    if isinstance(section, Mapping):
        section = {k: v for k, v in section.items() if k not in IGNORED_CLIENT_KEYS}
    settings, warnings = merge(settings, section, origin="workspace/configuration")
    ls.client_settings = settings
    ls.warn_settings(warnings, popup=popup)


def effective_settings(ls: SpeedsmithServer, uri: str | None) -> tuple[Settings, list[str]]:
    """The client's settings with the project's ``[tool.speedsmith]`` on top."""
    root = ls.project_root(uri)
    table = from_pyproject(root) if root is not None else {}
    return merge(ls.client_settings, table, origin=_pyproject_origin(root))


async def settings_for(ls: SpeedsmithServer, uri: str | None) -> Settings:
    """Effective settings for a command: waits (briefly) for the first configuration pull."""
    if not ls.configured.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ls.configured.wait(), timeout=5.0)
    settings, warnings = effective_settings(ls, uri)
    ls.warn_settings(warnings, popup=False)
    return settings


def _pyproject_origin(root: Path | None) -> str:
    return str(root / "pyproject.toml") if root is not None else "pyproject.toml"
