"""Run-time state shared by all handlers: config, store, clock, counters, fault script."""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .config import RUNTIME_FIELDS, EmulatorConfig
from .shaping import TokenBucket
from .store import Store

ROUTES = ("start", "chunk", "complete", "export", "deploy", "undeploy", "dock_status", "download")
FaultAction = Literal["500", "502", "503", "429", "reset", "stall"]


class ScriptedFault(BaseModel):
    """One entry of the fault script queue (POST /_emulator/script)."""

    model_config = ConfigDict(extra="forbid")

    route: Literal[
        "chunk",
        "start",
        "complete",
        "export",
        "deploy",
        "undeploy",
        "dock_status",
        "download",
        "any",
    ] = "any"
    action: FaultAction
    retry_after: float | None = Field(default=None, ge=0)
    stall_seconds: float | None = Field(default=None, ge=0)
    after_bytes: int | None = Field(default=None, ge=0)


@dataclass
class Counters:
    """Observable counters (GET /_emulator/counters)."""

    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROUTES, 0))
    chunks_received: int = 0
    chunk_numbers_received: dict[str, list[int]] = field(default_factory=dict)
    bytes_received: int = 0
    max_concurrent_chunk_uploads: int = 0
    concurrent_chunk_uploads: int = 0
    faults_injected: int = 0
    in_flight_limit_429s: int = 0
    sessions_swept: int = 0
    client_disconnects: int = 0
    header_timeouts: int = 0
    body_timeouts: int = 0
    responses_by_status: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "chunks_received": self.chunks_received,
            "chunk_numbers_received": {k: list(v) for k, v in self.chunk_numbers_received.items()},
            "bytes_received": self.bytes_received,
            "max_concurrent_chunk_uploads": self.max_concurrent_chunk_uploads,
            "concurrent_chunk_uploads": self.concurrent_chunk_uploads,
            "faults_injected": self.faults_injected,
            "in_flight_limit_429s": self.in_flight_limit_429s,
            "sessions_swept": self.sessions_swept,
            "client_disconnects": self.client_disconnects,
            "header_timeouts": self.header_timeouts,
            "body_timeouts": self.body_timeouts,
            "responses_by_status": dict(self.responses_by_status),
        }

    def reset(self) -> None:
        live = self.concurrent_chunk_uploads
        fresh = Counters()
        self.__dict__.update(fresh.__dict__)
        self.concurrent_chunk_uploads = live
        self.max_concurrent_chunk_uploads = live


def iso_ms(ts: float) -> str:
    """ISO-8601 UTC with milliseconds and Z, like the docs' "2025-02-05T11:58:03.638Z"."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class EmulatorState:
    """Everything a running emulator knows; one instance per application."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._temp_dir: Path | None = None
        if config.data_dir is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="kore-emulator-"))
            self.data_dir = self._temp_dir
        else:
            self.data_dir = Path(config.data_dir)
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.total_bucket: TokenBucket | None = None
        self._shape_total()
        self.store = Store(self.data_dir)
        self.clock_offset = 0.0
        self.counters = Counters()
        self.script: deque[ScriptedFault] = deque()
        self.rng = random.Random(config.seed)
        self.completing: set[str] = set()
        self.stopping = asyncio.Event()
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        # Connections still waiting for their first request head -> the handle that closes them.
        self.header_deadlines: dict[object, asyncio.TimerHandle] = {}

    # clock -------------------------------------------------------------------------
    def now(self) -> float:
        """Emulator time: wall clock plus the offset moved by POST /_emulator/clock."""
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        self.clock_offset += seconds
        return self.now()

    # config ------------------------------------------------------------------------
    def update_config(self, **changes: Any) -> EmulatorConfig:
        """Apply run-time changes (only RUNTIME_FIELDS); raises ValueError/ValidationError."""
        unknown = set(changes) - RUNTIME_FIELDS
        if unknown:
            raise ValueError(f"fields not changeable at run time: {sorted(unknown)}")
        merged = {**self.config.model_dump(), **changes}
        self.config = EmulatorConfig.model_validate(merged)
        self._shape_total()
        return self.config

    def _shape_total(self) -> None:
        """Keep the shared bucket (and the debts queued in it) when only its rate changes."""
        rate = self.config.total_throughput_bytes_per_second
        if rate is None:
            self.total_bucket = None
        elif self.total_bucket is None:
            self.total_bucket = TokenBucket(rate)
        else:
            self.total_bucket.rate = rate

    # faults ------------------------------------------------------------------------
    def add_faults(self, faults: list[ScriptedFault] | list[dict[str, Any]]) -> int:
        for f in faults:
            self.script.append(f if isinstance(f, ScriptedFault) else ScriptedFault(**f))
        return len(self.script)

    def take_fault(self, route: str | None) -> ScriptedFault | None:
        """Pop the first scripted fault matching route, else maybe a random one."""
        for i, f in enumerate(self.script):
            if f.route in ("any", route):
                del self.script[i]
                return f
        cfg = self.config
        if cfg.failure_rate > 0 and self.rng.random() < cfg.failure_rate:
            kind = self.rng.choice(cfg.failure_kinds)
            return ScriptedFault(route="any", action=kind)
        return None

    # rate limits -------------------------------------------------------------------
    def hit_rate_limit(self, bucket: str, limit: int | None) -> bool:
        """Record one request in bucket's rolling 60 s window; True if over the limit."""
        if limit is None:
            return False
        now = self.now()
        window = self._windows[bucket]
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= limit:
            return True
        window.append(now)
        return False

    def retry_after_for(self, bucket: str) -> float:
        window = self._windows.get(bucket)
        if not window:
            return self.config.retry_after_seconds
        return max(0.0, window[0] + 60.0 - self.now())

    # lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        self.stopping.set()
        self.store.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
