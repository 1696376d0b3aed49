"""Network profiles: per-connection and total byte caps (token buckets), chunks in flight + 429."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from kore_models.emulator import RunningEmulator
from kore_models.emulator.shaping import BURST_SECONDS, TokenBucket
from tests.support.emulator_api import KEY, Api, make_tar, until


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _virtual_transfer(
    clock: FakeClock, streams: list[list[TokenBucket]], total_bytes: int, block: int
) -> float:
    """Simulate streams moving total_bytes (split evenly) block by block, as Pacer does.

    Each step the stream whose turn comes first moves a block, then waits as long as the
    tightest of its buckets says. Returns the virtual time at which the last stream finishes.
    """
    per_stream = total_bytes // len(streams)
    ready_at = [0.0] * len(streams)
    moved = [0] * len(streams)
    while True:
        active = [i for i in range(len(streams)) if moved[i] < per_stream]
        if not active:
            return max(ready_at)
        i = min(active, key=lambda k: ready_at[k])
        clock.now = ready_at[i]
        ready_at[i] += max(bucket.reserve(block) for bucket in streams[i])
        moved[i] += block


def test_bucket_holds_its_rate_from_a_standing_start() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1_000_000, clock)
    waits = [bucket.reserve(10_000) for _ in range(300)]  # 3 MB asked for at once
    burst = 1_000_000 * BURST_SECONDS
    assert waits[-1] == pytest.approx((3_000_000 - burst) / 1e6)  # the last waits for all
    assert waits[:5] == [0.0] * 5  # the burst passes at once
    clock.now = 10.0  # after a long idle the bucket refills only up to its burst
    assert bucket.reserve(int(burst)) == 0.0
    assert bucket.reserve(100_000) == pytest.approx(0.1)


def test_rate_change_keeps_queued_debt() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100_000, clock)
    assert bucket.reserve(105_000) == pytest.approx(1.0)  # 5 KB burst, then one second of debt
    bucket.rate = 200_000
    assert bucket.reserve(0) == pytest.approx(0.5)  # the same debt, paid at the new rate
    with pytest.raises(ValueError, match="positive"):
        bucket.rate = 0


def test_eight_ranges_are_eight_times_one_stream_under_per_connection_caps() -> None:
    """The WAN profile: 20 MB/s per connection, no total cap."""
    size, block, rate = 1_600_000_000, 1_000_000, 20e6  # large: each stream's burst is noise
    clock = FakeClock()
    one = _virtual_transfer(clock, [[TokenBucket(rate, clock)]], size, block)
    clock = FakeClock()
    eight = _virtual_transfer(clock, [[TokenBucket(rate, clock)] for _ in range(8)], size, block)
    assert one == pytest.approx(size / rate, rel=0.01)
    assert one / eight == pytest.approx(8, rel=0.02)


def test_total_cap_is_shared_by_all_connections() -> None:
    """The capped-uplink profile: 20 MB/s per connection, 60 MB/s in total."""
    size, block = 120_000_000, 1_000_000
    clock = FakeClock()
    total = TokenBucket(60e6, clock)
    streams = [[TokenBucket(20e6, clock), total] for _ in range(8)]
    eight = _virtual_transfer(clock, streams, size, block)
    assert eight == pytest.approx(size / 60e6, rel=0.03)


async def _elapsed(work: Callable[[], Awaitable[object]]) -> float:
    t0 = time.monotonic()
    await work()
    return time.monotonic() - t0


async def test_total_cap_slows_concurrent_uploads(api: Api) -> None:
    size, streams, rate = 150_000, 4, 600_000
    sid = (await api.start(size * streams, streams))["sessionId"]
    await api.control("PATCH", "/config", {"total_throughput_bytes_per_second": rate})

    async def upload() -> None:
        results = await asyncio.gather(*(api.chunk(sid, n, b"u" * size) for n in range(streams)))
        assert [r[0] for r in results] == [200] * streams

    elapsed = await _elapsed(upload)
    assert elapsed >= (size * streams - rate * BURST_SECONDS) / rate * 0.95  # lower bound only


@pytest.mark.parametrize(
    "cap", ["throughput_bytes_per_second", "total_throughput_bytes_per_second"]
)
async def test_download_caps(api: Api, cap: str) -> None:
    data = make_tar(bytes(range(256)) * 1200)  # ~300 KB
    model_id = await api.ready_model(data)
    job = (await api.post(f"/models/{model_id}/export"))[1]
    await api.advance(10)
    url = (await api.get(f"/dock-status/{job['_id']}"))[1]["response"]["downloadUrl"].strip()
    rate = 300_000
    await api.control("PATCH", "/config", {cap: rate})
    quarter = len(data) // 4
    got: dict[int, bytes] = {}

    async def ranged(i: int) -> None:
        end = len(data) - 1 if i == 3 else (i + 1) * quarter - 1
        async with api.http.get(url, headers={"Range": f"bytes={i * quarter}-{end}"}) as resp:
            assert resp.status == 206
            got[i] = await resp.read()

    async def one_stream() -> None:
        async with api.http.get(url) as resp:
            assert await resp.read() == data

    single = await _elapsed(one_stream)
    assert single >= (len(data) - rate * BURST_SECONDS) / rate * 0.95
    if cap == "total_throughput_bytes_per_second":  # four ranges share the one total cap
        four = await _elapsed(lambda: asyncio.gather(*(ranged(i) for i in range(4))))
        assert four >= (len(data) - rate * BURST_SECONDS) / rate * 0.95
        assert b"".join(got[i] for i in range(4)) == data


async def test_chunks_in_flight_limit_answers_429(api: Api, emu: RunningEmulator) -> None:
    await api.control("PATCH", "/config", {"max_chunks_in_flight": 2, "retry_after_seconds": 3})
    sid = (await api.start(30, 3))["sessionId"]
    held = []
    for n in range(2):  # two uploads that sent their head and part of their body, then wait
        reader, writer = await asyncio.open_connection(emu.host, emu.port)
        body = (
            f'--b\r\nContent-Disposition: form-data; name="chunkNumber"\r\n\r\n{n}\r\n'
            '--b\r\nContent-Disposition: form-data; name="file"\r\n\r\n0123456789\r\n--b--\r\n'
        ).encode()
        writer.write(
            f"POST /api/public/files/session/{sid} HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + body[:20]
        )
        held.append((reader, writer, body[20:]))
    await until(lambda: emu.state.counters.concurrent_chunk_uploads == 2)
    status, doc, resp = await api.chunk(sid, 2, b"x" * 10)
    assert status == 429
    assert resp.headers["Retry-After"] == "3"
    assert doc["errors"][0]["code"] == "TOO_MANY_CHUNKS_IN_FLIGHT"
    for reader, writer, rest in held:
        writer.write(rest)
        assert (await reader.read()).startswith(b"HTTP/1.1 200")
        writer.close()
        await writer.wait_closed()
    assert (await api.chunk(sid, 2, b"x" * 10))[0] == 200
    counters = await api.control("GET", "/counters")
    assert counters["in_flight_limit_429s"] == 1
    assert counters["max_concurrent_chunk_uploads"] == 2


async def test_profiles_change_at_run_time(api: Api, emu: RunningEmulator) -> None:
    profile = {"latency_ms": 50, "throughput_bytes_per_second": 20e6,
               "total_throughput_bytes_per_second": 60e6, "max_chunks_in_flight": 4}  # fmt: skip
    shown = await api.control("PATCH", "/config", profile)
    assert {k: shown[k] for k in profile} == profile
    bucket = emu.state.total_bucket
    assert bucket is not None
    assert bucket.rate == 60e6
    await api.control("PATCH", "/config", {"total_throughput_bytes_per_second": 30e6})
    assert emu.state.total_bucket is bucket  # same bucket, new rate
    assert bucket.rate == 30e6
    await api.control("PATCH", "/config", {"total_throughput_bytes_per_second": None})
    assert emu.state.total_bucket is None
    async with api.http.patch(
        f"{emu.url}/_emulator/config", json={"max_chunks_in_flight": 0}
    ) as resp:
        assert resp.status == 400
