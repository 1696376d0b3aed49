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

import pytest
from aiohttp import web

from kore_models import KoreClient
from tests.download.download_support import KEY, HostileServer, RawServer, start_server

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
