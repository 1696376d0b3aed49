"""KoreEmulator: the emulator in a background thread on a free loopback port, with its controls."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.request
from types import TracebackType
from typing import Any

from ..emulator import EmulatorConfig, run_emulator
from .scenarios import SCENARIOS, Scenario

__all__ = ["KoreEmulator"]


class KoreEmulator:
    """A real emulator on ``127.0.0.1`` (a free port), served by a thread of its own.

    Works from sync tests, async tests (any event loop) and SyncKoreClient alike. The
    controls are blocking calls to the emulator's ``/_emulator`` API:
    :meth:`configure` (faults, latency, throughput, rate limits, ...), :meth:`script`
    (exact faults for the next requests), :meth:`scenario` (a named set of faults),
    :meth:`counters`, :meth:`advance_clock`, :meth:`expire_sessions` and :meth:`model`.
    """

    def __init__(self, config: EmulatorConfig | None = None, **options: Any):
        self.config = config or EmulatorConfig(**{"job_seconds": 0.1, **options})
        self.url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"KoreEmulator(url={self.url!r})"

    @property
    def api_key(self) -> str:
        """The key the emulator accepts."""
        return self.config.api_key

    @property
    def host(self) -> str:
        """Same as :attr:`url`: what ``KoreClient(host=...)`` and ``KORE_HOST`` take."""
        return self.url

    # lifecycle ------------------------------------------------------------------
    def start(self) -> KoreEmulator:
        """Start serving and return once the socket listens."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._main, name="kore-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the emulator did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=10)

    def __enter__(self) -> KoreEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with run_emulator(self.config, host="127.0.0.1", port=0) as emulator:
            self.url = emulator.url
            self._ready.set()
            await self._stop.wait()

    # controls -------------------------------------------------------------------
    def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the control API (``/_emulator{path}``) and return its JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - an http URL on loopback
            f"{self.url}/_emulator{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change run-time options, e.g. ``failure_rate=0.2``, ``latency_ms=50``."""
        result: dict[str, Any] = self.control("PATCH", "/config", changes)
        return result

    def script(self, *faults: dict[str, Any]) -> None:
        """Queue exact faults, e.g. ``{"route": "chunk", "action": "503"}``."""
        self.control("POST", "/script", {"faults": list(faults)})

    def scenario(self, name: str | Scenario) -> Scenario:
        """Apply a named fault scenario (see :data:`SCENARIOS`) and return it."""
        chosen = name if isinstance(name, Scenario) else SCENARIOS.get(name)
        if chosen is None:
            known = ", ".join(sorted(SCENARIOS))
            raise ValueError(f"no fault scenario {name!r}; known: {known}")
        if chosen.config:
            self.configure(**chosen.config)
        if chosen.faults:
            self.script(*chosen.faults)
        return chosen

    def counters(self) -> dict[str, Any]:
        """Requests per route, chunks and bytes received, responses by status, faults."""
        result: dict[str, Any] = self.control("GET", "/counters")
        return result

    def reset_counters(self) -> None:
        """Zero the counters."""
        self.control("POST", "/counters/reset")

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock (session expiry, job progress) forward."""
        self.control("POST", "/clock", {"advance_seconds": seconds})

    def expire_sessions(self) -> None:
        """Make every open upload session expire now (the clock passes their TTL)."""
        self.advance_clock(float(self.control("GET", "/config")["session_ttl_seconds"]) + 1)

    def model(self, model_id: str) -> dict[str, Any]:
        """What the emulator stored for ``model_id`` (size, sha256, state ...)."""
        result: dict[str, Any] = self.control("GET", f"/models/{model_id}")
        return result
