"""Emulator configuration model (start-time options and run-time tunables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator

MiB = 1024 * 1024
DEFAULT_API_KEY = "kg-emulator-local-key"
DEFAULT_MAX_CHUNK_BYTES = 64 * MiB + 64 * 1024
FAULT_KINDS = ("500", "502", "503", "429", "reset", "stall")

# Fields that PATCH /_emulator/config may change while the emulator runs.
RUNTIME_FIELDS = frozenset(
    {
        "latency_ms",
        "throughput_bytes_per_second",
        "total_throughput_bytes_per_second",
        "max_chunks_in_flight",
        "max_data_size",
        "failure_rate",
        "failure_kinds",
        "retry_after_seconds",
        "stall_seconds",
        "body_timeout_seconds",
        "rate_limit_per_minute",
        "dock_status_rate_limit_per_minute",
        "session_ttl_seconds",
        "max_chunk_bytes",
        "job_seconds",
        "download_base_url",
        "allowed_extensions",
    }
)


def mask_key(key: str) -> str:
    """Return a display form of an API key that never reveals it in full."""
    if len(key) <= 8:
        return "…"
    return f"{key[:4]}…{key[-3:]}"


class EmulatorConfig(BaseModel):
    """Every option of the emulator; see the README section "Emulator" for the meaning of each."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    api_key: str = Field(default=DEFAULT_API_KEY, min_length=1)
    data_dir: Path | None = None
    storage: Literal["disk", "discard"] = "disk"
    session_ttl_seconds: float = Field(default=86400.0, gt=0)
    max_chunk_bytes: int = Field(default=DEFAULT_MAX_CHUNK_BYTES, ge=1)
    job_seconds: float = Field(default=2.0, ge=0)
    latency_ms: float = Field(default=0.0, ge=0)
    throughput_bytes_per_second: float | None = Field(default=None, gt=0)
    total_throughput_bytes_per_second: float | None = Field(default=None, gt=0)
    max_chunks_in_flight: int | None = Field(default=None, ge=1)
    max_data_size: ByteSize | None = Field(default=None, ge=1)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    failure_kinds: list[str] = Field(default_factory=lambda: ["500", "502", "503", "429"])
    retry_after_seconds: float = Field(default=1.0, ge=0)
    stall_seconds: float = Field(default=30.0, ge=0)
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    dock_status_rate_limit_per_minute: int | None = Field(default=None, ge=1)
    seed: int | None = None
    download_base_url: str | None = None
    header_timeout_seconds: float = Field(default=30.0, gt=0)
    body_timeout_seconds: float = Field(default=60.0, gt=0)
    control_token: str | None = Field(default=None, min_length=8)
    allowed_extensions: list[str] = Field(
        default_factory=lambda: ["tar", "tar.gz", "tgz", "gz", "zip"]
    )

    @field_validator("failure_kinds")
    @classmethod
    def _check_kinds(cls, value: list[str]) -> list[str]:
        bad = [k for k in value if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown failure kinds {bad}; allowed: {list(FAULT_KINDS)}")
        if not value:
            raise ValueError("failure_kinds must not be empty")
        return value

    @field_validator("allowed_extensions")
    @classmethod
    def _norm_ext(cls, value: list[str]) -> list[str]:
        return [v.lower().lstrip(".") for v in value]

    @field_validator("download_base_url")
    @classmethod
    def _check_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("download_base_url must start with http:// or https://")
        return value

    def public_view(self) -> dict[str, Any]:
        """JSON-ready dump with the API key masked."""
        data = self.model_dump(mode="json")
        data["api_key"] = mask_key(self.api_key)
        if self.control_token is not None:
            data["control_token"] = "…"  # noqa: S105 - a mask, not a secret
        return data
