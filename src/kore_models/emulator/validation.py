"""Request-body validation for session start and deploy (kore-api.md §3.1, §4.2)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

DEVICE_TYPES = (
    "g4dn.xlarge",
    "g5.xlarge",
    "g5.2xlarge",
    "g6e.xlarge",
    "g4dn.12xlarge",
    "g5.12xlarge",
    "g5.48xlarge",
    "g4dn.metal",
)
OPTIMIZATION_TYPES = ("", "ctranslate2", "vllm")
QUANTIZATION_TYPES = ("", "no_quantization", "int8_float16")
MODEL_TYPES = ("openSource", "fineTune")
MAX_TOTAL_CHUNKS = 1_000_000
# The extension becomes part of a stored file name (files/<id>.<extension>): keep it plain.
SAFE_EXTENSION = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")

Problems = list[dict[str, Any]]


def _problem(problems: Problems, field: str, msg: str) -> None:
    problems.append({"msg": f"{field}: {msg}", "code": "VALIDATION_ERROR", "field": field})


def raise_if(problems: Problems) -> None:
    if problems:
        raise ApiError(400, "VALIDATION_ERROR", problems[0]["msg"], errors=problems)


def _is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def sanitize_file_name(name: str) -> str:
    """A safe basename: no directories, no control characters, never empty or a dot name."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()
    base = re.sub(r"[^\w.\- ()+,@=]", "_", base)
    base = base.lstrip(".")
    return base[:255] or "upload"


@dataclass(frozen=True)
class StartRequest:
    file_context: str
    total_chunks: int
    file_extension: str
    file_name: str
    file_size: int
    is_adapter: bool


def validate_start(body: Any, allowed_extensions: list[str]) -> StartRequest:
    p: Problems = []
    if not isinstance(body, dict):
        raise ApiError(400, "VALIDATION_ERROR", "body must be a JSON object")
    ctx: Any = body.get("fileContext")
    if not isinstance(ctx, str) or not ctx.strip():
        _problem(p, "fileContext", "required non-empty string")
    total: Any = body.get("totalChunks")
    if not _is_int(total):
        _problem(p, "totalChunks", "required integer")
    elif not 1 <= int(total) <= MAX_TOTAL_CHUNKS:
        _problem(p, "totalChunks", f"must be between 1 and {MAX_TOTAL_CHUNKS}")
    ext: Any = body.get("fileExtension")
    if not isinstance(ext, str) or not ext.strip(".").strip():
        _problem(p, "fileExtension", "required non-empty string")
    elif not SAFE_EXTENSION.fullmatch(ext.lower().lstrip(".")):
        _problem(p, "fileExtension", "must be up to 32 letters, digits, '.', '-' or '_'")
    elif ctx == "model" and ext.lower().lstrip(".") not in allowed_extensions:
        _problem(p, "fileExtension", f"must be one of {allowed_extensions} for model files")
    name: Any = body.get("fileName")
    if not isinstance(name, str) or not name.strip():
        _problem(p, "fileName", "required non-empty string")
    size: Any = body.get("fileSize")
    if not _is_int(size):
        _problem(p, "fileSize", "required integer")
    elif int(size) < 1:
        _problem(p, "fileSize", "must be at least 1")
    adapter = body.get("isAdapter", False)
    if isinstance(adapter, str) and adapter.lower() in ("true", "false"):
        adapter = adapter.lower() == "true"
    if not isinstance(adapter, bool):
        _problem(p, "isAdapter", "must be a boolean")
    raise_if(p)
    return StartRequest(
        file_context=ctx.strip(),
        total_chunks=int(total),
        file_extension=ext.lower().lstrip("."),
        file_name=sanitize_file_name(name),
        file_size=int(size),
        is_adapter=bool(adapter),
    )


def _range(
    p: Problems,
    obj: dict[str, Any],
    prefix: str,
    key: str,
    lo: float,
    hi: float,
    *,
    integer: bool,
    required: bool,
) -> None:
    field = f"{prefix}{key}"
    if key not in obj:
        if required:
            _problem(p, field, "required")
        return
    v = obj[key]
    if integer and not _is_int(v):
        _problem(p, field, "must be an integer")
    elif not integer and not _is_num(v):
        _problem(p, field, "must be a number")
    elif not lo <= v <= hi:
        _problem(p, field, f"must be between {lo:g} and {hi:g}")


def validate_deploy(model_type: str | None, body: Any) -> None:
    """Raise ApiError(400) listing every invalid field of a deploy request."""
    p: Problems = []
    if model_type not in MODEL_TYPES:
        _problem(p, "modelType", f"query parameter must be one of {list(MODEL_TYPES)}")
    if not isinstance(body, dict):
        p.append({"msg": "body must be a JSON object", "code": "VALIDATION_ERROR", "field": ""})
        raise_if(p)
        return
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        _problem(p, "name", "required non-empty string")
    for key in ("isDeployedPreviously", "isDeployedPreviouly"):
        if key in body and not isinstance(body[key], bool):
            _problem(p, key, "must be a boolean")
    hp = body.get("hyperParameters")
    if not isinstance(hp, dict):
        _problem(p, "hyperParameters", "required object")
    else:
        pre = "hyperParameters."
        _range(p, hp, pre, "temperature", 0, 2, integer=False, required=True)
        _range(p, hp, pre, "maxTokens", 0, 512, integer=True, required=True)
        _range(p, hp, pre, "topP", 0, 1, integer=False, required=True)
        _range(p, hp, pre, "topK", 1, 100, integer=True, required=True)
        stop = hp.get("stopSequence", [])
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            _problem(p, pre + "stopSequence", "must be an array of strings")
    sp = body.get("scalingParameters")
    if sp is not None:
        if not isinstance(sp, dict):
            _problem(p, "scalingParameters", "must be an object")
        else:
            pre = "scalingParameters."
            _range(p, sp, pre, "maxBatchSize", 1, 256, integer=True, required=False)
            _range(p, sp, pre, "minReplicas", 1, 10, integer=True, required=False)
            _range(p, sp, pre, "maxReplicas", 1, 50, integer=True, required=False)
            _range(p, sp, pre, "scaleUpDelay", 1, 1000, integer=True, required=False)
            _range(p, sp, pre, "scaleDownDelay", 50, 2000, integer=True, required=False)
            lo: Any = sp.get("minReplicas")
            hi: Any = sp.get("maxReplicas")
            if _is_int(lo) and _is_int(hi) and lo > hi:
                _problem(p, pre + "minReplicas", "must not exceed maxReplicas")
    dev = body.get("deviceType")
    if dev not in DEVICE_TYPES:
        _problem(p, "deviceType", f"required, one of {list(DEVICE_TYPES)}")
    oi = body.get("optimizationInfo")
    if oi is not None:
        if not isinstance(oi, dict):
            _problem(p, "optimizationInfo", "must be an object")
        else:
            if oi.get("optimizationType", "") not in OPTIMIZATION_TYPES:
                _problem(
                    p,
                    "optimizationInfo.optimizationType",
                    f"must be one of {list(OPTIMIZATION_TYPES)}",
                )
            if oi.get("quantizationType", "") not in QUANTIZATION_TYPES:
                _problem(
                    p,
                    "optimizationInfo.quantizationType",
                    f"must be one of {list(QUANTIZATION_TYPES)}",
                )
    raise_if(p)
