"""Network setup: the client's SSL context, proxy routing per request, and TLS/proxy errors.

How it works:

- :func:`build_ssl_context` verifies always. Trusted CAs come from the first of
  ``ca_bundle`` (``--ca-bundle`` / ``KORE_CA_BUNDLE``), ``REQUESTS_CA_BUNDLE``,
  ``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else the default store; ``trust="system"`` starts from
  the operating system's store through ``truststore`` and adds the bundle to it. A client
  certificate and key are loaded for mutual TLS.
- :func:`network_middleware` runs for every request and redirect hop of the session: it
  routes the hop through the proxy :mod:`kore_models._proxy` picks for its URL, drops the
  API key from any hop that leaves the API's origin, and reports a proxy's 407 to a plain
  http request as aiohttp reports a refused ``CONNECT``.
- :func:`classify_failure` turns aiohttp's TLS and proxy failures into :class:`TLSError` /
  :class:`ProxyError` (exit codes 13 and 14) with a message that says what to change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from ._proxy import ProxyResolver, ProxyRoute
from .errors import ConfigurationError, KoreConnectionError, ProxyError, TLSError

if TYPE_CHECKING:
    from aiohttp.client_middlewares import ClientHandlerType, ClientMiddlewareType

    from .settings import Settings

__all__ = [
    "API_KEY_HEADER",
    "CertificateRequests",
    "Network",
    "build_ssl_context",
    "classify_failure",
    "describe_trust",
    "network_middleware",
]

log = logging.getLogger("kore_models.network")

API_KEY_HEADER = "x-api-key"
_CA_ENV_VARS = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def _trust_source(settings: Settings, environ: Mapping[str, str]) -> tuple[str, Path] | None:
    """``(where it came from, path)`` of the CA bundle to trust, or None for the default."""
    if settings.ca_bundle is not None:
        return "--ca-bundle", Path(settings.ca_bundle).expanduser()
    for name in _CA_ENV_VARS:
        value = environ.get(name, "").strip()
        if value:
            return name, Path(value).expanduser()
    return None


def _load_trust(context: ssl.SSLContext, source: tuple[str, Path]) -> None:
    origin, path = source
    try:
        if path.is_dir():
            context.load_verify_locations(capath=str(path))
        else:
            context.load_verify_locations(cafile=str(path))
    except FileNotFoundError:
        raise ConfigurationError(f"the CA bundle {path} ({origin}) does not exist") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigurationError(
            f"the CA bundle {path} ({origin}) could not be loaded: {exc}; "
            "give a PEM file of CA certificates"
        ) from None


def _load_client_certificate(context: ssl.SSLContext, settings: Settings) -> None:
    cert, key = settings.client_cert, settings.client_key
    if cert is None:
        if key is not None:
            raise ConfigurationError("--client-key needs --client-cert")
        return
    try:
        context.load_cert_chain(
            str(Path(cert).expanduser()), None if key is None else str(Path(key).expanduser())
        )
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"the client certificate or key does not exist: {exc.filename or cert}"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            f"the client certificate {cert} could not be loaded ({exc}); give PEM files, and "
            "--client-key when the key is not in the certificate file"
        ) from None


def _dropped_after_connecting(exc: BaseException) -> bool:
    """The connection was made, then reset or closed (not a failure to connect)."""
    lost = isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError))
    return lost and not isinstance(exc, aiohttp.ClientConnectorError)


class CertificateRequests:
    """Remembers the hosts that ask for a client certificate in their TLS handshake.

    A server that requires one (TLS 1.3) completes the handshake, then drops the
    connection when the certificate is missing or not accepted: the client sees only a
    reset. After such a drop, :meth:`probe` makes one handshake of its own (it sends no
    request and no key, and checks nothing) and watches, through the message callback
    of its private SSL context, for the server's CertificateRequest. The client's own
    context carries no callback, so uploads pay nothing for this.
    """

    def __init__(self) -> None:
        self.hosts: set[str] = set()
        self._probed: set[tuple[str, int]] = set()

    def __call__(
        self, conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any, data: Any
    ) -> None:
        if msg_type == _CERTIFICATE_REQUEST and content_type == _HANDSHAKE and direction == "read":
            host = getattr(conn, "server_hostname", None)
            if host:
                self.hosts.add(str(host).lower())

    async def probe(self, exc: BaseException, url: str, *, timeout: float) -> None:
        """After ``exc`` dropped a direct https connection to ``url``: probe it once."""
        parts = urlsplit(url)
        dropped = _dropped_after_connecting(exc)
        if not dropped or parts.scheme != "https" or not parts.hostname:
            return
        host, port = parts.hostname.lower(), parts.port or 443
        if (host, port) in self._probed:
            return
        self._probed.add((host, port))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # nothing is sent: only the handshake is watched
        context._msg_callback = self  # type: ignore[attr-defined]
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(
                    host, port, ssl=context, server_hostname=host
                )
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()


_HANDSHAKE = getattr(getattr(ssl, "_TLSContentType", None), "HANDSHAKE", 22)
_CERTIFICATE_REQUEST = getattr(getattr(ssl, "_TLSMessageType", None), "CERTIFICATE_REQUEST", 13)


def build_ssl_context(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
) -> ssl.SSLContext:
    """The verifying SSL context for ``settings`` (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    source = _trust_source(settings, env)
    if settings.trust == "system":
        try:
            import truststore
        except ImportError:  # pragma: no cover - a dependency, present unless removed
            raise ConfigurationError(
                "--trust system needs the truststore package (pip install truststore)"
            ) from None
        context: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if source is not None:
            _load_trust(context, source)
    elif source is None:
        context = ssl.create_default_context()
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, checks host names
        _load_trust(context, source)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_client_certificate(context, settings)
    return context


def describe_trust(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """Which CAs are trusted, in words, for error messages."""
    source = _trust_source(settings, os.environ if environ is None else environ)
    base = "the operating system's store" if settings.trust == "system" else "the default store"
    if source is None:
        return base
    origin, path = source
    return f"{path} (from {origin})" + (f" plus {base}" if settings.trust == "system" else "")


# ---------------------------------------------------------------------------------------
# Failures

_PLAIN_PORT_MARKERS = (
    "wrong_version_number",
    "wrong version number",
    "record layer failure",
    "packet length too long",
    "http_request",
    "unknown protocol",
)
_CLIENT_CERT_MARKERS = (
    "certificate required",
    "certificate_required",
    "bad certificate",
    "bad_certificate",
    "unknown ca",
    "unknown_ca",
    "handshake failure",
)


def _origin(url: URL) -> str:
    host = f"[{url.host}]" if url.host and ":" in url.host else url.host
    return f"{url.scheme}://{host}:{url.port}" if host else str(url)


def classify_failure(
    exc: BaseException,
    method: str,
    url: str,
    route: ProxyRoute | None,
    trust: str,
    *,
    asked_for_certificate: bool = False,
    client_cert: Path | None = None,
) -> KoreConnectionError | None:
    """A TLSError / ProxyError for a TLS or proxy failure of ``url``, or None for others."""
    parsed = URL(url, encoded=True)
    where = _origin(parsed)
    via = "" if route is None else f" (through the proxy {route.shown})"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        shown = route.shown if route is not None else "the proxy"
        if exc.status == 407:
            hint = (
                "check the user name and password in the proxy URL"
                if route is not None and route.auth is not None
                else "put the credentials in the proxy URL: http://USER:PASSWORD@HOST:PORT"
            )
            return ProxyError(
                f"the proxy {shown} refused the connection to {where}: "
                f"407 Proxy Authentication Required; {hint}",
                method=method,
                url=url,
            )
        if exc.status in (401, 403):
            return ProxyError(
                f"the proxy {shown} refused the connection to {where} (HTTP {exc.status}); "
                "ask the proxy's administrators to allow this host",
                method=method,
                url=url,
            )
        return KoreConnectionError(
            f"the proxy {shown} could not reach {where} (HTTP {exc.status} {exc.message})",
            method=method,
            url=url,
        )
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        shown = route.shown if route is not None else "the proxy"
        return ProxyError(
            f"cannot reach the proxy {shown} ({exc.os_error.strerror or exc.os_error}); "
            f"check --proxy / KORE_PROXY or the {route.source if route else 'proxy'} setting",
            method=method,
            url=url,
        )
    text = str(exc).lower()
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = getattr(exc.certificate_error, "verify_message", None) or str(
            exc.certificate_error
        )
        mitm = (
            "; the proxy may be inspecting TLS with its own CA: trust that CA"
            if route is not None
            else ""
        )
        return TLSError(
            f"TLS: the certificate of {where}{via} is not trusted ({reason}). Trusted now: "
            f"{trust}. Give the CA that signed it with --ca-bundle PATH (or KORE_CA_BUNDLE), "
            f"or use --trust system if it is installed in the operating system{mitm}",
            method=method,
            url=url,
        )
    ssl_error = isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)) or "ssl" in text
    if ssl_error and parsed.scheme == "https" and any(m in text for m in _PLAIN_PORT_MARKERS):
        return TLSError(
            f"TLS: the handshake with {where}{via} failed: that port answered in plain HTTP. "
            f"Is the host http://{where.split('://', 1)[1]}? "
            "(plain http is meant for a local emulator)",
            method=method,
            url=url,
        )
    if ssl_error and any(m in text for m in _CLIENT_CERT_MARKERS):
        return TLSError(
            f"TLS: {where}{via} rejected the handshake ({exc}); if it requires a client "
            "certificate, give it with --client-cert PATH and --client-key PATH",
            method=method,
            url=url,
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        return TLSError(
            f"TLS: the handshake with {where}{via} failed ({exc})", method=method, url=url
        )
    dropped = _dropped_after_connecting(exc)
    if dropped and asked_for_certificate and parsed.scheme == "https":
        if client_cert is None:
            problem = "the server asked for a client certificate and none was given"
            fix = "give it with --client-cert PATH and --client-key PATH"
        else:
            problem = f"the server did not accept the client certificate {client_cert}"
            fix = "check that --client-cert is the one this host expects"
        return TLSError(
            f"TLS: {where}{via} closed the connection after the handshake: {problem}; {fix}",
            method=method,
            url=url,
        )
    return None


_warned: set[str] = set()


def warn_plain_http_once(route: ProxyRoute) -> None:
    """Say (once per proxy) that a plain-http request shows the key to the proxy."""
    if route.shown not in _warned:
        _warned.add(route.shown)
        log.warning(
            "plain http through the proxy %s: the proxy can read the API key; "
            "use https, or add the host to NO_PROXY",
            route.shown,
        )


def network_middleware(api_origin: str, resolver: ProxyResolver) -> ClientMiddlewareType:
    """The session middleware: the proxy of each hop, and the key only for the API origin.

    A 407 from a proxy spoken to in plain http becomes ``ClientHttpProxyError``, as aiohttp
    raises it for a refused ``CONNECT``, so both are classified alike.
    """
    home = URL(api_origin).origin()

    async def middleware(
        request: aiohttp.ClientRequest, handler: ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if request.url.origin() != home:
            request.headers.popall(API_KEY_HEADER, None)
        route = None
        if request.proxy is None:
            route = resolver.route_for(str(request.url))
            if route is not None:
                request.update_proxy(route.url, route.auth, None)
                if request.url.scheme == "http" and API_KEY_HEADER in request.headers:
                    warn_plain_http_once(route)
        response = await handler(request)
        if response.status == 407 and route is not None and request.url.scheme == "http":
            response.release()
            raise aiohttp.ClientHttpProxyError(
                response.request_info, (), status=407, message="Proxy Authentication Required"
            )
        return response

    return middleware


def _check_files(settings: Settings) -> None:
    """ConfigurationError now for a trust or certificate file that does not exist."""
    source = _trust_source(settings, os.environ)
    if source is not None and not source[1].exists():
        raise ConfigurationError(f"the CA bundle {source[1]} ({source[0]}) does not exist")
    if settings.client_key is not None and settings.client_cert is None:
        raise ConfigurationError("--client-key needs --client-cert")
    for path in (settings.client_cert, settings.client_key):
        if path is not None and not Path(path).expanduser().is_file():
            raise ConfigurationError(f"the client certificate or key does not exist: {path}")


class Network:
    """What the transport needs of this module, built once per client from its settings.

    Missing files and malformed proxy URLs are configuration errors at once; the SSL
    context itself (loading a CA bundle takes ~20 ms) is built with the session. It is
    None for a session the caller injected: its own connector decides.
    """

    def __init__(self, settings: Settings, *, owns_session: bool) -> None:
        self.settings = settings
        proxy = settings.proxy.get_secret_value() if settings.proxy is not None else None
        self.proxies = ProxyResolver(proxy)  # ConfigurationError for a malformed proxy URL
        self.certificate_requests = CertificateRequests()
        self.owns_session = owns_session
        self._ssl_context: ssl.SSLContext | None = None
        _check_files(settings)

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        if self.owns_session and self._ssl_context is None:
            self._ssl_context = build_ssl_context(self.settings)
        return self._ssl_context

    def middleware(self) -> ClientMiddlewareType:
        return network_middleware(self.settings.host, self.proxies)

    async def after_failure(self, exc: BaseException, url: str) -> None:
        """After a dropped direct https connection: does the host want a client certificate?"""
        if self.owns_session and self.proxies.route_for(url) is None:
            await self.certificate_requests.probe(exc, url, timeout=self.settings.connect_timeout)

    def classify(self, exc: BaseException, method: str, url: str) -> KoreConnectionError | None:
        """A TLSError / ProxyError for ``exc``, or None when it is neither."""
        return classify_failure(
            exc,
            method,
            url,
            self.proxies.route_for(url),
            describe_trust(self.settings),
            asked_for_certificate=(urlsplit(url).hostname or "") in self.certificate_requests.hosts,
            client_cert=self.settings.client_cert,
        )
