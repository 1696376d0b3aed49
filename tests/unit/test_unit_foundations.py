"""Regression tests of the foundations review: settings validate themselves, one size parser,
one set of bounds, redaction of the key and not of letters."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from kore_models import ConfigurationError, KoreClient, Settings
from kore_models.errors import error_from_response, redact
from kore_models.units import format_size, parse_rate, parse_size

KEY = "kg-foundations-test-key-0123456789"


def test_settings_normalise_and_check_the_host_in_the_model_itself() -> None:
    assert Settings(host="agent.example.com", api_key=KEY).base_url == (
        "https://agent.example.com/api/public"
    )
    with pytest.raises(ValidationError, match="refusing plain http"):
        Settings(host="http://evil.example", api_key=KEY)
    assert Settings(host="http://evil.example", api_key=KEY, allow_insecure_http=True).host == (
        "http://evil.example"
    )
    with pytest.raises(ValidationError, match="no host"):
        Settings(api_key=KEY)
    with pytest.raises(ValidationError, match="no API key"):
        Settings(host="agent.example.com")


def test_a_client_refuses_settings_and_options_together() -> None:
    settings = Settings(host="agent.example.com", api_key=KEY)
    with pytest.raises(ConfigurationError, match=r"either settings=\.\.\. or individual options"):
        KoreClient(host="other.example.com", settings=settings)
    with pytest.raises(ConfigurationError, match="concurrency"):
        KoreClient(settings=settings, concurrency=2)
    assert KoreClient(settings=settings).settings is settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16MiB", 16 * 1024**2),
        ("16 MiB", 16 * 1024**2),
        ("16MB", 16 * 1000**2),
        ("8M", 8 * 1024**2),
        ("512KiB", 512 * 1024),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("1048576", 1048576),
        (4096, 4096),
    ],
)
def test_one_size_parser_reads_units(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "x", "16Q", "-1", "1.5", True, None, [1]])
def test_the_size_parser_refuses_what_is_not_a_size(bad: object) -> None:
    with pytest.raises(ValueError, match="chunk size"):
        parse_size(bad, what="chunk size")


def test_rates_take_a_per_second_suffix() -> None:
    assert parse_rate("50MB/s") == 50_000_000
    assert parse_rate("10 MiB/s") == 10 * 1024**2
    assert format_size(1536) == "1.5 KiB"
    assert format_size(10) == "10 B"


def test_sizes_as_text_work_from_arguments_and_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(host="h.example", api_key=KEY, chunk_size="16MiB").chunk_size == 16 * 1024**2
    monkeypatch.setenv("KORE_CHUNK_SIZE", "8MiB")
    monkeypatch.setenv("KORE_MAX_BUFFER_BYTES", "2MiB")
    settings = Settings(host="h.example", api_key=KEY)
    assert settings.chunk_size == 8 * 1024**2
    assert settings.max_buffer_bytes == 2 * 1024**2


def test_one_set_of_bounds_for_library_env_and_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = Settings(host="h.example", api_key=KEY)
    with pytest.raises(ConfigurationError, match="concurrency"):
        settings.replace(concurrency=10_000)
    with pytest.raises(ConfigurationError, match="chunk_size"):
        settings.replace(chunk_size="16 bananas")
    monkeypatch.setenv("KORE_CONCURRENCY", "10000")
    with pytest.raises(ConfigurationError, match="concurrency"):
        Settings.resolve(host="h.example", api_key=KEY)
    assert Settings.bounds("concurrency") == (1, 256)
    assert settings.replace(chunk_size="1MiB", state_dir=tmp_path).chunk_size == 1024**2


async def test_import_file_refuses_out_of_bounds_values_before_any_request(
    tmp_path: Path,
) -> None:
    path = tmp_path / "model.tar"
    path.write_bytes(b"x" * 10)
    async with KoreClient("kore.example.test", KEY, state_dir=tmp_path) as kore:
        with pytest.raises(ConfigurationError, match="concurrency"):
            await kore.models.import_file(path, concurrency=10_000)
        with pytest.raises(ConfigurationError, match="chunk_size"):
            await kore.models.import_file(path, chunk_size="sixteen")


def test_a_short_key_is_redacted_without_eating_letters() -> None:
    assert redact("Name or service not known", "k") == "Name or service not known"
    assert redact("key k was refused", "k") == "key *** was refused"
    assert redact("Cannot connect to host (k)", "k") == "Cannot connect to host (***)"


def test_a_key_reflected_json_escaped_is_redacted_in_every_field() -> None:
    escaped = KEY.replace("-", "\\u002d")
    text = '{"errors": [{"msg": "bad key ' + escaped + '", "code": "' + escaped + '"}]}'
    error = error_from_response(
        status_code=401,
        headers={},
        text=text,
        method="GET",
        url="https://h.example/api/public/dock-status/1",
        retry_after=None,
        secret=KEY,
    )
    for shown in (str(error), error.message, repr(error.body), str(error.code)):
        assert KEY not in shown
        assert "foundations-test-key" not in shown
    assert error.message == "bad key ***"
