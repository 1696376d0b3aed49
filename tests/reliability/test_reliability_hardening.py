"""Emulator hardening beyond the contract tests in tests/emulator.

Already covered there: every /api/public route without a key (or with a wrong one) is 401
(test_emulator_files.py::test_every_public_route_needs_key), a chunk over the cap is 413
and a 3 MiB body over a 1000-byte cap is refused from its Content-Length
(::test_oversized_chunk_413), ``../../etc/passwd`` as fileName stays inside the data dir
(::test_path_traversal_file_name) and eight same-size uploads of one chunk leave one of
them (::test_concurrent_uploads_of_same_chunk). Added here: 200 MiB bodies refused
without being read into memory (RSS measured with psutil, with and without a key, with a
Content-Length and chunked), oversized JSON bodies, many hostile file names and
extensions, ids in URLs that try to climb out, and concurrent same-chunk uploads of
different sizes.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import json
import os
import select
import socket
import tarfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped,unused-ignore]
import pytest
from yarl import URL

from kore_models.emulator import EmulatorConfig, RunningEmulator, run_emulator
from tests.support.reliability import API_KEY, EmulatorProcess, StartEmulator, files_under

MiB = 1024 * 1024
BOUNDARY = "reliability-boundary-0123456789"


# ---- bodies that are too large ---------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    sent: int  # body bytes the client managed to send before the reply
    seconds: float


def _part_head() -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="chunkNumber"\r\n\r\n0\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def send_huge(
    port: int,
    path: str,
    *,
    key: str | None,
    declared: int | None,
    limit: int = 200 * MiB,
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}",
    head: bytes = b"",
) -> Reply:
    """POST up to ``limit`` body bytes, stopping as soon as the server answers.

    With ``declared`` the request says ``Content-Length: declared``; else it is chunked.
    """
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}"]
        if key is not None:
            lines.append(f"x-api-key: {key}")
        lines.append(
            f"Content-Length: {declared}" if declared is not None else "Transfer-Encoding: chunked"
        )
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sent = 0
        block = b"\0" * MiB
        first = True
        while sent < limit:  # bounded: at most limit / 1 MiB blocks
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            data = head + block if first else block
            first = False
            try:
                if declared is None:
                    sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                else:
                    sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = json.loads(response.read() or b"{}")
        return Reply(response.status, body, sent, time.monotonic() - started)
    finally:
        sock.close()


def rss(emulator: EmulatorProcess) -> int:
    return int(psutil.Process(emulator.pid).memory_info().rss)


def error_code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["code"])


def start_session(emulator: EmulatorProcess, size: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=30)
    try:
        body = {
            "fileContext": "model",
            "totalChunks": 1,
            "fileExtension": "tar",
            "fileName": "m.tar",
            "fileSize": size,
        }
        conn.request(
            "POST",
            "/api/public/files/session/start",
            body=json.dumps(body),
            headers={"x-api-key": API_KEY, "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        assert response.status == 200
        return str(json.loads(response.read())["sessionId"])
    finally:
        conn.close()


def leftovers(data_dir: Path) -> list[Path]:
    return [p for p in files_under(data_dir) if p.name.startswith(".tmp-")]


@pytest.mark.timeout(120)
def test_200_mib_bodies_are_refused_without_being_read_into_memory(
    start_emulator: StartEmulator,
) -> None:
    emulator = start_emulator("--max-chunk-bytes", str(8 * MiB))
    session = start_session(emulator, 200 * MiB)
    chunk_path = f"/api/public/files/session/{session}"
    baseline = rss(emulator)

    cases = {
        "declared, with the key": (chunk_path, API_KEY, 200 * MiB, "CHUNK_TOO_LARGE", 413),
        "declared, without a key": (chunk_path, None, 200 * MiB, "UNAUTHORIZED", 401),
        "declared JSON": ("/api/public/files/session/start", API_KEY, 200 * MiB,
                          "PAYLOAD_TOO_LARGE", 413),
        "chunked, with the key": (chunk_path, API_KEY, None, "CHUNK_TOO_LARGE", 413),
        "chunked JSON": ("/api/public/files/session/start", API_KEY, None,
                         "PAYLOAD_TOO_LARGE", 413),
    }  # fmt: skip
    figures = []
    for name, (path, key, declared, code, status) in cases.items():
        json_body = path.endswith("/start")
        reply = send_huge(
            emulator.port,
            path,
            key=key,
            declared=declared,
            content_type="application/json"
            if json_body
            else f"multipart/form-data; boundary={BOUNDARY}",
            head=b"" if json_body else _part_head(),
        )
        grown = rss(emulator) - baseline
        figures.append(f"{name}: {reply.status} after {reply.sent // MiB} MiB sent, "
                       f"RSS +{grown // MiB} MiB")  # fmt: skip
        assert (reply.status, error_code(reply.body)) == (status, code), name
        # refused long before 200 MiB arrived (socket buffers hold a few MiB) ...
        assert reply.sent < 64 * MiB, f"{name}: {reply.sent} bytes were sent first"
        # ... and whatever was read was not kept in memory
        assert grown < 48 * MiB, f"{name}: RSS grew by {grown} bytes"
    print("oversized bodies: " + "; ".join(figures))
    counters = emulator.counters()
    assert counters["chunks_received"] == 0
    assert counters["bytes_received"] == 0
    assert leftovers(emulator.data_dir) == []
    # the emulator still works
    assert start_session(emulator, 10)


# ---- hostile names and ids --------------------------------------------------------------


@pytest.fixture
async def emu(tmp_path: Path) -> AsyncIterator[RunningEmulator]:
    config = EmulatorConfig(api_key=API_KEY, data_dir=tmp_path / "data", job_seconds=0)
    async with run_emulator(config) as server:
        yield server


@pytest.fixture
async def raw() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def tar_bytes(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("model/w.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


async def call(
    raw: aiohttp.ClientSession, method: str, url: str | URL, **kwargs: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    kwargs.setdefault("headers", {"x-api-key": API_KEY})
    async with raw.request(method, url, **kwargs) as resp:
        body = await resp.read()
        try:
            return resp.status, json.loads(body), resp
        except ValueError:
            return resp.status, body, resp


async def upload(
    raw: aiohttp.ClientSession, emu: RunningEmulator, session: str, number: int, data: bytes
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="c.bin", content_type="application/octet-stream")
    form.add_field("chunkNumber", str(number))
    status, body, _ = await call(raw, "POST", f"{emu.url}/api/public/files/session/{session}",
                                 data=form)  # fmt: skip
    return status, body


def inside(path: str | Path, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root)


def lexists(path: str) -> bool:
    return os.path.lexists(path)


def escaped(tmp_path: Path, data_dir: Path) -> list[Path]:
    """Files under tmp_path that are not inside the emulator's data dir."""
    return [p for p in files_under(tmp_path) if not inside(p, data_dir)]


