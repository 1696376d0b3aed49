"""The file-session routes: start, chunk upload (streamed to disk) and complete."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from . import jobs
from .errors import ApiError, format_seconds
from .faults import STATE
from .housekeeping import (
    check_room_for_session,
    delete_model_bytes,
    insufficient_storage,
    room_for_chunk,
    sweep_expired_sessions,
)
from .http_common import origin, read_json
from .ingest import MultipartStream, archive_problem, assemble, boundary_from
from .shaping import READ_SIZE, Pacer
from .state import EmulatorState, iso_ms
from .store import ModelRow, SessionRow
from .validation import validate_start

ASCII_DIGITS = re.compile(r"[0-9]+")
CONTENT_LENGTH_SLACK = 1 << 20


def _session(state: EmulatorState, session_id: str) -> SessionRow:
    session = state.store.get_session(session_id)
    if session is None:
        raise ApiError(404, "SESSION_NOT_FOUND", f"upload session {session_id} not found")
    if session.completed:
        job_id = state.store.import_job_id(session.model_id) if session.model_id else None
        extra: dict[str, Any] = (
            {"dockStatusId": job_id, "modelId": session.model_id} if job_id else {}
        )
        raise ApiError(409, "SESSION_COMPLETED", "upload session is already completed", **extra)
    if session_id in state.completing:
        raise ApiError(409, "SESSION_COMPLETING", "upload session is being completed")
    if state.now() >= session.expires_at:
        raise ApiError(
            410,
            "SESSION_EXPIRED",
            "upload session has expired",
            expirationDate=iso_ms(session.expires_at),
        )
    return session


async def start_session(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    req = validate_start(await read_json(request), state.config.allowed_extensions)
    await sweep_expired_sessions(state)
    check_room_for_session(state, req.file_size)
    now = state.now()
    session_id = str(uuid.uuid4())
    model_id = f"cm-{uuid.uuid4()}" if req.file_context == "model" else None
    row = SessionRow(
        id=session_id,
        file_context=req.file_context,
        total_chunks=req.total_chunks,
        file_extension=req.file_extension,
        file_name=req.file_name,
        file_size=req.file_size,
        is_adapter=req.is_adapter,
        created_at=now,
        expires_at=now + state.config.session_ttl_seconds,
        model_id=model_id,
        completed=False,
        file_id=None,
    )
    state.store.insert_session(row)
    body: dict[str, Any] = {"sessionId": session_id, "expirationDate": iso_ms(row.expires_at)}
    if model_id is not None:
        state.store.insert_model(
            ModelRow(
                id=model_id,
                session_id=session_id,
                file_name=req.file_name,
                file_extension=req.file_extension,
                is_adapter=req.is_adapter,
                state=jobs.UPLOADING,
                size=None,
                sha256=None,
                discarded=False,
                created_at=now,
            )
        )
        body["modelId"] = model_id
    return web.json_response(body)


def _parse_chunk_number(raw: bytes, total: int) -> int:
    text = raw.decode("utf-8", "replace").strip().strip('"').strip()
    if not ASCII_DIGITS.fullmatch(text):  # str.isdigit() also takes "²" and "٣"
        raise ApiError(
            400, "VALIDATION_ERROR", "chunkNumber must be an integer", field="chunkNumber"
        )
    n = int(text)
    if n >= total:
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            f"chunkNumber must be between 0 and {total - 1}",
            field="chunkNumber",
        )
    return n


async def _receive(
    request: web.Request, state: EmulatorState, session: SessionRow
) -> tuple[int, int, Path | None]:
    """Stream the multipart body; returns (chunkNumber, size, temp file or None if discarded)."""
    cfg = state.config
    limit = cfg.max_chunk_bytes
    room = room_for_chunk(state)
    parser = MultipartStream(
        request.content,
        boundary_from(request.headers.get("Content-Type", "")),
        Pacer(cfg.throughput_bytes_per_second, state.total_bucket),
        state,
    )
    size: int | None = None
    number_raw: bytes | None = None
    tmp: Path | None = None
    keep = cfg.storage == "disk"
    try:
        while (name := await parser.next_part()) is not None:
            if name == "file":
                if size is not None:
                    raise ApiError(400, "VALIDATION_ERROR", "more than one file part", field="file")
                size = 0
                fh = None
                if keep:
                    directory = state.store.session_dir(session.id)
                    directory.mkdir(parents=True, exist_ok=True)
                    tmp = directory / f".tmp-{uuid.uuid4().hex}"
                    fh = await asyncio.to_thread(open, tmp, "wb")
                pending: list[memoryview] = []
                pending_bytes = 0
                try:
                    async for block in parser.iter_body():
                        size += len(block)
                        if size > limit:
                            raise ApiError(
                                413,
                                "CHUNK_TOO_LARGE",
                                f"chunk exceeds max_chunk_bytes ({limit})",
                                maxChunkBytes=limit,
                            )
                        if room is not None and size > room:
                            raise insufficient_storage(state, size, room)
                        if fh is not None:
                            pending.append(block)
                            pending_bytes += len(block)
                            if pending_bytes >= READ_SIZE:
                                await asyncio.to_thread(fh.writelines, pending)
                                pending, pending_bytes = [], 0
                    if fh is not None and pending:
                        await asyncio.to_thread(fh.writelines, pending)
                finally:
                    if fh is not None:
                        await asyncio.to_thread(fh.close)
            elif name == "chunkNumber":
                number_raw = b""
                async for block in parser.iter_body():
                    number_raw += bytes(block)
                    if len(number_raw) > 64:
                        raise ApiError(400, "VALIDATION_ERROR", "chunkNumber too long")
        if size is None:
            raise ApiError(
                400, "VALIDATION_ERROR", "multipart part `file` is required", field="file"
            )
        if number_raw is None:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                "multipart part `chunkNumber` is required",
                field="chunkNumber",
            )
        return _parse_chunk_number(number_raw, session.total_chunks), size, tmp
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        parser.close()


def _widen_reads(request: web.Request) -> None:
    """Let asyncio's selector transport recv up to 1 MiB per call (default 256 KiB)."""
    transport = request.transport
    if transport is not None and isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = 1 << 20  # type: ignore[attr-defined]


