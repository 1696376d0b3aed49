"""The exception tree of kore-models and the one table that maps an HTTP response to it.

Every error the library raises derives from :class:`KoreError`::

    KoreError
    ├── ConfigurationError          bad or missing settings (also a ValueError)
    ├── TransportError              the request never produced an HTTP response
    │   ├── KoreConnectionError     DNS, refused, reset (also a ConnectionError)
    │   │   ├── TLSError            certificate not trusted, handshake failed (not retried)
    │   │   └── ProxyError          the proxy refused (407) or cannot be reached
    │   └── KoreTimeoutError        connect or read timeout (also a TimeoutError)
    │       └── StallError          no byte moved for the stall timeout
    ├── APIStatusError              an HTTP response with a non-2xx status
    │   ├── BadRequestError             400
    │   ├── AuthenticationError         401
    │   ├── PermissionDeniedError       403
    │   ├── NotFoundError               404
    │   ├── RequestTimeoutError         408
    │   ├── ConflictError               409
    │   ├── GoneError                   410 (e.g. an expired upload session)
    │   ├── PayloadTooLargeError        413
    │   ├── UnprocessableEntityError    422
    │   ├── RateLimitError              429, with ``retry_after``
    │   └── ServerError                 5xx
    ├── ResponseValidationError     a 2xx response whose body does not fit the documented types
    ├── JobFailedError              a dock-status job ended FAILED (carries the server's document)
    ├── JobTimeoutError             a job did not end before the deadline (also a TimeoutError)
    └── TransferError               an upload or download that could not finish
        ├── LocalFileError          the local file is missing, empty, a directory, unreadable
        ├── FileChangedError        the file changed while it was being uploaded
        ├── UploadError             chunks failed after the retry budget; lists them
        ├── JournalError            a resume journal that cannot be used
        ├── DownloadError           a download that failed or whose size did not match
        ├── IntegrityError          a SHA-256 that does not match the expected one
        ├── LocalStorageError       a local write failed (disk full, read-only, not a file)
        └── LockedError             another run holds the journal or the download's lock

The API key never appears in a message: :func:`redact` scrubs it from any text that
reaches an exception, and no exception stores request headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .redaction import redact, redact_data

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "DownloadError",
    "FileChangedError",
    "GoneError",
    "IntegrityError",
    "JobFailedError",
    "JobTimeoutError",
    "JournalError",
    "KoreConnectionError",
    "KoreError",
    "KoreTimeoutError",
    "LocalFileError",
    "LocalStorageError",
    "LockedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ProxyError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseValidationError",
    "ServerError",
    "StallError",
    "TLSError",
    "TransferError",
    "TransportError",
    "UnprocessableEntityError",
    "UploadError",
    "error_from_response",
    "format_validation_error",
    "redact",
    "redact_data",
]

REQUEST_ID_HEADERS = ("x-request-id", "x-correlation-id", "request-id", "x-amzn-requestid")
_MAX_MESSAGE_CHARS = 500


def format_validation_error(exc: Any, prefix: str) -> str:
    """One line for a pydantic ``ValidationError``: ``prefix: field: problem; ...``."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return f"{prefix}: {'; '.join(problems)}"


class KoreError(Exception):
    """Base class of every error raised by kore-models."""


class ConfigurationError(KoreError, ValueError):
    """Settings are missing or invalid; raised before any request is sent."""


class TransportError(KoreError):
    """The request did not produce an HTTP response."""

    def __init__(self, message: str, *, method: str | None = None, url: str | None = None):
        super().__init__(message)
        self.method = method
        self.url = url


class KoreConnectionError(TransportError, ConnectionError):
    """The connection could not be made or was lost (DNS, refused, reset)."""


class TLSError(KoreConnectionError):
    """The TLS handshake failed: an untrusted certificate, or TLS spoken to a plain port."""


class ProxyError(KoreConnectionError):
    """The proxy refused the request (407) or could not be reached."""


class KoreTimeoutError(TransportError, TimeoutError):
    """A connect or read timeout expired."""


class StallError(KoreTimeoutError):
    """No byte moved in either direction for the configured stall timeout."""


class APIStatusError(KoreError):
    """The server answered with a non-2xx status.

    Attributes: ``status_code``, ``request_id`` (from the response headers, when any),
    ``body`` (parsed JSON, else the text), ``message`` (the server's own message when it
    could be found), ``code`` (the server's error code when given), ``method`` and ``url``.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None = None,
        body: Any = None,
        code: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ):
        self.status_code = status_code
        self.request_id = request_id
        self.body = body
        self.message = message
        self.code = code
        self.method = method
        self.url = url
        where = f"{method} {url}: " if method and url else ""
        rid = f" (request id {request_id})" if request_id else ""
        super().__init__(f"{where}HTTP {status_code}: {message}{rid}")


class BadRequestError(APIStatusError):
    """400: the server rejected the request as invalid."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the API key lacks the scope for this call."""


class NotFoundError(APIStatusError):
    """404: unknown session, model, job or route."""


class RequestTimeoutError(APIStatusError):
    """408: the server timed out waiting for the request."""


class ConflictError(APIStatusError):
    """409: the resource is not in a state that allows the call."""


class GoneError(APIStatusError):
    """410: the resource expired (for example an upload session)."""


class PayloadTooLargeError(APIStatusError):
    """413: the request body (a chunk) is larger than the server accepts."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was well-formed but semantically invalid."""


