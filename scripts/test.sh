#!/usr/bin/env bash
# The test command the README promises: installs everything it needs into .venv (fresh machine
# friendly), fetches the embedded model, then runs lint, types and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# llama-cpp-python builds from source (about 6 minutes on 2 cores; pip caches the wheel).
.venv/bin/python -m pip install -q -e '.[dev]'
.venv/bin/speedsmith model fetch
# A real VS Code (code-server in headless Chromium) for tests/vscode/test_vscode_codeserver.py:
# about 2.5 min on a fresh machine, 1 s once cached. If it cannot be installed, that test skips
# and says why; nothing else depends on it.
bash scripts/setup_codeserver.sh ||
  echo "warning: code-server setup failed; the headless VS Code test will skip" >&2
.venv/bin/ruff check server tests scripts
.venv/bin/ruff format --check server tests scripts
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
