"""The dock-status poller: an async iterator of job changes and a ``wait`` with a deadline.

How it works: the first poll is immediate, the next after ``initial`` seconds, and each
interval grows by ``multiplier`` up to ``maximum``, scaled by a random factor in
[0.8, 1.0] so that many waiting clients do not poll in step. After the first few polls
the interval never drops below ``min_interval`` (1 s), so a job is polled at most 60
times a minute, Kore's published limit for status calls. Each poll is one request through
the retry rulebook, which honours ``Retry-After`` on 429. The clock and the sleep are
injectable so that the cost of a ten-minute job can be measured in milliseconds.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..errors import JobFailedError, JobTimeoutError
from ..types import JobDocument

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["JobReader", "PollPolicy", "wait_for_job", "watch_job"]


class JobReader(Protocol):
    """Anything that reads a job's document (``kore.dock_status``)."""

    async def get(self, dock_status_id: str) -> JobDocument:
        """The job's current document."""
        ...


@dataclass(frozen=True)
class PollPolicy:
    """Pacing of status polls (the defaults live in Settings: see :meth:`from_settings`)."""

    initial: float
    maximum: float
    multiplier: float
    min_interval: float
    fast_polls: int = 2
    clock: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)
    seed: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PollPolicy:
        """The pacing configured in ``settings``."""
        return cls(
            initial=settings.poll_initial,
            maximum=settings.poll_max,
            multiplier=settings.poll_multiplier,
            min_interval=settings.poll_min_interval,
        )

    def next_interval(self, poll_number: int, rng: random.Random) -> float:
        """Seconds to wait after poll ``poll_number`` (1-based)."""
        growth = self.multiplier ** min(poll_number - 1, 200)  # no overflow on long jobs
        base = min(self.maximum, self.initial * growth)
        jittered = base * rng.uniform(0.8, 1.0)
        if poll_number > self.fast_polls:
            jittered = max(jittered, self.min_interval)
        return jittered


async def watch_job(
    api: JobReader,
    dock_status_id: str,
    *,
    policy: PollPolicy,
    timeout: float | None = None,
) -> AsyncIterator[JobDocument]:
    """Yield the job document each time its status or percentage changes, until it ends.

    Raises :class:`JobTimeoutError` when ``timeout`` seconds pass first. The last document
    yielded is terminal (SUCCESS or FAILED); FAILED is yielded, not raised.
    """
    rng = random.Random(policy.seed)
    deadline = None if timeout is None else policy.clock() + timeout
    # The hard deadline, on the event loop's clock: it also cuts a poll that is still
    # retrying, a long Retry-After, or a server that drips its answer.
    hard = None if timeout is None else asyncio.get_running_loop().time() + timeout
    last_key: tuple[str | None, float | None] | None = None
    last_status: str | None = None
    poll_number = 0

    def timed_out() -> JobTimeoutError:
        return JobTimeoutError(
            f"job {dock_status_id} still {last_status or 'unknown'} after {timeout:g}s",
            dock_status_id=dock_status_id,
            last_status=last_status,
        )

    while True:
        poll_number += 1
        try:
            async with asyncio.timeout_at(hard) as scope:
                document = await api.get(dock_status_id)
        except TimeoutError:
            if scope.expired():
                raise timed_out() from None
            raise
        last_status = document.status
        key = (document.status, document.percentage_complete)
        if key != last_key:
            last_key = key
            yield document
        if document.is_terminal:
            return
        pause = policy.next_interval(poll_number, rng)
        if deadline is not None:
            remaining = deadline - policy.clock()
            if remaining <= 0:
                raise timed_out()
            pause = min(pause, remaining)
        await policy.sleep(pause)


async def wait_for_job(
    api: JobReader,
    dock_status_id: str,
    *,
    policy: PollPolicy,
    timeout: float | None = None,
    on_update: Callable[[JobDocument], None] | None = None,
    first: JobDocument | None = None,
) -> JobDocument:
    """Poll until the job ends: return the SUCCESS document, raise on FAILED or deadline.

    ``first`` is a document already in hand (e.g. from complete). If it is terminal no
    request is made, unless it is a FAILED one without a reason (complete's short document
    carries none): then the job's full document is fetched once, for the server's message.
    A running ``first`` is ignored and polling starts at once.
    """
    final = first
    if final is None or not final.is_terminal or (final.failed and not final.message):
        async for document in watch_job(api, dock_status_id, policy=policy, timeout=timeout):
            if on_update is not None:
                on_update(document)
            final = document
    assert final is not None  # watch_job yields at least the first poll
    if final.failed:
        reason = final.message or "the server gave no reason"
        raise JobFailedError(
            f"job {dock_status_id} ({final.action or 'job'}) FAILED: {reason}",
            dock_status_id=dock_status_id,
            document=final.model_dump(by_alias=False),
        )
    return final
