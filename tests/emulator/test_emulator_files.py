"""Contract tests: file session routes (start, chunk, complete), auth and validation."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator
from tests.support.emulator_api import KEY, Api, make_tar

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"
ISO_MS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def _walk(root: Path) -> list[Path]:
    return list(root.rglob("*"))


def _inside(path: str, root: str) -> bool:
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def _err(body: Any) -> dict[str, Any]:
    assert set(body) == {"errors"}
    item = body["errors"][0]
    assert isinstance(item["msg"], str)
    assert isinstance(item["code"], str)
    return dict(item)


async def test_start_shape(api: Api) -> None:
    doc = await api.start(1100)
    assert set(doc) == {"sessionId", "expirationDate", "modelId"}
    assert re.fullmatch(UUID, doc["sessionId"])
    assert re.fullmatch("cm-" + UUID, doc["modelId"])
    assert re.fullmatch(ISO_MS, doc["expirationDate"])


async def test_start_general_context_has_no_model(api: Api) -> None:
    body = {"fileContext": "bulkImport", "totalChunks": 1, "fileExtension": "jpg",
            "fileName": "a.jpg", "fileSize": 3}  # fmt: skip
    status, doc, _ = await api.post("/files/session/start", json=body)
    assert status == 200
    assert set(doc) == {"sessionId", "expirationDate"}
    assert (await api.chunk(doc["sessionId"], 0, b"abc"))[0] == 200
    status, done, _ = await api.complete(doc["sessionId"])
    assert status == 200
    assert re.fullmatch(r"[0-9a-f]{24}", done["fileId"])
    assert "/api/getMediaStream/orgFiles/f-" in done["url"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"fileContext": None}, "fileContext"),
        ({"totalChunks": 0}, "totalChunks"),
        ({"totalChunks": "2"}, "totalChunks"),
        ({"fileExtension": "exe"}, "fileExtension"),
        ({"fileName": ""}, "fileName"),
        ({"fileSize": 0}, "fileSize"),
        ({"fileSize": "10"}, "fileSize"),
        ({"isAdapter": "maybe"}, "isAdapter"),
    ],
)
async def test_start_validation(api: Api, patch: dict[str, Any], field: str) -> None:
    body = {"fileContext": "model", "totalChunks": 1, "fileExtension": "tar",
            "fileName": "m.tar", "fileSize": 10, **patch}  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}
    status, doc, resp = await api.post("/files/session/start", json=body)
    assert status == 400
    assert _err(doc)["field"] == field
    assert resp.headers["x-request-id"]


async def test_start_accepts_string_is_adapter(api: Api) -> None:
    doc = await api.start(10, isAdapter="true")
    assert doc["modelId"].startswith("cm-")


async def test_start_rejects_bad_json(api: Api) -> None:
    status, doc, _ = await api.post("/files/session/start", data=b"{nope")
    assert status == 400
    assert _err(doc)["code"] == "INVALID_JSON"


@pytest.mark.parametrize("key", [None, "wrong", "kg-test-key-012345678"])
async def test_every_public_route_needs_key(api: Api, key: str | None) -> None:
    headers = {} if key is None else {"X-API-KEY": key}
    routes = [
        ("POST", "/files/session/start"),
        ("POST", "/files/session/abc"),
        ("POST", "/files/session/abc/complete"),
        ("POST", "/models/cm-x/export"),
        ("POST", "/models/cm-x/deploy?modelType=openSource"),
        ("POST", "/models/cm-x/undeploy"),
        ("GET", "/dock-status/ds-x"),
        ("GET", "/no/such/route"),
    ]
    for method, path in routes:
        async with api.http.request(method, api.base + path, headers=headers) as resp:
            assert resp.status == 401, path
            assert _err(await resp.json())["code"] == "UNAUTHORIZED"
            assert resp.headers["x-request-id"]


async def test_header_name_any_case_and_unknown_route(api: Api) -> None:
    status, doc, _ = await api.get("/nothing/here", headers={"X-Api-Key": KEY})
    assert status == 404
    assert _err(doc)["code"] == "NOT_FOUND"


async def test_chunk_and_complete_errors(api: Api, emu: RunningEmulator) -> None:
    status, doc, _ = await api.chunk("00000000-0000-4000-8000-000000000000", 0, b"x")
    assert status == 404
    assert _err(doc)["code"] == "SESSION_NOT_FOUND"
    assert (await api.complete("nope"))[0] == 404
    data = make_tar()
    sid = (await api.start(len(data), 3))["sessionId"]
    for bad in ("3", "-1", "x", ""):
        status, doc, _ = await api.chunk(sid, bad, b"abc")
        assert status == 400, bad
        assert _err(doc)["field"] == "chunkNumber"
    async with api.http.post(
        f"{api.base}/files/session/{sid}", headers=api.headers, data=aiohttp.FormData({"a": "b"})
    ) as resp:
        assert resp.status == 400
    third = len(data) // 3
    assert (await api.chunk(sid, 2, data[2 * third :]))[0] == 200
    status, doc, _ = await api.complete(sid)
    assert status == 400
    err = _err(doc)
    assert err["code"] == "MISSING_CHUNKS"
    assert err["missingChunks"] == [0, 1]
    assert (await api.chunk(sid, 0, data[:third]))[0] == 200
    assert (await api.chunk(sid, 1, data[third:2 * third] + b"extra"))[0] == 200  # fmt: skip
    status, doc, _ = await api.complete(sid)
    assert status == 400
    assert _err(doc)["code"] == "SIZE_MISMATCH"
    # a re-upload overwrites the chunk
    status, doc, _ = await api.chunk(sid, 1, data[third : 2 * third])
    assert doc == {"chunkNumber": "1", "sessionId": sid}
    status, doc, _ = await api.complete(sid)
    assert status == 200
    info = await api.control("GET", f"/models/{doc['modelId']}")
    assert info["size"] == len(data)
    assert (await api.complete(sid))[0] == 409
    status, doc, _ = await api.chunk(sid, 0, b"late")
    assert status == 409
    assert _err(doc)["code"] == "SESSION_COMPLETED"


async def test_expired_session_410(api: Api) -> None:
    sid = (await api.start(3))["sessionId"]
    await api.control("PATCH", "/config", {"session_ttl_seconds": 60})
    sid2 = (await api.start(3))["sessionId"]
    await api.advance(61)
    for s in (sid2,):
        status, doc, _ = await api.chunk(s, 0, b"abc")
        assert status == 410
        assert _err(doc)["code"] == "SESSION_EXPIRED"
        assert (await api.complete(s))[0] == 410
    assert (await api.chunk(sid, 0, b"abc"))[0] == 200  # 24 h TTL still valid


async def test_oversized_chunk_413(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    cfg = EmulatorConfig(api_key=KEY, data_dir=tmp_path, max_chunk_bytes=1000)
    async with run_emulator(cfg) as emu:
        api = Api(emu, http)
        sid = (await api.start(5000, 2))["sessionId"]
        status, doc, _ = await api.chunk(sid, 0, b"x" * 1001)
        assert status == 413
        assert _err(doc)["code"] == "CHUNK_TOO_LARGE"
        # a body far above the cap is refused from its Content-Length alone
        status, doc, _ = await api.chunk(sid, 0, b"x" * (3 << 20))
        assert status == 413
        assert (await api.chunk(sid, 0, b"x" * 1000))[0] == 200
        assert not any(p.name.startswith(".tmp-") for p in _walk(tmp_path))
        assert emu.state.counters.chunks_received == 1


async def test_path_traversal_file_name(api: Api, emu: RunningEmulator) -> None:
    data = make_tar()
    doc = await api.start(len(data), fileName="../../etc/passwd")
    assert (await api.chunk(doc["sessionId"], 0, data))[0] == 200
    assert (await api.complete(doc["sessionId"]))[0] == 200
    info = await api.control("GET", f"/models/{doc['modelId']}")
    assert info["fileName"] == "passwd"
    assert _inside(info["path"], str(emu.state.data_dir))
    session = await api.control("GET", f"/sessions/{doc['sessionId']}")
    assert session["completed"] is True


async def test_concurrent_uploads_of_same_chunk(api: Api, emu: RunningEmulator) -> None:
    size = 256 * 1024
    sid = (await api.start(size, 1))["sessionId"]
    payloads = [bytes([i]) * size for i in range(8)]
    results = await asyncio.gather(*(api.chunk(sid, 0, p) for p in payloads))
    assert all(r[0] == 200 for r in results)
    stored = emu.state.store.chunk_path(sid, 0).read_bytes()
    assert stored in payloads
    assert (await api.control("GET", f"/sessions/{sid}"))["chunks"] == {"0": size}
    counters = await api.control("GET", "/counters")
    assert counters["chunk_numbers_received"][sid] == [0] * 8
    assert counters["max_concurrent_chunk_uploads"] >= 2


async def test_out_of_order_multi_chunk(api: Api, emu: RunningEmulator) -> None:
    data = make_tar(bytes(range(256)) * 4000)
    doc = await api.start(len(data), 4)
    step = -(-len(data) // 4)
    for n in (3, 1, 0, 2):
        assert (await api.chunk(doc["sessionId"], n, data[n * step : (n + 1) * step]))[0] == 200
    assert (await api.complete(doc["sessionId"]))[0] == 200
    assert emu.state.store.model_path(doc["modelId"]).read_bytes() == data


def test_docs_curl_sequence(emu_url_and_tar: tuple[str, Path]) -> None:
    url, tar = emu_url_and_tar
    size = tar.stat().st_size
    start = subprocess.run(
        ["curl", "-s", "--location", f"{url}/api/public/files/session/start",
         "--header", f"x-api-key: {KEY}", "--header", "Content-Type: application/json",
         "--data", json.dumps({"fileContext": "model", "totalChunks": 1, "fileExtension": "tar",
                               "fileName": "sample-1.tar", "fileSize": size, "isAdapter": False})],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    doc = json.loads(start.stdout)
    chunk = subprocess.run(
        ["curl", "-s", "--location", f"{url}/api/public/files/session/{doc['sessionId']}",
         "--header", f"x-api-key: {KEY}", "--header", "Content-Type: application/json",
         "--form", f'file=@"{tar}"', "--form", 'chunkNumber="0"'],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    assert json.loads(chunk.stdout) == {"chunkNumber": "0", "sessionId": doc["sessionId"]}
    done = subprocess.run(
        ["curl", "-s", "--location", "--request", "POST",
         f"{url}/api/public/files/session/{doc['sessionId']}/complete",
         "--header", f"x-api-key: {KEY}"],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    body = json.loads(done.stdout)
    assert set(body) == {"dock-statusId", "modelId", "jobType", "action", "status"}
    assert body["modelId"] == doc["modelId"]
    assert (body["jobType"], body["action"], body["status"]) == ("MODELS", "IMPORT", "SUCCESS")


@pytest.fixture
def emu_url_and_tar(tmp_path: Path) -> Any:
    """A threaded emulator (the curl test is synchronous) plus a tar file on disk."""
    import threading

    tar = tmp_path / "sample-1.tar"
    tar.write_bytes(make_tar())
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    box: list[str] = []

    async def serve() -> None:
        cfg = EmulatorConfig(api_key=KEY, data_dir=tmp_path / "emu", job_seconds=0)
        async with run_emulator(cfg) as emu:
            box.append(emu.url)
            stop.append(asyncio.Event())
            ready.set()
            await stop[0].wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    assert ready.wait(10)
    yield box[0], tar
    loop.call_soon_threadsafe(stop[0].set)
    thread.join(10)
    loop.close()
