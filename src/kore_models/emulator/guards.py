"""Connection guards: header and body read timeouts, and the control-API token."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import StreamReader, web
from aiohttp.web_protocol import RequestHandler

from .errors import ApiError
from .state import EmulatorState

CONTROL_TOKEN_HEADER = "x-emulator-token"  # noqa: S105 - a header name
T = TypeVar("T")


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve beyond loopback


def control_token_for(host: str, given: str | None) -> str | None:
    """The token the control API requires: the given one, or a fresh one beyond loopback."""
    if given is not None:
        return given
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def check_control_token(state: EmulatorState, request: web.Request) -> None:
    """401 unless the request carries the control token (when one is configured)."""
    expected = state.config.control_token
    if expected is None:
        return
    sent = request.headers.get(CONTROL_TOKEN_HEADER, "")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ApiError(
            401,
            "CONTROL_TOKEN_REQUIRED",
            f"the control API needs the {CONTROL_TOKEN_HEADER} header (--control-token)",
        )


def watch_headers(server: web.Server, state: EmulatorState) -> None:
    """Close connections that do not send a complete request head in time.

    aiohttp bounds only the idle time between requests (keepalive_timeout, which also covers a
    second request's partial head); this covers the first request of every connection.
    """
    loop = asyncio.get_running_loop()
    opened = server.connection_made

    def expire(handler: RequestHandler) -> None:
        state.header_deadlines.pop(handler, None)
        transport = handler.transport
        if transport is not None and not transport.is_closing():
            state.counters.header_timeouts += 1
            transport.close()

    def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
        opened(handler, transport)
        timeout = state.config.header_timeout_seconds
        state.header_deadlines[handler] = loop.call_later(timeout, expire, handler)

    server.connection_made = connection_made  # type: ignore[method-assign]


def head_received(state: EmulatorState, request: web.Request) -> None:
    """The request head arrived: its connection's header deadline no longer applies."""
    deadline = state.header_deadlines.pop(request.protocol, None)
    if deadline is not None:
        deadline.cancel()


class BodyStalled(Exception):
    """Set on a request's stream by BodyWatch: the client stopped sending."""


def body_timeout_error(state: EmulatorState) -> ApiError:
    return ApiError(
        408,
        "REQUEST_TIMEOUT",
        f"no body bytes moved for {state.config.body_timeout_seconds:g} s",
    )


class BodyWatch:
    """One timer per streamed body, for the hot upload path (a timeout per read costs ~15 µs).

    The reader bumps `reads` after each read and sets `pacing` while it sleeps for a cap. Every
    body_timeout_seconds the watch looks: no read since the last look, and not pacing, means
    the client went quiet, so the pending read is failed with BodyStalled. A stall is caught
    between one and two timeouts after the last byte.
    """

    def __init__(self, state: EmulatorState, content: StreamReader) -> None:
        self.reads = 0
        self.pacing = False
        self._state = state
        self._content = content
        self._seen = -1
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(state.config.body_timeout_seconds, self._look)

    def _look(self) -> None:
        if self.pacing or self.reads != self._seen:
            self._seen = self.reads
            timeout = self._state.config.body_timeout_seconds
            self._handle = self._loop.call_later(timeout, self._look)
            return
        self._state.counters.body_timeouts += 1
        self._content.set_exception(BodyStalled())

    def close(self) -> None:
        self._handle.cancel()


async def within_body_timeout(state: EmulatorState, step: Awaitable[T]) -> T:
    """Await one read or write of a body; 408 when the peer is idle longer than allowed."""
    try:
        async with asyncio.timeout(state.config.body_timeout_seconds):
            return await step
    except TimeoutError:
        state.counters.body_timeouts += 1
        raise body_timeout_error(state) from None
