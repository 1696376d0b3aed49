"""A server that dies and comes back mid-upload: retries ride over it, bytes match."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import aiohttp

from kore_models import KoreClient
from kore_models.transfer.progress import ProgressEvent
from tests.support.reliability import API_KEY, EmulatorProcess, make_model_file

MiB = 1024 * 1024


async def test_import_survives_emulator_restart(
    emulator_process: EmulatorProcess, tmp_path: Path
) -> None:
    source = make_model_file(tmp_path / "weights.tar", 24 * MiB)
    halfway = asyncio.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.chunks_done >= 6:
            halfway.set()

    async with KoreClient(
        emulator_process.url, API_KEY, state_dir=tmp_path / "state", chunk_size=MiB, concurrency=2
    ) as kore:
        await _slow_down(emulator_process.url)
        upload = asyncio.create_task(
            kore.models.import_file(source, wait=False, on_progress=on_progress)
        )
        await asyncio.wait_for(halfway.wait(), timeout=30)
        await asyncio.to_thread(emulator_process.kill)
        await asyncio.to_thread(emulator_process.start)
        result = await asyncio.wait_for(upload, timeout=60)
    assert result.retries >= 1, "the outage should have cost at least one retry"
    assert result.chunks_resumed == 0
    async with (
        aiohttp.ClientSession() as raw,
        raw.get(f"{emulator_process.url}/_emulator/models/{result.model_id}") as resp,
    ):
        model = await resp.json()
    assert model["size"] == source.stat().st_size
    assert model["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


async def _slow_down(url: str) -> None:
    """Make chunks take long enough that the kill lands mid-upload."""
    async with (
        aiohttp.ClientSession() as raw,
        raw.patch(f"{url}/_emulator/config", json={"latency_ms": 100}) as resp,
    ):
        assert resp.status == 200
