"""What the server knows: open documents and their versions, settings per workspace folder.

LSP methods: ``initialize`` (reads ``initializationOptions``), ``initialized`` and
``workspace/didChangeConfiguration`` (both pull ``workspace/configuration`` section
``speedsmith`` when the client supports it); outgoing ``window/showMessage`` and
``window/logMessage``. Settings layers, lowest first: defaults, initializationOptions,
workspace/configuration, then ``[tool.speedsmith]`` of the project's ``pyproject.toml``
(re-read whenever it changed on disk, so edits to it apply at once).

Documents are pygls's (``workspace.text_documents``, kept up to date by pygls's own
``didOpen``/``didChange``/``didClose`` handling); this module only reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.uris import to_fs_path

from speedsmith.settings import DEFAULTS, Settings, from_pyproject, merge

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer
    from pygls.workspace import TextDocument

SECTION = "speedsmith"
IGNORED_CLIENT_KEYS = frozenset({"trace", "serverCommand"})
"""Keys editors put in the section for their LSP client (``speedsmith.trace.server``, the
VS Code extension's ``speedsmith.serverCommand``)."""
CONFIGURED_WAIT_SECONDS = 5.0
"""How long a command waits for the first ``workspace/configuration`` answer."""


def unwrap(options: Any) -> Any:
    """The ``speedsmith`` object when the options are nested under it, else the options."""
    if isinstance(options, Mapping) and isinstance(options.get(SECTION), Mapping):
        return dict(options[SECTION])
    return options


class State:
    """The documents, the client's capabilities and the settings layers, read through the
    pygls server ``ls`` (which also carries outgoing messages)."""

    def __init__(self, ls: LanguageServer) -> None:
        self.ls = ls
        self.init_options: dict[str, Any] = {}
        """``initializationOptions`` (the ``speedsmith`` object when nested)."""
        self.client_settings: Settings = DEFAULTS
        """Defaults + initializationOptions + workspace/configuration (no pyproject)."""
        self.configured = asyncio.Event()
        """Set once the first ``workspace/configuration`` pull is over."""
        self._effective: dict[
            Path, tuple[Settings, tuple[int, ...] | None, Settings, tuple[str, ...]]
        ] = {}
        """Per project root: the client settings and pyproject stamp a merge was made of."""

    # -- the client -------------------------------------------------------------------------

    def client_supports(self, capability: str) -> bool:
        """Whether the dotted snake_case client capability is present and truthy."""
        return bool(get_capability(self.ls.client_capabilities, capability, False))

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.ls.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        self.ls.window_log_message(types.LogMessageParams(type=kind, message=message))

    def warn_settings(self, warnings: list[str], *, popup: bool) -> None:
        """Log every settings warning; with ``popup`` also show one summary message."""
        for warning in warnings:
            self.log(f"speedsmith: {warning}", types.MessageType.Warning)
        if popup and warnings:
            self.show("speedsmith: " + "; ".join(warnings), types.MessageType.Warning)

    # -- documents --------------------------------------------------------------------------

    def document(self, uri: str) -> TextDocument | None:
        """The open document at ``uri`` (None when it is not open)."""
        try:
            return self.ls.workspace.text_documents.get(uri)
        except RuntimeError:  # no workspace before initialize
            return None

    def text(self, uri: str) -> str | None:
        """The open document's current text (None when it is not open or unreadable)."""
        document = self.document(uri)
        if document is None:
            return None
        try:
            return document.source
        except (OSError, UnicodeDecodeError):
            return None

    def version(self, uri: str) -> int | None:
        document = self.document(uri)
        return document.version if document is not None else None

    def project_root(self, uri: str | None = None) -> Path | None:
        """The workspace folder holding ``uri`` (the deepest one), else the workspace root."""
        try:
            workspace = self.ls.workspace
        except RuntimeError:
            return None
        path = to_fs_path(uri) if uri else None
        if path is not None:
            best: Path | None = None
            for folder in workspace.folders.values():
                folder_path = to_fs_path(folder.uri)
                if folder_path is None:
                    continue
                candidate = Path(folder_path)
                if Path(path).is_relative_to(candidate) and (
                    best is None or len(candidate.parts) > len(best.parts)
                ):
                    best = candidate
            if best is not None:
                return best
        root = workspace.root_path
        return Path(root) if root else None

    # -- settings ---------------------------------------------------------------------------

    def initialize(self, options: Any) -> None:
        """``initialize``: the ``initializationOptions`` layer."""
        options = unwrap(options)
        self.init_options = options if isinstance(options, dict) else {}
        settings, warnings = merge(DEFAULTS, self.init_options, origin="initializationOptions")
        self.client_settings = settings
        self.warn_settings(warnings, popup=True)

    async def initialized(self) -> None:
        """``initialized``: the first pull, then the project's warnings."""
        try:
            await self.pull(None, popup=True)
        finally:
            self.configured.set()
        _, warnings = self.effective(None)
        self.warn_settings(warnings, popup=True)

    async def pull(self, pushed: Any, *, popup: bool) -> None:
        """Recompute ``client_settings`` from initializationOptions and the client's config.

        Asks ``workspace/configuration`` when the client supports it; otherwise uses ``pushed``
        (the ``settings`` of a ``workspace/didChangeConfiguration`` notification), if any.
        """
        settings, _ = merge(DEFAULTS, self.init_options, origin="initializationOptions")
        section: Any = None
        if self.client_supports("workspace.configuration"):
            root = self.project_root()
            item = types.ConfigurationItem(
                section=SECTION, scope_uri=root.as_uri() if root is not None else None
            )
            try:
                result = await self.ls.workspace_configuration_async(
                    types.ConfigurationParams(items=[item])
                )
            except Exception as err:
                self.log(
                    f"speedsmith: workspace/configuration failed: {err}", types.MessageType.Warning
                )
            else:
                section = result[0] if result else None
        elif pushed is not None:
            section = unwrap(pushed)
        if isinstance(section, Mapping):
            section = {k: v for k, v in section.items() if k not in IGNORED_CLIENT_KEYS}
        settings, warnings = merge(settings, section, origin="workspace/configuration")
        self.client_settings = settings
        self.warn_settings(warnings, popup=popup)

    def effective(self, uri: str | None) -> tuple[Settings, list[str]]:
        """The client's settings with the project's ``[tool.speedsmith]`` on top.

        The merge is kept until the client's settings or the ``pyproject.toml`` (its size,
        modification time or inode) change: hover and every save ask, a stat is enough.
        """
        root = self.project_root(uri)
        if root is None:
            return merge(self.client_settings, {}, origin="pyproject.toml")
        path = root / "pyproject.toml"
        try:
            info = path.stat()
            stamp: tuple[int, ...] | None = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            stamp = None
        known = self._effective.get(root)
        if known is not None and known[0] is self.client_settings and known[1] == stamp:
            return known[2], list(known[3])
        settings, warnings = merge(self.client_settings, from_pyproject(root), origin=str(path))
        self._effective[root] = (self.client_settings, stamp, settings, tuple(warnings))
        return settings, warnings

    async def settings_for(self, uri: str | None) -> Settings:
        """Effective settings for a job: waits (briefly) for the first configuration pull."""
        if not self.configured.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.configured.wait(), timeout=CONFIGURED_WAIT_SECONDS)
        settings, warnings = self.effective(uri)
        self.warn_settings(warnings, popup=False)
        return settings
