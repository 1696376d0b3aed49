"""``kore-models export``, ``deploy``, ``undeploy`` and ``status``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from pydantic import ValidationError

from ..errors import ConfigurationError
from ..types import DEVICE_TYPES, DeployConfig, JobDocument, ModelType
from .context import get_globals, run_command
from .errors import EXIT_OK
from .output import Output, human_bytes, human_rate
from .progress import ProgressDisplay, pick_mode

__all__ = [
    "deploy_command",
    "export_command",
    "job_json",
    "status_command",
    "undeploy_command",
]

_WAIT_HELP = "Wait until the job ends (FAILED exits 5)."
_TIMEOUT = click.FloatRange(min=0, min_open=True)

F = TypeVar("F", bound=Callable[..., Any])


def job_options(command: F) -> F:
    """The ``--wait``, ``--timeout`` and ``--json`` options of the job commands."""
    command = click.option("--json", "json_mode", is_flag=True, help="One JSON object on stdout.")(
        command
    )
    command = click.option(
        "--timeout", type=_TIMEOUT, metavar="SECONDS", help="Limit for --wait (exit 6)."
    )(command)
    return click.option("--wait", is_flag=True, help=_WAIT_HELP)(command)


def job_json(job: JobDocument) -> dict[str, Any]:
    """The public fields of a dock-status job, camelCase."""
    data = {
        "dockStatusId": job.dock_status_id,
        "modelId": job.model_id,
        "jobType": job.job_type,
        "action": job.action,
        "status": job.status,
        "percentageComplete": job.percentage_complete,
        "message": job.message,
        "downloadUrl": job.download_url,
    }
    return {k: v for k, v in data.items() if v is not None}


def job_line(job: JobDocument) -> str:
    """``ds-1: DEPLOY SUCCESS 100% (model cm-1)``."""
    parts = [f"{job.dock_status_id}:", job.action or job.job_type or "job", job.status or "?"]
    if job.percentage_complete is not None and not job.is_terminal:
        parts.append(f"{job.percentage_complete:.0f}%")
    if job.model_id:
        parts.append(f"(model {job.model_id})")
    if job.message:
        parts.append(f"- {job.message}")
    return " ".join(parts)


def _watch_note(out: Output, what: str) -> Callable[[JobDocument], None]:
    """An on_update that logs each status change of a waited-for job on stderr."""

    def on_update(job: JobDocument) -> None:
        pct = "" if job.percentage_complete is None else f" {job.percentage_complete:.0f}%"
        out.info(f"{what}: {job.status}{pct}")

    return on_update


# --- export --------------------------------------------------------------------------
def default_export_name(model_id: str) -> str:
    """``<modelId>.tar`` as a plain file name: a ``/`` or ``\\`` in the id becomes ``_``,
    so that an id such as ``../../x`` cannot put the file outside the folder."""
    return re.sub(r"[/\\\x00]", "_", model_id) + ".tar"


@click.command("export")
@click.argument("model_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to save the model (a file, or a folder for <modelId>.tar). "
    "Default ./<modelId>.tar.",
)
@click.option("--no-wait", is_flag=True, help="Only start the export job and print it.")
@click.option("--timeout", type=_TIMEOUT, metavar="SECONDS", help="Limit for the export job.")
@click.option(
    "--sha256",
    "expected_sha256",
    metavar="HEX",
    help="Fail (exit 11, nothing kept) unless the download has this SHA-256.",
)
@click.option("--json", "json_mode", is_flag=True, help="One JSON object on stdout.")
@click.pass_context
def export_command(
    ctx: click.Context,
    model_id: str,
    output: Path | None,
    no_wait: bool,
    timeout: float | None,
    expected_sha256: str | None,
    json_mode: bool,
) -> None:
    """Export MODEL_ID and download it (resumes a partial download).

    \b
    Examples:
      kore-models export cm-1234 -o llama.tar
      kore-models export cm-1234 --no-wait --json
    """
    g = get_globals(ctx)
    out = g.output(json_mode=json_mode)
    dest = output if output is not None else Path(default_export_name(model_id))
    if dest.is_dir():
        dest = dest / default_export_name(model_id)

    async def main() -> int:
        async with g.client() as kore:
            if no_wait:
                job = await kore.models.export(model_id)
                out.result(
                    job_json(job),
                    f"export started: job {job.dock_status_id} "
                    f"(check: kore-models status {job.dock_status_id})",
                )
                return EXIT_OK
            with ProgressDisplay(out, pick_mode(out)) as display:
                result = await kore.models.export_to_file(
                    model_id,
                    dest,
                    timeout=timeout,
                    on_progress=display.track(model_id),
                    expected_sha256=expected_sha256,
                )
        data = {
            "modelId": result.model_id,
            "dockStatusId": result.dock_status_id,
            "path": str(result.path),
            "bytes": result.bytes,
            "seconds": round(result.seconds, 3),
            "resumedFrom": result.resumed_from,
            "sha256": result.sha256,
        }
        out.result(
            data,
            f"exported {model_id} to {result.path}: {human_bytes(result.bytes)} in "
            f"{result.seconds:.1f} s ({human_rate(result.bytes, result.seconds)}), "
            f"sha256 {result.sha256}",
        )
        return EXIT_OK

    run_command(ctx, out, main)


# --- deploy --------------------------------------------------------------------------
# option name -> its path in the DeployConfig document
_FIELD_OPTIONS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "device_type": ("deviceType",),
    "previously_deployed": ("isDeployedPreviously",),
    "temperature": ("hyperParameters", "temperature"),
    "max_tokens": ("hyperParameters", "maxTokens"),
    "top_p": ("hyperParameters", "topP"),
    "top_k": ("hyperParameters", "topK"),
    "stop_sequence": ("hyperParameters", "stopSequence"),
    "max_batch_size": ("scalingParameters", "maxBatchSize"),
    "min_replicas": ("scalingParameters", "minReplicas"),
    "max_replicas": ("scalingParameters", "maxReplicas"),
    "scale_up_delay": ("scalingParameters", "scaleUpDelay"),
    "scale_down_delay": ("scalingParameters", "scaleDownDelay"),
    "optimization_type": ("optimizationInfo", "optimizationType"),
    "quantization_type": ("optimizationInfo", "quantizationType"),
}


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _option_for(loc: tuple[str | int, ...]) -> str:
    snake = tuple(_snake(str(p)) for p in loc)
    names = [
        f"--{option.replace('_', '-')}"
        for option, path in _FIELD_OPTIONS.items()
        if tuple(_snake(p) for p in path)[: len(snake)] == snake
    ]
    return f" ({', '.join(names)})" if names else ""


def build_deploy_config(file_config: dict[str, Any], fields: dict[str, Any]) -> DeployConfig:
    """Merge ``--config`` with the field options (options win) and validate."""
    document: dict[str, Any] = json.loads(json.dumps(file_config))
    for option, value in fields.items():
        if value is None or value == ():
            continue
        *parents, leaf = _FIELD_OPTIONS[option]
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
            problems.append(f"{where}: {err['msg']}{_option_for(loc)}")
        raise ConfigurationError("invalid deploy config: " + "; ".join(problems)) from None


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


@click.command("deploy")
@click.argument("model_id")
@click.option(
    "--model-type", type=click.Choice(["openSource", "fineTune"]), required=True, help="Kind."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Deploy configuration JSON (the API's body); field options override it.",
)
@click.option("--name", help="Deployment name.")
@click.option("--device-type", type=click.Choice(DEVICE_TYPES), help="GPU instance type.")
@click.option("--temperature", type=float, help="0..2")
@click.option("--max-tokens", type=int, help="0..512")
@click.option("--top-p", type=float, help="0..1")
@click.option("--top-k", type=int, help="1..100")
@click.option("--stop-sequence", multiple=True, help="Repeat for several.")
@click.option("--max-batch-size", type=int, help="1..256")
@click.option("--min-replicas", type=int, help="1..10")
@click.option("--max-replicas", type=int, help="1..50")
@click.option("--scale-up-delay", type=int, help="1..1000 s")
@click.option("--scale-down-delay", type=int, help="50..2000 s")
@click.option("--optimization-type", type=click.Choice(["ctranslate2", "vllm"]))
@click.option("--quantization-type", type=click.Choice(["no_quantization", "int8_float16"]))
@click.option("--previously-deployed", is_flag=True, default=None, help="isDeployedPreviously.")
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

    \b
    Examples:
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
                on_update=_watch_note(out, f"deploy {model_id}"),
            )
        out.result(job_json(job), _job_result("deploy", model_id, job, wait))
        return EXIT_OK

    run_command(ctx, out, main)


def _job_result(verb: str, model_id: str, job: JobDocument, waited: bool) -> str:
    if waited:
        return f"{verb}ed {model_id}: job {job.dock_status_id} {job.status}"
    return (
        f"{verb} of {model_id} started: job {job.dock_status_id} {job.status or ''} "
        f"(check: kore-models status {job.dock_status_id} --wait)"
    ).replace("  ", " ")


@click.command("undeploy")
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
            job = await kore.models.undeploy(
                model_id,
                wait=wait,
                timeout=timeout,
                on_update=_watch_note(out, f"undeploy {model_id}"),
            )
        out.result(job_json(job), _job_result("undeploy", model_id, job, wait))
        return EXIT_OK

    run_command(ctx, out, main)


@click.command("status")
@click.argument("dock_status_id")
@job_options
@click.pass_context
def status_command(
    ctx: click.Context, dock_status_id: str, wait: bool, timeout: float | None, json_mode: bool
) -> None:
    """Show a dock-status job (import, export, deploy, undeploy); --wait until it ends.

    \b
    Example:
      kore-models status ds-5678 --wait --timeout 600
    """
    g = get_globals(ctx)
    out = g.output(json_mode=json_mode)

    async def main() -> int:
        async with g.client() as kore:
            if wait:
                job = await kore.dock_status.wait(
                    dock_status_id, timeout=timeout, on_update=_watch_note(out, dock_status_id)
                )
            else:
                job = await kore.dock_status.get(dock_status_id)
        out.result(job_json(job), job_line(job))
        return EXIT_OK

    run_command(ctx, out, main)
