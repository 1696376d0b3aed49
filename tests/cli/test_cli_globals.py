"""Global options anywhere, --json on usage errors, --progress json, profiles, completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from kore_models.cli import main
from tests.cli.cli_support import EMULATOR_KEY, MAIN, child_env

RunCli = Callable[..., Result]
MakeTar = Callable[..., Path]


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The console script's main() in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as stopped:
        main(args)
    captured = capsys.readouterr()
    code = stopped.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["import", "a.tar", "--chunk-size", "12xx", "--json"], "'12xx' is not a size"),
        (["status", "--json"], "Missing argument 'DOCK_STATUS_ID'"),
        (["import", "--json"], "give at least one PATH"),
        (["export", "cm-1", "--nope", "--json"], "No such option '--nope'"),
        (["deploy", "cm-1", "--json", "--name", "x"], "Missing option '--model-type'"),
        (["frobnicate", "--json"], "No such command 'frobnicate'"),
        (["--verbose", "status", "ds-1", "-q", "--json"], "--verbose and --quiet"),
    ],
)
def test_json_prints_one_error_object_on_usage_errors(
    args: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(args, capsys)
    assert code == 2
    error = json.loads(out)["error"]  # exactly one JSON object: json.loads rejects more
    assert error["exitCode"] == 2
    assert problem in error["message"]
    assert problem in err


def test_without_json_a_usage_error_prints_nothing_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(["import", "--chunk-size", "12xx", "a.tar"], capsys)
    assert (code, out) == (2, "")
    assert "Usage: kore-models import" in err


def test_global_options_work_after_the_command_name(
    run_cli: RunCli, make_tar: MakeTar, tmp_path: Path, emulator: Any
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(EMULATOR_KEY)
    key_file.chmod(0o600)
    unset = {"KORE_HOST": None, "KORE_API_KEY": None}
    path = make_tar()
    result = run_cli(
        "import", str(path), "--json", "--host", emulator.url, "--api-key-file", str(key_file),
        "-q", env=unset,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # -q after the command silenced the progress lines
    assert json.loads(result.stdout)["status"] == "SUCCESS"


def test_a_global_option_after_the_command_wins_over_the_one_before(
    run_cli: RunCli, emulator: Any
) -> None:
    result = run_cli(
        "--host", "http://127.0.0.1:9", "status", "ds-missing", "--host", emulator.url, "--json"
    )
    assert result.exit_code == 4, result.output  # reached the emulator: the job is unknown
    assert json.loads(result.stdout)["error"]["httpStatus"] == 404


def test_progress_json_writes_one_event_per_line(run_cli: RunCli, make_tar: MakeTar) -> None:
    path = make_tar(size=400_000)
    result = run_cli("import", str(path), "--chunk-size", "64KiB", "--progress", "json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stderr.splitlines()]
    phases = [e["phase"] for e in events if e["event"] == "progress"]
    assert phases[0] == "planning"
    assert phases[-1] == "done"
    assert {"uploading", "completing", "processing"} <= set(phases)
    keys = {"phase", "bytes", "bytesTotal", "rateBytesPerSecond", "etaSeconds", "retries"}
    for event in events:
        assert keys | {"chunks", "chunksTotal"} <= set(event)
    assert events[-1]["bytes"] == events[-1]["bytesTotal"] == path.stat().st_size
    assert events[-1]["chunks"] == events[-1]["chunksTotal"] == -(-path.stat().st_size // 65536)


def test_with_progress_json_stderr_holds_only_json_lines_also_on_failure(
    run_cli: RunCli, tmp_path: Path
) -> None:
    weights = tmp_path / "weights.dat"  # an extension the server refuses: exit 10
    weights.write_bytes(b"\0" * 5000)
    result = run_cli("import", str(weights), "--progress", "json", "--json")
    assert result.exit_code == 10
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert [e["phase"] for e in events if e["event"] == "progress"] == ["planning", "failed"]
    error = events[-1]
    assert error["event"] == "error"
    assert error["exitCode"] == 10
    assert "fileExtension" in error["message"]
    assert json.loads(result.stdout)["error"]["exitCode"] == 10


def test_a_raised_chunk_size_is_announced(run_cli: RunCli, make_tar: MakeTar) -> None:
    path = make_tar(size=3_000_000)
    result = run_cli("import", str(path), "--chunk-size", "256KiB", env={"KORE_MAX_CHUNKS": "2"})
    assert result.exit_code == 0, result.output
    assert "chunk size raised from 256 KiB to 2 MiB so that the file fits in 2 chunks" in (
        result.stderr
    )


# --- profiles ----------------------------------------------------------------------------
def write_profiles(config_home: Path, key_file: Path, host: str) -> Path:
    folder = config_home / "kore-models"
    folder.mkdir(parents=True)
    config = folder / "config.toml"
    config.write_text(
        f"""
