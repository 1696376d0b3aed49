"""Contract tests: import jobs, export + download, deploy/undeploy, dock status, persistence."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator
from tests.support.emulator_api import KEY, Api, make_tar

DEPLOY_BODY: dict[str, Any] = {
    "name": "gpt2",
    "isDeployedPreviously": True,
    "hyperParameters": {"temperature": 1, "maxTokens": 512, "topP": 1, "topK": 50,
                        "stopSequence": []},
    "scalingParameters": {"maxBatchSize": 10, "minReplicas": 1, "maxReplicas": 2,
                          "scaleUpDelay": 30, "scaleDownDelay": 600},
    "deviceType": "g5.xlarge",
    "optimizationInfo": {"optimizationType": "", "quantizationType": ""},
}  # fmt: skip


async def test_import_job_progress_and_dock_status(api: Api) -> None:
    model_id, job_id = await api.upload_model(make_tar())
    status, doc, _ = await api.get(f"/dock-status/{job_id}")
    assert status == 200
    assert doc == {"_id": job_id, "modelId": model_id, "jobType": "MODELS", "action": "IMPORT",
                   "status": "IN_PROGRESS", "percentageComplete": 0}  # fmt: skip
    await api.advance(2.5)
    doc = (await api.get(f"/dock-status/{job_id}"))[1]
    assert doc["status"] == "IN_PROGRESS"
    assert 40 <= doc["percentageComplete"] <= 60
    await api.advance(3)
    doc = (await api.get(f"/dock-status/{job_id}"))[1]
    assert (doc["status"], doc["percentageComplete"]) == ("SUCCESS", 100)
    info = await api.control("GET", f"/models/{model_id}")
    assert info["state"] == "ready"
    assert (await api.get("/dock-status/ds-unknown"))[0] == 404


async def test_non_archive_import_fails(api: Api) -> None:
    model_id, job_id = await api.upload_model(b"this is not an archive" * 100)
    await api.advance(10)
    doc = (await api.get(f"/dock-status/{job_id}"))[1]
    assert doc["status"] == "FAILED"
    assert "not a valid tar or zip archive (not a readable tar" in doc["message"]
    assert (await api.control("GET", f"/models/{model_id}"))["state"] == "failed"
    assert (await api.post(f"/models/{model_id}/export"))[0] == 409
    assert (await api.post(f"/models/{model_id}/deploy?modelType=openSource",
                           json=DEPLOY_BODY))[0] == 409  # fmt: skip


async def test_export_download_with_ranges(api: Api, emu: RunningEmulator) -> None:
    data = make_tar(bytes(range(256)) * 2000)
    model_id = await api.ready_model(data)
    assert (await api.post("/models/cm-nope/export"))[0] == 404
    status, doc, _ = await api.post(f"/models/{model_id}/export")
    assert status == 200
    expected = {"_id": doc["_id"], "modelId": model_id, "jobType": "MODELS",
                "action": "EXPORT", "status": "IN_PROGRESS", "percentageComplete": 0}  # fmt: skip
    assert doc == expected
    job_id = doc["_id"]
    await api.advance(10)
    doc = (await api.get(f"/dock-status/{job_id}"))[1]
    assert doc["status"] == "SUCCESS"
    raw_url = doc["response"]["downloadUrl"]
    assert raw_url.startswith(" http://")  # the docs' leading space
    url = raw_url.strip()
    http = api.http
    async with http.get(url) as resp:  # no API key needed
        assert resp.status == 200
        assert resp.headers["Accept-Ranges"] == "bytes"
        body = await resp.read()
        assert body == data
        assert resp.headers["x-emulator-sha256"] == hashlib.sha256(data).hexdigest()
    async with http.get(url, headers={"Range": "bytes=10-19"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
        assert await resp.read() == data[10:20]
    async with http.get(url, headers={"Range": "bytes=100-"}) as resp:
        assert resp.status == 206
        assert await resp.read() == data[100:]
    async with http.get(url, headers={"Range": "bytes=-5"}) as resp:
        assert await resp.read() == data[-5:]
    async with http.get(url, headers={"Range": f"bytes=10-{len(data) + 99}"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 10-{len(data) - 1}/{len(data)}"
    for unsatisfiable in (f"bytes={len(data)}-", "bytes=-0", "bytes=9-3", "bytes=a-b", "items=1-2"):
        async with http.get(url, headers={"Range": unsatisfiable}) as resp:
            assert resp.status == 416, unsatisfiable
            assert resp.headers["Content-Range"] == f"bytes */{len(data)}"
    bad = url.split("?token=")[0] + "?token=wrong"
    async with http.get(bad) as resp:
        assert resp.status == 403
        assert (await resp.json())["errors"][0]["code"] == "INVALID_TOKEN"
    async with http.get(f"{emu.url}/api/v1/account/exports/ds-nope?token=x") as resp:
        assert resp.status == 404


async def test_download_not_ready_and_other_host(api: Api, emu: RunningEmulator) -> None:
    model_id = await api.ready_model()
    other = f"http://localhost:{emu.port}"
    await api.control("PATCH", "/config", {"download_base_url": other})
    job = (await api.post(f"/models/{model_id}/export"))[1]
    await api.advance(10)
    url = (await api.get(f"/dock-status/{job['_id']}"))[1]["response"]["downloadUrl"].strip()
    assert url.startswith(other + "/api/v1/account/exports/")
    async with api.http.get(url) as resp:
        assert resp.status == 200
    job2 = (await api.post(f"/models/{model_id}/export"))[1]
    async with api.http.get(f"{emu.url}/api/v1/account/exports/{job2['_id']}?token=x") as resp:
        assert resp.status in (403, 409)


async def test_deploy_undeploy_lifecycle(api: Api) -> None:
    model_id = await api.ready_model()
    assert (await api.post(f"/models/{model_id}/undeploy"))[0] == 409
    path = f"/models/{model_id}/deploy?modelType=openSource"
    status, doc, _ = await api.post(path, json=DEPLOY_BODY)
    assert status == 200
    assert set(doc) == {"dock-statusId", "modelId", "jobType", "action", "status"}
    assert (doc["action"], doc["status"]) == ("DEPLOY", "IN_PROGRESS")
    status, err, _ = await api.post(path, json=DEPLOY_BODY)
    assert status == 409
    assert err["errors"][0]["code"] == "MODEL_BUSY"
    await api.advance(10)
    assert (await api.control("GET", f"/models/{model_id}"))["state"] == "deployed"
    redeploy = {**DEPLOY_BODY, "isDeployedPreviouly": True}
    del redeploy["isDeployedPreviously"]
    assert (await api.post(f"/models/{model_id}/deploy?modelType=fineTune", json=redeploy))[
        0
    ] == 200
    await api.advance(10)
    status, doc, _ = await api.post(f"/models/{model_id}/undeploy", json={})
    assert status == 200
    assert doc["action"] == "UNDEPLOY"
    await api.advance(10)
    job = (await api.get(f"/dock-status/{doc['dock-statusId']}"))[1]
    assert job["status"] == "SUCCESS"
    assert (await api.control("GET", f"/models/{model_id}"))["state"] == "ready"
    assert (await api.post("/models/cm-nope/undeploy"))[0] == 404
    assert (await api.post("/models/cm-nope/deploy?modelType=openSource", json=DEPLOY_BODY))[
        0
    ] == 404


def _without(path: str) -> dict[str, Any]:
    body = copy.deepcopy(DEPLOY_BODY)
    *parents, leaf = path.split(".")
    target = body
    for p in parents:
        target = target[p]
    del target[leaf]
    return body


def _with(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(DEPLOY_BODY)
    *parents, leaf = path.split(".")
    target = body
    for p in parents:
        target = target[p]
    target[leaf] = value
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_without("name"), "name"),
        (_without("deviceType"), "deviceType"),
        (_with("deviceType", "p4d.24xlarge"), "deviceType"),
        (_without("hyperParameters"), "hyperParameters"),
        (_with("hyperParameters.temperature", 2.5), "hyperParameters.temperature"),
        (_without("hyperParameters.temperature"), "hyperParameters.temperature"),
        (_with("hyperParameters.maxTokens", 513), "hyperParameters.maxTokens"),
        (_with("hyperParameters.maxTokens", 1.5), "hyperParameters.maxTokens"),
        (_with("hyperParameters.topP", -0.1), "hyperParameters.topP"),
        (_with("hyperParameters.topK", 0), "hyperParameters.topK"),
        (_with("hyperParameters.stopSequence", "x"), "hyperParameters.stopSequence"),
        (_with("scalingParameters.maxBatchSize", 257), "scalingParameters.maxBatchSize"),
        (_with("scalingParameters.minReplicas", 11), "scalingParameters.minReplicas"),
        (_with("scalingParameters.maxReplicas", 51), "scalingParameters.maxReplicas"),
        (_with("scalingParameters.scaleUpDelay", 0), "scalingParameters.scaleUpDelay"),
        (_with("scalingParameters.scaleDownDelay", 49), "scalingParameters.scaleDownDelay"),
        (
            _with("optimizationInfo.optimizationType", "tensorrt"),
            "optimizationInfo.optimizationType",
        ),
        (_with("optimizationInfo.quantizationType", "int4"), "optimizationInfo.quantizationType"),
        (_with("isDeployedPreviously", "yes"), "isDeployedPreviously"),
        (_with("scalingParameters.minReplicas", 3), "scalingParameters"),  # above maxReplicas 2
        (_with("hyperParameters.topK", True), "hyperParameters.topK"),
        (_with("name", "  "), "name"),
        ([DEPLOY_BODY], ""),
    ],
)
async def test_deploy_validation(api: Api, body: Any, field: str) -> None:
    status, doc, _ = await api.post("/models/cm-any/deploy?modelType=openSource", json=body)
    assert status == 400
    assert field in [e["field"] for e in doc["errors"]]


async def test_deploy_model_type_required(api: Api) -> None:
    for query in ("", "?modelType=closed"):
        status, doc, _ = await api.post(f"/models/cm-x/deploy{query}", json=DEPLOY_BODY)
        assert status == 400
        assert doc["errors"][0]["field"] == "modelType"
    assert (await api.post("/models/cm-x/deploy?modelType=openSource", data=b""))[0] == 400


async def test_restart_keeps_everything(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    cfg = EmulatorConfig(api_key=KEY, data_dir=tmp_path / "d", job_seconds=0)
    data = make_tar()
    async with run_emulator(cfg) as emu:
        api = Api(emu, http)
        model_id, job_id = await api.upload_model(data)
        pending = await api.start(len(data), 2)
        assert (await api.chunk(pending["sessionId"], 1, data[len(data) // 2 :]))[0] == 200
    async with run_emulator(cfg) as emu:
        api = Api(emu, http)
        doc = (await api.get(f"/dock-status/{job_id}"))[1]
        assert doc["status"] == "SUCCESS"
        info = await api.control("GET", f"/models/{model_id}")
        assert info["sha256"] == hashlib.sha256(data).hexdigest()
        sid = pending["sessionId"]
        assert (await api.chunk(sid, 0, data[: len(data) // 2]))[0] == 200
        status, done, _ = await api.complete(sid)
        assert status == 200
        assert done["modelId"] == pending["modelId"]
        assert emu.state.store.model_path(done["modelId"]).read_bytes() == data


async def test_discard_storage(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    cfg = EmulatorConfig(api_key=KEY, data_dir=tmp_path, storage="discard", job_seconds=0)
    async with run_emulator(cfg) as emu:
        api = Api(emu, http)
        model_id, job_id = await api.upload_model(b"not an archive but discarded", chunks=2)
        assert (await api.get(f"/dock-status/{job_id}"))[1]["status"] == "SUCCESS"
        status, doc, _ = await api.post(f"/models/{model_id}/export")
        assert status == 409
        assert doc["errors"][0]["code"] == "MODEL_BYTES_DISCARDED"
        assert list((tmp_path / "models").iterdir()) == []
        assert emu.state.counters.bytes_received == 28


async def test_corrupt_model_bytes_for_verify_tests(api: Api, emu: RunningEmulator) -> None:
    data = make_tar(bytes(range(256)) * 40)
    model_id = await api.ready_model(data)
    original = hashlib.sha256(data).hexdigest()
    flipped = await api.control("POST", f"/models/{model_id}/corrupt", {"offset": 700})
    assert (flipped["offset"], flipped["before"], flipped["after"]) == (
        700,
        data[700],
        data[700] ^ 0xFF,
    )
    stored = emu.state.store.model_path(model_id).read_bytes()
    assert [i for i in range(len(data)) if stored[i] != data[i]] == [700]
    assert flipped["currentSha256"] == hashlib.sha256(stored).hexdigest() != original
    assert (await api.control("GET", f"/models/{model_id}"))["sha256"] == original  # recorded
    job = (await api.post(f"/models/{model_id}/export"))[1]
    await api.advance(10)
    url = (await api.get(f"/dock-status/{job['_id']}"))[1]["response"]["downloadUrl"].strip()
    async with api.http.get(url) as resp:
        assert resp.headers["x-emulator-sha256"] == original
        assert hashlib.sha256(await resp.read()).hexdigest() != original
    default = await api.control("POST", f"/models/{model_id}/corrupt")  # the middle byte
    assert default["offset"] == len(data) // 2
    for bad in ({"offset": len(data)}, {"offset": -1}, {"offset": "3"}):
        async with api.http.post(
            f"{emu.url}/_emulator/models/{model_id}/corrupt", json=bad
        ) as resp:
            assert resp.status == 400, bad
    async with api.http.post(f"{emu.url}/_emulator/models/cm-nope/corrupt") as resp:
        assert resp.status == 404
