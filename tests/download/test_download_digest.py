"""digest_download: the SHA-256 of a download streamed through the hash, nothing on disk;
a cut connection resumes by Range after comparing the tail it kept; keep_to saves it too."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from kore_models.errors import IntegrityError
from kore_models.transfer.digest import digest_download
from tests.download.download_support import payload, serve_ranges

if TYPE_CHECKING:
    from tests.download.conftest import ClientFor
    from tests.download.download_support import HostileServer


async def test_a_download_is_hashed_without_writing_anything(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(500_000)
    hostile.handler = serve_ranges(data)
    monkeypatch.chdir(tmp_path)
    counted: list[int] = []

    result = await digest_download(
        client_for(hostile.url).transport, f"{hostile.url}/f", on_bytes=counted.append
    )

    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.path is None
    assert result.bytes == sum(counted) == len(data)
    assert os.listdir(tmp_path) == []


async def test_a_cut_connection_resumes_from_the_bytes_already_hashed(
    hostile: HostileServer, client_for: ClientFor
) -> None:
    data = payload(600_000)
    files = serve_ranges(data)
    received = 0
    all_received = asyncio.Event()
    cut_once = True

    async def cutting(request: web.Request) -> web.StreamResponse:
        nonlocal cut_once
        if not cut_once:
            return await files(request)
        cut_once = False
        resp = web.StreamResponse()
        resp.content_length = len(data)
        await resp.prepare(request)
        await resp.write(data[:250_000])
        await all_received.wait()  # the client has it all: now drop the line
        assert request.transport is not None
        request.transport.abort()
        return resp

    def count(size: int) -> None:
        nonlocal received
        received += size
        if received >= 250_000:
            all_received.set()

    hostile.handler = cutting
    result = await digest_download(
        client_for(hostile.url).transport, f"{hostile.url}/f", on_bytes=count
    )

    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert hostile.ranges() == [None, f"bytes={250_000 - 64 * 1024}-"]


async def test_a_stated_digest_that_differs_is_an_integrity_error(
    hostile: HostileServer, client_for: ClientFor
) -> None:
    data = payload(10_000)

    async def lying(request: web.Request) -> web.StreamResponse:
        return web.Response(body=data, headers={"x-checksum-sha256": "ab" * 32})

    hostile.handler = lying
    with pytest.raises(IntegrityError):
        await digest_download(client_for(hostile.url).transport, f"{hostile.url}/f")


async def test_keep_to_saves_the_bytes_as_well(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(100_000)
    hostile.handler = serve_ranges(data)
    dest = tmp_path / "kept.tar"

    result = await digest_download(
        client_for(hostile.url).transport, f"{hostile.url}/f", keep_to=dest
    )

    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert dest.read_bytes() == data
