"""The tuning settings: concurrency "auto" by default or pinned, limit_rate from the one size
parser (argument, KORE_* variable), clear errors, and one pacer per client."""

from __future__ import annotations

from pathlib import Path

import pytest

from kore_models import KoreClient
from kore_models.errors import ConfigurationError
from kore_models.settings import Settings

KEY = "kg-tuning-settings-key"


def test_auto_is_the_default_and_a_number_pins_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.resolve(host="h.example", api_key=KEY).concurrency == "auto"
    assert Settings.resolve(host="h.example", api_key=KEY, concurrency=" Auto ").concurrency == (
        "auto"
    )
    assert Settings.resolve(host="h.example", api_key=KEY, concurrency="6").concurrency == 6
    monkeypatch.setenv("KORE_CONCURRENCY", "12")
    assert Settings.resolve(host="h.example", api_key=KEY).concurrency == 12


@pytest.mark.parametrize("bad", [0, 257, "fast", True, 2.5, "-1"])
def test_a_bad_concurrency_is_refused_with_a_clear_message(bad: object) -> None:
    with pytest.raises(ConfigurationError, match='concurrency must be "auto" or a number'):
        Settings.resolve(host="h.example", api_key=KEY, concurrency=bad)


@pytest.mark.parametrize(
    ("given", "rate"),
    [("50MB/s", 50_000_000), ("10MiB/s", 10 * 1024 * 1024), ("2M", 2 * 1024 * 1024), (1000, 1000)],
)
def test_limit_rate_takes_sizes_per_second(given: object, rate: int) -> None:
    assert Settings.resolve(host="h.example", api_key=KEY, limit_rate=given).limit_rate == rate


def test_limit_rate_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.resolve(host="h.example", api_key=KEY).limit_rate is None
    monkeypatch.setenv("KORE_LIMIT_RATE", "25MB/s")
    assert Settings.resolve(host="h.example", api_key=KEY).limit_rate == 25_000_000


@pytest.mark.parametrize("bad", ["fast", "0", "-5MB/s"])
def test_a_bad_limit_rate_is_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="limit_rate"):
        Settings.resolve(host="h.example", api_key=KEY, limit_rate=bad)


async def test_a_client_has_one_pacer_and_a_call_asking_the_same_shares_it(
    tmp_path: Path,
) -> None:
    async with KoreClient("h.example", KEY, state_dir=tmp_path, limit_rate="5MB/s") as kore:
        pacer = kore.pacer
        assert kore.transport.pacing is pacer
        assert pacer.controller.adaptive
        assert pacer.bucket is not None
        assert pacer.bucket.rate == 5_000_000
        same = kore.settings.replace(concurrency="auto")
        assert pacer.for_settings(same) is pacer
        pinned = pacer.for_settings(kore.settings.replace(concurrency=4))
        assert pinned is not pacer
        assert pinned.gate is pacer.gate
        assert pinned.bucket is pacer.bucket
        assert not pinned.controller.adaptive
        assert pinned.controller.limit == 4
        assert pacer.for_settings(kore.settings.replace(concurrency=4)) is pinned
