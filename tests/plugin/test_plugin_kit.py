"""The test kit itself: a user's project config, every named scenario, the emulator controls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kore_models import KoreClient
from kore_models.testing import SCENARIOS, KoreEmulator, model_archive

HERE = Path(__file__).parent


def test_the_user_example_passes_in_a_project_with_default_pytest_settings(
    tmp_path: Path,
) -> None:
    # an empty ini: pytest-asyncio in its default strict mode, none of this repo's settings
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ini),
         "--rootdir", str(tmp_path), str(HERE / "test_plugin_user_example.py")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout


def test_every_scenario_is_accepted_by_the_emulator(kore_emulator: KoreEmulator) -> None:
    for name in SCENARIOS:
        applied = kore_emulator.scenario(name)
        assert applied.name == name
    with pytest.raises(ValueError, match="known: flaky"):
        kore_emulator.scenario("no-such-scenario")


@pytest.mark.kore_emulator(seed=7)  # the same 429s every run: no chance of six in a row
@pytest.mark.kore_scenario("rate-limited")
async def test_the_rate_limited_scenario_answers_429_and_the_client_gets_through(
    kore_client: KoreClient, kore_emulator: KoreEmulator, tmp_path: Path
) -> None:
    source = model_archive(tmp_path / "m.tar", 600_000)
    result = await kore_client.models.import_file(source, chunk_size=64 * 1024)
    assert result.status == "SUCCESS"
    assert kore_emulator.counters()["responses_by_status"].get("429", 0) > 0


@pytest.mark.kore_emulator(job_seconds=0.0, latency_ms=0)
@pytest.mark.kore_scenario("slow-wan")
def test_markers_configure_the_emulator(kore_emulator: KoreEmulator) -> None:
    config = kore_emulator.control("GET", "/config")
    assert config["job_seconds"] == 0.0
    assert config["latency_ms"] == 60  # the scenario applies after the options


async def test_expire_sessions_mid_upload_is_recovered_by_a_fresh_session(
    kore_client: KoreClient, kore_emulator: KoreEmulator, tmp_path: Path
) -> None:
    source = model_archive(tmp_path / "m.tar", 640 * 1024)
    expired = False

    def on_progress(event: object) -> None:
        nonlocal expired
        if getattr(event, "chunks_done", 0) >= 2 and not expired:
            expired = True
            kore_emulator.expire_sessions()

    result = await kore_client.models.import_file(
        source, chunk_size=64 * 1024, concurrency=1, on_progress=on_progress
    )
    assert expired
    assert result.status == "SUCCESS"
    assert kore_emulator.counters()["requests"]["start"] == 2


def test_the_docs_show_this_very_user_test() -> None:
    page = (HERE.parents[1] / "docs" / "testing-kit.md").read_text(encoding="utf-8")
    source = (HERE / "test_plugin_user_example.py").read_text(encoding="utf-8")
    example = source[source.index("import tarfile") :]
    assert f"```python\n{example}```" in page
