"""Downloads on the one transport (issue 10): Retry-After kept, error bodies read bounded,
a 416 handled in a loop, and the key never sent over plain http by a redirect."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web
from aioresponses import aioresponses
from yarl import URL

from kore_models import KoreClient
from kore_models.errors import ServerError
from kore_models.transfer.download import download_file
from tests.download.download_support import KEY, payload, serve_ranges

if TYPE_CHECKING:
    from tests.download.conftest import ClientFor
    from tests.download.download_support import HostileServer


async def test_a_503_on_a_download_keeps_its_retry_after(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    async def busy(request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "busy"}, status=503, headers={"Retry-After": "7"})

    hostile.handler = busy
    kore = client_for(hostile.url, max_attempts=1)
    with pytest.raises(ServerError) as caught:
        await download_file(kore.transport, f"{hostile.url}/f", tmp_path / "m.tar")
    assert caught.value.retry_after == 7
    assert caught.value.message == "busy"


async def test_an_error_body_that_never_ends_is_read_only_in_part(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    sent = 0
    client_gone = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        resp = web.StreamResponse(status=500)
        await resp.prepare(request)
        try:
            while True:
                await resp.write(b"<html>" + b"x" * 65_536)
                sent += 65_542
        except (ConnectionError, asyncio.CancelledError):
            client_gone.set()
            raise

    hostile.handler = endless
    kore = client_for(hostile.url, max_attempts=1)
    with pytest.raises(ServerError, match="HTTP 500"):
        await download_file(kore.transport, f"{hostile.url}/f", tmp_path / "m.tar")
    await client_gone.wait()
    assert sent < 64 * 1024 * 1024  # the client hung up long before


async def test_a_complete_part_is_checked_by_its_overlap_and_renamed(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(200_000)
    hostile.handler = serve_ranges(data)
    kore = client_for(hostile.url)
    dest = tmp_path / "model.tar"
    await download_file(kore.transport, f"{hostile.url}/f", dest, model_id="cm-1")
    # a run that died after the last byte but before the rename: part and sidecar stay
    part = dest.with_name("model.tar.part")
    os.rename(dest, part)
    sidecar = {"source": f"{hostile.url}/f", "model_id": "cm-1", "total": len(data)}
    dest.with_name("model.tar.part.json").write_text(json.dumps(sidecar))
    hostile.seen.clear()

    result = await download_file(kore.transport, f"{hostile.url}/f", dest, model_id="cm-1")

    assert dest.read_bytes() == data
    assert result.resumed_from == len(data)
    assert len(hostile.seen) == 1
    assert hostile.ranges() == [f"bytes={len(data) - 64 * 1024}-"]  # only the overlap


async def test_a_part_longer_than_the_file_starts_over_in_a_loop(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(100_000)
    hostile.handler = serve_ranges(data)
    dest = tmp_path / "model.tar"
    dest.with_name("model.tar.part").write_bytes(payload(300_000, seed=5))
    sidecar = {"source": f"{hostile.url}/f", "model_id": "cm-1", "total": None}
    dest.with_name("model.tar.part.json").write_text(json.dumps(sidecar))

    result = await download_file(
        client_for(hostile.url).transport, f"{hostile.url}/f", dest, model_id="cm-1"
    )

    assert dest.read_bytes() == data
    assert result.restarts == 1


async def test_a_redirect_from_https_to_plain_http_never_carries_the_key(tmp_path: Path) -> None:
    start = "https://api.example.test/dl/1?token=abcdefgh"
    plain = "http://api.example.test/blob/1"
    async with KoreClient(
        host="https://api.example.test", api_key=KEY, state_dir=tmp_path / "state"
    ) as kore:
        with aioresponses() as mocked:
            mocked.get(start, status=302, headers={"Location": plain})
            mocked.get(plain, status=200, body=b"model bytes")

            await download_file(kore.transport, start, tmp_path / "m.tar", ranges=1)

            (first,) = mocked.requests[("GET", URL(start))]
            (second,) = mocked.requests[("GET", URL(plain))]
    assert first.kwargs["headers"]["x-api-key"] == KEY
    assert first.kwargs["allow_redirects"] is False
    assert "x-api-key" not in second.kwargs["headers"]
    assert (tmp_path / "m.tar").read_bytes() == b"model bytes"


async def test_an_error_body_that_is_a_gzip_bomb_is_read_in_bounded_memory(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    import tracemalloc
    import zlib

    squeezer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = squeezer.compress(b'{"message": "overloaded"' + bytes(256 << 20)) + squeezer.flush()

    async def bombing(request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, body=bomb, headers={"Content-Encoding": "gzip"})

    hostile.handler = bombing
    kore = client_for(hostile.url, max_attempts=1)
    tracemalloc.start()
    try:
        with pytest.raises(ServerError, match="HTTP 500"):
            await download_file(kore.transport, f"{hostile.url}/f", tmp_path / "m.tar")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


async def test_a_complete_part_is_still_checked_against_the_digest_the_server_stated(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    from kore_models.errors import IntegrityError

    data = payload(100_000)
    hostile.handler = serve_ranges(data)
    dest = tmp_path / "model.tar"
    dest.with_name("model.tar.part").write_bytes(data)
    stated = "ab" * 32  # what the server said when the download started
    sidecar = {
        "source": f"{hostile.url}/f",
        "model_id": "cm-1",
        "total": len(data),
        "sha256": stated,
    }
    dest.with_name("model.tar.part.json").write_text(json.dumps(sidecar))

    with pytest.raises(IntegrityError):
        await download_file(
            client_for(hostile.url).transport, f"{hostile.url}/f", dest, model_id="cm-1"
        )

    assert os.listdir(tmp_path) == []
