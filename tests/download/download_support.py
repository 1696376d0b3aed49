"""Helpers of the download suite: hostile loopback servers (aiohttp.web and raw), payloads."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

KEY = "kg-download-test-key-0123456789"
CHUNK = 64 * 1024


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def payload(size: int, seed: int = 7) -> bytes:
    """``size`` seeded random bytes."""
    return random.Random(seed).randbytes(size)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request a hostile server received."""

    method: str
    path_qs: str
    headers: dict[str, str]


@dataclass
class HostileServer:
    """A loopback aiohttp.web server; ``handler`` answers, ``seen`` records the requests."""

    url: str = ""
    handler: Handler | None = None
    seen: list[Seen] = field(default_factory=list)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(
                request.method, request.path_qs, {k.lower(): v for k, v in request.headers.items()}
            )
        )
        assert self.handler is not None, "the test set no handler"
        return await self.handler(request)

    def ranges(self) -> list[str | None]:
        """The Range header of each request, in order."""
        return [s.headers.get("range") for s in self.seen]


RawWriter = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawServer:
    """A loopback asyncio server whose ``respond`` writes raw HTTP bytes."""

    url: str = ""
    respond: RawWriter | None = None
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        assert self.respond is not None
        try:
            await self.respond(reader, writer)
        finally:
            writer.close()


def serve_ranges(data: bytes, *, etag: str | None = None) -> Handler:
    """A well-behaved file server: Range, If-Range on a strong ETag, Content-Length."""

    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {"Accept-Ranges": "bytes"}
        if etag:
            headers["ETag"] = etag
        asked = request.http_range
        if_range = request.headers.get("If-Range")
        if request.headers.get("Range") and (if_range is None or if_range == etag):
            start, stop, _ = asked.indices(len(data))
            if start >= len(data):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
            return web.Response(status=206, body=data[start:stop], headers=headers)
        return web.Response(body=data, headers=headers)

    return handler


async def start_server(dispatch: Handler) -> tuple[web.AppRunner, str]:
    """Serve ``dispatch`` for every path on 127.0.0.1, port 0; returns the runner and URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


KORE_MODELS = str(Path(sys.executable).with_name("kore-models"))


def export_api(
    server: HostileServer,
    data: bytes,
    *,
    gate: asyncio.Event | None = None,
    started: asyncio.Event | None = None,
) -> None:
    """``server`` answers the export call and its job ``ds-1`` (done, download URL on
    itself) and the file.

    With ``gate``, the file's first 64 KiB go out, ``started`` is set, and the rest waits
    for ``gate``.
    """
    files = serve_ranges(data)

    async def respond(request: web.Request) -> web.StreamResponse:
        if request.path.endswith(("/export", "/dock-status/ds-1")):
            job = {
                "_id": "ds-1",
                "action": "EXPORT",
                "status": "SUCCESS",
                "percentageComplete": 100,
                "modelId": "cm-1",
                "response": {"downloadUrl": f"{server.url}/dl?token=t0ken-abcdef"},
            }
            return web.json_response(job)
        if gate is None:
            return await files(request)
        resp = web.StreamResponse()
        resp.content_length = len(data)
        await resp.prepare(request)
        await resp.write(data[: 64 * 1024])
        if started is not None:
            started.set()
        await gate.wait()
        await resp.write(data[64 * 1024 :])
        return resp

    server.handler = respond


def cli_env(url: str, tmp_path: Path) -> dict[str, str]:
    """An environment for ``kore-models`` against ``url`` (no KORE_* of the caller's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KORE_")}
    env.update(
        KORE_HOST=url,
        KORE_API_KEY=KEY,
        KORE_STATE_DIR=str(tmp_path / "state"),
        KORE_RETRY_SLEEPS="false",
    )
    return env


async def run_cli(
    *args: str, env: dict[str, str], preexec: Callable[[], None] | None = None
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        KORE_MODELS,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=preexec,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
