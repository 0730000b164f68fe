"""Fixtures of the llm tests: the embedded model and a real OpenAI-compatible server on
localhost (``local_server.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from local_server import LocalServer, start_server


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    from speedsmith.errors import ModelError
    from speedsmith.llm.model import resolve_model

    try:
        return resolve_model(None)
    except ModelError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def local_server(
    embedded_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalServer]:
    server = start_server(embedded_model, tmp_path_factory.mktemp("server") / "server.log")
    try:
        yield server
    finally:
        server.kill()
