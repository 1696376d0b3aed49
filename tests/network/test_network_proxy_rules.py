"""Which proxy a URL takes: the explicit one, the environment's (as curl reads it), NO_PROXY."""

from __future__ import annotations

import pytest

from kore_models._proxy import ProxyResolver, no_proxy_matches, parse_proxy, proxy_secrets
from kore_models.errors import ConfigurationError


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypass"),
    [
        ("*", "https://anything.example:8443/x", True),
        ("example.com", "https://example.com/", True),
        ("example.com", "https://api.example.com/", True),
        ("example.com", "https://badexample.com/", False),
        (".example.com", "https://example.com/", True),
        (".example.com", "https://a.b.example.com/", True),
        ("*.example.com", "https://a.example.com/", True),
        ("EXAMPLE.com", "https://Api.Example.COM./", True),
        ("example.com:8443", "https://example.com:8443/", True),
        ("example.com:8443", "https://example.com/", False),
        ("localhost,127.0.0.1", "http://127.0.0.1:8700/", True),
        ("127.0.0.1", "http://127.0.0.2:8700/", False),
        ("10.0.0.0/8", "https://10.1.2.3/", True),
        ("10.0.0.0/8", "https://11.1.2.3/", False),
        ("::1", "https://[::1]:8443/", True),
        ("[::1]:8443", "https://[::1]:8443/", True),
        ("[::1]:8443", "https://[::1]:9443/", False),
        ("fd00::/8", "https://[fd12::1]/", True),
        ("example.com other.org", "https://x.other.org/", True),
        (" , ,", "https://example.com/", False),
        ("", "https://example.com/", False),
    ],
)
def test_no_proxy_entries(no_proxy: str, url: str, bypass: bool) -> None:
    assert no_proxy_matches(no_proxy, url) is bypass


def test_the_scheme_picks_the_variable_and_all_proxy_is_the_fallback() -> None:
    env = {
        "HTTPS_PROXY": "http://secure-proxy:3128",
        "http_proxy": "plain-proxy:8080",
        "ALL_PROXY": "http://fallback:1",
    }
    resolver = ProxyResolver(None, env)
    secure = resolver.route_for("https://agent-platform.kore.ai/api/public")
    plain = resolver.route_for("http://127.0.0.1:8700/api/public")
    assert secure is not None
    assert secure.shown == "http://secure-proxy:3128"
    assert plain is not None
    assert plain.shown == "http://plain-proxy:8080"
    only_all = ProxyResolver(None, {"all_proxy": "http://fallback:1"})
    route = only_all.route_for("https://x.example/")
    assert route is not None
    assert route.shown == "http://fallback:1"


def test_lower_case_wins_over_upper_case_as_in_curl() -> None:
    env = {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}
    route = ProxyResolver(None, env).route_for("https://x.example/")
    assert route is not None
    assert route.shown == "http://lower:1"


def test_the_explicit_proxy_beats_the_environment_and_no_proxy_still_applies() -> None:
    env = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "internal.example"}
    resolver = ProxyResolver("http://explicit:3128", env)
    route = resolver.route_for("https://agent-platform.kore.ai/")
    assert route is not None
    assert route.shown == "http://explicit:3128"
    assert route.source == "--proxy/KORE_PROXY"
    assert resolver.route_for("https://api.internal.example/") is None


def test_no_variables_means_direct() -> None:
    assert ProxyResolver(None, {}).route_for("https://agent-platform.kore.ai/") is None


def test_credentials_become_basic_auth_and_are_hidden_when_shown() -> None:
    route = parse_proxy("http://dom%5Cuser:p%40ss%3Aword@proxy.corp:8080", "HTTPS_PROXY")
    assert route.auth is not None
    assert (route.auth.login, route.auth.password) == ("dom\\user", "p@ss:word")
    assert str(route.url) == "http://proxy.corp:8080"  # no credentials in the URL itself
    assert route.shown == "http://dom\\user:***@proxy.corp:8080"
    assert "p@ss" not in repr(route.shown)
    assert proxy_secrets("http://u:p%40ss-long@proxy:1", {}) == ["p@ss-long"]
    assert proxy_secrets(None, {"HTTPS_PROXY": "http://u:envsecret@p:1"}) == ["envsecret"]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("socks5://proxy:1080", "only http:// and https://"),
        ("http://proxy:notaport", "invalid port"),
        ("http://:8080", "no host name"),
    ],
)
def test_unusable_proxy_urls_are_configuration_errors(raw: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        ProxyResolver(raw, {})
