"""Settings: argument > KORE_* environment > default, host normalisation, refused values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kore_models import ConfigurationError, KoreClient, Settings
from kore_models.settings import is_loopback_host, normalise_host

KEY = "kg-settings-key"


def test_argument_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings.resolve(host="a.example", api_key=KEY)
    assert defaults.chunk_size == 16 * 1024 * 1024
    assert defaults.max_attempts == 6
    assert defaults.concurrency == 8
    assert defaults.retry_sleeps is True

    monkeypatch.setenv("KORE_HOST", "env.example")
    monkeypatch.setenv("KORE_API_KEY", "kg-from-env")
    monkeypatch.setenv("KORE_CHUNK_SIZE", "1048576")
    monkeypatch.setenv("KORE_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("KORE_RETRY_SLEEPS", "false")
    from_env = Settings.resolve()
    assert from_env.host == "https://env.example"
    assert from_env.api_key.get_secret_value() == "kg-from-env"
    assert from_env.chunk_size == 1024 * 1024
    assert from_env.max_attempts == 3
    assert from_env.retry_sleeps is False
    assert from_env.concurrency == 8  # untouched: the default

    given = Settings.resolve(
        host="arg.example", api_key="kg-from-arg", chunk_size=4096, max_attempts=None
    )
    assert given.host == "https://arg.example"
    assert given.api_key.get_secret_value() == "kg-from-arg"
    assert given.chunk_size == 4096
    assert given.max_attempts == 3  # None means "not given": the environment still counts


def test_the_client_resolves_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KORE_HOST", "env.example")
    monkeypatch.setenv("KORE_API_KEY", "kg-env")
    monkeypatch.setenv("KORE_CONCURRENCY", "3")
    client = KoreClient(concurrency=5, read_timeout=9.5, retry_after_cap=1.0)
    assert client.settings.host == "https://env.example"
    assert client.settings.concurrency == 5
    assert client.settings.read_timeout == 9.5
    assert client.settings.retry_after_cap == 1.0
    assert client.transport.policy.retry_after_cap == 1.0
    assert KoreClient().settings.concurrency == 3


def test_settings_are_resolved_at_construction_not_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KORE_HOST", "first.example")
    monkeypatch.setenv("KORE_API_KEY", KEY)
    first = KoreClient()
    monkeypatch.setenv("KORE_HOST", "second.example")
    assert first.settings.host == "https://first.example"
    assert KoreClient().settings.host == "https://second.example"


def test_explicit_settings_object(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.resolve(host="s.example", api_key=KEY, max_attempts=2)
    monkeypatch.setenv("KORE_HOST", "ignored.example")
    client = KoreClient(settings=settings)
    assert client.settings is settings


def test_insecure_http_opt_in_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KORE_ALLOW_INSECURE_HTTP", "1")
    settings = Settings.resolve(host="http://proxy.internal:8080", api_key=KEY)
    assert settings.host == "http://proxy.internal:8080"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("agent-platform.kore.ai", "https://agent-platform.kore.ai"),
        ("https://agent-platform.kore.ai", "https://agent-platform.kore.ai"),
        ("https://agent-platform.kore.ai/", "https://agent-platform.kore.ai"),
        ("https://agent-platform.kore.ai///", "https://agent-platform.kore.ai"),
        ("https://ai-for-process.domain.ai/api/public", "https://ai-for-process.domain.ai"),
        ("https://ai-for-process.domain.ai/api/public/", "https://ai-for-process.domain.ai"),
        ("gale.kore.ai/api/public", "https://gale.kore.ai"),
        ("  HTTPS://Gale.Kore.AI  ", "https://gale.kore.ai"),
        ("https://host.example:8443", "https://host.example:8443"),
        ("host.example:8443", "https://host.example:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.1.2.3", "http://127.1.2.3"),
        ("http://localhost:9000/", "http://localhost:9000"),
        ("http://LOCALHOST", "http://localhost"),
        ("http://[::1]:8080/api/public", "http://[::1]:8080"),
        ("https://[2001:db8::1]", "https://[2001:db8::1]"),
    ],
)
def test_host_normalisation(given: str, expected: str) -> None:
    settings = Settings.resolve(host=given, api_key=KEY)
    assert settings.host == expected
    assert settings.base_url == expected + "/api/public"
    assert normalise_host(given) == expected


@pytest.mark.parametrize(
    "host",
    [
        "http://agent-platform.kore.ai",
        "http://10.0.0.5:8080",
        "http://192.168.1.10",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "http://[2001:db8::1]",
    ],
)
def test_plain_http_to_a_remote_host_is_refused(host: str) -> None:
    with pytest.raises(ConfigurationError, match="http"):
        Settings.resolve(host=host, api_key=KEY)
    with pytest.raises(ConfigurationError):
        KoreClient(host, KEY)
    allowed = Settings.resolve(host=host, api_key=KEY, allow_insecure_http=True)
    assert allowed.host.startswith("http://")
    assert KoreClient(host, KEY, allow_insecure_http=True).settings.host == allowed.host


@pytest.mark.parametrize(
    "host",
    [
        "ftp://files.example",
        "https://",
        "https://user:pw@host.example",
        "https://host.example/other/path",
        "https://host.example/?q=1",
        "https://host.example/#frag",
        "https://host.example:99999",
        "   ",
    ],
)
def test_bad_hosts_are_refused(host: str) -> None:
    with pytest.raises(ConfigurationError):
        Settings.resolve(host=host, api_key=KEY)


def test_loopback_detection() -> None:
    for name in (
        "localhost",
        "LocalHost",
        "127.0.0.1",
        "127.255.0.1",
        "::1",
        "[::1]",
        "a.localhost",
    ):
        assert is_loopback_host(name)
    for name in ("example.com", "10.0.0.1", "0.0.0.0", "localhost.example", "::2"):  # noqa: S104
        assert not is_loopback_host(name)


def test_missing_host_or_key_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="host"):
        KoreClient(api_key=KEY)
    with pytest.raises(ConfigurationError, match="API key"):
        KoreClient("host.example")
    with pytest.raises(ConfigurationError, match="API key"):
        KoreClient("host.example", "   ")
    with pytest.raises(ConfigurationError, match="host"):
        KoreClient("", KEY)


def test_missing_key_with_host_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KORE_HOST", "host.example")
    with pytest.raises(ConfigurationError, match="KORE_API_KEY"):
        Settings.resolve()


@pytest.mark.parametrize("key", ["kg-a\r\nX-Evil: 1", "kg-a\nb", "kg\x00"])
def test_key_with_control_characters_is_refused(key: str) -> None:
    with pytest.raises(ConfigurationError, match="control"):
        Settings.resolve(host="h.example", api_key=key)


def test_key_is_trimmed() -> None:
    assert Settings.resolve(host="h.example", api_key="  kg-k \n").api_key.get_secret_value() == (
        "kg-k"
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"chunk_size": 0},
        {"chunk_size": -1},
        {"concurrency": 0},
        {"concurrency": -2},
        {"concurrency": 1000},
        {"max_attempts": 0},
        {"connect_timeout": 0},
        {"read_timeout": -1.0},
        {"stall_timeout": 0},
        {"retry_deadline": 0},
        {"backoff_initial": -0.1},
        {"retry_after_cap": -1},
        {"read_block_size": 10},
        {"poll_multiplier": 0.5},
        {"chunk_size": "big"},
        {"no_such_setting": 1},
    ],
)
def test_bad_values_are_configuration_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Settings.resolve(host="h.example", api_key=KEY, **bad)
    with pytest.raises(ConfigurationError):
        KoreClient("h.example", KEY, **bad)


@pytest.mark.parametrize(("name", "value"), [("KORE_CHUNK_SIZE", "0"), ("KORE_CONCURRENCY", "x")])
def test_bad_environment_values_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError):
        KoreClient("h.example", KEY)


def test_unrelated_kore_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KORE_SOMETHING_ELSE", "1")
    assert Settings.resolve(host="h.example", api_key=KEY).host == "https://h.example"


def test_state_dir_accepts_a_string(tmp_path: Path) -> None:
    client = KoreClient("h.example", KEY, state_dir=str(tmp_path))
    assert client.settings.state_dir == tmp_path


def test_timeouts_are_connect_and_read_never_a_total() -> None:
    client = KoreClient("h.example", KEY, connect_timeout=3.0, read_timeout=7.0)
    timeout = client.transport.timeout
    assert timeout.total is None
    assert timeout.connect is None  # the pool wait is never a connect timeout
    assert timeout.sock_connect == 3.0
    assert timeout.sock_read == 7.0
