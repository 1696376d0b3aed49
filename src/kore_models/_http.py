"""The transport: one aiohttp session, the x-api-key header, error mapping, and retries.

How it works: :class:`Transport` owns an ``aiohttp.ClientSession`` (or borrows one the
caller injected, which it never closes). Every call goes through :meth:`Transport.request`,
which builds the URL from encoded path segments, adds the key only for the API's own
origin, reads the whole (small) JSON response before deciding, maps aiohttp and asyncio
failures to :mod:`kore_models.errors`, and lets :mod:`kore_models._retry` decide about
retrying. Timeouts are connect and idle-read timeouts, never a total on transfers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import zlib
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

from ._encoding import (
    API_ACCEPT_ENCODING,
    BodyDecoder,
    UnsupportedEncodingError,
    read_error_text,
)
from ._network import Network
from ._pace import PacedAttempts, RequestPacing
from ._retry import RetryBudget, RetryPolicy, call_with_retry, parse_retry_after
from ._urls import display_url, redirect_target, scrubbed, url_secrets
from .errors import (
    REQUEST_ID_HEADERS,
    ConfigurationError,
    KoreConnectionError,
    KoreError,
    KoreTimeoutError,
    ResponseValidationError,
    error_from_response,
    redact,
)
from .settings import Settings

__all__ = ["ApiResponse", "BodyFactory", "Transport", "encode_segment", "same_origin"]

log = logging.getLogger("kore_models.http")

BodyFactory = Callable[[], tuple[Any, Any]]
"""Called once per attempt: returns ``(aiohttp data, payload to check for errors or None)``."""

_FORBIDDEN_SEGMENTS = {"", ".", ".."}


def encode_segment(value: str, *, what: str) -> str:
    """Percent-encode one path segment; refuse values that would address another URL."""
    if not isinstance(value, str) or value.strip() in _FORBIDDEN_SEGMENTS:
        raise ConfigurationError(f"invalid {what}: {value!r}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigurationError(f"invalid {what}: it contains a control character")
    return quote(value, safe="")


def same_origin(url_a: str, url_b: str) -> bool:
    """True when both URLs share scheme, host and port (default ports filled in)."""
    a, b = urlsplit(url_a), urlsplit(url_b)

    def key(parts: Any) -> tuple[str, str, int | None]:
        default = {"http": 80, "https": 443}.get(parts.scheme)
        return parts.scheme, (parts.hostname or "").lower(), parts.port or default

    return key(a) == key(b)


@dataclass(frozen=True)
class ApiResponse:
    """A parsed 2xx response."""

    data: Any
    status: int
    request_id: str | None


MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""Largest API reply read; every documented reply is a small JSON document."""


