"""Which request failures mean "the path is congested": the signals that cut concurrency."""

from __future__ import annotations

import asyncio
from enum import StrEnum

from ...errors import (
    KoreConnectionError,
    KoreTimeoutError,
    ProxyError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TLSError,
)

__all__ = ["Congestion", "congestion_of", "retry_after_of"]


class Congestion(StrEnum):
    """A failure that says "fewer requests at once, please"."""

    RATE_LIMITED = "429 rate limited"
    UNAVAILABLE = "503 unavailable"
    TIMEOUT = "timeout"
    RESET = "connection reset"


def congestion_of(exc: BaseException) -> Congestion | None:
    """The congestion signal carried by ``exc``, or None for any other failure.

    TLS and proxy failures are connection errors too, but say nothing about load: they
    are left to the retry rulebook and never cut concurrency.
    """
    if isinstance(exc, RateLimitError):
        return Congestion.RATE_LIMITED
    if isinstance(exc, ServerError):
        if exc.status_code == 503:
            return Congestion.UNAVAILABLE
        return Congestion.TIMEOUT if exc.status_code == 504 else None
    if isinstance(exc, (KoreTimeoutError, RequestTimeoutError, asyncio.TimeoutError)):
        return Congestion.TIMEOUT
    if isinstance(exc, (TLSError, ProxyError)):
        return None
    if isinstance(exc, (KoreConnectionError, ConnectionResetError, BrokenPipeError)):
        return Congestion.RESET
    return None


def retry_after_of(exc: BaseException) -> float | None:
    """The server's ``Retry-After`` in seconds carried by ``exc``, if any."""
    value = getattr(exc, "retry_after", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None
