"""The CLI's tuning options: --concurrency auto|N shared by --parallel-files, --limit-rate,
decisions on stderr with --verbose, peak/final concurrency in --json, usage errors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kore_models.cli import cli
from kore_models.emulator.process import EmulatorProcess
from tests.support.transfer import KEY, FileMaker


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    server = EmulatorProcess(
        tmp_path / "emulator",
        "--job-seconds",
        "0",
        api_key=KEY,
        stderr_path=tmp_path / "emulator.log",
    )
    with server:
        yield server


def run(emulator: EmulatorProcess, tmp_path: Path, *args: str) -> Result:
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("KORE_")}
    env.update(
        KORE_HOST=emulator.url,
        KORE_API_KEY=KEY,
        KORE_STATE_DIR=str(tmp_path / "state"),
        KORE_POLL_INITIAL="0.05",
        KORE_POLL_MIN_INTERVAL="0.05",
    )
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def rows(result: Result) -> list[dict[str, Any]]:
    document = json.loads(result.stdout)
    found: list[dict[str, Any]] = document.get("imports", [document])
    return found


def test_a_pinned_concurrency_is_one_limit_for_all_parallel_files(
    emulator: EmulatorProcess, tmp_path: Path, make_file: FileMaker
) -> None:
    emulator.configure(latency_ms=5)
    files = [str(make_file(20 * 64 * 1024)) for _ in range(3)]
    result = run(
        emulator, tmp_path, "import", *files, "--parallel-files", "3", "--chunk-size", "64KiB",
        "--concurrency", "2", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [(r["peakConcurrency"], r["finalConcurrency"]) for r in rows(result)] == [(2, 2)] * 3
    assert emulator.counters()["max_concurrent_chunk_uploads"] <= 2


def test_verbose_shows_the_controller_decisions(
    emulator: EmulatorProcess, tmp_path: Path, make_file: FileMaker
) -> None:
    emulator.configure(latency_ms=20, throughput_bytes_per_second=1_000_000)
    path = make_file(64 * 128 * 1024)
    result = run(
        emulator, tmp_path, "--verbose", "import", str(path), "--chunk-size", "128KiB", "--json"
    )
    assert result.exit_code == 0, result.output
    assert "concurrency 2 -> 4: " in result.stderr
    (row,) = rows(result)
    assert row["peakConcurrency"] >= 8


def test_limit_rate_caps_the_upload(
    emulator: EmulatorProcess, tmp_path: Path, make_file: FileMaker
) -> None:
    path = make_file(2_000_000)
    result = run(emulator, tmp_path, "import", str(path), "--limit-rate", "1MB/s", "--json")
    assert result.exit_code == 0, result.output
    (row,) = rows(result)
    # never faster than 1 MB/s, less the bucket's 50 ms burst
    assert row["seconds"] >= (row["bytes"] - 50_000) / 1_000_000


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--concurrency", "0", 'concurrency must be "auto" or a number from 1 to 256'),
        ("--concurrency", "lots", 'concurrency must be "auto" or a number from 1 to 256'),
        ("--limit-rate", "fast", "is not a size"),
    ],
)
def test_bad_values_are_usage_errors(
    emulator: EmulatorProcess, tmp_path: Path, option: str, value: str, message: str
) -> None:
    result = run(emulator, tmp_path, "import", "a.tar", option, value)
    assert result.exit_code == 2
    assert message in result.stderr
    assert emulator.counters()["requests"]["start"] == 0


def test_limit_rate_is_a_global_option_for_downloads_too(
    emulator: EmulatorProcess, tmp_path: Path, make_file: FileMaker
) -> None:
    path = make_file(3_000_000)
    imported = run(emulator, tmp_path, "import", str(path), "--json")
    assert imported.exit_code == 0, imported.output
    model_id = rows(imported)[0]["modelId"]
    result = run(
        emulator, tmp_path, "export", model_id, "-o", str(tmp_path / "out.tar"),
        "--limit-rate", "2MB/s", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["bytes"] == path.stat().st_size
    # the download alone takes 1.5 s at 2 MB/s; the export job and polls come on top
    assert document["seconds"] >= (document["bytes"] - 100_000) / 2_000_000
