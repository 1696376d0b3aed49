"""The per-client Pacer: auto or pinned concurrency, and one rate bucket per process and rate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kore_models.transfer.pacing import Pacer, TokenBucket, process_bucket
from tests.support.tuning import run_virtual, virtual_clock


def test_auto_seeks_and_an_integer_pins() -> None:
    auto = Pacer(concurrency="auto", maximum=16)
    assert auto.controller.adaptive
    assert auto.controller.limit == 2
    assert auto.controller.config.maximum == 16
    pinned = Pacer(concurrency=6)
    assert not pinned.controller.adaptive
    assert pinned.controller.limit == 6


def test_clients_with_the_same_limit_rate_share_one_bucket() -> None:
    first, second = Pacer(limit_rate=7_000_001), Pacer(limit_rate=7_000_001)
    assert first.bucket is second.bucket is process_bucket(7_000_001)
    assert Pacer(limit_rate=7_000_002).bucket is not first.bucket
    assert Pacer().bucket is None
    assert Pacer().piece_size is None
    assert first.piece_size == 350_000


def test_throttle_paces_two_clients_as_one() -> None:
    async def main() -> float:
        clock = virtual_clock()
        bucket = TokenBucket(1e6, clock=clock)
        one, two = Pacer(bucket=bucket, clock=clock), Pacer(bucket=bucket, clock=clock)
        start = clock()

        async def move(pacer: Pacer) -> None:
            for _ in range(100):
                await pacer.throttle(50_000)

        await asyncio.gather(move(one), move(two))
        return clock() - start

    # 10 MB at 1 MB/s, less the 50 ms of burst
    assert run_virtual(main) == pytest.approx(9.95)


def test_a_pause_holds_the_client_and_cuts_its_controller() -> None:
    async def main() -> tuple[float, int]:
        clock = virtual_clock()
        pacer = Pacer(concurrency="auto", clock=clock)
        start = clock()
        pacer.pause(3.0, "Retry-After")
        await pacer.wait_until_open()
        async with pacer.slot() as ticket:
            ticket.add(1)
        return clock() - start, pacer.controller.limit

    waited, limit = run_virtual(main)
    assert waited == pytest.approx(3.0)
    assert limit == 1


def test_a_paced_download_body_is_capped_and_counted() -> None:
    async def main() -> tuple[float, int, list[int]]:
        clock = virtual_clock()
        pacer = Pacer(bucket=TokenBucket(1e6, clock=clock), clock=clock)

        async def body() -> AsyncIterator[bytes]:
            for _ in range(40):
                yield b"x" * 50_000

        start = clock()
        async with pacer.slot() as ticket:
            sizes = [len(block) async for block in pacer.paced(body(), ticket)]
            counted = ticket.bytes
        return clock() - start, counted, sizes

    seconds, counted, sizes = run_virtual(main)
    assert sizes == [50_000] * 40
    assert counted == 2_000_000
    assert seconds == pytest.approx(1.95)  # 2 MB at 1 MB/s, less the 50 ms burst
