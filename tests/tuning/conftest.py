"""Fixtures of the tuning suite: a live emulator on a loopback socket and files to import.

The pure pieces run on virtual time (helpers in ``tuning_support``); the tests against
the emulator use these fixtures:

- ``emu``: a running emulator (jobs finish at once);
- ``emu_config(**fields)``: PATCH its run-time config (network profiles among them);
- ``emu_counters()``: its counters (requests, concurrent chunk uploads, statuses);
- ``emu_script(*faults)``: queue scripted faults;
- ``model_file(size)``: a valid tar of exactly ``size`` bytes.
"""

from __future__ import annotations

import io
import random
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator

KEY = "kg-tuning-test-key-0123456789"

Control = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def api_key() -> str:
    return KEY


@pytest.fixture
async def emu(tmp_path: Path) -> AsyncIterator[RunningEmulator]:
    config = EmulatorConfig(
        api_key=KEY, data_dir=tmp_path / "emu", storage="discard", job_seconds=0, seed=1
    )
    async with run_emulator(config) as server:
        yield server


@pytest.fixture
async def control_http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


async def _call(
    http: aiohttp.ClientSession, emu: RunningEmulator, method: str, path: str, body: Any = None
) -> dict[str, Any]:
    async with http.request(method, f"{emu.url}/_emulator{path}", json=body) as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


@pytest.fixture
def emu_config(emu: RunningEmulator, control_http: aiohttp.ClientSession) -> Control:
    async def configure(**fields: Any) -> dict[str, Any]:
        return await _call(control_http, emu, "PATCH", "/config", fields)

    return configure


@pytest.fixture
def emu_counters(emu: RunningEmulator, control_http: aiohttp.ClientSession) -> Control:
    async def counters() -> dict[str, Any]:
        return await _call(control_http, emu, "GET", "/counters")

    return counters


@pytest.fixture
def emu_script(emu: RunningEmulator, control_http: aiohttp.ClientSession) -> Control:
    async def script(*faults: dict[str, Any]) -> dict[str, Any]:
        return await _call(control_http, emu, "POST", "/script", {"faults": list(faults)})

    return script


@pytest.fixture
def model_file(tmp_path: Path) -> Callable[[int], Path]:
    made = 0

    def make(size: int) -> Path:
        nonlocal made
        made += 1
        info = tarfile.TarInfo("model/weights.bin")
        info.size = size - 1024
        header = info.tobuf(format=tarfile.USTAR_FORMAT)
        data = header + random.Random(made).randbytes(size - len(header))
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            assert archive.next() is not None
        path = tmp_path / f"model-{made}.tar"
        path.write_bytes(data)
        return path

    return make
