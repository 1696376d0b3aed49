"""What really goes on the wire, checked against small aiohttp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kore_models import (
    APIStatusError,
    FileChangedError,
    KoreClient,
    KoreTimeoutError,
)
from kore_models._body import FileSlice

KEY = "kg-wire-test-key"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def add(self, request: web.Request, **extra: Any) -> None:
        self.requests.append(
            {
                "method": request.method,
                "raw_path": request.raw_path,
                "headers": dict(request.headers),
                **extra,
            }
        )


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[TestServer]]]:
    servers: list[TestServer] = []

    async def start(handler: Handler) -> TestServer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


def origin(server: TestServer) -> str:
    return f"http://127.0.0.1:{server.port}"


async def test_chunk_upload_multipart_on_the_wire(
    serve: Callable[[Handler], Awaitable[TestServer]], tmp_path: Path
) -> None:
    seen = Recorder()

    async def handler(request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        seen.add(
            request,
            content=upload.file.read(),
            filename=upload.filename,
            chunk=form["chunkNumber"],
        )
        return web.json_response({"chunkNumber": str(form["chunkNumber"]), "sessionId": "s"})

    server = await serve(handler)
    content = os.urandom(300_000)
    path = tmp_path / "big.tar"
    path.write_bytes(content)
    stat = path.stat()
    piece = FileSlice(path, 100_001, 150_000, file_size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    async with KoreClient(origin(server), KEY, max_attempts=1, read_block_size=8192) as kore:
        first = await kore.files.upload_chunk("s", 0, b"\x00raw bytes\r\n", filename="a.tar")
        second = await kore.files.upload_chunk("s", 11, piece, filename="big.tar")
    assert (first.chunk_number, second.chunk_number) == (0, 11)
    one, two = seen.requests
    for sent in (one, two):
        assert sent["method"] == "POST"
        assert sent["raw_path"] == "/api/public/files/session/s"
        assert sent["headers"]["x-api-key"] == KEY
        assert sent["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert (one["content"], one["chunk"], one["filename"]) == (b"\x00raw bytes\r\n", "0", "a.tar")
    assert two["content"] == content[100_001:250_001]
    assert (two["chunk"], two["filename"]) == ("11", "big.tar")


async def test_json_body_and_raw_paths_on_the_wire(
    serve: Callable[[Handler], Awaitable[TestServer]],
) -> None:
    seen = Recorder()

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        seen.add(request, body=body, query=dict(request.query))
        if request.path.endswith("/start"):
            return web.json_response({"sessionId": "s-1"})
        return web.json_response({"_id": "ds-1", "status": "IN_PROGRESS"})

    server = await serve(handler)
    async with KoreClient(origin(server), KEY, max_attempts=1) as kore:
        await kore.files.start_session(
            total_chunks=2, file_extension="tar", file_name="x.tar", file_size=9
        )
        await kore.models.export("a/../b c?d#e")
        await kore.models.deploy(
            "cm 1",
            "fineTune",
            {
                "name": "m",
                "hyperParameters": {"temperature": 1, "maxTokens": 1, "topP": 1, "topK": 1},
                "deviceType": "g5.xlarge",
            },
        )
        await kore.dock_status.get("ds/1")
    start, export, deploy, dock = seen.requests
    assert start["headers"]["Content-Type"] == "application/json"
    assert start["body"] == (
        b'{"fileContext": "model", "totalChunks": 2, "fileExtension": "tar", '
        b'"fileName": "x.tar", "fileSize": 9, "isAdapter": false}'
    )
    assert export["raw_path"] == "/api/public/models/a%2F..%2Fb%20c%3Fd%23e/export"
    assert export["body"] == b""
    assert deploy["raw_path"] == "/api/public/models/cm%201/deploy?modelType=fineTune"
    assert deploy["query"] == {"modelType": "fineTune"}
    assert dock["method"] == "GET"
    assert dock["raw_path"] == "/api/public/dock-status/ds%2F1"
    assert all(r["headers"]["x-api-key"] == KEY for r in seen.requests)


async def test_a_redirect_is_not_followed_and_the_key_stays_home(
    serve: Callable[[Handler], Awaitable[TestServer]],
) -> None:
    elsewhere = Recorder()

    async def foreign(request: web.Request) -> web.Response:
        elsewhere.add(request)
        return web.json_response({"_id": "ds-stolen"})

    other = await serve(foreign)

    async def api(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(origin(other) + "/collect")

    server = await serve(api)
    async with KoreClient(origin(server), KEY, max_attempts=1) as kore:
        with pytest.raises(APIStatusError) as info:
            await kore.models.export("cm-1")
    assert info.value.status_code == 307
    assert elsewhere.requests == []


async def test_a_read_timeout_is_mapped_and_retried(
    serve: Callable[[Handler], Awaitable[TestServer]],
) -> None:
    hits = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        await asyncio.sleep(1.0)
        return web.json_response({"_id": "late"})

    server = await serve(slow)
    async with KoreClient(
        origin(server), KEY, max_attempts=2, read_timeout=0.1, retry_sleeps=False
    ) as kore:
        with pytest.raises(KoreTimeoutError):
            await kore.dock_status.get("ds-1")
    assert hits == 2


async def test_a_file_that_changed_fails_the_upload_without_retrying(
    serve: Callable[[Handler], Awaitable[TestServer]], tmp_path: Path
) -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"chunkNumber": "0"})

    server = await serve(handler)
    path = tmp_path / "m.tar"
    path.write_bytes(b"x" * 1000)
    piece = FileSlice(path, 0, 500, file_size=999)  # the plan saw another size
    retries: list[BaseException] = []
    async with KoreClient(origin(server), KEY, max_attempts=5, retry_sleeps=False) as kore:
        with pytest.raises(FileChangedError):
            await kore.files.upload_chunk("s", 0, piece, on_retry=lambda e, w: retries.append(e))
    assert retries == []
