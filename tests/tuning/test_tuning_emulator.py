"""The controller, pause gate and rate cap in a real client against the emulator's network
profiles: up on a fat link, down on 429s with the whole client paused, the cap held, and
one controller shared by every import of a client."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kore_models import KoreClient
from kore_models._body import FileSlice, FileSlicePayload
from kore_models.emulator import RunningEmulator
from kore_models.transfer.progress import ProgressEvent
from tests.support.transfer import KEY, EmuControl, FileMaker

CHUNK = 128 * 1024


def client(emu: RunningEmulator, tmp_path: Path, **options: Any) -> KoreClient:
    settings: dict[str, Any] = {
        "state_dir": tmp_path / "state",
        "chunk_size": CHUNK,
        "read_block_size": 32 * 1024,
        "poll_initial": 0.02,
        "poll_max": 0.1,
        "poll_min_interval": 0.02,
        **options,
    }
    return KoreClient(emu.url, KEY, **settings)


async def test_auto_climbs_on_a_fat_link(
    emu: RunningEmulator,
    tmp_path: Path,
    ctl: EmuControl,
    make_file: FileMaker,
) -> None:
    # 20 ms per request and 1 MB/s per connection: each connection adds as much again
    # (slow enough that a loaded machine's CPU is never what limits)
    await ctl.configure(latency_ms=20, throughput_bytes_per_second=1_000_000)
    source = make_file(96 * CHUNK)
    events: list[ProgressEvent] = []
    async with client(emu, tmp_path) as kore:
        result = await kore.models.import_file(source, on_progress=events.append)
    assert result.status == "SUCCESS"
    assert result.peak_concurrency >= 8
    assert (await ctl.counters())["max_concurrent_chunk_uploads"] >= 8
    decisions = [e.decision for e in events if e.decision]
    assert decisions[0].startswith("concurrency 2 -> 4: ")
    assert any(d.startswith("concurrency 4 -> 8: ") and "+" in d for d in decisions)
    assert [e.concurrency for e in events if e.decision][:2] == [4, 8]


async def test_a_pinned_concurrency_is_shared_by_parallel_imports(
    emu: RunningEmulator,
    tmp_path: Path,
    ctl: EmuControl,
    make_file: FileMaker,
) -> None:
    await ctl.configure(latency_ms=5)
    files = [make_file(24 * CHUNK) for _ in range(3)]
    async with client(emu, tmp_path, concurrency=3) as kore:
        results = await asyncio.gather(*(kore.models.import_file(f) for f in files))
    assert all(r.status == "SUCCESS" for r in results)
    assert all(r.peak_concurrency == r.final_concurrency == 3 for r in results)
    # three imports, one controller: never more than 3 chunk uploads at once in all
    assert (await ctl.counters())["max_concurrent_chunk_uploads"] <= 3


async def test_a_429_cuts_concurrency_and_pauses_every_new_request(
    emu: RunningEmulator,
    tmp_path: Path,
    ctl: EmuControl,
    make_file: FileMaker,
) -> None:
    await ctl.configure(latency_ms=10)
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    pauses: list[tuple[float, float]] = []

    async def on_start(*_: object) -> None:
        starts.append(loop.time())

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    files = [make_file(40 * CHUNK) for _ in range(2)]
    async with aiohttp.ClientSession(trace_configs=[trace]) as http:
        kore = client(emu, tmp_path, session=http, concurrency="auto")
        kore.pacer.gate.add_listener(lambda seconds, *_: pauses.append((loop.time(), seconds)))
        await ctl.script(
            {"route": "chunk", "action": "429", "retry_after": 0.5},
        )
        async with kore:
            results = await asyncio.gather(*(kore.models.import_file(f) for f in files))
    assert all(r.status == "SUCCESS" for r in results)
    assert len(pauses) == 1
    paused_at, seconds = pauses[0]
    assert seconds == 0.5
    # no request of the client (either import, any endpoint) started while it was paused
    assert not [t for t in starts if paused_at < t < paused_at + seconds]
    assert any(t >= paused_at + seconds for t in starts)
    cuts = [d for d in kore.pacer.controller.decisions if d.new < d.old]
    assert cuts
    assert "429" in cuts[0].reason


async def test_limit_rate_holds_the_cap(
    emu: RunningEmulator,
    tmp_path: Path,
    ctl: EmuControl,
    make_file: FileMaker,
) -> None:
    rate = 1_000_000
    source = make_file(24 * CHUNK)  # 3.1 MB: over 3 s at 1 MB/s
    async with client(emu, tmp_path, limit_rate="1MB/s") as kore:
        assert kore.pacer.bucket is not None
        assert kore.pacer.bucket.rate == rate
        started = time.monotonic()
        result = await kore.models.import_file(source)
        elapsed = time.monotonic() - started
    assert result.status == "SUCCESS"
    # never faster than the cap (less its 50 ms burst)
    assert result.bytes / elapsed <= rate * 1.02
    assert elapsed >= (result.bytes - rate * 0.05) / rate


async def test_read_buffers_follow_the_level_when_a_chunk_starts(
    emu: RunningEmulator,
    tmp_path: Path,
    ctl: EmuControl,
    make_file: FileMaker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Chunks picked while the level was low start once it is high: their read blocks must
    # be sized for the level at that moment, or memory grows past the buffer budget.
    await ctl.configure(latency_ms=20, throughput_bytes_per_second=1_000_000)
    seen: list[tuple[int, int]] = []
    kore = client(emu, tmp_path, max_buffer_bytes="4MiB", read_block_size="1MiB")
    real_init = FileSlicePayload.__init__

    def spy(self: FileSlicePayload, source: FileSlice, **kwargs: Any) -> None:
        seen.append((kwargs["block_size"], kore.pacer.controller.limit))
        real_init(self, source, **kwargs)

    monkeypatch.setattr(FileSlicePayload, "__init__", spy)
    async with kore:
        result = await kore.models.import_file(make_file(96 * CHUNK), chunk_size="128KiB")
    assert result.peak_concurrency >= 8
    assert len(seen) >= 96
    assert all(block <= kore.settings.block_size_for(limit) for block, limit in seen), seen
