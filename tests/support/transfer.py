"""Transfer-suite helpers: the emulator's control API in-process, test files, client factory."""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from kore_models import KoreClient
from kore_models.emulator import RunningEmulator

KEY = "kg-transfer-test-key-0123456789"
CHUNK = 64 * 1024


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a local file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
        """PATCH /_emulator/config with run-time fields."""
        result: dict[str, Any] = await self.call("PATCH", "/config", changes)
        return result

    async def script(self, *faults: dict[str, Any]) -> None:
        """Queue faults (POST /_emulator/script)."""
        await self.call("POST", "/script", {"faults": list(faults)})

    async def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/counters")
        return result

    async def reset_counters(self) -> None:
        await self.call("POST", "/counters/reset")

    async def advance_clock(self, seconds: float) -> None:
        await self.call("POST", "/clock", {"advance_seconds": seconds})

    async def model(self, model_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", f"/models/{model_id}")
        return result

    async def assert_stored(self, model_id: str | None, source: Path) -> dict[str, Any]:
        """The emulator's assembled model has exactly the bytes of ``source``."""
        assert model_id is not None
        doc = await self.model(model_id)
        size, digest = await asyncio.to_thread(lambda: (source.stat().st_size, sha256_file(source)))
        assert doc["size"] == size
        assert doc["sha256"] == digest
        return doc


class FileMaker:
    """Writes files of exact sizes under one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def __call__(self, size: int, *, name: str | None = None, tar: bool = True) -> Path:
        """A ``size``-byte file; with ``tar`` (and size >= 1024) a valid tar archive.

        The archive is one member header followed by seeded random bytes: the emulator's
        validation reads the first member header only, so any size of 1 KiB or more works.
        """
        self.count += 1
        rng = random.Random(size * 7919 + self.count)
        path = self.folder / (name or f"model-{self.count}-{size}.tar")
        if tar and size >= 1024:
            info = tarfile.TarInfo("model/weights.bin")
            info.size = size - 1024
            header = info.tobuf(format=tarfile.USTAR_FORMAT)
            data = header + rng.randbytes(size - len(header))
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                assert archive.next() is not None
        else:
            data = rng.randbytes(size)
        path.write_bytes(data)
        return path


ClientFactory = Callable[..., KoreClient]
