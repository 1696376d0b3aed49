"""Export download route: token-authorised, Range-aware, paced streaming of model bytes."""

from __future__ import annotations

import asyncio
import hmac

from aiohttp import hdrs, web

from . import jobs
from .errors import ApiError
from .faults import LOG, STATE
from .guards import within_body_timeout
from .shaping import Pacer


def requested_range(request: web.Request, size: int) -> tuple[int, int] | None:
    """Inclusive (start, end) of a single `bytes=` Range (parsed by aiohttp); None = whole file.

    Raises the 416 answer for a range that is malformed or outside the file.
    """
    header = request.headers.get(hdrs.RANGE)
    if header is None:
        return None
    try:
        wanted = request.http_range
    except ValueError:
        raise _unsatisfiable(size) from None
    start = wanted.start or 0
    if start < 0 or header.replace(" ", "").startswith("bytes=-"):  # suffix: the last N bytes
        if start == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size + start), size - 1
    end = size - 1 if wanted.stop is None else min(wanted.stop - 1, size - 1)
    if start >= size:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> ApiError:
    return ApiError(
        416,
        "RANGE_NOT_SATISFIABLE",
        "requested range not satisfiable",
        headers={"Content-Range": f"bytes */{size}"},
    )


async def download_export(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    job = state.store.get_job(request.match_info["job_id"])
    if job is None or job.action != "EXPORT":
        raise ApiError(404, "EXPORT_NOT_FOUND", "export not found")
    token = request.query.get("token", "")
    if not job.token or not hmac.compare_digest(token.encode(), job.token.encode()):
        raise ApiError(403, "INVALID_TOKEN", "missing or invalid download token")
    status, _ = jobs.job_status(job, state.now())
    if status != "SUCCESS":
        raise ApiError(409, "EXPORT_NOT_READY", f"export job is {status}")
    path = state.store.model_path(job.model_id)
    model = state.store.get_model(job.model_id)
    if model is None or not path.exists():
        raise ApiError(404, "EXPORT_NOT_FOUND", "exported file is gone")
    size = path.stat().st_size
    rng = requested_range(request, size)
    start, end = rng if rng is not None else (0, size - 1)
    length = end - start + 1 if size else 0
    resp = web.StreamResponse(status=206 if rng is not None else 200)
    resp.content_type = "application/octet-stream"
    resp.content_length = length
    resp.headers["Accept-Ranges"] = "bytes"
    resp.headers["Content-Disposition"] = f'attachment; filename="{model.file_name}"'
    if model.sha256:
        resp.headers["x-emulator-sha256"] = model.sha256
    if rng is not None:
        resp.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    await resp.prepare(request)
    if request.method == "HEAD":
        return resp
    reset_after: int | None = request.get("reset_after")
    if reset_after is not None and reset_after < 0:
        reset_after = length // 2
    pacer = Pacer(state.config.throughput_bytes_per_second, state.total_bucket)
    sent = 0
    fh = await asyncio.to_thread(open, path, "rb")
    try:
        await asyncio.to_thread(fh.seek, start)
        while sent < length:
            want = min(pacer.block, length - sent)
            if reset_after is not None:
                want = min(want, reset_after - sent)
                if want <= 0:
                    if request.transport is not None:
                        request.transport.abort()
                    return resp
            data = await asyncio.to_thread(fh.read, want)
            if not data:
                break
            try:
                await within_body_timeout(state, resp.write(data))
            except ApiError:  # the reader stopped reading: headers are sent, so cut the line
                if request.transport is not None:
                    request.transport.abort()
                return resp
            except ConnectionResetError as exc:  # the reader left
                state.counters.client_disconnects += 1
                LOG.debug("client left during download of %s: %s", job.model_id, exc)
                return resp
            sent += len(data)
            await pacer.account(len(data))
    finally:
        await asyncio.to_thread(fh.close)
    await resp.write_eof()
    return resp
