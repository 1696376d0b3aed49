"""Disk: the data-size cap (507), bytes deleted when no one can read them, clean disconnects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator
from tests.support.emulator_api import KEY, Api, make_tar, until

CAP = 40_000


@pytest.fixture
async def capped(tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[Api]:
    config = EmulatorConfig(api_key=KEY, data_dir=tmp_path / "emu", max_data_size=CAP)
    async with run_emulator(config) as emu:
        yield Api(emu, http)


def _code(doc: Any) -> str:
    return str(doc["errors"][0]["code"])


async def _start_status(api: Api, size: int) -> tuple[int, Any]:
    body = {"fileContext": "model", "totalChunks": 1, "fileExtension": "tar",
            "fileName": "m.tar", "fileSize": size}  # fmt: skip
    status, doc, _ = await api.post("/files/session/start", json=body)
    return status, doc


async def test_session_start_refused_when_file_size_does_not_fit(capped: Api) -> None:
    status, doc = await _start_status(capped, CAP + 1)
    assert status == 507
    assert _code(doc) == "INSUFFICIENT_STORAGE"
    assert "--max-data-size" in doc["errors"][0]["msg"]
    data = make_tar(b"m" * 25_000)  # ~26 KB
    first = await capped.start(len(data))
    status, doc = await _start_status(capped, CAP - len(data) + 1)  # the open session reserves
    assert status == 507
    assert doc["errors"][0]["freeBytes"] == CAP - len(data)
    assert (await capped.chunk(first["sessionId"], 0, data))[0] == 200
    assert (await capped.complete(first["sessionId"]))[0] == 200
    assert (await _start_status(capped, CAP - len(data) + 1))[0] == 507  # now stored
    await capped.control("DELETE", f"/models/{first['modelId']}")
    assert not capped.emu.state.store.model_path(first["modelId"]).exists()
    async with capped.http.get(f"{capped.emu.url}/_emulator/models/{first['modelId']}") as r:
        assert r.status == 404
    assert (await _start_status(capped, CAP))[0] == 200  # the deleted model's bytes are free


async def test_chunk_upload_refused_beyond_the_cap(capped: Api) -> None:
    sid = (await capped.start(1000))["sessionId"]
    status, doc, _ = await capped.chunk(sid, 0, b"x" * (CAP + 1))  # more than announced
    assert status == 507
    assert _code(doc) == "INSUFFICIENT_STORAGE"
    assert not list(capped.emu.state.data_dir.rglob(".tmp-*"))
    assert (await capped.chunk(sid, 0, b"x" * 1000))[0] == 200


async def test_expired_session_chunks_are_deleted(api: Api, emu: RunningEmulator) -> None:
    await api.control("PATCH", "/config", {"session_ttl_seconds": 60})
    sid = (await api.start(6, 2))["sessionId"]
    assert (await api.chunk(sid, 0, b"abc"))[0] == 200
    folder = emu.state.store.session_dir(sid)
    assert folder.exists()
    await api.advance(61)
    assert not folder.exists()
    assert (await api.control("GET", f"/sessions/{sid}"))["chunks"] == {}
    assert (await api.control("GET", "/counters"))["sessions_swept"] == 1


async def test_failed_import_bytes_are_deleted(api: Api, emu: RunningEmulator) -> None:
    model_id, _ = await api.upload_model(b"not an archive" * 100)
    assert not emu.state.store.model_path(model_id).exists()
    info = await api.control("GET", f"/models/{model_id}")
    assert (info["path"], info["discarded"]) == (None, True)


async def test_restart_removes_leftovers(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    config = EmulatorConfig(api_key=KEY, data_dir=tmp_path)
    async with run_emulator(config) as emu:
        api = Api(emu, http)
        open_sid = (await api.start(6, 2))["sessionId"]
        assert (await api.chunk(open_sid, 0, b"abc"))[0] == 200
        store = emu.state.store
        stray_upload = store.session_dir(open_sid) / ".tmp-0123"
        stray_upload.write_bytes(b"half a chunk")
        stray_assembly = store.models_dir / "cm-x.bin.tmp"
        stray_assembly.write_bytes(b"half a model")
        orphan = store.sessions_dir / "not-a-session"
        orphan.mkdir()
    async with run_emulator(config) as emu:
        assert not stray_upload.exists()
        assert not stray_assembly.exists()
        assert not orphan.exists()
        assert emu.state.store.chunk_path(open_sid, 0).read_bytes() == b"abc"  # still open


async def test_client_leaving_mid_upload_is_one_debug_line(
    api: Api, emu: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    sid = (await api.start(100_000))["sessionId"]
    caplog.set_level(logging.DEBUG)
    _, writer = await asyncio.open_connection(emu.host, emu.port)
    writer.write(
        f"POST /api/public/files/session/{sid} HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
        '--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nsome bytes'.encode()
    )
    await writer.drain()
    await until(lambda: emu.state.counters.concurrent_chunk_uploads == 1)
    writer.close()
    await writer.wait_closed()
    await until(lambda: emu.state.counters.concurrent_chunk_uploads == 0)  # the handler ended
    assert emu.state.counters.client_disconnects == 1
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == []
    ours = [r for r in caplog.records if r.name == "kore_models.emulator"]
    assert len(ours) == 1
    assert ours[0].levelno == logging.DEBUG
    assert "client left during POST" in ours[0].getMessage()
    assert not list(emu.state.data_dir.rglob(".tmp-*"))
