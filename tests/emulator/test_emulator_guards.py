"""Hostile clients: non-ASCII chunk numbers, slow or lying senders, the control-API token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator
from kore_models.emulator.guards import CONTROL_TOKEN_HEADER, control_token_for
from tests.support.emulator_api import KEY, Api


@pytest.mark.parametrize("number", ["²", "٣", "１", "1.0", "+1", "0x1", "1_0"])
async def test_chunk_number_is_ascii_digits_only(api: Api, number: str) -> None:
    sid = (await api.start(30, 20))["sessionId"]
    status, doc, _ = await api.chunk(sid, number, b"abc")
    assert status == 400, doc
    assert doc["errors"][0]["field"] == "chunkNumber"
    assert (await api.control("GET", f"/sessions/{sid}"))["chunks"] == {}


async def test_chunk_number_digits_pass(api: Api) -> None:
    sid = (await api.start(30, 20))["sessionId"]
    assert (await api.chunk(sid, "13", b"abc"))[0] == 200
    assert (await api.control("GET", f"/sessions/{sid}"))["chunks"] == {"13": 3}


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[RunningEmulator]:
    config = EmulatorConfig(
        api_key=KEY, data_dir=tmp_path / "emu", header_timeout_seconds=0.2, body_timeout_seconds=0.2
    )
    async with run_emulator(config) as server:
        yield server


async def _raw(emu: RunningEmulator, data: bytes) -> bytes:
    """Send data, then read until the emulator closes the connection (the test never closes)."""
    reader, writer = await asyncio.open_connection(emu.host, emu.port)
    try:
        writer.write(data)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(
    "head",
    [b"", b"POST /api/public/files/session/start HTTP/1.1\r\nHost: x\r\nx-api-key: "],
    ids=["silent", "partial-headers"],
)
async def test_header_timeout_closes_connection(guarded: RunningEmulator, head: bytes) -> None:
    assert await _raw(guarded, head) == b""
    assert guarded.state.counters.header_timeouts == 1


async def test_keep_alive_idle_connection_is_closed(guarded: RunningEmulator) -> None:
    request = b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n"
    reply = await _raw(guarded, request)  # keep-alive: only the idle timeout ends it
    assert reply.startswith(b"HTTP/1.1 200")


async def test_lying_content_length_gets_408_and_close(guarded: RunningEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        sid = (await Api(guarded, http).start(1000))["sessionId"]
    body = b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nonly a little'
    head = (
        f"POST /api/public/files/session/{sid} HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\n"
        f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    reply = await _raw(guarded, head + body)
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert b"Connection: close" in rest
    doc = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert doc["errors"][0]["code"] == "REQUEST_TIMEOUT"
    assert not list((guarded.state.data_dir / "sessions").rglob(".tmp-*"))


async def test_lying_json_body_gets_408(guarded: RunningEmulator) -> None:
    head = (
        f"POST /api/public/files/session/start HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{"
    ).encode()
    reply = await _raw(guarded, head)
    assert reply.startswith(b"HTTP/1.1 408")


async def test_control_api_token(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    config = EmulatorConfig(api_key=KEY, data_dir=tmp_path, control_token="ctl-secret-token-42")
    async with run_emulator(config) as emu:
        url = f"{emu.url}/_emulator/config"
        for headers in ({}, {CONTROL_TOKEN_HEADER: "wrong"}):
            async with http.get(url, headers=headers) as resp:
                assert resp.status == 401
                assert (await resp.json())["errors"][0]["code"] == "CONTROL_TOKEN_REQUIRED"
        async with http.get(url, headers={CONTROL_TOKEN_HEADER: "ctl-secret-token-42"}) as resp:
            assert resp.status == 200
            shown = await resp.text()
        assert "ctl-secret-token-42" not in shown
        assert (await Api(emu, http).start(10))["sessionId"]  # the public API is unaffected


@pytest.mark.parametrize(
    ("host", "given", "required"),
    [
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("localhost", None, False),
        ("127.0.0.2", None, False),
        ("0.0.0.0", None, True),  # noqa: S104 - a string compared, nothing bound
        ("::", None, True),
        ("192.168.1.20", None, True),
        ("emulator.internal", None, True),
        ("127.0.0.1", "mine", True),
    ],
)
def test_control_token_required_beyond_loopback(
    host: str, given: str | None, required: bool
) -> None:
    token = control_token_for(host, given)
    assert (token is not None) is required
    if given is not None:
        assert token == given
    elif token is not None:
        assert len(token) >= 20
        assert control_token_for(host, None) != token  # a fresh random token each start
