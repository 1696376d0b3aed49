"""Fault soak: many imports through 20% injected faults end byte-exact or fail clearly."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from kore_models import KoreClient, KoreError
from kore_models.emulator import EmulatorConfig, run_emulator

CHUNK = 256 * 1024
FAULT_KINDS = ["500", "503", "429", "reset", "stall"]


@dataclass
class SoakOutcome:
    completed: int = 0
    failed_clearly: int = 0
    corrupted: int = 0


def soak_sizes(count: int, largest: int, seed: int) -> list[int]:
    """Chunk boundaries +-1 first, then random sizes up to ``largest``."""
    edges = [1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK, 2 * CHUNK + 1]
    edges += [largest - 1, largest]
    rng = random.Random(seed)
    sizes = [s for s in edges if s <= largest]
    while len(sizes) < count:
        sizes.append(rng.randint(1, largest))
    return sizes[:count]


def write_file(path: Path, size: int, seed: int) -> str:
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        left = size
        while left:
            block = rng.randbytes(min(left, 1 << 20))
            handle.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


@pytest.fixture
async def faulty_emulator(tmp_path: Path) -> AsyncIterator[str]:
    config = EmulatorConfig(
        data_dir=tmp_path / "emulator",
        job_seconds=0,
        failure_rate=0.2,
        failure_kinds=FAULT_KINDS,
        retry_after_seconds=0.05,
        stall_seconds=1.5,
        seed=7,
        allowed_extensions=["dat"],  # raw bytes, not an archive
    )
    async with run_emulator(config) as emulator:
        yield emulator.url


async def run_soak(url: str, tmp_path: Path, count: int, largest: int) -> SoakOutcome:
    outcome = SoakOutcome()
    source = tmp_path / "model.dat"
    async with (
        KoreClient(
            url,
            "kg-emulator-local-key",
            state_dir=tmp_path / "state",
            chunk_size=CHUNK,
            concurrency=4,
            read_timeout=0.5,
            stall_timeout=0.5,
            backoff_initial=0.01,
            backoff_max=0.05,
            retry_after_cap=0.1,
            max_attempts=8,
        ) as kore,
        aiohttp.ClientSession() as raw,
    ):
        for index, size in enumerate(soak_sizes(count, largest, seed=count)):
            expected = write_file(source, size, seed=index)
            try:
                result = await kore.models.import_file(source, wait=False)
            except KoreError as exc:
                message = str(exc)
                print(f"import {index} ({size} B) failed: {type(exc).__name__}: {message}")
                if message:
                    outcome.failed_clearly += 1
                continue
            async with raw.get(f"{url}/_emulator/models/{result.model_id}") as resp:
                model = await resp.json()
            if model.get("sha256") == expected and model.get("size") == size:
                outcome.completed += 1
            else:
                outcome.corrupted += 1
    os.remove(source)
    return outcome


async def test_fault_soak_fast(faulty_emulator: str, tmp_path: Path) -> None:
    outcome = await run_soak(faulty_emulator, tmp_path, count=20, largest=3 * CHUNK)
    print(f"soak (fast): {outcome}")
    assert outcome.corrupted == 0
    assert outcome.completed + outcome.failed_clearly == 20
    assert outcome.completed >= 18


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_fault_soak_full(faulty_emulator: str, tmp_path: Path) -> None:
    outcome = await run_soak(faulty_emulator, tmp_path, count=200, largest=64 * 1024 * 1024)
    print(f"soak (full): {outcome}")
    assert outcome.corrupted == 0
    assert outcome.completed + outcome.failed_clearly == 200
