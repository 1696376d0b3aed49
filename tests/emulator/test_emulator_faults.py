"""Contract tests: control API, scripted/random faults, rate limits, pacing, counters."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from kore_models.emulator import RunningEmulator
from tests.support.emulator_api import Api, make_tar

RATE_MSG = "You've exceeded the per-minute rate limit. Please wait for sometime before retrying."


async def test_config_get_patch_masks_key(api: Api) -> None:
    cfg = await api.control("GET", "/config")
    assert "kg-test-key-0123456789" not in str(cfg)
    new = await api.control("PATCH", "/config", {"latency_ms": 5, "failure_kinds": ["503"]})
    assert (new["latency_ms"], new["failure_kinds"]) == (5, ["503"])
    async with api.http.patch(f"{api.emu.url}/_emulator/config", json={"api_key": "x"}) as r:
        assert r.status == 400
    async with api.http.patch(f"{api.emu.url}/_emulator/config", json={"failure_rate": 2}) as r:
        assert r.status == 400


@pytest.mark.parametrize("code", [500, 502, 503])
async def test_scripted_status_faults(api: Api, code: int) -> None:
    sid = (await api.start(3))["sessionId"]
    await api.control("POST", "/script", {"faults": [{"route": "chunk", "action": str(code)}]})
    status, doc, resp = await api.chunk(sid, 0, b"abc")
    assert status == code
    assert doc["errors"][0]["code"]
    assert resp.headers["x-request-id"]
    assert (await api.chunk(sid, 0, b"abc"))[0] == 200  # the entry was consumed
    counters = await api.control("GET", "/counters")
    assert counters["faults_injected"] == 1
    assert counters["responses_by_status"][str(code)] == 1


async def test_scripted_429_has_retry_after(api: Api) -> None:
    await api.control("POST", "/script", {"faults": [{"route": "start", "action": "429",
                                                      "retry_after": 3}]})  # fmt: skip
    status, doc, resp = await api.post("/files/session/start", json={})
    assert status == 429
    assert resp.headers["Retry-After"] == "3"
    assert doc["errors"][0]["msg"] == RATE_MSG


async def test_script_fifo_and_clear(api: Api) -> None:
    faults = [{"route": "any", "action": "503"}, {"route": "dock_status", "action": "500"}]
    assert (await api.control("POST", "/script", {"faults": faults}))["queued"] == 2
    assert (await api.get("/dock-status/ds-x"))[0] == 503
    assert len((await api.control("GET", "/script"))["faults"]) == 1
    await api.control("DELETE", "/script")
    assert (await api.get("/dock-status/ds-x"))[0] == 404


async def test_reset_mid_body(api: Api, emu: RunningEmulator) -> None:
    sid = (await api.start(1 << 20))["sessionId"]
    await api.control("POST", "/script", {"faults": [{"route": "chunk", "action": "reset",
                                                      "after_bytes": 1000}]})  # fmt: skip
    with pytest.raises(aiohttp.ClientError):
        await api.chunk(sid, 0, b"z" * (1 << 20))
    assert emu.state.counters.chunks_received == 0
    assert (await api.chunk(sid, 0, b"z" * (1 << 20)))[0] == 200


async def test_stall_then_503_and_client_timeout(api: Api) -> None:
    await api.control("POST", "/script", {"faults": [{"route": "dock_status", "action": "stall",
                                                      "stall_seconds": 0.3}]})  # fmt: skip
    t0 = time.monotonic()
    assert (await api.get("/dock-status/ds-x"))[0] == 503
    assert time.monotonic() - t0 >= 0.3
    await api.control("POST", "/script", {"faults": [{"action": "stall", "stall_seconds": 30}]})
    with pytest.raises(asyncio.TimeoutError):
        await api.get("/dock-status/ds-x", headers=api.headers,
                      timeout=aiohttp.ClientTimeout(sock_read=0.2))  # fmt: skip


async def test_download_reset_mid_response(api: Api) -> None:
    data = make_tar(b"q" * 300_000)
    model_id = await api.ready_model(data)
    job = (await api.post(f"/models/{model_id}/export"))[1]
    await api.advance(10)
    url = (await api.get(f"/dock-status/{job['_id']}"))[1]["response"]["downloadUrl"].strip()
    await api.control("POST", "/script", {"faults": [{"route": "download", "action": "reset",
                                                      "after_bytes": 1000}]})  # fmt: skip
    with pytest.raises(aiohttp.ClientError):
        async with api.http.get(url) as resp:
            await resp.read()
    async with api.http.get(url) as resp:
        assert await resp.read() == data


async def test_random_failures_are_seeded(api: Api) -> None:
    await api.control("PATCH", "/config", {"failure_rate": 0.5, "failure_kinds": ["500", "503"]})
    statuses = [(await api.get("/dock-status/ds-x"))[0] for _ in range(30)]
    assert set(statuses) == {404, 500, 503}
    await api.control("PATCH", "/config", {"failure_rate": 0})
    assert (await api.get("/dock-status/ds-x"))[0] == 404


async def test_rate_limit_per_key(api: Api) -> None:
    await api.control("PATCH", "/config", {"rate_limit_per_minute": 3})
    statuses = [(await api.get("/dock-status/ds-x"))[0] for _ in range(3)]
    assert statuses == [404, 404, 404]
    status, doc, resp = await api.get("/dock-status/ds-x")
    assert status == 429
    assert doc["errors"][0]["msg"] == RATE_MSG
    assert int(resp.headers["Retry-After"]) >= 1
    await api.advance(61)
    assert (await api.get("/dock-status/ds-x"))[0] == 404


async def test_dock_status_rate_limit_per_job(api: Api) -> None:
    await api.control("PATCH", "/config", {"dock_status_rate_limit_per_minute": 2})
    assert [(await api.get("/dock-status/ds-a"))[0] for _ in range(3)] == [404, 404, 429]
    assert (await api.get("/dock-status/ds-b"))[0] == 404


async def test_latency_and_throughput(api: Api) -> None:
    sid = (await api.start(100_000))["sessionId"]
    await api.control(
        "PATCH", "/config", {"latency_ms": 100, "throughput_bytes_per_second": 400_000}
    )
    t0 = time.monotonic()
    assert (await api.chunk(sid, 0, b"t" * 100_000))[0] == 200
    assert time.monotonic() - t0 >= 0.3


async def test_counters_and_max_concurrency(api: Api) -> None:
    await api.control("POST", "/counters/reset")
    data = b"c" * 200_000
    sid = (await api.start(len(data) * 4, 4))["sessionId"]
    await api.control("PATCH", "/config", {"throughput_bytes_per_second": 2_000_000})
    results = await asyncio.gather(*(api.chunk(sid, n, data) for n in range(4)))
    assert [r[0] for r in results] == [200] * 4
    c = await api.control("GET", "/counters")
    assert c["requests"]["start"] == 1
    assert c["requests"]["chunk"] == 4
    assert c["chunks_received"] == 4
    assert c["bytes_received"] == 4 * len(data)
    assert sorted(c["chunk_numbers_received"][sid]) == [0, 1, 2, 3]
    assert c["max_concurrent_chunk_uploads"] >= 2
    assert c["concurrent_chunk_uploads"] == 0
    assert c["responses_by_status"]["200"] == 5
    reset = await api.control("POST", "/counters/reset")
    assert reset["chunks_received"] == 0


async def test_clock_and_session_view(api: Api) -> None:
    before = await api.control("GET", "/clock")
    after = await api.control("POST", "/clock", {"advance_seconds": 100})
    assert after["offset_seconds"] == before["offset_seconds"] + 100
    async with api.http.post(f"{api.emu.url}/_emulator/clock", json={"advance_seconds": -1}) as r:
        assert r.status == 400
    sid = (await api.start(3))["sessionId"]
    view = await api.control("GET", f"/sessions/{sid}")
    assert view["chunks"] == {}
    assert view["completed"] is False
    async with api.http.get(f"{api.emu.url}/_emulator/sessions/nope") as r:
        assert r.status == 404
