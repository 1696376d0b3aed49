"""``kore-models verify`` (a model against a file), ``history`` (the ledger), ``journals``."""

from __future__ import annotations

import asyncio
from datetime import UTC
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from ..errors import ConfigurationError
from ..ledger import Ledger, LedgerEntry
from ..settings import Settings, normalise_host
from ..toolkit import JournalInfo, clean_journals, scan_journals
from .context import get_globals, run_command
from .errors import EXIT_OK
from .output import human_bytes
from .progress import ProgressDisplay, pick_mode

__all__ = ["history_command", "journals_command", "state_dir_from_env", "verify_command"]


def state_dir_from_env() -> Path:
    """The state directory the client would use (``KORE_STATE_DIR`` or the default)."""
    try:  # host and key are placeholders: only the state folder (and its env var) matters
        return Settings(host="http://127.0.0.1", api_key="unused").state_dir.expanduser()
    except ValidationError as exc:
        raise ConfigurationError(f"invalid settings in the environment: {exc}") from None


def _history_line(entry: LedgerEntry) -> str:
    when = entry.finished_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    arrow = "->" if entry.direction == "import" else "<-"
    status = f" {entry.status}" if entry.status else ""
    return (
        f"{when} {entry.direction:6} {entry.path} {arrow} {entry.host} "
        f"model {entry.model_id or '-'}{status}, {human_bytes(entry.size)} in "
        f"{entry.seconds:.1f} s, sha256 {entry.sha256 or '-'}"
    )


@click.command("history")
@click.option("--host", "host_filter", metavar="URL", help="Only transfers with this host.")
@click.option(
    "--path", "path_filter", type=click.Path(path_type=Path), help="Only this local file."
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N transfers.")
@click.option("--json", "json_mode", is_flag=True, help="One JSON object on stdout.")
@click.pass_context
def history_command(
    ctx: click.Context,
    host_filter: str | None,
    path_filter: Path | None,
    limit: int | None,
    json_mode: bool,
) -> None:
    """List completed imports and exports from the local ledger (oldest first).

    \b
    The ledger lives in the state directory (KORE_STATE_DIR, by default
    ~/.local/state/kore-models/ledger.sqlite3); it never holds the API key.
    Examples:
      kore-models history
      kore-models history --host https://agent-platform.kore.ai --json
      kore-models history --path llama-3-8b.tar
    """
    out = get_globals(ctx).output(json_mode=json_mode)
    path = str(path_filter.expanduser().resolve()) if path_filter else None

    async def main() -> int:
        host = normalise_host(host_filter, allow_insecure_http=True) if host_filter else None
        ledger = Ledger.in_state_dir(state_dir_from_env())
        entries = await asyncio.to_thread(lambda: ledger.entries(host=host, path=path, limit=limit))
        lines = [_history_line(e) for e in entries] or ["no transfers recorded"]
        out.result({"ledger": str(ledger.path), "transfers": [e.to_json() for e in entries]}, lines)
        return EXIT_OK

    run_command(ctx, out, main)


def _journal_line(info: JournalInfo) -> str:
    if info.file_path is None:
        return f"{info.state:10} {info.journal}: {info.reason}"
    chunks = f"{info.acknowledged}/{info.total_chunks} chunks"
    expiry = f", session expires {info.expires_at}" if info.expires_at else ""
    return f"{info.state:10} {info.file_path} -> {info.host}: {chunks}{expiry}; {info.reason}"


@click.command("journals")
@click.option("--clean", is_flag=True, help="Remove expired, stale and unreadable journals.")
@click.option("--json", "json_mode", is_flag=True, help="One JSON object on stdout.")
@click.pass_context
def journals_command(ctx: click.Context, clean: bool, json_mode: bool) -> None:
    """List the resume journals of unfinished imports (and clean up the useless ones).

    \b
    States: resumable (run the same import again), waiting (uploaded; the rerun waits
    for the server's job), expired (the session is gone), stale (the file changed or
    is gone), unreadable. --clean removes expired, stale and unreadable journals.
    """
    out = get_globals(ctx).output(json_mode=json_mode)

    async def main() -> int:
        state_dir = state_dir_from_env()
        journals = await asyncio.to_thread(scan_journals, state_dir)
        removed: list[JournalInfo] = []
        if clean:
            removed = await clean_journals(journals)
        kept = [j for j in journals if j not in removed]
        lines = [_journal_line(j) for j in kept]
        lines += [f"removed {_journal_line(j)}" for j in removed]
        if not lines:
            lines = [f"no unfinished imports (journals in {state_dir / 'journals'})"]
        document: dict[str, Any] = {
            "stateDir": str(state_dir),
            "journals": [j.to_json() for j in kept],
            "removed": [j.to_json() for j in removed],
        }
        out.result(document, lines)
        return EXIT_OK

    run_command(ctx, out, main)


@click.command("verify")
@click.argument("model_id")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--keep",
    "keep_to",
    type=click.Path(path_type=Path),
    metavar="DEST",
    help="Also save the download here (by default it is only hashed, never written).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Give up waiting for the export job after this long (exit 6).",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="PATTERN",
    help="Folders: as given to the import (the tar compared must be the one it sent).",
)
@click.option("--include", multiple=True, metavar="PATTERN", help="Folders: as for the import.")
@click.option("--as-tar", is_flag=True, help="PATH was imported as a one-member tar.")
@click.option("--json", "json_mode", is_flag=True, help="One JSON object on stdout.")
@click.pass_context
def verify_command(
    ctx: click.Context,
    model_id: str,
    path: Path,
    keep_to: Path | None,
    timeout: float | None,
    exclude: tuple[str, ...],
    include: tuple[str, ...],
    as_tar: bool,
    json_mode: bool,
) -> None:
    """Check that MODEL_ID on the server holds exactly the bytes of PATH (SHA-256).

    \b
    Exports the model and streams the download through SHA-256 while PATH is hashed
    (a folder as the tar its import sent); prints both digests. Exit 0 when they
    match, 11 when they do not.
    Examples:
      kore-models verify cm-1234 llama-3-8b.tar
      kore-models verify cm-1234 llama-3-8b.tar --keep /tmp/roundtrip.tar --json
    """
    g = get_globals(ctx)
    out = g.output(json_mode=json_mode)

    async def main() -> int:
        async with g.client() as kore:
            with ProgressDisplay(out, pick_mode(out)) as display:
                result = await kore.models.verify(
                    model_id,
                    path,
                    keep_to=keep_to,
                    timeout=timeout,
                    exclude=exclude,
                    include=include,
                    as_tar=as_tar,
                    on_progress=display.track(model_id),
                )
        lines = [
            f"verified {model_id}: it matches {result.path} "
            f"({human_bytes(result.model_bytes)} in {result.seconds:.1f} s)",
            f"  local sha256 {result.local_sha256}",
            f"  model sha256 {result.model_sha256}",
        ]
        if result.kept is not None:
            lines.append(f"  download kept at {result.kept}")
        out.result(result.model_dump(by_alias=True, mode="json"), lines)
        return EXIT_OK

    run_command(ctx, out, main)
