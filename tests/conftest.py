"""Shared fixtures: small simulated worlds and the public reference data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"


def reference_file(*parts: str) -> Path:
    """A file of the public reference data: the repo's copy in tests/data, else ../shared/data."""
    local = TEST_DATA.joinpath(*parts)
    return local if local.exists() else SHARED_DATA.joinpath(*parts)


@pytest.fixture(scope="session")
def small_world():
    """A 12-geo, 200-day world (fast) and its long panel."""
    from causal.world import World

    world = World(12, 200, seed=7)
    return world, world.panel()


@pytest.fixture(scope="session")
def default_world():
    """The default world (50 geos, two years), built once per test session."""
    from causal.world import World

    world = World(seed=0)
    return world, world.panel()


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL server shared by the session (``tests/pg_server.py``), or a skip with the reason."""
    from pg_server import start_server

    server = start_server()
    if isinstance(server, str):
        pytest.skip(server)
    yield server
    server.stop()


@pytest.fixture
def run_cli():
    """Run ``liftlab`` in-process as a user would; returns (exit_code, stdout, stderr)."""
    from click.testing import CliRunner

    from allocation.cli.main import main

    def _run(*args: str):
        runner = CliRunner()
        with runner.isolation() as (out, err, _):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            return code, out.getvalue().decode(), err.getvalue().decode()

    return _run
