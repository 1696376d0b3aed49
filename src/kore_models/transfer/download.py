"""Downloads: an export saved to a file (resumable, ranged, hashed, checked) or only hashed.

How it works: :func:`download_file` locks ``<dest>.part`` (see :mod:`.partfile`) and reads
its sidecar. A part that belongs to another model or URL, or that has no sidecar, starts
over; one that belongs is resumed with ``Range`` and ``If-Range``, asking for
:data:`~.fetch.OVERLAP` bytes before the resume point and comparing them. A fresh download
with ``ranges > 1`` first asks for the first piece: a 206 with a total larger than one
piece goes on as a ranged download (:mod:`.ranged`), a 200 means the server ignores Range
and the answer is used as one stream. Every byte written is hashed (one worker-thread hop
writes and hashes a block); the size is checked against what the server announced, the
SHA-256 against the server's digest header and ``expected_sha256`` when given, and only
then is the part renamed onto ``dest``. A mismatch removes the bytes. Errors the retry
rulebook deems transient are retried, resuming each time; a retry round that made
progress earns a fresh round. A part that stops matching the server (:class:`StartOver`)
is emptied and fetched again, in a bounded loop.

:func:`~.digest.digest_download` streams a download through SHA-256 without writing it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from .._http import Transport
from .._retry import call_with_retry, is_retryable
from ..errors import (
    ConfigurationError,
    DownloadError,
    IntegrityError,
    KoreConnectionError,
    KoreError,
)
from ..results import DownloadResult
from .fetch import OVERLAP, Answer, Fetcher, StartOver, if_range_value, pump
from .partfile import PartFile, PartRecord, in_thread
from .ranged import RangedDownload

__all__ = [
    "DEFAULT_RANGES",
    "DownloadResult",
    "cut_short",
    "download_file",
    "normalise_sha256",
    "source_of",
    "total_from_416",
]

DEFAULT_RANGES = 4
"""Concurrent Range requests of a large download (a tuning controller will replace it)."""

MIN_PIECE_SIZE = 8 * 1024 * 1024
"""Smallest piece of a ranged download; smaller exports go as one stream."""

log = logging.getLogger("kore_models.download")

START_OVERS = 3
_PROGRESS_ROUNDS = 50
_SHA256 = re.compile(r"[0-9a-f]{64}")


def source_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(f"the download URL is not http(s): {url.split('?')[0][:80]!r}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def normalise_sha256(value: str | None) -> str | None:
    """``value`` as 64 lowercase hex digits; ConfigurationError when it is not a SHA-256."""
    if value is None:
        return None
    text = value.strip().lower()
    if not _SHA256.fullmatch(text):
        raise ConfigurationError(f"not a SHA-256 (64 hex digits): {value[:80]!r}")
    return text


class _Download:
    """One download to one part file; :meth:`run` returns the result before the rename."""

    def __init__(
        self,
        fetcher: Fetcher,
        part: PartFile,
        *,
        source: str,
        model_id: str | None,
        ranges: int,
        piece_size: int,
        on_total: Callable[[int], None] | None,
        on_held: Callable[[int], None] | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.part = part
        self.source = source
        self.model_id = model_id
        self.ranges = ranges
        self.piece_size = piece_size
        self.on_total = on_total
        self.on_held = on_held
        self.record: PartRecord | None = None
        self.restarts = 0
        self.plain = False
        self.hasher = hashlib.sha256()
        self.hashed_to = 0
        self.ranges_used = 1
        self.hash_seconds_after_transfer = 0.0

    async def run(self) -> DownloadResult:
        record = await in_thread(self.part.load_now)
        size = await in_thread(self.part.size_now)
        if (
            record is not None
            and record.belongs_to(self.source, self.model_id)
            and not record.encoded  # decoded bytes cannot be resumed by Range
        ):
            self.record = record
            resumed_from = self._held()
        else:
            resumed_from = 0
            if size or record is not None:
                await self._reset()
        if resumed_from and self.on_held is not None:
            self.on_held(resumed_from)
        for _ in range(START_OVERS + 1):
            try:
                size, digest = await self._with_retries()
            except StartOver as exc:
                self.restarts += 1
                self.plain = self.plain or exc.plain
                self.record = None
                await self._reset()
                continue
            return DownloadResult(
                path=self.part.dest,
                bytes=size,
                resumed_from=resumed_from,
                restarts=self.restarts,
                sha256=digest,
                ranges=self.ranges_used,
            )
        raise DownloadError("the file on the server kept changing while it was downloaded")

    async def _reset(self) -> None:
        await in_thread(self.part.reset_now)
        if self.on_held is not None:
            self.on_held(0)

    def _held(self) -> int:
        if self.record is None:
            return 0
        if self.record.piece_size:
            return RangedDownload(self.part, self.fetcher, self.record, 1).held()
        return self.part.size_now()

    async def _with_retries(self) -> tuple[int, str]:
        for _ in range(_PROGRESS_ROUNDS):
            before = self.fetcher.fresh
            try:
                return await call_with_retry(
                    self._attempt, self.fetcher.transport.policy, describe="download"
                )
            except KoreError as exc:
                if not is_retryable(exc) or self.fetcher.fresh == before:
                    raise
        raise DownloadError("the download kept failing although it made progress")

    async def _attempt(self) -> tuple[int, str]:
        record = self.record
        if record is not None and record.total is not None and self.on_total is not None:
            self.on_total(record.total)
        if record is not None and record.piece_size:
            return await self._ranged(record)
        have = await in_thread(self.part.size_now) if record is not None else 0
        if have and record is not None and not record.encoded and not self.plain:
            return await self._resume(record, have)
        if have:
            await self._reset()  # bytes that cannot be resumed (an encoded body)
        if self.ranges > 1 and not self.plain:
            return await self._probe()
        async with self.fetcher.open() as (answer, resp):
            if answer is None or answer.status != 200:
                raise DownloadError(f"the server answered HTTP {resp.status} to a plain GET")
            return await self._stream_from_zero(answer, resp)

    async def _resume(self, record: PartRecord, have: int) -> tuple[int, str]:
        first = max(0, have - OVERLAP)
        validator = if_range_value(record.etag, record.last_modified)
        async with self.fetcher.open(first, if_range=validator) as (answer, resp):
            if answer is None:
                total = total_from_416(resp.headers.get("Content-Range"))
                if total == have and record.total in (None, have):
                    digest = await self._hash_prefix(have)
                    self._check_digest(record, digest)
                    return have, digest
                raise StartOver("the part is longer than the file on the server")
            if answer.status != 206:
                self.restarts += 1  # the server ignored Range or If-Range failed
                return await self._stream_from_zero(answer, resp)
            if not answer.decoder.identity:
                raise StartOver("the server encodes ranges", plain=True)
            if (record.total is not None and answer.total != record.total) or not (
                answer.same_file_as(record.etag, record.last_modified)
            ):
                raise StartOver("the file on the server changed")
            expected = await in_thread(self.part.read_now, first, have - first)
            await self._hash_prefix(have)
            return await self._write_stream(answer, resp, have, expected=expected)

    async def _probe(self) -> tuple[int, str]:
        async with self.fetcher.open(0, self.piece_size - 1) as (answer, resp):
            if answer is None:
                if total_from_416(resp.headers.get("Content-Range")) == 0:
                    self.record = PartRecord(source=self.source, model_id=self.model_id, total=0)
                    return 0, hashlib.sha256().hexdigest()
                raise DownloadError("the server cannot serve the first bytes of the file")
            if answer.status != 206:  # the server ignores Range: this is the whole file
                return await self._stream_from_zero(answer, resp)
            if not answer.decoder.identity or answer.total is None:
                raise StartOver("the server's ranges cannot be stitched", plain=True)
            self._remember(answer)
            record = self.record
            assert record is not None
            if answer.total <= self.piece_size:
                return await self._write_stream(answer, resp, 0)
            record.piece_size = self.piece_size
            if self.on_total is not None:
                self.on_total(answer.total)
            await in_thread(self.part.presize_now, answer.total)
            await in_thread(self.part.save_now, record)
            return await self._ranged(record, (answer, resp))

    async def _ranged(
        self, record: PartRecord, opened: tuple[Answer, aiohttp.ClientResponse] | None = None
    ) -> tuple[int, str]:
        assert record.total is not None
        ranged = RangedDownload(self.part, self.fetcher, record, self.ranges)
        self.ranges_used = ranged.ranges
        digest = await ranged.run(opened)
        self.hash_seconds_after_transfer = ranged.hash_seconds_after_transfer
        log.debug(
            "ranged download of %d bytes in %d pieces: hashing after the transfer took %.3f s",
            record.total,
            ranged.count,
            ranged.hash_seconds_after_transfer,
        )
        self._check_digest(record, digest)
        return record.total, digest

    async def _stream_from_zero(
        self, answer: Answer, resp: aiohttp.ClientResponse
    ) -> tuple[int, str]:
        if answer.status == 206 and answer.start != 0:
            raise DownloadError("the server answered a range that does not start at 0")
        await self._reset()
        self._remember(answer)
        return await self._write_stream(answer, resp, 0)

    def _remember(self, answer: Answer) -> None:
        self.record = PartRecord(
            source=self.source,
            model_id=self.model_id,
            total=answer.total,
            etag=answer.etag,
            last_modified=answer.last_modified,
            encoded=not answer.decoder.identity,
            sha256=answer.sha256,
        )
        self.hasher, self.hashed_to = hashlib.sha256(), 0
        if answer.total is not None and self.on_total is not None:
            self.on_total(answer.total)

    async def _hash_prefix(self, have: int) -> str:
        """Hash what the part already holds (once per run), in a worker thread."""
        if self.hashed_to != have:
            self.hasher = hashlib.sha256()
            await in_thread(self.part.hash_now, self.hasher, 0, have)
            self.hashed_to = have
        return self.hasher.hexdigest()

    async def _write_stream(
        self, answer: Answer, resp: aiohttp.ClientResponse, at: int, *, expected: bytes = b""
    ) -> tuple[int, str]:
        record = self.record
        assert record is not None
        await in_thread(self.part.save_now, record)
        hasher = self.hasher

        def sink(block: bytes, offset: int) -> None:
            self.part.write_now(block, offset, hasher)

        def written(end: int) -> None:
            self.hashed_to = end

        limit = None if record.total is None else record.total - at
        blocks = self.fetcher.new_bytes(resp, answer, expected)
        end = await pump(blocks, sink, at, limit=limit, on_written=written)
        if record.total is not None and end < record.total:
            raise cut_short(end, record.total)
        if answer.length is not None and end - answer.start < answer.length:
            raise cut_short(end, answer.start + answer.length)
        digest = hasher.hexdigest()
        self._check_digest(record, digest)
        return end, digest

    def _check_digest(self, record: PartRecord, digest: str) -> None:
        if record.sha256 and record.sha256 != digest:
            raise IntegrityError(
                f"the download's SHA-256 {digest} differs from the {record.sha256} the server "
                "stated; the bytes were removed",
                expected=record.sha256,
                actual=digest,
            )


def cut_short(end: int, total: int) -> KoreError:
    return KoreConnectionError(f"the download ended at {end} of {total} bytes")


def total_from_416(content_range: str | None) -> int | None:
    match = re.fullmatch(r"\s*bytes\s+\*/(\d+)\s*", content_range or "")
    return int(match.group(1)) if match else None


async def download_file(
    transport: Transport,
    url: str,
    dest: Path,
    *,
    model_id: str | None = None,
    ranges: int = DEFAULT_RANGES,
    piece_size: int = MIN_PIECE_SIZE,
    expected_sha256: str | None = None,
    wait_for_lock: bool = False,
    on_bytes: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    on_held: Callable[[int], None] | None = None,
    block_size: int = 1024 * 1024,
) -> DownloadResult:
    """Download ``url`` to ``dest`` through ``<dest>.part``; see the module docstring.

    ``on_bytes(n)`` reports new bytes; ``on_held(n)`` says the part holds ``n`` bytes (a
    resume at the start, 0 after a start-over), so progress can count from there.

    Raises IntegrityError (nothing kept) on a SHA-256 mismatch, LocalStorageError when
    the destination is unsafe or the disk fails, LockedError when another run holds the
    part (unless ``wait_for_lock``), DownloadError / TransportError when the download
    fails (the part stays for the next run).
    """
    source = source_of(url)
    expected = normalise_sha256(expected_sha256)
    if ranges < 1 or piece_size < 1:
        raise ConfigurationError("ranges and piece_size must be at least 1")
    part = await PartFile.acquire(Path(dest), wait=wait_for_lock)
    keep = True
    try:
        fetcher = Fetcher(transport, url, block_size=block_size, on_bytes=on_bytes)
        job = _Download(
            fetcher,
            part,
            source=source,
            model_id=model_id,
            ranges=ranges,
            piece_size=piece_size,
            on_total=on_total,
            on_held=on_held,
        )
        try:
            result = await job.run()
        except IntegrityError:
            keep = False
            raise
        if expected is not None and result.sha256 != expected:
            keep = False
            raise IntegrityError(
                f"the download's SHA-256 {result.sha256} differs from the expected {expected}; "
                f"{dest} was not written and the bytes were removed",
                expected=expected,
                actual=result.sha256,
            )
        await in_thread(part.finish_now, result.bytes)
        return result
    finally:
        await in_thread(functools.partial(part.close_now, keep=keep))
