"""The dock-status poller: deadlines, and the request cost of a long job (fake clock)."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import pytest

from kore_models import KoreClient, Settings
from kore_models.errors import JobTimeoutError
from kore_models.transfer.poll import PollPolicy, wait_for_job

if TYPE_CHECKING:
    from tests.support.transfer import EmuControl, FileMaker

CHUNK = 64 * 1024
# The pacing of the defaults (the fixtures' clients poll much faster to keep tests short).
DEFAULT_POLL = PollPolicy.from_settings(
    Settings(host="kore.example.test", api_key="kg-poll-test-key-0123")
)


class FakeTime:
    """A clock that only moves when the poller sleeps; it moves the emulator's clock too."""

    def __init__(self, ctl: EmuControl | None = None) -> None:
        self.now = 0.0
        self.ctl = ctl
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.ctl is not None:
            await self.ctl.advance_clock(seconds)

    def poll_times(self) -> list[float]:
        """When each poll was sent: at 0 and after every sleep."""
        times = [0.0]
        for pause in self.sleeps:
            times.append(times[-1] + pause)
        return times


async def _long_job(kore: KoreClient, ctl: EmuControl, make_file: FileMaker, seconds: float) -> str:
    await ctl.configure(job_seconds=seconds)
    result = await kore.models.import_file(make_file(2 * CHUNK), wait=False)
    assert result.dock_status_id is not None
    assert result.status == "IN_PROGRESS"
    await ctl.reset_counters()
    return result.dock_status_id


async def test_wait_times_out_on_a_long_job(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker
) -> None:
    await ctl.configure(job_seconds=3600)
    started = time.monotonic()

    with pytest.raises(JobTimeoutError) as caught:
        await kore.models.import_file(make_file(2 * CHUNK), job_timeout=0.3)

    assert time.monotonic() - started >= 0.3
    assert caught.value.last_status == "IN_PROGRESS"
    assert caught.value.dock_status_id


async def test_dock_status_wait_times_out_with_a_fake_clock(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker
) -> None:
    job_id = await _long_job(kore, ctl, make_file, 3600)
    fake = FakeTime()
    policy = dataclasses.replace(DEFAULT_POLL, clock=fake.clock, sleep=fake.sleep, seed=7)

    with pytest.raises(JobTimeoutError):
        await wait_for_job(kore.dock_status, job_id, policy=policy, timeout=120)

    assert fake.now == pytest.approx(120)
    polls = (await ctl.counters())["requests"]["dock_status"]
    assert polls == len(fake.sleeps) + 1
    assert polls <= 30


async def test_a_ten_minute_job_costs_few_polls_and_stays_under_60_per_minute(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker
) -> None:
    real_start = time.monotonic()
    job_id = await _long_job(kore, ctl, make_file, 600)
    fake = FakeTime(ctl)
    policy = dataclasses.replace(DEFAULT_POLL, clock=fake.clock, sleep=fake.sleep, seed=3)
    seen: list[str | None] = []

    final = await wait_for_job(
        kore.dock_status,
        job_id,
        policy=policy,
        timeout=3600,
        on_update=lambda doc: seen.append(doc.status),
    )

    assert final.status == "SUCCESS"
    assert seen[0] == "IN_PROGRESS"
    assert seen[-1] == "SUCCESS"
    # the emulator's clock is real time plus the advances: the real seconds this test
    # took count towards the job's 600 s too
    assert 600 - (time.monotonic() - real_start) <= fake.now < 620
    polls = (await ctl.counters())["requests"]["dock_status"]
    times = fake.poll_times()
    assert polls == len(times)
    # the busiest minute stays under Kore's 60-per-minute status limit, by far
    busiest = max(sum(1 for t in times if start <= t < start + 60) for start in times)
    assert busiest < 60
    assert busiest <= 15
    assert polls <= 80
    assert max(fake.sleeps) <= 10.0
    assert all(pause >= 1.0 for pause in fake.sleeps[2:])


def test_poll_intervals_back_off_with_jitter_and_a_cap() -> None:
    import random

    policy = dataclasses.replace(DEFAULT_POLL, seed=1)
    rng = random.Random(1)
    intervals = [policy.next_interval(n, rng) for n in range(1, 40)]
    assert intervals[0] < 1.0
    assert all(0 < i <= policy.maximum for i in intervals)
    assert all(i >= policy.min_interval for i in intervals[policy.fast_polls :])
    assert intervals[-1] >= 0.8 * policy.maximum
    assert len(set(intervals)) > 30  # jitter: no two polls in lockstep
