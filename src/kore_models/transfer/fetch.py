"""One download request: where every download request starts and where every byte arrives.

How it works: :meth:`Fetcher.open` is the only place a download request is sent (probe,
single stream, resumed stream, each range), through :meth:`Transport.stream` with
``Accept-Encoding: identity``, the asked ``Range`` and ``If-Range``. It reads what the
answer promises into an :class:`Answer` (where the body starts, the total size, the
validators, a digest of the whole file when the server gives one). :meth:`Fetcher.body`
yields the decoded body a block at a time and :meth:`Fetcher.arrived` is the only place
received bytes are counted: the spot for a rate cap or a concurrency controller to hook
in. :func:`pump` writes blocks to the part file in a worker thread, one block in flight
while the next one is received.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import aiohttp

from .._encoding import BodyDecoder, UnsupportedEncodingError
from .._http import Transport
from ..errors import DownloadError, KoreConnectionError

__all__ = ["OVERLAP", "Answer", "Fetcher", "Sink", "StartOver", "after_overlap", "pump"]

OVERLAP = 64 * 1024
"""Bytes fetched again before a resume point and compared with what the part holds."""

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED = re.compile(r"bytes\s+\*/(\d+)\s*$", re.IGNORECASE)


class StartOver(Exception):
    """The part no longer matches what the server sends: empty it and download again.

    ``plain`` asks the next round for one request without Range (the server encodes
    ranges, or answered one in a way that cannot be stitched).
    """

    def __init__(self, reason: str, *, plain: bool = False) -> None:
        super().__init__(reason)
        self.plain = plain


@dataclass(frozen=True)
class Answer:
    """What one response says about its body."""

    status: int
    start: int
    total: int | None
    length: int | None
    etag: str | None
    last_modified: str | None
    sha256: str | None
    decoder: BodyDecoder

    def same_file_as(self, etag: str | None, last_modified: str | None) -> bool:
        """False when a validator the server gave before differs now."""
        if etag and self.etag and etag != self.etag:
            return False
        return not (last_modified and self.last_modified and last_modified != self.last_modified)


def if_range_value(etag: str | None, last_modified: str | None) -> str | None:
    """The ``If-Range`` to send: a strong ETag, else the Last-Modified date."""
    if etag and not etag.startswith("W/"):
        return etag
    return last_modified


def _digest_to_hex(value: str) -> str | None:
    value = value.strip().strip(":").strip('"')
    if re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def sha256_from_headers(headers: Mapping[str, str]) -> str | None:
    """The SHA-256 of the whole file when the server states it.

    ``Repr-Digest: sha-256=:b64:`` (RFC 9530), ``Digest: SHA-256=b64`` (RFC 3230),
    ``x-checksum-sha256`` and ``x-amz-checksum-sha256`` (hex or base64).
    """
    found = {k.lower(): v for k, v in headers.items()}
    for name in ("repr-digest", "digest"):
        for item in found.get(name, "").split(","):
            algorithm, _, value = item.partition("=")
            if algorithm.strip().lower() == "sha-256" and value:
                return _digest_to_hex(value)
    for name in ("x-checksum-sha256", "x-amz-checksum-sha256"):
        if name in found:
            return _digest_to_hex(found[name])
    return None


def total_from_416(resp: aiohttp.ClientResponse) -> int | None:
    """The size a 416 states in ``Content-Range: bytes */SIZE``."""
    match = _UNSATISFIED.match(resp.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _answer(resp: aiohttp.ClientResponse, asked_from: int | None) -> Answer:
    try:
        decoder = BodyDecoder(resp.headers.get("Content-Encoding"))
    except UnsupportedEncodingError as exc:
        raise DownloadError(
            f"the download uses {exc} although identity was asked; it cannot be saved"
        ) from None
    encoded_length = resp.content_length
    length = encoded_length if decoder.identity else None
    etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
    digest = sha256_from_headers(resp.headers)
    if resp.status != 206:
        return Answer(resp.status, 0, length, length, etag, modified, digest, decoder)
    match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
    if match is None:
        raise DownloadError("the server answered 206 without a usable Content-Range")
    first, last = int(match.group(1)), int(match.group(2))
    if asked_from is not None and first != asked_from:
        raise DownloadError(f"the server answered bytes from {first} where {asked_from} were asked")
    total = None if match.group(3) == "*" else int(match.group(3))
    if last < first or (total is not None and last >= total):
        raise DownloadError(f"the server answered an impossible range {first}-{last}/{total}")
    return Answer(206, first, total, last - first + 1, etag, modified, digest, decoder)


class Fetcher:
    """Sends every download request and counts every byte that arrives."""

    def __init__(
        self,
        transport: Transport,
        url: str,
        *,
        block_size: int,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.transport = transport
        self.url = url
        self.block_size = block_size
        self.on_bytes = on_bytes
        self.received = 0
        self.fresh = 0
        self.requests = 0

    @contextlib.asynccontextmanager
    async def open(
        self, first: int | None = None, last: int | None = None, *, if_range: str | None = None
    ) -> AsyncIterator[tuple[Answer | None, aiohttp.ClientResponse]]:
        """THE place a download request starts: ``Range: bytes=first-last`` when given.

        Yields ``(answer, response)``; ``answer`` is None for a 416 (range not satisfiable).
        """
        headers = {"Accept-Encoding": "identity"}
        if first is not None:
            headers["Range"] = f"bytes={first}-{'' if last is None else last}"
            if if_range:
                headers["If-Range"] = if_range
        self.requests += 1
        async with self.transport.stream(
            "GET", self.url, headers=headers, pass_statuses=(416,)
        ) as resp:
            yield (None if resp.status == 416 else _answer(resp, first)), resp

    async def body(self, resp: aiohttp.ClientResponse, answer: Answer) -> AsyncIterator[bytes]:
        """The decoded body, one block at a time; each block counted by :meth:`arrived`."""
        try:
            async for raw in resp.content.iter_chunked(self.block_size):
                for block in answer.decoder.blocks(raw, self.block_size):
                    self.arrived(len(block))
                    yield block
        except zlib.error:
            raise DownloadError(f"the download's {answer.decoder.coding} data is corrupt") from None
        if not answer.decoder.finished:
            raise KoreConnectionError(
                f"the download's {answer.decoder.coding} stream ended before its end marker"
            )

    def arrived(self, count: int) -> None:
        """THE place received bytes are counted (the hook for a rate cap, a controller)."""
        self.received += count

    async def new_bytes(
        self, resp: aiohttp.ClientResponse, answer: Answer, expected: bytes = b""
    ) -> AsyncIterator[bytes]:
        """The body after the ``expected`` overlap (checked): new bytes, counted in ``fresh``
        and reported to ``on_bytes``."""
        async for block in after_overlap(self.body(resp, answer), expected):
            self.fresh += len(block)
            if self.on_bytes is not None:
                self.on_bytes(len(block))
            yield block


Sink = Callable[[bytes, int], None]
"""A blocking consumer of ``(block, offset)``, run in a worker thread (write, hash)."""


async def after_overlap(blocks: AsyncIterator[bytes], expected: bytes) -> AsyncIterator[bytes]:
    """The body after its first ``len(expected)`` bytes, which must equal ``expected``.

    A resume asks for a little more than it needs and compares: bytes that differ mean
    the part belongs to another file, and the download starts over.
    """
    seen = bytearray()
    async for block in blocks:
        if len(seen) < len(expected):
            take = len(expected) - len(seen)
            seen += block[:take]
            block = block[take:]
            if len(seen) == len(expected) and seen != expected:
                raise StartOver("the bytes already saved differ from the server's")
            if not block:
                continue
        yield block
    if len(seen) < len(expected):
        raise KoreConnectionError("the download ended before the resume point")


async def pump(
    blocks: AsyncIterator[bytes],
    sink: Sink,
    offset: int,
    *,
    limit: int | None = None,
    on_written: Callable[[int], None] | None = None,
) -> int:
    """Feed ``blocks`` to ``sink`` from ``offset`` in a worker thread; returns the end offset.

    One block is in the sink while the next one is received, and blocks reach the sink in
    order (so a hash in the sink sees the file's order). ``on_written(end)`` runs after
    each block. More than ``limit`` bytes past ``offset`` is refused (a server sending
    past the range or size it announced).
    """
    pending: asyncio.Future[None] | None = None
    start = offset
    try:
        async for block in blocks:
            if limit is not None and offset + len(block) - start > limit:
                raise DownloadError(f"the server sent more than the {limit} bytes it announced")
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(asyncio.to_thread(sink, block, offset))
            offset += len(block)
            if on_written is not None:
                pending.add_done_callback(_reporter(on_written, offset))
        if pending is not None:
            await pending
    finally:
        # never return while a thread still uses the part (its fd may be closed next)
        if pending is not None:
            if not pending.done():
                await asyncio.wait({pending})
            if not pending.cancelled():
                pending.exception()  # retrieved: the first error is the one raised
    return offset


def _reporter(
    on_written: Callable[[int], None], end: int
) -> Callable[[asyncio.Future[None]], None]:
    def report(future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is None:
            on_written(end)

    return report
