"""``kore-models deploy`` (every field as an option, ranges in --help, --example-config) and
``undeploy``."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import click
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from ..errors import ConfigurationError, ConflictError
from ..types import DEVICE_TYPES, DeployConfig, ModelType
from .commands_models import job_json, job_options, watch_note
from .context import get_globals, run_command
from .errors import EXIT_OK
from .options import command

__all__ = ["EXAMPLE_CONFIG", "build_deploy_config", "deploy_command", "undeploy_command"]

# A complete configuration a user can edit: every field the API takes.
EXAMPLE_CONFIG: dict[str, Any] = {
    "name": "my-llm-deployment",
    "deviceType": "g5.xlarge",
    "isDeployedPreviously": False,
    "hyperParameters": {
        "temperature": 0.7,
        "maxTokens": 256,
        "topP": 0.9,
        "topK": 40,
        "stopSequence": ["</s>"],
    },
    "scalingParameters": {
        "maxBatchSize": 8,
        "minReplicas": 1,
        "maxReplicas": 2,
        "scaleUpDelay": 60,
        "scaleDownDelay": 300,
    },
    "optimizationInfo": {"optimizationType": "vllm", "quantizationType": "no_quantization"},
}


@dataclass(frozen=True)
class DeployField:
    """One field option: its place in the API body and what the model says about it."""

    option: str  # the Python name of the click option
    path: tuple[str, ...]  # camelCase keys in the body

    @property
    def flag(self) -> str:
        return "--" + self.option.replace("_", "-")


FIELDS: tuple[DeployField, ...] = (
    DeployField("name", ("name",)),
    DeployField("device_type", ("deviceType",)),
    DeployField("previously_deployed", ("isDeployedPreviously",)),
    DeployField("temperature", ("hyperParameters", "temperature")),
    DeployField("max_tokens", ("hyperParameters", "maxTokens")),
    DeployField("top_p", ("hyperParameters", "topP")),
    DeployField("top_k", ("hyperParameters", "topK")),
    DeployField("stop_sequence", ("hyperParameters", "stopSequence")),
    DeployField("max_batch_size", ("scalingParameters", "maxBatchSize")),
    DeployField("min_replicas", ("scalingParameters", "minReplicas")),
    DeployField("max_replicas", ("scalingParameters", "maxReplicas")),
    DeployField("scale_up_delay", ("scalingParameters", "scaleUpDelay")),
    DeployField("scale_down_delay", ("scalingParameters", "scaleDownDelay")),
    DeployField("optimization_type", ("optimizationInfo", "optimizationType")),
    DeployField("quantization_type", ("optimizationInfo", "quantizationType")),
)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X`` or ``X | None``."""
    candidates = [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        candidates = list(typing.get_args(annotation))
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def field_info(path: tuple[str, ...]) -> tuple[FieldInfo, bool]:
    """The pydantic FieldInfo at ``path`` and whether the body must hold it."""
    model: type[BaseModel] | None = DeployConfig
    required = True
    info: FieldInfo | None = None
    for key in path:
        assert model is not None, path
        info = model.model_fields[_snake(key)]
        required = required and info.is_required()
        model = _model_of(info.annotation)
    assert info is not None
    return info, required


def _range(info: FieldInfo) -> str:
    low = high = None
    for item in info.metadata:
        low = getattr(item, "ge", low)
        high = getattr(item, "le", high)
    return f"{low}..{high}" if low is not None and high is not None else ""


def field_help(field: DeployField) -> str:
    """``hyperParameters.temperature, 0..2, required`` for the option's --help."""
    info, required = field_info(field.path)
    parts = [".".join(field.path)]
    if _range(info):
        parts.append(_range(info))
    parts.append("required" if required else "optional, the server's default when left out")
    return "; ".join(parts) + "."


def required_flags() -> list[str]:
    """The options a deploy cannot do without (name, device type, four hyper-parameters)."""
    return [f.flag for f in FIELDS if field_info(f.path)[1]]


def _options_for(loc: tuple[str | int, ...]) -> str:
    """The options that fill the missing/invalid part ``loc``; for a missing object, only
    its required fields (``hyperParameters`` does not need --stop-sequence)."""
    snake = tuple(_snake(str(p)) for p in loc)
    matches = [f for f in FIELDS if tuple(_snake(p) for p in f.path)[: len(snake)] == snake]
    if len(matches) > 1:
        matches = [f for f in matches if field_info(f.path)[1]] or matches
    names = [f.flag for f in matches]
    return f" ({', '.join(names)})" if names else ""


def build_deploy_config(file_config: dict[str, Any], fields: dict[str, Any]) -> DeployConfig:
    """Merge ``--config`` with the field options (options win) and validate."""
    document: dict[str, Any] = json.loads(json.dumps(file_config))
    by_option = {f.option: f for f in FIELDS}
    for option, value in fields.items():
        if value is None or value == ():
            continue
        *parents, leaf = by_option[option].path
        target = document
        for key in parents:
            if _snake(key) in target and key not in target:
                key = _snake(key)  # the file spelled it in snake_case
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigurationError(f"invalid deploy config: {key} must be an object")
        target.pop(_snake(leaf), None)
        target[leaf] = list(value) if isinstance(value, tuple) else value
    try:
        return DeployConfig.model_validate(document)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc) or "config"
            problems.append(f"{where}: {err['msg']}{_options_for(loc)}")
        raise ConfigurationError(
            "invalid deploy config: " + "; ".join(problems) + " (a complete example: "
            "kore-models deploy --example-config)"
        ) from None


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} must hold a JSON object (the deploy configuration)")
    return data


