"""run_emulator(): start the app on a real socket as an async context manager."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from errno import EADDRINUSE
from pathlib import Path

from aiohttp import web

from .app import create_app
from .config import EmulatorConfig
from .errors import ListenError
from .faults import STATE
from .guards import control_token_for, watch_headers
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
    generated_control_token: bool = False
    ca_file: Path | None = None
    """With generated TLS: the CA clients should trust (``<data-dir>/tls/ca.pem``)."""

    @property
    def config(self) -> EmulatorConfig:
        return self.state.config


def _listen_problem(host: str, port: int, exc: OSError) -> str:
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    hint = " (choose another --port, or --port 0 for any free one)"
    return f"cannot listen on {host}:{port}: {reason}" + (hint if exc.errno == EADDRINUSE else "")


@asynccontextmanager
async def run_emulator(
    config: EmulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: EmulatorTLS | None = None,
) -> AsyncIterator[RunningEmulator]:
    """Serve the emulator on host:port (0 = a free port) until the block exits; HTTPS with tls."""
    config = config or EmulatorConfig()
    token = control_token_for(host, config.control_token)
    app = create_app(config.model_copy(update={"control_token": token}))
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=1.0,
        keepalive_timeout=config.header_timeout_seconds,  # idle keep-alive, next request's head
    )
    await runner.setup()
    assert runner.server is not None
    watch_headers(runner.server, app[STATE])
    try:
        ssl_context, ca_file = (None, None) if tls is None else tls.prepare(app[STATE].data_dir)
        site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            raise ListenError(_listen_problem(host, port, exc)) from None
        bound_port = int(runner.addresses[0][1])
        url_host = f"[{host}]" if ":" in host else host
        yield RunningEmulator(
            url=f"{'http' if tls is None else 'https'}://{url_host}:{bound_port}",
            host=host,
            port=bound_port,
            app=app,
            state=app[STATE],
            generated_control_token=token is not None and config.control_token is None,
            ca_file=ca_file,
        )
    finally:
        app[STATE].stopping.set()
        await runner.cleanup()
