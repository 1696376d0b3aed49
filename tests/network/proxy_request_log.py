"""A proxy.py plugin that appends each request the proxy handles to ``$KORE_PROXY_REQUEST_LOG``.

proxy.py's own access log has one line per connection; this counter has one per request
(``CONNECT host:port`` for a tunnel, ``METHOD host:port/path`` for plain http).
"""

from __future__ import annotations

import os

from proxy.http.parser import HttpParser
from proxy.http.proxy import HttpProxyBasePlugin


class RequestLog(HttpProxyBasePlugin):
    """Logs each request the proxy accepted (after its own authentication)."""

    def handle_client_request(self, request: HttpParser) -> HttpParser | None:
        self._log(request)
        return request

    def _log(self, request: HttpParser) -> None:
        method = (request.method or b"").decode()
        host = (request.host or b"").decode()
        path = "" if request.path is None else request.path.decode()
        with open(os.environ["KORE_PROXY_REQUEST_LOG"], "a") as handle:
            handle.write(f"{method} {host}:{request.port}{path}\n")
