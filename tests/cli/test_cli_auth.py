"""API key sources, auth failures (exit 3), configuration errors, and the key never printed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

RunCli = Callable[..., Result]
MakeTar = Callable[..., Path]

EMULATOR_KEY = "kg-emulator-local-key"
WRONG_KEY = "kg-wrong-0123456789-secret"


def test_wrong_key_exits_3_and_is_never_printed(run_cli: RunCli, make_tar: MakeTar) -> None:
    result = run_cli("--verbose", "import", str(make_tar()), env={"KORE_API_KEY": WRONG_KEY})
    assert result.exit_code == 3
    assert WRONG_KEY not in result.output
    assert "HTTP 401 Unauthorized on POST /files/session/start" in result.stderr
    assert "(request id " in result.stderr
    assert "Traceback" in result.stderr  # --verbose shows it
    quiet = run_cli("status", "ds-1", "--json", env={"KORE_API_KEY": WRONG_KEY})
    assert quiet.exit_code == 3
    assert "Traceback" not in quiet.output
    assert json.loads(quiet.stdout)["error"]["exitCode"] == 3
    assert WRONG_KEY not in quiet.output


def test_the_right_key_is_never_printed_even_verbose(run_cli: RunCli, make_tar: MakeTar) -> None:
    result = run_cli("-v", "import", str(make_tar()), "--json")
    assert result.exit_code == 0, result.output
    assert "DEBUG kore_models.http: -> POST" in result.stderr
    assert EMULATOR_KEY not in result.output
    export = run_cli("-v", "export", json.loads(result.stdout)["modelId"], "--no-wait")
    assert export.exit_code == 0
    assert EMULATOR_KEY not in export.output


def test_key_from_a_file(run_cli: RunCli, make_tar: MakeTar, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(EMULATOR_KEY + "\n")
    key_file.chmod(0o600)
    result = run_cli(
        "--api-key-file", str(key_file), "import", str(make_tar()), env={"KORE_API_KEY": None}
    )
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    # the file beats the environment variable
    result = run_cli(
        "--api-key-file", str(key_file), "status", "ds-x", env={"KORE_API_KEY": WRONG_KEY}
    )
    assert result.exit_code == 4


def test_key_file_problems(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("--api-key-file", str(tmp_path / "none"), "status", "ds-1")
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
    open_file = tmp_path / "open"
    open_file.write_text(WRONG_KEY)
    open_file.chmod(0o644)
    result = run_cli("--api-key-file", str(open_file), "status", "ds-1")
    assert result.exit_code == 3
    assert "readable by other users" in result.stderr
    assert WRONG_KEY not in result.output


def test_key_from_stdin(run_cli: RunCli, make_tar: MakeTar) -> None:
    result = run_cli(
        "--api-key-stdin", "import", str(make_tar()), input=EMULATOR_KEY + "\n",
        env={"KORE_API_KEY": None},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    empty = run_cli("--api-key-stdin", "status", "ds-1", input="\n")
    assert empty.exit_code == 2


def test_only_one_key_source(run_cli: RunCli, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(EMULATOR_KEY)
    result = run_cli("--api-key", "x", "--api-key-file", str(key_file), "status", "ds-1")
    assert result.exit_code == 2
    assert "only one of" in result.stderr


def test_missing_key_or_host_exit_2(run_cli: RunCli) -> None:
    result = run_cli("status", "ds-1", env={"KORE_API_KEY": None})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no API key: pass --api-key-file")
    result = run_cli("status", "ds-1", env={"KORE_HOST": None})
    assert result.exit_code == 2
    assert "no host" in result.stderr
    result = run_cli("--host", "http://example.com", "status", "ds-1")
    assert result.exit_code == 2
    assert "refusing plain http" in result.stderr


def test_network_errors_exit_7(run_cli: RunCli) -> None:
    result = run_cli(
        "--host", "http://127.0.0.1:9", "status", "ds-1",
        env={"KORE_MAX_ATTEMPTS": "1", "KORE_CONNECT_TIMEOUT": "2"},
    )  # fmt: skip
    assert result.exit_code == 7, result.output
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
