"""Fixtures for the emulator contract tests: a live emulator on a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator
from tests.support.emulator_api import KEY, Api


@pytest.fixture
def config(tmp_path: Path) -> EmulatorConfig:
    return EmulatorConfig(api_key=KEY, data_dir=tmp_path / "emu", job_seconds=5, seed=1)


@pytest.fixture
async def emu(config: EmulatorConfig) -> AsyncIterator[RunningEmulator]:
    async with run_emulator(config) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def api(emu: RunningEmulator, http: aiohttp.ClientSession) -> Api:
    return Api(emu, http)
