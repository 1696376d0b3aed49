"""Raw-HTTP helpers shared by the emulator contract tests."""

from __future__ import annotations

import asyncio
import io
import tarfile
from collections.abc import Callable
from typing import Any

import aiohttp

from kore_models.emulator import RunningEmulator

KEY = "kg-test-key-0123456789"


def make_tar(payload: bytes = b"weights" * 1000) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("model/weights.bin")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


class Api:
    """Thin raw-HTTP helper over one emulator."""

    def __init__(self, emu: RunningEmulator, http: aiohttp.ClientSession) -> None:
        self.emu = emu
        self.http = http
        self.base = f"{emu.url}/api/public"
        self.headers = {"x-api-key": KEY}

    async def post(self, path: str, **kw: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        kw.setdefault("headers", self.headers)
        async with self.http.post(self.base + path, **kw) as resp:
            body = await resp.json(content_type=None)
            return resp.status, body, resp

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        kw.setdefault("headers", self.headers)
        async with self.http.get(self.base + path, **kw) as resp:
            return resp.status, await resp.json(content_type=None), resp

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.emu.url}/_emulator{path}", json=body) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def start(self, size: int, chunks: int = 1, **extra: Any) -> dict[str, Any]:
        body = {
            "fileContext": "model",
            "totalChunks": chunks,
            "fileExtension": "tar",
            "fileName": "sample-1.tar",
            "fileSize": size,
            "isAdapter": False,
            **extra,
        }
        status, doc, _ = await self.post("/files/session/start", json=body)
        assert status == 200, doc
        return dict(doc)

    async def chunk(
        self, sid: str, n: int | str, data: bytes, **kw: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        form = aiohttp.FormData()
        form.add_field(
            "file", io.BytesIO(data), filename="chunk.bin", content_type="application/octet-stream"
        )
        form.add_field("chunkNumber", str(n))
        return await self.post(f"/files/session/{sid}", data=form, **kw)

    async def complete(self, sid: str) -> tuple[int, Any, aiohttp.ClientResponse]:
        return await self.post(f"/files/session/{sid}/complete")

    async def upload_model(self, data: bytes, chunks: int = 1) -> tuple[str, str]:
        """Upload and complete; returns (modelId, import job id)."""
        doc = await self.start(len(data), chunks)
        step = -(-len(data) // chunks)
        for n in range(chunks):
            status, body, _ = await self.chunk(doc["sessionId"], n, data[n * step : (n + 1) * step])
            assert status == 200, body
        status, body, _ = await self.complete(doc["sessionId"])
        assert status == 200, body
        return doc["modelId"], body["dock-statusId"]

    async def advance(self, seconds: float) -> None:
        await self.control("POST", "/clock", {"advance_seconds": seconds})

    async def ready_model(self, data: bytes | None = None) -> str:
        model_id, _ = await self.upload_model(data or make_tar())
        await self.advance(10)
        return model_id


async def until(condition: Callable[[], bool], turns: int = 200_000) -> None:
    """Let the in-process emulator run until condition holds; fail after that many loop turns.

    The emulator exposes no event for its internal progress; on loopback every step it needs
    is a loop turn away, so a bound in turns (not seconds) cannot flake on a slow machine.
    """
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"condition still false after {turns} event-loop turns")
