"""Fixtures of the network suite: TLS and plain emulators, proxy.py, mitmdump, client factories.

- an autouse fixture clears every proxy and CA variable (and ``KORE_*``), so a developer's
  own ``HTTPS_PROXY`` or ``SSL_CERT_FILE`` cannot change what a test sees;
- ``tls_emu`` serves HTTPS with a generated CA (``tls_emu.ca_file``); ``plain_emu`` plain http;
- ``clients(emu, **settings)`` builds closed-at-teardown clients with fast test settings;
- ``proxy`` / ``auth_proxy`` start proxy.py (with basic auth ``alice:PROXY_PASSWORD``);
- ``model`` writes a model file of a given size.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kore_models import KoreClient
from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator
from kore_models.emulator.tls import EmulatorTLS
from tests.network.network_support import (
    KEY,
    NETWORK_ENV,
    PROXY_PASSWORD,
    ClientFactory,
    ProxyPy,
    make_model,
)

CHUNK = 64 * 1024


@pytest.fixture(autouse=True)
def _clean_network_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KORE_") or name.lower() in {n.lower() for n in NETWORK_ENV}:
            monkeypatch.delenv(name)


def _config(folder: Path) -> EmulatorConfig:
    return EmulatorConfig(api_key=KEY, data_dir=folder, job_seconds=0, seed=1)


@pytest.fixture
async def tls_emu(tmp_path: Path) -> AsyncIterator[RunningEmulator]:
    async with run_emulator(_config(tmp_path / "tls-emu"), tls=EmulatorTLS()) as server:
        yield server


@pytest.fixture
async def plain_emu(tmp_path: Path) -> AsyncIterator[RunningEmulator]:
    async with run_emulator(_config(tmp_path / "plain-emu")) as server:
        yield server


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[ClientFactory]:
    made: list[KoreClient] = []

    def build(emu: RunningEmulator | str, **overrides: Any) -> KoreClient:
        options: dict[str, Any] = {
            "host": emu if isinstance(emu, str) else emu.url,
            "api_key": KEY,
            "state_dir": tmp_path / "state",
            "retry_sleeps": False,
            "chunk_size": CHUNK,
            "concurrency": 4,
            "read_block_size": 16 * 1024,
            "poll_initial": 0.02,
            "poll_max": 0.1,
            "poll_min_interval": 0.02,
            **overrides,
        }
        client = KoreClient(**options)
        made.append(client)
        return client

    yield build
    for client in made:
        await client.aclose()


@pytest.fixture
def model(tmp_path: Path) -> Callable[..., Path]:
    folder = tmp_path / "models"
    folder.mkdir()

    def make(size: int = 20 * CHUNK + 123, seed: int = 1) -> Path:
        return make_model(folder, size, seed=seed)

    return make


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ProxyPy]:
    server = ProxyPy(tmp_path / "proxy").start()
    yield server
    server.stop()


@pytest.fixture
def auth_proxy(tmp_path: Path) -> Iterator[ProxyPy]:
    server = ProxyPy(tmp_path / "auth-proxy", basic_auth=f"alice:{PROXY_PASSWORD}").start()
    yield server
    server.stop()
