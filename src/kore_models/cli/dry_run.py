"""``kore-models import --dry-run``: what each path would send, with no request at all."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..toolkit import UploadSource, prepare_source
from .output import Output, human_bytes

__all__ = ["dry_run"]


def _row(source: UploadSource) -> dict[str, Any]:
    listing = source.listing
    row: dict[str, Any] = {
        "path": str(source.path),
        "uploadName": source.upload_name,
        "bytes": source.size,
        "archive": listing is not None,
    }
    if listing is not None:
        row["members"] = [
            {"path": e.path, "type": "dir" if e.is_dir else "file", "bytes": e.size}
            for e in listing.entries
        ]
        row["contentBytes"] = listing.content_bytes
    return row


def _lines(source: UploadSource) -> list[str]:
    listing = source.listing
    if listing is None:
        return [f"{source.path}: sent as it is, {human_bytes(source.size)} ({source.size} B)"]
    lines = [
        f"{'' if e.is_dir else human_bytes(e.size):>10}  {e.path}{'/' if e.is_dir else ''}"
        for e in listing.entries
    ]
    files = len(listing.files)
    lines.append(
        f"{source.path}: would send {source.upload_name}, {files} files in "
        f"{len(listing.entries) - files} folders, {human_bytes(source.size)} "
        f"({source.size} B) including tar headers; nothing was sent"
    )
    return lines


async def dry_run(
    out: Output,
    paths: Sequence[Path],
    *,
    exclude: Sequence[str],
    include: Sequence[str],
    as_tar: bool,
) -> int:
    """Check and list every path as an import would; print the members and sizes."""
    rows: list[dict[str, Any]] = []
    lines: list[str] = []
    for path in paths:
        prepare = functools.partial(
            prepare_source, path, exclude=exclude, include=include, as_tar=as_tar
        )
        source = await asyncio.to_thread(prepare)
        rows.append(_row(source))
        lines.extend(_lines(source))
    out.result({"dryRun": True, "imports": rows}, lines)
    return 0
