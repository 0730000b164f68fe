"""speedsmith's language server (pygls): code actions that run the engine, edits it verified.

Start it with ``speedsmith serve`` (or ``python -m speedsmith.lsp``); see ``server.start``.
"""

from speedsmith.lsp.server import create_server, start

__all__ = ["create_server", "start"]
