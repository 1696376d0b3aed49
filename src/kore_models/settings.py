"""Client settings: explicit argument, else a ``KORE_*`` environment variable, else the default.

Every default lives here once. The model's own validators normalise the host (a bare name
gets ``https://``), refuse plain ``http://`` to anything but a loopback address unless
``allow_insecure_http`` is set, check the key, and parse sizes with the one size parser,
so ``Settings(...)``, ``KORE_*`` variables and the CLI share one set of rules and bounds.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError, format_validation_error
from .units import MiB, parse_rate, parse_size

__all__ = ["Settings", "default_state_dir", "is_loopback_host", "normalise_host"]

ByteCount = Annotated[int, BeforeValidator(parse_size)]
"""An int field that also takes ``16MiB``-style texts (from arguments or ``KORE_*``)."""

ByteRate = Annotated[int, BeforeValidator(parse_rate)]
"""Bytes per second; also takes ``50MB/s``-style texts."""


def _auto_or_int(value: Any) -> Any:
    text = value.strip().lower() if isinstance(value, str) else None
    if text == "auto":
        return "auto"
    if text is not None and text.isdigit():
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
        raise ValueError(f'concurrency must be "auto" or a number from 1 to 256, not {value!r}')
    return value


Concurrency = Annotated[int | Literal["auto"], BeforeValidator(_auto_or_int)]
"""``"auto"`` (the controller finds it) or a pinned number of requests in flight."""


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

    # allow_insecure_http comes before host: the host validator reads it.
    allow_insecure_http: bool = Field(
        default=False, description="Allow plain http:// to a host that is not loopback"
    )
    host: str = Field(
        default="",
        validate_default=True,
        description="Environment URL, e.g. https://agent-platform.kore.ai (https:// if no scheme)",
    )
    api_key: SecretStr = Field(
        default=SecretStr(""), validate_default=True, description="The x-api-key value"
    )

    connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds for the TCP and TLS connect (not the pool wait)"
    )
    read_timeout: float = Field(
        default=60.0, gt=0, description="Seconds allowed between two reads of a response"
    )
    request_timeout: float = Field(
        default=300.0,
        gt=0,
        description="Overall seconds for one API call attempt (not chunk bodies or downloads)",
    )
    stall_timeout: float = Field(
        default=60.0, gt=0, description="Seconds without a byte sent before a chunk fails"
    )

    max_attempts: int = Field(default=6, ge=1, le=100, description="Attempts per request")
    retry_deadline: float = Field(
        default=600.0, gt=0, description="Seconds after which a request is no longer retried"
    )
    backoff_initial: float = Field(default=0.5, ge=0, description="First backoff ceiling, s")
    backoff_max: float = Field(default=30.0, ge=0, description="Largest backoff ceiling, s")
    retry_after_cap: float = Field(
        default=120.0, ge=0, description="Largest server Retry-After honoured, s"
    )
    retry_sleeps: bool = Field(default=True, description="False removes backoff sleeps (tests)")

    chunk_size: ByteCount = Field(
        default=16 * MiB, ge=1, le=1024 * MiB, description="Bytes per chunk (e.g. 16MiB)"
    )
    max_chunk_size: ByteCount = Field(
        default=64 * MiB,
        ge=1,
        le=1024 * MiB,
        description="Largest chunk the planner may raise the size to",
    )
    max_chunks: int = Field(
        default=10_000, ge=1, description="Chunk count above which the size is raised"
    )
    concurrency: Concurrency = Field(
        default="auto",
        description='Requests in flight per client: "auto" (found by measuring) or a number',
    )
    max_concurrency: int = Field(
        default=32, ge=1, le=256, description='Most requests in flight that "auto" may use'
    )
    limit_rate: ByteRate | None = Field(
        default=None,
        ge=1,
        description="Cap on upload plus download bytes per second for the process (e.g. 50MB/s)",
    )
    read_block_size: ByteCount = Field(
        default=1 * MiB, ge=4096, description="Largest single disk read"
    )
    checksum: bool = Field(
        default=True,
        description="Compute the SHA-256 of the bytes each import sends, in a worker thread "
        "(about 0.6-0.9 CPU-s per GiB); False skips it",
    )
    max_buffer_bytes: ByteCount = Field(
        default=4 * MiB,
        ge=64 * 1024,
        description="Read-block budget shared by the chunks in flight (bounds memory)",
    )
    upload_retry_budget: int = Field(
        default=0, ge=0, description="Retries allowed across one upload (0 = automatic)"
    )
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Folder of resume journals (default $XDG_STATE_HOME/kore-models)",
    )

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
    poll_multiplier: float = Field(
        default=1.5, ge=1.0, description="Growth of the poll interval after each poll"
    )
    poll_min_interval: float = Field(
        default=1.0, ge=0, description="Floor that keeps polling under 60/min after the first"
    )

    @field_validator("host")
    @classmethod
    def _normalise_host(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ConfigurationError("no host: pass host=... or set KORE_HOST")
        allow = bool(info.data.get("allow_insecure_http", False))
        return normalise_host(value, allow_insecure_http=allow)

    @field_validator("api_key")
    @classmethod
    def _check_key(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value().strip()
        if not key:
            raise ConfigurationError("no API key: pass api_key=... or set KORE_API_KEY")
        if any(ch in key for ch in "\r\n\x00"):
            raise ConfigurationError("the API key contains a control character")
        return SecretStr(key)

    def __repr__(self) -> str:  # the SecretStr already masks; keep the repr short
        return f"Settings(host={self.host!r}, api_key=SecretStr('**********'))"

    @classmethod
    def resolve(cls, **overrides: Any) -> Settings:
        """Build settings from the given arguments (``None`` means "not given") and env.

        Raises :class:`ConfigurationError` for a missing host or key, or any invalid value.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            return cls(**given)
        except ValidationError as exc:
            raise ConfigurationError(format_validation_error(exc, "invalid settings")) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and validated by the same rules (``None`` = keep)."""
        given = {k: v for k, v in changes.items() if v is not None}
        if not given:
            return self
        data = {**self.model_dump(), **given}
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError(format_validation_error(exc, "invalid settings")) from None

    @classmethod
    def bounds(cls, name: str) -> tuple[float | None, float | None]:
        """The ``(lowest, highest)`` allowed for field ``name`` (for the CLI's own checks)."""
        low: float | None = None
        high: float | None = None
        for rule in cls.model_fields[name].metadata:
            low = getattr(rule, "ge", None) if getattr(rule, "ge", None) is not None else low
            high = getattr(rule, "le", None) if getattr(rule, "le", None) is not None else high
        return low, high

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
