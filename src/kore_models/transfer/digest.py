"""A download streamed through SHA-256 without writing it to disk (or kept, when asked)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from .._http import Transport
from .._retry import call_with_retry
from ..errors import DownloadError, IntegrityError
from .download import (
    START_OVERS,
    DownloadResult,
    cut_short,
    download_file,
    source_of,
    total_from_416,
)
from .fetch import OVERLAP, Answer, Fetcher, StartOver, if_range_value, pump

__all__ = ["digest_download"]


async def digest_download(
    transport: Transport,
    url: str,
    *,
    keep_to: Path | None = None,
    on_bytes: Callable[[int], None] | None = None,
    block_size: int = 1024 * 1024,
) -> DownloadResult:
    """The SHA-256 of what ``url`` serves, streamed through the hash without touching disk.

    With ``keep_to`` the bytes are also saved there (a normal :func:`download_file`).
    A dropped connection resumes with Range, comparing the last bytes hashed.
    """
    if keep_to is not None:
        return await download_file(
            transport, url, Path(keep_to), on_bytes=on_bytes, block_size=block_size
        )
    source_of(url)
    fetcher = Fetcher(transport, url, block_size=block_size, on_bytes=on_bytes)
    state = _Digesting()

    async def attempt() -> None:
        first = state.size - len(state.tail) if state.size else None
        async with fetcher.open(first, if_range=state.validator) as (answer, resp):
            if answer is None:
                if state.size and total_from_416(resp.headers.get("Content-Range")) == state.size:
                    return
                raise DownloadError(f"the server cannot serve bytes from {first}")
            expected = b""
            if answer.status == 206 and state.size:
                if answer.total != state.total or not answer.same_file_as(state.etag, None):
                    raise StartOver("the file on the server changed during the download")
                expected = bytes(state.tail)
            else:
                if state.size:
                    state.restarts += 1
                state.restart(answer)
            blocks = fetcher.new_bytes(resp, answer, expected)
            await pump(state.record(blocks), state.hash_block, state.size)
            if state.total is not None and state.size < state.total:
                raise cut_short(state.size, state.total)

    for _ in range(START_OVERS + 1):
        try:
            await call_with_retry(attempt, transport.policy, describe="download")
            break
        except StartOver:
            state = _Digesting(restarts=state.restarts + 1)
    else:
        raise DownloadError("the file on the server kept changing while it was downloaded")
    digest = state.hasher.hexdigest()
    if state.stated and state.stated != digest:
        raise IntegrityError(
            f"the download's SHA-256 {digest} differs from the {state.stated} the server stated",
            expected=state.stated,
            actual=digest,
        )
    return DownloadResult(
        path=None, bytes=state.size, resumed_from=0, restarts=state.restarts, sha256=digest
    )


class _Digesting:
    """What :func:`digest_download` has hashed so far, and the tail kept to check a resume."""

    def __init__(self, restarts: int = 0) -> None:
        self.hasher = hashlib.sha256()
        self.size = 0
        self.tail = bytearray()
        self.total: int | None = None
        self.etag: str | None = None
        self.validator: str | None = None
        self.stated: str | None = None
        self.restarts = restarts

    def restart(self, answer: Answer) -> None:
        self.hasher, self.size, self.tail = hashlib.sha256(), 0, bytearray()
        self.total, self.etag, self.stated = answer.total, answer.etag, answer.sha256
        self.validator = if_range_value(answer.etag, answer.last_modified)

    def hash_block(self, block: bytes, _offset: int) -> None:
        self.hasher.update(block)

    async def record(self, blocks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for block in blocks:
            self.size += len(block)
            self.tail = (self.tail + block)[-OVERLAP:]
            yield block
