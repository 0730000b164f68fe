"""``python -m speedsmith.lsp [HOST:PORT]``: the language server without the CLI (stdio default)."""

import sys

from speedsmith.lsp.app import start

start(sys.argv[1] if len(sys.argv) > 1 else None)