def assert_plain_name(name: str) -> None:
    """A stored file name: one plain path component, no control characters."""
    assert name, "empty"
    assert "/" not in name, name
    assert "\\" not in name, name
    assert '"' not in name, name
    assert not name.startswith("."), name
    assert len(name) <= 255, name
    assert not any(ord(c) < 32 or ord(c) == 127 for c in name), repr(name)


HOSTILE_NAMES = [
    "../../../../../../etc/passwd",
    "/etc/shadow",
    "..",
    ".",
    "...",
    "..\\..\\..\\windows\\win.ini",
    "a/../../b.tar",
    "nul\x00byte.tar",
    "line\r\nX-Injected: yes.tar",
    '"; filename="evil.sh',
    "%2e%2e%2f%2e%2e%2fescape.tar",
    "~/.ssh/authorized_keys",
    "名前 モデル.tar",
    "a" * 1000 + ".tar",
    "\u202etxt.exe",
]


async def test_hostile_file_names_stay_inside_the_data_dir(
    emu: RunningEmulator, raw: aiohttp.ClientSession, tmp_path: Path
) -> None:
    data_dir = emu.state.data_dir.resolve()
    api = f"{emu.url}/api/public"
    data = tar_bytes(b"weights" * 100)
    for name in HOSTILE_NAMES:
        start = {"fileContext": "model", "totalChunks": 1, "fileExtension": "tar",
                 "fileName": name, "fileSize": len(data)}  # fmt: skip
        status, doc, _ = await call(raw, "POST", f"{api}/files/session/start", json=start)
        assert status == 200, (name, doc)
        assert (await upload(raw, emu, doc["sessionId"], 0, data))[0] == 200
        status, job, _ = await call(raw, "POST", f"{api}/files/session/{doc['sessionId']}/complete")
        assert status == 200, (name, job)
        model_id = doc["modelId"]
        _, info, _ = await call(raw, "GET", f"{emu.url}/_emulator/models/{model_id}")
        assert_plain_name(info["fileName"])
        assert inside(info["path"], data_dir)
        # the name goes into the download's Content-Disposition: one clean header
        _, export, _ = await call(raw, "POST", f"{api}/models/{model_id}/export")
        url = export["response"]["downloadUrl"].strip()
        status, body, resp = await call(raw, "GET", url, headers={})
        assert status == 200
        assert body == data
        disposition = resp.headers["Content-Disposition"]
        assert_plain_name(disposition.removeprefix('attachment; filename="').removesuffix('"'))
        assert "X-Injected" not in resp.headers
    assert escaped(tmp_path, data_dir) == []


