"""export_to_file: Range resume of a partial file, a reset mid-body, and the key's origin."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import aiohttp
from aioresponses import aioresponses
from multidict import CIMultiDict
from yarl import URL

from kore_models import KoreClient
from kore_models.emulator import RunningEmulator
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


async def test_export_downloads_the_exact_bytes(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker, tmp_path: Path
) -> None:
    source = make_file(5 * CHUNK + 3)
    model_id = await _imported(kore, source)
    dest = tmp_path / "out" / "model.tar"
    events: list[ProgressEvent] = []

    result = await kore.models.export_to_file(model_id, dest, on_progress=events.append)

    assert dest.read_bytes() == source.read_bytes()
    assert result.bytes == source.stat().st_size
    assert result.resumed_from == 0
    assert not dest.with_name("model.tar.part").exists()
    assert events[-1].phase is Phase.DONE
    assert events[-1].bytes_done == result.bytes


async def test_a_partial_file_is_resumed_with_range(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker, tmp_path: Path
) -> None:
    source = make_file(8 * CHUNK + 5)
    model_id = await _imported(kore, source)
    dest = tmp_path / "model.tar"
    have = 3 * CHUNK + 11
    dest.with_name("model.tar.part").write_bytes(source.read_bytes()[:have])
    await ctl.reset_counters()

    result = await kore.models.export_to_file(model_id, dest)

    assert result.resumed_from == have
    assert dest.read_bytes() == source.read_bytes()
    counters = await ctl.counters()
    assert counters["requests"]["download"] == 1
    assert counters["responses_by_status"].get("206") == 1


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
    counters = await ctl.counters()
    assert counters["faults_injected"] == 1
    assert counters["requests"]["download"] == 2
    assert counters["responses_by_status"].get("206") == 1


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
    assert api_calls
    assert all("x-api-key" in h for _, h in api_calls)


async def test_the_key_is_sent_to_a_download_url_on_the_same_origin(
    clients: ClientFactory, emu: RunningEmulator, make_file: FileMaker, tmp_path: Path
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


async def test_a_part_file_longer_than_the_export_is_discarded_and_restarted(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker, tmp_path: Path
) -> None:
    source = make_file(3 * CHUNK)
    model_id = await _imported(kore, source)
    dest = tmp_path / "model.tar"
    dest.with_name("model.tar.part").write_bytes(b"x" * (4 * CHUNK))

    result = await kore.models.export_to_file(model_id, dest)

    assert dest.read_bytes() == source.read_bytes()
    assert result.bytes == source.stat().st_size
    assert (await ctl.counters())["responses_by_status"].get("416") == 1


async def test_a_complete_part_file_is_only_renamed(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker, tmp_path: Path
) -> None:
    source = make_file(3 * CHUNK)
    model_id = await _imported(kore, source)
    dest = tmp_path / "model.tar"
    dest.with_name("model.tar.part").write_bytes(source.read_bytes())

    result = await kore.models.export_to_file(model_id, dest)

    assert dest.read_bytes() == source.read_bytes()
    assert result.resumed_from == source.stat().st_size
    assert (await ctl.counters())["responses_by_status"].get("416") == 1


async def test_a_server_that_ignores_range_makes_the_download_start_over(
    tmp_path: Path,
) -> None:
    data = bytes(range(256)) * 1000
    url = "https://files.example.test/export/model.tar?token=t"
    dest = tmp_path / "model.tar"
    dest.with_name("model.tar.part").write_bytes(b"stale bytes from another file")
    async with KoreClient(
        host="https://api.example.test", api_key="kg-unit", state_dir=tmp_path / "state"
    ) as kore:
        with aioresponses() as mocked:
            mocked.get(url, status=200, body=data, headers={"Content-Length": str(len(data))})

            result = await download_file(kore.transport, url, dest)

            (call,) = mocked.requests[("GET", URL(url))]
            headers = call.kwargs["headers"]
    assert headers["Range"] == "bytes=29-"
    assert "x-api-key" not in headers  # another origin than the API host
    assert result.restarts == 1
    assert dest.read_bytes() == data
    assert not dest.with_name("model.tar.part").exists()
