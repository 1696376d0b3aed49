"""Pacing of a client's requests: concurrency controller, rate cap and Retry-After pause.

One :class:`Pacer` per client holds the three shared pieces, so every upload and download
of the client (several files at once included) draws from the same limits:

- :class:`ConcurrencyController` with its slots (``concurrency="auto"`` or pinned);
- :class:`TokenBucket` for ``limit_rate`` (bytes per second, uploads plus downloads);
- :class:`PauseGate`, closed for the server's Retry-After.
"""

from __future__ import annotations

from .bucket import TokenBucket
from .controller import ConcurrencyController, Decision, SlotContext, SlotTicket, TuningConfig
from .gate import PauseGate
from .pacer import Pacer, process_bucket
from .signals import Congestion, congestion_of, retry_after_of

__all__ = [
    "ConcurrencyController",
    "Congestion",
    "Decision",
    "Pacer",
    "PauseGate",
    "SlotContext",
    "SlotTicket",
    "TokenBucket",
    "TuningConfig",
    "congestion_of",
    "process_bucket",
    "retry_after_of",
]
