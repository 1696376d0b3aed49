"""The export downloader: stream to ``dest.part``, resume with Range, check size, rename.

How it works: bytes go to ``<dest>.part`` through aiofiles in blocks as they arrive. After
a dropped connection the next attempt (the retry rulebook decides) asks for
``Range: bytes=<size of .part>-``; a 206 appends, a 200 means the server ignored the range,
so the part file is truncated and the download starts over. A ``.part`` left by an earlier
run is resumed the same way. When the body ends, the size is checked against the length
the server announced, the file is fsynced and atomically renamed onto ``dest``. The API
key is sent only when the download URL is on the API's own origin.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiofiles
import aiohttp
from yarl import URL

from .._http import Transport
from .._retry import call_with_retry
from ..errors import (
    DownloadError,
    KoreConnectionError,
    KoreError,
    error_from_response,
    redact,
)
from ..results import DownloadResult

__all__ = ["DownloadResult", "download_file"]

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _part_size(part: Path) -> int:
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


async def download_file(
    transport: Transport,
    url: str,
    dest: Path,
    *,
    on_bytes: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    block_size: int = 1024 * 1024,
) -> DownloadResult:
    """Download ``url`` to ``dest`` (resuming ``dest.part``); see the module docstring."""
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise DownloadError(f"the download URL is not http(s): {url[:80]!r}")
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    await asyncio.to_thread(part.parent.mkdir, parents=True, exist_ok=True)
    resumed_from = await asyncio.to_thread(_part_size, part)
    restarts = 0
    secret = transport.secret

    async def attempt() -> int:
        nonlocal restarts
        have = await asyncio.to_thread(_part_size, part)
        headers = {"Accept": "*/*", **transport.auth_headers(url)}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            async with transport.session.get(
                URL(url, encoded=True), headers=headers, timeout=transport.timeout
            ) as resp:
                if resp.status == 416 and have:
                    total = _total_from(resp.headers.get("Content-Range"))
                    if total == have:
                        return have
                    await _truncate(part)
                    restarts += 1
                    return await attempt()
                if resp.status >= 400:
                    text = await resp.text(errors="replace")
                    raise error_from_response(
                        status_code=resp.status,
                        headers=dict(resp.headers),
                        text=text,
                        method="GET",
                        url=url,
                        retry_after=None,
                        secret=secret,
                    )
                append = True
                if resp.status == 206:
                    match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
                    if not match or int(match.group(1)) != have:
                        raise DownloadError("the server answered a different range than asked")
                    total = None if match.group(3) == "*" else int(match.group(3))
                else:
                    if have:
                        restarts += 1
                    append = False
                    have = 0
                    total = resp.content_length
                if total is not None and on_total is not None:
                    on_total(total)
                written = have
                async with aiofiles.open(part, "ab" if append else "wb") as handle:
                    async for block in resp.content.iter_chunked(block_size):
                        await handle.write(block)
                        written += len(block)
                        if on_bytes is not None:
                            on_bytes(len(block))
                    await handle.flush()
                    await asyncio.to_thread(os.fsync, handle.fileno())
        except asyncio.CancelledError:
            raise
        except KoreError:
            raise
        except (aiohttp.ClientError, OSError) as exc:
            raise transport._map_transport_error(exc, "GET", redact(url, secret)) from None
        if total is not None and written < total:
            raise KoreConnectionError(
                f"the download ended at {written} of {total} bytes", method="GET", url=None
            )
        if total is not None and written > total:
            raise DownloadError(f"received {written} bytes but the server announced {total}")
        return written

    size = await call_with_retry(attempt, transport.policy, describe="download")
    await asyncio.to_thread(os.replace, part, dest)
    return DownloadResult(path=dest, bytes=size, resumed_from=resumed_from, restarts=restarts)


def _total_from(content_range: str | None) -> int | None:
    if not content_range:
        return None
    match = re.match(r"bytes \*/(\d+)", content_range)
    return int(match.group(1)) if match else None


async def _truncate(part: Path) -> None:
    await asyncio.to_thread(part.write_bytes, b"")
