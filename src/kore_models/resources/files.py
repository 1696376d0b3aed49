"""``kore.files``: the file-session endpoints (start a session, upload a chunk, complete it)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp.payload import BytesPayload
from pydantic import ValidationError

from .._body import FileSlice, FileSlicePayload, build_chunk_form
from .._http import Transport, encode_segment
from .._retry import RetryBudget
from ..errors import ConfigurationError, format_validation_error
from ..types import ChunkAccepted, JobDocument, SessionStarted, StartSessionRequest
from ._parse import parse_as


class Files:
    """``kore.files``: POST /files/session/start, /files/session/{id}, /{id}/complete."""

    def __init__(self, transport: Transport):
        self._transport = transport

    def __repr__(self) -> str:
        return f"Files(host={self._transport.settings.host!r})"

    async def start_session(
        self,
        *,
        file_context: str = "model",
        total_chunks: int,
        file_extension: str,
        file_name: str,
        file_size: int,
        is_adapter: bool | None = False,
    ) -> SessionStarted:
        """Start a chunked upload session; model context also allocates the model id."""
        try:
            request = StartSessionRequest(
                file_context=file_context,
                total_chunks=total_chunks,
                file_extension=file_extension,
                file_name=file_name,
                file_size=file_size,
                is_adapter=is_adapter,
            )
        except ValidationError as exc:  # every library error is a KoreError
            raise ConfigurationError(
                format_validation_error(exc, "invalid start-session request")
            ) from None
        response = await self._transport.request(
            "POST", ["files", "session", "start"], json_body=request.to_api()
        )
        return parse_as(SessionStarted, response, what="start session")

    async def upload_chunk(
        self,
        session_id: str,
        chunk_number: int,
        body: bytes | FileSlice,
        *,
        filename: str = "chunk",
        on_bytes: Callable[[int], None] | None = None,
        budget: RetryBudget | None = None,
        on_retry: Callable[[BaseException, float], None] | None = None,
        retry: bool = True,
        block_size: int | None = None,
    ) -> ChunkAccepted:
        """Upload one 0-based chunk as multipart parts ``file`` and ``chunkNumber``.

        ``body`` is bytes, or a :class:`FileSlice` streamed from disk on every attempt.
        """
        if isinstance(chunk_number, bool) or not isinstance(chunk_number, int) or chunk_number < 0:
            raise ConfigurationError(
                f"chunk_number must be a non-negative int, not {chunk_number!r}"
            )
        settings = self._transport.settings

        def make_body() -> tuple[object, object]:
            if isinstance(body, FileSlice):
                part: FileSlicePayload | BytesPayload = FileSlicePayload(
                    body,
                    block_size=block_size or settings.read_block_size,
                    stall_timeout=settings.stall_timeout,
                    on_bytes=on_bytes,
                )
            else:
                part = BytesPayload(bytes(body), content_type="application/octet-stream")
            return build_chunk_form(chunk_number, part, filename=filename), part

        response = await self._transport.request(
            "POST",
            ["files", "session", encode_segment(session_id, what="session id")],
            body=make_body,
            budget=budget,
            on_retry=on_retry,
            retry=retry,
        )
        return parse_as(ChunkAccepted, response, what=f"upload chunk {chunk_number}")

    async def complete(self, session_id: str) -> JobDocument:
        """Complete the session: the server merges the chunks and starts the import job."""
        response = await self._transport.request(
            "POST",
            ["files", "session", encode_segment(session_id, what="session id"), "complete"],
        )
        return parse_as(JobDocument, response, what="complete session")