async def upload_chunk(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    session_id = request.match_info["session_id"]
    session = _session(state, session_id)
    limit = state.config.max_chunk_bytes
    if request.content_length is not None and request.content_length > limit + CONTENT_LENGTH_SLACK:
        raise ApiError(
            413, "CHUNK_TOO_LARGE", f"chunk exceeds max_chunk_bytes ({limit})", maxChunkBytes=limit
        )
    _widen_reads(request)
    counters = state.counters
    cap = state.config.max_chunks_in_flight
    if cap is not None and counters.concurrent_chunk_uploads >= cap:
        counters.in_flight_limit_429s += 1
        retry = state.config.retry_after_seconds
        raise ApiError(
            429,
            "TOO_MANY_CHUNKS_IN_FLIGHT",
            f"at most {cap} chunk uploads at once",
            headers={"Retry-After": format_seconds(retry)},
            maxChunksInFlight=cap,
        )
    counters.concurrent_chunk_uploads += 1
    counters.max_concurrent_chunk_uploads = max(
        counters.max_concurrent_chunk_uploads, counters.concurrent_chunk_uploads
    )
    try:
        number, size, tmp = await _receive(request, state, session)
    finally:
        counters.concurrent_chunk_uploads -= 1
    try:
        _session(state, session_id)  # may have completed/expired meanwhile
    except ApiError:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    room = room_for_chunk(state)
    if room is not None:
        replaced = state.store.chunk_sizes(session_id).get(number, 0)
        if size - replaced > room:  # other uploads filled the folder meanwhile
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise insufficient_storage(state, size, room + replaced)
    # rename + row write with no await in between: the file and its recorded size agree.
    if tmp is not None:
        os.replace(tmp, state.store.chunk_path(session_id, number))
    state.store.put_chunk(session_id, number, size)
    counters.chunks_received += 1
    counters.bytes_received += size
    counters.chunk_numbers_received.setdefault(session_id, []).append(number)
    return web.json_response({"chunkNumber": str(number), "sessionId": session_id})


async def complete_session(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    session_id = request.match_info["session_id"]
    await read_json(request, optional=True)
    session = _session(state, session_id)
    sizes = state.store.chunk_sizes(session_id)
    missing = [n for n in range(session.total_chunks) if n not in sizes]
    if missing:
        raise ApiError(
            400,
            "MISSING_CHUNKS",
            f"{len(missing)} of {session.total_chunks} chunks are missing",
            missingChunks=missing[:10000],
            missingCount=len(missing),
        )
    received = sum(sizes.values())
    if received != session.file_size:
        raise ApiError(
            400,
            "SIZE_MISMATCH",
            f"received {received} bytes but fileSize is {session.file_size}",
            expectedBytes=session.file_size,
            receivedBytes=received,
        )
    state.completing.add(session_id)
    try:
        return await _finish(request, state, session, received)
    finally:
        state.completing.discard(session_id)


async def _finish(
    request: web.Request, state: EmulatorState, session: SessionRow, received: int
) -> web.StreamResponse:
    store = state.store
    discard = state.config.storage == "discard"
    parts = [store.chunk_path(session.id, n) for n in range(session.total_chunks)]
    if session.model_id is None:
        file_id = secrets.token_hex(12)
        if not discard:
            dest = store.files_dir / f"{file_id}.{session.file_extension}"
            await asyncio.to_thread(assemble, parts, dest)
        store.complete_session(session.id, file_id)
        await asyncio.to_thread(shutil.rmtree, store.session_dir(session.id), True)
        url = (
            f"{origin(request, state)}/api/getMediaStream/orgFiles/f-{uuid.uuid4()}."
            f"{session.file_extension}?fileName={session.file_name}"
        )
        return web.json_response({"url": url, "fileId": file_id})
    model_id = session.model_id
    outcome, message, sha = "SUCCESS", None, None
    if not discard:
        dest = store.model_path(model_id)
        received, sha = await asyncio.to_thread(assemble, parts, dest)
        problem = await asyncio.to_thread(archive_problem, dest, session.file_extension)
        if problem is not None:
            outcome, message = "FAILED", problem
            await delete_model_bytes(state, model_id)  # a failed import can never be read
    store.set_model_content(model_id, received, sha, discard or outcome == "FAILED")
    store.set_model_state(model_id, jobs.IMPORTING)
    job = jobs.new_job(state, model_id, "IMPORT", outcome=outcome, message=message)
    store.complete_session(session.id, None)
    await asyncio.to_thread(shutil.rmtree, store.session_dir(session.id), True)
    return web.json_response(jobs.short_document(job, state.now()))
