"""Parse a response body into a response model, or raise ResponseValidationError."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .._http import ApiResponse
from ..errors import ResponseValidationError, format_validation_error

M = TypeVar("M", bound=BaseModel)


def parse_as(model: type[M], response: ApiResponse, *, what: str) -> M:
    """Validate ``response.data`` as ``model``; explain what did not fit."""
    data: Any = response.data
    if not isinstance(data, dict):
        raise ResponseValidationError(
            f"{what}: expected a JSON object, got {type(data).__name__}",
            body=data,
            request_id=response.request_id,
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ResponseValidationError(
            format_validation_error(exc, f"{what}: the response does not fit the documented shape"),
            body=data,
            request_id=response.request_id,
        ) from None
