"""Case 7: poller cost for 10 s, 60 s and 600 s jobs, with the emulator's clock moved by sleep."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp

from kore_models import KoreClient
from kore_models.transfer.poll import JobReader, wait_for_job
from kore_models.types import JobDocument

from .harness import KEY, Context, Emulator, Figure, make_file

DURATIONS = (10.0, 60.0, 600.0)


class _Counted:
    """The real dock-status call, recording the (fake) time of every request."""

    def __init__(self, inner: JobReader, clock: list[float], times: list[float]):
        self._inner = inner
        self._clock = clock
        self.times = times

    async def get(self, dock_status_id: str) -> JobDocument:
        self.times.append(self._clock[0])
        return await self._inner.get(dock_status_id)


def max_in_window(times: list[float], window: float = 60.0) -> int:
    """The most requests in any ``window`` seconds (windows starting at each request)."""
    best, j = 0, 0
    for i, start in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < start + window:
            j += 1
        best = max(best, j - i)
    return best


async def one_wait(ctx: Context, emu: Emulator, duration: float, seed: int) -> tuple[int, int, int]:
    """(requests, most in any 60 s, emulator-counted dock-status requests) for one job."""
    tiny = make_file(ctx.scratch / "poller.tar", 64 * 1024)
    await asyncio.to_thread(emu.patch, job_seconds=duration)
    state = ctx.scratch / "state"
    async with (
        KoreClient(host=emu.url, api_key=KEY, state_dir=state) as kore,
        aiohttp.ClientSession() as control,
    ):
        started = await kore.models.import_file(tiny, wait=False, resume=False)
        assert started.dock_status_id is not None
        await asyncio.to_thread(emu.reset_counters)
        clock = [0.0]
        times: list[float] = []

        async def sleep(seconds: float) -> None:
            clock[0] += seconds
            url = f"{emu.url}/_emulator/clock"
            async with control.post(url, json={"advance_seconds": seconds}) as resp:
                resp.raise_for_status()

        policy = dataclasses.replace(
            kore.dock_status.poll_policy, clock=lambda: clock[0], sleep=sleep, seed=seed
        )
        api = _Counted(kore.dock_status, clock, times)
        final = await wait_for_job(api, started.dock_status_id, policy=policy, timeout=duration * 3)
        assert final.status == "SUCCESS", final
        counters = await asyncio.to_thread(emu.counters)
    return len(times), max_in_window(times), int(counters["requests"]["dock_status"])


def run(ctx: Context) -> list[Figure]:
    reps = 3 if ctx.quick else 5
    figures: list[Figure] = []
    # the emulator also enforces Kore's published limit: a 429 would show up as a retry
    with ctx.emulator("poller", storage="discard", dock_status_rate_limit_per_minute=60) as emu:
        for duration in DURATIONS:
            results = [asyncio.run(one_wait(ctx, emu, duration, seed)) for seed in range(reps)]
            requests = [float(r[0]) for r in results]
            window = [float(r[1]) for r in results]
            seen = sorted({r[2] for r in results})
            limited = emu.counters()["responses_by_status"].get("429", 0)
            label = f"{duration:g} s job"
            figures.append(
                Figure(
                    "7",
                    f"poll requests, {label}",
                    "requests",
                    requests,
                    notes=f"emulator counted {seen}; fake clock, emulator clock advanced by "
                    f"each sleep; 429s in the last run: {limited}",
                )
            )
            figures.append(
                Figure(
                    "7",
                    f"most poll requests in any 60 s, {label}",
                    "requests",
                    window,
                    "<= 60",
                    bool(window) and max(window) <= 60,
                    "worst of the runs must stay within Kore's 60/min",
                )
            )
    return figures
