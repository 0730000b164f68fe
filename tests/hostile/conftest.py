"""Fixtures of the hostile suite: one throw-away world per test module (``hostile_world``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from hostile_world import SECRET_ENV, World, build_world

from speedsmith.workload import record_workload

QUALNAMES = ("total", "slow_total")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The world (see ``hostile_world``) with ``$HOME`` at its fake home, the secret in the
    environment and the calls of ``total`` and ``slow_total`` recorded."""
    if sys.platform != "linux":
        pytest.skip("the hostile suite's sandbox checks are Linux-only")
    base = tmp_path_factory.mktemp("hostile")
    built = build_world(base, tmp_path_factory.getbasetemp())
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HOME", str(built.home))
            patch.setenv(SECRET_ENV, built.env_secret)
            patch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
            # The parent's own compute lock lives outside the world, which must stay as built.
            patch.setenv("SPEEDSMITH_CACHE_DIR", str(base / "cache"))
            for qualname in QUALNAMES:
                out = base / f"out-{qualname}"
                out.mkdir()
                workload = record_workload(
                    built.project / "mod.py",
                    qualname,
                    python=str(built.venv_python),
                    out_dir=out,
                    timeout=60,
                )
                assert workload.calls > 0, workload.pytest_output
                built.workloads[qualname] = workload
            built.reset()
            yield built
    finally:
        built.remove_outside()


@pytest.fixture
def fresh_world(world: World) -> World:
    """The module's world, put back as built before the test (an escape spoils nothing)."""
    world.reset()
    return world
