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
.venv/bin/ruff check server tests scripts
.venv/bin/ruff format --check server tests scripts
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
