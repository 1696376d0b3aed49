"""Chunk uploads split at every point over a real socket: the multipart parser sees each piece."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kore_models.emulator import RunningEmulator
from tests.support.emulator_api import KEY

BOUNDARY = "kore-split-boundary-3f9a"


def chunk_request(
    sid: str,
    payload: bytes,
    number: str = "0",
    *,
    boundary: str = BOUNDARY,
    content_type: str = "multipart/form-data",
    file_first: bool = True,
) -> bytes:
    """The exact bytes of one chunk-upload request (head and multipart body)."""
    file_part = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + payload
        + b"\r\n"
    )
    number_part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="chunkNumber"\r\n\r\n{number}\r\n'
    ).encode()
    parts = [file_part, number_part] if file_first else [number_part, file_part]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    head = (
        f"POST /api/public/files/session/{sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"x-api-key: {KEY}\r\nContent-Type: {content_type}; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body


async def _let_server_read() -> None:
    """Yield to the shared event loop until the emulator has received what was sent.

    On loopback the bytes are in the server socket once send() returns; two loop turns run the
    server's recv, so each piece reaches the parser as its own read. Extra turns are margin.
    """
    for _ in range(4):
        await asyncio.sleep(0)


async def send_in_pieces(emu: RunningEmulator, raw: bytes, cuts: list[int]) -> tuple[int, Any]:
    """Send raw over a fresh TCP_NODELAY connection cut at the given offsets; (status, JSON)."""
    reader, writer = await asyncio.open_connection(emu.host, emu.port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        edges = [0, *sorted(set(cuts)), len(raw)]
        for start, end in itertools.pairwise(edges):
            if start == end:
                continue
            writer.write(raw[start:end])
            await writer.drain()
            await _let_server_read()
        reply = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


async def _session(emu: RunningEmulator, size: int, chunks: int = 1) -> str:
    raw_body = json.dumps(
        {"fileContext": "model", "totalChunks": chunks, "fileExtension": "tar",
         "fileName": "m.tar", "fileSize": size}
    ).encode()  # fmt: skip
    raw = (
        f"POST /api/public/files/session/start HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"x-api-key: {KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(raw_body)}\r\nConnection: close\r\n\r\n"
    ).encode() + raw_body
    status, doc = await send_in_pieces(emu, raw, [])
    assert status == 200, doc
    return str(doc["sessionId"])


def _stored(emu: RunningEmulator, sid: str, number: int = 0) -> bytes:
    return emu.state.store.chunk_path(sid, number).read_bytes()


async def test_read_ending_inside_closing_boundary(emu: RunningEmulator) -> None:
    """The issue's case: `...\\r` | `\\n--` | rest used to answer 400 chunkNumber is required."""
    payload = b"weights" * 50
    sid = await _session(emu, len(payload))
    raw = chunk_request(sid, payload, "0")
    cut = raw.index(payload) + len(payload) + 1  # just after the \r that ends the file part
    status, doc = await send_in_pieces(emu, raw, [cut, cut + 3])
    assert (status, doc) == (200, {"chunkNumber": "0", "sessionId": sid})
    assert _stored(emu, sid) == payload


async def test_every_single_cut_point(emu: RunningEmulator) -> None:
    payload = b"\r\n-" + bytes(range(256)) + b"\r\n--kore-split"  # near-misses of the delimiter
    sid = await _session(emu, len(payload))
    raw = chunk_request(sid, payload, "0", file_first=False)
    body_at = raw.index(b"\r\n\r\n") + 4
    for cut in range(body_at, len(raw)):
        for cuts in ([cut], [cut, cut + 3]):  # the second: a short read after the cut
            status, doc = await send_in_pieces(emu, raw, cuts)
            assert status == 200, (cuts, doc)
            assert _stored(emu, sid) == payload, cuts


@pytest.mark.parametrize("file_first", [True, False])
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.binary(min_size=1, max_size=300)
    | st.lists(
        st.sampled_from([b"\r", b"\n", b"-", b"--", BOUNDARY.encode(), b"x"]), min_size=1
    ).map(b"".join),
    cut_fractions=st.lists(st.floats(0, 1), min_size=1, max_size=6),
    curl_quirk=st.booleans(),
)
async def test_any_split_of_any_body(
    emu: RunningEmulator,
    file_first: bool,
    payload: bytes,
    cut_fractions: list[float],
    curl_quirk: bool,
) -> None:
    # A client picks a boundary that its data does not contain; with it inside, the body means
    # something else (the part ends early), so such payloads are not valid examples.
    assume(f"--{BOUNDARY}".encode() not in payload)
    sid = await _session(emu, len(payload), chunks=4)
    content_type = "application/json" if curl_quirk else "multipart/form-data"
    raw = chunk_request(sid, payload, "3", content_type=content_type, file_first=file_first)
    body_at = raw.index(b"\r\n\r\n") + 4
    cuts = [body_at + int(f * (len(raw) - body_at)) for f in cut_fractions]
    status, doc = await send_in_pieces(emu, raw, cuts)
    assert (status, doc) == (200, {"chunkNumber": "3", "sessionId": sid}), cuts
    assert _stored(emu, sid, 3) == payload
