"""Downloads under the same pacer: ranges climb on a fat link, the rate cap holds, a
pinned ``ranges`` pins, and a download and an import of one client share one controller."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from kore_models import KoreClient
from kore_models.emulator import RunningEmulator
from tests.support.transfer import KEY, EmuControl, FileMaker

MiB = 1024 * 1024


def client(emu: RunningEmulator, tmp_path: Path, **options: Any) -> KoreClient:
    return KoreClient(
        emu.url,
        KEY,
        state_dir=tmp_path / "state",
        poll_initial=0.02,
        poll_min_interval=0.02,
        **options,
    )


async def imported(emu: RunningEmulator, tmp_path: Path, source: Path) -> str:
    async with client(emu, tmp_path, concurrency=4) as kore:
        result = await kore.models.import_file(source)
    assert result.model_id is not None
    return result.model_id


async def test_ranges_climb_on_a_fat_link(
    emu: RunningEmulator, tmp_path: Path, ctl: EmuControl, make_file: FileMaker
) -> None:
    source = make_file(96 * MiB)
    model_id = await imported(emu, tmp_path, source)
    await ctl.configure(latency_ms=20, throughput_bytes_per_second=10_000_000)
    await ctl.reset_counters()
    async with client(emu, tmp_path) as kore:
        result = await kore.models.export_to_file(model_id, tmp_path / "out.tar")
        decisions = [(d.old, d.new) for d in kore.pacer.controller.decisions]
    assert result.bytes == source.stat().st_size
    assert decisions[:2] == [(2, 4), (4, 8)]
    assert (await ctl.counters())["requests"]["download"] >= 12  # one per 8 MiB piece


async def test_a_pinned_ranges_is_kept(
    emu: RunningEmulator, tmp_path: Path, ctl: EmuControl, make_file: FileMaker
) -> None:
    model_id = await imported(emu, tmp_path, make_file(40 * MiB))
    await ctl.configure(latency_ms=20, throughput_bytes_per_second=20_000_000)
    async with client(emu, tmp_path) as kore:
        await kore.models.export_to_file(model_id, tmp_path / "out.tar", ranges=2)
        assert not kore.pacer.controller.decisions  # the client's own controller: untouched
        pinned = kore.pacer.for_settings(kore.settings.replace(concurrency=2))
        assert pinned.controller.peak == pinned.controller.limit == 2


async def test_limit_rate_caps_a_download(
    emu: RunningEmulator, tmp_path: Path, make_file: FileMaker
) -> None:
    source = make_file(24 * MiB)
    model_id = await imported(emu, tmp_path, source)
    async with client(emu, tmp_path, limit_rate="8MB/s") as kore:
        started = time.monotonic()
        result = await kore.models.export_to_file(model_id, tmp_path / "out.tar")
        elapsed = time.monotonic() - started
    assert result.bytes == source.stat().st_size
    # never faster than 8 MB/s, less the bucket's 50 ms burst
    assert elapsed >= (result.bytes - 400_000) / 8_000_000


async def test_an_import_and_a_download_share_one_pinned_limit(
    emu: RunningEmulator, tmp_path: Path, ctl: EmuControl, make_file: FileMaker
) -> None:
    model_id = await imported(emu, tmp_path, make_file(40 * MiB))
    await ctl.configure(latency_ms=10, throughput_bytes_per_second=20_000_000)
    await ctl.reset_counters()
    seen: list[int] = []
    async with client(emu, tmp_path, concurrency=3, chunk_size="1MiB") as kore:
        controller = kore.pacer.controller

        async def watch() -> None:
            while True:
                seen.append(controller.in_flight)
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        await asyncio.gather(
            kore.models.export_to_file(model_id, tmp_path / "out.tar"),
            kore.models.import_file(make_file(24 * MiB)),
        )
        watcher.cancel()
    assert 2 <= max(seen) <= 3  # both transfers draw from the same three slots
