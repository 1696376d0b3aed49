"""Regression tests of the foundations review: pool waits, hard deadlines, sizes as text."""

from __future__ import annotations

import asyncio
import io
import tarfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from kore_models import JobTimeoutError, KoreClient, KoreTimeoutError

if TYPE_CHECKING:
    from tests.support.transfer import ClientFactory, EmuControl, FileMaker

CHUNK = 64 * 1024


async def test_waiting_for_a_pooled_connection_is_not_a_connect_timeout(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker
) -> None:
    # Three imports at concurrency 8 share one client: 24 chunks in flight. Each chunk
    # takes about 2 s at the capped rate, twice the connect timeout, so any request that
    # queued for a pooled connection would have "timed out connecting" (a loaded machine
    # only makes the chunks slower, never the queue shorter).
    await ctl.configure(throughput_bytes_per_second=32 * 1024)
    kore = clients(concurrency=8, connect_timeout=1.0)
    files = [make_file(8 * CHUNK) for _ in range(3)]
    seen_retries: list[int] = []

    results = await asyncio.gather(*(kore.models.import_file(path) for path in files))

    for path, result in zip(files, results, strict=True):
        seen_retries.append(result.retries)
        await ctl.assert_stored(result.model_id, path)
    assert seen_retries == [0, 0, 0]


async def test_import_file_takes_the_chunk_size_as_text(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker
) -> None:
    path = make_file(3 * CHUNK + 5)
    result = await kore.models.import_file(path, chunk_size="64KiB")
    assert result.chunks == 4
    assert result.chunk_size == CHUNK
    await ctl.assert_stored(result.model_id, path)


class Drip:
    """A server whose dock-status answers drip one byte every 0.2 s, forever."""

    def __init__(self) -> None:
        self.requests = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(10_000):
            await response.write(b" ")
            await asyncio.sleep(0.2)
        return response


@pytest.fixture
async def drip() -> AsyncIterator[Drip]:
    server = Drip()
    app = web.Application()
    app.router.add_get("/api/public/dock-status/{job}", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


async def test_a_dripping_answer_meets_the_wait_deadline(drip: Drip) -> None:
    async with KoreClient(drip.url, "kg-drip-test-key-0123", read_timeout=30) as kore:
        started = time.monotonic()
        with pytest.raises(JobTimeoutError):
            await kore.dock_status.wait("ds-1", timeout=1.0)
    assert time.monotonic() - started >= 1.0
    assert drip.requests == 1  # cut mid-answer, not retried past the deadline


async def test_a_dripping_answer_meets_the_request_deadline(drip: Drip) -> None:
    async with KoreClient(
        drip.url, "kg-drip-test-key-0123", read_timeout=30, request_timeout=0.5, max_attempts=1
    ) as kore:
        with pytest.raises(KoreTimeoutError, match="request_timeout"):
            await kore.dock_status.get("ds-1")


async def test_a_long_retry_after_does_not_outlive_the_wait_deadline(
    kore: KoreClient, ctl: EmuControl
) -> None:
    # Every poll is answered 429 with a 60 s Retry-After: the rulebook would wait it out
    # (and retry for minutes); the wait's deadline ends it with JobTimeoutError instead.
    throttled = KoreClient(settings=kore.settings.replace(retry_sleeps=True))
    await ctl.configure(retry_after_seconds=60)
    await ctl.script(*({"route": "dock_status", "action": "429"} for _ in range(10)))
    try:
        with pytest.raises(JobTimeoutError):
            await throttled.dock_status.wait("no-such-job", timeout=0.5)
    finally:
        await throttled.aclose()


async def test_a_gzip_tar_named_tar_gz_imports(
    kore: KoreClient, ctl: EmuControl, tmp_path: Path
) -> None:
    # the client starts the session with fileExtension "tar.gz"; the emulator refused it
    path = tmp_path / "model.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        weights = bytes(range(256)) * 400
        member = tarfile.TarInfo("model/weights.bin")
        member.size = len(weights)
        archive.addfile(member, io.BytesIO(weights))
    result = await kore.models.import_file(path)
    assert result.status == "SUCCESS"
    await ctl.assert_stored(result.model_id, path)
