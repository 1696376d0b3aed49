"""``export``, ``deploy``, ``undeploy`` and ``status`` against the emulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

RunCli = Callable[..., Result]
MakeTar = Callable[..., Path]

FIELDS = [
    "--name",
    "demo",
    "--device-type",
    "g5.xlarge",
    "--temperature",
    "0.7",
    "--max-tokens",
    "128",
    "--top-p",
    "0.9",
    "--top-k",
    "40",
]


def one_json(result: Result) -> dict[str, Any]:
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


@pytest.fixture
def model(run_cli: RunCli, make_tar: MakeTar) -> tuple[str, Path]:
    """An imported model: its id and the original file."""
    path = make_tar("source.tar", size=120_000)
    result = run_cli("import", str(path), "--json")
    assert result.exit_code == 0, result.output
    return str(one_json(result)["modelId"]), path


def test_export_downloads_the_same_bytes(
    run_cli: RunCli, model: tuple[str, Path], tmp_path: Path
) -> None:
    model_id, source = model
    out = tmp_path / "out" / "exported.tar"
    result = run_cli("export", model_id, "--output", str(out), "--json")
    assert result.exit_code == 0, result.output
    data = one_json(result)
    assert data["path"] == str(out)
    assert data["bytes"] == source.stat().st_size
    assert out.read_bytes() == source.read_bytes()


def test_export_to_a_folder_and_default_name(
    run_cli: RunCli, model: tuple[str, Path], tmp_path: Path
) -> None:
    model_id, _ = model
    result = run_cli("export", model_id, "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"{model_id}.tar").is_file()
    assert result.stdout.startswith(f"exported {model_id} to ")


def test_export_no_wait_prints_the_job(run_cli: RunCli, model: tuple[str, Path]) -> None:
    result = run_cli("export", model[0], "--no-wait", "--json")
    assert result.exit_code == 0, result.output
    job = one_json(result)
    assert str(job["dockStatusId"]).startswith("ds-")
    waited = run_cli("status", str(job["dockStatusId"]), "--wait", "--json")
    assert one_json(waited)["status"] == "SUCCESS"
    assert one_json(waited)["downloadUrl"].startswith("http://127.0.0.1")


def test_deploy_with_options_then_undeploy(run_cli: RunCli, model: tuple[str, Path]) -> None:
    model_id, _ = model
    deployed = run_cli("deploy", model_id, "--model-type", "openSource", *FIELDS, "--wait")
    assert deployed.exit_code == 0, deployed.output
    assert deployed.stdout.startswith(f"deployed {model_id}: job ds-")
    assert "SUCCESS" in deployed.stdout
    undeployed = run_cli("undeploy", model_id, "--wait", "--json")
    assert undeployed.exit_code == 0, undeployed.output
    job = one_json(undeployed)
    assert job["action"] == "UNDEPLOY"
    assert job["status"] == "SUCCESS"


def test_deploy_from_a_config_file_with_an_override(
    run_cli: RunCli, model: tuple[str, Path], tmp_path: Path
) -> None:
    config = tmp_path / "deploy.json"
    config.write_text(
        json.dumps(
            {
                "name": "from-file",
                "deviceType": "g5.xlarge",
                "hyperParameters": {"temperature": 0.1, "maxTokens": 64, "topP": 1, "topK": 5},
            }
        )
    )
    result = run_cli(
        "deploy", model[0], "--model-type", "fineTune", "--config", str(config),
        "--temperature", "1.5", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job = one_json(result)
    assert job["action"] == "DEPLOY"
    status = run_cli("status", str(job["dockStatusId"]))
    assert status.exit_code == 0
    assert status.stdout.startswith(f"{job['dockStatusId']}: DEPLOY")


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--temperature", "3"], "temperature: Input should be less than or equal to 2"),
        (["--top-k", "0"], "(--top-k)"),
        (["--min-replicas", "5", "--max-replicas", "2"], "min_replicas must not exceed"),
    ],
)
def test_bad_deploy_values_exit_2(run_cli: RunCli, extra: list[str], problem: str) -> None:
    result = run_cli("deploy", "cm-any", "--model-type", "openSource", *FIELDS, *extra)
    assert result.exit_code == 2
    assert problem in result.stderr
    assert result.stderr.startswith("error: invalid deploy config")


def test_deploy_needs_the_fields(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("deploy", "cm-any", "--model-type", "openSource", "--name", "x")
    assert result.exit_code == 2
    assert "(--device-type)" in result.stderr
    assert "--temperature" in result.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = run_cli("deploy", "cm-any", "--model-type", "openSource", "--config", str(bad))
    assert result.exit_code == 2
    assert "must hold a JSON object" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["export", "cm-does-not-exist"],
        ["undeploy", "cm-does-not-exist"],
        ["deploy", "cm-does-not-exist", "--model-type", "openSource", *FIELDS],
        ["status", "ds-does-not-exist"],
    ],
)
def test_unknown_ids_exit_4_with_the_request_id(run_cli: RunCli, args: list[str]) -> None:
    result = run_cli(*args, "--json")
    assert result.exit_code == 4, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: HTTP 404 Not Found on ")
    assert "(request id " in line
    error = one_json(result)["error"]
    assert error["httpStatus"] == 404
    assert error["requestId"]
