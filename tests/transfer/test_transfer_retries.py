"""Per-chunk retries through scripted server faults, Retry-After, resets and stalls."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import pytest

from kore_models import KoreClient
from kore_models.errors import UploadError
from kore_models.transfer.progress import Phase, ProgressEvent

if TYPE_CHECKING:
    from tests.support.transfer import ClientFactory, EmuControl, FileMaker

CHUNK = 64 * 1024


def _assert_progress_sane(events: list[ProgressEvent], size: int) -> None:
    assert events, "no progress events"
    assert all(0 <= e.bytes_done <= size for e in events), max(e.bytes_done for e in events)
    assert events[-1].phase is Phase.DONE
    assert events[-1].bytes_done == size
    uploading = [e for e in events if e.phase is Phase.UPLOADING]
    assert uploading
    assert uploading[-1].bytes_done <= size


async def test_scripted_500_503_429_and_resets_are_retried(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker
) -> None:
    size = 10 * CHUNK + 777
    source = make_file(size)
    await ctl.script(
        {"route": "chunk", "action": "500"},
        {"route": "chunk", "action": "503"},
        {"route": "chunk", "action": "429", "retry_after": 1},
        {"route": "chunk", "action": "reset", "after_bytes": 20_000},
        {"route": "chunk", "action": "reset"},
    )
    events: list[ProgressEvent] = []

    result = await kore.models.import_file(source, on_progress=events.append)

    assert result.status == "SUCCESS"
    assert result.retries == 5
    assert result.chunks_sent == 11
    await ctl.assert_stored(result.model_id, source)
    counters = await ctl.counters()
    assert counters["faults_injected"] == 5
    assert counters["requests"]["chunk"] == 11 + 5
    assert counters["chunks_received"] == 11
    assert events[-1].retries == 5
    _assert_progress_sane(events, size)


async def test_retry_after_of_a_429_is_honoured(
    clients: ClientFactory,
    ctl: EmuControl,
    make_file: FileMaker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kore = clients(retry_sleeps=True, backoff_initial=0.001, backoff_max=0.002)
    source = make_file(3 * CHUNK)
    await ctl.script({"route": "chunk", "action": "429", "retry_after": 0.3})
    caplog.set_level(logging.INFO, logger="kore_models.retry")
    started = time.monotonic()

    result = await kore.models.import_file(source)

    assert time.monotonic() - started >= 0.3
    assert result.retries == 1
    waits = [
        r.args[3]
        for r in caplog.records
        if r.name == "kore_models.retry" and isinstance(r.args, tuple) and len(r.args) == 4
    ]
    assert waits == [pytest.approx(0.3)]
    await ctl.assert_stored(result.model_id, source)


async def test_a_dead_server_exhausts_the_retry_budget_and_names_the_chunks(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker
) -> None:
    kore = clients(upload_retry_budget=3, concurrency=2)
    source = make_file(6 * CHUNK)
    await ctl.script(*({"route": "chunk", "action": "503"} for _ in range(50)))

    with pytest.raises(UploadError) as caught:
        await kore.models.import_file(source)

    assert caught.value.failed_chunks
    assert caught.value.session_id is not None
    counters = await ctl.counters()
    # 3 retries across the whole upload, plus the first attempt of each chunk that started
    assert counters["requests"]["chunk"] <= 3 + 2
    assert counters["requests"]["complete"] == 0


async def test_a_stalled_chunk_is_abandoned_and_retried(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker
) -> None:
    kore = clients(read_timeout=0.5, stall_timeout=0.5)
    size = 4 * CHUNK
    source = make_file(size)
    # the stall outlasts the test's own timeout: only abandoning the chunk can finish it
    await ctl.script({"route": "chunk", "action": "stall", "stall_seconds": 3600})
    events: list[ProgressEvent] = []

    result = await kore.models.import_file(source, on_progress=events.append)

    assert result.retries == 1
    await ctl.assert_stored(result.model_id, source)
    counters = await ctl.counters()
    assert counters["faults_injected"] == 1
    assert counters["chunks_received"] == 4
    _assert_progress_sane(events, size)
