"""Fixtures of the download suite: the emulator, and hostile servers on loopback.

- ``emu``, ``ctl``, ``clients``, ``kore``, ``make_file``: as in the transfer suite (a live
  emulator on a real loopback socket, its control API, clients bound to it, test files;
  the helper classes are :mod:`tests.support.transfer`'s).
- ``hostile``: an aiohttp.web server on 127.0.0.1 (port 0) in the test's own loop whose
  every request goes to the ``handler`` a test sets; it records what it was sent.
- ``raw_server``: an asyncio server on 127.0.0.1 that writes whatever bytes a test gives,
  for answers aiohttp.web would refuse to produce (a chunked body that never ends cleanly).
- ``client_for(url)``: a KoreClient for that host with no retry sleeps and small blocks.
Hostile-server helpers live in :mod:`tests.download.download_support`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kore_models import KoreClient
from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator
from tests.download.download_support import KEY, HostileServer, RawServer, start_server
from tests.support.transfer import CHUNK, ClientFactory, EmuControl, FileMaker
from tests.support.transfer import KEY as EMULATOR_KEY

HostileFactory = Callable[[], Awaitable[HostileServer]]


@pytest.fixture
async def hostile_factory() -> AsyncIterator[HostileFactory]:
    runners: list[web.AppRunner] = []

    async def make() -> HostileServer:
        server = HostileServer()
        runner, server.url = await start_server(server.dispatch)
        runners.append(runner)
        return server

    yield make
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def hostile(hostile_factory: HostileFactory) -> HostileServer:
    return await hostile_factory()


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    server = RawServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    server.url = f"http://127.0.0.1:{port}"
    yield server
    listener.close()
    await listener.wait_closed()


ClientFor = Callable[..., KoreClient]


@pytest.fixture
async def client_for(tmp_path: Path) -> AsyncIterator[ClientFor]:
    made: list[KoreClient] = []

    def build(url: str, **overrides: Any) -> KoreClient:
        options: dict[str, Any] = {
            "host": url,
            "api_key": KEY,
            "state_dir": tmp_path / "state",
            "retry_sleeps": False,
            "read_block_size": 16 * 1024,
            "read_timeout": 10.0,
            **overrides,
        }
        client = KoreClient(**options)
        made.append(client)
        return client

    yield build
    for client in made:
        await client.aclose()


# ---- the emulator (as in the transfer suite) -------------------------------------------


@pytest.fixture
async def emu(tmp_path: Path) -> AsyncIterator[RunningEmulator]:
    config = EmulatorConfig(api_key=EMULATOR_KEY, data_dir=tmp_path / "emu", job_seconds=0, seed=1)
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
            "api_key": EMULATOR_KEY,
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
