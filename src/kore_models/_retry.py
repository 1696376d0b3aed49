"""The one retry rulebook: what is retryable, how long to wait, and when to give up.

How it works: every request (plain calls, each chunk upload, each poll) goes through
:func:`call_with_retry`, built on tenacity. Connection errors, timeouts, stalls, 408, 429
and 5xx are retried with exponential backoff and full jitter; a ``Retry-After`` from the
server replaces the jittered wait (capped). Attempts and a total deadline bound each call;
an optional :class:`RetryBudget` shared by all chunks of one upload bounds the retries of
the whole transfer, so a dead server fails fast instead of exhausting every chunk. No other
module loops on errors.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from tenacity.stop import stop_base

from .errors import (
    ProxyError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TLSError,
    TransportError,
)

__all__ = [
    "RetryBudget",
    "RetryPolicy",
    "backoff_delay",
    "call_with_retry",
    "is_retryable",
    "parse_retry_after",
]

if TYPE_CHECKING:
    from .settings import Settings

T = TypeVar("T")
log = logging.getLogger("kore_models.retry")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000" gives a naive datetime; HTTP dates are UTC
            when = when.replace(tzinfo=datetime.UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def is_retryable(exc: BaseException) -> bool:
    """Connection errors, timeouts, stalls, 408, 429 and 5xx; never any other 4xx.

    TLS failures and a proxy that refuses or cannot be reached are settings to fix, not
    weather: they are not retried.
    """
    if isinstance(exc, (TLSError, ProxyError)):
        return False
    if isinstance(exc, TransportError):
        return True
    if isinstance(exc, (RateLimitError, ServerError, RequestTimeoutError)):
        return not (isinstance(exc, ServerError) and exc.status_code in (501, 505))
    return False


def backoff_delay(attempt: int, *, initial: float, maximum: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(maximum, initial * 2**(attempt-1))]."""
    ceiling = min(maximum, initial * (2 ** max(0, attempt - 1)))
    return rng.uniform(0, ceiling)


class RetryBudget:
    """A count of retries shared by every request of one transfer."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    @property
    def exhausted(self) -> bool:
        """True once every allowed retry has been spent."""
        return self.used >= self.limit

    def spend(self) -> None:
        """Record one retry."""
        self.used += 1


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and pacing of retries; ``sleeps=False`` removes every wait (tests).

    The values come from Settings (:meth:`from_settings`), where their defaults live.
    """

    max_attempts: int
    deadline: float
    backoff_initial: float
    backoff_max: float
    retry_after_cap: float
    sleeps: bool
    seed: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The rulebook's bounds configured in ``settings``."""
        return cls(
            max_attempts=settings.max_attempts,
            deadline=settings.retry_deadline,
            backoff_initial=settings.backoff_initial,
            backoff_max=settings.backoff_max,
            retry_after_cap=settings.retry_after_cap,
            sleeps=settings.retry_sleeps,
        )

    def wait_for(self, attempt: int, exc: BaseException | None, rng: random.Random) -> float:
        """The wait before the next attempt: the server's Retry-After, else full jitter."""
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after >= 0:
            return min(float(retry_after), self.retry_after_cap)
        return backoff_delay(
            attempt, initial=self.backoff_initial, maximum=self.backoff_max, rng=rng
        )


class _StopRule(stop_base):
    def __init__(self, policy: RetryPolicy, budget: RetryBudget | None):
        self.policy = policy
        self.budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        if retry_state.attempt_number >= self.policy.max_attempts:
            return True
        if (retry_state.seconds_since_start or 0.0) >= self.policy.deadline:
            return True
        return self.budget is not None and self.budget.exhausted


async def _no_sleep(_seconds: float) -> None:
    return None


async def _real_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def call_with_retry(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    budget: RetryBudget | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
    on_retry_after: Callable[[float, BaseException], None] | None = None,
    retry: bool = True,
    describe: str = "request",
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> T:
    """Run ``operation`` until it succeeds or the rulebook says stop; re-raise the last error.

    ``operation`` is called afresh for each attempt, so it must rebuild its request body.
    ``on_retry(error, wait)`` runs before each wait (the uploader rewinds progress there).
    ``on_retry_after(seconds, error)`` runs when that wait is the server's Retry-After
    (capped), so the client can pause all its new requests, not only this one; never
    with ``policy.sleeps`` false.
    ``sleep`` replaces ``asyncio.sleep`` for the waits (tests record them); with
    ``policy.sleeps`` false no wait happens at all.
    """
    if not retry:
        return await operation()
    # Made at the first retry only: seeding from the OS on every call showed up among the
    # event-loop stalls of the benchmark's stall sampler, and most calls never retry.
    rngs: list[random.Random] = []

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if not rngs:
            rngs.append(random.Random(policy.seed))
        delay = policy.wait_for(state.attempt_number, exc, rngs[0])
        remaining = policy.deadline - (state.seconds_since_start or 0.0)
        return max(0.0, min(delay, remaining))

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        if budget is not None:
            budget.spend()
        log.info(
            "retrying %s (attempt %d failed: %s); waiting %.2fs",
            describe,
            state.attempt_number,
            exc,
            delay,
        )
        if on_retry is not None and exc is not None:
            on_retry(exc, delay)
        retry_after = getattr(exc, "retry_after", None)
        if (
            on_retry_after is not None
            and exc is not None
            and policy.sleeps
            and isinstance(retry_after, (int, float))
            and retry_after >= 0
        ):
            on_retry_after(min(float(retry_after), policy.retry_after_cap), exc)

    def retryable(exc: BaseException) -> bool:
        return is_retryable(exc) and not (budget is not None and budget.exhausted)

    retrying = AsyncRetrying(
        sleep=(sleep or _real_sleep) if policy.sleeps else _no_sleep,
        retry=retry_if_exception(retryable),
        stop=_StopRule(policy, budget),
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(operation)
