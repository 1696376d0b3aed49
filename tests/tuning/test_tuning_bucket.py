"""The token bucket: the rate held within 5 % over every 10 s window after the first 2 s,
for one caller or many, with refunds on cancel; on virtual time, so exact and instant."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kore_models.transfer.pacing import TokenBucket
from tests.support.tuning import run_virtual, virtual_clock


def worst_windows(
    sends: list[tuple[float, int]], rate: float, start: float, end: float
) -> tuple[float, float]:
    """Lowest and highest bytes/rate over every 10 s window in [start, end] (0.05 s steps)."""
    times = [when for when, _ in sends]
    totals = list(itertools.accumulate((n for _, n in sends), initial=0))
    low, high = float("inf"), 0.0
    t = start
    while t + 10.0 <= end + 1e-9:
        moved = totals[bisect.bisect_left(times, t + 10.0)] - totals[bisect.bisect_left(times, t)]
        low, high = min(low, moved / (rate * 10)), max(high, moved / (rate * 10))
        t += 0.05
    return low, high


def pump(rate: float, workers: int, pieces: list[int], seconds: float) -> list[tuple[float, int]]:
    """``workers`` tasks take pieces round-robin as fast as the bucket lets them."""

    async def main() -> list[tuple[float, int]]:
        clock = virtual_clock()
        bucket = TokenBucket(rate, clock=clock)
        origin = clock()
        sends: list[tuple[float, int]] = []

        async def worker(index: int) -> None:
            step = index
            while clock() - origin < seconds:
                size = pieces[step % len(pieces)]
                step += workers
                await bucket.acquire(size)
                sends.append((clock() - origin, size))

        await asyncio.gather(*(worker(i) for i in range(workers)))
        return sends

    return run_virtual(main)


@pytest.mark.parametrize(
    ("rate", "workers", "piece"),
    [(50e6, 1, 1024 * 1024), (50e6, 16, 256 * 1024), (100e3, 4, 4096), (1e9, 32, 1024 * 1024)],
)
def test_rate_is_held_within_5_percent_over_every_10s_window(
    rate: float, workers: int, piece: int
) -> None:
    sends = pump(rate, workers, [piece], seconds=30.0)
    low, high = worst_windows(sends, rate, 2.0, 29.0)
    assert 0.95 <= low <= high <= 1.05, (low, high)


@settings(max_examples=15, deadline=None)
@given(
    rate=st.floats(min_value=10e3, max_value=3e8),
    workers=st.integers(min_value=1, max_value=24),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_any_mix_of_piece_sizes_holds_the_rate(rate: float, workers: int, seed: int) -> None:
    bucket = TokenBucket(rate)
    rng = random.Random(seed)
    pieces = [rng.randint(1, bucket.piece_size) for _ in range(97)]
    sends = pump(rate, workers, pieces, seconds=14.0)
    low, high = worst_windows(sends, rate, 2.0, 13.0)
    assert 0.95 <= low <= high <= 1.05, (low, high)


def test_an_idle_bucket_allows_only_a_small_burst() -> None:
    async def main() -> float:
        clock = virtual_clock()
        bucket = TokenBucket(1e6, clock=clock)
        await asyncio.sleep(60)  # idle for a minute: no credit piles up beyond the burst
        start = clock()
        for _ in range(20):
            await bucket.acquire(100_000)
        return clock() - start

    assert run_virtual(main) >= 1.9  # 2 MB at 1 MB/s, minus at most the 50 ms burst


def test_a_cancelled_wait_gives_its_bytes_back() -> None:
    async def main(cancelled_request: bool) -> tuple[float, int]:
        clock = virtual_clock()
        bucket = TokenBucket(1e6, clock=clock)
        await bucket.acquire(50_000)  # spends the burst
        if cancelled_request:
            waiting = asyncio.ensure_future(bucket.acquire(5_000_000))
        await asyncio.sleep(0.5)
        if cancelled_request:
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        start = clock()
        await bucket.acquire(500_000)
        return clock() - start, bucket.bytes_granted

    waited, granted = run_virtual(lambda: main(True))
    # as if the cancelled request had never been: 0.05 MB of burst credit, 0.45 s to wait
    assert (waited, granted) == run_virtual(lambda: main(False))
    assert waited == pytest.approx(0.45)
    assert granted == 550_000


def test_zero_bytes_pass_and_bad_rates_are_refused() -> None:
    async def main() -> None:
        bucket = TokenBucket(1.0, clock=virtual_clock())
        await bucket.acquire(0)
        assert bucket.bytes_granted == 0

    run_virtual(main)
    for bad in (0.0, -5.0, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            TokenBucket(bad)


def test_piece_size_keeps_waits_short() -> None:
    assert TokenBucket(100e3).piece_size == 5000
    assert TokenBucket(1e3).piece_size == 4096
    assert TokenBucket(1e9).piece_size == 1024 * 1024
