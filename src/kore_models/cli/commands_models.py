"""``kore-models export``, ``download`` and ``status``, and the helpers of every job command."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..results import ExportResult
from ..types import JobDocument
from .context import get_globals, run_command
from .errors import EXIT_OK
from .options import command
from .output import Output, human_bytes, human_rate
from .progress import ProgressDisplay, pick_mode

__all__ = [
    "download_command",
    "export_command",
    "job_json",
    "job_options",
    "status_command",
    "watch_note",
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


def watch_note(out: Output, what: str) -> Callable[[JobDocument], None]:
    """An on_update that logs each status change of a waited-for job on stderr."""

    def on_update(job: JobDocument) -> None:
        pct = "" if job.percentage_complete is None else f" {job.percentage_complete:.0f}%"
        out.info(f"{what}: {job.status}{pct}")

    return on_update


def export_json(result: ExportResult) -> dict[str, Any]:
    """The JSON object of a finished export or download: the result's own camelCase dump."""
    return result.model_dump(by_alias=True, mode="json")


def export_line(result: ExportResult) -> str:
    """``exported cm-1 to cm-1.tar: 1.0 GiB in 9.0 s (113.8 MiB/s)``: speed of this run."""
    fetched = result.bytes - result.resumed_from
    resumed = f", resumed at {human_bytes(result.resumed_from)}" if result.resumed_from else ""
    return (
        f"exported {result.model_id} to {result.path}: {human_bytes(result.bytes)} in "
        f"{result.seconds:.1f} s ({human_rate(fetched, result.seconds)}{resumed}), "
        f"sha256 {result.sha256}"
    )


# --- export --------------------------------------------------------------------------
def default_export_name(model_id: str) -> str:
    """``<modelId>.tar`` as a plain file name: a ``/`` or ``\\`` in the id becomes ``_``,
    so that an id such as ``../../x`` cannot put the file outside the folder."""
    return re.sub(r"[/\\\x00]", "_", model_id) + ".tar"


@command("export")
@click.argument("model_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to save the model (a file, or a folder for <modelId>.tar). "
    "Default ./<modelId>.tar.",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="Only start the export job and print it (fetch it later with `download`).",
)
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
      kore-models export cm-1234 --no-wait --json   # later: kore-models download ds-5678
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
                    f"export started: job {job.dock_status_id} (fetch it when it ends: "
                    f"kore-models download {job.dock_status_id} {dest})",
                )
                return EXIT_OK
            with ProgressDisplay(out, pick_mode(out, g.progress)) as display:
                result = await kore.models.export_to_file(
                    model_id,
                    dest,
                    timeout=timeout,
                    on_progress=display.track(model_id),
                    expected_sha256=expected_sha256,
                )
        out.result(export_json(result), export_line(result))
        return EXIT_OK

    run_command(ctx, out, main)


@command("status")
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
                    dock_status_id, timeout=timeout, on_update=watch_note(out, dock_status_id)
                )
            else:
                job = await kore.dock_status.get(dock_status_id)
        out.result(job_json(job), job_line(job))
        return EXIT_OK

    run_command(ctx, out, main)


@command("download")
@click.argument("dock_status_id")
@click.argument("dest", type=click.Path(path_type=Path), required=False)
@click.option("--timeout", type=_TIMEOUT, metavar="SECONDS", help="Limit for the export job.")
@click.option(
    "--sha256",
    "expected_sha256",
    metavar="HEX",
    help="Fail (exit 11, nothing kept) unless the download has this SHA-256.",
)
@click.option("--json", "json_mode", is_flag=True, help="One JSON object on stdout.")
@click.pass_context
def download_command(
    ctx: click.Context,
    dock_status_id: str,
    dest: Path | None,
    timeout: float | None,
    expected_sha256: str | None,
    json_mode: bool,
) -> None:
    """Download the file of an export started with `export --no-wait`.

    Waits for the export job DOCK_STATUS_ID if it is still running, then saves the file
    to DEST (a file, or a folder for <modelId>.tar; default ./<modelId>.tar), resuming a
    partial download.

    \b
    Examples:
      kore-models export cm-1234 --no-wait --json     # prints {"dockStatusId": "ds-..."}
      kore-models download ds-5678 llama.tar
    """
    g = get_globals(ctx)
    out = g.output(json_mode=json_mode)

    async def main() -> int:
        async with g.client() as kore:
            target = dest
            if target is None or target.is_dir():
                job = await kore.dock_status.get(dock_status_id)
                name = default_export_name(job.model_id or dock_status_id)
                target = Path(name) if target is None else target / name
            with ProgressDisplay(out, pick_mode(out, g.progress)) as display:
                result = await kore.models.download_export(
                    dock_status_id,
                    target,
                    timeout=timeout,
                    on_progress=display.track(dock_status_id),
                    expected_sha256=expected_sha256,
                )
        out.result(export_json(result), export_line(result))
        return EXIT_OK

    run_command(ctx, out, main)
