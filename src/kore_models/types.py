"""Pydantic v2 models of every request and response of the Kore.ai model APIs.

Requests are strict (validated before anything is sent). Responses are lenient, as the
docs disagree with themselves (see "API notes" in the docs): every documented spelling of a
field is accepted and normalised to one attribute, statuses compare case-insensitively,
unknown statuses and extra fields are kept.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "DEVICE_TYPES",
    "ChunkAccepted",
    "DeployConfig",
    "DeviceType",
    "HyperParameters",
    "JobDocument",
    "JobStatus",
    "ModelType",
    "OptimizationInfo",
    "ScalingParameters",
    "SessionStarted",
    "StartSessionRequest",
    "check_server_id",
    "normalise_status",
]

ModelType = Literal["openSource", "fineTune"]
DeviceType = Literal[
    "g4dn.xlarge",
    "g5.xlarge",
    "g5.2xlarge",
    "g6e.xlarge",
    "g4dn.12xlarge",
    "g5.12xlarge",
    "g5.48xlarge",
    "g4dn.metal",
]
DEVICE_TYPES: tuple[str, ...] = get_args(DeviceType)


class JobStatus:
    """The documented dock-status values; anything else is kept as given and not terminal."""

    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


_STATUS_BY_LETTERS = {"INPROGRESS": "IN_PROGRESS", "SUCCESS": "SUCCESS", "FAILED": "FAILED"}


def normalise_status(value: str) -> str:
    """Map any case or spacing of a documented status (``in progres s``) to its canonical form."""
    letters = re.sub(r"[^A-Z]", "", value.upper())
    return _STATUS_BY_LETTERS.get(letters, value.strip().upper())


_MAX_ID_CHARS = 256


def check_server_id(value: Any) -> Any:
    """An id the server gave must be usable as one URL path segment and a journal value.

    Refused: empty, longer than 256 characters, ``.`` or ``..``, a slash or backslash,
    whitespace or control characters. A string is stripped first; other types pass to
    the field's own validation.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        raise ValueError("empty identifier")
    if len(text) > _MAX_ID_CHARS:
        raise ValueError(f"identifier longer than {_MAX_ID_CHARS} characters")
    if (
        text in (".", "..")
        or any(ch in text for ch in "/\\")
        or any(ch.isspace() or not ch.isprintable() for ch in text)
    ):
        raise ValueError(f"identifier {text[:40]!r} is not a safe URL path segment")
    return text


