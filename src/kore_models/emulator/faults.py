"""Middleware: request ids, auth, latency, scripted/random faults, rate limits, error format."""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from .errors import RATE_LIMIT_MESSAGE, ApiError, code_for_status, error_response, format_seconds
from .guards import check_control_token, head_received, within_body_timeout
from .state import EmulatorState, ScriptedFault

LOG = logging.getLogger("kore_models.emulator")
STATE: web.AppKey[EmulatorState] = web.AppKey("emulator_state", EmulatorState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PREFIX = "/api/public/"
CONTROL_PREFIX = "/_emulator/"


async def _drain(state: EmulatorState, request: web.Request) -> None:
    while await within_body_timeout(state, request.content.readany()):
        pass


async def _abort_after(
    state: EmulatorState, request: web.Request, after_bytes: int | None
) -> web.StreamResponse:
    """Read after_bytes of the body (default: half of it), then abort the TCP connection."""
    if after_bytes is None:
        after_bytes = (request.content_length or 0) // 2
    got = 0
    while got < after_bytes:
        data = await within_body_timeout(
            state, request.content.read(min(1 << 20, after_bytes - got))
        )
        if not data:
            break
        got += len(data)
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


async def _stall(state: EmulatorState, request: web.Request, seconds: float) -> None:
    """Neither read nor respond for seconds (cut short by client disconnect or shutdown)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        transport = request.transport
        if state.stopping.is_set() or transport is None or transport.is_closing():
            return
        await asyncio.sleep(min(0.05, left))


async def apply_fault(
    state: EmulatorState, request: web.Request, route: str, fault: ScriptedFault
) -> web.StreamResponse | None:
    """Return the faulty response, or None when the handler must inject it (download reset)."""
    state.counters.faults_injected += 1
    action = fault.action
    cfg = state.config
    if action == "reset":
        if route == "download":
            request["reset_after"] = fault.after_bytes if fault.after_bytes is not None else -1
            return None
        return await _abort_after(state, request, fault.after_bytes)
    if action == "stall":
        seconds = fault.stall_seconds if fault.stall_seconds is not None else cfg.stall_seconds
        await _stall(state, request, seconds)
        return error_response(503, "STALLED", "emulated stall ended", injected=True)
    await _drain(state, request)
    if action == "429":
        retry = fault.retry_after if fault.retry_after is not None else cfg.retry_after_seconds
        return error_response(
            429,
            "RATE_LIMITED",
            RATE_LIMIT_MESSAGE,
            headers={"Retry-After": format_seconds(retry)},
            injected=True,
        )
    status = int(action)
    return error_response(status, code_for_status(status), f"emulated HTTP {status}", injected=True)


def _check_key(state: EmulatorState, request: web.Request) -> str:
    key = request.headers.get("x-api-key")
    if key is None:
        raise ApiError(401, "UNAUTHORIZED", "missing x-api-key header")
    if not hmac.compare_digest(key.encode(), state.config.api_key.encode()):
        raise ApiError(401, "UNAUTHORIZED", "invalid API key")
    return key


def _rate_limit(state: EmulatorState, key: str, request: web.Request, route: str | None) -> None:
    cfg = state.config
    buckets: list[tuple[str, int | None]] = [(f"key:{key}", cfg.rate_limit_per_minute)]
    if route == "dock_status":
        job = request.match_info.get("dock_status_id", "")
        buckets.append((f"job:{job}", cfg.dock_status_rate_limit_per_minute))
    for bucket, limit in buckets:
        if state.hit_rate_limit(bucket, limit):
            retry = max(1.0, state.retry_after_for(bucket))
            raise ApiError(
                429,
                "RATE_LIMITED",
                RATE_LIMIT_MESSAGE,
                headers={"Retry-After": str(int(retry + 0.999))},
            )


async def _send_and_hang_up(request: web.Request, response: web.StreamResponse) -> None:
    """Send the answer and close at once: no lingering wait for the rest of an idle body."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.transport is not None:
        request.transport.close()


@web.middleware
async def emulator_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    head_received(state, request)
    request["request_id"] = uuid.uuid4().hex
    route = request.match_info.route.name
    public = request.path.startswith(PUBLIC_PREFIX)
    try:
        response: web.StreamResponse | None = None
        if request.path.startswith(CONTROL_PREFIX):
            check_control_token(state, request)
        elif public or route == "download":
            if route is not None:
                state.counters.requests[route] = state.counters.requests.get(route, 0) + 1
            if state.config.latency_ms > 0:
                await asyncio.sleep(state.config.latency_ms / 1000)
            fault = state.take_fault(route) if route is not None else None
            if fault is not None:
                response = await apply_fault(state, request, route or "any", fault)
            if public and response is None:
                key = _check_key(state, request)
                _rate_limit(state, key, request, route)
        if response is None:
            response = await handler(request)
    except (ConnectionResetError, web.RequestPayloadError) as exc:
        # The client went away mid-request: nothing to answer and nothing wrong with the emulator.
        state.counters.client_disconnects += 1
        LOG.debug("client left during %s %s: %s", request.method, request.path, exc)
        return web.Response(status=499)
    except ApiError as exc:
        response = exc.to_response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(exc.status, code_for_status(exc.status), exc.reason)
    if response.status == 408:
        await _send_and_hang_up(request, response)
    if public or route == "download":
        status = str(response.status)
        by_status = state.counters.responses_by_status
        by_status[status] = by_status.get(status, 0) + 1
    return response


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: every response carries x-request-id."""
    response.headers.setdefault("x-request-id", request.get("request_id") or uuid.uuid4().hex)
