"""Which proxy a URL goes through, chosen as curl and pip do, with its credentials kept hidden.

The explicit proxy (``proxy=`` / ``--proxy`` / ``KORE_PROXY``) beats ``https_proxy`` /
``http_proxy`` / ``all_proxy`` (lower case first, then upper case), and ``NO_PROXY`` (names,
domain suffixes, ``*``, IP addresses, CIDR blocks, ``host:port``) sends matching hosts
direct, whichever proxy was chosen. Credentials in a proxy URL become basic auth; the form
shown in messages replaces the password with ``***``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiohttp
from yarl import URL

from .errors import ConfigurationError

__all__ = ["ProxyResolver", "ProxyRoute", "no_proxy_matches", "parse_proxy", "proxy_secrets"]

_PROXY_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class ProxyRoute:
    """One proxy: its URL without credentials, the basic auth, and a printable form."""

    url: URL
    auth: aiohttp.BasicAuth | None
    shown: str
    source: str

    @property
    def password(self) -> str | None:
        return None if self.auth is None else self.auth.password or None


def parse_proxy(raw: str, source: str) -> ProxyRoute:
    """A proxy URL as users write it: ``host:port`` gets ``http://``; credentials split off."""
    text = raw.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme.lower() not in _PROXY_SCHEMES:
        raise ConfigurationError(
            f"the proxy from {source} uses {parts.scheme}://; only http:// and https:// "
            "proxies are supported"
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"the proxy from {source} has an invalid port") from None
    if not parts.hostname:
        raise ConfigurationError(f"the proxy from {source} has no host name")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default_port = 443 if parts.scheme.lower() == "https" else 80
    netloc = f"{host}:{port or default_port}"
    auth = None
    shown = f"{parts.scheme.lower()}://{netloc}"
    if parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
        auth = aiohttp.BasicAuth(user, password)
        shown = f"{parts.scheme.lower()}://{user}:***@{netloc}" if password else shown
        if not password:
            shown = f"{parts.scheme.lower()}://{user}@{netloc}"
    url = URL(f"{parts.scheme.lower()}://{netloc}")
    return ProxyRoute(url=url, auth=auth, shown=shown, source=source)


def _env(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """The value of ``name`` (lower case first, as curl reads it) and which spelling."""
    for spelling in (name.lower(), name.upper()):
        value = environ.get(spelling, "").strip()
        if value:
            return spelling, value
    return None


def _host_port(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = None
    return host, port


def no_proxy_matches(no_proxy: str, url: str) -> bool:
    """True when ``NO_PROXY``-style ``no_proxy`` says ``url`` goes direct.

    Entries are separated by commas or spaces: ``*`` matches everything; ``example.com``
    and ``.example.com`` match that domain and its subdomains; an IP address or a CIDR
    block matches IP literals; ``host:port`` matches only that port.
    """
    host, port = _host_port(url)
    if not host:
        return False
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port: int | None = None
        if entry.startswith("["):  # [v6] or [v6]:port
            inside, _, rest = entry[1:].partition("]")
            entry = inside
            if rest.startswith(":") and rest[1:].isdigit():
                entry_port = int(rest[1:])
        elif entry.count(":") == 1:
            name, _, maybe_port = entry.partition(":")
            if maybe_port.isdigit():
                entry, entry_port = name, int(maybe_port)
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        domain = entry.lstrip("*").lstrip(".").rstrip(".")
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False


class ProxyResolver:
    """Chooses the proxy (or none) for each URL from the settings and the environment."""

    def __init__(self, explicit: str | None, environ: Mapping[str, str] | None = None):
        env = dict(os.environ if environ is None else environ)
        self._explicit = None if not explicit else parse_proxy(explicit, "--proxy/KORE_PROXY")
        self._by_scheme: dict[str, ProxyRoute | None] = {}
        for scheme in ("https", "http"):
            found = _env(env, f"{scheme}_proxy") or _env(env, "all_proxy")
            self._by_scheme[scheme] = None if found is None else parse_proxy(found[1], found[0])
        no_proxy = _env(env, "no_proxy")
        self._no_proxy = "" if no_proxy is None else no_proxy[1]

    def routes(self) -> list[ProxyRoute]:
        """Every proxy that may be used (for redaction and messages)."""
        found = [self._explicit, *self._by_scheme.values()]
        return [route for route in found if route is not None]

    def route_for(self, url: str) -> ProxyRoute | None:
        """The proxy for ``url``, or None to connect directly."""
        if self._no_proxy and no_proxy_matches(self._no_proxy, url):
            return None
        if self._explicit is not None:
            return self._explicit
        return self._by_scheme.get(urlsplit(url).scheme.lower())


def proxy_secrets(explicit: str | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Proxy passwords (explicit and from the environment), to redact from any output."""
    try:
        routes = ProxyResolver(explicit, environ).routes()
    except ConfigurationError:
        return []
    secrets = {route.password for route in routes if route.password}
    return sorted(s for s in secrets if s is not None)