class _Request(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def to_api(self) -> dict[str, Any]:
        """The JSON body the API expects (camelCase keys, unset optionals left out)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class StartSessionRequest(_Request):
    """Body of POST /files/session/start."""

    file_context: str = Field(min_length=1)
    total_chunks: int = Field(ge=1)
    file_extension: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    file_name: str = Field(min_length=1, max_length=255)
    file_size: int = Field(ge=1)
    is_adapter: bool | None = None

    @field_validator("file_name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if "/" in value or "\\" in value or value in (".", "..") or "\x00" in value:
            raise ValueError("file_name must be a plain file name, without folders")
        return value


class HyperParameters(_Request):
    """Deploy hyper-parameters, ranges from the deploy API docs."""

    temperature: float = Field(ge=0, le=2)
    max_tokens: int = Field(ge=0, le=512)
    top_p: float = Field(ge=0, le=1)
    top_k: int = Field(ge=1, le=100)
    stop_sequence: list[str] | None = None


class ScalingParameters(_Request):
    """Deploy scaling parameters (all optional), ranges from the deploy API docs."""

    max_batch_size: int | None = Field(default=None, ge=1, le=256)
    min_replicas: int | None = Field(default=None, ge=1, le=10)
    max_replicas: int | None = Field(default=None, ge=1, le=50)
    scale_up_delay: int | None = Field(default=None, ge=1, le=1000)
    scale_down_delay: int | None = Field(default=None, ge=50, le=2000)

    @model_validator(mode="after")
    def _replicas_ordered(self) -> ScalingParameters:
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and self.min_replicas > self.max_replicas
        ):
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


class OptimizationInfo(_Request):
    """Optional optimisation; the docs' samples send empty strings for "none"."""

    optimization_type: Literal["", "ctranslate2", "vllm"] = ""
    quantization_type: Literal["", "no_quantization", "int8_float16"] = ""


class DeployConfig(_Request):
    """Body of POST /models/{modelId}/deploy: every field, range and enum of section 4.2."""

    name: str = Field(min_length=1)
    is_deployed_previously: bool | None = None
    hyper_parameters: HyperParameters
    scaling_parameters: ScalingParameters | None = None
    device_type: DeviceType
    optimization_info: OptimizationInfo | None = None


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    @property
    def extra(self) -> dict[str, Any]:
        """Fields the server sent that this model does not name."""
        return dict(self.model_extra or {})


class SessionStarted(_Response):
    """Response of POST /files/session/start."""

    session_id: str = Field(validation_alias=AliasChoices("sessionId", "session_id", "id"))
    expiration_date: datetime | None = Field(
        default=None, validation_alias=AliasChoices("expirationDate", "expiration_date")
    )
    model_id: str | None = Field(default=None, validation_alias=AliasChoices("modelId", "model_id"))

    @field_validator("expiration_date", mode="before")
    @classmethod
    def _lenient_date(cls, value: Any) -> Any:
        """An expiry we cannot read is treated as unknown rather than fatal."""
        if value is None or isinstance(value, datetime):
            return value
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                return None
        return None

    @field_validator("session_id", "model_id", mode="before")
    @classmethod
    def _usable_id(cls, value: Any) -> Any:
        return check_server_id(value)


class ChunkAccepted(_Response):
    """Response of POST /files/session/{sessionId}; ``chunkNumber`` may be a string."""

    chunk_number: int = Field(validation_alias=AliasChoices("chunkNumber", "chunk_number"))
    session_id: str | None = Field(
        default=None, validation_alias=AliasChoices("sessionId", "session_id")
    )

    @field_validator("chunk_number", mode="before")
    @classmethod
    def _int_from_text(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        return value


_JOB_ID_KEYS = ("dockStatusId", "dock-statusId", "dockstatusId", "dock_status_id", "_id", "id")
_URL_KEYS = ("downloadUrl", "downloadURL", "download_url", "url")


class JobDocument(_Response):
    """A dock-status job as returned by complete, export, deploy, undeploy and dock-status.

    ``dock_status_id`` comes from ``dockStatusId``, ``dock-statusId``, ``dockstatusId`` or
    ``_id``; ``download_url`` from ``response.downloadUrl``, ``downloadUrl`` or
    ``downloadURL`` (trimmed). A general-file complete gives ``file_url``/``file_id`` instead.
    """

    dock_status_id: str | None = None
    model_id: str | None = Field(default=None, validation_alias=AliasChoices("modelId", "model_id"))
    job_type: str | None = Field(default=None, validation_alias=AliasChoices("jobType", "job_type"))
    action: str | None = None
    status: str | None = None
    percentage_complete: float | None = Field(
        default=None, validation_alias=AliasChoices("percentageComplete", "percentage_complete")
    )
    download_url: str | None = None
    message: str | None = None
    response: dict[str, Any] | None = None
    file_url: str | None = None
    file_id: str | None = Field(default=None, validation_alias=AliasChoices("fileId", "file_id"))

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        job_id = next(
            (data[k] for k in _JOB_ID_KEYS if isinstance(data.get(k), str) and data[k].strip()),
            None,
        )
        if job_id is not None:
            data["dock_status_id"] = job_id.strip()
        nested = data.get("response") if isinstance(data.get("response"), dict) else {}
        url = next(
            (
                src[k]
                for src in (nested, data)
                for k in _URL_KEYS
                if k != "url" and isinstance(src.get(k), str) and src[k].strip()
            ),
            None,
        )
        if url is not None:
            data["download_url"] = url.strip()
        if isinstance(data.get("url"), str) and "fileId" in data:
            data["file_url"] = data["url"].strip()
        for key in ("status", "action", "jobType"):
            if isinstance(data.get(key), str):
                value = data[key]
                data[key] = normalise_status(value) if key == "status" else value.strip().upper()
        message = next(
            (
                src[k]
                for src in (data, nested)
                for k in ("message", "error", "msg", "reason")
                if isinstance(src.get(k), str) and src[k].strip()
            ),
            None,
        )
        if message is not None:
            data["message"] = message.strip()
        return data

    @field_validator("dock_status_id", "model_id", mode="before")
    @classmethod
    def _usable_id(cls, value: Any) -> Any:
        return check_server_id(value)

    @model_validator(mode="after")
    def _has_identity(self) -> JobDocument:
        if self.dock_status_id is None and self.file_id is None:
            raise ValueError(
                "no job id in the response (looked for dockStatusId, dock-statusId, "
                "dockstatusId, _id)"
            )
        return self

    @property
    def is_terminal(self) -> bool:
        """True once the job reached SUCCESS or FAILED."""
        return self.status in (JobStatus.SUCCESS, JobStatus.FAILED)

    @property
    def succeeded(self) -> bool:
        """True when the job ended SUCCESS."""
        return self.status == JobStatus.SUCCESS

    @property
    def failed(self) -> bool:
        """True when the job ended FAILED."""
        return self.status == JobStatus.FAILED
