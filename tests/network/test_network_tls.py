"""The client against the TLS emulator on loopback: trust options, mutual TLS, clear TLS errors."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator
from kore_models.emulator.tls import EmulatorTLS, TLSFiles, ensure_generated
from kore_models.errors import ConfigurationError, TLSError
from kore_models.transfer.journal import Journal, journal_path
from kore_models.transfer.progress import ProgressEvent
from tests.network.network_support import KEY, EmuControl, Relay, sha256_file

if TYPE_CHECKING:
    from tests.network.network_support import ClientFactory


async def test_an_untrusted_certificate_names_ca_bundle_and_is_not_retried(
    tls_emu: RunningEmulator, clients: ClientFactory
) -> None:
    async with Relay(tls_emu.port) as relay:
        kore = clients(f"https://127.0.0.1:{relay.port}", max_attempts=5)
        with pytest.raises(TLSError) as caught:
            await kore.dock_status.get("ds-1")
    message = str(caught.value)
    assert "not trusted" in message
    assert "--ca-bundle" in message
    assert "--trust system" in message
    assert relay.connections == 1, "a TLS verification failure must not be retried"
    assert KEY.encode() not in relay.sent


async def test_ca_bundle_makes_an_import_and_export_round_trip_over_https(
    tls_emu: RunningEmulator, clients: ClientFactory, model: Callable[..., Path], tmp_path: Path
) -> None:
    source = model()
    kore = clients(tls_emu, ca_bundle=tls_emu.ca_file)
    imported = await kore.models.import_file(source)
    assert imported.model_id is not None
    exported = await kore.models.export_to_file(imported.model_id, tmp_path / "back.tar")
    assert sha256_file(exported.path) == sha256_file(source)
    assert await EmuControl(tls_emu).stored_sha256(imported.model_id) == sha256_file(source)


def _hashed_folder(ca: Path, folder: Path) -> Path:
    """An OpenSSL CA folder (``<subject hash>.0``), as SSL_CERT_DIR expects."""
    folder.mkdir()
    shutil.copy(ca, folder / "ca.pem")
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    return folder


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"])
async def test_the_usual_ca_variables_are_honoured(
    tls_emu: RunningEmulator,
    clients: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
) -> None:
    assert tls_emu.ca_file is not None
    value = tls_emu.ca_file
    if variable == "SSL_CERT_DIR":
        value = _hashed_folder(tls_emu.ca_file, tmp_path / "certs")
    monkeypatch.setenv(variable, str(value))
    with pytest.raises(Exception, match="dock status not found"):
        await clients(tls_emu).dock_status.get("ds-1")  # a 404 from the server: TLS worked


async def test_kore_ca_bundle_beats_ssl_cert_file(
    tls_emu: RunningEmulator, clients: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = ensure_generated(tls_emu.state.data_dir / "other-ca")
    monkeypatch.setenv("SSL_CERT_FILE", str(other.ca))
    with pytest.raises(TLSError, match="SSL_CERT_FILE"):
        await clients(tls_emu, max_attempts=1).dock_status.get("ds-1")
    monkeypatch.setenv("KORE_CA_BUNDLE", str(tls_emu.ca_file))
    with pytest.raises(Exception, match="dock status not found"):
        await clients(tls_emu).dock_status.get("ds-1")


async def test_trust_system_uses_the_os_store_and_adds_the_bundle(
    tls_emu: RunningEmulator, clients: ClientFactory
) -> None:
    with pytest.raises(TLSError, match="operating system"):
        await clients(tls_emu, trust="system").dock_status.get("ds-1")
    kore = clients(tls_emu, trust="system", ca_bundle=tls_emu.ca_file)
    with pytest.raises(Exception, match="dock status not found"):
        await kore.dock_status.get("ds-1")


async def test_a_missing_ca_bundle_is_a_configuration_error(
    clients: ClientFactory, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        clients("https://127.0.0.1:9", ca_bundle=tmp_path / "nope.pem")


async def test_a_ca_bundle_that_is_not_pem_is_a_configuration_error(
    tls_emu: RunningEmulator, clients: ClientFactory, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ConfigurationError, match=r"could not be loaded.*give a PEM file"):
        await clients(tls_emu, ca_bundle=bad).dock_status.get("ds-1")


async def test_tls_to_a_plain_http_port_asks_whether_the_host_is_http(
    plain_emu: RunningEmulator, clients: ClientFactory
) -> None:
    async with Relay(plain_emu.port) as relay:
        kore = clients(f"https://127.0.0.1:{relay.port}", max_attempts=5)
        with pytest.raises(TLSError) as caught:
            await kore.dock_status.get("ds-1")
    assert f"Is the host http://127.0.0.1:{relay.port}?" in str(caught.value)
    assert relay.connections == 1
    assert KEY.encode() not in relay.sent


@pytest.fixture
async def mtls_emu(tmp_path: Path) -> AsyncIterator[tuple[RunningEmulator, TLSFiles]]:
    files = ensure_generated(tmp_path / "pki")
    tls = EmulatorTLS(files.server_cert, files.server_key, client_ca_file=files.ca)
    config = EmulatorConfig(api_key=KEY, data_dir=tmp_path / "mtls-emu", job_seconds=0)
    async with run_emulator(config, tls=tls) as server:
        yield server, files


async def test_mutual_tls_needs_the_client_certificate(
    mtls_emu: tuple[RunningEmulator, TLSFiles],
    clients: ClientFactory,
    model: Callable[..., Path],
    tmp_path: Path,
) -> None:
    emu, files = mtls_emu
    with pytest.raises(TLSError, match="--client-cert"):
        await clients(emu, ca_bundle=files.ca, max_attempts=3).models.import_file(model())
    stranger = ensure_generated(tmp_path / "stranger")  # a client cert from another CA
    wrong = clients(
        emu, ca_bundle=files.ca, client_cert=stranger.client_cert, client_key=stranger.client_key
    )
    with pytest.raises(TLSError, match="--client-cert"):
        await wrong.dock_status.get("ds-1")

    kore = clients(
        emu, ca_bundle=files.ca, client_cert=files.client_cert, client_key=files.client_key
    )
    result = await kore.models.import_file(model())
    assert result.status == "SUCCESS"


async def test_a_client_key_without_its_certificate_is_refused(
    mtls_emu: tuple[RunningEmulator, TLSFiles], clients: ClientFactory
) -> None:
    emu, files = mtls_emu
    with pytest.raises(ConfigurationError, match="--client-key needs --client-cert"):
        clients(emu, client_key=files.client_key)


async def test_after_a_tls_error_the_same_import_resumes_once_the_ca_is_given(
    tls_emu: RunningEmulator, clients: ClientFactory, model: Callable[..., Path]
) -> None:
    control = EmuControl(tls_emu)
    await control.configure(throughput_bytes_per_second=1_000_000)  # ~65 ms per chunk
    source = model(40 * 64 * 1024)
    reached = asyncio.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.chunks_done >= 5:
            reached.set()

    trusted = clients(tls_emu, ca_bundle=tls_emu.ca_file)
    task = asyncio.create_task(trusted.models.import_file(source, on_progress=on_progress))
    await asyncio.wait_for(reached.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await control.configure(throughput_bytes_per_second=None)
    journal = Journal(journal_path(trusted.settings.state_dir, trusted.settings.host, source))
    before = journal.load()
    assert before is not None
    assert len(before.acknowledged) >= 5

    # the same import without the CA: a TLS error, and the journal is kept as it was
    with pytest.raises(TLSError, match="--ca-bundle"):
        await clients(tls_emu).models.import_file(source)
    after_error = journal.load()
    assert after_error is not None
    assert after_error.session_id == before.session_id
    assert set(after_error.acknowledged) == set(before.acknowledged)

    result = await clients(tls_emu, ca_bundle=tls_emu.ca_file).models.import_file(source)
    assert result.resumed is True
    assert result.session_id == before.session_id
    assert result.chunks_resumed >= len(before.acknowledged)
    assert result.model_id is not None
    assert await control.stored_sha256(result.model_id) == sha256_file(source)
