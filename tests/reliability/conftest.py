"""Fixtures for reliability tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.reliability import API_KEY, EmulatorProcess, StartEmulator


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[EmulatorProcess]:
    emulator = EmulatorProcess(tmp_path / "emulator-data", "--job-seconds", "0.2", api_key=API_KEY)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.kill()


@pytest.fixture
def start_emulator(tmp_path: Path) -> Iterator[StartEmulator]:
    """``start_emulator("--throughput", "1000000", api_key=..., stderr_path=...)``: started
    emulator subprocesses (jobs take 0.2 s unless told otherwise), all killed at teardown."""
    started: list[EmulatorProcess] = []

    def start(
        *extra: str, api_key: str = API_KEY, stderr_path: Path | None = None
    ) -> EmulatorProcess:
        args = extra if "--job-seconds" in extra else ("--job-seconds", "0.2", *extra)
        emulator = EmulatorProcess(
            tmp_path / f"emulator-{len(started)}",
            *args,
            api_key=api_key,
            stderr_path=stderr_path,
        )
        started.append(emulator)
        emulator.start()
        return emulator

    try:
        yield start
    finally:
        for emulator in started:
            emulator.kill()
