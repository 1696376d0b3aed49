"""Helpers of the download suite: hostile loopback servers, payloads, the emulator's control API."""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import tarfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from kore_models.emulator import RunningEmulator

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


def serve_ranges(data: bytes, *, etag: str | None = None) -> Handler:
    """A well-behaved file server: Range, If-Range on a strong ETag, Content-Length."""

    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {"Accept-Ranges": "bytes"}
        if etag:
            headers["ETag"] = etag
        asked = request.http_range
        if_range = request.headers.get("If-Range")
        if request.headers.get("Range") and (if_range is None or if_range == etag):
            start, stop, _ = asked.indices(len(data))
            if start >= len(data):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
            return web.Response(status=206, body=data[start:stop], headers=headers)
        return web.Response(body=data, headers=headers)

    return handler
