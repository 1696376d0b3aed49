"""``kore.models.verify``: export a model, hash the download, compare with the local file.

How it works: the local file (or folder, as the tar an import of it sends) is checked
before any request and hashed in a worker thread
while the server runs the export job; the download is streamed through SHA-256 without
touching the disk (or saved to ``keep_to`` as well). Both digests end up in the
:class:`~kore_models.results.VerifyResult`; a mismatch raises
:class:`~kore_models.errors.IntegrityError` carrying both. When the caller already knows
the local digest (``import --verify`` has the SHA-256 of the bytes it just sent), the
local file is not read again.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from .._http import Transport
from ..errors import DownloadError, IntegrityError
from ..results import VerifyResult
from ..types import JobDocument
from .digest import digest_download
from .hashing import hasher_for
from .progress import Phase, ProgressCallback, ProgressTracker
from .source import UploadSource, prepare_source

__all__ = ["verify_model"]


async def _local_sha256(source: UploadSource, known: str | None) -> str:
    """The digest of what an import of ``source`` sends (the file, or the folder's tar)."""
    if known is not None:
        return known.lower()
    with hasher_for(source) as hasher:
        return (await hasher.digest()).sha256


async def verify_model(
    transport: Transport,
    export: Callable[[ProgressTracker], Awaitable[JobDocument]],
    model_id: str,
    path: Path,
    *,
    keep_to: Path | None = None,
    local_sha256: str | None = None,
    exclude: Sequence[str] = (),
    include: Sequence[str] = (),
    as_tar: bool = False,
    on_progress: ProgressCallback | None = None,
) -> VerifyResult:
    """Compare ``model_id`` on the server with ``path``; see the module docstring.

    ``export`` starts the export job and waits for it (the caller's timeout applies). A
    folder is compared as the tar an import with the same ``exclude``, ``include`` and
    ``as_tar`` sends.
    """
    started = time.monotonic()
    local_path = await asyncio.to_thread(path.expanduser)
    source = await asyncio.to_thread(
        functools.partial(
            prepare_source, local_path, exclude=exclude, include=include, as_tar=as_tar
        )
    )
    local_size = source.size
    tracker = ProgressTracker(on_progress)
    local = asyncio.ensure_future(_local_sha256(source, local_sha256))
    try:
        tracker.phase(Phase.PROCESSING, message="exporting on the server")
        final = await export(tracker)
        if not final.download_url:
            raise DownloadError(
                f"the export job {final.dock_status_id} succeeded but gave no download URL"
            )
        tracker.phase(Phase.DOWNLOADING)
        remote = await digest_download(
            transport,
            final.download_url,
            keep_to=keep_to,
            on_bytes=tracker.add_bytes,
            block_size=transport.settings.read_block_size,
        )
        local_digest = await local
    finally:
        if not local.done():
            local.cancel()
            await asyncio.gather(local, return_exceptions=True)
    tracker.phase(Phase.DONE, bytes_done=remote.bytes, bytes_total=remote.bytes)
    result = VerifyResult(
        model_id=model_id,
        dock_status_id=final.dock_status_id,
        path=local_path,
        local_bytes=local_size,
        local_sha256=local_digest,
        model_bytes=remote.bytes,
        model_sha256=remote.sha256,
        matches=remote.sha256 == local_digest,
        kept=remote.path,
        seconds=time.monotonic() - started,
    )
    if not result.matches:
        sizes = (
            f" ({local_size} bytes here, {remote.bytes} on the server)"
            if local_size != remote.bytes
            else ""
        )
        raise IntegrityError(
            f"model {model_id} does not match {local_path}{sizes}: local sha256 "
            f"{local_digest}, model sha256 {remote.sha256}",
            expected=local_digest,
            actual=remote.sha256,
        )
    return result
