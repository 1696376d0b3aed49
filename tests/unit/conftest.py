"""Shared fixtures of the unit suite: a clean KORE_* environment, aioresponses, a client.

Helpers are handed out through fixtures (no test module imports this file).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import MultipartWriter
from aiohttp.abc import AbstractStreamWriter
from aioresponses import aioresponses
from multidict import CIMultiDict

from kore_models import KoreClient

UNIT_HOST = "https://kore.example.test"
UNIT_KEY = "kg-1a2b3c4d-5e6f-5a7b-9c8d-0e1f2a3b4c5d-c9d8e7f6-6a5b-4c3d-a2b1-5c6aacd8f00d"


class BufferWriter(AbstractStreamWriter):
    """An aiohttp stream writer that keeps every byte written, as the wire would get them."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self.data.extend(chunk)

    async def write_eof(self, chunk: bytes = b"") -> None:
        self.data.extend(chunk)

    async def drain(self) -> None:
        return None

    def enable_compression(self, encoding: str = "deflate", strategy: int | None = None) -> None:
        raise AssertionError("chunk bodies are never compressed")

    def enable_chunking(self) -> None:
        return None

    async def write_headers(self, status_line: str, headers: CIMultiDict[str]) -> None:
        return None


@pytest.fixture(autouse=True)
def _clean_kore_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No KORE_* variable of the developer's shell leaks into a unit test."""
    for name in list(os.environ):
        if name.upper().startswith("KORE_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def host() -> str:
    return UNIT_HOST


@pytest.fixture
def api_key() -> str:
    return UNIT_KEY


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as mock:
        yield mock


@pytest.fixture
async def kore() -> AsyncIterator[KoreClient]:
    """A client without retries: with aioresponses an unmatched URL is a connection error."""
    async with KoreClient(UNIT_HOST, UNIT_KEY, max_attempts=1) as client:
        yield client


@pytest.fixture
def render_wire() -> Callable[[Any], Awaitable[bytes]]:
    """Write a MultipartWriter (or any payload) to a buffer exactly as aiohttp sends it."""

    async def render(payload: Any) -> bytes:
        assert isinstance(payload, MultipartWriter)
        writer = BufferWriter()
        await payload.write(writer)
        return bytes(writer.data)

    return render
