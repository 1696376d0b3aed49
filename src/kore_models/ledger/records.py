"""Transfers in the ledger: recording each completed one, finding earlier imports of a file.

The ledger file (:mod:`kore_models.ledger.store`) blocks and raises; these helpers run it
in a worker thread and turn its failures into warnings, so that a ledger that is corrupt,
locked, read-only or from a newer version never fails the transfer it would describe.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .store import Ledger, LedgerEntry, LedgerError, LedgerLockedError, utc_now

if TYPE_CHECKING:
    from ..results import ImportResult
    from ..transfer.journal import Fingerprint

__all__ = ["export_entry", "import_entry", "note_transfer", "previous_import", "record_transfer"]

log = logging.getLogger("kore_models.ledger")


async def record_transfer(ledger: Ledger, entry: LedgerEntry) -> str | None:
    """Add ``entry`` in a worker thread; return a warning instead of raising on failure."""
    try:
        await asyncio.to_thread(ledger.add, entry)
    except (LedgerError, LedgerLockedError) as exc:
        return f"the ledger was not updated: {exc}"
    return None


async def note_transfer(state_dir: Path, entry: LedgerEntry) -> str | None:
    """Record ``entry`` in the ledger of ``state_dir``; a failure is logged as a warning."""
    warning = await record_transfer(Ledger.in_state_dir(state_dir), entry)
    if warning is not None:
        log.warning("%s", warning)
    return warning


def import_entry(
    host: str, path: Path, fingerprint: Fingerprint, result: ImportResult
) -> LedgerEntry:
    """The ledger row of a completed import (``path`` as the journal names it)."""
    finished = utc_now()
    return LedgerEntry(
        direction="import",
        host=host,
        path=str(path.resolve()),
        size=result.bytes,
        started_at=finished - timedelta(seconds=result.seconds),
        finished_at=finished,
        seconds=result.seconds,
        sha256=result.sha256,
        model_id=result.model_id,
        dock_status_id=result.dock_status_id,
        session_id=result.session_id,
        status=result.status,
        mtime_ns=fingerprint.mtime_ns,
        fingerprint=fingerprint.sampled_sha256,
    )


def export_entry(
    host: str,
    *,
    model_id: str,
    dock_status_id: str | None,
    path: Path,
    size: int,
    sha256: str,
    seconds: float,
) -> LedgerEntry:
    """The ledger row of a completed export (the file it was saved to)."""
    finished = utc_now()
    return LedgerEntry(
        direction="export",
        host=host,
        path=str(path.resolve()),
        size=size,
        started_at=finished - timedelta(seconds=seconds),
        finished_at=finished,
        seconds=seconds,
        sha256=sha256,
        model_id=model_id,
        dock_status_id=dock_status_id,
        status="SUCCESS",
    )


async def previous_import(
    state_dir: Path, host: str, path: Path, fingerprint: Fingerprint | None
) -> tuple[LedgerEntry | None, str | None]:
    """The newest completed import of this very file to ``host`` (same path, size, mtime
    and sampled content), and a warning when the ledger could not be read."""
    if fingerprint is None:
        return None, None

    def find() -> LedgerEntry | None:
        return Ledger.in_state_dir(state_dir).find_import(
            host=host,
            path=str(path.resolve()),
            size=fingerprint.size,
            mtime_ns=fingerprint.mtime_ns,
            fingerprint=fingerprint.sampled_sha256,
        )

    try:
        return await asyncio.to_thread(find), None
    except (LedgerError, LedgerLockedError) as exc:
        return None, f"the ledger could not be read to look for an earlier import: {exc}"
