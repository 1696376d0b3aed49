"""Comparing folder listings: the fingerprint a resume trusts, and what changed between two.

How it works: :func:`fingerprint_listing` hashes every entry's metadata and the CRC-32 of
its first block (both taken while listing) plus 16 blocks spread over all the files'
bytes, read now; :func:`describe_changes` names the paths added, removed or changed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence

from ..errors import FileChangedError
from .folder import FolderEntry, FolderListing, display_path

__all__ = ["describe_changes", "fingerprint_listing"]

_SPREAD_SAMPLES = 16
_SPREAD_BLOCK = 64 * 1024


def fingerprint_listing(listing: FolderListing) -> str:
    """A SHA-256 hex digest of the listing and sampled content (blocking: use a thread).

    It covers every entry's path, kind, size, mode and mtime, a CRC-32 of the first 4 KiB
    of every file (read while listing: a CRC costs a fraction of a SHA-256's set-up per
    file and is ample against accidental edits), and 16 blocks of 64 KiB spread evenly
    over all the files' bytes together, so the biggest shards are sampled in their middle.
    """
    digest = hashlib.sha256()
    for entry in listing.entries:
        record = "\0".join(
            (
                "d" if entry.is_dir else "f",
                entry.path,
                str(entry.size),
                oct(entry.mode),
                str(entry.mtime_ns),
                str(entry.head_crc32),
            )
        )
        digest.update(record.encode("utf-8", "surrogateescape") + b"\n")
    for sample in _spread_samples(listing.files):
        digest.update(sample)
    return digest.hexdigest()


def _spread_samples(files: Sequence[FolderEntry]) -> Iterable[bytes]:
    """Blocks at evenly spaced offsets of the files' bytes laid end to end."""
    total = sum(entry.size for entry in files)
    if total == 0:
        return
    step = max(1, total // _SPREAD_SAMPLES)
    targets = iter(range(step // 2, total, step))
    target = next(targets, None)
    start = 0
    for entry in files:
        end = start + entry.size
        offsets: list[int] = []
        while target is not None and target < end:
            offsets.append(target - start)
            target = next(targets, None)
        if offsets:
            yield from _read_blocks(entry, offsets)
        start = end


def _read_blocks(entry: FolderEntry, offsets: list[int]) -> Iterable[bytes]:
    try:
        fd = os.open(entry.source, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise FileChangedError(
            f"{display_path(entry.source)}: can no longer be read ({exc.strerror or exc}); "
            "the folder changed"
        ) from None
    try:
        for offset in offsets:
            yield os.pread(fd, _SPREAD_BLOCK, offset)
    finally:
        os.close(fd)


def describe_changes(before: Iterable[FolderEntry], after: Iterable[FolderEntry]) -> str:
    """``added a, b; removed c; changed d`` (a few names each) between two listings."""
    old = {entry.path: entry for entry in before}
    new = {entry.path: entry for entry in after}
    parts = []
    for verb, names in (
        ("added", [p for p in new if p not in old]),
        ("removed", [p for p in old if p not in new]),
        ("changed", [p for p in new if p in old and new[p] != old[p]]),
    ):
        if names:
            shown = ", ".join(display_path(name) for name in names[:5])
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            parts.append(f"{verb} {shown}{more}")
    return "; ".join(parts) or "sampled content changed"
