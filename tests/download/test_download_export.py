"""export_to_file against the emulator: exact bytes, SHA-256, resume from a real partial
download, a reset mid-body, the key's origin, an expected SHA-256 and a folder destination."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import aiohttp
import pytest
from multidict import CIMultiDict

from kore_models import KoreClient
from kore_models.emulator import RunningEmulator
from kore_models.errors import ConfigurationError, IntegrityError, KoreConnectionError
from kore_models.transfer.download import download_file
from kore_models.transfer.progress import Phase, ProgressEvent

if TYPE_CHECKING:
    from tests.support.transfer import ClientFactory, EmuControl, FileMaker

CHUNK = 64 * 1024


def _recorder(sent: list[tuple[str, CIMultiDict[str]]]) -> aiohttp.TraceConfig:
    """A trace config that records the URL and headers of every request as sent."""

    async def record(
        _session: aiohttp.ClientSession,
        _ctx: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        sent.append((str(params.url), CIMultiDict(params.headers)))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(record)
    return trace


async def _imported(kore: KoreClient, source: Path) -> str:
    result = await kore.models.import_file(source)
    assert result.model_id is not None
    return result.model_id


async def test_export_downloads_the_exact_bytes_and_their_sha256(
    kore: KoreClient, make_file: FileMaker, tmp_path: Path
) -> None:
    source = make_file(5 * CHUNK + 3)
    model_id = await _imported(kore, source)
    dest = tmp_path / "out" / "model.tar"
    events: list[ProgressEvent] = []

    result = await kore.models.export_to_file(model_id, dest, on_progress=events.append)

    assert dest.read_bytes() == source.read_bytes()
    assert result.bytes == source.stat().st_size
    assert result.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert result.resumed_from == 0
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.tar"]
    assert events[-1].phase is Phase.DONE
    assert events[-1].bytes_done == result.bytes


async def test_a_download_cut_off_is_resumed_by_the_next_run_from_its_part(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker, tmp_path: Path
) -> None:
    source = make_file(8 * CHUNK + 5)
    once = clients(max_attempts=1)
    model_id = await _imported(once, source)
    dest = tmp_path / "model.tar"
    # the first request is cut; the resumed one fails at once: no progress, so it gives up
    await ctl.script(
        {"route": "download", "action": "reset", "after_bytes": 3 * CHUNK + 11},
        {"route": "download", "action": "reset", "after_bytes": 0},
    )
    with pytest.raises(KoreConnectionError):
        await once.models.export_to_file(model_id, dest, ranges=1)
    part = dest.with_name("model.tar.part")
    record = json.loads(dest.with_name("model.tar.part.json").read_text())
    assert record["model_id"] == model_id
    assert "token" not in json.dumps(record)
    have = part.stat().st_size
    assert 0 < have < source.stat().st_size
    await ctl.reset_counters()

    events: list[ProgressEvent] = []
    result = await clients().models.export_to_file(
        model_id, dest, ranges=1, on_progress=events.append
    )

    assert result.resumed_from == have
    downloading = [e.bytes_done for e in events if e.phase is Phase.DOWNLOADING]
    assert downloading[0] == 0
    assert have in downloading  # the bar starts from what the part holds
    assert max(downloading) <= result.bytes == events[-1].bytes_done
    assert dest.read_bytes() == source.read_bytes()
    assert result.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    counters = await ctl.counters()
    assert counters["requests"]["download"] == 1
    assert counters["responses_by_status"].get("206") == 1
    assert not part.exists()
    assert not dest.with_name("model.tar.part.json").exists()


async def test_a_reset_mid_body_is_resumed(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker, tmp_path: Path
) -> None:
    source = make_file(16 * CHUNK)
    model_id = await _imported(kore, source)
    dest = tmp_path / "model.tar"
    await ctl.script({"route": "download", "action": "reset", "after_bytes": 300_000})
    await ctl.reset_counters()

    result = await kore.models.export_to_file(model_id, dest)

    assert dest.read_bytes() == source.read_bytes()
    assert result.bytes == source.stat().st_size
    assert result.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    counters = await ctl.counters()
    assert counters["faults_injected"] == 1
    assert counters["requests"]["download"] == 2


async def test_the_key_is_not_sent_to_a_download_url_on_another_origin(
    clients: ClientFactory,
    emu: RunningEmulator,
    ctl: EmuControl,
    make_file: FileMaker,
    tmp_path: Path,
) -> None:
    sent: list[tuple[str, CIMultiDict[str]]] = []
    async with aiohttp.ClientSession(trace_configs=[_recorder(sent)]) as session:
        kore = clients(session=session)
        source = make_file(2 * CHUNK)
        model_id = await _imported(kore, source)
        # the API is http://127.0.0.1:PORT; downloads now come from http://localhost:PORT
        await ctl.configure(download_base_url=f"http://localhost:{emu.port}")
        dest = tmp_path / "model.tar"

        await kore.models.export_to_file(model_id, dest)
        await kore.aclose()

    assert dest.read_bytes() == source.read_bytes()
    downloads = [(url, h) for url, h in sent if url.startswith("http://localhost:")]
    api_calls = [(url, h) for url, h in sent if url.startswith(emu.url + "/api/public/")]
    assert len(downloads) == 1
    assert "x-api-key" not in downloads[0][1]
    assert downloads[0][1]["Accept-Encoding"] == "identity"
    assert api_calls
    assert all("x-api-key" in h for _, h in api_calls)


async def test_the_key_is_sent_to_a_download_url_on_the_same_origin(
    clients: ClientFactory, make_file: FileMaker, tmp_path: Path
) -> None:
    sent: list[tuple[str, CIMultiDict[str]]] = []
    async with aiohttp.ClientSession(trace_configs=[_recorder(sent)]) as session:
        kore = clients(session=session)
        source = make_file(2 * CHUNK)
        model_id = await _imported(kore, source)
        await kore.models.export_to_file(model_id, tmp_path / "model.tar")
        await kore.aclose()
    await asyncio.sleep(0)

    downloads = [h for url, h in sent if "/api/v1/account/exports/" in url]
    assert len(downloads) == 1
    assert "x-api-key" in downloads[0]


async def test_an_expected_sha256_that_differs_keeps_nothing(
    kore: KoreClient, make_file: FileMaker, tmp_path: Path
) -> None:
    source = make_file(3 * CHUNK)
    model_id = await _imported(kore, source)
    dest = tmp_path / "model.tar"
    wrong = "0" * 64

    with pytest.raises(IntegrityError) as caught:
        await kore.models.export_to_file(model_id, dest, expected_sha256=wrong)

    assert caught.value.expected == wrong
    assert caught.value.actual == hashlib.sha256(source.read_bytes()).hexdigest()
    assert [n for n in os.listdir(tmp_path) if n.startswith("model.tar")] == []


async def test_an_expected_sha256_that_matches_is_accepted_in_any_case(
    kore: KoreClient, make_file: FileMaker, tmp_path: Path
) -> None:
    source = make_file(3 * CHUNK)
    model_id = await _imported(kore, source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()

    result = await kore.models.export_to_file(
        model_id, tmp_path / "model.tar", expected_sha256=digest.upper()
    )

    assert result.sha256 == digest


async def test_a_malformed_expected_sha256_fails_before_the_export_starts(
    kore: KoreClient, ctl: EmuControl, tmp_path: Path
) -> None:
    await ctl.reset_counters()
    with pytest.raises(ConfigurationError, match="not a SHA-256"):
        await kore.models.export_to_file("cm-1", tmp_path / "m.tar", expected_sha256="abc")
    assert sum((await ctl.counters())["requests"].values()) == 0


async def test_a_folder_destination_means_the_model_file_inside_it(
    kore: KoreClient, make_file: FileMaker, tmp_path: Path
) -> None:
    source = make_file(2 * CHUNK)
    model_id = await _imported(kore, source)
    folder = tmp_path / "exports"
    folder.mkdir()

    result = await kore.models.export_to_file(model_id, folder)

    assert result.path == folder / f"{model_id}.tar"
    assert result.path.read_bytes() == source.read_bytes()


async def test_an_export_is_fetched_in_ranges_from_the_emulator(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker, tmp_path: Path
) -> None:
    source = make_file(16 * CHUNK + 7)
    model_id = await _imported(kore, source)
    job = await kore.models.export(model_id)
    final = await kore.dock_status.wait(job.dock_status_id or "", timeout=30, first=job)
    assert final.download_url is not None
    await ctl.reset_counters()
    dest = tmp_path / "model.tar"

    result = await download_file(
        kore.transport, final.download_url, dest, model_id=model_id, ranges=4, piece_size=2 * CHUNK
    )

    assert dest.read_bytes() == source.read_bytes()
    assert result.ranges == 4
    assert result.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    counters = await ctl.counters()
    assert counters["responses_by_status"] == {"206": 9}