async def _read_text(resp: aiohttp.ClientResponse) -> str:
    """The body as text, decoded (gzip/deflate) up to MAX_RESPONSE_BYTES.

    A reply that grows beyond that (a server that never stops sending: the read timeout
    is an idle timeout, so it would never fire), or that inflates beyond it (a
    decompression bomb), is abandoned with ResponseValidationError instead of being held
    in memory; so is a body in a coding the client cannot decode.
    """
    request_id = _request_id({k.lower(): v for k, v in resp.headers.items()})
    try:
        decoder = BodyDecoder(resp.headers.get("Content-Encoding"))
    except UnsupportedEncodingError as exc:
        raise ResponseValidationError(
            f"the response (HTTP {resp.status}) uses {exc}, which this client cannot decode",
            request_id=request_id,
        ) from None
    body = bytearray()
    try:
        async for block in resp.content.iter_any():
            body += decoder.decode_bounded(block, MAX_RESPONSE_BYTES - len(body))
    except OverflowError:
        grows = "decompresses to more" if not decoder.identity else "is larger"
        raise ResponseValidationError(
            f"the response body {grows} than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB "
            f"(HTTP {resp.status}); it was abandoned",
            request_id=request_id,
        ) from None
    except zlib.error:
        raise ResponseValidationError(
            f"the response body (HTTP {resp.status}) is not valid {decoder.coding} data",
            request_id=request_id,
        ) from None
    try:
        return body.decode(resp.charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", errors="replace")


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in REQUEST_ID_HEADERS:
        if name in headers:
            return headers[name]
    return None


class Transport:
    """Sends requests to ``{host}/api/public`` with the key, timeouts and the retry rulebook."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession | None = None,
        pacing: RequestPacing | None = None,
    ):
        self.settings = settings
        self.pacing = pacing
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self.policy = RetryPolicy.from_settings(settings)
        # Only the socket connect is timed: aiohttp's ``connect`` would also count the
        # wait for a free pooled connection, and a busy pool is not a network failure.
        self.timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None,
            sock_connect=settings.connect_timeout,
            sock_read=settings.read_timeout,
        )
        self.network = Network(settings, owns_session=self._owns_session)  # proxies, TLS

    def __repr__(self) -> str:
        return f"Transport(host={self.settings.host!r})"

    @property
    def secret(self) -> str:
        """The API key, for redaction only."""
        return self.settings.api_key.get_secret_value()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session, created on first use."""
        if self._closed:
            raise KoreError("the client is closed; create a new KoreClient")
        if self._session is None:
            # No pool limit: every request of this client is already bounded by the
            # worker pools of its transfers (all imports, parallel files included) and
            # its callers; a second, smaller limit here would only queue them.
            ssl = self.network.ssl_context or True
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ssl=ssl)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                raise_for_status=False,
                middlewares=[self.network.middleware()],
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session if we own it; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()

    def url_for(self, segments: Sequence[str]) -> str:
        """``{base_url}/seg1/seg2`` with each segment already encoded."""
        return self.settings.base_url + "/" + "/".join(segments)

    def auth_headers(self, url: str) -> dict[str, str]:
        """The key header, only when ``url`` is on the API's own origin."""
        if same_origin(url, self.settings.host):
            return {"x-api-key": self.secret}
        return {}

    async def request(
        self,
        method: str,
        segments: Sequence[str],
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        body: BodyFactory | None = None,
        retry: bool = True,
        budget: RetryBudget | None = None,
        on_retry: Callable[[BaseException, float], None] | None = None,
        pace: RequestPacing | None = None,
        pace_bytes: int = 0,
    ) -> ApiResponse:
        """Send one API call (retried per the rulebook) and return its parsed JSON; each
        attempt is paced by the client (``pace``: also a slot counting ``pace_bytes``)."""
        url = self.url_for(segments)
        paced = PacedAttempts(self.pacing, pace, pace_bytes)

        async def attempt() -> ApiResponse:
            return await paced.run(lambda: self._send_once(method, url, json_body, params, body))

        return await call_with_retry(
            attempt,
            self.policy,
            budget=budget,
            on_retry=on_retry,
            on_retry_after=paced.paused,
            retry=retry,
            describe=f"{method} {url}",
        )

    async def _send_once(
        self,
        method: str,
        url: str,
        json_body: Any,
        params: Mapping[str, str] | None,
        body: BodyFactory | None,
    ) -> ApiResponse:
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": API_ACCEPT_ENCODING,
            **self.auth_headers(url),
        }
        data: Any = None
        watched: Any = None
        if body is not None:
            data, watched = body()
        elif json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        log.debug("-> %s %s", method, url)
        # A call without a streamed body has an overall deadline per attempt (a server
        # that drips one byte a second never trips the idle read timeout); a chunk body
        # is bounded by the stall watchdog instead, and its reply by the same deadline.
        deadline = asyncio.timeout(None if body is not None else self.settings.request_timeout)
        try:
            async with (
                deadline,
                self.session.request(
                    method,
                    URL(url, encoded=True),
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=self.timeout,
                    # never follow a redirect: aiohttp would re-send x-api-key to any origin
                    allow_redirects=False,
                    # an injected session may raise on status; the mapping below must decide
                    raise_for_status=False,
                    auto_decompress=False,  # _read_text inflates with bounded memory
                ) as resp,
            ):
                async with asyncio.timeout(self.settings.request_timeout):
                    text = await _read_text(resp)
                status = resp.status
                resp_headers = {k.lower(): v for k, v in resp.headers.items()}
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            failure = getattr(watched, "error", None)
            if isinstance(failure, KoreError):
                raise failure from None
            if isinstance(exc, TimeoutError) and not isinstance(
                exc, KoreError | aiohttp.ClientError
            ):
                raise KoreTimeoutError(
                    f"{method} {url}: no complete answer within "
                    f"{self.settings.request_timeout:g}s (request_timeout)",
                    method=method,
                    url=url,
                ) from None
            await self.network.after_failure(exc, url)
            raise self._map_transport_error(exc, method, url) from None
        request_id = _request_id(resp_headers)
        log.debug("<- %s %s %d (request id %s)", method, url, status, request_id)
        if not 200 <= status < 300:
            raise error_from_response(
                status_code=status,
                headers=resp_headers,
                text=text,
                method=method,
                url=url,
                retry_after=parse_retry_after(resp_headers.get("retry-after")),
                secret=self.secret,
            )
        return ApiResponse(
            data=self._parse_json(text, request_id), status=status, request_id=request_id
        )

    def _parse_json(self, text: str, request_id: str | None) -> Any:
        if not text.strip():
            raise ResponseValidationError(
                "the server returned an empty body where JSON was expected", request_id=request_id
            )
        try:
            return json.loads(text)
        except RecursionError:
            raise ResponseValidationError(
                "the server returned JSON nested too deeply to read; it was refused",
                request_id=request_id,
            ) from None
        except ValueError:
            # redact before cutting, so a key straddling the cut cannot leak in part
            snippet = redact(text.strip(), self.secret)[:120]
            kind = "an HTML page" if snippet.lower().startswith(("<!doctype", "<html")) else "text"
            raise ResponseValidationError(
                f"the server returned {kind}, not JSON: {snippet!r}",
                body=snippet,
                request_id=request_id,
            ) from None

    def _map_transport_error(self, exc: BaseException, method: str, url: str) -> KoreError:
        if isinstance(exc, KoreError):
            return exc
        network = self.network.classify(exc, method, url)  # TLSError, ProxyError
        if network is not None:
            return network
        detail = redact(str(exc) or type(exc).__name__, self.secret)
        if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
            return KoreTimeoutError(f"{method} {url}: timed out ({detail})", method=method, url=url)
        if isinstance(exc, (aiohttp.ClientError, OSError)):
            return KoreConnectionError(
                f"{method} {url}: connection failed ({detail})", method=method, url=url
            )
        if isinstance(exc, Exception):
            return KoreConnectionError(
                f"{method} {url}: request failed ({type(exc).__name__}: {detail})",
                method=method,
                url=url,
            )
        raise exc

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        pass_statuses: Collection[int] = (),
        max_redirects: int | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One streaming request to an absolute URL; yields the response, body unread.

        The same rules as :meth:`request`: the key only on the API's own origin (checked
        again at every redirect hop, so a redirect never carries it elsewhere), a
        2xx-or-``pass_statuses`` response is yielded, any other status raises the typed
        error (Retry-After kept) after reading at most ``ERROR_BODY_BYTES`` of its body,
        and aiohttp failures, before or while the caller reads the body, become
        :class:`~kore_models.errors.TransportError`. Redirects are followed here, at most
        ``max_redirects`` (default :data:`MAX_REDIRECTS`). The body is never decompressed
        (see ``_encoding``). The query of ``url`` (download tokens) is redacted from every
        message and log line. Not retried: the caller decides.
        """
        hops = MAX_REDIRECTS if max_redirects is None else max_redirects
        shown, secrets = display_url(url), url_secrets(url)
        current = url
        for _hop in range(hops + 1):
            sent = {"Accept": "*/*", **(headers or {}), **self.auth_headers(current)}
            log.debug("-> %s %s", method, display_url(current))
            try:
                resp = await self.session.request(
                    method,
                    URL(current, encoded=True),
                    headers=sent,
                    timeout=self.timeout,
                    allow_redirects=False,
                    raise_for_status=False,
                    auto_decompress=False,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise scrubbed(self._map_transport_error(exc, method, shown), secrets) from None
            try:
                location = resp.headers.get("Location")
                if resp.status in _REDIRECTS and location:
                    current = redirect_target(current, location)
                    secrets += url_secrets(current)
                    continue
                if not (200 <= resp.status < 300 or resp.status in pass_statuses):
                    raise await self._stream_error(resp, method, shown, secrets)
                try:
                    yield resp
                except (TimeoutError, aiohttp.ClientError) as exc:
                    mapped = self._map_transport_error(exc, method, shown)
                    raise scrubbed(mapped, secrets) from None
                return
            finally:
                resp.release()
        raise ResponseValidationError(f"{method} {shown}: more than {hops} redirects")

    async def _stream_error(
        self, resp: aiohttp.ClientResponse, method: str, shown: str, secrets: list[str]
    ) -> KoreError:
        text = await read_error_text(resp, ERROR_BODY_BYTES)
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return error_from_response(
            status_code=resp.status,
            headers=headers,
            text=redact(text, *secrets),
            method=method,
            url=shown,
            retry_after=parse_retry_after(headers.get("retry-after")),
            secret=self.secret,
        )


MAX_REDIRECTS = 10
"""Redirect hops :meth:`Transport.stream` follows before giving up."""

ERROR_BODY_BYTES = 64 * 1024
"""Most bytes of an error response's body read to find the server's message."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
