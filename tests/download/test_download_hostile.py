"""Hostile download servers on loopback (issue 16 items 1, 2, 4, 5, 7): a part that belongs
to another file, bodies that end early, encodings, digests, redirects and tokens."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from kore_models.errors import (
    IntegrityError,
    KoreConnectionError,
    NotFoundError,
    ResponseValidationError,
    ServerError,
    TransportError,
)
from kore_models.transfer.download import download_file

if TYPE_CHECKING:
    from tests.download.conftest import ClientFor, HostileFactory
    from tests.download.download_support import HostileServer, RawServer

from tests.download.download_support import KEY, payload, serve_ranges

TOKEN = "tok3n-s3cr3t-value-42"


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


# ---- 1. a part tied to what it belongs to ------------------------------------------------


async def test_a_part_left_by_another_download_is_not_extended(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(300_000)
    hostile.handler = serve_ranges(data)
    dest = tmp_path / "model.tar"
    _part(dest).write_bytes(payload(120_000, seed=99))  # another model's bytes, no sidecar

    result = await download_file(client_for(hostile.url).transport, f"{hostile.url}/f", dest)

    assert dest.read_bytes() == data
    assert result.sha256 == hashlib.sha256(data).hexdigest()


async def test_a_part_of_the_same_model_whose_file_changed_starts_over_by_if_range(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    old, new = payload(300_000, seed=1), payload(300_000, seed=2)
    kore = client_for(hostile.url, max_attempts=1)
    dest = tmp_path / "model.tar"
    url = f"{hostile.url}/f?token={TOKEN}"
    cut = _cut_after(hostile, old, 100_000, etag='"v1"')
    with pytest.raises(NotFoundError):
        await download_file(
            kore.transport, url, dest, model_id="cm-1", ranges=1, on_bytes=cut.count
        )
    assert cut.received >= 100_000
    hostile.handler = serve_ranges(new, etag='"v2"')
    hostile.seen.clear()

    result = await download_file(kore.transport, url, dest, model_id="cm-1", ranges=1)

    assert dest.read_bytes() == new
    assert hostile.seen[0].headers["if-range"] == '"v1"'
    assert result.sha256 == hashlib.sha256(new).hexdigest()


class _Cut:
    """The next answer sends ``count`` bytes of ``data`` (announcing all) and, once the
    client has received them (``count`` is its on_bytes), drops the line; later answers
    are 404, so that run gives up with its part kept."""

    def __init__(self, server: HostileServer, data: bytes, count: int, etag: str | None) -> None:
        self.received = 0
        self.limit = count
        self.all_received = asyncio.Event()
        self.data, self.etag, self.server = data, etag, server
        server.handler = self.cut

    def count(self, size: int) -> None:
        self.received += size
        if self.received >= self.limit:
            self.all_received.set()

    async def cut(self, request: web.Request) -> web.StreamResponse:
        self.server.handler = _gone
        resp = web.StreamResponse(headers={"ETag": self.etag} if self.etag else {})
        resp.content_length = len(self.data)
        await resp.prepare(request)
        await resp.write(self.data[: self.limit])
        await self.all_received.wait()
        assert request.transport is not None
        request.transport.abort()
        return resp


async def _gone(request: web.Request) -> web.StreamResponse:
    return web.Response(status=404)


def _cut_after(server: HostileServer, data: bytes, count: int, *, etag: str | None = None) -> _Cut:
    return _Cut(server, data, count, etag)


async def test_a_part_whose_bytes_differ_without_validators_starts_over(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    first, second = payload(400_000, seed=3), payload(400_000, seed=4)
    kore = client_for(hostile.url, max_attempts=1)
    dest = tmp_path / "model.tar"
    cut = _cut_after(hostile, first, 200_000)
    with pytest.raises(NotFoundError):
        await download_file(
            kore.transport, f"{hostile.url}/f", dest, model_id="cm-1", ranges=1, on_bytes=cut.count
        )
    hostile.handler = serve_ranges(second)  # same model, same size, other bytes, no ETag
    hostile.seen.clear()

    result = await download_file(kore.transport, f"{hostile.url}/f", dest, model_id="cm-1")

    assert dest.read_bytes() == second
    assert hostile.ranges()[0] == f"bytes={200_000 - 64 * 1024}-"  # the overlap, compared
    assert result.restarts == 1


@pytest.mark.parametrize(
    "header",
    [
        ("Repr-Digest", "sha-256=:{b64}:"),
        ("Digest", "SHA-256={b64}"),
        ("x-checksum-sha256", "{hex}"),
    ],
    ids=["repr-digest", "digest", "x-checksum-sha256"],
)
async def test_a_digest_the_server_states_is_checked(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path, header: tuple[str, str]
) -> None:
    import base64

    data = payload(50_000)
    wrong = hashlib.sha256(b"another file").digest()
    name, template = header
    value = template.format(b64=base64.b64encode(wrong).decode(), hex=wrong.hex())

    async def lying(request: web.Request) -> web.StreamResponse:
        return web.Response(body=data, headers={name: value})

    hostile.handler = lying
    dest = tmp_path / "model.tar"
    with pytest.raises(IntegrityError) as caught:
        await download_file(client_for(hostile.url).transport, f"{hostile.url}/f", dest)
    assert caught.value.expected == wrong.hex()
    assert caught.value.actual == hashlib.sha256(data).hexdigest()
    assert os.listdir(tmp_path) == []


# ---- 2. bodies that end early ----------------------------------------------------------


async def test_a_chunked_body_cut_without_its_last_chunk_is_an_error(
    raw_server: RawServer, client_for: ClientFor, tmp_path: Path
) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"3e8\r\n" + b"x" * 1000 + b"\r\n")  # no "0\r\n\r\n": the line drops
        await writer.drain()

    raw_server.respond = cut
    dest = tmp_path / "model.tar"
    kore = client_for(raw_server.url, max_attempts=2)
    with pytest.raises(KoreConnectionError):
        await download_file(kore.transport, f"{raw_server.url}/f", dest)
    assert not dest.exists()


async def test_a_body_without_length_that_ends_before_the_known_size_is_an_error(
    raw_server: RawServer, client_for: ClientFor, tmp_path: Path
) -> None:
    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = raw_server.requests[-1].decode()
        if "Range: bytes=0-" in head:  # the size is known from Content-Range
            writer.write(b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-4999/5000\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\n")
        writer.write(b"Connection: close\r\n\r\n" + b"y" * 1000)  # then close: no length
        await writer.drain()

    raw_server.respond = short
    dest = tmp_path / "model.tar"
    kore = client_for(raw_server.url, max_attempts=2)
    with pytest.raises(KoreConnectionError, match="ended"):
        await download_file(kore.transport, f"{raw_server.url}/f", dest)
    assert not dest.exists()
    assert _part(dest).read_bytes() == b"y" * 1000, "kept for the next run"


# ---- 4. encodings ------------------------------------------------------------------------


async def test_a_gzip_encoded_download_is_saved_decoded(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(200_000) + bytes(200_000)

    async def gzipping(request: web.Request) -> web.StreamResponse:
        body = gzip.compress(data)  # whatever was asked, like a misconfigured CDN
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    hostile.handler = gzipping
    dest = tmp_path / "model.tar"

    result = await download_file(client_for(hostile.url).transport, f"{hostile.url}/f", dest)

    assert dest.read_bytes() == data
    assert result.bytes == len(data)
    assert all(s.headers["accept-encoding"] == "identity" for s in hostile.seen)


async def test_an_api_reply_that_is_a_gzip_bomb_is_refused_with_bounded_memory(
    hostile: HostileServer, client_for: ClientFor
) -> None:
    import tracemalloc
    import zlib

    squeezer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    bomb = b"".join(squeezer.compress(zeros) for _ in range(512)) + squeezer.flush()  # 512 MiB

    async def bombing(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    hostile.handler = bombing
    kore = client_for(hostile.url, max_attempts=1)
    tracemalloc.start()
    try:
        with pytest.raises(ResponseValidationError, match="decompresses to more than 16 MiB"):
            await kore.dock_status.get("ds-1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"


# ---- 5. redirects never carry the key elsewhere --------------------------------------


async def test_a_redirect_to_another_origin_is_followed_without_the_key(
    hostile_factory: HostileFactory, client_for: ClientFor, tmp_path: Path
) -> None:
    api, files = await hostile_factory(), await hostile_factory()
    data = payload(70_000)
    elsewhere = files.url.replace("127.0.0.1", "localhost")

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{elsewhere}/blob?sig=abcdef123456")

    api.handler = redirect
    files.handler = serve_ranges(data)
    dest = tmp_path / "model.tar"

    await download_file(client_for(api.url).transport, f"{api.url}/dl?token={TOKEN}", dest)

    assert dest.read_bytes() == data
    assert api.seen[0].headers["x-api-key"] == KEY  # same origin as the API
    assert files.seen
    assert all("x-api-key" not in s.headers for s in files.seen)


async def test_a_same_origin_redirect_keeps_the_key_and_a_loop_ends(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(10_000)

    async def hop(request: web.Request) -> web.StreamResponse:
        if request.path == "/loop":
            raise web.HTTPFound("/loop")
        if request.path == "/start":
            raise web.HTTPTemporaryRedirect("/final")
        return web.Response(body=data)

    hostile.handler = hop
    kore = client_for(hostile.url, max_attempts=1)
    await download_file(kore.transport, f"{hostile.url}/start", tmp_path / "a.tar")
    assert (tmp_path / "a.tar").read_bytes() == data
    assert [s.headers.get("x-api-key") for s in hostile.seen] == [KEY, KEY]

    hostile.seen.clear()
    with pytest.raises(Exception, match="more than 10 redirects"):
        await download_file(kore.transport, f"{hostile.url}/loop", tmp_path / "b.tar")
    assert len(hostile.seen) == 11


# ---- 7. download tokens never reach a message ----------------------------------------


@pytest.mark.parametrize(("status", "error"), [(404, NotFoundError), (503, ServerError)])
async def test_the_download_token_is_not_in_error_messages(
    hostile: HostileServer,
    client_for: ClientFor,
    tmp_path: Path,
    status: int,
    error: type[Exception],
) -> None:
    async def echo(request: web.Request) -> web.StreamResponse:
        body = json.dumps({"message": f"no file at {request.path_qs}"})
        return web.Response(status=status, text=body, headers={"Retry-After": "0"})

    hostile.handler = echo
    kore = client_for(hostile.url, max_attempts=2)
    with pytest.raises(error) as caught:
        await download_file(kore.transport, f"{hostile.url}/f?token={TOKEN}", tmp_path / "m.tar")
    text = f"{caught.value} {caught.value.__dict__}"
    assert TOKEN not in text
    assert "token=***" in str(caught.value)


async def test_the_download_token_is_not_in_connection_errors(
    client_for: ClientFor, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/f?token={TOKEN}"
    kore = client_for(f"http://127.0.0.1:{port}", max_attempts=1)
    with pytest.raises(TransportError) as caught:
        await download_file(kore.transport, url, tmp_path / "m.tar")
    assert TOKEN not in f"{caught.value} {caught.value.__dict__}"
