"""``kore-models import``: one file, several at a time (``--parallel-files``), or a manifest."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..client import KoreClient
from ..errors import ConfigurationError, LocalFileError, NotFoundError
from ..ledger import previous_import
from ..toolkit import regular_file_fingerprint
from .context import Globals, get_globals, run_command
from .dry_run import dry_run as run_dry
from .errors import EXIT_OK, describe
from .import_report import human_line, import_row, label_of, summarise
from .manifest import Entry, StateFile, parse_manifest, state_path_for
from .options import command
from .output import Output, human_bytes
from .params import CHUNK_SIZE, SHARD, Shard
from .progress import ProgressDisplay, pick_mode

__all__ = ["import_command"]


@dataclass(frozen=True)
class ImportOptions:
    """The per-file options shared by every entry of one run."""

    chunk_size: int | None
    concurrency: str | None
    wait: bool
    timeout: float | None
    resume: bool
    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    as_tar: bool = False
    skip_existing: bool = False
    verify: bool = False
    checksum: bool = True


class _Run:
    """One ``import`` invocation over a list of entries."""

    def __init__(
        self,
        kore: KoreClient,
        out: Output,
        display: ProgressDisplay,
        options: ImportOptions,
        state: StateFile | None,
        raise_errors: bool,
    ):
        self.kore = kore
        self.out = out
        self.display = display
        self.options = options
        self.state = state
        self.raise_errors = raise_errors

    async def _already_done(self, entry: Entry) -> dict[str, Any] | None:
        if self.state is None:
            return None
        record = self.state.done(entry)
        if record is None:
            return None
        if record.get("status") != "SUCCESS" and record.get("dockStatusId"):
            # recorded by a --no-wait run: ask the server how the job ended
            try:
                job = await self.kore.dock_status.get(str(record["dockStatusId"]))
            except NotFoundError:
                return None
            if job.failed:
                return None
            if job.status != record.get("status"):
                record = {**record, "status": job.status}
                await asyncio.to_thread(self.state.record, entry, record)
        return {
            "path": str(entry.path),
            "isAdapter": entry.is_adapter,
            "skipped": True,
            "modelId": record.get("modelId"),
            "dockStatusId": record.get("dockStatusId"),
            "status": record.get("status"),
        }

    async def _imported_before(self, entry: Entry, label: str) -> dict[str, Any] | None:
        """With --skip-existing, the skip row of a file the ledger says was imported."""
        settings = self.kore.settings
        fingerprint = await asyncio.to_thread(regular_file_fingerprint, entry.path)
        found, problem = await previous_import(
            settings.state_dir, settings.host, entry.path, fingerprint
        )
        if problem:
            self.out.warn(problem)
        if found is None:
            return None
        when = found.finished_at.strftime("%Y-%m-%d %H:%M UTC")
        if not self.options.skip_existing:
            self.out.warn(
                f"{label} was already imported to {found.host} as model {found.model_id} "
                f"on {when}; importing it again creates a second model (--skip-existing skips it)"
            )
            return None
        self.out.info(f"{label}: already imported as model {found.model_id} on {when}; skipping")
        return {
            "path": str(entry.path),
            "isAdapter": entry.is_adapter,
            "skipped": True,
            "modelId": found.model_id,
            "dockStatusId": found.dock_status_id,
            "status": found.status,
            "sha256": found.sha256,
        }

    async def one(self, entry: Entry) -> dict[str, Any]:
        """Import ``entry``; failures become a row with ``error`` (unless raise_errors)."""
        label = label_of(entry.path)
        try:
            skipped = await self._already_done(entry)
            if skipped is not None:
                self.out.info(f"{label}: already imported (state file); skipping")
                return skipped
            earlier = await self._imported_before(entry, label)
            if earlier is not None:
                return earlier
            opts = self.options
            result = await self.kore.models.import_file(
                entry.path,
                is_adapter=entry.is_adapter,
                chunk_size=opts.chunk_size,
                on_progress=self.display.track(label),
                resume=opts.resume,
                wait=opts.wait,
                job_timeout=opts.timeout,
                exclude=opts.exclude,
                include=opts.include,
                as_tar=opts.as_tar,
            )
            row = import_row(entry.path, entry.is_adapter, result)
            if opts.verify and result.model_id and result.status == "SUCCESS":
                checked = await self.kore.models.verify(
                    result.model_id,
                    entry.path,
                    local_sha256=result.sha256,
                    exclude=opts.exclude,
                    include=opts.include,
                    as_tar=opts.as_tar,
                )
                row["verified"] = checked.matches
            if self.state is not None and row["dockStatusId"]:
                await asyncio.to_thread(self.state.record, entry, row)
            return row
        except Exception as exc:
            if self.raise_errors:
                raise
            text = str(exc)
            named = str(entry.path) in text or label in text
            code = self.out.error(exc, prefix="" if named else f"{label}: ")
            return {
                "path": str(entry.path),
                "isAdapter": entry.is_adapter,
                "error": describe(exc, *self.out.secrets),
                "errorType": type(exc).__name__,
                "exitCode": code,
            }

    async def all(self, entries: list[Entry], parallel: int) -> list[dict[str, Any]]:
        """Run every entry, ``parallel`` at a time, in order of the list."""
        if len(entries) == 1:
            return [await self.one(entries[0])]
        rows: list[dict[str, Any]] = [{} for _ in entries]
        limiter = asyncio.Semaphore(parallel)

        async def worker(index: int, entry: Entry) -> None:
            async with limiter:
                rows[index] = await self.one(entry)

        async with asyncio.TaskGroup() as group:
            for index, entry in enumerate(entries):
                group.create_task(worker(index, entry))
        return rows


def _check_manifest_files(
    kore: KoreClient, entries: list[Entry], state: StateFile, options: ImportOptions
) -> None:
    problems = []
    for entry in entries:
        if state.done(entry) is not None:
            continue
        try:
            kore.models.check_file(
                entry.path, exclude=options.exclude, include=options.include, as_tar=options.as_tar
            )
        except LocalFileError as exc:
            problems.append(f"{entry.where}: {exc}")
    if problems:
        raise LocalFileError(
            f"{len(problems)} manifest entr{'y' if len(problems) == 1 else 'ies'} cannot be "
            "imported: " + "; ".join(problems[:20])
        )


async def _run_imports(
    g: Globals,
    out: Output,
    entries: list[Entry],
    options: ImportOptions,
    parallel: int,
    manifest: Path | None,
    shard: Shard | None,
) -> int:
    started = time.monotonic()
    single = manifest is None and len(entries) == 1
    state: StateFile | None = None
    # One client, so every file of the run shares one concurrency controller and rate cap.
    async with g.client(
        chunk_size=options.chunk_size,
        concurrency=options.concurrency,
        checksum=None if options.checksum else False,
    ) as kore:
        if manifest is not None:  # every entry checked before the first upload
            state = await asyncio.to_thread(StateFile(state_path_for(manifest)).load)
            await asyncio.to_thread(_check_manifest_files, kore, entries, state, options)
        with ProgressDisplay(out, pick_mode(out, g.progress)) as display:
            run = _Run(kore, out, display, options, state, raise_errors=single)
            rows = await run.all(entries, parallel)
    labels = [label_of(e.path) for e in entries]
    lines = [line for row, lab in zip(rows, labels, strict=True) if (line := human_line(row, lab))]
    if single:
        out.result(rows[0], lines)
        return EXIT_OK
    summary = summarise(rows, time.monotonic() - started)
    document: dict[str, Any] = {"imports": rows, "summary": summary}
    if manifest is not None:
        document["manifest"] = str(manifest)
        document["shard"] = str(shard) if shard else None
        document["stateFile"] = str(state_path_for(manifest))
    lines.append(
        f"{summary['files']} files: {summary['imported']} imported, "
        f"{summary['skipped']} skipped, {summary['failed']} failed "
        f"({human_bytes(summary['bytes'])} in {summary['seconds']:.1f} s)"
    )
    out.result(document, lines)
    return int(summary["exitCode"])


@command("import")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--adapter", is_flag=True, help="The files are adapters (isAdapter=true).")
@click.option("--chunk-size", type=CHUNK_SIZE, help="Bytes per chunk, e.g. 16MiB (default 16MiB).")
@click.option(
    "--concurrency",
    metavar="auto|N",
    help="Chunk uploads in flight for the whole run: auto (default) finds the level; "
    "a number from 1 to 256 pins it.",
)
@click.option("--no-wait", is_flag=True, help="Return once uploaded; do not await the job.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Give up waiting for the server's job after this long (exit 6).",
)
@click.option("--no-resume", is_flag=True, help="Ignore resume journals; upload from scratch.")
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Skip a file the ledger lists as imported to this host (same size, mtime, content).",
)
@click.option(
    "--verify",
    is_flag=True,
    help="After the job succeeds, export the model and check its SHA-256 (exit 11 if not equal).",
)
@click.option(
    "--no-checksum",
    is_flag=True,
    help="Do not compute the SHA-256 of what is sent (saves about 0.6-0.9 CPU-s per GiB).",
)
@click.option(
    "--parallel-files",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Files imported at the same time.",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Import the files listed here (lines, JSON or CSV); re-runs skip finished ones.",
)
@click.option("--shard", type=SHARD, help="With --manifest: take every N-th entry, from the K-th.")
@click.option(
    "--exclude",
    multiple=True,
    metavar="PATTERN",
    help="Folders: leave out paths matching this .gitignore-style pattern (repeatable).",
)
@click.option(
    "--include",
    multiple=True,
    metavar="PATTERN",
    help="Folders: keep paths matching this pattern even if excluded (repeatable).",
)
@click.option("--as-tar", is_flag=True, help="Send a lone file as a one-member tar.")
@click.option("--dry-run", is_flag=True, help="List what would be sent and its size; send nothing.")
@click.option("--json", "json_mode", is_flag=True, help="One JSON object on stdout.")
@click.pass_context
def import_command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    adapter: bool,
    chunk_size: int | None,
    concurrency: str | None,
    no_wait: bool,
    timeout: float | None,
    no_resume: bool,
    skip_existing: bool,
    verify: bool,
    no_checksum: bool,
    parallel_files: int,
    manifest: Path | None,
    shard: Shard | None,
    exclude: tuple[str, ...],
    include: tuple[str, ...],
    as_tar: bool,
    dry_run: bool,
    json_mode: bool,
) -> None:
    """Import model archives (tar, zip, ...) or model folders, resumable and concurrent.

    A folder is sent as FOLDER.tar, generated while it uploads (no temporary
    file); .git/, .cache/, __pycache__/, .ipynb_checkpoints/ and .DS_Store are
    left out unless --include names them.

    \b
    Examples:
      kore-models import llama-3-8b.tar
      kore-models import ./Llama-3-8B/ --exclude '*.pt' --dry-run
      kore-models import a.tar b.tar c.tar --parallel-files 2 --json
      kore-models import lora.tar --adapter --chunk-size 32MiB --concurrency 4
      kore-models import --manifest models.txt --shard 2/4
    """
    g = get_globals(ctx)
    out = g.output(json_mode=json_mode)
    if manifest is not None and paths:
        raise click.UsageError("give either PATH... or --manifest, not both")
    if manifest is None and not paths:
        raise click.UsageError("give at least one PATH, or --manifest FILE")
    if shard is not None and manifest is None:
        raise click.UsageError("--shard needs --manifest")
    if adapter and manifest is not None:
        raise click.UsageError("with --manifest, mark adapters with isAdapter in the manifest")
    if verify and no_wait:
        raise click.UsageError("--verify needs the import job to finish; drop --no-wait")
    options = ImportOptions(
        chunk_size,
        concurrency,
        not no_wait,
        timeout,
        not no_resume,
        exclude=exclude,
        include=include,
        as_tar=as_tar,
        skip_existing=skip_existing,
        verify=verify,
        checksum=not no_checksum,
    )
    if dry_run and manifest is not None:
        raise click.UsageError("--dry-run takes paths, not --manifest")

    async def main() -> int:
        if manifest is not None:
            entries = await asyncio.to_thread(parse_manifest, manifest)
            total = len(entries)
            if shard is not None:
                entries = [e for i, e in enumerate(entries) if shard.takes(i)]
                out.info(f"shard {shard}: {len(entries)} of {total} manifest entries")
            if not entries:
                raise ConfigurationError(f"shard {shard} of {manifest} has no entries")
        else:
            unique = list(dict.fromkeys(p.expanduser().absolute() for p in paths))
            if len(unique) != len(paths):
                out.warn("a path was given twice; importing it once")
            entries = [Entry(path=p, is_adapter=adapter, where=str(p)) for p in unique]
            if dry_run:
                paths_ = [entry.path for entry in entries]
                return await run_dry(out, paths_, exclude=exclude, include=include, as_tar=as_tar)
        return await _run_imports(g, out, entries, options, parallel_files, manifest, shard)

    run_command(ctx, out, main)
