"""The emulator's own request models (session start, deploy) and their 400 error documents."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ApiError

MAX_TOTAL_CHUNKS = 1_000_000
# The extension becomes part of a stored file name (files/<id>.<extension>): keep it plain.
SAFE_EXTENSION = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")


class DeviceType(StrEnum):
    """GPU instance types a deploy may ask for."""

    G4DN_XLARGE = "g4dn.xlarge"
    G5_XLARGE = "g5.xlarge"
    G5_2XLARGE = "g5.2xlarge"
    G6E_XLARGE = "g6e.xlarge"
    G4DN_12XLARGE = "g4dn.12xlarge"
    G5_12XLARGE = "g5.12xlarge"
    G5_48XLARGE = "g5.48xlarge"
    G4DN_METAL = "g4dn.metal"


def _json_integer(value: Any) -> Any:
    """A JSON number with no fraction (2 or 2.0); never a bool or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("required non-empty string")
    return value.strip()


JsonInt = Annotated[int, BeforeValidator(_json_integer)]
JsonNumber = Annotated[float, BeforeValidator(_json_number)]
NonEmpty = Annotated[str, Field(strict=True), AfterValidator(_non_empty)]


def sanitize_file_name(name: str) -> str:
    """A safe basename: no directories, no control characters, never empty or a dot name."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()
    base = re.sub(r"[^\w.\- ()+,@=]", "_", base)
    base = base.lstrip(".")
    return base[:255] or "upload"


class StartRequest(BaseModel):
    """POST /files/session/start body."""

    model_config = ConfigDict(frozen=True)

    file_context: NonEmpty = Field(alias="fileContext")
    total_chunks: JsonInt = Field(alias="totalChunks", ge=1, le=MAX_TOTAL_CHUNKS)
    file_extension: NonEmpty = Field(alias="fileExtension")
    file_name: NonEmpty = Field(alias="fileName")
    file_size: JsonInt = Field(alias="fileSize", ge=1)
    is_adapter: bool = Field(default=False, alias="isAdapter", strict=True)

    @field_validator("is_adapter", mode="before")
    @classmethod
    def _adapter_text(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return value

    @field_validator("file_extension")
    @classmethod
    def _plain_extension(cls, value: str) -> str:
        ext = value.lower().lstrip(".")
        if not SAFE_EXTENSION.fullmatch(ext):
            raise ValueError("must be up to 32 letters, digits, '.', '-' or '_'")
        return ext

    @field_validator("file_name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return sanitize_file_name(value)


class HyperParameters(BaseModel):
    temperature: JsonNumber = Field(ge=0, le=2)
    max_tokens: JsonInt = Field(alias="maxTokens", ge=0, le=512)
    top_p: JsonNumber = Field(alias="topP", ge=0, le=1)
    top_k: JsonInt = Field(alias="topK", ge=1, le=100)
    stop_sequence: list[Annotated[str, Field(strict=True)]] = Field(
        default_factory=list, alias="stopSequence", strict=True
    )


class ScalingParameters(BaseModel):
    max_batch_size: JsonInt | None = Field(default=None, alias="maxBatchSize", ge=1, le=256)
    min_replicas: JsonInt | None = Field(default=None, alias="minReplicas", ge=1, le=10)
    max_replicas: JsonInt | None = Field(default=None, alias="maxReplicas", ge=1, le=50)
    scale_up_delay: JsonInt | None = Field(default=None, alias="scaleUpDelay", ge=1, le=1000)
    scale_down_delay: JsonInt | None = Field(default=None, alias="scaleDownDelay", ge=50, le=2000)

    @model_validator(mode="after")
    def _replicas_ordered(self) -> ScalingParameters:
        low, high = self.min_replicas, self.max_replicas
        if low is not None and high is not None and low > high:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class OptimizationInfo(BaseModel):
    optimization_type: Literal["", "ctranslate2", "vllm"] = Field(
        default="", alias="optimizationType"
    )
    quantization_type: Literal["", "no_quantization", "int8_float16"] = Field(
        default="", alias="quantizationType"
    )


class DeployRequest(BaseModel):
    """POST /models/{id}/deploy body (unknown keys are ignored, as the service does)."""

    name: NonEmpty
    is_deployed_previously: bool | None = Field(
        default=None, alias="isDeployedPreviously", strict=True
    )
    # The docs spell it both ways; both are accepted.
    is_deployed_previouly: bool | None = Field(
        default=None, alias="isDeployedPreviouly", strict=True
    )
    hyper_parameters: HyperParameters = Field(alias="hyperParameters")
    scaling_parameters: ScalingParameters | None = Field(default=None, alias="scalingParameters")
    device_type: DeviceType = Field(alias="deviceType")
    optimization_info: OptimizationInfo | None = Field(default=None, alias="optimizationInfo")


class DeployQuery(BaseModel):
    model_type: Literal["openSource", "fineTune"] = Field(alias="modelType")


def _problems(exc: ValidationError) -> list[dict[str, Any]]:
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required"
        if error["type"] == "model_type":
            message = "must be a JSON object"
        label = field or "body"
        problems.append({"msg": f"{label}: {message}", "code": "VALIDATION_ERROR", "field": field})
    return problems


def validation_error(exc: ValidationError) -> ApiError:
    """One 400 listing every invalid field, the first one's message on top."""
    problems = _problems(exc)
    return ApiError(400, "VALIDATION_ERROR", problems[0]["msg"], errors=problems)


def _body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "VALIDATION_ERROR", "body must be a JSON object", field="")
    return body


def validate_start(body: Any, allowed_extensions: list[str]) -> StartRequest:
    """The parsed start request, or ApiError(400) naming each bad field."""
    try:
        request = StartRequest.model_validate(_body_object(body))
    except ValidationError as exc:
        raise validation_error(exc) from None
    if request.file_context == "model" and request.file_extension not in allowed_extensions:
        message = f"fileExtension: must be one of {allowed_extensions} for model files"
        raise ApiError(400, "VALIDATION_ERROR", message, field="fileExtension")
    return request


def validate_deploy(model_type: str | None, body: Any) -> DeployRequest:
    """The parsed deploy request, or ApiError(400) naming each bad field (query and body)."""
    problems: list[dict[str, Any]] = []
    try:
        DeployQuery.model_validate({"modelType": model_type} if model_type else {})
    except ValidationError as exc:
        problems += _problems(exc)
    try:
        request = DeployRequest.model_validate(body)
    except ValidationError as exc:
        problems += _problems(exc)
    if problems:
        raise ApiError(400, "VALIDATION_ERROR", problems[0]["msg"], errors=problems)
    return request
