"""The pytest plugin of ``kore-models[testing]``: emulator and client fixtures, scenario marker.

Fixtures (function scope):

- ``kore_emulator``: a :class:`~kore_models.testing.KoreEmulator` on a free loopback port;
  ``@pytest.mark.kore_emulator(job_seconds=1.0, ...)`` passes EmulatorConfig options and
  ``@pytest.mark.kore_scenario("flaky")`` applies a named fault scenario before the test.
- ``kore_client``: an async ``KoreClient`` bound to it (journals under ``tmp_path``).
- ``kore_sync_client``: the same as a ``SyncKoreClient``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ..client import KoreClient
from ..sync import SyncKoreClient
from . import KoreEmulator, client_options

__all__ = ["kore_client", "kore_emulator", "kore_sync_client"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kore_emulator(**options): EmulatorConfig options for kore_emulator"
    )
    config.addinivalue_line(
        "markers", "kore_scenario(name): apply a named fault scenario to kore_emulator"
    )


@pytest.fixture
def kore_emulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KoreEmulator]:
    """A running emulator for this test (stopped afterwards)."""
    marker = request.node.get_closest_marker("kore_emulator")
    options: dict[str, Any] = {"job_seconds": 0.1, "data_dir": tmp_path / "kore-emulator"}
    if marker is not None:
        options.update(marker.kwargs)
    with KoreEmulator(**options) as emulator:
        scenario = request.node.get_closest_marker("kore_scenario")
        if scenario is not None:
            emulator.scenario(*scenario.args)
        yield emulator


@pytest_asyncio.fixture
async def kore_client(kore_emulator: KoreEmulator, tmp_path: Path) -> AsyncIterator[KoreClient]:
    """An async client bound to ``kore_emulator`` (closed afterwards)."""
    options = client_options(kore_emulator, state_dir=tmp_path / "kore-state")
    async with KoreClient(**options) as client:
        yield client


@pytest.fixture
def kore_sync_client(kore_emulator: KoreEmulator, tmp_path: Path) -> Iterator[SyncKoreClient]:
    """A blocking client bound to ``kore_emulator`` (closed afterwards)."""
    options = client_options(kore_emulator, state_dir=tmp_path / "kore-state")
    with SyncKoreClient(**options) as client:
        yield client
