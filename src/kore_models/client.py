"""KoreClient: settings, the transport and the resource namespaces behind one async context.

Use it as ``async with KoreClient(host=..., api_key=...) as kore:``; ``aclose()`` is
idempotent, a closed client refuses further calls, and a caller's own
``aiohttp.ClientSession`` is borrowed, never closed.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from ._http import Transport
from .errors import ConfigurationError
from .resources import DockStatus, Files, Models
from .settings import Settings

__all__ = ["KoreClient"]


class KoreClient:
    """Async client for the Kore.ai model APIs.

    Every argument left as ``None`` falls back to its ``KORE_*`` environment variable, then
    to the default in :class:`~kore_models.settings.Settings`.
    """

    def __init__(
        self,
        host: str | None = None,
        api_key: str | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        allow_insecure_http: bool | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        stall_timeout: float | None = None,
        max_attempts: int | None = None,
        retry_deadline: float | None = None,
        retry_sleeps: bool | None = None,
        chunk_size: int | str | None = None,
        concurrency: int | None = None,
        state_dir: Path | str | None = None,
        settings: Settings | None = None,
        **other_settings: Any,
    ) -> None:
        options = {
            "host": host,
            "api_key": api_key,
            "allow_insecure_http": allow_insecure_http,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "stall_timeout": stall_timeout,
            "max_attempts": max_attempts,
            "retry_deadline": retry_deadline,
            "retry_sleeps": retry_sleeps,
            "chunk_size": chunk_size,
            "concurrency": concurrency,
            "state_dir": state_dir,
            **other_settings,
        }
        if settings is not None:
            given = sorted(name for name, value in options.items() if value is not None)
            if given:
                raise ConfigurationError(
                    f"pass either settings=... or individual options, not both "
                    f"(got settings and {', '.join(given)}); use settings.replace(...)"
                )
        else:
            settings = Settings.resolve(**options)
        self.settings = settings
        self._transport = Transport(settings, session)
        self.files = Files(self._transport)
        self.dock_status = DockStatus(self._transport)
        self.models = Models(self._transport, self.files, self.dock_status)

    def __repr__(self) -> str:
        return f"KoreClient(host={self.settings.host!r})"

    @property
    def transport(self) -> Transport:
        """The underlying transport (for the transfer engines)."""
        return self._transport

    async def __aenter__(self) -> KoreClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session (unless it was injected); safe to call twice."""
        await self._transport.aclose()