@pytest.mark.parametrize(
    "extension",
    ["../../../../escaped", "x/../../../escaped", "/tmp/escaped", "..", "a\x00b", "a\\b"],
)
async def test_hostile_file_extensions_cannot_escape_either(
    emu: RunningEmulator, raw: aiohttp.ClientSession, tmp_path: Path, extension: str
) -> None:
    """Files of other contexts are stored as ``files/<id>.<extension>``."""
    data_dir = emu.state.data_dir.resolve()
    api = f"{emu.url}/api/public"
    start = {"fileContext": "general", "totalChunks": 1, "fileExtension": extension,
             "fileName": "notes.txt", "fileSize": 5}  # fmt: skip
    status, doc, _ = await call(raw, "POST", f"{api}/files/session/start", json=start)
    if status == 400:
        assert doc["errors"][0]["field"] == "fileExtension"
    else:
        assert status == 200, doc
        assert (await upload(raw, emu, doc["sessionId"], 0, b"hello"))[0] == 200
        status, done, _ = await call(
            raw, "POST", f"{api}/files/session/{doc['sessionId']}/complete"
        )
        assert status == 200, done
        (stored,) = files_under(data_dir / "files")
        assert stored.read_bytes() == b"hello"
    assert escaped(tmp_path, data_dir) == []
    assert not lexists("/tmp/escaped")


async def test_ids_in_urls_cannot_climb_out(
    emu: RunningEmulator, raw: aiohttp.ClientSession, tmp_path: Path
) -> None:
    data_dir = emu.state.data_dir.resolve()
    before = sorted(files_under(tmp_path))
    climbs = ["..%2F..%2F..%2Fetc%2Fpasswd", "..%2Femulator.sqlite3", "%2E%2E", "..%5C..%5Cx"]
    for climb in climbs:
        for method, path in (
            ("POST", f"/api/public/files/session/{climb}"),
            ("POST", f"/api/public/files/session/{climb}/complete"),
            ("POST", f"/api/public/models/{climb}/export"),
            ("POST", f"/api/public/models/{climb}/undeploy"),
            ("GET", f"/api/public/dock-status/{climb}"),
            ("GET", f"/api/v1/account/exports/{climb}?token=x"),
            ("GET", f"/_emulator/models/{climb}"),
            ("GET", f"/_emulator/sessions/{climb}"),
        ):
            status, body, _ = await call(raw, method, URL(emu.url + path, encoded=True))
            assert status == 404, (path, status, body)
            assert body["errors"][0]["code"].endswith("NOT_FOUND"), body
    assert sorted(files_under(tmp_path)) == before
    assert escaped(tmp_path, data_dir) == []


async def test_concurrent_uploads_of_one_chunk_with_different_sizes_stay_consistent(
    emu: RunningEmulator, raw: aiohttp.ClientSession
) -> None:
    api = f"{emu.url}/api/public"
    payloads = [os.urandom(64 * 1024 + 4099 * i) for i in range(8)]
    start = {"fileContext": "model", "totalChunks": 1, "fileExtension": "tar",
             "fileName": "m.tar", "fileSize": len(payloads[0])}  # fmt: skip
    _, doc, _ = await call(raw, "POST", f"{api}/files/session/start", json=start)
    session = doc["sessionId"]
    for _round in range(3):
        results = await asyncio.gather(*(upload(raw, emu, session, 0, p) for p in payloads))
        assert all(status == 200 for status, _ in results)
        stored = emu.state.store.chunk_path(session, 0).read_bytes()
        assert stored in payloads, "one whole upload won, not a mix"
        _, view, _ = await call(raw, "GET", f"{emu.url}/_emulator/sessions/{session}")
        assert view["chunks"] == {"0": len(stored)}, "the recorded size is the winner's"
        assert not [p for p in files_under(emu.state.data_dir) if p.name.startswith(".tmp-")]
    # the complete agrees with what is stored: a size mismatch, or the exact bytes (the
    # chunk file is read before complete: the job may remove it once the model is built)
    status, body, _ = await call(raw, "POST", f"{api}/files/session/{session}/complete")
    if len(stored) != len(payloads[0]):
        assert status == 400
        assert body["errors"][0]["code"] == "SIZE_MISMATCH"
        assert (await upload(raw, emu, session, 0, payloads[0]))[0] == 200
        status, body, _ = await call(raw, "POST", f"{api}/files/session/{session}/complete")
        stored = payloads[0]
    assert status == 200, body
    _, model, _ = await call(raw, "GET", f"{emu.url}/_emulator/models/{doc['modelId']}")
    assert model["sha256"] == hashlib.sha256(stored).hexdigest()
