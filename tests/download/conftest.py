"""Fixtures of the download suite: the emulator, and hostile servers on loopback.

- ``emu``, ``ctl``, ``clients``, ``kore``, ``make_file``: as in the transfer suite (a live
  emulator on a real loopback socket, its control API, clients bound to it, test files).
- ``hostile``: an aiohttp.web server on 127.0.0.1 (port 0) in the test's own loop whose
  every request goes to the ``handler`` a test sets; it records what it was sent.
- ``raw_server``: an asyncio server on 127.0.0.1 that writes whatever bytes a test gives,
  for answers aiohttp.web would refuse to produce (a chunked body that never ends cleanly).
- ``client_for(url)``: a KoreClient for that host with no retry sleeps and small blocks.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kore_models import KoreClient
from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator

KEY = "kg-download-test-key-0123456789"
CHUNK = 64 * 1024


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def payload(size: int, seed: int = 7) -> bytes:
    """``size`` seeded random bytes."""
    return random.Random(seed).randbytes(size)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request a hostile server received."""

    method: str
    path_qs: str
    headers: dict[str, str]


@dataclass
class HostileServer:
    """A loopback aiohttp.web server; ``handler`` answers, ``seen`` records the requests."""

    url: str = ""
    handler: Handler | None = None
    seen: list[Seen] = field(default_factory=list)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(
                request.method, request.path_qs, {k.lower(): v for k, v in request.headers.items()}
            )
        )
        assert self.handler is not None, "the test set no handler"
        return await self.handler(request)

    def ranges(self) -> list[str | None]:
        """The Range header of each request, in order."""
        return [s.headers.get("range") for s in self.seen]


async def _start_server(dispatch: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


HostileFactory = Callable[[], Awaitable[HostileServer]]


@pytest.fixture
async def hostile_factory() -> AsyncIterator[HostileFactory]:
    runners: list[web.AppRunner] = []

    async def make() -> HostileServer:
        server = HostileServer()
        runner, server.url = await _start_server(server.dispatch)
        runners.append(runner)
        return server

    yield make
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def hostile(hostile_factory: HostileFactory) -> HostileServer:
    return await hostile_factory()


RawWriter = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawServer:
    """A loopback asyncio server whose ``respond`` writes raw HTTP bytes."""

    url: str = ""
    respond: RawWriter | None = None
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        assert self.respond is not None
        try:
            await self.respond(reader, writer)
        finally:
            writer.close()


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


class EmuControl:
    """The emulator's test-only control API, spoken over a raw aiohttp session."""

    def __init__(self, emu: RunningEmulator, http: aiohttp.ClientSession) -> None:
        self.emu = emu
        self.http = http

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.emu.url}/_emulator{path}", json=body) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def configure(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("PATCH", "/config", changes)
        return result

    async def script(self, *faults: dict[str, Any]) -> None:
        await self.call("POST", "/script", {"faults": list(faults)})

    async def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/counters")
        return result

    async def reset_counters(self) -> None:
        await self.call("POST", "/counters/reset")


class FileMaker:
    """Writes files of exact sizes (seeded random bytes after a tar header) under one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def __call__(self, size: int) -> Path:
        import io
        import tarfile

        self.count += 1
        rng = random.Random(size * 7919 + self.count)
        info = tarfile.TarInfo("model/weights.bin")
        info.size = size - 1024
        header = info.tobuf(format=tarfile.USTAR_FORMAT)
        data = header + rng.randbytes(size - len(header))
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            assert archive.next() is not None
        path = self.folder / f"model-{self.count}-{size}.tar"
        path.write_bytes(data)
        return path


ClientFactory = Callable[..., KoreClient]


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
