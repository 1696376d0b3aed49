"""The live-emulator fixtures shared by the transfer, download, folder and integrity suites.

- ``emu``: a running emulator on a loopback port (jobs finish at once unless a test
  patches ``job_seconds``).
- ``ctl``: its ``/_emulator`` control API over a raw aiohttp session.
- ``clients``: builds ``KoreClient`` objects bound to it with small chunks, no retry sleeps,
  fast polling and ``state_dir=tmp_path/"state"``; closed at teardown.
- ``kore``: one such client with the defaults.
- ``make_file``: writes a file of an exact size (a valid tar archive when large enough).

Registered for the whole suite by ``tests/conftest.py``; a suite's own conftest may
override any of them (the folder suite's ``kore`` does).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kore_models import KoreClient
from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator
from tests.support.transfer import CHUNK, KEY, ClientFactory, EmuControl, FileMaker


@pytest.fixture
async def emu(tmp_path: Path) -> AsyncIterator[RunningEmulator]:
    config = EmulatorConfig(api_key=KEY, data_dir=tmp_path / "emu", job_seconds=0, seed=1)
    async with run_emulator(config) as server:
        yield server


@pytest.fixture
async def ctl(emu: RunningEmulator) -> AsyncIterator[EmuControl]:
    async with aiohttp.ClientSession() as http:
        yield EmuControl(emu, http)


@pytest.fixture
async def clients(emu: RunningEmulator, tmp_path: Path) -> AsyncIterator[ClientFactory]:
    made: list[KoreClient] = []

    def build(**overrides: Any) -> KoreClient:
        options: dict[str, Any] = {
            "host": emu.url,
            "api_key": KEY,
            "state_dir": tmp_path / "state",
            "retry_sleeps": False,
            "chunk_size": CHUNK,
            "concurrency": 4,
            "read_block_size": 16 * 1024,
            "poll_initial": 0.02,
            "poll_max": 0.1,
            "poll_min_interval": 0.02,
            "read_timeout": 10.0,
            "stall_timeout": 10.0,
            **overrides,
        }
        client = KoreClient(**options)
        made.append(client)
        return client

    yield build
    for client in made:
        await client.aclose()


@pytest.fixture
def kore(clients: ClientFactory) -> KoreClient:
    return clients()


@pytest.fixture
def make_file(tmp_path: Path) -> FileMaker:
    folder = tmp_path / "files"
    folder.mkdir()
    return FileMaker(folder)
