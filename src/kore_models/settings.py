"""Client settings: explicit argument, else a ``KORE_*`` environment variable, else the default.

Settings are resolved when a client is built (never at import time) by
:meth:`Settings.resolve`, which also normalises the host and refuses plain ``http://`` to
anything but a loopback address unless ``allow_insecure_http`` is set.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError

__all__ = ["MiB", "Settings", "default_state_dir", "is_loopback_host", "normalise_host"]

MiB = 1024 * 1024


def default_state_dir() -> Path:
    """Where journals live by default: ``$XDG_STATE_HOME/kore-models`` or ``~/.local/state``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kore-models"


def is_loopback_host(hostname: str) -> bool:
    """True for ``localhost`` and any loopback IP literal (127.0.0.0/8, ::1)."""
    name = hostname.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def normalise_host(host: str, *, allow_insecure_http: bool = False) -> str:
    """Return ``scheme://host[:port]`` for an environment URL as the docs give it.

    A host without a scheme gets ``https://``; a trailing ``/`` or ``/api/public`` is
    dropped; ``http://`` is refused unless the host is loopback or explicitly allowed.
    """
    raw = host.strip()
    if not raw:
        raise ConfigurationError("the host is empty; set --host or KORE_HOST")
    if "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(f"the host must be an http(s) URL, not {parts.scheme!r}")
    if not parts.hostname:
        raise ConfigurationError(f"the host {host!r} has no host name")
    if parts.username or parts.password:
        raise ConfigurationError("the host must not carry credentials; use the API key")
    if parts.query or parts.fragment:
        raise ConfigurationError("the host must not carry a query or fragment")
    path = parts.path.rstrip("/")
    if path in ("/api/public", "/api"):
        path = ""
    if path:
        raise ConfigurationError(
            f"the host {host!r} has a path {path!r}; give only the environment URL, "
            "e.g. https://agent-platform.kore.ai"
        )
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback_host(parts.hostname):
        raise ConfigurationError(
            f"refusing plain http to {parts.hostname}: the API key would travel unencrypted; "
            "use https, or opt in with allow_insecure_http=True (KORE_ALLOW_INSECURE_HTTP=1)"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"the host {host!r} has an invalid port") from exc
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}"


class Settings(BaseSettings):
    """Every knob of the client. Field ``x`` is read from ``KORE_X`` when not given."""

    model_config = SettingsConfigDict(env_prefix="KORE_", extra="forbid", frozen=True)

    host: str = Field(
        default="", description="Environment URL, e.g. https://agent-platform.kore.ai"
    )
    api_key: SecretStr = Field(default=SecretStr(""), description="The x-api-key value")
    allow_insecure_http: bool = False

    connect_timeout: float = Field(default=10.0, gt=0, description="TCP+TLS connect timeout, s")
    read_timeout: float = Field(default=60.0, gt=0, description="Idle time allowed between reads")
    stall_timeout: float = Field(default=60.0, gt=0, description="No byte sent for this long fails")

    max_attempts: int = Field(default=6, ge=1, le=100, description="Attempts per request")
    retry_deadline: float = Field(default=600.0, gt=0, description="Give up retrying after, s")
    backoff_initial: float = Field(default=0.5, ge=0, description="First backoff ceiling, s")
    backoff_max: float = Field(default=30.0, ge=0, description="Largest backoff ceiling, s")
    retry_after_cap: float = Field(default=120.0, ge=0, description="Largest Retry-After honoured")
    retry_sleeps: bool = Field(default=True, description="False removes backoff sleeps (tests)")

    chunk_size: int = Field(default=16 * MiB, ge=1, description="Bytes per chunk")
    max_chunk_size: int = Field(default=64 * MiB, ge=1, description="Cap when the size is raised")
    max_chunks: int = Field(default=10_000, ge=1, description="Chunk count that raises the size")
    concurrency: int = Field(default=8, ge=1, le=256, description="Chunk uploads in flight")
    read_block_size: int = Field(default=1 * MiB, ge=4096, description="Largest disk read")
    max_buffer_bytes: int = Field(
        default=4 * MiB,
        ge=64 * 1024,
        description="Read-block budget shared by the chunks in flight (bounds memory)",
    )
    upload_retry_budget: int = Field(
        default=0, ge=0, description="Retries allowed across one upload (0 = auto)"
    )
    state_dir: Path = Field(default_factory=default_state_dir, description="Journal folder")

    proxy: SecretStr | None = Field(
        default=None,
        description="Proxy URL, http://[USER:PASSWORD@]HOST:PORT; beats HTTPS_PROXY/HTTP_PROXY/"
        "ALL_PROXY (NO_PROXY still applies)",
    )
    ca_bundle: Path | None = Field(
        default=None,
        description="PEM file (or hashed folder) of CAs to trust instead of the default store; "
        "else REQUESTS_CA_BUNDLE, SSL_CERT_FILE, SSL_CERT_DIR",
    )
    client_cert: Path | None = Field(
        default=None, description="PEM client certificate for mutual TLS (may hold the key)"
    )
    client_key: Path | None = Field(default=None, description="PEM key of the client certificate")
    trust: Literal["default", "system"] = Field(
        default="default",
        description="default: Python's CA store; system: the operating system's (truststore)",
    )

    poll_initial: float = Field(default=0.5, gt=0, description="First poll interval, s")
    poll_max: float = Field(default=10.0, gt=0, description="Largest poll interval, s")
    poll_multiplier: float = Field(default=1.5, ge=1.0)
    poll_min_interval: float = Field(
        default=1.0, ge=0, description="Floor that keeps polling under 60/min after the first"
    )

    @field_validator("host")
    @classmethod
    def _strip_host(cls, value: str) -> str:
        return value.strip()

    def __repr__(self) -> str:  # the SecretStr already masks; keep the repr short
        return f"Settings(host={self.host!r}, api_key=SecretStr('**********'))"

    @classmethod
    def resolve(cls, **overrides: Any) -> Settings:
        """Build settings from the given arguments (``None`` means "not given") and env.

        Raises :class:`ConfigurationError` for a missing host or key, or any invalid value.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            settings = cls(**given)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigurationError(f"invalid settings: {problems}") from None
        if not settings.host:
            raise ConfigurationError("no host: pass host=... or set KORE_HOST")
        key = settings.api_key.get_secret_value().strip()
        if not key:
            raise ConfigurationError("no API key: pass api_key=... or set KORE_API_KEY")
        if any(ch in key for ch in "\r\n\x00"):
            raise ConfigurationError("the API key contains a control character")
        host = normalise_host(settings.host, allow_insecure_http=settings.allow_insecure_http)
        return settings.model_copy(update={"host": host, "api_key": SecretStr(key)})

    def block_size_for(self, concurrency: int) -> int:
        """Bytes per disk read when ``concurrency`` chunks stream at once.

        Each chunk in flight holds two read buffers plus what the socket has not taken
        yet (at most one more block), so the budget is split between the chunks: memory
        stays near ``3 x max_buffer_bytes`` whatever the chunk size and concurrency.
        """
        share = self.max_buffer_bytes // max(1, concurrency)
        return max(128 * 1024, min(self.read_block_size, share))

    @property
    def base_url(self) -> str:
        """``{host}/api/public``."""
        return f"{self.host}/api/public"
