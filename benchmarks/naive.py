"""The comparators users would write by hand: plain aiohttp, whole parts read into memory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp


def _parts(size: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(off, min(chunk_size, size - off)) for off in range(0, size, chunk_size)]


def _read(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)


async def _start(http: aiohttp.ClientSession, api: str, path: Path, chunks: int, size: int) -> str:
    body = {
        "fileContext": "model",
        "totalChunks": chunks,
        "fileExtension": "tar",
        "fileName": path.name,
        "fileSize": size,
    }
    async with http.post(f"{api}/files/session/start", json=body) as resp:
        resp.raise_for_status()
        data: dict[str, Any] = await resp.json()
    return str(data["sessionId"])


async def _post(
    http: aiohttp.ClientSession, api: str, sid: str, number: int, data: bytes, name: str
) -> None:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    form.add_field("chunkNumber", str(number))
    async with http.post(f"{api}/files/session/{sid}", data=form) as resp:
        resp.raise_for_status()
        await resp.read()


async def _complete(http: aiohttp.ClientSession, api: str, sid: str) -> None:
    async with http.post(f"{api}/files/session/{sid}/complete") as resp:
        resp.raise_for_status()
        await resp.read()


async def naive_sequential(api: str, key: str, path: Path, size: int, chunk_size: int) -> None:
    """Read each part whole, post the parts one after another (openai-python/hf_hub style)."""
    parts = _parts(size, chunk_size)
    async with aiohttp.ClientSession(headers={"x-api-key": key}) as http:
        sid = await _start(http, api, path, len(parts), size)
        for number, (offset, length) in enumerate(parts):
            data = _read(path, offset, length)
            await _post(http, api, sid, number, data, path.name)
        await _complete(http, api, sid)


async def naive_gather(api: str, key: str, path: Path, size: int, chunk_size: int) -> None:
    """Read every part whole into memory, then ``asyncio.gather`` all the uploads at once."""
    parts = _parts(size, chunk_size)
    async with aiohttp.ClientSession(headers={"x-api-key": key}) as http:
        sid = await _start(http, api, path, len(parts), size)
        blobs = [_read(path, offset, length) for offset, length in parts]
        await asyncio.gather(
            *(_post(http, api, sid, n, blob, path.name) for n, blob in enumerate(blobs))
        )
        await _complete(http, api, sid)
