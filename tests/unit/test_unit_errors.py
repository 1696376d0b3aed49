"""Mapping of every HTTP status and body shape, and of transport failures, to the error tree."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from kore_models import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    GoneError,
    KoreClient,
    KoreConnectionError,
    KoreError,
    KoreTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    StallError,
    TransportError,
    UnprocessableEntityError,
)
from kore_models.errors import error_from_response, parse_body_text, parse_error_body

BASE = "https://kore.example.test/api/public"
EXPORT_URL = f"{BASE}/models/cm-1/export"

STATUS_CLASSES: list[tuple[int, type[APIStatusError]]] = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (408, RequestTimeoutError),
    (409, ConflictError),
    (410, GoneError),
    (413, PayloadTooLargeError),
    (422, UnprocessableEntityError),
    (429, RateLimitError),
    (500, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, ServerError),
]

# (raw body, content type, expected message, expected code, expected parsed body)
BODY_SHAPES: list[tuple[str, str, str, str | None, Any]] = [
    (
        '{"errors":[{"msg":"Invalid SDK credentials","code":4002}]}',
        "application/json",
        "Invalid SDK credentials",
        "4002",
        {"errors": [{"msg": "Invalid SDK credentials", "code": 4002}]},
    ),
    (
        '{"success":false,"error":{"message":"Model not found","code":"NOT_FOUND"}}',
        "application/json",
        "Model not found",
        "NOT_FOUND",
        {"success": False, "error": {"message": "Model not found", "code": "NOT_FOUND"}},
    ),
    (
        '{"message":"Rate limit for this API has been reached."}',
        "application/json",
        "Rate limit for this API has been reached.",
        None,
        {"message": "Rate limit for this API has been reached."},
    ),
    (
        '{"error":"session expired"}',
        "application/json",
        "session expired",
        None,
        {"error": "session expired"},
    ),
    (
        "upstream connect error or disconnect/reset before headers",
        "text/plain",
        "upstream connect error or disconnect/reset before headers",
        None,
        "upstream connect error or disconnect/reset before headers",
    ),
    (
        "<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>",
        "text/html",
        "the server returned an HTML page instead of JSON (502 Bad Gateway)",
        None,
        "<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>",
    ),
    (
        "<!DOCTYPE html>\n<html><body>Access denied</body></html>",
        "text/html",
        "the server returned an HTML page instead of JSON",
        None,
        "<!DOCTYPE html>\n<html><body>Access denied</body></html>",
    ),
    ("", "text/plain", "no error message in the response", None, ""),
    ('{"unexpected": true}', "application/json", "unexpected body", None, {"unexpected": True}),
    ('{"errors": [', "application/json", '{"errors": [', None, '{"errors": ['),
]


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
@pytest.mark.parametrize(
    ("raw", "content_type", "message", "code", "body"),
    BODY_SHAPES,
    ids=[
        "xo-errors",
        "ap2-error",
        "message",
        "error-text",
        "raw",
        "html-title",
        "html",
        "empty",
        "other-json",
        "bad-json",
    ],
)
async def test_status_and_body_shape_map_to_the_typed_error(
    mocked: aioresponses,
    kore: KoreClient,
    status: int,
    cls: type[APIStatusError],
    raw: str,
    content_type: str,
    message: str,
    code: str | None,
    body: Any,
) -> None:
    mocked.post(
        EXPORT_URL,
        status=status,
        body=raw,
        content_type=content_type,
        headers={"X-Request-Id": f"req-{status}"},
    )
    with pytest.raises(APIStatusError) as info:
        await kore.models.export("cm-1")
    err = info.value
    assert type(err) is cls
    assert err.status_code == status
    assert err.request_id == f"req-{status}"
    assert err.message == message
    assert err.code == code
    assert err.body == body
    assert err.method == "POST"
    assert err.url == EXPORT_URL
    assert f"HTTP {status}: {message}" in str(err)
    assert f"req-{status}" in str(err)
    assert len(mocked.requests[("POST", next(iter(mocked.requests))[1])]) == 1


@pytest.mark.parametrize("header", ["x-correlation-id", "request-id", "x-amzn-requestid"])
async def test_other_request_id_headers(
    mocked: aioresponses, kore: KoreClient, header: str
) -> None:
    mocked.post(EXPORT_URL, status=404, payload={"message": "no"}, headers={header: "abc"})
    with pytest.raises(NotFoundError) as info:
        await kore.models.export("cm-1")
    assert info.value.request_id == "abc"


async def test_no_request_id_header(mocked: aioresponses, kore: KoreClient) -> None:
    mocked.post(EXPORT_URL, status=409, payload={"message": "busy"})
    with pytest.raises(ConflictError) as info:
        await kore.models.export("cm-1")
    assert info.value.request_id is None
    assert "request id" not in str(info.value)


async def test_429_retry_after_seconds(mocked: aioresponses, kore: KoreClient) -> None:
    mocked.post(EXPORT_URL, status=429, payload={"message": "slow"}, headers={"Retry-After": "7"})
    with pytest.raises(RateLimitError) as info:
        await kore.models.export("cm-1")
    assert info.value.retry_after == 7.0


async def test_429_retry_after_http_date(mocked: aioresponses, kore: KoreClient) -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    mocked.post(
        EXPORT_URL,
        status=429,
        body="slow down",
        headers={"Retry-After": format_datetime(when, usegmt=True)},
    )
    with pytest.raises(RateLimitError) as info:
        await kore.models.export("cm-1")
    assert info.value.retry_after is not None
    assert 85 <= info.value.retry_after <= 90


@pytest.mark.parametrize("value", ["soon", "", "NaN"])
async def test_429_with_an_unusable_retry_after(
    mocked: aioresponses, kore: KoreClient, value: str
) -> None:
    mocked.post(EXPORT_URL, status=429, body="x", headers={"Retry-After": value})
    with pytest.raises(RateLimitError) as info:
        await kore.models.export("cm-1")
    assert info.value.retry_after is None


async def test_429_without_retry_after(mocked: aioresponses, kore: KoreClient) -> None:
    mocked.post(EXPORT_URL, status=429, body="x")
    with pytest.raises(RateLimitError) as info:
        await kore.models.export("cm-1")
    assert info.value.retry_after is None


async def test_503_keeps_retry_after(mocked: aioresponses, kore: KoreClient) -> None:
    mocked.post(EXPORT_URL, status=503, body="down", headers={"Retry-After": "3"})
    with pytest.raises(ServerError) as info:
        await kore.models.export("cm-1")
    assert info.value.retry_after == 3.0


@pytest.mark.parametrize("status", [301, 302, 307, 308, 418, 451, 599])
async def test_other_non_2xx_statuses_are_api_status_errors(
    mocked: aioresponses, kore: KoreClient, status: int
) -> None:
    mocked.post(
        EXPORT_URL,
        status=status,
        body="moved",
        headers={"Location": "https://elsewhere.example/x"},
    )
    mocked.post("https://elsewhere.example/x", payload={"_id": "ds-stolen"})
    with pytest.raises(APIStatusError) as info:
        await kore.models.export("cm-1")
    assert info.value.status_code == status
    assert isinstance(info.value, ServerError) == (status >= 500)
    call = next(iter(mocked.requests.values()))[0]
    assert call.kwargs["allow_redirects"] is False


def test_a_long_message_is_cut() -> None:
    err = error_from_response(
        status_code=400,
        headers={},
        text=json.dumps({"message": "x" * 5000}),
        method="POST",
        url="u",
        retry_after=None,
    )
    assert err.message == "x" * 500
    assert len(err.body["message"]) == 5000


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"errors": [{"message": "m", "code": "C"}]}, ("m", "C")),
        ({"errors": []}, (None, None)),
        ({"errors": ["text"]}, (None, None)),
        ({"error": {"msg": "m2"}}, ("m2", None)),
        ({"message": "  ", "detail": "d"}, ("d", None)),
        ({"msg": "m3", "code": 7}, ("m3", "7")),
        (["a"], (None, None)),
        (None, (None, None)),
        ("   ", (None, None)),
    ],
)
def test_parse_error_body_shapes(body: Any, expected: tuple[str | None, str | None]) -> None:
    assert parse_error_body(body) == expected


def test_parse_body_text() -> None:
    assert parse_body_text(' {"a": 1} ') == {"a": 1}
    assert parse_body_text("[1]") == [1]
    assert parse_body_text("{oops") == "{oops"
    assert parse_body_text("  plain ") == "plain"


# --- the tree ------------------------------------------------------------------------------


def test_the_exception_tree() -> None:
    assert issubclass(ConfigurationError, KoreError)
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(KoreConnectionError, TransportError)
    assert issubclass(KoreConnectionError, ConnectionError)
    assert issubclass(KoreTimeoutError, TransportError)
    assert issubclass(KoreTimeoutError, TimeoutError)
    assert issubclass(StallError, KoreTimeoutError)
    for _, cls in STATUS_CLASSES:
        assert issubclass(cls, APIStatusError)
        assert issubclass(cls, KoreError)


# --- transport failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ClientConnectionError("refused"), KoreConnectionError),
        (aiohttp.ServerDisconnectedError(), KoreConnectionError),
        (aiohttp.ClientPayloadError("broken"), KoreConnectionError),
        (ConnectionResetError("reset by peer"), KoreConnectionError),
        (TimeoutError(), KoreTimeoutError),
        (aiohttp.ServerTimeoutError("read timeout"), KoreTimeoutError),
        (aiohttp.ConnectionTimeoutError("connect timeout"), KoreTimeoutError),
        (RuntimeError("odd"), KoreConnectionError),
    ],
)
async def test_transport_failures_map_to_transport_errors(
    mocked: aioresponses, kore: KoreClient, raised: Exception, expected: type[KoreError]
) -> None:
    mocked.post(EXPORT_URL, exception=raised)
    with pytest.raises(expected) as info:
        await kore.models.export("cm-1")
    assert isinstance(info.value, TransportError)
    assert info.value.method == "POST"
    assert info.value.url == EXPORT_URL
    assert info.value.__cause__ is None
