"""An in-place edit that restores the mtime passes the sampled fingerprint; verify catches it.

The resume journal trusts size, mtime and 16 sampled 64 KiB blocks: reading the whole file
again on every resume would cost a full pass over a multi-GB model. A byte changed between
two samples, in a chunk the server already holds, with the mtime put back, is therefore not
seen by the resume (issue 16, item 15: the documented limit). The end-to-end check that
closes it is ``import --verify`` / ``kore.models.verify``: it compares the SHA-256 of what
the server holds with the local file, so the mix of old and new bytes is reported.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kore_models import IntegrityError, ProgressEvent
from kore_models.transfer.journal import Journal, journal_path
from tests.support.transfer import CHUNK, ClientFactory, EmuControl, FileMaker

TOTAL = 30
SAMPLE_BLOCK = 64 * 1024
SAMPLES = 16


def sample_windows(size: int) -> list[tuple[int, int]]:
    """The byte ranges the sampled fingerprint reads (as transfer/journal.py takes them)."""
    step = (size - SAMPLE_BLOCK) // (SAMPLES - 1)
    return [(i * step, i * step + SAMPLE_BLOCK) for i in range(SAMPLES)]


def unsampled_offset(chunks: list[int], size: int) -> int:
    """A byte inside one of ``chunks`` that no sample window reads."""
    windows = sample_windows(size)
    for chunk in chunks:
        for offset in range(chunk * CHUNK, (chunk + 1) * CHUNK):
            if not any(start <= offset < end for start, end in windows):
                return offset
    raise AssertionError(f"chunks {chunks} are sampled throughout")


def flip_byte_keeping_mtime(path: Path, offset: int) -> None:
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        old = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([old[0] ^ 0xFF]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


async def test_an_edit_between_samples_with_the_mtime_restored_is_caught_by_verify(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker, tmp_path: Path
) -> None:
    await ctl.configure(throughput_bytes_per_second=1_000_000)
    source = make_file(TOTAL * CHUNK)
    kore = clients()
    enough = asyncio.Event()

    def watch(event: ProgressEvent) -> None:
        if event.chunks_done >= 6:
            enough.set()

    task = asyncio.create_task(kore.models.import_file(source, on_progress=watch, concurrency=3))
    await enough.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record = Journal(journal_path(tmp_path / "state", kore.settings.host, source)).load()
    assert record is not None
    # edit one byte of a chunk the server holds, between two samples; put the mtime back
    offset = unsampled_offset(sorted(record.acknowledged), TOTAL * CHUNK)
    await asyncio.to_thread(flip_byte_keeping_mtime, source, offset)

    await ctl.configure(throughput_bytes_per_second=None)
    resumed = await clients().models.import_file(source)
    assert resumed.resumed, "the sampled fingerprint did not see the edit (the documented limit)"

    with pytest.raises(IntegrityError) as caught:
        await clients().models.verify(str(resumed.model_id), source)
    assert caught.value.expected != caught.value.actual
