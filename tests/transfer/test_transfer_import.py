"""import_file against the live emulator: assembled bytes, the concurrency bound, FAILED jobs,
and the local checks and settings that must fail before any request is sent."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kore_models import KoreClient
from kore_models.errors import ConfigurationError, JobFailedError, LocalFileError
from kore_models.transfer.progress import Phase, ProgressEvent

if TYPE_CHECKING:
    from tests.support.transfer import ClientFactory, EmuControl, FileMaker

CHUNK = 64 * 1024


@pytest.mark.parametrize(
    ("size", "chunks"),
    [
        (CHUNK - 1, 1),
        (CHUNK, 1),
        (CHUNK + 1, 2),
        (23 * CHUNK + 123, 24),
    ],
    ids=["chunk-1", "chunk", "chunk+1", "many"],
)
async def test_assembled_bytes_equal_the_source(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker, size: int, chunks: int
) -> None:
    source = make_file(size)
    events: list[ProgressEvent] = []

    result = await kore.models.import_file(source, on_progress=events.append)

    assert result.status == "SUCCESS"
    assert result.chunks == chunks
    assert result.chunks_sent == chunks
    assert result.bytes == size
    assert result.resumed is False
    assert result.retries == 0
    stored = await ctl.assert_stored(result.model_id, source)
    assert stored["state"] == "ready"
    counters = await ctl.counters()
    assert counters["requests"]["chunk"] == chunks
    assert sorted(counters["chunk_numbers_received"][result.session_id]) == list(range(chunks))
    assert counters["requests"]["start"] == 1
    assert counters["requests"]["complete"] == 1
    assert events[-1].phase is Phase.DONE
    assert events[-1].bytes_done == size
    assert events[-1].chunks_done == chunks
    assert all(e.bytes_done <= size for e in events)


async def test_one_byte_file_is_sent_intact_and_its_job_fails_validation(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker
) -> None:
    source = make_file(1, name="tiny.tar", tar=False)

    with pytest.raises(JobFailedError) as caught:
        await kore.models.import_file(source)

    document = caught.value.document
    assert document["status"] == "FAILED"
    assert "not a valid tar or zip archive" in (document.get("message") or "")
    model_id = document["model_id"]
    await ctl.assert_stored(model_id, source)
    assert (await ctl.model(model_id))["state"] == "failed"


async def test_one_byte_file_without_waiting_returns_the_job(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker
) -> None:
    source = make_file(1, name="tiny.tar", tar=False)

    result = await kore.models.import_file(source, wait=False)

    assert result.chunks == 1
    assert result.dock_status_id is not None
    await ctl.assert_stored(result.model_id, source)
    assert (await ctl.counters())["requests"]["dock_status"] == 0


async def test_concurrency_bound_is_observed_by_the_server(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker
) -> None:
    # ~32 ms to receive each 64 KiB chunk, so uploads overlap on the server
    await ctl.configure(throughput_bytes_per_second=2_000_000, latency_ms=5)
    kore = clients(concurrency=8)
    source = make_file(24 * CHUNK)

    result = await kore.models.import_file(source, concurrency=3)

    await ctl.assert_stored(result.model_id, source)
    counters = await ctl.counters()
    assert counters["chunks_received"] == 24
    assert 2 <= counters["max_concurrent_chunk_uploads"] <= 3


async def test_failed_job_raises_with_the_server_document_after_polling(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker
) -> None:
    await ctl.configure(job_seconds=0.2)
    source = make_file(3 * CHUNK, name="not-an-archive.tar", tar=False)
    events: list[ProgressEvent] = []

    with pytest.raises(JobFailedError) as caught:
        await kore.models.import_file(source, on_progress=events.append)

    error = caught.value
    assert error.document["status"] == "FAILED"
    assert error.document["action"] == "IMPORT"
    assert error.document["dock_status_id"] == error.dock_status_id
    assert "not a valid tar or zip archive" in error.document["message"]
    assert "FAILED" in str(error)
    assert (await ctl.counters())["requests"]["dock_status"] >= 1
    assert any(e.phase is Phase.PROCESSING for e in events)
    await ctl.assert_stored(error.document["model_id"], source)


# ---- checks before any request --------------------------------------------------------


async def _assert_no_requests(ctl: EmuControl) -> None:
    counters = await ctl.counters()
    assert sum(counters["requests"].values()) == 0, counters["requests"]


async def test_missing_file_fails_before_any_request(
    kore: KoreClient, ctl: EmuControl, tmp_path: Path
) -> None:
    with pytest.raises(LocalFileError, match="no such file"):
        await kore.models.import_file(tmp_path / "absent.tar")
    await _assert_no_requests(ctl)


async def test_directory_fails_before_any_request(
    kore: KoreClient, ctl: EmuControl, tmp_path: Path
) -> None:
    folder = tmp_path / "model.tar"
    folder.mkdir()
    with pytest.raises(LocalFileError, match="directory"):
        await kore.models.import_file(folder)
    await _assert_no_requests(ctl)


async def test_empty_file_fails_before_any_request(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker
) -> None:
    source = make_file(0, name="empty.tar", tar=False)
    with pytest.raises(LocalFileError, match="empty"):
        await kore.models.import_file(source)
    await _assert_no_requests(ctl)


@pytest.mark.parametrize(
    ("chunk_size", "concurrency"), [(0, None), (None, 0), (-5, None), (None, -1)]
)
async def test_invalid_chunk_size_or_concurrency_is_a_configuration_error(
    kore: KoreClient,
    ctl: EmuControl,
    make_file: FileMaker,
    chunk_size: int | None,
    concurrency: int | None,
) -> None:
    source = make_file(2 * CHUNK)
    with pytest.raises(ConfigurationError):
        await kore.models.import_file(source, chunk_size=chunk_size, concurrency=concurrency)
    await _assert_no_requests(ctl)


@pytest.mark.parametrize("options", [{"chunk_size": 0}, {"concurrency": 0}])
def test_invalid_client_settings_are_a_configuration_error(
    clients: ClientFactory, options: dict[str, int]
) -> None:
    with pytest.raises(ConfigurationError):
        clients(**options)
