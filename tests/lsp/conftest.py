"""Fixtures for the language server tests: a pytest-lsp client talking to a server subprocess.

``client`` runs the real server (``python -m speedsmith serve``); ``fake_client`` runs the same
server with ``engine.optimize`` replaced by the scripted stand-in in ``fake_server.py``, to
test the handlers' logic (progress, stale documents, cancellation) deterministically.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import (
    FAKE_SERVER_COMMAND,
    FIXTURE_PROJECT,
    SERVER_COMMAND,
    SERVER_ENV,
    Client,
    make_client,
)
from pytest_lsp import ClientServerConfig

collect_ignore = ["fixtures"]


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=SERVER_COMMAND, server_env=SERVER_ENV, client_factory=make_client
    )
)
async def client(lsp_client: Client):
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=FAKE_SERVER_COMMAND, server_env=SERVER_ENV, client_factory=make_client
    )
)
async def fake_client(lsp_client: Client):
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of ``fixtures/project``."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURE_PROJECT, root)
    return root
