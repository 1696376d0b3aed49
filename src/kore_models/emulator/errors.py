"""The emulator's single JSON error format and the exception that carries it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

RATE_LIMIT_MESSAGE = (
    "You've exceeded the per-minute rate limit. Please wait for sometime before retrying."
)


def error_body(code: str, msg: str, **extra: Any) -> dict[str, Any]:
    """Build the XO-style error document: {"errors": [{"msg", "code", ...extra}]}."""
    item: dict[str, Any] = {"msg": msg, "code": code}
    item.update(extra)
    return {"errors": [item]}


def error_response(
    status: int,
    code: str,
    msg: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """A JSON error response in the emulator's one format."""
    return web.json_response(error_body(code, msg, **extra), status=status, headers=headers)


class ListenError(Exception):
    """The emulator cannot listen on the address it was given (in use, not allowed...)."""


class ApiError(Exception):
    """Raised by handlers; the middleware turns it into an error response."""

    def __init__(
        self,
        status: int,
        code: str,
        msg: str,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = headers
        self.extra = extra
        self.errors = errors

    def to_response(self) -> web.Response:
        if self.errors:
            return web.json_response(
                {"errors": self.errors}, status=self.status, headers=self.headers
            )
        return error_response(self.status, self.code, self.msg, headers=self.headers, **self.extra)


HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    409: "CONFLICT",
    410: "GONE",
    413: "PAYLOAD_TOO_LARGE",
    416: "RANGE_NOT_SATISFIABLE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    507: "INSUFFICIENT_STORAGE",
}


def format_seconds(value: float) -> str:
    """A Retry-After value: whole seconds without a fraction, else the shortest decimal."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def code_for_status(status: int) -> str:
    return HTTP_CODES.get(status, f"HTTP_{status}")
