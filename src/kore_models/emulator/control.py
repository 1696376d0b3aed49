"""Test control API under /_emulator: config, fault script, counters, clock, model bytes."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from . import jobs
from .errors import ApiError
from .faults import STATE
from .guards import within_body_timeout
from .housekeeping import delete_model_bytes, sweep_expired_sessions
from .state import ScriptedFault, iso_ms

PREFIX = "/_emulator"


async def _json(request: web.Request) -> Any:
    raw = await within_body_timeout(request.app[STATE], request.read())
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "INVALID_JSON", f"body is not valid JSON: {exc}") from None


def _invalid(exc: ValidationError | ValueError) -> ApiError:
    if isinstance(exc, ValidationError):
        errors = [
            {"msg": e["msg"], "code": "VALIDATION_ERROR", "field": ".".join(map(str, e["loc"]))}
            for e in exc.errors()
        ]
        return ApiError(400, "VALIDATION_ERROR", errors[0]["msg"], errors=errors)
    return ApiError(400, "VALIDATION_ERROR", str(exc))


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].config.public_view())


async def patch_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await _json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "VALIDATION_ERROR", "body must be a JSON object")
    try:
        state.update_config(**body)
    except (ValidationError, ValueError) as exc:
        raise _invalid(exc) from None
    return web.json_response(state.config.public_view())


async def post_script(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await _json(request)
    faults = body.get("faults") if isinstance(body, dict) else None
    if not isinstance(faults, list):
        raise ApiError(400, "VALIDATION_ERROR", 'body must be {"faults": [...]}')
    try:
        parsed = [ScriptedFault.model_validate(f) for f in faults]
    except ValidationError as exc:
        raise _invalid(exc) from None
    queued = state.add_faults(parsed)
    return web.json_response({"queued": queued})


async def get_script(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"faults": [f.model_dump() for f in state.script]})


async def delete_script(request: web.Request) -> web.Response:
    request.app[STATE].script.clear()
    return web.json_response({"queued": 0})


async def get_counters(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].counters.as_dict())


async def reset_counters(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.counters.reset()
    return web.json_response(state.counters.as_dict())


async def get_clock(request: web.Request) -> web.Response:
    state = request.app[STATE]
    now = state.now()
    return web.json_response(
        {"now": iso_ms(now), "epoch": now, "offset_seconds": state.clock_offset}
    )


async def post_clock(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await _json(request)
    seconds = body.get("advance_seconds") if isinstance(body, dict) else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise ApiError(400, "VALIDATION_ERROR", "advance_seconds must be a number >= 0")
    state.advance_clock(float(seconds))
    await sweep_expired_sessions(state)
    return await get_clock(request)


async def get_session(request: web.Request) -> web.Response:
    state = request.app[STATE]
    session = state.store.get_session(request.match_info["session_id"])
    if session is None:
        raise ApiError(404, "SESSION_NOT_FOUND", "session not found")
    sizes = state.store.chunk_sizes(session.id)
    return web.json_response(
        {
            "sessionId": session.id,
            "fileContext": session.file_context,
            "fileName": session.file_name,
            "fileSize": session.file_size,
            "totalChunks": session.total_chunks,
            "chunks": {str(n): size for n, size in sizes.items()},
            "completed": session.completed,
            "expired": state.now() >= session.expires_at,
            "expirationDate": iso_ms(session.expires_at),
            "modelId": session.model_id,
        }
    )


async def get_model(request: web.Request) -> web.Response:
    state = request.app[STATE]
    model = jobs.settle(state, request.match_info["model_id"])
    if model is None:
        raise ApiError(404, "MODEL_NOT_FOUND", "model not found")
    path = state.store.model_path(model.id)
    return web.json_response(
        {
            "modelId": model.id,
            "sessionId": model.session_id,
            "fileName": model.file_name,
            "isAdapter": model.is_adapter,
            "size": model.size,
            "sha256": model.sha256,
            "state": model.state,
            "discarded": model.discarded,
            "path": str(path) if path.exists() else None,
        }
    )


def _flip_byte(path: Path, offset: int) -> tuple[int, int, str]:
    """Invert the byte at offset in place; return (before, after, sha256 of the new content)."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        before = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([before ^ 0xFF]))
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return before, before ^ 0xFF, digest.hexdigest()


async def corrupt_model(request: web.Request) -> web.Response:
    """Alter one stored byte of a model (verify-mismatch tests); its recorded sha256 stays."""
    state = request.app[STATE]
    model = jobs.settle(state, request.match_info["model_id"])
    path = state.store.model_path(model.id) if model is not None else None
    if model is None or path is None or not path.exists() or not model.size:
        raise ApiError(404, "MODEL_NOT_FOUND", "no stored bytes for this model")
    body = await _json(request)
    offset = body.get("offset", model.size // 2) if isinstance(body, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < model.size:
        raise ApiError(400, "VALIDATION_ERROR", f"offset must be an integer in [0, {model.size})")
    before, after, current = await asyncio.to_thread(_flip_byte, path, offset)
    return web.json_response(
        {
            "modelId": model.id,
            "offset": offset,
            "before": before,
            "after": after,
            "sha256": model.sha256,
            "currentSha256": current,
        }
    )


async def delete_model(request: web.Request) -> web.Response:
    """Delete a model and its bytes (the public API has no delete; tests and disk need one)."""
    state = request.app[STATE]
    model = state.store.get_model(request.match_info["model_id"])
    if model is None:
        raise ApiError(404, "MODEL_NOT_FOUND", "model not found")
    await delete_model_bytes(state, model.id)
    state.store.delete_model(model.id)
    return web.json_response({"deleted": model.id})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def add_control_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/health", health)
    r.add_get(f"{PREFIX}/config", get_config)
    r.add_patch(f"{PREFIX}/config", patch_config)
    r.add_get(f"{PREFIX}/script", get_script)
    r.add_post(f"{PREFIX}/script", post_script)
    r.add_delete(f"{PREFIX}/script", delete_script)
    r.add_get(f"{PREFIX}/counters", get_counters)
    r.add_post(f"{PREFIX}/counters/reset", reset_counters)
    r.add_get(f"{PREFIX}/clock", get_clock)
    r.add_post(f"{PREFIX}/clock", post_clock)
    r.add_get(f"{PREFIX}/sessions/{{session_id}}", get_session)
    r.add_get(f"{PREFIX}/models/{{model_id}}", get_model)
    r.add_delete(f"{PREFIX}/models/{{model_id}}", delete_model)
    r.add_post(f"{PREFIX}/models/{{model_id}}/corrupt", corrupt_model)
