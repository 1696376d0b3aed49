"""Exit codes and the one stderr line each exception becomes."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from ..errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    FileChangedError,
    GoneError,
    IntegrityError,
    JobFailedError,
    JobTimeoutError,
    JournalError,
    KoreError,
    KoreTimeoutError,
    LocalFileError,
    LocalStorageError,
    LockedError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ProxyError,
    TLSError,
    UnprocessableEntityError,
    redact,
)

__all__ = [
    "EXIT_AUTH",
    "EXIT_CODES",
    "EXIT_CONFLICT",
    "EXIT_FILE",
    "EXIT_INTEGRITY",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_JOB_FAILED",
    "EXIT_LOCAL_STORAGE",
    "EXIT_LOCKED",
    "EXIT_NETWORK",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_PROXY",
    "EXIT_REJECTED",
    "EXIT_TERMINATED",
    "EXIT_TIMEOUT",
    "EXIT_TLS",
    "EXIT_USAGE",
    "describe",
    "error_json",
    "exit_code_for",
    "request_id_of",
]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_JOB_FAILED = 5
EXIT_TIMEOUT = 6
EXIT_NETWORK = 7
EXIT_FILE = 8
EXIT_CONFLICT = 9
EXIT_REJECTED = 10
EXIT_INTEGRITY = 11
EXIT_LOCAL_STORAGE = 12
EXIT_TLS = 13
EXIT_PROXY = 14
EXIT_LOCKED = 15
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_INTERNAL: "unexpected internal error (a bug; run with --verbose and report it)",
    EXIT_USAGE: "usage or configuration error, bad manifest, missing/unreadable local file",
    EXIT_AUTH: "authentication failed: HTTP 401 or 403",
    EXIT_NOT_FOUND: "not found: HTTP 404 or 410 (unknown model, job or expired session)",
    EXIT_JOB_FAILED: "the server's job ended FAILED",
    EXIT_TIMEOUT: "timeout: the job did not end in --timeout, or a connect/read/stall timeout",
    EXIT_NETWORK: "network or server error, worth retrying: connection, 5xx, 429, "
    "chunks that failed after retries, bad responses, failed download",
    EXIT_FILE: "the local file changed during the upload, or its resume journal is unusable",
    EXIT_CONFLICT: "conflict: HTTP 409 (the resource is in a state that forbids the request)",
    EXIT_REJECTED: "the server rejected the request: HTTP 400, 413 or 422 (do not retry as is)",
    EXIT_INTEGRITY: "integrity: a SHA-256 did not match (verify, export --sha256)",
    EXIT_LOCAL_STORAGE: "local storage: a write failed (disk full, read-only, not a regular file)",
    EXIT_TLS: "TLS: the certificate is not trusted (see --ca-bundle) or the port speaks plain HTTP",
    EXIT_PROXY: "proxy: it refused the credentials (407) or cannot be reached",
    EXIT_LOCKED: "another kore-models run holds this import's journal or this download",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C / SIGINT); run the same command again to resume",
    EXIT_TERMINATED: "terminated (SIGTERM); run the same command again to resume",
}


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for ``exc``."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ConfigurationError | LocalFileError):
        return EXIT_USAGE
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return EXIT_AUTH
    if isinstance(exc, NotFoundError | GoneError):
        return EXIT_NOT_FOUND
    if isinstance(exc, JobFailedError):
        return EXIT_JOB_FAILED
    if isinstance(exc, ConflictError):
        return EXIT_CONFLICT
    if isinstance(exc, BadRequestError | PayloadTooLargeError | UnprocessableEntityError):
        return EXIT_REJECTED
    if isinstance(exc, IntegrityError):
        return EXIT_INTEGRITY
    if isinstance(exc, LocalStorageError):
        return EXIT_LOCAL_STORAGE
    if isinstance(exc, TLSError):
        return EXIT_TLS
    if isinstance(exc, ProxyError):
        return EXIT_PROXY
    if isinstance(exc, LockedError):
        return EXIT_LOCKED
    if isinstance(exc, JobTimeoutError | KoreTimeoutError):
        return EXIT_TIMEOUT
    if isinstance(exc, FileChangedError | JournalError):
        return EXIT_FILE
    if isinstance(exc, KoreError):
        return EXIT_NETWORK
    if isinstance(exc, OSError):  # a local file we could not read or write
        return EXIT_USAGE
    return EXIT_INTERNAL


def request_id_of(exc: BaseException) -> str | None:
    """The server's request id carried by ``exc`` or by an exception it was raised from."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        rid = getattr(current, "request_id", None)
        if isinstance(rid, str) and rid:
            return rid
        current = current.__cause__ or current.__context__
    return None


_HINTS: dict[int, str] = {
    EXIT_AUTH: "check the API key (--api-key, --api-key-file, --api-key-stdin or KORE_API_KEY)",
}


def _status_text(exc: APIStatusError) -> str:
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = ""
    where = ""
    if exc.method and exc.url:
        path = urlsplit(exc.url).path
        path = path.removeprefix("/api/public")
        where = f" on {exc.method} {path or '/'}"
    head = f"HTTP {exc.status_code}{' ' + phrase if phrase else ''}{where}"
    return f"{head}: {exc.message}"


def describe(exc: BaseException, *secrets: str | None) -> str:
    """One line for stderr: the message, a hint, and the request id when there is one."""
    if isinstance(exc, APIStatusError):
        text = _status_text(exc)
    elif isinstance(exc, OSError) and not isinstance(exc, KoreError):
        name = f"{exc.filename}: " if exc.filename else ""
        text = f"{name}{exc.strerror or exc}"
    else:
        text = str(exc) or type(exc).__name__
        if exit_code_for(exc) == EXIT_INTERNAL:
            text = f"internal error: {type(exc).__name__}: {text} (run with --verbose for details)"
    hint = _HINTS.get(exit_code_for(exc))
    if hint:
        text = f"{text}; {hint}"
    rid = request_id_of(exc)
    if rid and rid not in text:
        text = f"{text} (request id {rid})"
    return redact(" ".join(text.split()), *secrets)


def error_json(exc: BaseException, *secrets: str | None) -> dict[str, Any]:
    """The ``{"error": {...}}`` object printed with --json when a command fails."""
    data: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": describe(exc, *secrets),
        "exitCode": exit_code_for(exc),
    }
    rid = request_id_of(exc)
    if rid:
        data["requestId"] = redact(rid, *secrets)
    if isinstance(exc, APIStatusError):
        data["httpStatus"] = exc.status_code
    if isinstance(exc, IntegrityError):
        data["expectedSha256"] = exc.expected
        data["actualSha256"] = exc.actual
    job = getattr(exc, "dock_status_id", None)
    if isinstance(job, str):
        data["dockStatusId"] = job
    return {"error": data}