class RateLimitError(APIStatusError):
    """429: too many requests; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the server failed; retried by the rulebook."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ResponseValidationError(KoreError):
    """A 2xx response whose body does not fit the documented types."""

    def __init__(self, message: str, *, body: Any = None, request_id: str | None = None):
        super().__init__(message)
        self.body = body
        self.request_id = request_id


class JobFailedError(KoreError):
    """A dock-status job ended with status FAILED; ``document`` is the server's job document."""

    def __init__(self, message: str, *, dock_status_id: str, document: Mapping[str, Any]):
        super().__init__(message)
        self.dock_status_id = dock_status_id
        self.document = dict(document)


class JobTimeoutError(KoreError, TimeoutError):
    """A dock-status job was still running when the caller's deadline passed."""

    def __init__(self, message: str, *, dock_status_id: str, last_status: str | None = None):
        super().__init__(message)
        self.dock_status_id = dock_status_id
        self.last_status = last_status


class TransferError(KoreError):
    """An upload or download could not finish."""


class LocalFileError(TransferError):
    """The local file cannot be uploaded: missing, empty, a directory or unreadable."""


class FileChangedError(TransferError):
    """The file changed (size, mtime or sampled content) while it was being uploaded."""


class UploadError(TransferError):
    """Chunks still failed when the retry budget ran out; ``failed_chunks`` lists them."""

    def __init__(self, message: str, *, failed_chunks: list[int], session_id: str | None = None):
        super().__init__(message)
        self.failed_chunks = failed_chunks
        self.session_id = session_id


class JournalError(TransferError):
    """A resume journal could not be read or written."""


class DownloadError(TransferError):
    """A download failed or its size did not match what the server announced."""


class IntegrityError(TransferError):
    """A SHA-256 did not match: ``expected`` and ``actual`` carry both hex digests."""

    def __init__(self, message: str, *, expected: str | None = None, actual: str | None = None):
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class LocalStorageError(TransferError):
    """A local write failed for a reason a retry cannot fix (disk full, read-only, not a file)."""


class LockedError(TransferError):
    """Another run holds the lock of this import's journal or this download's destination."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    410: GoneError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def _first_text(*candidates: Any) -> str | None:
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def parse_error_body(body: Any) -> tuple[str | None, str | None]:
    """Find the server's message and code in the common error shapes.

    Shapes tried in order: ``{"errors": [{"msg", "code"}]}`` (Kore XO),
    ``{"error": {"message", "code"}}``, ``{"error": "text"}``, ``{"message", "code"}``,
    ``{"detail"}``; a string body is its own message.
    """
    if isinstance(body, str):
        return _first_text(body), None
    if not isinstance(body, Mapping):
        return None, None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        first = errors[0]
        message = _first_text(first.get("msg"), first.get("message"))
        code = first.get("code")
        return message, None if code is None else str(code)
    error = body.get("error")
    if isinstance(error, Mapping):
        code = error.get("code")
        return _first_text(error.get("message"), error.get("msg")), (
            None if code is None else str(code)
        )
    code = body.get("code")
    message = _first_text(error, body.get("message"), body.get("msg"), body.get("detail"))
    return message, None if code is None else str(code)


def parse_body_text(text: str) -> Any:
    """Parse a response text as JSON when it is JSON, else keep the (trimmed) text.

    JSON nested too deeply for Python (a hostile body) is kept as text.
    """
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except (ValueError, RecursionError):
            return stripped
    return stripped


def error_from_response(
    *,
    status_code: int,
    headers: Mapping[str, str],
    text: str,
    method: str,
    url: str,
    retry_after: float | None,
    secret: str | None = None,
) -> APIStatusError:
    """Build the typed error for a non-2xx response (the API key is scrubbed from it).

    The key is scrubbed from the text and again from every parsed field, so a key the
    server reflected JSON-escaped cannot survive parsing into ``message`` or ``body``.
    """
    text = redact(text, secret)
    body = redact_data(parse_body_text(text), secret)
    if isinstance(body, str) and body.lstrip().lower().startswith(("<!doctype", "<html")):
        # an HTML error page (proxy, gateway) is not a message; name its <title> if any
        title = re.search(r"<title[^>]*>([^<]*)</title>", body, re.IGNORECASE)
        label = " ".join(title.group(1).split()) if title else ""
        message: str | None = "the server returned an HTML page instead of JSON" + (
            f" ({label})" if label else ""
        )
        code = None
    else:
        message, code = parse_error_body(body)
    if message is None:
        message = "no error message in the response" if not text.strip() else "unexpected body"
    message = message[:_MAX_MESSAGE_CHARS]
    lowered = {k.lower(): v for k, v in headers.items()}
    request_id = next((lowered[h] for h in REQUEST_ID_HEADERS if h in lowered), None)
    if request_id is not None:
        request_id = redact(request_id, secret)
    common: dict[str, Any] = {
        "status_code": status_code,
        "request_id": request_id,
        "body": body,
        "code": code,
        "method": method,
        "url": redact(url, secret),
    }
    if status_code == 429:
        return RateLimitError(message, retry_after=retry_after, **common)
    if status_code >= 500:
        return ServerError(message, retry_after=retry_after, **common)
    cls = _STATUS_CLASSES.get(status_code, APIStatusError)
    return cls(message, **common)
