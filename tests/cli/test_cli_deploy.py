"""Deploy is discoverable: field help with ranges, --example-config, plain messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from kore_models import DeployConfig
from kore_models.cli.commands_deploy import FIELDS, field_info

RunCli = Callable[..., Result]
MakeTar = Callable[..., Path]


def test_deploy_help_lists_every_field_with_its_range_and_default(run_cli: RunCli) -> None:
    result = run_cli("deploy", "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for field in FIELDS:
        assert field.flag in text
        info, required = field_info(field.path)
        wanted = ".".join(field.path)
        low = [getattr(m, "ge", None) for m in info.metadata if hasattr(m, "ge")]
        high = [getattr(m, "le", None) for m in info.metadata if hasattr(m, "le")]
        if low and high:
            wanted += f"; {low[0]}..{high[0]}"
        wanted += "; required" if required else "; optional, the server's default when left out"
        assert wanted in text, field.flag
    assert "hyperParameters.temperature; 0..2; required." in text
    assert "scalingParameters.scaleDownDelay; 50..2000; optional" in text
    assert "kore-models deploy --example-config" in text


def test_example_config_is_complete_valid_and_deploys(
    run_cli: RunCli, make_tar: MakeTar, tmp_path: Path
) -> None:
    result = run_cli("deploy", "--example-config")
    assert result.exit_code == 0
    example = json.loads(result.stdout)
    config = DeployConfig.model_validate(example)
    assert config.to_api() == example  # nothing dropped: every field is filled in
    for field in FIELDS:
        node = example
        for key in field.path:
            node = node[key]

    imported = run_cli("import", str(make_tar()), "--json")
    model_id = json.loads(imported.stdout)["modelId"]
    saved = tmp_path / "deploy.json"
    saved.write_text(result.stdout)
    deployed = run_cli(
        "deploy", model_id, "--model-type", "openSource", "--config", str(saved), "--wait"
    )
    assert deployed.exit_code == 0, deployed.output
    assert deployed.stdout.startswith(f"deployed {model_id}: job ")


def test_a_missing_field_message_names_only_required_options(run_cli: RunCli) -> None:
    result = run_cli("deploy", "cm-any", "--model-type", "openSource", "--name", "x")
    assert result.exit_code == 2
    message = result.stderr
    for flag in ("--device-type", "--temperature", "--max-tokens", "--top-p", "--top-k"):
        assert flag in message
    assert "--stop-sequence" not in message
    assert "kore-models deploy --example-config" in message


@pytest.mark.parametrize("json_mode", [False, True])
def test_undeploying_a_model_that_is_not_deployed_says_so(
    run_cli: RunCli, make_tar: MakeTar, json_mode: bool
) -> None:
    imported = run_cli("import", str(make_tar()), "--json")
    model_id = json.loads(imported.stdout)["modelId"]
    result = run_cli("undeploy", model_id, *(["--json"] if json_mode else []))
    assert result.exit_code == 9
    plain = f"model {model_id} is not deployed, so there is nothing to undeploy"
    assert plain in result.stderr
    if json_mode:
        assert plain in json.loads(result.stdout)["error"]["message"]
