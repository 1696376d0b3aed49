"""What the high-level calls return: ImportResult, ExportResult and DownloadResult.

Each is a frozen pydantic model with snake_case attributes and camelCase aliases, so
``result.model_dump(by_alias=True, mode="json")`` is the JSON the CLI prints.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .types import JobDocument

__all__ = ["DownloadResult", "ExportResult", "ImportResult", "VerifyResult"]


class _Result(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="forbid"
    )


class ImportResult(_Result):
    """An import: the ids the server gave, the job's final status, and what it cost."""

    model_id: str | None = Field(description="The model id allocated by the server")
    dock_status_id: str | None = Field(description="The import job's dock-status id")
    session_id: str = Field(description="The upload session id")
    status: str | None = Field(description="The job's last known status (None: not awaited)")
    bytes: int = Field(description="Size of the file imported (of the tar sent, for a folder)")
    chunks: int = Field(description="Chunks in the plan")
    chunk_size: int = Field(description="Bytes per chunk (the last one may be shorter)")
    chunks_sent: int = Field(description="Chunks sent by this run")
    chunks_resumed: int = Field(description="Chunks already on the server from an earlier run")
    bytes_sent: int = Field(description="Bytes sent by this run (resumed chunks excluded)")
    retries: int = Field(description="Retried requests")
    peak_concurrency: int = Field(default=0, description="Most chunk requests allowed at once")
    final_concurrency: int = Field(default=0, description="Chunk requests allowed at the end")
    seconds: float = Field(description="Wall time of this run")
    resumed: bool = Field(description="True when an earlier run's session was reused")
    job: JobDocument | None = Field(default=None, description="The final job document")
    sha256: str | None = Field(
        description="SHA-256 (hex) of the bytes sent: sha256sum of the file "
        "(None with checksum=False)"
    )


class DownloadResult(_Result):
    """A download: saved to disk, or only streamed through SHA-256 (``path`` None)."""

    path: Path | None = Field(description="Where the file is (None: hashed, not kept)")
    bytes: int = Field(description="Its size")
    resumed_from: int = Field(description="Bytes kept from an earlier, interrupted download")
    restarts: int = Field(description="Times the download had to start over")
    sha256: str = Field(description="SHA-256 of the bytes downloaded (hex)")
    ranges: int = Field(default=1, description="Range requests in flight at once (1: one stream)")


class ExportResult(_Result):
    """An exported model on disk."""

    model_id: str = Field(description="The model exported")
    dock_status_id: str | None = Field(description="The export job's dock-status id")
    path: Path = Field(description="Where the file is")
    bytes: int = Field(description="Its size")
    seconds: float = Field(description="Wall time, export job and download")
    resumed_from: int = Field(description="Bytes kept from an earlier, interrupted download")
    sha256: str = Field(description="SHA-256 of the file (hex)")


class VerifyResult(_Result):
    """A model on the server compared with a local file by SHA-256."""

    model_id: str = Field(description="The model verified")
    dock_status_id: str | None = Field(description="The export job's dock-status id")
    path: Path = Field(description="The local file compared")
    local_bytes: int = Field(description="Size of the local file")
    local_sha256: str = Field(description="SHA-256 of the local file (hex)")
    model_bytes: int = Field(description="Size of the model the server exported")
    model_sha256: str = Field(description="SHA-256 of the model the server exported (hex)")
    matches: bool = Field(description="True when both digests are equal")
    kept: Path | None = Field(default=None, description="Where the download was kept, if asked")
    seconds: float = Field(description="Wall time, export job and download")
