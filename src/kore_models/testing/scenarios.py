"""Named fault scenarios for the emulator: flaky, rate-limited, slow WAN, session expiry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SCENARIOS", "Scenario"]


@dataclass(frozen=True)
class Scenario:
    """Run-time emulator options (``config``) and scripted faults (``faults``) with a name."""

    name: str
    description: str
    config: dict[str, Any] = field(default_factory=dict)
    faults: tuple[dict[str, Any], ...] = ()


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "flaky",
            "one request in five fails with 500, 502, 503 or a reset connection; "
            "a client with retries still succeeds",
            config={"failure_rate": 0.2, "failure_kinds": ["500", "502", "503", "reset"]},
        ),
        Scenario(
            "rate-limited",
            "one request in five answers 429 with a short Retry-After; the client waits "
            "and retries",
            config={"failure_rate": 0.2, "failure_kinds": ["429"], "retry_after_seconds": 0.05},
        ),
        Scenario(
            "slow-wan",
            "60 ms before each answer and at most 4 MB/s per connection",
            config={"latency_ms": 60, "throughput_bytes_per_second": 4_000_000},
        ),
        Scenario(
            "session-expiry",
            "every upload session expires at once: the client starts one fresh session, "
            "then gives up with UploadError (for a single expiry mid-upload call "
            "kore_emulator.expire_sessions() instead)",
            config={"session_ttl_seconds": 0.000001},
        ),
        Scenario(
            "server-down",
            "the next 20 requests answer 503; a client gives up once its retries are spent",
            faults=tuple({"route": "any", "action": "503"} for _ in range(20)),
        ),
    )
}
