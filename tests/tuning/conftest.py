"""Fixtures of the tuning suite: a live emulator on a loopback socket and files to import.

The pure pieces run on virtual time (helpers in :mod:`tests.support.tuning`); the tests
against the emulator use:

- ``emu``: a running emulator (jobs finish at once);
- ``ctl``: its control API (config with the network profiles, fault script, counters);
- ``make_file``: a valid tar of an exact size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator
from tests.support.transfer import KEY, EmuControl, FileMaker


@pytest.fixture
async def emu(tmp_path: Path) -> AsyncIterator[RunningEmulator]:
    config = EmulatorConfig(api_key=KEY, data_dir=tmp_path / "emu", job_seconds=0, seed=1)
    async with run_emulator(config) as server:
        yield server


@pytest.fixture
async def ctl(emu: RunningEmulator) -> AsyncIterator[EmuControl]:
    async with aiohttp.ClientSession() as http:
        yield EmuControl(emu, http)


@pytest.fixture
def make_file(tmp_path: Path) -> FileMaker:
    folder = tmp_path / "files"
    folder.mkdir()
    return FileMaker(folder)
