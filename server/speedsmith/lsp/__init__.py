"""speedsmith's language server (pygls): code actions that run the engine, edits it verified.

Start it with ``speedsmith serve`` (or ``python -m speedsmith.lsp``); see ``app.start``. The
layout, one concern per module: ``state`` (documents, versions, settings), ``scheduler`` (the
job queue), ``actions`` (code actions), ``commands`` (executeCommand), ``hints`` (diagnostics
and hover from background runs), ``edits`` (LSP edits), ``app`` (the server and registration).
"""

from speedsmith.lsp.app import create_server, start

__all__ = ["create_server", "start"]