def _print_example(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(json.dumps(EXAMPLE_CONFIG, indent=2))
        ctx.exit(EXIT_OK)


_TYPES: dict[str, Any] = {
    "device_type": click.Choice(DEVICE_TYPES),
    "temperature": float,
    "top_p": float,
    "optimization_type": click.Choice(["ctranslate2", "vllm"]),
    "quantization_type": click.Choice(["no_quantization", "int8_float16"]),
}


def _field_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for field in reversed(FIELDS):
        extra: dict[str, Any] = {"help": field_help(field)}
        if field.option == "stop_sequence":
            extra.update(multiple=True, help=field_help(field) + " Repeat for several.")
        elif field.option == "previously_deployed":
            extra.update(is_flag=True, default=None)
        elif field.option == "name":
            extra["type"] = str
        else:
            extra["type"] = _TYPES.get(field.option, int)
        function = click.option(field.flag, field.option, **extra)(function)
    return function


@command("deploy")
@click.argument("model_id")
@click.option(
    "--model-type",
    type=click.Choice(["openSource", "fineTune"]),
    required=True,
    help="openSource (an imported base model) or fineTune (a fine-tuned one).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Deploy configuration JSON (the API's body); field options override it.",
)
@click.option(
    "--example-config",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_print_example,
    help="Print a complete configuration to edit, and exit.",
)
@_field_options
@job_options
@click.pass_context
def deploy_command(
    ctx: click.Context,
    /,
    model_id: str,
    model_type: str,
    config_file: Path | None,
    wait: bool,
    timeout: float | None,
    json_mode: bool,
    **fields: Any,
) -> None:
    """Deploy MODEL_ID with a configuration file or field options (validated first).

    Required: --name, --device-type and the four hyper-parameters (--temperature,
    --max-tokens, --top-p, --top-k), from options or --config. The rest is optional.

    \b
    Examples:
      kore-models deploy --example-config > deploy.json   # then edit it
      kore-models deploy cm-1234 --model-type openSource --config deploy.json --wait
      kore-models deploy cm-1234 --model-type fineTune --name my-llm \\
          --device-type g5.xlarge --temperature 0.7 --max-tokens 256 --top-p 0.9 --top-k 40
    """
    g = get_globals(ctx)
    out = g.output(json_mode=json_mode)

    async def main() -> int:
        config = build_deploy_config(_load_config(config_file), fields)
        async with g.client() as kore:
            job = await kore.models.deploy(
                model_id,
                cast(ModelType, model_type),
                config,
                wait=wait,
                timeout=timeout,
                on_update=watch_note(out, f"deploy {model_id}"),
            )
        out.result(job_json(job), _job_result("deploy", model_id, job, wait))
        return EXIT_OK

    run_command(ctx, out, main)


def _job_result(verb: str, model_id: str, job: Any, waited: bool) -> str:
    if waited:
        return f"{verb}ed {model_id}: job {job.dock_status_id} {job.status}"
    return (
        f"{verb} of {model_id} started: job {job.dock_status_id} {job.status or ''} "
        f"(check: kore-models status {job.dock_status_id} --wait)"
    ).replace("  ", " ")


class NotDeployedError(ConflictError):
    """Undeploy of a model that is not deployed (the server's 409, said plainly)."""


@command("undeploy")
@click.argument("model_id")
@job_options
@click.pass_context
def undeploy_command(
    ctx: click.Context, model_id: str, wait: bool, timeout: float | None, json_mode: bool
) -> None:
    """Undeploy MODEL_ID.

    \b
    Example:
      kore-models undeploy cm-1234 --wait
    """
    g = get_globals(ctx)
    out = g.output(json_mode=json_mode)

    async def main() -> int:
        async with g.client() as kore:
            try:
                job = await kore.models.undeploy(
                    model_id,
                    wait=wait,
                    timeout=timeout,
                    on_update=watch_note(out, f"undeploy {model_id}"),
                )
            except ConflictError as exc:
                if "NOT_DEPLOYED" not in (exc.code or "").upper():
                    raise
                raise NotDeployedError(
                    f"model {model_id} is not deployed, so there is nothing to undeploy",
                    status_code=exc.status_code,
                    request_id=exc.request_id,
                    code=exc.code,
                ) from exc
        out.result(job_json(job), _job_result("undeploy", model_id, job, wait))
        return EXIT_OK

    run_command(ctx, out, main)