default_profile = "broken"
[profiles.dev]
host = "{host}"
api_key_file = "{key_file}"
chunk_size = "64KiB"
concurrency = 3
[profiles.broken]
host = "http://127.0.0.1:9"
api_key_file = "{key_file}"
""",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def profiles(tmp_path: Path, emulator: Any) -> dict[str, str | None]:
    """A config.toml with a dev profile (the emulator) and a default that cannot connect."""
    key_file = tmp_path / "dev.key"
    key_file.write_text(EMULATOR_KEY + "\n")
    key_file.chmod(0o600)
    write_profiles(tmp_path / "config", key_file, emulator.url)
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "KORE_HOST": None, "KORE_API_KEY": None}


def test_a_profile_gives_host_key_and_chunk_size(
    run_cli: RunCli, make_tar: MakeTar, profiles: dict[str, str | None]
) -> None:
    path = make_tar(size=200_000)
    result = run_cli("import", str(path), "--profile", "dev", "--json", env=profiles)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["chunks"] == -(-path.stat().st_size // 65536)

    by_env = run_cli("import", str(path), "--json", env={**profiles, "KORE_PROFILE": "dev"})
    assert by_env.exit_code == 0, by_env.output
    # without --profile the file's default_profile applies: its host refuses connections
    default = run_cli("status", "ds-1", "--json", env=profiles)
    assert default.exit_code == 7


def test_an_unknown_profile_is_a_usage_error_naming_the_known_ones(
    run_cli: RunCli, profiles: dict[str, str | None]
) -> None:
    result = run_cli("--profile", "prod", "status", "ds-1", env=profiles)
    assert result.exit_code == 2
    assert "no profile 'prod'" in result.stderr
    assert "profiles there: broken, dev" in result.stderr


def test_config_show_prints_every_setting_with_its_source_and_no_key(
    run_cli: RunCli, profiles: dict[str, str | None], emulator: Any
) -> None:
    env = {**profiles, "KORE_CONCURRENCY": "5"}
    result = run_cli("config", "show", "--profile", "dev", "--json", env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    settings = data["settings"]
    assert data["profile"] == "dev"
    assert settings["host"]["value"] == emulator.url
    assert settings["host"]["source"].startswith("profile dev (")
    assert settings["api_key"] == {"value": "********", "source": settings["host"]["source"]}
    assert settings["chunk_size"] == {"value": 65536, "source": settings["host"]["source"]}
    assert settings["concurrency"] == {"value": 5, "source": "env KORE_CONCURRENCY"}
    assert settings["read_timeout"]["source"] == "default"
    assert EMULATOR_KEY not in result.output

    flag = run_cli("config", "show", "--profile", "dev", "--host", "http://127.0.0.1:1", env=env)
    assert "http://127.0.0.1:1  [--host]" in flag.stdout
    assert EMULATOR_KEY not in flag.output


# --- completion --------------------------------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(run_cli: RunCli, shell: str) -> None:
    result = run_cli("completion", shell)
    assert result.exit_code == 0
    assert "_KORE_MODELS_COMPLETE" in result.stdout


def test_completion_completes_commands_and_options(tmp_path: Path) -> None:
    env = child_env("http://127.0.0.1:9", tmp_path)
    env.update(_KORE_MODELS_COMPLETE="bash_complete", COMP_WORDS="kore-models dep", COMP_CWORD="1")
    done = subprocess.run(
        [sys.executable, "-c", MAIN], env=env, capture_output=True, text=True, timeout=60
    )
    assert "plain,deploy" in done.stdout.splitlines()
    env.update(COMP_WORDS="kore-models deploy cm-1 --model-type ", COMP_CWORD="4")
    done = subprocess.run(
        [sys.executable, "-c", MAIN], env=env, capture_output=True, text=True, timeout=60
    )
    assert {"plain,openSource", "plain,fineTune"} <= set(done.stdout.splitlines())
    assert os.environ.get("_KORE_MODELS_COMPLETE") is None


def test_completion_offers_the_profile_names(tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    key_file.write_text(EMULATOR_KEY)
    write_profiles(tmp_path / "config", key_file, "http://127.0.0.1:9")
    env = child_env("http://127.0.0.1:9", tmp_path)
    env.update(
        _KORE_MODELS_COMPLETE="bash_complete",
        COMP_WORDS="kore-models status ds-1 --profile d",
        COMP_CWORD="4",
    )
    done = subprocess.run(
        [sys.executable, "-c", MAIN], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.splitlines() == ["plain,dev"]


def test_kore_config_names_another_file(run_cli: RunCli, tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    key_file.write_text(EMULATOR_KEY)
    config = write_profiles(tmp_path / "elsewhere", key_file, "http://127.0.0.1:7")
    result = run_cli(
        "config", "show", "--profile", "dev", "--json",
        env={"KORE_CONFIG": str(config), "KORE_HOST": None},
    )  # fmt: skip
    data = json.loads(result.stdout)
    assert data["configFile"] == str(config)
    assert data["settings"]["host"]["value"] == "http://127.0.0.1:7"


def test_verbose_json_progress_logs_are_events_without_the_key(
    run_cli: RunCli, make_tar: MakeTar
) -> None:
    result = run_cli("-v", "import", str(make_tar()), "--progress", "json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stderr.splitlines()]
    logs = [e for e in events if e["event"] == "log"]
    assert logs  # --verbose: the debug records came through, as JSON
    assert {e["level"] for e in logs} <= {"debug", "info", "warning", "error"}
    assert EMULATOR_KEY not in result.output
