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

from ..errors import JobFailedError, JobTimeoutError
from ..resources.dock_status import DockStatusAPI
from ..types import JobDocument

__all__ = ["PollPolicy", "wait_for_job", "watch_job"]


@dataclass(frozen=True)
class PollPolicy:
    """Pacing of status polls."""

    initial: float = 0.5
    maximum: float = 10.0
    multiplier: float = 1.5
    min_interval: float = 1.0
    fast_polls: int = 2
    clock: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)
    seed: int | None = None

    def next_interval(self, poll_number: int, rng: random.Random) -> float:
        """Seconds to wait after poll ``poll_number`` (1-based)."""
        base = min(self.maximum, self.initial * self.multiplier ** (poll_number - 1))
        jittered = base * rng.uniform(0.8, 1.0)
        if poll_number > self.fast_polls:
            jittered = max(jittered, self.min_interval)
        return jittered


async def watch_job(
    api: DockStatusAPI,
    dock_status_id: str,
    *,
    policy: PollPolicy | None = None,
    timeout: float | None = None,
) -> AsyncIterator[JobDocument]:
    """Yield the job document each time its status or percentage changes, until it ends.

    Raises :class:`JobTimeoutError` when ``timeout`` seconds pass first. The last document
    yielded is terminal (SUCCESS or FAILED); FAILED is yielded, not raised.
    """
    policy = policy or PollPolicy()
    rng = random.Random(policy.seed)
    deadline = None if timeout is None else policy.clock() + timeout
    last_key: tuple[str | None, float | None] | None = None
    last_status: str | None = None
    poll_number = 0
    while True:
        poll_number += 1
        document = await api.get(dock_status_id)
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
                raise JobTimeoutError(
                    f"job {dock_status_id} still {last_status or 'unknown'} after {timeout:g}s",
                    dock_status_id=dock_status_id,
                    last_status=last_status,
                )
            pause = min(pause, remaining)
        await policy.sleep(pause)


async def wait_for_job(
    api: DockStatusAPI,
    dock_status_id: str,
    *,
    policy: PollPolicy | None = None,
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
