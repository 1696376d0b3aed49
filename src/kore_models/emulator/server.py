"""run_emulator(): start the app on a real socket as an async context manager."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .app import create_app
from .config import EmulatorConfig
from .faults import STATE
from .state import EmulatorState
from .tls import EmulatorTLS


@dataclass
class RunningEmulator:
    """A listening emulator: .url is e.g. "http://127.0.0.1:43125" (https:// with TLS)."""

    url: str
    host: str
    port: int
    app: web.Application
    state: EmulatorState
    ca_file: Path | None = None
    """With generated TLS: the CA clients should trust (``<data-dir>/tls/ca.pem``)."""

    @property
    def config(self) -> EmulatorConfig:
        return self.state.config

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/public"


@asynccontextmanager
async def run_emulator(
    config: EmulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: EmulatorTLS | None = None,
) -> AsyncIterator[RunningEmulator]:
    """Serve the emulator on host:port (0 = a free port) until the block exits; HTTPS with tls."""
    app = create_app(config or EmulatorConfig())
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        ssl_context, ca_file = (None, None) if tls is None else tls.prepare(app[STATE].data_dir)
        site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        url_host = f"[{host}]" if ":" in host else host
        yield RunningEmulator(
            url=f"{'http' if tls is None else 'https'}://{url_host}:{bound_port}",
            host=host,
            port=bound_port,
            app=app,
            state=app[STATE],
            ca_file=ca_file,
        )
    finally:
        app[STATE].stopping.set()
        await runner.cleanup()
