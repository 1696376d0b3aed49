"""A user's own tests, as docs/testing-kit.md shows them: only the kore-models[testing] plugin.

This folder has no conftest.py on purpose: every fixture comes from the plugin.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from kore_models import KoreClient, SyncKoreClient, UploadError
from kore_models.testing import KoreEmulator


def make_model(folder: Path, size: int = 300_000) -> Path:
    """A small model archive, as the code under test would produce."""
    weights = folder / "weights.bin"
    weights.write_bytes(bytes(range(256)) * (size // 256))
    archive = folder / "model.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(weights, arcname="model/weights.bin")
    return archive


async def publish(kore: KoreClient, archive: Path) -> str:
    """The user's code under test: import a model and return its id."""
    result = await kore.models.import_file(archive, chunk_size=64 * 1024)
    assert result.model_id is not None
    return result.model_id


@pytest.mark.asyncio
async def test_publish_imports_the_model(
    kore_client: KoreClient, kore_emulator: KoreEmulator, tmp_path: Path
) -> None:
    archive = make_model(tmp_path)

    model_id = await publish(kore_client, archive)

    stored = kore_emulator.model(model_id)
    assert stored["size"] == archive.stat().st_size


@pytest.mark.asyncio
@pytest.mark.kore_scenario("flaky")
async def test_publish_survives_a_flaky_server(
    kore_client: KoreClient, kore_emulator: KoreEmulator, tmp_path: Path
) -> None:
    archive = make_model(tmp_path, size=1_000_000)

    model_id = await publish(kore_client, archive)

    assert kore_emulator.model(model_id)["size"] == archive.stat().st_size
    assert kore_emulator.counters()["faults_injected"] > 0


@pytest.mark.asyncio
@pytest.mark.kore_scenario("session-expiry")
async def test_publish_reports_sessions_that_keep_expiring(
    kore_client: KoreClient, tmp_path: Path
) -> None:
    with pytest.raises(UploadError, match="expired"):
        await publish(kore_client, make_model(tmp_path))


def test_a_script_with_the_blocking_client(
    kore_sync_client: SyncKoreClient, tmp_path: Path
) -> None:
    result = kore_sync_client.models.import_file(make_model(tmp_path), chunk_size=64 * 1024)
    job = kore_sync_client.dock_status.get(result.dock_status_id)
    assert job.status == "SUCCESS"
