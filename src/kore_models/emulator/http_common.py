"""Shared helpers of the API routes: bounded JSON request bodies and the public origin."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .errors import ApiError
from .faults import STATE
from .guards import within_body_timeout
from .state import EmulatorState

MAX_JSON_BYTES = 1 << 20


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    """Parse a JSON body (≤ 1 MiB); optional bodies may be empty."""
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"JSON body over {MAX_JSON_BYTES} bytes")
    state = request.app[STATE]
    raw = b""
    while len(raw) <= MAX_JSON_BYTES and (
        more := await within_body_timeout(state, request.content.read(MAX_JSON_BYTES + 1))
    ):
        raw += more
    if len(raw) > MAX_JSON_BYTES:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"JSON body over {MAX_JSON_BYTES} bytes")
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(400, "VALIDATION_ERROR", "a JSON body is required")
    try:
        return json.loads(raw)
    except ValueError as exc:
        if optional:
            return {}
        raise ApiError(400, "INVALID_JSON", f"body is not valid JSON: {exc}") from None


def origin(request: web.Request, state: EmulatorState) -> str:
    """Scheme and host that download URLs point at (configurable for proxies and tests)."""
    return state.config.download_base_url or f"{request.scheme}://{request.host}"
