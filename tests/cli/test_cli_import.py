"""``kore-models import`` against the emulator: one file, several, --json, failures, units."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from kore_models.cli.import_report import human_line
from kore_models.cli.params import parse_byte_size

RunCli = Callable[..., Result]
MakeTar = Callable[..., Path]


def one_json(result: Result) -> dict[str, object]:
    """stdout must be exactly one JSON object."""
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def test_import_one_file_prints_a_result_line(run_cli: RunCli, make_tar: MakeTar) -> None:
    path = make_tar(size=300_000)
    result = run_cli("import", str(path), "--chunk-size", "64KiB")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"imported {path}") or "imported " in result.stdout
    assert "SUCCESS" in result.stdout
    # progress goes to stderr as plain lines (not a terminal), never to stdout
    assert "processing on the server" in result.stderr
    assert "uploading" not in result.stdout


def test_import_json_has_the_documented_fields(run_cli: RunCli, make_tar: MakeTar) -> None:
    path = make_tar(size=150_000)
    result = run_cli("import", str(path), "--chunk-size", "32KiB", "--concurrency", "3", "--json")
    assert result.exit_code == 0, result.output
    data = one_json(result)
    for key in ("modelId", "dockStatusId", "sessionId", "status", "bytes", "chunks", "retries"):
        assert key in data
    assert data["status"] == "SUCCESS"
    assert data["bytes"] == path.stat().st_size
    assert data["chunks"] == -(-path.stat().st_size // (32 * 1024))
    assert isinstance(data["seconds"], float)
    assert str(data["modelId"]).startswith("cm-")


def test_quiet_prints_only_the_result(run_cli: RunCli, make_tar: MakeTar) -> None:
    result = run_cli("--quiet", "import", str(make_tar()))
    assert result.exit_code == 0
    assert result.stderr == ""
    assert len(result.stdout.strip().splitlines()) == 1


def test_several_files_in_parallel_report_each_and_a_summary(
    run_cli: RunCli, make_tar: MakeTar
) -> None:
    paths = [make_tar(f"m{i}.tar", size=100_000 + i) for i in range(3)]
    result = run_cli("import", *map(str, paths), "--parallel-files", "2", "--json")
    assert result.exit_code == 0, result.output
    data = one_json(result)
    imports = data["imports"]
    assert isinstance(imports, list)
    assert [row["path"] for row in imports] == [str(p) for p in paths]
    assert all(row["status"] == "SUCCESS" for row in imports)
    assert len({row["modelId"] for row in imports}) == 3
    summary = data["summary"]
    assert isinstance(summary, dict)
    assert (summary["files"], summary["imported"], summary["failed"]) == (3, 3, 0)


def test_a_failed_job_exits_5_and_the_others_continue(
    run_cli: RunCli, make_tar: MakeTar, tmp_path: Path
) -> None:
    good = make_tar("good.tar")
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"this is not an archive" * 1000)
    missing = tmp_path / "missing.tar"
    result = run_cli("import", str(bad), str(missing), str(good), "--parallel-files", "2", "--json")
    assert result.exit_code == 5, result.output  # the worst of 5 (job failed) and 2 (no file)
    rows = one_json(result)["imports"]
    assert isinstance(rows, list)
    assert rows[0]["exitCode"] == 5
    assert rows[0]["errorType"] == "JobFailedError"
    assert rows[1]["exitCode"] == 2
    assert "no such file" in rows[1]["error"]
    assert rows[2]["status"] == "SUCCESS"
    assert "error: " in result.stderr


def test_a_file_the_server_rejects_exits_5(run_cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-model.tar"
    bad.write_bytes(b"plain text, not a tar" * 500)
    result = run_cli("import", str(bad))
    assert result.exit_code == 5
    assert result.stderr.strip().splitlines()[-1].startswith("error: job ds-")
    assert "Traceback" not in result.output


def test_a_missing_file_exits_2_with_one_line(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("import", str(tmp_path / "nope.tar"), "--json")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.tar'}: no such file"
    error = one_json(result)["error"]
    assert isinstance(error, dict)
    assert error["exitCode"] == 2


def test_no_wait_then_status_wait(run_cli: RunCli, make_tar: MakeTar) -> None:
    result = run_cli("import", str(make_tar()), "--no-wait", "--json")
    assert result.exit_code == 0, result.output
    data = one_json(result)
    assert data["status"] != "SUCCESS" or data["dockStatusId"]
    status = run_cli("status", str(data["dockStatusId"]), "--wait", "--json")
    assert status.exit_code == 0, status.output
    assert one_json(status)["status"] == "SUCCESS"


def test_timeout_exits_6(run_cli: RunCli, make_tar: MakeTar) -> None:
    started = run_cli("import", str(make_tar()), "--no-wait", "--json")
    job = str(one_json(started)["dockStatusId"])
    result = run_cli("status", job, "--wait", "--timeout", "0.05", "--json")  # jobs take 0.2 s
    assert result.exit_code == 6, result.output
    assert "after 0.05s" in result.stderr
    error = one_json(result)["error"]
    assert isinstance(error, dict)
    assert error["dockStatusId"] == job


@pytest.mark.parametrize(
    "args",
    [
        ["import"],
        ["import", "a.tar", "--shard", "1/2"],
        ["import", "a.tar", "--chunk-size", "12 parsecs"],
        ["import", "a.tar", "--concurrency", "0"],
        ["import", "a.tar", "--manifest", "m.txt"],
        ["--verbose", "--quiet", "import", "a.tar"],
        ["import", "--bogus"],
        ["deploy", "cm-1"],
    ],
)
def test_usage_errors_exit_2(run_cli: RunCli, args: list[str]) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16MiB", 16 * 1024 * 1024),
        ("16M", 16 * 1024 * 1024),
        ("512kib", 512 * 1024),
        ("1GB", 10**9),
        ("1.5MiB", 1572864),
        ("1048576", 1048576),
        ("8 MB", 8_000_000),
    ],
)
def test_byte_sizes(text: str, expected: int) -> None:
    assert parse_byte_size(text) == expected


@pytest.mark.parametrize("text", ["", "0", "-1M", "1.3B", "3 parsecs", "MiB"])
def test_bad_byte_sizes(text: str) -> None:
    with pytest.raises(ValueError, match=r"size|whole number"):
        parse_byte_size(text)


def test_a_resumed_import_reports_the_speed_of_this_run_only() -> None:
    gib, mib = 1024**3, 1024**2
    row = {
        "bytes": 15 * gib, "bytesSent": 32 * mib, "seconds": 2.0, "resumed": True,
        "chunksResumed": 958, "retries": 0, "status": "SUCCESS", "modelId": "cm-1",
        "dockStatusId": "ds-1",
    }  # fmt: skip
    line = human_line(row, "big.tar")
    assert line is not None
    assert "15.0 GiB in 2.0 s (16.0 MiB/s" in line
    assert "958 chunks were already on the server, 32.0 MiB sent now" in line
