"""Behind a TLS-inspecting proxy (mitmproxy's mitmdump) in front of the TLS emulator."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator
from kore_models.emulator.tls import EmulatorTLS, TLSFiles, ensure_generated
from kore_models.errors import TLSError
from kore_models.transfer.journal import journal_path
from tests.network.network_support import KEY, EmuControl, Mitmdump, sha256_file

if TYPE_CHECKING:
    from tests.network.network_support import ClientFactory


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return ensure_generated(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def emu(tmp_path: Path, pki: TLSFiles) -> AsyncIterator[RunningEmulator]:
    config = EmulatorConfig(api_key=KEY, data_dir=tmp_path / "emu", job_seconds=0, seed=1)
    async with run_emulator(config, tls=EmulatorTLS(pki.server_cert, pki.server_key)) as server:
        yield server


@pytest.fixture
def mitm(tmp_path: Path, pki: TLSFiles, emu: RunningEmulator) -> Iterator[Mitmdump]:
    """Per test, and stopped before the emulator: its upstream TLS connections must not
    outlive the emulator's event loop (they would be left half closed)."""
    proxy = Mitmdump(tmp_path / "mitm", upstream_ca=pki.ca).start()
    yield proxy
    proxy.stop()


async def test_with_the_proxy_ca_an_import_and_export_round_trip_is_byte_identical(
    emu: RunningEmulator,
    mitm: Mitmdump,
    clients: ClientFactory,
    model: Callable[..., Path],
    tmp_path: Path,
    pki: TLSFiles,
) -> None:
    source = model(3 * 1024 * 1024 + 17)
    kore = clients(emu, proxy=mitm.url, ca_bundle=mitm.ca)
    imported = await kore.models.import_file(source)
    assert imported.model_id is not None
    control = EmuControl(emu, ca=pki.ca)
    assert await control.stored_sha256(imported.model_id) == sha256_file(source)
    exported = await kore.models.export_to_file(imported.model_id, tmp_path / "back.tar")
    assert hashlib.sha256(exported.path.read_bytes()).digest() == bytes.fromhex(sha256_file(source))
    assert exported.path.stat().st_size == source.stat().st_size


async def test_without_the_proxy_ca_the_error_names_ca_bundle_and_nothing_is_lost(
    emu: RunningEmulator,
    mitm: Mitmdump,
    clients: ClientFactory,
    model: Callable[..., Path],
    tmp_path: Path,
    pki: TLSFiles,
) -> None:
    source = model()
    digest = sha256_file(source)
    # even the emulator's own CA does not help: mitmdump re-signs the site with its CA
    kore = clients(emu, proxy=mitm.url, ca_bundle=pki.ca, max_attempts=4)
    with pytest.raises(TLSError) as caught:
        await kore.models.import_file(source)
    message = str(caught.value)
    assert "--ca-bundle" in message
    assert "inspecting TLS" in message
    assert f"http://127.0.0.1:{mitm.port}" in message
    assert sha256_file(source) == digest
    with pytest.raises(TLSError, match="--ca-bundle"):
        await kore.models.export_to_file("cm-anything", tmp_path / "out.tar")
    assert not (tmp_path / "out.tar").exists()
    assert not (tmp_path / "out.tar.part").exists()

    fixed = clients(emu, proxy=mitm.url, ca_bundle=mitm.ca)
    result = await fixed.models.import_file(source)
    assert result.resumed is False
    assert not journal_path(fixed.settings.state_dir, fixed.settings.host, source).exists()
    assert result.model_id is not None
    back = await fixed.models.export_to_file(result.model_id, tmp_path / "out.tar")
    assert sha256_file(back.path) == digest
