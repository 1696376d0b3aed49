"""Fixtures of the CLI suite: a live emulator subprocess, a CliRunner wrapper, model files."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kore_models.cli import cli
from kore_models.emulator.process import EmulatorProcess

EMULATOR_KEY = "kg-emulator-local-key"


Emulator = EmulatorProcess


def start_emulator(data_dir: Path, *extra: str) -> Emulator:
    """Start the emulator (the shared launcher, port 0) with the default dev key."""
    server = EmulatorProcess(
        data_dir, *extra, api_key=EMULATOR_KEY, stderr_path=data_dir.with_suffix(".log")
    )
    server.start()
    return server


def stop_emulator(emulator: Emulator) -> None:
    """Terminate and reap the subprocess."""
    emulator.stop()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One emulator for the whole CLI suite (jobs take 0.2 s)."""
    server = start_emulator(tmp_path_factory.mktemp("emulator") / "data", "--job-seconds", "0.2")
    yield server
    stop_emulator(server)


@pytest.fixture
def cli_env(emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    """Environment of one test: the emulator, its key, journals under tmp_path, fast polls."""
    return {
        "KORE_HOST": emulator.url,
        "KORE_API_KEY": EMULATOR_KEY,
        "KORE_STATE_DIR": str(tmp_path / "state"),
        "KORE_POLL_INITIAL": "0.1",
        "KORE_POLL_MIN_INTERVAL": "0.1",
        "KORE_POLL_MAX": "0.5",
        "KORE_RETRY_SLEEPS": "false",
    }


RunCli = Callable[..., Result]


@pytest.fixture
def run_cli(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """``run_cli("import", "a.tar", input=None, env={...})``: the CLI in-process."""
    for name in list(os.environ):
        if name.startswith("KORE_"):
            monkeypatch.delenv(name)
    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: dict[str, Any] | None = None) -> Result:
        merged: dict[str, str | None] = {**cli_env, **(env or {})}
        return runner.invoke(cli, list(args), input=input, env=merged, catch_exceptions=False)

    return run


def write_tar(path: Path, size: int, *, seed: int = 0) -> Path:
    """A small valid model tar with ``size`` bytes of (reproducible) weights."""
    weights = (seed.to_bytes(4, "big") + os.urandom(64)) * (size // 68 + 1)
    with tarfile.open(path, "w") as tar:
        for name, data in (("config.json", b'{"model_type": "llama"}'), ("w.bin", weights[:size])):
            info = tarfile.TarInfo(f"model/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def make_tar(tmp_path: Path) -> Callable[..., Path]:
    """``make_tar("a.tar", size=...)``: a model tar under tmp_path."""

    def make(name: str = "model.tar", size: int = 200_000, folder: Path | None = None) -> Path:
        target = (folder or tmp_path) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_tar(target, size)

    return make


@pytest.fixture
def slow_emulator(tmp_path: Path) -> Iterator[Emulator]:
    """An emulator that moves at most 1 MB/s per connection, to interrupt uploads."""
    server = start_emulator(tmp_path / "slow", "--job-seconds", "0.2", "--throughput", "1000000")
    yield server
    stop_emulator(server)
